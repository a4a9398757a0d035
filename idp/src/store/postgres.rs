//! The production backend: PostgreSQL, shared by many stateless replicas.

use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;

use super::rotation_batch::{Rotation, RotationBatcher};
use super::{ConnectOptions, StoreError, StoreResult};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

#[derive(Debug, Clone)]
pub struct PgStore {
    pool: sqlx::PgPool,
    /// Strict refresh rotations, performed in batches on connections of their own.
    rotations: RotationBatcher,
    /// For pg_dump (`backup_database_url`, else the server's own); never printed.
    dump_url: Redacted,
}

#[derive(Clone)]
struct Redacted(String);

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl PgStore {
    pub async fn connect(options: &ConnectOptions) -> StoreResult<Self> {
        let connect = PgConnectOptions::from_str(&options.url)
            .map_err(|e| StoreError::Unavailable(e.to_string()))?
            .application_name("aimpact-idp");
        let pool = super::pool_options::<sqlx::Postgres>(options)
            .connect_with(connect.clone())
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let rotations = RotationBatcher::start(super::pool_options(options), connect)
            .map_err(|e| StoreError::Unavailable(format!("cannot start the rotation batcher: {e}")))?;
        Ok(Self {
            pool,
            rotations,
            dump_url: Redacted(options.backup_url.clone().unwrap_or_else(|| options.url.clone())),
        })
    }
}

// Migrations run under a PostgreSQL advisory lock (taken by sqlx), so replicas starting
// together apply each migration exactly once.
super::sql::impl_sql_store!(PgStore, sqlx::Postgres, MIGRATOR, "postgres");

impl PgStore {
    /// `pg_dump --format=custom`: one consistent snapshot (a repeatable-read transaction) of
    /// the schema and data, compressed, restorable with pg_restore.
    async fn write_snapshot(&self, path: &std::path::Path) -> StoreResult<()> {
        let args = [
            "--format=custom".as_ref(),
            "--no-owner".as_ref(),
            "--file".as_ref(),
            path.as_os_str(),
        ];
        super::backup::run("pg_dump", &args, Some(&self.dump_url.0))
            .await
            .map(|_| ())
    }

    /// Compare-and-set in one statement (one round trip, its own transaction): the update
    /// retires the token only while it is active, and the insert takes its one row from the
    /// update's result, so of concurrent rotations of the same token exactly one retires it
    /// and stores a successor. Under READ COMMITTED a concurrent update waits for the row
    /// lock and then re-checks `state = 'active'`, which no longer holds.
    async fn rotate_refresh_token_atomically(
        &self,
        old_hash: &str,
        t: &crate::domain::grant::RefreshToken,
        response_enc: Option<&[u8]>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> StoreResult<bool> {
        use super::{map_sqlx, rows};
        let query = sqlx::query(concat!(
            "WITH retired AS (UPDATE refresh_tokens SET state = 'rotated', rotated_at = $1, \
             last_used_at = $1, successor_response_enc = $2 WHERE token_hash = $3 AND state = 'active' \
             RETURNING 1) INSERT INTO refresh_tokens (",
            super::rows::refresh_columns!(),
            ") SELECT $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16 FROM retired"
        ))
        .bind(rows::ms(now))
        .bind(response_enc)
        .bind(old_hash);
        let done = bind_refresh_token(query, t)
            .execute(&self.pool)
            .await
            .map_err(map_sqlx)?;
        Ok(done.rows_affected() == 1)
    }

    /// A strict rotation: queued for the next batch (`rotation_batch`), which checks and
    /// performs it together with the others waiting then, in one statement.
    async fn rotate_refresh_token_checked(
        &self,
        r: &super::RefreshRotation<'_>,
    ) -> StoreResult<Option<super::RotationAttempt>> {
        self.rotations.rotate(Rotation::from(r)).await
    }
}

/// Strict rotations of distinct tokens in one statement (one round trip, one transaction).
/// `$1` holds the presented hashes, and the other arrays each rotation's time, client, idle
/// cutoff and successor at the same position. `family` reads each token, its grant and user as
/// they were; `retired` retires each token only if every rule holds (`rotation_conditions!`);
/// `successor` inserts the next token from each retired one's row. Returns the family of every
/// token found and whether it rotated. Concurrent attempts on one token serialise on its row
/// lock, and under READ COMMITTED the later ones re-check `state = 'active'` and retire nothing.
///
/// The statement is shaped so that its one reusable plan stays right at any table size (see
/// `rotation_batch::PLANNER_SETTINGS`): tokens are found only through the primary key
/// (`= ANY($1)`), and each token's grant and user through theirs, in `LATERAL ... OFFSET 0`
/// and correlated subqueries that cannot be turned into joins; no join is left whose order
/// the planner could invert (a plan seen on a fresh database walked users, then grants, then
/// every token of each grant).
pub(super) async fn rotate_refresh_tokens(
    pool: &sqlx::PgPool,
    rotations: &[&Rotation],
) -> StoreResult<Vec<super::rows::RotationRow>> {
    use super::map_sqlx;
    let hashes: Vec<&str> = rotations.iter().map(|r| r.token_hash.as_str()).collect();
    let times: Vec<i64> = rotations.iter().map(|r| r.now_ms).collect();
    let clients: Vec<&str> = rotations.iter().map(|r| r.client_id.as_str()).collect();
    let cutoffs: Vec<i64> = rotations.iter().map(|r| r.idle_cutoff_ms).collect();
    let successors: Vec<&str> = rotations.iter().map(|r| r.successor_hash.as_str()).collect();
    sqlx::query_as(concat!(
        "WITH family AS (SELECT ",
        super::rows::refresh_family_columns!(),
        " FROM refresh_tokens t \
         CROSS JOIN LATERAL (SELECT * FROM grants WHERE id = t.grant_id OFFSET 0) g \
         LEFT JOIN LATERAL (SELECT status FROM users WHERE id = g.user_id OFFSET 0) u ON true \
         WHERE t.token_hash = ANY($1::text[])), \
         retired AS (UPDATE refresh_tokens AS t \
         SET state = 'rotated', rotated_at = ($2::bigint[])[array_position($1::text[], t.token_hash)], \
         last_used_at = ($2::bigint[])[array_position($1::text[], t.token_hash)] \
         WHERE t.token_hash = ANY($1::text[]) AND ",
        super::rows::rotation_conditions!(
            "($3::text[])[array_position($1::text[], t.token_hash)]",
            "($2::bigint[])[array_position($1::text[], t.token_hash)]",
            "($4::bigint[])[array_position($1::text[], t.token_hash)]",
            " OFFSET 0"
        ),
        " RETURNING t.token_hash, t.grant_id, t.client_id, t.user_id, t.generation, t.scope, t.expires_at), \
         successor AS (INSERT INTO refresh_tokens (token_hash, grant_id, client_id, user_id, generation, \
         parent_hash, state, scope, created_at, expires_at) \
         SELECT ($5::text[])[array_position($1::text[], token_hash)], grant_id, client_id, user_id, \
         generation + 1, token_hash, 'active', scope, ($2::bigint[])[array_position($1::text[], token_hash)], \
         expires_at FROM retired RETURNING parent_hash) \
         SELECT family.*, family.token_hash IN (SELECT parent_hash FROM successor) AS rotated FROM family"
    ))
    .bind(hashes)
    .bind(times)
    .bind(clients)
    .bind(cutoffs)
    .bind(successors)
    .fetch_all(pool)
    .await
    .map_err(map_sqlx)
}
