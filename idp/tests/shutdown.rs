//! Stopping a replica behind a load balancer without failing a request: with
//! `shutdown_drain_s`, SIGTERM first makes readiness fail while the server keeps serving, so
//! a balancer that polls `/readyz` (HAProxy in scripts/drill.sh) stops routing to it before
//! it stops accepting.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/process.rs"]
mod process;

use std::process::Stdio;
use std::time::{Duration, Instant};

use process::{free_port, get, idp_command, terminate, wait_ready};

#[test]
fn sigterm_first_fails_readiness_while_serving_then_stops() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = idp_command(dir.path())
        .arg("serve")
        .env("IDP_LISTEN", format!("127.0.0.1:{port}"))
        .env("IDP_SHUTDOWN_DRAIN_S", "3")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_ready(port);

    terminate(&child);
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
