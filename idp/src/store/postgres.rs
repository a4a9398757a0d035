//! The production backend: PostgreSQL, shared by many stateless replicas.

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use super::{ConnectOptions, StoreError, StoreResult};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

#[derive(Debug, Clone)]
pub struct PgStore {
    pool: sqlx::PgPool,
}

impl PgStore {
    pub async fn connect(options: &ConnectOptions) -> StoreResult<Self> {
        let connect = PgConnectOptions::from_str(&options.url)
            .map_err(|e| StoreError::Unavailable(e.to_string()))?
            .application_name("aimpact-idp");
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect)
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        Ok(Self { pool })
    }
}

// Migrations run under a PostgreSQL advisory lock (taken by sqlx), so replicas starting
// together apply each migration exactly once.
super::sql::impl_sql_store!(PgStore, sqlx::Postgres, MIGRATOR);
