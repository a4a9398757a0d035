//! Helpers for end-to-end tests: run the real `idp` binary on a fresh data directory and
//! look at its pages with headless Chromium.
#![allow(clippy::expect_used, clippy::panic)]

pub mod smtp;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A port free on 127.0.0.1 for a server started later, chosen below the kernel's ephemeral
/// range (32768 and up): a port from `bind(0)` is released before the server takes it, and
/// in between an outgoing connection of a parallel test may be given it (AddrInUse).
pub fn free_port() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    let start = hasher.finish();
    (0..2000u64)
        .map(|i| 20000 + ((start + i * 7919) % 12000) as u16)
        .find(|port| std::net::TcpListener::bind(("127.0.0.1", *port)).is_ok())
        .expect("a free port between 20000 and 32000")
}

/// The `idp` binary under test: `IDP_BIN`, or the debug build in the target directory.
pub fn idp_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("IDP_BIN") {
        return PathBuf::from(bin);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    let bin = target.join("debug/idp");
    assert!(
        bin.is_file(),
        "{} not found: run `cargo build -p idp` first (scripts/test.sh does)",
        bin.display()
    );
    bin
}

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A running `idp serve` on a free port, stopped (SIGTERM) when dropped.
pub struct Server {
    pub base: String,
    pub dir: tempfile::TempDir,
    child: Child,
}

impl Server {
    /// Starts the server in a fresh directory with the embedded default and `env` on top.
    pub fn start(env: &[(&str, &str)]) -> Self {
        Self::start_with_log(env, None)
    }

    /// Like [`Server::start`], writing the server's log (standard error) to `log`.
    pub fn start_with_log(env: &[(&str, &str)], log: Option<&Path>) -> Self {
        Self::start_at("127.0.0.1", env, log)
    }

    /// Like [`Server::start`], with the issuer `http://localhost:<port>`: a domain name,
    /// which passkeys need (browsers refuse an IP address as WebAuthn relying party id).
    pub fn start_on_localhost(env: &[(&str, &str)]) -> Self {
        Self::start_at("localhost", env, None)
    }

    /// Adds a user with `idp user add <args> --password-stdin` in the server's directory,
    /// as an administrator would on the host.
    pub fn add_user(&self, args: &[&str], password: &str) {
        use std::io::Write;
        let mut add = Command::new(idp_binary())
            .current_dir(self.dir.path())
            .args(["user", "add"])
            .args(args)
            .arg("--password-stdin")
            .stdin(Stdio::piped())
            .spawn()
            .expect("run idp user add");
        add.stdin
            .take()
            .expect("stdin")
            .write_all(password.as_bytes())
            .expect("write the password");
        assert!(add.wait().expect("idp user add").success(), "idp user add failed");
    }

    fn start_at(host: &str, env: &[(&str, &str)], log: Option<&Path>) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let base = format!("http://{host}:{port}");
        let mut command = Command::new(idp_binary());
        command
            .arg("serve")
            .current_dir(dir.path())
            .env("IDP_LISTEN", format!("127.0.0.1:{port}"))
            .env("IDP_ISSUER", &base)
            .env("IDP_ADMIN_UI_DIR", workspace_root().join("admin-ui/dist"))
            .env("IDP_THEMES_DIR", workspace_root().join("themes"))
            .env("IDP_LOG_FORMAT", "json")
            .stdout(Stdio::null())
            .stderr(match log {
                Some(path) => Stdio::from(std::fs::File::create(path).expect("log file")),
                None => Stdio::null(),
            });
        for (k, v) in env {
            command.env(k, v);
        }
        let child = command.spawn().expect("idp starts");
        let server = Self { base, dir, child };
        server.wait_ready();
        server
    }

    fn wait_ready(&self) {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            if let Ok(200) = reqwest::blocking_get_status(&format!("{}/readyz", self.base)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("idp did not become ready at {}", self.base);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// A tiny blocking GET without pulling reqwest's blocking feature.
mod reqwest {
    use std::io::{Read, Write};

    pub fn blocking_get_status(url: &str) -> std::io::Result<u16> {
        let rest = url.strip_prefix("http://").unwrap_or(url);
        let (host, path) = rest
            .split_once('/')
            .map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
        let mut stream = std::net::TcpStream::connect(host)?;
        write!(stream, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n")?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        response
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| std::io::Error::other("no status line"))
    }
}
