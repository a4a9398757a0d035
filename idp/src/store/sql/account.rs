//! SQL for the mail outbox and action links.

macro_rules! impl_account_store {
    ($store:ty, $db:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::account::AccountStore for $store {
            async fn enqueue_mail(&self, mail: &$crate::store::account::OutgoingMail) -> $crate::store::StoreResult<()> {
                use $crate::store::{map_sqlx, rows};
                sqlx::query(
                    "INSERT INTO mail_outbox (id, recipient, template, message, created_at, next_attempt_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $5, $6)",
                )
                .bind(mail.id.to_string())
                .bind(&mail.recipient)
                .bind(&mail.template)
                .bind(&mail.message_enc)
                .bind(rows::ms(mail.created_at))
                .bind(rows::ms(mail.expires_at))
                .execute(&self.pool)
                .await
                .map_err(map_sqlx)
                .map(|_| ())
            }

            async fn claim_mail(
                &self,
                now: chrono::DateTime<chrono::Utc>,
                lease_until: chrono::DateTime<chrono::Utc>,
                limit: u32,
            ) -> $crate::store::StoreResult<Vec<$crate::store::account::QueuedMail>> {
                use $crate::store::{map_sqlx, rows};
                // The outer WHERE repeats the due condition: on PostgreSQL a concurrent claim
                // of the same row re-checks it after the first commits, and then skips the row.
                let claimed: Vec<(String, String, String, Vec<u8>, i64)> = sqlx::query_as(
                    "UPDATE mail_outbox SET next_attempt_at = $2, attempts = attempts + 1 \
                     WHERE id IN (SELECT id FROM mail_outbox WHERE sent_at IS NULL AND failed_at IS NULL \
                                  AND next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT $3) \
                       AND sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= $1 \
                     RETURNING id, recipient, template, message, attempts",
                )
                .bind(rows::ms(now))
                .bind(rows::ms(lease_until))
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(map_sqlx)?;
                claimed
                    .into_iter()
                    .map(|(id, recipient, template, message_enc, attempts)| {
                        Ok($crate::store::account::QueuedMail {
                            id: rows::uuid(&id)?,
                            recipient,
                            template,
                            message_enc,
                            attempts,
                        })
                    })
                    .collect()
            }

            async fn mail_sent(&self, id: uuid::Uuid, now: chrono::DateTime<chrono::Utc>) -> $crate::store::StoreResult<()> {
                use $crate::store::{map_sqlx, rows};
                sqlx::query("UPDATE mail_outbox SET sent_at = $2, message = NULL, last_error = NULL WHERE id = $1")
                    .bind(id.to_string())
                    .bind(rows::ms(now))
                    .execute(&self.pool)
                    .await
                    .map_err(map_sqlx)
                    .map(|_| ())
            }

            async fn mail_failed(
                &self,
                id: uuid::Uuid,
                error: &str,
                retry_at: Option<chrono::DateTime<chrono::Utc>>,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::StoreResult<()> {
                use $crate::store::{map_sqlx, rows};
                let statement = if retry_at.is_some() {
                    "UPDATE mail_outbox SET next_attempt_at = $3, last_error = $2 WHERE id = $1"
                } else {
                    "UPDATE mail_outbox SET failed_at = $3, message = NULL, last_error = $2 WHERE id = $1"
                };
                sqlx::query(statement)
                    .bind(id.to_string())
                    .bind(error)
                    .bind(rows::ms(retry_at.unwrap_or(now)))
                    .execute(&self.pool)
                    .await
                    .map_err(map_sqlx)
                    .map(|_| ())
            }

            async fn outbox_status(&self) -> $crate::store::StoreResult<$crate::store::account::OutboxStatus> {
                use $crate::store::map_sqlx;
                let (pending, failed, sent): (i64, i64, i64) = sqlx::query_as(
                    "SELECT \
                       COALESCE(SUM(CASE WHEN sent_at IS NULL AND failed_at IS NULL THEN 1 ELSE 0 END), 0), \
                       COALESCE(SUM(CASE WHEN failed_at IS NOT NULL THEN 1 ELSE 0 END), 0), \
                       COALESCE(SUM(CASE WHEN sent_at IS NOT NULL THEN 1 ELSE 0 END), 0) \
                     FROM mail_outbox",
                )
                .fetch_one(&self.pool)
                .await
                .map_err(map_sqlx)?;
                let last_error: Option<(Option<String>,)> = sqlx::query_as(
                    "SELECT last_error FROM mail_outbox WHERE sent_at IS NULL AND last_error IS NOT NULL \
                     ORDER BY next_attempt_at DESC LIMIT 1",
                )
                .fetch_optional(&self.pool)
                .await
                .map_err(map_sqlx)?;
                Ok($crate::store::account::OutboxStatus {
                    pending,
                    failed,
                    sent,
                    last_error: last_error.and_then(|(e,)| e),
                })
            }

            async fn insert_action_link(&self, link: &$crate::store::account::ActionLink) -> $crate::store::StoreResult<()> {
                use $crate::store::{map_sqlx, rows};
                sqlx::query(
                    "INSERT INTO action_links (token_hash, user_id, purpose, password_fingerprint, email, \
                     created_at, expires_at, used_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(&link.token_hash)
                .bind(link.user_id.to_string())
                .bind(link.purpose.as_str())
                .bind(&link.password_fingerprint)
                .bind(&link.email)
                .bind(rows::ms(link.created_at))
                .bind(rows::ms(link.expires_at))
                .bind(link.used_at.map(rows::ms))
                .execute(&self.pool)
                .await
                .map_err(map_sqlx)
                .map(|_| ())
            }

            async fn find_action_link(
                &self,
                token_hash: &str,
            ) -> $crate::store::StoreResult<Option<$crate::store::account::ActionLink>> {
                use $crate::store::{map_sqlx, rows, StoreError};
                type Row = (String, String, String, String, Option<String>, i64, i64, Option<i64>);
                let found: Option<Row> = sqlx::query_as(
                    "SELECT token_hash, user_id, purpose, password_fingerprint, email, created_at, expires_at, used_at \
                     FROM action_links WHERE token_hash = $1",
                )
                .bind(token_hash)
                .fetch_optional(&self.pool)
                .await
                .map_err(map_sqlx)?;
                let Some((token_hash, user_id, purpose, password_fingerprint, email, created_at, expires_at, used_at)) = found
                else {
                    return Ok(None);
                };
                Ok(Some($crate::store::account::ActionLink {
                    token_hash,
                    user_id: rows::uuid(&user_id)?,
                    purpose: $crate::store::account::LinkPurpose::parse(&purpose)
                        .ok_or_else(|| StoreError::Corrupt(format!("link purpose {purpose:?}")))?,
                    password_fingerprint,
                    email,
                    created_at: rows::time(created_at)?,
                    expires_at: rows::time(expires_at)?,
                    used_at: used_at.map(rows::time).transpose()?,
                }))
            }

            async fn use_action_link(
                &self,
                token_hash: &str,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::StoreResult<bool> {
                use $crate::store::{map_sqlx, rows};
                let done = sqlx::query(
                    "UPDATE action_links SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2",
                )
                .bind(token_hash)
                .bind(rows::ms(now))
                .execute(&self.pool)
                .await
                .map_err(map_sqlx)?;
                Ok(done.rows_affected() == 1)
            }

            async fn retire_action_links(
                &self,
                user_id: uuid::Uuid,
                purpose: $crate::store::account::LinkPurpose,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::StoreResult<u64> {
                use $crate::store::{map_sqlx, rows};
                let done = sqlx::query(
                    "UPDATE action_links SET used_at = $3 WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL",
                )
                .bind(user_id.to_string())
                .bind(purpose.as_str())
                .bind(rows::ms(now))
                .execute(&self.pool)
                .await
                .map_err(map_sqlx)?;
                Ok(done.rows_affected())
            }

            async fn mark_email_verified(
                &self,
                user_id: uuid::Uuid,
                email: &str,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::StoreResult<bool> {
                use $crate::store::{map_sqlx, rows};
                let done = sqlx::query(
                    "UPDATE users SET email_verified = TRUE, updated_at = $3 WHERE id = $1 AND email = $2",
                )
                .bind(user_id.to_string())
                .bind(email)
                .bind(rows::ms(now))
                .execute(&self.pool)
                .await
                .map_err(map_sqlx)?;
                Ok(done.rows_affected() == 1)
            }
        }
    };
}

pub(crate) use impl_account_store;
