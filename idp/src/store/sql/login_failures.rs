//! SQL for brute-force counters.

macro_rules! impl_login_failure_store {
    ($store:ty, $db:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::LoginFailureStore for $store {
            async fn login_failure_state(
                &self,
                account_key: &str,
                source: &str,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::StoreResult<$crate::store::FailureState> {
                use $crate::store::{map_sqlx, rows, EVERY_SOURCE, ACCOUNT_FAILURE_WINDOW_S};
                let found: Vec<(String, i64, i64, Option<i64>, i64)> = sqlx::query_as(
                    "SELECT source, failures, lockouts, locked_until, updated_at FROM login_failures \
                     WHERE account_key = $1 AND source IN ($2, $3)",
                )
                .bind(account_key)
                .bind(source)
                .bind(EVERY_SOURCE)
                .fetch_all(&self.pool)
                .await
                .map_err(map_sqlx)?;
                let window_start = rows::ms(now - chrono::Duration::seconds(ACCOUNT_FAILURE_WINDOW_S));
                let mut state = $crate::store::FailureState::default();
                for (row_source, failures, lockouts, locked_until, updated_at) in found {
                    if row_source == EVERY_SOURCE && source != EVERY_SOURCE {
                        if updated_at >= window_start {
                            state.account_failures = failures;
                        }
                    } else {
                        state.failures = failures;
                        state.lockouts = lockouts;
                        state.locked_until = locked_until.map(rows::time).transpose()?;
                    }
                }
                Ok(state)
            }

            async fn record_login_failure(
                &self,
                account_key: &str,
                source: &str,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::StoreResult<$crate::store::FailureState> {
                use $crate::store::{map_sqlx, rows, EVERY_SOURCE, ACCOUNT_FAILURE_WINDOW_S};
                // Atomic upserts: concurrent failures each count.
                let (failures, lockouts, locked_until): (i64, i64, Option<i64>) = sqlx::query_as(
                    "INSERT INTO login_failures (account_key, source, failures, lockouts, updated_at) \
                     VALUES ($1, $2, 1, 0, $3) ON CONFLICT (account_key, source) DO UPDATE \
                     SET failures = login_failures.failures + 1, updated_at = excluded.updated_at \
                     RETURNING failures, lockouts, locked_until",
                )
                .bind(account_key)
                .bind(source)
                .bind(rows::ms(now))
                .fetch_one(&self.pool)
                .await
                .map_err(map_sqlx)?;
                // The account's count starts again after a quiet window.
                let (account_failures,): (i64,) = sqlx::query_as(
                    "INSERT INTO login_failures (account_key, source, failures, lockouts, updated_at) \
                     VALUES ($1, $2, 1, 0, $3) ON CONFLICT (account_key, source) DO UPDATE \
                     SET failures = CASE WHEN login_failures.updated_at < $4 THEN 1 ELSE login_failures.failures + 1 END, \
                     updated_at = excluded.updated_at RETURNING failures",
                )
                .bind(account_key)
                .bind(EVERY_SOURCE)
                .bind(rows::ms(now))
                .bind(rows::ms(now - chrono::Duration::seconds(ACCOUNT_FAILURE_WINDOW_S)))
                .fetch_one(&self.pool)
                .await
                .map_err(map_sqlx)?;
                Ok($crate::store::FailureState {
                    failures,
                    lockouts,
                    locked_until: locked_until.map(rows::time).transpose()?,
                    account_failures,
                })
            }

            async fn lock_login(
                &self,
                account_key: &str,
                source: &str,
                until: chrono::DateTime<chrono::Utc>,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::StoreResult<()> {
                use $crate::store::{map_sqlx, rows};
                sqlx::query(
                    "UPDATE login_failures SET failures = 0, lockouts = lockouts + 1, locked_until = $1, updated_at = $2 \
                     WHERE account_key = $3 AND source = $4",
                )
                .bind(rows::ms(until))
                .bind(rows::ms(now))
                .bind(account_key)
                .bind(source)
                .execute(&self.pool)
                .await
                .map_err(map_sqlx)?;
                Ok(())
            }

            async fn clear_login_failures(&self, account_key: &str, source: &str) -> $crate::store::StoreResult<()> {
                sqlx::query("DELETE FROM login_failures WHERE account_key = $1 AND source = $2")
                    .bind(account_key)
                    .bind(source)
                    .execute(&self.pool)
                    .await
                    .map_err($crate::store::map_sqlx)?;
                Ok(())
            }

            async fn unlock_account(&self, account_key: &str) -> $crate::store::StoreResult<u64> {
                let done = sqlx::query("DELETE FROM login_failures WHERE account_key = $1")
                    .bind(account_key)
                    .execute(&self.pool)
                    .await
                    .map_err($crate::store::map_sqlx)?;
                Ok(done.rows_affected())
            }
        }
    };
}
pub(crate) use impl_login_failure_store;
