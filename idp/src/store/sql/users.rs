//! SQL for users and their password credentials.

macro_rules! impl_user_store {
    ($store:ty, $db:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::UserStore for $store {
            async fn create_user(
                &self,
                user: &$crate::domain::user::NewUser,
                password_phc: Option<&str>,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::StoreResult<$crate::domain::user::User> {
                use $crate::store::{map_sqlx, rows};
                let id = uuid::Uuid::new_v4();
                let mut tx = self.pool.begin().await.map_err(map_sqlx)?;
                let row: rows::UserRow = sqlx::query_as(concat!("INSERT INTO users (id, username, username_key, email, email_key, name, status, roles, \
                     created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, 'active', $7, $8, $8) \
                     RETURNING ", $crate::store::rows::user_columns!(), ""))
                .bind(id.to_string())
                .bind(user.username.as_str())
                .bind(user.username.key())
                .bind(user.email.as_ref().map(|e| e.as_str().to_string()))
                .bind(user.email.as_ref().map(|e| e.key()))
                .bind(user.name.as_deref())
                .bind(rows::json(&user.roles))
                .bind(rows::ms(now))
                .fetch_one(&mut *tx)
                .await
                .map_err(map_sqlx)?;
                if let Some(phc) = password_phc {
                    sqlx::query("INSERT INTO password_credentials (user_id, phc, updated_at) VALUES ($1, $2, $3)")
                        .bind(id.to_string())
                        .bind(phc)
                        .bind(rows::ms(now))
                        .execute(&mut *tx)
                        .await
                        .map_err(map_sqlx)?;
                }
                tx.commit().await.map_err(map_sqlx)?;
                row.try_into()
            }

            async fn find_user(&self, id: uuid::Uuid) -> $crate::store::StoreResult<Option<$crate::domain::user::User>> {
                use $crate::store::{map_sqlx, rows};
                let row: Option<rows::UserRow> =
                    sqlx::query_as(concat!("SELECT ", $crate::store::rows::user_columns!(), " FROM users WHERE id = $1"))
                        .bind(id.to_string())
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(map_sqlx)?;
                row.map(TryInto::try_into).transpose()
            }

            async fn find_user_by_username(
                &self,
                username_key: &str,
            ) -> $crate::store::StoreResult<Option<$crate::domain::user::User>> {
                use $crate::store::{map_sqlx, rows};
                let row: Option<rows::UserRow> =
                    sqlx::query_as(concat!("SELECT ", $crate::store::rows::user_columns!(), " FROM users WHERE username_key = $1"))
                        .bind(username_key)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(map_sqlx)?;
                row.map(TryInto::try_into).transpose()
            }

            async fn find_user_by_email(
                &self,
                email_key: &str,
            ) -> $crate::store::StoreResult<Option<$crate::domain::user::User>> {
                use $crate::store::{map_sqlx, rows};
                let row: Option<rows::UserRow> =
                    sqlx::query_as(concat!("SELECT ", $crate::store::rows::user_columns!(), " FROM users WHERE email_key = $1"))
                        .bind(email_key)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(map_sqlx)?;
                row.map(TryInto::try_into).transpose()
            }

            async fn list_users(
                &self,
                query: &$crate::store::UserQuery,
            ) -> $crate::store::StoreResult<Vec<$crate::domain::user::User>> {
                use $crate::store::{map_sqlx, rows};
                let mut sql = sqlx::QueryBuilder::<$db>::new(concat!("SELECT ", $crate::store::rows::user_columns!(), " FROM users WHERE 1 = 1"));
                if let Some(search) = query.search.as_deref().filter(|s| !s.is_empty()) {
                    let pattern = format!("%{}%", search.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
                    sql.push(" AND (username_key LIKE ").push_bind(pattern.clone()).push(" ESCAPE '\\'")
                        .push(" OR email_key LIKE ").push_bind(pattern.clone()).push(" ESCAPE '\\'")
                        .push(" OR lower(name) LIKE ").push_bind(pattern).push(" ESCAPE '\\')");
                }
                if let Some(status) = query.status {
                    sql.push(" AND status = ").push_bind(status.as_str());
                }
                if let Some(role) = query.role.as_deref() {
                    // Roles are JSON arrays of validated names: no quote or wildcard inside.
                    sql.push(" AND roles LIKE ").push_bind(format!("%{}%", rows::json(&role)));
                }
                use $crate::store::UserSort;
                let (column, descending) = match query.sort {
                    UserSort::CreatedAsc => ("created_at", false),
                    UserSort::CreatedDesc => ("created_at", true),
                    UserSort::UsernameAsc => ("username_key", false),
                    UserSort::UsernameDesc => ("username_key", true),
                };
                let (cmp, dir) = if descending { (" < ", " DESC") } else { (" > ", "") };
                if let Some(after) = &query.after {
                    let by_created = column == "created_at";
                    // Keyset pagination: rows strictly beyond the cursor in (column, id) order.
                    sql.push(" AND (").push(column).push(cmp);
                    if by_created { sql.push_bind(rows::ms(after.created_at)); } else { sql.push_bind(after.username_key.clone()); }
                    sql.push(" OR (").push(column).push(" = ");
                    if by_created { sql.push_bind(rows::ms(after.created_at)); } else { sql.push_bind(after.username_key.clone()); }
                    sql.push(" AND id").push(cmp).push_bind(after.id.to_string()).push("))");
                }
                sql.push(" ORDER BY ").push(column).push(dir).push(", id").push(dir)
                    .push(" LIMIT ").push_bind(i64::from(query.limit.clamp(1, 1000)));
                let found: Vec<rows::UserRow> = sql.build_query_as().fetch_all(&self.pool).await.map_err(map_sqlx)?;
                found.into_iter().map(TryInto::try_into).collect()
            }

            async fn set_user_status(
                &self,
                id: uuid::Uuid,
                status: $crate::domain::user::UserStatus,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::StoreResult<bool> {
                use $crate::store::{map_sqlx, rows};
                let done = sqlx::query("UPDATE users SET status = $1, updated_at = $2 WHERE id = $3")
                    .bind(status.as_str())
                    .bind(rows::ms(now))
                    .bind(id.to_string())
                    .execute(&self.pool)
                    .await
                    .map_err(map_sqlx)?;
                Ok(done.rows_affected() == 1)
            }

            async fn password_phc(&self, user_id: uuid::Uuid) -> $crate::store::StoreResult<Option<String>> {
                sqlx::query_scalar("SELECT phc FROM password_credentials WHERE user_id = $1")
                    .bind(user_id.to_string())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err($crate::store::map_sqlx)
            }

            async fn set_password_phc(
                &self,
                user_id: uuid::Uuid,
                phc: &str,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query(
                    "INSERT INTO password_credentials (user_id, phc, updated_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (user_id) DO UPDATE SET phc = excluded.phc, updated_at = excluded.updated_at",
                )
                .bind(user_id.to_string())
                .bind(phc)
                .bind($crate::store::rows::ms(now))
                .execute(&self.pool)
                .await
                .map_err($crate::store::map_sqlx)?;
                Ok(())
            }

            async fn record_login(&self, id: uuid::Uuid, now: chrono::DateTime<chrono::Utc>) -> $crate::store::StoreResult<()> {
                sqlx::query("UPDATE users SET last_login_at = $1 WHERE id = $2")
                    .bind($crate::store::rows::ms(now))
                    .bind(id.to_string())
                    .execute(&self.pool)
                    .await
                    .map_err($crate::store::map_sqlx)?;
                Ok(())
            }

            async fn admin_exists(&self) -> $crate::store::StoreResult<bool> {
                let found: Option<String> = sqlx::query_scalar(
                    "SELECT id FROM users WHERE status = 'active' AND roles LIKE '%\"admin\"%' LIMIT 1",
                )
                .fetch_optional(&self.pool)
                .await
                .map_err($crate::store::map_sqlx)?;
                Ok(found.is_some())
            }
        }
    };
}
pub(crate) use impl_user_store;
