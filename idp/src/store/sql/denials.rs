//! SQL for the deny-list's durable copy.

macro_rules! impl_denial_store {
    ($store:ty, $db:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::DenialStore for $store {
            async fn insert_denial(
                &self,
                key: &str,
                until: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::StoreResult<()> {
                use $crate::store::{map_sqlx, rows};
                sqlx::query("INSERT INTO denials (key, until_at) VALUES ($1, $2)")
                    .bind(key)
                    .bind(rows::ms(until))
                    .execute(&self.pool)
                    .await
                    .map_err(map_sqlx)
                    .map(|_| ())
            }

            async fn denials_after(
                &self,
                after_id: i64,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::StoreResult<Vec<(i64, String, chrono::DateTime<chrono::Utc>)>> {
                use $crate::store::{map_sqlx, rows};
                let found: Vec<(i64, String, i64)> = sqlx::query_as(
                    "SELECT id, key, until_at FROM denials WHERE id > $1 AND until_at > $2 ORDER BY id",
                )
                .bind(after_id)
                .bind(rows::ms(now))
                .fetch_all(&self.pool)
                .await
                .map_err(map_sqlx)?;
                found
                    .into_iter()
                    .map(|(id, key, until)| Ok((id, key, rows::time(until)?)))
                    .collect()
            }
        }
    };
}

pub(crate) use impl_denial_store;
