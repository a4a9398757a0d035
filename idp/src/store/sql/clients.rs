//! SQL for clients.

macro_rules! impl_client_store {
    ($store:ty, $db:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::ClientStore for $store {
            async fn create_client(
                &self,
                c: &$crate::domain::client::Client,
            ) -> $crate::store::StoreResult<()> {
                use $crate::store::{map_sqlx, rows};
                sqlx::query(concat!(
                    "INSERT INTO clients (",
                    $crate::store::rows::client_columns!(),
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, \
                     $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32)"
                ))
                .bind(&c.id)
                .bind(&c.name)
                .bind(c.client_type.as_str())
                .bind(c.secret_hash.as_deref())
                .bind(rows::json(&c.redirect_uris))
                .bind(rows::json(&c.post_logout_redirect_uris))
                .bind(c.backchannel_logout_uri.as_deref())
                .bind(rows::json(&c.grant_types))
                .bind(rows::json(&c.scopes))
                .bind(c.token_endpoint_auth_method.as_str())
                .bind(&c.id_token_signed_response_alg)
                .bind(c.access_token_signing_alg.as_deref())
                .bind(c.first_party)
                .bind(c.require_pkce)
                .bind(c.access_token_ttl_s)
                .bind(c.refresh_token_ttl_s)
                .bind(c.refresh_idle_ttl_s)
                .bind(c.refresh_reuse_window_s)
                .bind(c.theme.as_deref())
                .bind(rows::ms(c.created_at))
                .bind(rows::ms(c.updated_at))
                .bind(c.rate_limit_token_per_minute)
                .bind(c.rate_limit_introspect_per_minute)
                .bind(c.mfa.map(|m| m.as_str()))
                .bind(c.require_verified_email)
                .bind(c.jwks.as_ref().map(rows::json))
                .bind(c.jwks_uri.as_deref())
                .bind(c.secret_sealed.as_deref())
                .bind(c.require_par)
                .bind(c.dpop_bound_access_tokens)
                .bind(c.profile.map(|p| p.as_str()))
                .bind(rows::json(&c.resources))
                .execute(&self.pool)
                .await
                .map_err(map_sqlx)?;
                Ok(())
            }

            async fn find_client(
                &self,
                id: &str,
            ) -> $crate::store::StoreResult<Option<$crate::domain::client::Client>> {
                use $crate::store::{map_sqlx, rows};
                let row: Option<rows::ClientRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    $crate::store::rows::client_columns!(),
                    " FROM clients WHERE id = $1"
                ))
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err(map_sqlx)?;
                row.map(TryInto::try_into).transpose()
            }

            async fn list_clients(&self) -> $crate::store::StoreResult<Vec<$crate::domain::client::Client>> {
                use $crate::store::{map_sqlx, rows};
                let found: Vec<rows::ClientRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    $crate::store::rows::client_columns!(),
                    " FROM clients ORDER BY created_at, id"
                ))
                .fetch_all(&self.pool)
                .await
                .map_err(map_sqlx)?;
                found.into_iter().map(TryInto::try_into).collect()
            }

            async fn delete_client(&self, id: &str) -> $crate::store::StoreResult<bool> {
                // Codes, grants, refresh tokens and consents go with it (ON DELETE CASCADE).
                let done = sqlx::query("DELETE FROM clients WHERE id = $1")
                    .bind(id)
                    .execute(&self.pool)
                    .await
                    .map_err($crate::store::map_sqlx)?;
                Ok(done.rows_affected() == 1)
            }
        }
    };
}
pub(crate) use impl_client_store;
