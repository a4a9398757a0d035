//! The production backend: PostgreSQL, shared by many stateless replicas.

use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;

use super::{ConnectOptions, StoreError, StoreResult};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

#[derive(Debug, Clone)]
pub struct PgStore {
    pool: sqlx::PgPool,
    /// For pg_dump; never printed.
    url: Redacted,
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
            .connect_with(connect)
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        Ok(Self {
            pool,
            url: Redacted(options.url.clone()),
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
        super::backup::run("pg_dump", &args, Some(&self.url.0))
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

    /// A strict rotation in one statement (one round trip, one transaction): `family` reads
    /// the token, its grant and user as they were; `retired` retires the token only if every
    /// rule holds (`rotation_conditions!`); `successor` inserts the next token from the
    /// retired one's row. Concurrent attempts serialise on the token's row lock, and under
    /// READ COMMITTED the later ones re-check `state = 'active'` and retire nothing.
    async fn rotate_refresh_token_checked(
        &self,
        r: &super::RefreshRotation<'_>,
    ) -> StoreResult<Option<super::RotationAttempt>> {
        use super::{map_sqlx, rows};
        let row: Option<rows::RotationRow> = sqlx::query_as(concat!(
            "WITH family AS (",
            super::rows::refresh_family_select!(),
            " WHERE t.token_hash = $1), \
             retired AS (UPDATE refresh_tokens AS t SET state = 'rotated', rotated_at = $2, last_used_at = $2 \
             FROM grants AS g WHERE ",
            super::rows::rotation_conditions!(),
            " RETURNING t.grant_id, t.client_id, t.user_id, t.generation, t.scope, t.expires_at), \
             successor AS (INSERT INTO refresh_tokens (token_hash, grant_id, client_id, user_id, generation, \
             parent_hash, state, scope, created_at, expires_at) SELECT $5, grant_id, client_id, user_id, \
             generation + 1, $1, 'active', scope, $2, expires_at FROM retired RETURNING 1) \
             SELECT family.*, EXISTS (SELECT 1 FROM successor) AS rotated FROM family"
        ))
        .bind(r.token_hash)
        .bind(rows::ms(r.now))
        .bind(r.client_id)
        .bind(r.idle_cutoff.map_or(i64::MIN, rows::ms))
        .bind(r.successor_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_sqlx)?;
        row.map(|row| {
            Ok(super::RotationAttempt {
                family: row.family.try_into()?,
                rotated: row.rotated,
            })
        })
        .transpose()
    }
}
