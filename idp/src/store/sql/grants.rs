//! SQL for grants, authorization codes and refresh tokens.

macro_rules! impl_grant_store {
    ($store:ty, $db:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::GrantStore for $store {
            async fn create_grant(&self, g: &$crate::domain::grant::Grant) -> $crate::store::StoreResult<()> {
                use $crate::store::{map_sqlx, rows};
                sqlx::query(concat!(
                    "INSERT INTO grants (",
                    $crate::store::rows::grant_columns!(),
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
                ))
                .bind(&g.id)
                .bind(&g.client_id)
                .bind(g.user_id.as_deref())
                .bind(g.session_id.as_deref())
                .bind(&g.scope)
                .bind(g.offline)
                .bind(rows::ms(g.created_at))
                .bind(rows::ms(g.expires_at))
                .bind(g.revoked_at.map(rows::ms))
                .execute(&self.pool)
                .await
                .map_err(map_sqlx)?;
                Ok(())
            }

            async fn find_grant(&self, id: &str) -> $crate::store::StoreResult<Option<$crate::domain::grant::Grant>> {
                use $crate::store::{map_sqlx, rows};
                let row: Option<rows::GrantRow> =
                    sqlx::query_as(concat!("SELECT ", $crate::store::rows::grant_columns!(), " FROM grants WHERE id = $1"))
                        .bind(id)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(map_sqlx)?;
                row.map(TryInto::try_into).transpose()
            }

            async fn revoke_grant(&self, id: &str, now: chrono::DateTime<chrono::Utc>) -> $crate::store::StoreResult<bool> {
                use $crate::store::{map_sqlx, rows};
                let mut tx = self.pool.begin().await.map_err(map_sqlx)?;
                let done = sqlx::query("UPDATE grants SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                    .bind(rows::ms(now))
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_sqlx)?;
                sqlx::query("UPDATE refresh_tokens SET state = 'revoked' WHERE grant_id = $1 AND state <> 'revoked'")
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_sqlx)?;
                tx.commit().await.map_err(map_sqlx)?;
                Ok(done.rows_affected() == 1)
            }

            async fn insert_code(&self, c: &$crate::domain::grant::AuthorizationCode) -> $crate::store::StoreResult<()> {
                use $crate::store::{map_sqlx, rows};
                sqlx::query(concat!(
                    "INSERT INTO authorization_codes (",
                    $crate::store::rows::code_columns!(),
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
                ))
                .bind(&c.code_hash)
                .bind(&c.grant_id)
                .bind(&c.client_id)
                .bind(&c.user_id)
                .bind(&c.session_id)
                .bind(&c.redirect_uri)
                .bind(&c.scope)
                .bind(c.nonce.as_deref())
                .bind(c.code_challenge.as_deref())
                .bind(c.code_challenge_method.as_deref())
                .bind(rows::ms(c.auth_time))
                .bind(rows::json(&c.amr))
                .bind(rows::ms(c.created_at))
                .bind(rows::ms(c.expires_at))
                .bind(c.consumed_at.map(rows::ms))
                .execute(&self.pool)
                .await
                .map_err(map_sqlx)?;
                Ok(())
            }

            async fn consume_code(
                &self,
                code_hash: &str,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::StoreResult<$crate::domain::grant::CodeUse> {
                use $crate::domain::grant::CodeUse;
                use $crate::store::{map_sqlx, rows};
                // One conditional UPDATE decides: of concurrent redemptions exactly one matches.
                let first: Option<rows::CodeRow> = sqlx::query_as(concat!(
                    "UPDATE authorization_codes SET consumed_at = $1 WHERE code_hash = $2 AND consumed_at IS NULL RETURNING ",
                    $crate::store::rows::code_columns!()
                ))
                .bind(rows::ms(now))
                .bind(code_hash)
                .fetch_optional(&self.pool)
                .await
                .map_err(map_sqlx)?;
                if let Some(row) = first {
                    return Ok(CodeUse::First(row.try_into()?));
                }
                let earlier: Option<rows::CodeRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    $crate::store::rows::code_columns!(),
                    " FROM authorization_codes WHERE code_hash = $1"
                ))
                .bind(code_hash)
                .fetch_optional(&self.pool)
                .await
                .map_err(map_sqlx)?;
                Ok(match earlier {
                    Some(row) => CodeUse::Replayed(row.try_into()?),
                    None => CodeUse::Unknown,
                })
            }

            async fn insert_refresh_token(&self, t: &$crate::domain::grant::RefreshToken) -> $crate::store::StoreResult<()> {
                insert_refresh_token(&self.pool, t).await
            }

            async fn find_refresh_token(
                &self,
                token_hash: &str,
            ) -> $crate::store::StoreResult<Option<$crate::domain::grant::RefreshToken>> {
                use $crate::store::{map_sqlx, rows};
                let row: Option<rows::RefreshRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    $crate::store::rows::refresh_columns!(),
                    " FROM refresh_tokens WHERE token_hash = $1"
                ))
                .bind(token_hash)
                .fetch_optional(&self.pool)
                .await
                .map_err(map_sqlx)?;
                row.map(TryInto::try_into).transpose()
            }

            async fn rotate_refresh_token(
                &self,
                old_hash: &str,
                successor: &$crate::domain::grant::RefreshToken,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::StoreResult<bool> {
                use $crate::store::{map_sqlx, rows};
                let mut tx = self.pool.begin().await.map_err(map_sqlx)?;
                // Compare-and-set: only an active token is retired, so of concurrent
                // rotations of the same token exactly one succeeds.
                let retired = sqlx::query(
                    "UPDATE refresh_tokens SET state = 'rotated', rotated_at = $1, last_used_at = $1 \
                     WHERE token_hash = $2 AND state = 'active'",
                )
                .bind(rows::ms(now))
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
        }

        async fn insert_refresh_token<'e, E>(executor: E, t: &$crate::domain::grant::RefreshToken) -> $crate::store::StoreResult<()>
        where
            E: sqlx::Executor<'e, Database = $db>,
        {
            use $crate::store::{map_sqlx, rows};
            sqlx::query(concat!(
                "INSERT INTO refresh_tokens (",
                $crate::store::rows::refresh_columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
            ))
            .bind(&t.token_hash)
            .bind(&t.grant_id)
            .bind(&t.client_id)
            .bind(t.user_id.as_deref())
            .bind(t.generation)
            .bind(t.parent_hash.as_deref())
            .bind(t.state.as_str())
            .bind(&t.scope)
            .bind(rows::ms(t.created_at))
            .bind(rows::ms(t.expires_at))
            .bind(t.last_used_at.map(rows::ms))
            .bind(t.rotated_at.map(rows::ms))
            .execute(executor)
            .await
            .map_err(map_sqlx)?;
            Ok(())
        }
    };
}
pub(crate) use impl_grant_store;
