//! Issue 18: TLS to the data stores. A PostgreSQL that accepts only TLS connections
//! (`hostssl`; plain ones are rejected) and a Redis that speaks only TLS, both with
//! certificates from a test CA, started by the test from Debian's binaries. The server runs
//! against them with `sslmode=verify-full` + `sslrootcert` and `rediss://` + `redis_ca_file`;
//! without TLS, or without trusting the CA, it refuses to start (exit 2, one line).
//!
//! PostgreSQL refuses to run as root, so the test runs it as the `postgres` user (the test
//! suite runs as root, as CI does).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{Backend, TestDb, spawn_app_with};
use serde_json::Value;

const MASTER_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

/// A test CA and a certificate it signed for 127.0.0.1, as PEM files in `dir`.
struct Pki {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn pki(dir: &Path) -> Pki {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "AImpact test CA");
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let mut params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "127.0.0.1");
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    let pki = Pki {
        ca: dir.join("ca.pem"),
        cert: dir.join("server.crt"),
        key: dir.join("server.key"),
    };
    std::fs::write(&pki.ca, ca_cert.pem()).unwrap();
    std::fs::write(&pki.cert, cert.pem()).unwrap();
    std::fs::write(&pki.key, key.serialize_pem()).unwrap();
    std::fs::set_permissions(&pki.key, std::fs::Permissions::from_mode(0o600)).unwrap();
    pki
}

/// A child process killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for_port(port: u16, what: &str) {
    for _ in 0..200 {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} did not start on port {port}");
}

fn postgres_bin(name: &str) -> PathBuf {
    let versions = std::fs::read_dir("/usr/lib/postgresql").expect("Debian's PostgreSQL");
    let mut found: Vec<PathBuf> = versions
        .filter_map(|v| v.ok())
        .map(|v| v.path().join("bin").join(name))
        .filter(|p| p.exists())
        .collect();
    found.sort();
    found.pop().unwrap_or_else(|| panic!("{name} of PostgreSQL"))
}

fn as_postgres(program: &Path) -> Command {
    let mut cmd = Command::new("runuser");
    cmd.args(["-u", "postgres", "--"]).arg(program);
    cmd
}

/// A PostgreSQL on a free port that accepts TLS connections only (trust authentication, the
/// `postgres` user), in a directory of `dir`.
fn tls_postgres(dir: &Path, pki: &Pki) -> (Process, u16) {
    let home = dir.join("pg");
    std::fs::create_dir(&home).unwrap();
    let chown = |path: &Path| {
        let status = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(path)
            .status()
            .unwrap();
        assert!(status.success(), "chown {}", path.display());
    };
    for file in [&pki.cert, &pki.key] {
        std::fs::copy(file, home.join(file.file_name().unwrap())).unwrap();
    }
    chown(dir);
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let data = home.join("data");
    let init = as_postgres(&postgres_bin("initdb"))
        .arg("-D")
        .arg(&data)
        .args(["-A", "trust", "-U", "postgres", "--no-sync"])
        .stdout(Stdio::null())
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "initdb: {}",
        String::from_utf8_lossy(&init.stderr)
    );
    std::fs::write(
        data.join("pg_hba.conf"),
        "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 reject\n",
    )
    .unwrap();
    chown(&home);
    let port = common::process::free_port();
    let child = as_postgres(&postgres_bin("postgres"))
        .arg("-D")
        .arg(&data)
        .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
        .arg("-c")
        .arg(format!("unix_socket_directories={}", home.display()))
        .args(["-c", "ssl=on", "-c", "fsync=off"])
        .arg("-c")
        .arg(format!("ssl_cert_file={}", home.join("server.crt").display()))
        .arg("-c")
        .arg(format!("ssl_key_file={}", home.join("server.key").display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let process = Process(child);
    wait_for_port(port, "PostgreSQL");
    (process, port)
}

/// A Redis on a free port that speaks TLS only.
fn tls_redis(pki: &Pki) -> (Process, u16) {
    let port = common::process::free_port();
    let child = Command::new("redis-server")
        .args([
            "--port",
            "0",
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .args(["--tls-port", &port.to_string(), "--tls-auth-clients", "no"])
        .arg("--tls-cert-file")
        .arg(&pki.cert)
        .arg("--tls-key-file")
        .arg(&pki.key)
        .arg("--tls-ca-cert-file")
        .arg(&pki.ca)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let process = Process(child);
    wait_for_port(port, "Redis");
    (process, port)
}

fn postgres_url(port: u16, query: &str) -> String {
    format!("postgres://postgres@127.0.0.1:{port}/postgres?{query}")
}

/// `idp serve` with `env`: its exit code and standard error, when it stops by itself.
fn serve_fails(dir: &Path, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_idp"))
        .current_dir(dir)
        .arg("serve")
        .env("IDP_LISTEN", "127.0.0.1:0")
        .env("IDP_MASTER_KEY", MASTER_KEY)
        .env("IDP_DATABASE_ACQUIRE_TIMEOUT_MS", "2000")
        .env("IDP_LOG_FORMAT", "json")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_runs_on_postgres_and_redis_that_require_tls() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let (_postgres, pg_port) = tls_postgres(dir.path(), &pki);
    let (_redis, redis_port) = tls_redis(&pki);
    let ca = pki.ca.display().to_string();
    let database = postgres_url(pg_port, &format!("sslmode=verify-full&sslrootcert={ca}"));
    let redis = format!("rediss://127.0.0.1:{redis_port}");

    let app = spawn_app_with(
        TestDb::new(Backend::Postgres).await,
        &[
            ("IDP_DATABASE_URL", &database),
            ("IDP_REDIS_URL", &redis),
            ("IDP_REDIS_CA_FILE", &ca),
        ],
    )
    .await;
    let ready: Value = app
        .http
        .get(format!("{}/readyz", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["checks"]["database"], "ok", "{ready}");
    assert_eq!(ready["checks"]["redis"], "ok", "{ready}");
    // A token (the database) and its introspection (the deny-list in Redis).
    let client = app.add_service_client(&["api"]).await;
    let token: Value = app
        .token_request(&client, &[("grant_type", "client_credentials")])
        .await
        .json()
        .await
        .unwrap();
    let access = token["access_token"].as_str().unwrap();
    assert_eq!(app.introspect(&client, access).await["active"], true);

    // Without TLS the database refuses the connection; without the CA the certificate is
    // not trusted (for either store): the server does not start.
    let disabled = postgres_url(pg_port, "sslmode=disable");
    let unknown_ca = postgres_url(pg_port, "sslmode=verify-full");
    for url in [&disabled, &unknown_ca] {
        let (code, stderr) = serve_fails(dir.path(), &[("IDP_DATABASE_URL", url)]);
        assert_eq!(code, Some(2), "{url}: {stderr}");
    }
    let (code, stderr) = serve_fails(
        dir.path(),
        &[("IDP_DATABASE_URL", &database), ("IDP_REDIS_URL", &redis)],
    );
    assert_eq!(code, Some(2), "rediss without the CA: {stderr}");
    assert!(stderr.contains("redis_url"), "{stderr}");
}
