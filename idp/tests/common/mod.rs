//! Test helpers: a fresh database per test on either backend, and `spawn_app`, which
//! runs the real server on a free port of 127.0.0.1.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod browser;
pub mod proxy;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use idp::config::Settings;
use idp::services::Services;
use idp::store::{ConnectOptions, Store};
use sqlx::Connection;

pub const ADMIN_PASSWORD: &str = "bootstrap-admin-password";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub fn postgres_admin_url() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A database that exists for one test and is dropped with it.
pub struct TestDb {
    pub url: String,
    pub backend: Backend,
    pub dir: tempfile::TempDir,
    pg_name: Option<String>,
}

impl TestDb {
    pub async fn new(backend: Backend) -> Self {
        let dir = tempfile::tempdir().unwrap();
        match backend {
            Backend::Sqlite => {
                let url = format!("sqlite://{}", dir.path().join("idp.db").display());
                Self {
                    url,
                    backend,
                    dir,
                    pg_name: None,
                }
            }
            Backend::Postgres => {
                let name = format!("idp_test_{}", uuid::Uuid::new_v4().simple());
                let mut conn = sqlx::PgConnection::connect(&postgres_admin_url())
                    .await
                    .expect("PostgreSQL must run on 127.0.0.1:5432 (scripts/services.sh starts it)");
                // `name` is our own generated identifier (hex only).
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await
                    .unwrap();
                let url = database_url_for(&name);
                Self {
                    url,
                    backend,
                    dir,
                    pg_name: Some(name),
                }
            }
        }
    }

    pub async fn store(&self) -> Arc<dyn Store> {
        let store = idp::store::connect(&ConnectOptions {
            url: self.url.clone(),
            max_connections: 5,
            acquire_timeout: std::time::Duration::from_secs(5),
        })
        .await
        .unwrap();
        store.migrate().await.unwrap();
        store
    }
}

fn database_url_for(name: &str) -> String {
    let admin = postgres_admin_url();
    match admin.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{name}"),
        None => panic!("TEST_POSTGRES_URL must name a database"),
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(name) = self.pg_name.take() {
            // Drop runs outside any runtime guarantee: use a thread with its own runtime.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    if let Ok(mut conn) = sqlx::PgConnection::connect(&postgres_admin_url()).await {
                        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                        )))
                        .execute(&mut conn)
                        .await;
                    }
                });
            })
            .join();
        }
    }
}

fn workspace_path(relative: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
        .display()
        .to_string()
}

/// Settings for a test server on `db`, with extra `IDP_*` variables applied last.
pub fn test_settings(db: &TestDb, extra: &[(&str, &str)]) -> Settings {
    let mut env: HashMap<String, String> = HashMap::from([
        ("IDP_LISTEN".into(), "127.0.0.1:0".into()),
        ("IDP_DATABASE_URL".into(), db.url.clone()),
        ("IDP_DATA_DIR".into(), db.dir.path().display().to_string()),
        (
            "IDP_MASTER_KEY".into(),
            "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=".into(),
        ),
        ("IDP_BOOTSTRAP_ADMIN_PASSWORD".into(), ADMIN_PASSWORD.into()),
        ("IDP_PASSWORD_HASH_CONCURRENCY".into(), "2".into()),
        ("IDP_SHUTDOWN_GRACE_S".into(), "1".into()),
        ("IDP_KEY_ACTIVATION_DELAY_S".into(), "0".into()),
        ("IDP_THEMES_DIR".into(), workspace_path("themes")),
        (
            "IDP_ADMIN_UI_DIR".into(),
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../admin-ui/dist")
                .display()
                .to_string(),
        ),
    ]);
    for (k, v) in extra {
        env.insert(k.to_string(), v.to_string());
    }
    Settings::load_from(None, |k| env.get(k).cloned()).unwrap()
}

/// A running server and what a test needs to talk to it.
pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub services: Services,
    pub db: TestDb,
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(TestDb::new(backend).await, &[]).await
}

pub async fn spawn_app_with(db: TestDb, extra: &[(&str, &str)]) -> TestApp {
    // The issuer must name the real port, so pick a free one first.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let issuer = format!("http://127.0.0.1:{port}");
    let mut all: Vec<(&str, &str)> = vec![("IDP_LISTEN", &listen), ("IDP_ISSUER", &issuer)];
    all.extend_from_slice(extra);
    let settings = test_settings(&db, &all);
    let services = Services::build(settings, true).await.unwrap();
    let app = idp::startup::Application::build(services.clone()).await.unwrap();
    let base = format!("http://{}", app.address);
    tokio::spawn(app.server);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    TestApp {
        base,
        http,
        services,
        db,
    }
}

/// Instantiates each named async test once per backend: `mod sqlite` and `mod postgres`.
#[macro_export]
macro_rules! on_both_backends {
    ($($test:ident),+ $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() { super::$test($crate::common::Backend::Sqlite).await })+
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() { super::$test($crate::common::Backend::Postgres).await })+
        }
    };
}

pub const REDIRECT: &str = "http://127.0.0.1:9/callback";
pub const PASSWORD: &str = "correct horse battery";

/// The relying party as the `openidconnect` crate builds it from discovery.
pub type Rp = openidconnect::core::CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

/// A client registered for a test.
pub struct Registered {
    pub id: String,
    pub secret: Option<String>,
}

impl TestApp {
    pub async fn add_user(&self, username: &str) -> idp::domain::user::User {
        use secrecy::SecretString;
        let request = idp::manage::users::AddUser {
            username: username.into(),
            email: Some(format!("{username}@example.com")),
            name: Some(format!("{username} Tester")),
            password: SecretString::from(PASSWORD),
            admin: false,
        };
        idp::manage::users::add_user(&self.services, request, idp::manage::Actor::Cli)
            .await
            .unwrap()
    }

    /// Registers a client; `adjust` may change anything before it is stored.
    pub async fn add_client(
        &self,
        public: bool,
        adjust: impl FnOnce(&mut idp::domain::client::NewClient),
    ) -> Registered {
        use idp::domain::client::*;
        let client_type = if public {
            ClientType::Public
        } else {
            ClientType::Confidential
        };
        let mut new = NewClient {
            name: "Test app".into(),
            client_type,
            redirect_uris: vec![RedirectUri::parse(REDIRECT, client_type).unwrap()],
            post_logout_redirect_uris: vec![],
            grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            scopes: DEFAULT_SCOPES.iter().map(|s| s.to_string()).collect(),
            first_party: false,
            refresh_reuse_window_s: 0,
            id_token_signed_response_alg: "RS256".into(),
            access_token_signing_alg: None,
        };
        adjust(&mut new);
        let registered = idp::manage::clients::register(&self.services, new, idp::manage::Actor::Cli)
            .await
            .unwrap();
        use secrecy::ExposeSecret;
        Registered {
            id: registered.client.id,
            secret: registered.secret.map(|s| s.expose_secret().to_string()),
        }
    }

    /// An `openidconnect` relying party for `client`, configured by discovery.
    pub async fn relying_party(&self, client: &Registered) -> Rp {
        use openidconnect::core::{CoreClient, CoreProviderMetadata};
        use openidconnect::{ClientId, ClientSecret, IssuerUrl, RedirectUrl};
        let metadata =
            CoreProviderMetadata::discover_async(IssuerUrl::new(self.base.clone()).unwrap(), &self.rp_http())
                .await
                .unwrap();
        CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(client.id.clone()),
            client.secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap())
    }

    /// The HTTP client the relying party uses (no redirects: it must not follow them).
    pub fn rp_http(&self) -> openidconnect::reqwest::Client {
        openidconnect::reqwest::Client::builder()
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    }
}
