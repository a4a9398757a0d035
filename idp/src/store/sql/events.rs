//! SQL for security events.

macro_rules! impl_event_store {
    ($store:ty, $db:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::EventStore for $store {
            async fn record_event(&self, e: &$crate::audit::SecurityEvent) -> $crate::store::StoreResult<i64> {
                use $crate::store::{map_sqlx, rows};
                sqlx::query_scalar(
                    "INSERT INTO security_events (occurred_at, event_type, outcome, user_id, username, client_id, \
                     actor_id, ip, user_agent, request_id, details) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
                )
                .bind(rows::ms(e.occurred_at))
                .bind(e.event_type.as_str())
                .bind(e.outcome.as_str())
                .bind(e.user_id.as_deref())
                .bind(e.username.as_deref())
                .bind(e.client_id.as_deref())
                .bind(e.actor_id.as_deref())
                .bind(e.ip.as_deref())
                .bind(e.user_agent.as_deref())
                .bind(e.request_id.as_deref())
                .bind(rows::json(&e.details))
                .fetch_one(&self.pool)
                .await
                .map_err(map_sqlx)
            }

            async fn query_events(
                &self,
                q: &$crate::audit::EventQuery,
            ) -> $crate::store::StoreResult<Vec<$crate::audit::SecurityEvent>> {
                use $crate::store::{map_sqlx, rows};
                let mut sql = sqlx::QueryBuilder::<$db>::new(concat!("SELECT ", $crate::store::rows::event_columns!(), " FROM security_events WHERE 1 = 1"));
                if let Some(t) = q.event_type {
                    sql.push(" AND event_type = ").push_bind(t.as_str());
                }
                if let Some(o) = q.outcome {
                    sql.push(" AND outcome = ").push_bind(o.as_str());
                }
                if let Some(user) = &q.user_id {
                    sql.push(" AND user_id = ").push_bind(user.clone());
                }
                if let Some(name) = &q.username {
                    sql.push(" AND lower(username) = ").push_bind(name.to_lowercase());
                }
                if let Some(client) = &q.client_id {
                    sql.push(" AND client_id = ").push_bind(client.clone());
                }
                if let Some(ip) = &q.ip {
                    sql.push(" AND ip = ").push_bind(ip.clone());
                }
                if let Some(from) = q.from {
                    sql.push(" AND occurred_at >= ").push_bind(rows::ms(from));
                }
                if let Some(until) = q.until {
                    sql.push(" AND occurred_at < ").push_bind(rows::ms(until));
                }
                if let Some(before) = q.before_id {
                    sql.push(" AND id < ").push_bind(before);
                }
                sql.push(" ORDER BY id DESC LIMIT ").push_bind(i64::from(q.limit.clamp(1, 1000)));
                let found: Vec<rows::EventRow> = sql.build_query_as().fetch_all(&self.pool).await.map_err(map_sqlx)?;
                found.into_iter().map(TryInto::try_into).collect()
            }

            async fn prune_events(
                &self,
                before: chrono::DateTime<chrono::Utc>,
                batch: u32,
            ) -> $crate::store::StoreResult<u64> {
                use $crate::store::{map_sqlx, rows};
                let mut total = 0u64;
                loop {
                    let done = sqlx::query(
                        "DELETE FROM security_events WHERE id IN \
                         (SELECT id FROM security_events WHERE occurred_at < $1 LIMIT $2)",
                    )
                    .bind(rows::ms(before))
                    .bind(i64::from(batch))
                    .execute(&self.pool)
                    .await
                    .map_err(map_sqlx)?
                    .rows_affected();
                    total += done;
                    if done < u64::from(batch) {
                        return Ok(total);
                    }
                }
            }
        }
    };
}
pub(crate) use impl_event_store;
