//! Issue 15 #12: a burst of concurrent logins against the real binary leaves resident memory
//! bounded (argon2 runs on a fixed set of workers, each reusing one 19 MiB buffer).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Stdio;

use common::browser::{Browser, form};
use common::process::{Server, free_port, idp_command};

fn resident_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap();
    kib / 1024.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_surge_leaves_memory_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let child = idp_command(dir.path())
        .arg("serve")
        .env("IDP_LISTEN", format!("127.0.0.1:{port}"))
        .env("IDP_ISSUER", &base)
        .env("IDP_DATA_DIR", dir.path())
        .env("IDP_BOOTSTRAP_ADMIN_PASSWORD", common::ADMIN_PASSWORD)
        .env("IDP_PASSWORD_HASH_CONCURRENCY", "2")
        .env("IDP_RATE_LIMIT_LOGIN_IP_PER_MINUTE", "0")
        .env("IDP_LOGIN_FAILURES_IP_PER_MINUTE", "0")
        .env("IDP_LOGIN_ACCOUNT_FAILURES_BEFORE_SLOWDOWN", "0")
        .env("IDP_LOCKOUT_THRESHOLD", "1000000")
        .env("IDP_LOG_LEVEL", "warn")
        .env(
            "IDP_THEMES_DIR",
            concat!(env!("CARGO_MANIFEST_DIR"), "/../themes"),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let _server = Server(child);
    let http = reqwest::Client::new();
    for _ in 0..200 {
        if http
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let idle = resident_mib(pid);
    let start = format!(
        "{base}/authorize?client_id=admin-portal&redirect_uri={}&response_type=code&scope=openid\
         &code_challenge={}&code_challenge_method=S256",
        url::form_urlencoded::byte_serialize(format!("{base}/admin/callback").as_bytes()).collect::<String>(),
        common::CHALLENGE
    );
    let mut peak: f64 = idle;
    // 32 concurrent browsers, three waves: every login (right or wrong password) is a hash.
    for wave in 0..3 {
        let logins = (0..32).map(|i| {
            let start = start.clone();
            let base = base.clone();
            async move {
                let browser = Browser::new(&base);
                let (_, _, html) = browser.visit(&start).await.page();
                let password = if (i + wave) % 4 == 0 {
                    "not the password"
                } else {
                    common::ADMIN_PASSWORD
                };
                let login = form(&html).set("username", "admin").set("password", password);
                browser.submit(&login).await;
            }
        });
        futures_util::future::join_all(logins).await;
        peak = peak.max(resident_mib(pid));
    }
    let after = resident_mib(pid);
    // Bound: idle + 2 workers x 19 MiB + margin; the ceiling is generous on purpose.
    assert!(
        after < 256.0 && peak < 256.0,
        "idle {idle:.0} MiB, peak {peak:.0} MiB, after {after:.0} MiB"
    );
    eprintln!("resident memory: idle {idle:.0} MiB, peak {peak:.0} MiB, after {after:.0} MiB");
}
