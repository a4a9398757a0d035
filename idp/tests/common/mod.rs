//! Test helpers: a fresh database per test on either backend, and `spawn_app`, which
//! runs the real server on a free port of 127.0.0.1.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod browser;
pub mod client_key;
pub mod federation;
pub mod fixtures;
pub mod process;
pub mod proxy;
pub mod self_service;

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
    /// This test's own Redis key prefix; its keys are deleted with it.
    pub redis_prefix: String,
    pg_name: Option<String>,
    /// Only the owner drops the database and the Redis keys.
    owner: bool,
}

impl TestDb {
    pub async fn new(backend: Backend) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let redis_prefix = format!("idp-test:{}:", uuid::Uuid::new_v4().simple());
        match backend {
            Backend::Sqlite => {
                let url = format!("sqlite://{}", dir.path().join("idp.db").display());
                Self {
                    url,
                    backend,
                    dir,
                    redis_prefix,
                    pg_name: None,
                    owner: true,
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
                    redis_prefix,
                    pg_name: Some(name),
                    owner: true,
                }
            }
        }
    }

    /// The same database and Redis prefix, for a second server instance (or a restart).
    pub fn new_shared(other: &TestDb) -> Self {
        Self {
            url: other.url.clone(),
            backend: other.backend,
            dir: tempfile::tempdir().unwrap(),
            redis_prefix: other.redis_prefix.clone(),
            pg_name: None,
            owner: false,
        }
    }

    pub async fn store(&self) -> Arc<dyn Store> {
        let store = idp::store::connect(&ConnectOptions {
            url: self.url.clone(),
            backup_url: None,
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
        if self.owner
            && self.backend == Backend::Postgres
            && let Ok(mut redis) = redis::Client::open(redis_url()).and_then(|c| c.get_connection())
        {
            {
                let keys: Vec<String> = redis::cmd("KEYS")
                    .arg(format!("{}*", self.redis_prefix))
                    .query(&mut redis)
                    .unwrap_or_default();
                if !keys.is_empty() {
                    let _: Result<(), _> = redis::cmd("DEL").arg(keys).query(&mut redis);
                }
            }
        }
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
    /// The authenticator app of every user of this app (TOTP keys enrolled in tests).
    pub authenticator: browser::Authenticator,
}

/// A server on a fresh database: SQLite with in-process deny-list, or PostgreSQL with Redis.
pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(TestDb::new(backend).await, &[]).await
}

pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

pub async fn spawn_app_with(db: TestDb, extra: &[(&str, &str)]) -> TestApp {
    spawn_app_full(db, extra, None, "127.0.0.1").await
}

/// A server whose issuer is `http://localhost:<port>`: a domain name, which passkeys need
/// (browsers refuse an IP address as WebAuthn relying party id).
pub async fn spawn_app_on_localhost(backend: Backend) -> TestApp {
    spawn_app_full(TestDb::new(backend).await, &[], None, "localhost").await
}

/// A server whose clock the test moves.
pub async fn spawn_app_at(backend: Backend, clock: idp::domain::clock::ManualClock) -> TestApp {
    spawn_app_full(
        TestDb::new(backend).await,
        &[],
        Some(Arc::new(clock)),
        "127.0.0.1",
    )
    .await
}

/// A server whose clock the test moves, with extra settings.
pub async fn spawn_app_clocked_with(
    db: TestDb,
    clock: idp::domain::clock::ManualClock,
    extra: &[(&str, &str)],
) -> TestApp {
    spawn_app_full(db, extra, Some(Arc::new(clock)), "127.0.0.1").await
}

async fn spawn_app_full(
    db: TestDb,
    extra: &[(&str, &str)],
    clock: Option<Arc<dyn idp::domain::clock::Clock>>,
    issuer_host: &str,
) -> TestApp {
    // No log output, but the subscriber that turns statement events into metrics.
    idp::telemetry::init(idp::config::LogFormat::Json, "off");
    // The issuer must name the real port: bind first, and serve on that very listener.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let listen = format!("127.0.0.1:{port}");
    let issuer = format!("http://{issuer_host}:{port}");
    let mut all: Vec<(&str, &str)> = vec![("IDP_LISTEN", &listen), ("IDP_ISSUER", &issuer)];
    let redis = redis_url();
    let prefix = db.redis_prefix.clone();
    if db.backend == Backend::Postgres {
        all.push(("IDP_REDIS_URL", &redis));
        all.push(("IDP_REDIS_KEY_PREFIX", &prefix));
    }
    all.extend_from_slice(extra);
    let settings = test_settings(&db, &all);
    let mut services = Services::build(settings, true).await.unwrap();
    if let Some(clock) = clock {
        services.clock = clock;
    }
    let app = idp::startup::Application::build_on(services.clone(), listener)
        .await
        .unwrap();
    let base = format!("http://{}", app.address);
    tokio::spawn(app.server);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    TestApp {
        authenticator: browser::Authenticator::new(services.clock.clone()),
        base,
        http,
        services,
        db,
    }
}

/// The value of the series `name{labels}` in a Prometheus text exposition (0 when absent).
pub fn metric_value(exposition: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .filter(|l| labels.iter().all(|(k, v)| l.contains(&format!("{k}=\"{v}\""))))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A port on 127.0.0.1 for a test's own small HTTP server, and that server's base URL.
pub fn local_listener() -> (std::net::TcpListener, String) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    (listener, base)
}

/// Serves `routes` on `listener` in the background: a stand-in upstream written for a test.
pub fn serve<F>(listener: std::net::TcpListener, routes: F)
where
    F: Fn(&mut actix_web::web::ServiceConfig) + Send + Clone + 'static,
{
    let server = actix_web::HttpServer::new(move || actix_web::App::new().configure(routes.clone()))
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
    tokio::spawn(server);
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

/// The claims of a JWT, unverified (the relying-party tests verify signatures).
pub fn jwt_claims(jwt: &str) -> serde_json::Value {
    use base64::Engine;
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
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
    /// A new browser whose authenticator app is the one of this app's users.
    pub fn browser(&self) -> browser::Browser {
        browser::Browser::with_authenticator(&self.base, self.authenticator.clone())
    }

    pub async fn add_user(&self, username: &str) -> idp::domain::user::User {
        self.add_user_as(username, false).await
    }

    pub async fn add_user_as(&self, username: &str, admin: bool) -> idp::domain::user::User {
        use secrecy::SecretString;
        let request = idp::manage::users::AddUser {
            username: username.into(),
            email: Some(format!("{username}@example.com")),
            name: Some(format!("{username} Tester")),
            password: SecretString::from(PASSWORD),
            admin,
        };
        idp::manage::users::add_user(&self.services, request, idp::manage::Actor::Cli)
            .await
            .unwrap()
    }

    /// Registers an upstream identity provider as an operator describes it, with its secret.
    pub async fn add_upstream(&self, draft: idp::domain::upstream::UpstreamDraft, secret: &str) {
        let secret = secrecy::SecretString::from(secret.to_string());
        let new = draft.resolve().unwrap();
        idp::manage::upstreams::register(&self.services, new, &secret, idp::manage::Actor::Cli)
            .await
            .unwrap();
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
            backchannel_logout_uri: None,
            require_pkce: false,
            refresh_idle_ttl_s: None,
            token_endpoint_auth_method: None,
            jwks: None,
            jwks_uri: None,
            require_par: false,
            dpop_bound_access_tokens: false,
            profile: None,
            resources: vec![],
            access_token_ttl_s: None,
            rate_limit_token_per_minute: None,
            rate_limit_introspect_per_minute: None,
            mfa: None,
            require_verified_email: false,
            refresh_token_ttl_s: None,
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

    /// A confidential client that acts for itself (client_credentials only) with `scopes`.
    pub async fn add_service_client(&self, scopes: &[&str]) -> Registered {
        let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
        self.add_client(false, |c| {
            c.grant_types = vec![idp::domain::client::GrantType::ClientCredentials];
            c.redirect_uris.clear();
            c.scopes = scopes;
        })
        .await
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

/// A token response obtained the way a web app would: browser login, code, exchange.
impl TestApp {
    pub async fn tokens(&self, client: &Registered, username: &str, scope: &str) -> serde_json::Value {
        let browser = self.browser();
        let landing = browser.visit(&self.authorize_url(&client.id, scope)).await;
        let code = browser
            .log_in_and_consent(landing, username, PASSWORD)
            .await
            .query("code")
            .unwrap();
        self.redeem_code(client, &code).await
    }

    /// The token response for a code of an [`TestApp::authorize_url`] request.
    pub async fn redeem_code(&self, client: &Registered, code: &str) -> serde_json::Value {
        let response = self
            .token_request(
                client,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", code),
                    ("redirect_uri", REDIRECT),
                    ("code_verifier", VERIFIER),
                ],
            )
            .await;
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    /// An authorization request for `client` at REDIRECT with `scope`, state `s` and the
    /// PKCE challenge of [`VERIFIER`].
    pub fn authorize_url(&self, client_id: &str, scope: &str) -> String {
        let mut url = url::Url::parse(&format!("{}/authorize", self.base)).unwrap();
        url.query_pairs_mut()
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", REDIRECT)
            .append_pair("response_type", "code")
            .append_pair("scope", scope)
            .append_pair("state", "s")
            .append_pair("code_challenge", CHALLENGE)
            .append_pair("code_challenge_method", "S256");
        url.to_string()
    }

    /// POSTs to the token endpoint with the client's credentials (Basic, or client_id if public).
    pub async fn token_request(&self, client: &Registered, form: &[(&str, &str)]) -> reqwest::Response {
        self.post_as(client, "/token", form).await
    }

    pub async fn post_as(&self, client: &Registered, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let mut fields: Vec<(&str, &str)> = form.to_vec();
        let mut request = self.http.post(format!("{}{path}", self.base));
        match &client.secret {
            Some(secret) => request = request.basic_auth(&client.id, Some(secret)),
            None => fields.push(("client_id", &client.id)),
        }
        request.form(&fields).send().await.unwrap()
    }

    /// The provider's metadata, as a relying party reads it.
    pub async fn discovery(&self) -> serde_json::Value {
        self.http
            .get(format!("{}/.well-known/openid-configuration", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// The Prometheus text exposition at `/metrics`.
    pub async fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub async fn introspect(&self, client: &Registered, token: &str) -> serde_json::Value {
        let response = self.post_as(client, "/introspect", &[("token", token)]).await;
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }
}

/// The RFC 7636 Appendix B verifier and its S256 challenge.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

pub fn authorize_query(client_id: &str, extra: &str) -> String {
    let redirect = url::form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>();
    format!(
        "/authorize?client_id={client_id}&redirect_uri={redirect}&response_type=code&scope=openid&state=xyz\
         &code_challenge={CHALLENGE}&code_challenge_method=S256{extra}"
    )
}
