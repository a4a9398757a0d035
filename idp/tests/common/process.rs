//! The real `idp` binary as a child process, as an operator starts it: a clean environment,
//! a free port, readiness polled over plain HTTP. Included by `common` and, on its own
//! (`#[path]`), by the tests that need nothing else from `common`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A port free on 127.0.0.1 for a server started later, below the ephemeral range.
pub fn free_port() -> u16 {
    e2e::free_port()
}

/// `idp` run in `dir`, with no `IDP_*` variable of the environment running the tests.
pub fn idp_command(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_idp"));
    command.current_dir(dir);
    for (key, _) in std::env::vars().filter(|(key, _)| key.starts_with("IDP_")) {
        command.env_remove(key);
    }
    command
}

/// A plain HTTP/1.0 GET: the status code and the body, or None when nothing answers.
pub fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split(' ').nth(1)?.parse().ok()?;
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default().to_string();
    Some((status, body))
}

/// Waits until `/readyz` on `port` answers 200; panics after 30 seconds.
pub fn wait_ready(port: u16) {
    let started = Instant::now();
    while get(port, "/readyz").map(|(status, _)| status) != Some(200) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the server did not become ready"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends SIGTERM to the child (as Kubernetes and systemd stop a server).
pub fn terminate(child: &Child) {
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
}

/// Kills the child when dropped: a failed assertion leaves no server behind.
pub struct Server(pub Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `idp` run as a command (not a server) in `dir`: one hashing thread, as a small machine.
pub fn cli(dir: &Path) -> Command {
    let mut cmd = idp_command(dir);
    cmd.env("IDP_PASSWORD_HASH_CONCURRENCY", "1");
    cmd
}

pub fn run(dir: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = cli(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A failure is one line on stderr and a non-zero exit.
pub fn assert_one_line_failure(o: &Output, needle: &str) {
    assert!(
        !o.status.success(),
        "expected failure, got success: {}",
        stdout(o)
    );
    let err = stderr(o);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line, got: {err}");
    assert!(
        lines[0].contains(needle),
        "{:?} does not mention {needle:?}",
        lines[0]
    );
}
