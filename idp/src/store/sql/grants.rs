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
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
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
                .bind(g.auth_time.map(rows::ms))
                .bind(rows::json(&g.amr))
                .bind(g.dpop_jkt.as_deref())
                .bind(rows::json(&g.resources))
                .execute(&self.pool)
                .await
                .map_err(map_sqlx)?;
                Ok(())
            }

            async fn bind_grant_dpop_key(&self, id: &str, jkt: &str) -> $crate::store::StoreResult<()> {
                sqlx::query("UPDATE grants SET dpop_jkt = $1 WHERE id = $2 AND dpop_jkt IS NULL")
                    .bind(jkt)
                    .bind(id)
                    .execute(&self.pool)
                    .await
                    .map_err($crate::store::map_sqlx)
                    .map(|_| ())
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

            async fn find_code(
                &self,
                code_hash: &str,
            ) -> $crate::store::StoreResult<Option<$crate::domain::grant::AuthorizationCode>> {
                use $crate::store::map_sqlx;
                let row: Option<$crate::store::rows::CodeRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    $crate::store::rows::code_columns!(),
                    " FROM authorization_codes WHERE code_hash = $1"
                ))
                .bind(code_hash)
                .fetch_optional(&self.pool)
                .await
                .map_err(map_sqlx)?;
                row.map(TryInto::try_into).transpose()
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
                Ok(match $crate::store::GrantStore::find_code(self, code_hash).await? {
                    Some(code) => CodeUse::Replayed(code),
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

            async fn find_refresh_family(
                &self,
                token_hash: &str,
            ) -> $crate::store::StoreResult<Option<$crate::store::RefreshFamily>> {
                use $crate::store::{map_sqlx, rows};
                let row: Option<rows::RefreshFamilyRow> =
                    sqlx::query_as(concat!($crate::store::rows::refresh_family_select!(), " WHERE t.token_hash = $1"))
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
                response_enc: Option<&[u8]>,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::StoreResult<bool> {
                self.rotate_refresh_token_atomically(old_hash, successor, response_enc, now).await
            }

            async fn rotate_refresh_token_if_valid(
                &self,
                rotation: &$crate::store::RefreshRotation<'_>,
            ) -> $crate::store::StoreResult<Option<$crate::store::RotationAttempt>> {
                self.rotate_refresh_token_checked(rotation).await
            }

            async fn grants_of_session(&self, sid: &str) -> $crate::store::StoreResult<Vec<$crate::domain::grant::Grant>> {
                use $crate::store::{map_sqlx, rows};
                let found: Vec<rows::GrantRow> =
                    sqlx::query_as(concat!("SELECT ", $crate::store::rows::grant_columns!(), " FROM grants WHERE session_id = $1"))
                        .bind(sid)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(map_sqlx)?;
                found.into_iter().map(TryInto::try_into).collect()
            }

            async fn delete_expired(
                &self,
                now: chrono::DateTime<chrono::Utc>,
                batch: u32,
            ) -> $crate::store::StoreResult<Vec<(&'static str, u64)>> {
                use $crate::store::{map_sqlx, rows};
                // Bounded batches keep each statement short, so cleanup never holds long locks.
                const STATEMENTS: [(&str, &str); 9] = [
                    ("authorization_codes", "DELETE FROM authorization_codes WHERE code_hash IN \
                        (SELECT code_hash FROM authorization_codes WHERE expires_at < $1 LIMIT $2)"),
                    ("refresh_tokens", "DELETE FROM refresh_tokens WHERE token_hash IN \
                        (SELECT token_hash FROM refresh_tokens WHERE expires_at < $1 LIMIT $2)"),
                    ("grants", "DELETE FROM grants WHERE id IN (SELECT id FROM grants WHERE expires_at < $1 LIMIT $2)"),
                    ("sessions", "DELETE FROM sessions WHERE id_hash IN \
                        (SELECT id_hash FROM sessions WHERE expires_at < $1 LIMIT $2)"),
                    ("spent_challenges", "DELETE FROM spent_challenges WHERE challenge_hash IN \
                        (SELECT challenge_hash FROM spent_challenges WHERE expires_at < $1 LIMIT $2)"),
                    ("action_links", "DELETE FROM action_links WHERE token_hash IN \
                        (SELECT token_hash FROM action_links WHERE expires_at < $1 LIMIT $2)"),
                    ("mail_outbox", "DELETE FROM mail_outbox WHERE id IN \
                        (SELECT id FROM mail_outbox WHERE expires_at < $1 LIMIT $2)"),
                    ("denials", "DELETE FROM denials WHERE id IN \
                        (SELECT id FROM denials WHERE until_at < $1 LIMIT $2)"),
                    ("pushed_requests", "DELETE FROM pushed_requests WHERE reference_hash IN \
                        (SELECT reference_hash FROM pushed_requests WHERE expires_at < $1 LIMIT $2)"),
                ];
                let mut counts = Vec::new();
                for (table, statement) in STATEMENTS {
                    let mut total = 0u64;
                    loop {
                        let done = sqlx::query(statement)
                            .bind(rows::ms(now))
                            .bind(i64::from(batch))
                            .execute(&self.pool)
                            .await
                            .map_err(map_sqlx)?
                            .rows_affected();
                        total += done;
                        if done < u64::from(batch) {
                            break;
                        }
                    }
                    counts.push((table, total));
                }
                // Saved answers for the reuse window (at most 300 s) are not needed after it.
                let mut cleared = 0u64;
                loop {
                    let done = sqlx::query(
                        "UPDATE refresh_tokens SET successor_response_enc = NULL WHERE token_hash IN \
                         (SELECT token_hash FROM refresh_tokens WHERE successor_response_enc IS NOT NULL \
                          AND rotated_at < $1 LIMIT $2)",
                    )
                    .bind(rows::ms(now - chrono::Duration::seconds(300)))
                    .bind(i64::from(batch))
                    .execute(&self.pool)
                    .await
                    .map_err(map_sqlx)?
                    .rows_affected();
                    cleared += done;
                    if done < u64::from(batch) {
                        break;
                    }
                }
                counts.push(("saved_refresh_responses", cleared));
                // Failure counters untouched for a day, and not locked, are history.
                let forgotten = sqlx::query(
                    "DELETE FROM login_failures WHERE updated_at < $1 AND (locked_until IS NULL OR locked_until < $2)",
                )
                .bind(rows::ms(now - chrono::Duration::days(1)))
                .bind(rows::ms(now))
                .execute(&self.pool)
                .await
                .map_err(map_sqlx)?
                .rows_affected();
                counts.push(("login_failures", forgotten));
                Ok(counts)
            }
        }

        /// Binds the 13 columns of `refresh_columns!()` in order.
        fn bind_refresh_token<'q>(
            query: sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments>,
            t: &$crate::domain::grant::RefreshToken,
        ) -> sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments> {
            use $crate::store::rows;
            query
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
                .bind(t.successor_response.as_deref())
        }

        async fn insert_refresh_token<'e, E>(executor: E, t: &$crate::domain::grant::RefreshToken) -> $crate::store::StoreResult<()>
        where
            E: sqlx::Executor<'e, Database = $db>,
        {
            use $crate::store::map_sqlx;
            let query = sqlx::query(concat!(
                "INSERT INTO refresh_tokens (",
                $crate::store::rows::refresh_columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
            ));
            bind_refresh_token(query, t)
            .execute(executor)
            .await
            .map_err(map_sqlx)?;
            Ok(())
        }
    };
}
pub(crate) use impl_grant_store;
