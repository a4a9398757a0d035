//! Built-in TLS: served with the configured certificate, a new certificate picked up from
//! the same files without a restart, plain HTTP redirected, old protocols and weak ciphers
//! refused (checked with `openssl s_client`, as an auditor would).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{Backend, TestDb, test_settings};

struct Server {
    port: u16,
    redirect_port: u16,
    cert: PathBuf,
    key: PathBuf,
    _dir: tempfile::TempDir,
    _db: TestDb,
}

/// Writes a fresh self-signed certificate for 127.0.0.1 and returns its PEM.
fn write_certificate(cert: &Path, key: &Path) -> String {
    let generated = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let pem = generated.cert.pem();
    std::fs::write(key, generated.signing_key.serialize_pem()).unwrap();
    std::fs::write(cert, &pem).unwrap();
    pem
}

async fn start(min_version: &str) -> (Server, String) {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    let pem = write_certificate(&cert, &key);
    let (port, redirect_port) = (common::process::free_port(), common::process::free_port());
    let db = TestDb::new(Backend::Sqlite).await;
    let settings = test_settings(
        &db,
        &[
            ("IDP_LISTEN", &format!("127.0.0.1:{port}")),
            ("IDP_ISSUER", &format!("https://127.0.0.1:{port}")),
            ("IDP_TLS_CERT_FILE", cert.to_str().unwrap()),
            ("IDP_TLS_KEY_FILE", key.to_str().unwrap()),
            ("IDP_TLS_MIN_VERSION", min_version),
            ("IDP_TLS_RELOAD_INTERVAL_MS", "200"),
            ("IDP_HTTP_REDIRECT_LISTEN", &format!("127.0.0.1:{redirect_port}")),
        ],
    );
    let services = idp::services::Services::build(settings, true).await.unwrap();
    let app = idp::startup::Application::build(services).await.unwrap();
    tokio::spawn(app.server);
    let server = Server {
        port,
        redirect_port,
        cert,
        key,
        _dir: dir,
        _db: db,
    };
    (server, pem)
}

fn client_trusting(pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap())
        .tls_built_in_root_certs(false)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn served_to(client: &reqwest::Client, port: u16) -> bool {
    let url = format!("https://127.0.0.1:{port}/.well-known/openid-configuration");
    matches!(client.get(url).send().await, Ok(r) if r.status() == 200)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_certificate_is_served_without_a_restart() {
    let (server, first) = start("1.2").await;
    assert!(served_to(&client_trusting(&first), server.port).await);

    let second = write_certificate(&server.cert, &server.key);
    let renewed = client_trusting(&second);
    let mut picked_up = false;
    for _ in 0..50 {
        if served_to(&renewed, server.port).await {
            picked_up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(picked_up, "the new certificate was never served");
    assert!(
        !served_to(&client_trusting(&first), server.port).await,
        "the old one is gone"
    );

    // A broken pair in the files keeps the last good one serving.
    std::fs::write(&server.key, "not a key").unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(served_to(&renewed, server.port).await);
    let metrics = renewed
        .get(format!("https://127.0.0.1:{}/metrics", server.port))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("idp_tls_reloads_total{outcome=\"failure\"}"),
        "the failed reload is counted (the alert IdpTlsReloadFailing watches it)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_is_redirected_to_the_https_issuer() {
    let (server, _) = start("1.2").await;
    let response = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("http://127.0.0.1:{}/token?x=1", server.redirect_port))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 308, "permanent, keeping the method");
    assert_eq!(
        response.headers()["location"],
        format!("https://127.0.0.1:{}/token?x=1", server.port).as_str()
    );
}

/// Whether `openssl s_client` with `args` completes a handshake.
fn handshake(port: u16, args: &[&str]) -> bool {
    let output = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-servername",
            "localhost",
        ])
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssl is installed");
    let text = String::from_utf8_lossy(&output.stdout);
    text.contains("Cipher is ") && !text.contains("Cipher is (NONE)")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_protocols_and_weak_ciphers_are_refused() {
    let (server, _) = start("1.2").await;
    let port = server.port;
    let results = tokio::task::spawn_blocking(move || {
        [
            handshake(port, &["-tls1_3"]),
            handshake(port, &["-tls1_2"]),
            // The client is told to allow everything: the refusal is the server's.
            handshake(port, &["-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0"]),
            handshake(port, &["-tls1", "-cipher", "DEFAULT:@SECLEVEL=0"]),
            handshake(
                port,
                &[
                    "-tls1_2",
                    "-cipher",
                    "AES128-SHA:DES-CBC3-SHA:RC4-SHA:@SECLEVEL=0",
                ],
            ),
            handshake(
                port,
                &[
                    "-tls1_2",
                    "-cipher",
                    "ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES128-SHA",
                ],
            ),
        ]
    })
    .await
    .unwrap();
    assert_eq!(
        results,
        [true, true, false, false, false, false],
        "TLS 1.3 and 1.2 with AEAD only"
    );

    let (strict, _) = start("1.3").await;
    let port = strict.port;
    let (v13, v12) =
        tokio::task::spawn_blocking(move || (handshake(port, &["-tls1_3"]), handshake(port, &["-tls1_2"])))
            .await
            .unwrap();
    assert!(v13 && !v12, "tls_min_version = 1.3 refuses TLS 1.2");
}

#[test]
fn half_a_tls_configuration_is_refused() {
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
    };
    let only_cert = idp::config::Settings::load_from(
        None,
        env(&[
            ("IDP_TLS_CERT_FILE", "/tmp/c.pem"),
            ("IDP_ISSUER", "https://idp.example.com"),
        ]),
    );
    assert!(only_cert.unwrap_err().to_string().contains("tls_key_file"));
    let http_issuer = idp::config::Settings::load_from(
        None,
        env(&[
            ("IDP_TLS_CERT_FILE", "/tmp/c.pem"),
            ("IDP_TLS_KEY_FILE", "/tmp/k.pem"),
        ]),
    );
    assert!(http_issuer.unwrap_err().to_string().contains("https"));
}
