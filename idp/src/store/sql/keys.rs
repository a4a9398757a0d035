//! SQL for signing keys.

macro_rules! impl_key_store {
    ($store:ty, $db:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::KeyStore for $store {
            async fn insert_signing_key(
                &self,
                k: &$crate::store::StoredKey,
            ) -> $crate::store::StoreResult<()> {
                use $crate::store::{map_sqlx, rows};
                sqlx::query(concat!(
                    "INSERT INTO signing_keys (",
                    $crate::store::rows::key_columns!(),
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
                ))
                .bind(&k.kid)
                .bind(&k.alg)
                .bind(&k.private_key_enc)
                .bind(&k.public_jwk)
                .bind(rows::ms(k.created_at))
                .bind(rows::ms(k.activates_at))
                .bind(k.retired_at.map(rows::ms))
                .bind(k.removed_at.map(rows::ms))
                .execute(&self.pool)
                .await
                .map_err(map_sqlx)?;
                Ok(())
            }

            async fn published_signing_keys(
                &self,
            ) -> $crate::store::StoreResult<Vec<$crate::store::StoredKey>> {
                use $crate::store::{map_sqlx, rows};
                let found: Vec<rows::KeyRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    $crate::store::rows::key_columns!(),
                    " FROM signing_keys WHERE removed_at IS NULL ORDER BY activates_at, kid"
                ))
                .fetch_all(&self.pool)
                .await
                .map_err(map_sqlx)?;
                found.into_iter().map(TryInto::try_into).collect()
            }
        }
    };
}
pub(crate) use impl_key_store;
