//! SQL for pushed authorization requests (RFC 9126).

macro_rules! impl_pushed_request_store {
    ($store:ty, $db:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::PushedRequestStore for $store {
            async fn insert_pushed_request(
                &self,
                reference_hash: &str,
                client_id: &str,
                params: &str,
                expires_at: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::StoreResult<()> {
                use $crate::store::{map_sqlx, rows};
                sqlx::query(
                    "INSERT INTO pushed_requests (reference_hash, client_id, params, expires_at) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(reference_hash)
                .bind(client_id)
                .bind(params)
                .bind(rows::ms(expires_at))
                .execute(&self.pool)
                .await
                .map_err(map_sqlx)
                .map(|_| ())
            }

            async fn take_pushed_request(
                &self,
                reference_hash: &str,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::StoreResult<Option<(String, String)>> {
                use $crate::store::{map_sqlx, rows};
                // One statement: of two concurrent uses, only one gets the row.
                let taken: Option<(String, String, i64)> = sqlx::query_as(
                    "DELETE FROM pushed_requests WHERE reference_hash = $1 \
                     RETURNING client_id, params, expires_at",
                )
                .bind(reference_hash)
                .fetch_optional(&self.pool)
                .await
                .map_err(map_sqlx)?;
                Ok(taken
                    .filter(|(_, _, expires_at)| *expires_at > rows::ms(now))
                    .map(|(client_id, params, _)| (client_id, params)))
            }
        }
    };
}
pub(crate) use impl_pushed_request_store;
