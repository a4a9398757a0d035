//! A person logs in through the provider's own login and consent pages in real headless
//! Chromium (driven over WebDriver by ChromeDriver), and the relying party redeems the code.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use e2e::{Server, idp_binary, workspace_root};
use fantoccini::{ClientBuilder, Locator};
use serde_json::Value;
use sha2::Digest;

const ADMIN_PASSWORD: &str = "e2e-admin-password";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_chromedriver() -> (Driver, u16) {
    let port = free_port();
    let driver = Driver(
        Command::new(std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into()))
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver runs (scripts/install-tools.sh --test installs it)"),
    );
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return (driver, port);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("chromedriver did not start");
}

/// Accepts one request on the relying party's callback and returns its path and query.
fn callback_listener() -> (u16, std::sync::mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        if let Ok((mut stream, _)) = listener.accept() {
            let mut line = String::new();
            BufReader::new(&stream).read_line(&mut line).unwrap();
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 12\r\n\r\nlogged in ok",
            );
            let _ = tx.send(line.split_whitespace().nth(1).unwrap_or_default().to_string());
        }
    });
    (port, rx)
}

async fn screenshot(client: &fantoccini::Client, name: &str) {
    let dir = workspace_root().join("e2e/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let png = client.screenshot().await.unwrap();
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_logs_in_through_the_pages_in_chromium() {
    let server = Server::start(&[("IDP_BOOTSTRAP_ADMIN_PASSWORD", ADMIN_PASSWORD)]);
    let (callback_port, callback) = callback_listener();
    let redirect_uri = format!("http://127.0.0.1:{callback_port}/callback");
    let registered = Command::new(idp_binary())
        .current_dir(server.dir.path())
        .args([
            "client",
            "add",
            "--name",
            "Browser test app",
            "--redirect-uri",
            &redirect_uri,
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        registered.status.success(),
        "{}",
        String::from_utf8_lossy(&registered.stderr)
    );
    let client: Value = serde_json::from_slice(&registered.stdout).unwrap();
    let client_id = client["client_id"].as_str().unwrap().to_string();
    let client_secret = client["client_secret"].as_str().unwrap().to_string();

    // reqwest and fantoccini both bring rustls; choose its crypto provider once.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let (_driver, driver_port) = start_chromedriver();
    let profile = tempfile::tempdir().unwrap();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--window-size=1280,900", format!("--user-data-dir={}", profile.path().display())],
        }),
    );
    let browser = ClientBuilder::rustls()
        .unwrap()
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{driver_port}"))
        .await
        .unwrap();

    let challenge =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(VERIFIER.as_bytes()));
    let mut authorize = url::Url::parse(&format!("{}/authorize", server.base)).unwrap();
    authorize
        .query_pairs_mut()
        .append_pair("client_id", &client_id)
        .append_pair("redirect_uri", &redirect_uri)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid profile email")
        .append_pair("state", "browser-state-42")
        .append_pair("nonce", "n-0S6_WzA2Mj")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    browser.goto(authorize.as_str()).await.unwrap();

    browser
        .wait()
        .for_element(Locator::Css("#username"))
        .await
        .unwrap();
    screenshot(&browser, "login").await;
    browser
        .find(Locator::Css("#username"))
        .await
        .unwrap()
        .send_keys("admin")
        .await
        .unwrap();
    browser
        .find(Locator::Css("#password"))
        .await
        .unwrap()
        .send_keys(ADMIN_PASSWORD)
        .await
        .unwrap();
    browser
        .find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();

    let allow = browser
        .wait()
        .for_element(Locator::Css("button[value=allow]"))
        .await
        .unwrap();
    screenshot(&browser, "consent").await;
    allow.click().await.unwrap();

    let path = tokio::task::spawn_blocking(move || callback.recv_timeout(Duration::from_secs(20)))
        .await
        .unwrap()
        .expect("the browser reached the callback");
    let back = url::Url::parse(&format!("http://127.0.0.1{path}")).unwrap();
    let get = |name: &str| {
        back.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    assert_eq!(get("state").as_deref(), Some("browser-state-42"));
    assert_eq!(get("iss").as_deref(), Some(server.base.as_str()));
    let code = get("code").expect("a code");
    browser.close().await.unwrap();

    let tokens: Value = reqwest::Client::new()
        .post(format!("{}/token", server.base))
        .basic_auth(&client_id, Some(&client_secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &redirect_uri),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = tokens["access_token"].as_str().expect("an access token");
    assert!(tokens["id_token"].is_string());
    let info: Value = reqwest::Client::new()
        .get(format!("{}/userinfo", server.base))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["preferred_username"], "admin");
}
