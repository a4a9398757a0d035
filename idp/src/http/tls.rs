//! Built-in TLS with rustls (aws-lc-rs): certificate and key from PEM files, re-read when
//! either file changes (cert-manager rotates them in place), TLS 1.2+1.3 or 1.3 only. The
//! provider's suites are all AEAD with forward secrecy (no CBC, no RSA key exchange), and
//! rustls has no TLS 1.1 or older at all.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};
use rustls::crypto::aws_lc_rs;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ServerConfig, SupportedProtocolVersion};

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TlsError(String);

/// The serving certificate, swapped in place when its files change.
#[derive(Debug)]
pub struct ReloadingCertificate {
    cert_file: PathBuf,
    key_file: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
    modified: Mutex<(Option<SystemTime>, Option<SystemTime>)>,
}

impl ReloadingCertificate {
    pub fn load(cert_file: &Path, key_file: &Path) -> Result<Self, TlsError> {
        let modified = (mtime(cert_file), mtime(key_file));
        Ok(Self {
            cert_file: cert_file.to_path_buf(),
            key_file: key_file.to_path_buf(),
            current: RwLock::new(read_pair(cert_file, key_file)?),
            modified: Mutex::new(modified),
        })
    }

    /// Re-reads the files if either changed. A bad new pair keeps the old one serving.
    pub fn reload_if_changed(&self) -> Result<bool, TlsError> {
        let seen = (mtime(&self.cert_file), mtime(&self.key_file));
        let mut last = self
            .modified
            .lock()
            .map_err(|_| TlsError("lock poisoned".into()))?;
        if *last == seen {
            return Ok(false);
        }
        let pair = read_pair(&self.cert_file, &self.key_file)?;
        *self
            .current
            .write()
            .map_err(|_| TlsError("lock poisoned".into()))? = pair;
        *last = seen;
        Ok(true)
    }
}

impl ResolvesServerCert for ReloadingCertificate {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|c| Arc::clone(&c))
    }
}

fn mtime(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn read_pair(cert_file: &Path, key_file: &Path) -> Result<Arc<CertifiedKey>, TlsError> {
    let bad = |what: &str, path: &Path, e: &dyn std::fmt::Display| {
        TlsError(format!("{what} {}: {e}", path.display()))
    };
    let chain = CertificateDer::pem_file_iter(cert_file)
        .map_err(|e| bad("cannot read the certificate file", cert_file, &e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad("invalid certificate file", cert_file, &e))?;
    if chain.is_empty() {
        return Err(TlsError(format!("no certificate in {}", cert_file.display())));
    }
    let key = PrivateKeyDer::from_pem_file(key_file)
        .map_err(|e| bad("cannot read the private key", key_file, &e))?;
    let expires = x509_parser::parse_x509_certificate(chain[0].as_ref())
        .map_err(|e| bad("invalid certificate in", cert_file, &e))?
        .1
        .validity()
        .not_after
        .timestamp();
    let pair = CertifiedKey::from_der(chain, key, &aws_lc_rs::default_provider())
        .map_err(|e| bad("the key does not fit the certificate in", cert_file, &e))?;
    // Set only once the pair is known good: it is what is being served.
    metrics::gauge!("idp_tls_certificate_expiry_timestamp_seconds").set(expires as f64);
    Ok(Arc::new(pair))
}

/// The server configuration: `tls13_only` drops TLS 1.2.
pub fn server_config(
    certificate: Arc<ReloadingCertificate>,
    tls13_only: bool,
) -> Result<ServerConfig, TlsError> {
    let versions: &[&'static SupportedProtocolVersion] = if tls13_only {
        &[&rustls::version::TLS13]
    } else {
        &[&rustls::version::TLS12, &rustls::version::TLS13]
    };
    let mut config = ServerConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
        .with_protocol_versions(versions)
        .map_err(|e| TlsError(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(certificate);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Checks the files every `interval` and swaps the certificate when they change.
pub fn spawn_reloader(certificate: Arc<ReloadingCertificate>, interval: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.tick().await;
        loop {
            tick.tick().await;
            match certificate.reload_if_changed() {
                Ok(true) => {
                    metrics::counter!("idp_tls_reloads_total", "outcome" => "success").increment(1);
                    tracing::info!("TLS certificate reloaded");
                }
                Ok(false) => {}
                Err(e) => {
                    metrics::counter!("idp_tls_reloads_total", "outcome" => "failure").increment(1);
                    tracing::error!(error = %e, "could not reload the TLS certificate; still serving the previous one");
                }
            }
        }
    });
}

/// With TLS on, a request that arrived without it (the `http_redirect_listen` listener) gets
/// a permanent redirect (308: the method and body are kept) to the same path on the issuer.
pub async fn redirect_plain_http(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let tls_on = req
        .app_data::<web::Data<crate::startup::AppState>>()
        .is_some_and(|s| s.services.settings.tls_cert_file.is_some());
    if tls_on && !req.app_config().secure() {
        let issuer = req
            .app_data::<web::Data<crate::startup::AppState>>()
            .map(|s| s.services.settings.issuer_str().to_string())
            .unwrap_or_default();
        let target = format!(
            "{issuer}{}",
            req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/")
        );
        let response = HttpResponse::PermanentRedirect()
            .insert_header(("Location", target))
            .finish();
        return Ok(req.into_response(response));
    }
    next.call(req).await.map(ServiceResponse::map_into_boxed_body)
}
