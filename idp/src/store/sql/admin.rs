//! SQL for the admin API.

macro_rules! impl_admin_store {
    ($store:ty, $db:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::AdminStore for $store {
            async fn update_user_profile(
                &self,
                id: uuid::Uuid,
                p: &$crate::store::UserProfile,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::StoreResult<bool> {
                use $crate::store::{map_sqlx, rows};
                let done = sqlx::query(
                    "UPDATE users SET email = $1, email_key = $2, email_verified = $3, name = $4, roles = $5, \
                     updated_at = $6 WHERE id = $7",
                )
                .bind(p.email.as_ref().map(|e| e.as_str().to_string()))
                .bind(p.email.as_ref().map(|e| e.key()))
                .bind(p.email_verified)
                .bind(p.name.as_deref())
                .bind(rows::json(&p.roles))
                .bind(rows::ms(now))
                .bind(id.to_string())
                .execute(&self.pool)
                .await
                .map_err(map_sqlx)?;
                Ok(done.rows_affected() == 1)
            }

            async fn replace_password(
                &self,
                id: uuid::Uuid,
                phc: &str,
                must_change: bool,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::StoreResult<bool> {
                use $crate::store::{map_sqlx, rows};
                let mut tx = self.pool.begin().await.map_err(map_sqlx)?;
                let done = sqlx::query("UPDATE users SET must_change_password = $1, updated_at = $2 WHERE id = $3")
                    .bind(must_change)
                    .bind(rows::ms(now))
                    .bind(id.to_string())
                    .execute(&mut *tx)
                    .await
                    .map_err(map_sqlx)?;
                if done.rows_affected() != 1 {
                    return Ok(false);
                }
                sqlx::query(
                    "INSERT INTO password_credentials (user_id, phc, updated_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (user_id) DO UPDATE SET phc = excluded.phc, updated_at = excluded.updated_at",
                )
                .bind(id.to_string())
                .bind(phc)
                .bind(rows::ms(now))
                .execute(&mut *tx)
                .await
                .map_err(map_sqlx)?;
                tx.commit().await.map_err(map_sqlx)?;
                Ok(true)
            }

            async fn delete_user(&self, id: uuid::Uuid) -> $crate::store::StoreResult<bool> {
                let done = sqlx::query("DELETE FROM users WHERE id = $1")
                    .bind(id.to_string())
                    .execute(&self.pool)
                    .await
                    .map_err($crate::store::map_sqlx)?;
                Ok(done.rows_affected() == 1)
            }

            async fn count_users(&self) -> $crate::store::StoreResult<i64> {
                sqlx::query_scalar("SELECT COUNT(*) FROM users")
                    .fetch_one(&self.pool)
                    .await
                    .map_err($crate::store::map_sqlx)
            }

            async fn count_clients(&self) -> $crate::store::StoreResult<i64> {
                sqlx::query_scalar("SELECT COUNT(*) FROM clients")
                    .fetch_one(&self.pool)
                    .await
                    .map_err($crate::store::map_sqlx)
            }

            async fn count_active_sessions(&self, now: chrono::DateTime<chrono::Utc>) -> $crate::store::StoreResult<i64> {
                sqlx::query_scalar("SELECT COUNT(*) FROM sessions WHERE expires_at > $1")
                    .bind($crate::store::rows::ms(now))
                    .fetch_one(&self.pool)
                    .await
                    .map_err($crate::store::map_sqlx)
            }

            async fn login_failures_of(
                &self,
                account_key: &str,
            ) -> $crate::store::StoreResult<(i64, Option<chrono::DateTime<chrono::Utc>>)> {
                use $crate::store::{map_sqlx, rows};
                let (failures, locked): (i64, Option<i64>) = sqlx::query_as(
                    "SELECT CAST(COALESCE(SUM(failures), 0) AS BIGINT), MAX(locked_until) \
                     FROM login_failures WHERE account_key = $1 AND source <> $2",
                )
                .bind(account_key)
                .bind($crate::store::EVERY_SOURCE)
                .fetch_one(&self.pool)
                .await
                .map_err(map_sqlx)?;
                Ok((failures, locked.map(rows::time).transpose()?))
            }

            async fn sessions_of_user(
                &self,
                user_id: &str,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::StoreResult<Vec<$crate::domain::session::Session>> {
                use $crate::store::{map_sqlx, rows};
                let found: Vec<rows::SessionRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    $crate::store::rows::session_columns!(),
                    " FROM sessions WHERE user_id = $1 AND expires_at > $2 ORDER BY created_at DESC LIMIT 200"
                ))
                .bind(user_id)
                .bind(rows::ms(now))
                .fetch_all(&self.pool)
                .await
                .map_err(map_sqlx)?;
                found.into_iter().map(TryInto::try_into).collect()
            }

            async fn delete_sessions_of_user(&self, user_id: &str, sid: Option<&str>) -> $crate::store::StoreResult<u64> {
                let done = sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND ($2 IS NULL OR sid = $2)")
                    .bind(user_id)
                    .bind(sid)
                    .execute(&self.pool)
                    .await
                    .map_err($crate::store::map_sqlx)?;
                Ok(done.rows_affected())
            }

            async fn grants_of_user(
                &self,
                user_id: &str,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::StoreResult<Vec<$crate::store::GrantFamily>> {
                use $crate::store::{map_sqlx, rows};
                type Row = (String, String, String, bool, i64, i64, Option<i64>, Option<i64>, Option<String>, Option<String>);
                let found: Vec<Row> = sqlx::query_as(
                    "SELECT g.id, g.client_id, g.scope, g.offline, g.created_at, g.expires_at, \
                     (SELECT MAX(r.created_at) FROM refresh_tokens r WHERE r.grant_id = g.id), \
                     (SELECT MAX(r.generation) FROM refresh_tokens r WHERE r.grant_id = g.id), \
                     (SELECT s.ip FROM sessions s WHERE s.sid = g.session_id), g.session_id \
                     FROM grants g WHERE g.user_id = $1 AND g.revoked_at IS NULL AND g.expires_at > $2 \
                     ORDER BY g.created_at DESC LIMIT 200",
                )
                .bind(user_id)
                .bind(rows::ms(now))
                .fetch_all(&self.pool)
                .await
                .map_err(map_sqlx)?;
                found
                    .into_iter()
                    .map(|(id, client_id, scope, offline, created, expires, last, generation, ip, session_id)| {
                        Ok($crate::store::GrantFamily {
                            id,
                            client_id,
                            scope,
                            offline,
                            created_at: rows::time(created)?,
                            expires_at: rows::time(expires)?,
                            last_used_at: rows::time(last.unwrap_or(created))?,
                            generation: generation.unwrap_or(0),
                            ip,
                            session_id,
                        })
                    })
                    .collect()
            }

            async fn consents_of_user(
                &self,
                user_id: &str,
            ) -> $crate::store::StoreResult<Vec<$crate::store::ConsentRecord>> {
                use $crate::store::{map_sqlx, rows};
                let found: Vec<(String, String, i64)> = sqlx::query_as(
                    "SELECT client_id, scopes, updated_at FROM consents WHERE user_id = $1 ORDER BY updated_at DESC",
                )
                .bind(user_id)
                .fetch_all(&self.pool)
                .await
                .map_err(map_sqlx)?;
                found
                    .into_iter()
                    .map(|(client_id, scopes, updated)| {
                        Ok($crate::store::ConsentRecord {
                            client_id,
                            scopes: serde_json::from_str(&scopes)
                                .map_err(|e| $crate::store::StoreError::Corrupt(format!("consent scopes: {e}")))?,
                            updated_at: rows::time(updated)?,
                        })
                    })
                    .collect()
            }

            async fn delete_consent(&self, user_id: &str, client_id: &str) -> $crate::store::StoreResult<bool> {
                let done = sqlx::query("DELETE FROM consents WHERE user_id = $1 AND client_id = $2")
                    .bind(user_id)
                    .bind(client_id)
                    .execute(&self.pool)
                    .await
                    .map_err($crate::store::map_sqlx)?;
                Ok(done.rows_affected() > 0)
            }

            async fn update_client(&self, c: &$crate::domain::client::Client) -> $crate::store::StoreResult<bool> {
                use $crate::store::{map_sqlx, rows};
                let done = sqlx::query(
                    "UPDATE clients SET name = $1, redirect_uris = $2, post_logout_redirect_uris = $3, \
                     backchannel_logout_uri = $4, grant_types = $5, scopes = $6, token_endpoint_auth_method = $7, \
                     id_token_signed_response_alg = $8, access_token_signing_alg = $9, first_party = $10, \
                     require_pkce = $11, access_token_ttl_s = $12, refresh_token_ttl_s = $13, \
                     refresh_idle_ttl_s = $14, refresh_reuse_window_s = $15, updated_at = $16, \
                     rate_limit_token_per_minute = $17, rate_limit_introspect_per_minute = $18, mfa = $19, \
                     require_verified_email = $20, jwks = $21, jwks_uri = $22, secret_sealed = $23, require_par = $24, \
                     dpop_bound_access_tokens = $25, profile = $26, resources = $27 WHERE id = $28",
                )
                .bind(&c.name)
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
                .bind(&c.id)
                .execute(&self.pool)
                .await
                .map_err(map_sqlx)?;
                Ok(done.rows_affected() == 1)
            }

            async fn set_client_secret(
                &self,
                id: &str,
                secret_hash: &str,
                secret_sealed: Option<&[u8]>,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::StoreResult<bool> {
                let done = sqlx::query(
                    "UPDATE clients SET secret_hash = $1, secret_sealed = $4, updated_at = $2 \
                     WHERE id = $3 AND client_type = 'confidential'",
                )
                .bind(secret_hash)
                .bind($crate::store::rows::ms(now))
                .bind(id)
                .bind(secret_sealed)
                .execute(&self.pool)
                .await
                .map_err($crate::store::map_sqlx)?;
                Ok(done.rows_affected() == 1)
            }

            async fn all_signing_keys(&self) -> $crate::store::StoreResult<Vec<$crate::store::StoredKey>> {
                use $crate::store::{map_sqlx, rows};
                let found: Vec<rows::KeyRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    $crate::store::rows::key_columns!(),
                    " FROM signing_keys ORDER BY created_at DESC, kid LIMIT 500"
                ))
                .fetch_all(&self.pool)
                .await
                .map_err(map_sqlx)?;
                found.into_iter().map(TryInto::try_into).collect()
            }

            async fn event_counts(
                &self,
                from: chrono::DateTime<chrono::Utc>,
                until: chrono::DateTime<chrono::Utc>,
                bucket_ms: i64,
                types: &[&str],
            ) -> $crate::store::StoreResult<Vec<$crate::store::EventCount>> {
                use $crate::store::{map_sqlx, rows};
                let mut sql = sqlx::QueryBuilder::<$db>::new("SELECT (occurred_at / ");
                sql.push_bind(bucket_ms).push(") * ").push_bind(bucket_ms)
                    .push(" AS bucket, event_type, outcome, COUNT(*) FROM security_events WHERE occurred_at >= ")
                    .push_bind(rows::ms(from)).push(" AND occurred_at < ").push_bind(rows::ms(until));
                if !types.is_empty() {
                    sql.push(" AND event_type IN (");
                    let mut list = sql.separated(", ");
                    for t in types {
                        list.push_bind(t.to_string());
                    }
                    sql.push(")");
                }
                sql.push(" GROUP BY bucket, event_type, outcome ORDER BY bucket, event_type, outcome");
                let found: Vec<(i64, String, String, i64)> =
                    sql.build_query_as().fetch_all(&self.pool).await.map_err(map_sqlx)?;
                found
                    .into_iter()
                    .map(|(bucket, event_type, outcome, count)| {
                        Ok($crate::store::EventCount { bucket: rows::time(bucket)?, event_type, outcome, count })
                    })
                    .collect()
            }

            async fn top_failure_sources(
                &self,
                from: chrono::DateTime<chrono::Utc>,
                until: chrono::DateTime<chrono::Utc>,
                limit: u32,
            ) -> $crate::store::StoreResult<Vec<(String, i64)>> {
                use $crate::store::{map_sqlx, rows};
                sqlx::query_as(
                    "SELECT ip, COUNT(*) AS failures FROM security_events \
                     WHERE outcome = 'failure' AND ip IS NOT NULL AND occurred_at >= $1 AND occurred_at < $2 \
                     GROUP BY ip ORDER BY failures DESC, ip LIMIT $3",
                )
                .bind(rows::ms(from))
                .bind(rows::ms(until))
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(map_sqlx)
            }
        }
    };
}
pub(crate) use impl_admin_store;
