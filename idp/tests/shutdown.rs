//! Stopping a replica behind a load balancer without failing a request: with
//! `shutdown_drain_s`, SIGTERM first makes readiness fail while the server keeps serving, so
//! a balancer that polls `/readyz` (HAProxy in scripts/drill.sh) stops routing to it before
//! it stops accepting.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A plain HTTP/1.0 GET: the status code and the body, or None when nothing answers.
fn get(port: u16, path: &str) -> Option<(u16, String)> {
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

#[test]
fn sigterm_first_fails_readiness_while_serving_then_stops() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_idp"));
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("IDP_")) {
        command.env_remove(key);
    }
    let mut child = command
        .current_dir(dir.path())
        .arg("serve")
        .env("IDP_LISTEN", format!("127.0.0.1:{port}"))
        .env("IDP_SHUTDOWN_DRAIN_S", "3")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while get(port, "/readyz").map(|(status, _)| status) != Some(200) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "server did not become ready"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    // The signal is handled asynchronously: wait for readiness to turn.
    let signalled = Instant::now();
    let readiness = loop {
        let answer = get(port, "/readyz").expect("the server keeps accepting while it drains");
        if answer.0 != 200 || signalled.elapsed() > Duration::from_secs(2) {
            break answer;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(readiness.0, 503, "readiness fails at once: {}", readiness.1);
    assert!(readiness.1.contains(r#""status":"draining""#), "{}", readiness.1);
    let discovery =
        get(port, "/.well-known/openid-configuration").expect("requests are still served while draining");
    assert_eq!(discovery.0, 200);
    assert!(get(port, "/healthz").is_some_and(|(status, _)| status == 200));

    let status = child.wait().unwrap();
    assert!(status.success(), "the drained server exits 0, got {status:?}");
    assert!(
        get(port, "/healthz").is_none(),
        "after the drain the port is closed"
    );
}
