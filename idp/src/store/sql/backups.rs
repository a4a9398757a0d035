//! SQL for the record of completed backups.

macro_rules! impl_backup_store {
    ($store:ty, $db:ty, $backend:literal) => {
        #[async_trait::async_trait]
        impl $crate::store::BackupStore for $store {
            fn backend(&self) -> &'static str {
                $backend
            }

            async fn write_backup(&self, path: &std::path::Path) -> $crate::store::StoreResult<()> {
                self.write_snapshot(path).await
            }

            async fn record_backup(&self, b: &$crate::store::BackupRecord) -> $crate::store::StoreResult<()> {
                use $crate::store::{map_sqlx, rows};
                sqlx::query(
                    "INSERT INTO backups (finished_at, backend, location, bytes, sha256) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(rows::ms(b.finished_at))
                .bind(&b.backend)
                .bind(&b.location)
                .bind(b.bytes)
                .bind(&b.sha256)
                .execute(&self.pool)
                .await
                .map_err(map_sqlx)?;
                Ok(())
            }

            async fn last_backup(&self) -> $crate::store::StoreResult<Option<$crate::store::BackupRecord>> {
                use $crate::store::{map_sqlx, rows};
                let row: Option<(i64, String, String, i64, String)> = sqlx::query_as(
                    "SELECT finished_at, backend, location, bytes, sha256 FROM backups \
                     ORDER BY finished_at DESC LIMIT 1",
                )
                .fetch_optional(&self.pool)
                .await
                .map_err(map_sqlx)?;
                row.map(|(finished_at, backend, location, bytes, sha256)| {
                    Ok($crate::store::BackupRecord {
                        finished_at: rows::time(finished_at)?,
                        backend,
                        location,
                        bytes,
                        sha256,
                    })
                })
                .transpose()
            }
        }
    };
}
pub(crate) use impl_backup_store;
