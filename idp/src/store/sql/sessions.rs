//! SQL for provider sessions and consents.

macro_rules! impl_session_store {
    ($store:ty, $db:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::SessionStore for $store {
            async fn create_session(&self, s: &$crate::domain::session::Session) -> $crate::store::StoreResult<()> {
                use $crate::store::{map_sqlx, rows};
                sqlx::query(concat!(
                    "INSERT INTO sessions (",
                    $crate::store::rows::session_columns!(),
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
                ))
                .bind(&s.id_hash)
                .bind(&s.sid)
                .bind(&s.user_id)
                .bind(rows::ms(s.auth_time))
                .bind(rows::json(&s.amr))
                .bind(s.ip.as_deref())
                .bind(s.user_agent.as_deref())
                .bind(rows::ms(s.created_at))
                .bind(rows::ms(s.last_seen_at))
                .bind(rows::ms(s.expires_at))
                .bind(s.upstream.as_ref().map(|u| u.issuer.as_str()))
                .bind(s.upstream.as_ref().and_then(|u| u.sid.as_deref()))
                .execute(&self.pool)
                .await
                .map_err(map_sqlx)?;
                Ok(())
            }

            async fn sessions_from_upstream(
                &self,
                issuer: &str,
                upstream_sid: Option<&str>,
                user_id: Option<&str>,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::StoreResult<Vec<$crate::domain::session::Session>> {
                use $crate::store::{map_sqlx, rows};
                // '' stands for "any": a typed parameter on both backends, unlike NULL.
                let found: Vec<rows::SessionRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    $crate::store::rows::session_columns!(),
                    " FROM sessions WHERE upstream_issuer = $1 AND ($2 = '' OR upstream_sid = $2) \
                     AND ($3 = '' OR user_id = $3) AND expires_at > $4"
                ))
                .bind(issuer)
                .bind(upstream_sid.unwrap_or_default())
                .bind(user_id.unwrap_or_default())
                .bind(rows::ms(now))
                .fetch_all(&self.pool)
                .await
                .map_err(map_sqlx)?;
                found.into_iter().map(TryInto::try_into).collect()
            }

            async fn upgrade_session(
                &self,
                id_hash: &str,
                amr: &[String],
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::StoreResult<bool> {
                use $crate::store::{map_sqlx, rows};
                let done = sqlx::query("UPDATE sessions SET amr = $1, auth_time = $2, last_seen_at = $2 WHERE id_hash = $3")
                    .bind(rows::json(&amr))
                    .bind(rows::ms(now))
                    .bind(id_hash)
                    .execute(&self.pool)
                    .await
                    .map_err(map_sqlx)?;
                Ok(done.rows_affected() == 1)
            }

            async fn find_session(
                &self,
                id_hash: &str,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::StoreResult<Option<$crate::domain::session::Session>> {
                use $crate::store::{map_sqlx, rows};
                let row: Option<rows::SessionRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    $crate::store::rows::session_columns!(),
                    " FROM sessions WHERE id_hash = $1 AND expires_at > $2"
                ))
                .bind(id_hash)
                .bind(rows::ms(now))
                .fetch_optional(&self.pool)
                .await
                .map_err(map_sqlx)?;
                row.map(TryInto::try_into).transpose()
            }

            async fn delete_session(&self, id_hash: &str) -> $crate::store::StoreResult<()> {
                sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
                    .bind(id_hash)
                    .execute(&self.pool)
                    .await
                    .map_err($crate::store::map_sqlx)?;
                Ok(())
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::ConsentStore for $store {
            async fn find_consent(&self, user_id: &str, client_id: &str) -> $crate::store::StoreResult<Option<Vec<String>>> {
                let scopes: Option<String> =
                    sqlx::query_scalar("SELECT scopes FROM consents WHERE user_id = $1 AND client_id = $2")
                        .bind(user_id)
                        .bind(client_id)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err($crate::store::map_sqlx)?;
                scopes
                    .map(|s| serde_json::from_str(&s).map_err(|e| $crate::store::StoreError::Corrupt(format!("consent scopes: {e}"))))
                    .transpose()
            }

            async fn save_consent(
                &self,
                user_id: &str,
                client_id: &str,
                scopes: &[String],
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::StoreResult<()> {
                use $crate::store::rows;
                sqlx::query(
                    "INSERT INTO consents (user_id, client_id, scopes, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) \
                     ON CONFLICT (user_id, client_id) DO UPDATE SET scopes = excluded.scopes, updated_at = excluded.updated_at",
                )
                .bind(user_id)
                .bind(client_id)
                .bind(rows::json(&scopes))
                .bind(rows::ms(now))
                .execute(&self.pool)
                .await
                .map_err($crate::store::map_sqlx)?;
                Ok(())
            }
        }
    };
}
pub(crate) use impl_session_store;
