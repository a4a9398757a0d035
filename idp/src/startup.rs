//! Builds the application: the only place that wires concrete backends to routes.

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::{DefaultHeaders, from_fn};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};

use crate::http::{self, error::not_found, request_id};
use crate::login::interaction::InteractionSigner;
use crate::login::themes::Themes;
use crate::manage::{self, ManageError};
use crate::oidc::discovery::Discovery;
use crate::services::{Services, StartupError};

/// Shared by every request handler.
pub struct AppState {
    pub services: Services,
    pub discovery: Discovery,
    pub themes: std::sync::Arc<Themes>,
    pub interactions: InteractionSigner,
    /// The portal's Content-Security-Policy, when the portal is served.
    pub portal_csp: Option<String>,
    /// The port of the `metrics_listen` listener, when `/metrics` has one of its own.
    pub metrics_port: Option<u16>,
    /// Set on SIGTERM during `shutdown_drain_s`: readiness answers 503 `draining`.
    pub draining: Arc<std::sync::atomic::AtomicBool>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Startup(#[from] StartupError),
    #[error("invalid configuration: listen: cannot bind {address}: {source}")]
    Bind { address: String, source: std::io::Error },
    #[error("invalid configuration: tls_cert_file: {0}")]
    Tls(#[from] http::tls::TlsError),
    #[error("signing keys: {0}")]
    Keys(String),
    #[error("first-start setup failed: {0}")]
    Bootstrap(#[from] ManageError),
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
}

impl ServeError {
    /// Exit code 2 for configuration problems, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Startup(StartupError::Config { .. }) | Self::Bind { .. } | Self::Tls(_) => 2,
            _ => 1,
        }
    }
}

/// A bound, not yet running server.
pub struct Application {
    pub server: Server,
    pub address: std::net::SocketAddr,
    /// Where `/metrics` is served when `metrics_listen` is set.
    pub metrics_address: Option<std::net::SocketAddr>,
    pub services: Services,
    draining: Arc<std::sync::atomic::AtomicBool>,
}

impl Application {
    /// Bootstraps first-start state and binds the listener.
    pub async fn build(services: Services) -> Result<Self, ServeError> {
        let address = services.settings.listen;
        let listener = TcpListener::bind(address).map_err(|source| ServeError::Bind {
            address: address.to_string(),
            source,
        })?;
        Self::build_on(services, listener).await
    }

    /// As `build`, on a listener bound beforehand (tests bind port 0 and name it in the issuer).
    pub async fn build_on(services: Services, listener: TcpListener) -> Result<Self, ServeError> {
        crate::metrics::install();
        manage::bootstrap::ensure_admin(&services).await?;
        if let Err(e) = manage::bootstrap::ensure_builtin_clients(&services).await {
            // The provider still serves relying parties; only the portal's and the account
            // page's logins are affected.
            tracing::error!(error = %e, "could not register the built-in clients");
        }
        let created = manage::keys::ensure_signing_keys(&services).await?;
        if !created.is_empty() {
            tracing::info!(kids = ?created, "generated signing keys");
        }
        services.reload_keys().await.map_err(ServeError::Keys)?;
        spawn_key_reloader(services.clone());
        manage::housekeeping::spawn(services.clone());
        manage::backup_schedule::spawn(services.clone());
        crate::mail::spawn(services.clone());
        let themes = services.themes.clone();
        let address = listener.local_addr()?;
        let settings = services.settings.clone();
        let tls = match (&settings.tls_cert_file, &settings.tls_key_file) {
            (Some(cert), Some(key)) => {
                let certificate = Arc::new(http::tls::ReloadingCertificate::load(cert, key)?);
                http::tls::spawn_reloader(
                    certificate.clone(),
                    Duration::from_millis(settings.tls_reload_interval_ms),
                );
                Some(http::tls::server_config(
                    certificate,
                    settings.tls_min_version == "1.3",
                )?)
            }
            _ => None,
        };
        let redirect_listener = match settings.http_redirect_listen {
            Some(address) => Some(TcpListener::bind(address).map_err(|source| ServeError::Bind {
                address: address.to_string(),
                source,
            })?),
            None => None,
        };
        let metrics_listener = match settings.metrics_listen {
            Some(address) => Some(TcpListener::bind(address).map_err(|source| ServeError::Bind {
                address: address.to_string(),
                source,
            })?),
            None => None,
        };
        let metrics_address = metrics_listener
            .as_ref()
            .map(TcpListener::local_addr)
            .transpose()?;
        let admin_ui = admin_ui_dir(settings.admin_ui_dir.clone());
        let portal_csp = admin_ui
            .as_ref()
            .and_then(|dir| std::fs::read_to_string(dir.join("index.html")).ok())
            .map(|index| http::portal::content_security_policy(&index));
        let draining = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let state = web::Data::new(AppState {
            draining: draining.clone(),
            portal_csp,
            discovery: Discovery::build(&services.settings),
            interactions: InteractionSigner::new(&services.interaction_key),
            themes,
            services: services.clone(),
            metrics_port: metrics_address.map(|a| a.port()),
        });
        if admin_ui.is_none() {
            tracing::warn!(
                "admin portal not found (build it with scripts/build-admin-ui.sh or set admin_ui_dir)"
            );
        }
        let max_body = settings.max_body_bytes;
        let https = settings.issuer.scheme() == "https";
        let server = HttpServer::new(move || {
            // Each worker opens its own Redis connection before serving
            // (security::redis_connections says why).
            let redis = state.services.redis.clone();
            let mut app = App::new()
                .data_factory(move || {
                    let redis = redis.clone();
                    async move {
                        if let Some(redis) = redis {
                            redis.open_for_this_thread().await;
                        }
                        Ok::<(), std::convert::Infallible>(())
                    }
                })
                .app_data(state.clone())
                .app_data(web::PayloadConfig::new(max_body))
                .app_data(web::FormConfig::default().limit(max_body))
                .app_data(web::JsonConfig::default().limit(max_body))
                .wrap(from_fn(http::portal::middleware))
                .wrap(from_fn(http::tls::redirect_plain_http))
                .wrap(security_headers(https))
                .wrap(from_fn(crate::http::cors::middleware))
                .wrap(from_fn(http::health::metrics_listener))
                .wrap(from_fn(request_id::middleware))
                .configure(http::routes)
                .route(
                    "/",
                    web::get().to(|| async {
                        HttpResponse::Found()
                            .insert_header(("Location", "/admin/"))
                            .finish()
                    }),
                );
            if let Some(dir) = admin_ui.clone() {
                app = app.service(admin_ui_files(dir));
            }
            app.default_service(web::to(not_found))
        })
        .client_request_timeout(Duration::from_millis(settings.request_timeout_ms))
        .shutdown_timeout(settings.shutdown_grace_s)
        .disable_signals();
        let server = match tls {
            Some(config) => server.listen_rustls_0_23(listener, config)?,
            None => server.listen(listener)?,
        };
        let server = match redirect_listener {
            Some(plain) => server.listen(plain)?,
            None => server,
        };
        let server = match metrics_listener {
            Some(metrics) => server.listen(metrics)?,
            None => server,
        }
        .run();
        Ok(Self {
            server,
            address,
            metrics_address,
            services,
            draining,
        })
    }

    /// Runs until SIGTERM or SIGINT. Then, for `shutdown_drain_s`, it keeps serving while
    /// readiness fails (a load balancer polling `/readyz` stops routing here, so no request
    /// meets a closed port); then it stops accepting, lets in-flight requests finish within
    /// the grace period and closes the database pool.
    pub async fn run_until_stopped(self) -> Result<(), ServeError> {
        let handle = self.server.handle();
        let services = self.services.clone();
        let draining = self.draining.clone();
        let drain = Duration::from_secs(services.settings.shutdown_drain_s);
        tokio::spawn(async move {
            wait_for_signal().await;
            if !drain.is_zero() {
                tracing::info!(
                    seconds = drain.as_secs(),
                    "shutdown signal received: readiness fails while the load balancer drains this replica"
                );
                draining.store(true, std::sync::atomic::Ordering::SeqCst);
                tokio::time::sleep(drain).await;
            }
            tracing::info!("stopping: no new connections, draining in-flight requests");
            handle.stop(true).await;
        });
        self.server.await?;
        services.store.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Headers on every response; HSTS (one year, subdomains) whenever the issuer is https.
fn security_headers(https: bool) -> DefaultHeaders {
    let headers = DefaultHeaders::new()
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("Referrer-Policy", "no-referrer"))
        .add(("X-Frame-Options", "DENY"));
    if https {
        headers.add(("Strict-Transport-Security", "max-age=31536000; includeSubDomains"))
    } else {
        headers
    }
}

/// Reloads the key ring every 30 s, so a rotation by any replica (or a staged key reaching
/// its activation time) takes effect everywhere.
fn spawn_key_reloader(services: Services) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(30));
        tick.tick().await;
        loop {
            tick.tick().await;
            if let Err(e) = services.reload_keys().await {
                tracing::warn!(error = %e, "could not reload signing keys; keeping the current ones");
            }
        }
    });
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The built portal: the configured directory, `admin-ui/dist` under the working
/// directory, or `admin-ui` beside the executable.
fn admin_ui_dir(configured: Option<PathBuf>) -> Option<PathBuf> {
    let beside_binary = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join("admin-ui")));
    configured
        .into_iter()
        .chain([PathBuf::from("admin-ui/dist")])
        .chain(beside_binary)
        .find(|dir| dir.join("index.html").is_file())
}

/// Serves the portal under `/admin`; unknown paths get `index.html` so that client-side
/// routes survive a reload (history-API fallback). Hashed assets are cached for a year.
fn admin_ui_files(dir: PathBuf) -> actix_files::Files {
    let index = dir.join("index.html");
    actix_files::Files::new("/admin", dir)
        .index_file("index.html")
        .redirect_to_slash_directory()
        .default_handler(web::to(move |req: HttpRequest| {
            let index = index.clone();
            async move {
                match actix_files::NamedFile::open_async(&index).await {
                    Ok(file) => file.use_etag(true).into_response(&req),
                    Err(_) => HttpResponse::NotFound().finish(),
                }
            }
        }))
}

/// Everything `idp serve` does: build the services, bootstrap, bind, run.
pub async fn serve(settings: crate::config::Settings) -> Result<(), ServeError> {
    let migrate = settings.migrate_on_start;
    let services = Services::build(settings, migrate).await?;
    let app = Application::build(services).await?;
    tracing::info!(address = %app.address, issuer = %app.services.settings.issuer, "listening");
    app.run_until_stopped().await
}
