//! The SQL both backends share. SQLite and PostgreSQL accept the same statements here
//! (`$n` placeholders, `RETURNING`, `ON CONFLICT`), so each operation is written once as a
//! macro and instantiated for each backend's pool type: one text for the SQL, two
//! compiled implementations, no branching on the backend at run time.

mod account;
mod admin;
mod backups;
mod clients;
mod denials;
mod events;
mod grants;
mod keys;
mod login_failures;
mod mfa;
mod pushed_requests;
pub(crate) mod resources;
mod sessions;
pub(crate) mod upstreams;
mod users;

pub(crate) use account::impl_account_store;
pub(crate) use admin::impl_admin_store;
pub(crate) use backups::impl_backup_store;
pub(crate) use clients::impl_client_store;
pub(crate) use denials::impl_denial_store;
pub(crate) use events::impl_event_store;
pub(crate) use grants::impl_grant_store;
pub(crate) use keys::impl_key_store;
pub(crate) use login_failures::impl_login_failure_store;
pub(crate) use mfa::impl_mfa_store;
pub(crate) use pushed_requests::impl_pushed_request_store;
pub(crate) use resources::impl_resource_store;
pub(crate) use sessions::impl_session_store;
pub(crate) use upstreams::impl_upstream_store;
pub(crate) use users::impl_user_store;

/// Implements [`Store`](crate::store::Store) and every aggregate trait for `$store`
/// (a struct with a `pool: sqlx::Pool<$db>`), migrating with `$migrator`.
macro_rules! impl_sql_store {
    ($store:ty, $db:ty, $migrator:path, $backend:literal) => {
        $crate::store::sql::impl_user_store!($store, $db);
        $crate::store::sql::impl_backup_store!($store, $db, $backend);
        $crate::store::sql::impl_client_store!($store, $db);
        $crate::store::sql::impl_key_store!($store, $db);
        $crate::store::sql::impl_event_store!($store, $db);
        $crate::store::sql::impl_session_store!($store, $db);
        $crate::store::sql::impl_grant_store!($store, $db);
        $crate::store::sql::impl_login_failure_store!($store, $db);
        $crate::store::sql::impl_admin_store!($store, $db);
        $crate::store::sql::impl_mfa_store!($store, $db);
        $crate::store::sql::impl_account_store!($store, $db);
        $crate::store::sql::impl_denial_store!($store, $db);
        $crate::store::sql::impl_pushed_request_store!($store, $db);
        $crate::store::sql::impl_resource_store!($store, $db);
        $crate::store::sql::impl_upstream_store!($store, $db);

        #[async_trait::async_trait]
        impl $crate::store::Store for $store {
            async fn migrate(&self) -> $crate::store::StoreResult<()> {
                let mut attempt = 0u64;
                loop {
                    match $migrator.run(&self.pool).await {
                        Ok(()) => return Ok(()),
                        // SQLite has no migration lock: when two processes migrate at the same
                        // moment, the loser's transaction rolls back; run again, it finds the
                        // migration applied. (PostgreSQL serialises through an advisory lock.)
                        Err(_) if attempt < 3 => {
                            attempt += 1;
                            tokio::time::sleep(std::time::Duration::from_millis(100 * attempt)).await;
                        }
                        Err(e) => {
                            return Err($crate::store::StoreError::Other(format!(
                                "migration failed: {e}"
                            )));
                        }
                    }
                }
            }

            async fn ping(&self) -> $crate::store::StoreResult<()> {
                sqlx::query("SELECT 1")
                    .execute(&self.pool)
                    .await
                    .map_err($crate::store::map_sqlx)
                    .map(|_| ())
            }

            fn pool_status(&self) -> (u32, u32) {
                (
                    self.pool.size(),
                    u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX),
                )
            }

            async fn close(&self) {
                self.pool.close().await;
            }
        }
    };
}
pub(crate) use impl_sql_store;
