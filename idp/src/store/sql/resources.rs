//! SQL for resource servers (RFC 8707).

use crate::store::rows::{from_json, time};
use crate::store::{StoreError, StoreResult};

#[derive(sqlx::FromRow)]
pub(crate) struct ResourceRow {
    identifier: String,
    scopes: String,
    client_id: Option<String>,
    created_at: i64,
}

impl TryFrom<ResourceRow> for crate::domain::resource::ResourceServer {
    type Error = StoreError;

    fn try_from(r: ResourceRow) -> StoreResult<Self> {
        Ok(Self {
            identifier: r.identifier,
            scopes: from_json("resource scopes", &r.scopes)?,
            client_id: r.client_id,
            created_at: time(r.created_at)?,
        })
    }
}

macro_rules! impl_resource_store {
    ($store:ty, $db:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::ResourceStore for $store {
            async fn create_resource_server(
                &self,
                r: &$crate::domain::resource::ResourceServer,
            ) -> $crate::store::StoreResult<()> {
                use $crate::store::{map_sqlx, rows};
                sqlx::query(
                    "INSERT INTO resource_servers (identifier, scopes, client_id, created_at) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(&r.identifier)
                .bind(rows::json(&r.scopes))
                .bind(r.client_id.as_deref())
                .bind(rows::ms(r.created_at))
                .execute(&self.pool)
                .await
                .map_err(map_sqlx)
                .map(|_| ())
            }

            async fn find_resource_server(
                &self,
                identifier: &str,
            ) -> $crate::store::StoreResult<Option<$crate::domain::resource::ResourceServer>> {
                use $crate::store::map_sqlx;
                let row: Option<$crate::store::sql::resources::ResourceRow> = sqlx::query_as(
                    "SELECT identifier, scopes, client_id, created_at FROM resource_servers \
                     WHERE identifier = $1",
                )
                .bind(identifier)
                .fetch_optional(&self.pool)
                .await
                .map_err(map_sqlx)?;
                row.map(TryInto::try_into).transpose()
            }

            async fn list_resource_servers(
                &self,
            ) -> $crate::store::StoreResult<Vec<$crate::domain::resource::ResourceServer>> {
                use $crate::store::map_sqlx;
                let found: Vec<$crate::store::sql::resources::ResourceRow> = sqlx::query_as(
                    "SELECT identifier, scopes, client_id, created_at FROM resource_servers \
                     ORDER BY identifier",
                )
                .fetch_all(&self.pool)
                .await
                .map_err(map_sqlx)?;
                found.into_iter().map(TryInto::try_into).collect()
            }

            async fn resources_of_client(&self, client_id: &str) -> $crate::store::StoreResult<Vec<String>> {
                sqlx::query_scalar(
                    "SELECT identifier FROM resource_servers WHERE client_id = $1 ORDER BY identifier",
                )
                .bind(client_id)
                .fetch_all(&self.pool)
                .await
                .map_err($crate::store::map_sqlx)
            }

            async fn delete_resource_server(&self, identifier: &str) -> $crate::store::StoreResult<bool> {
                let done = sqlx::query("DELETE FROM resource_servers WHERE identifier = $1")
                    .bind(identifier)
                    .execute(&self.pool)
                    .await
                    .map_err($crate::store::map_sqlx)?;
                Ok(done.rows_affected() == 1)
            }
        }
    };
}
pub(crate) use impl_resource_store;
