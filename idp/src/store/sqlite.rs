//! The embedded default: SQLite in WAL mode with foreign keys on.

use std::str::FromStr;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};

use super::{ConnectOptions, StoreError, StoreResult};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");

#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: sqlx::SqlitePool,
}

impl SqliteStore {
    pub async fn connect(options: &ConnectOptions) -> StoreResult<Self> {
        let connect = SqliteConnectOptions::from_str(&options.url)
            .map_err(|e| StoreError::Unavailable(e.to_string()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(std::time::Duration::from_secs(5));
        // Turning a new file to WAL takes a lock that does not wait on the busy handler, so
        // two processes opening the same fresh file at once can see SQLITE_BUSY: try again
        // briefly (bounded) rather than fail the start.
        let mut attempt: u64 = 0;
        let pool = loop {
            match super::pool_options::<sqlx::Sqlite>(options)
                .connect_with(connect.clone())
                .await
            {
                Ok(pool) => break pool,
                Err(e) if attempt < 20 && is_busy(&e) => {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(25 * attempt)).await;
                }
                Err(e) => return Err(StoreError::Unavailable(e.to_string())),
            }
        };
        Ok(Self { pool })
    }
}

/// SQLITE_BUSY (5) or SQLITE_BUSY_RECOVERY (261).
fn is_busy(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|code| code == "5" || code == "261")
}

super::sql::impl_sql_store!(SqliteStore, sqlx::Sqlite, MIGRATOR, "sqlite");

impl SqliteStore {
    /// `VACUUM INTO`: a consistent copy of the live database (readers and writers carry on),
    /// compacted, in SQLite's own format.
    async fn write_snapshot(&self, path: &std::path::Path) -> StoreResult<()> {
        let target = path
            .to_str()
            .ok_or_else(|| StoreError::Other(format!("{} is not a UTF-8 path", path.display())))?;
        sqlx::query("VACUUM INTO $1")
            .bind(target)
            .execute(&self.pool)
            .await
            .map_err(super::map_sqlx)?;
        Ok(())
    }

    /// Compare-and-set in a transaction: only an active token is retired, so of concurrent
    /// rotations of the same token exactly one succeeds. (SQLite has no data-modifying
    /// CTEs; its transactions are in-process and cheap.)
    async fn rotate_refresh_token_atomically(
        &self,
        old_hash: &str,
        successor: &crate::domain::grant::RefreshToken,
        response_enc: Option<&[u8]>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> StoreResult<bool> {
        use super::{map_sqlx, rows};
        let mut tx = self.pool.begin().await.map_err(map_sqlx)?;
        let retired = sqlx::query(
            "UPDATE refresh_tokens SET state = 'rotated', rotated_at = $1, last_used_at = $1, \
             successor_response_enc = $2 WHERE token_hash = $3 AND state = 'active'",
        )
        .bind(rows::ms(now))
        .bind(response_enc)
        .bind(old_hash)
        .execute(&mut *tx)
        .await
        .map_err(map_sqlx)?;
        if retired.rows_affected() != 1 {
            tx.rollback().await.map_err(map_sqlx)?;
            return Ok(false);
        }
        insert_refresh_token(&mut *tx, successor).await?;
        tx.commit().await.map_err(map_sqlx)?;
        Ok(true)
    }

    /// A strict rotation in one write transaction, taken before the read (`BEGIN IMMEDIATE`:
    /// SQLite has one writer, so the read and the compare-and-set cannot interleave with
    /// another rotation, and no read snapshot needs upgrading). The rules are the same SQL as
    /// PostgreSQL's (`rotation_conditions!`).
    async fn rotate_refresh_token_checked(
        &self,
        r: &super::RefreshRotation<'_>,
    ) -> StoreResult<Option<super::RotationAttempt>> {
        use super::{map_sqlx, rows};
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(map_sqlx)?;
        let family: Option<rows::RefreshFamilyRow> = sqlx::query_as(concat!(
            super::rows::refresh_family_select!(),
            " WHERE t.token_hash = $1"
        ))
        .bind(r.token_hash)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_sqlx)?;
        let Some(family) = family else {
            tx.rollback().await.map_err(map_sqlx)?;
            return Ok(None);
        };
        let retired = sqlx::query(concat!(
            "UPDATE refresh_tokens AS t SET state = 'rotated', rotated_at = $2, last_used_at = $2 \
             WHERE t.token_hash = $1 AND ",
            super::rows::rotation_conditions!("$3", "$2", "$4", "")
        ))
        .bind(r.token_hash)
        .bind(rows::ms(r.now))
        .bind(r.client_id)
        .bind(r.idle_cutoff.map_or(i64::MIN, rows::ms))
        .execute(&mut *tx)
        .await
        .map_err(map_sqlx)?;
        let rotated = retired.rows_affected() == 1;
        if rotated {
            sqlx::query(
                "INSERT INTO refresh_tokens (token_hash, grant_id, client_id, user_id, generation, \
                 parent_hash, state, scope, created_at, expires_at) SELECT $1, grant_id, client_id, \
                 user_id, generation + 1, token_hash, 'active', scope, $2, expires_at \
                 FROM refresh_tokens WHERE token_hash = $3",
            )
            .bind(r.successor_hash)
            .bind(rows::ms(r.now))
            .bind(r.token_hash)
            .execute(&mut *tx)
            .await
            .map_err(map_sqlx)?;
        }
        tx.commit().await.map_err(map_sqlx)?;
        Ok(Some(super::RotationAttempt {
            family: family.try_into()?,
            rotated,
        }))
    }
}
