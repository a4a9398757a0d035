//! SQL for second factors and recovery codes.

macro_rules! impl_mfa_store {
    ($store:ty, $db:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::mfa::MfaStore for $store {
            async fn insert_factor(&self, f: &$crate::domain::mfa::Factor) -> $crate::store::StoreResult<()> {
                use $crate::store::{map_sqlx, rows};
                let mut tx = self.pool.begin().await.map_err(map_sqlx)?;
                sqlx::query("DELETE FROM mfa_factors WHERE user_id = $1 AND confirmed_at IS NULL")
                    .bind(f.user_id.to_string())
                    .execute(&mut *tx)
                    .await
                    .map_err(map_sqlx)?;
                sqlx::query(
                    "INSERT INTO mfa_factors (id, user_id, kind, name, secret, created_at, confirmed_at, \
                     last_used_at, last_used_step, credential_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(f.id.to_string())
                .bind(f.user_id.to_string())
                .bind(f.kind.as_str())
                .bind(&f.name)
                .bind(&f.secret)
                .bind(rows::ms(f.created_at))
                .bind(f.confirmed_at.map(rows::ms))
                .bind(f.last_used_at.map(rows::ms))
                .bind(f.last_used_step)
                .bind(&f.credential_id)
                .execute(&mut *tx)
                .await
                .map_err(map_sqlx)?;
                tx.commit().await.map_err(map_sqlx)
            }

            async fn factors_of(
                &self,
                user_id: uuid::Uuid,
            ) -> $crate::store::StoreResult<Vec<$crate::domain::mfa::Factor>> {
                use $crate::store::{map_sqlx, rows};
                let found: Vec<rows::FactorRow> = sqlx::query_as(
                    "SELECT id, user_id, kind, name, secret, created_at, confirmed_at, last_used_at, last_used_step, \
                     credential_id FROM mfa_factors WHERE user_id = $1 ORDER BY created_at, id",
                )
                .bind(user_id.to_string())
                .fetch_all(&self.pool)
                .await
                .map_err(map_sqlx)?;
                found.into_iter().map(TryInto::try_into).collect()
            }

            async fn find_passkey(
                &self,
                credential_id: &str,
            ) -> $crate::store::StoreResult<Option<$crate::domain::mfa::Factor>> {
                use $crate::store::{map_sqlx, rows};
                let found: Option<rows::FactorRow> = sqlx::query_as(
                    "SELECT id, user_id, kind, name, secret, created_at, confirmed_at, last_used_at, last_used_step, \
                     credential_id FROM mfa_factors WHERE credential_id = $1 AND kind = 'passkey' \
                     AND confirmed_at IS NOT NULL",
                )
                .bind(credential_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(map_sqlx)?;
                found.map(TryInto::try_into).transpose()
            }

            async fn record_passkey_use(
                &self,
                id: uuid::Uuid,
                secret: Option<&[u8]>,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::StoreResult<bool> {
                use $crate::store::{map_sqlx, rows};
                let done = sqlx::query(
                    "UPDATE mfa_factors SET last_used_at = $1, secret = COALESCE($2, secret) \
                     WHERE id = $3 AND kind = 'passkey' AND confirmed_at IS NOT NULL",
                )
                .bind(rows::ms(now))
                .bind(secret)
                .bind(id.to_string())
                .execute(&self.pool)
                .await
                .map_err(map_sqlx)?;
                Ok(done.rows_affected() == 1)
            }

            async fn spend_challenge(
                &self,
                challenge_hash: &str,
                expires_at: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::StoreResult<bool> {
                use $crate::store::{map_sqlx, rows};
                let done = sqlx::query(
                    "INSERT INTO spent_challenges (challenge_hash, expires_at) VALUES ($1, $2) \
                     ON CONFLICT (challenge_hash) DO NOTHING",
                )
                .bind(challenge_hash)
                .bind(rows::ms(expires_at))
                .execute(&self.pool)
                .await
                .map_err(map_sqlx)?;
                Ok(done.rows_affected() == 1)
            }

            async fn confirm_factor(
                &self,
                id: uuid::Uuid,
                step: i64,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::StoreResult<bool> {
                use $crate::store::{map_sqlx, rows};
                let done = sqlx::query(
                    "UPDATE mfa_factors SET confirmed_at = $1, last_used_at = $1, last_used_step = $2 \
                     WHERE id = $3 AND confirmed_at IS NULL",
                )
                .bind(rows::ms(now))
                .bind(step)
                .bind(id.to_string())
                .execute(&self.pool)
                .await
                .map_err(map_sqlx)?;
                Ok(done.rows_affected() == 1)
            }

            async fn use_totp_step(
                &self,
                id: uuid::Uuid,
                step: i64,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::StoreResult<bool> {
                use $crate::store::{map_sqlx, rows};
                let done = sqlx::query(
                    "UPDATE mfa_factors SET last_used_at = $1, last_used_step = $2 WHERE id = $3 \
                     AND confirmed_at IS NOT NULL AND (last_used_step IS NULL OR last_used_step < $2)",
                )
                .bind(rows::ms(now))
                .bind(step)
                .bind(id.to_string())
                .execute(&self.pool)
                .await
                .map_err(map_sqlx)?;
                Ok(done.rows_affected() == 1)
            }

            async fn delete_factor(&self, user_id: uuid::Uuid, id: uuid::Uuid) -> $crate::store::StoreResult<bool> {
                let done = sqlx::query("DELETE FROM mfa_factors WHERE id = $1 AND user_id = $2")
                    .bind(id.to_string())
                    .bind(user_id.to_string())
                    .execute(&self.pool)
                    .await
                    .map_err($crate::store::map_sqlx)?;
                Ok(done.rows_affected() == 1)
            }

            async fn replace_recovery_codes(
                &self,
                user_id: uuid::Uuid,
                hashes: &[String],
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::StoreResult<()> {
                use $crate::store::{map_sqlx, rows};
                let mut tx = self.pool.begin().await.map_err(map_sqlx)?;
                sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
                    .bind(user_id.to_string())
                    .execute(&mut *tx)
                    .await
                    .map_err(map_sqlx)?;
                for hash in hashes {
                    sqlx::query("INSERT INTO recovery_codes (user_id, code_hash, created_at) VALUES ($1, $2, $3)")
                        .bind(user_id.to_string())
                        .bind(hash)
                        .bind(rows::ms(now))
                        .execute(&mut *tx)
                        .await
                        .map_err(map_sqlx)?;
                }
                tx.commit().await.map_err(map_sqlx)
            }

            async fn use_recovery_code(
                &self,
                user_id: uuid::Uuid,
                hash: &str,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::StoreResult<bool> {
                use $crate::store::{map_sqlx, rows};
                let done = sqlx::query(
                    "UPDATE recovery_codes SET used_at = $1 WHERE user_id = $2 AND code_hash = $3 AND used_at IS NULL",
                )
                .bind(rows::ms(now))
                .bind(user_id.to_string())
                .bind(hash)
                .execute(&self.pool)
                .await
                .map_err(map_sqlx)?;
                Ok(done.rows_affected() == 1)
            }

            async fn recovery_codes_left(&self, user_id: uuid::Uuid) -> $crate::store::StoreResult<i64> {
                sqlx::query_scalar("SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL")
                    .bind(user_id.to_string())
                    .fetch_one(&self.pool)
                    .await
                    .map_err($crate::store::map_sqlx)
            }

            async fn reset_mfa(&self, user_id: uuid::Uuid) -> $crate::store::StoreResult<(u64, u64)> {
                use $crate::store::map_sqlx;
                let mut tx = self.pool.begin().await.map_err(map_sqlx)?;
                let factors = sqlx::query("DELETE FROM mfa_factors WHERE user_id = $1 AND confirmed_at IS NOT NULL")
                    .bind(user_id.to_string())
                    .execute(&mut *tx)
                    .await
                    .map_err(map_sqlx)?
                    .rows_affected();
                sqlx::query("DELETE FROM mfa_factors WHERE user_id = $1")
                    .bind(user_id.to_string())
                    .execute(&mut *tx)
                    .await
                    .map_err(map_sqlx)?;
                let codes = sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
                    .bind(user_id.to_string())
                    .execute(&mut *tx)
                    .await
                    .map_err(map_sqlx)?
                    .rows_affected();
                tx.commit().await.map_err(map_sqlx)?;
                Ok((factors, codes))
            }

            async fn set_mfa_enrolment_required(
                &self,
                user_id: uuid::Uuid,
                required: bool,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::StoreResult<bool> {
                use $crate::store::{map_sqlx, rows};
                let done = sqlx::query("UPDATE users SET mfa_enrolment_required = $1, updated_at = $2 WHERE id = $3")
                    .bind(required)
                    .bind(rows::ms(now))
                    .bind(user_id.to_string())
                    .execute(&self.pool)
                    .await
                    .map_err(map_sqlx)?;
                Ok(done.rows_affected() == 1)
            }

            async fn users_with_mfa(&self) -> $crate::store::StoreResult<i64> {
                sqlx::query_scalar(
                    "SELECT COUNT(DISTINCT user_id) FROM mfa_factors WHERE confirmed_at IS NOT NULL",
                )
                .fetch_one(&self.pool)
                .await
                .map_err($crate::store::map_sqlx)
            }
        }
    };
}
pub(crate) use impl_mfa_store;
