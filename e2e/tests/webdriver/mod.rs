//! Real headless Chromium over WebDriver (ChromeDriver), shared by the browser tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use e2e::{Server, idp_binary, workspace_root};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::Value;
use sha2::Digest;

pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

/// A ChromeDriver process and a browser session on it; both end when dropped/closed.
pub struct Browser {
    pub client: Client,
    _driver: Driver,
    _profile: tempfile::TempDir,
}

/// ChromeDriver in a process group of its own, with the Chromium it starts: dropping it
/// kills the whole group, so no browser outlives its test (even one that panicked before
/// closing its session).
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_chromedriver() -> (Driver, u16) {
    let port = e2e::free_port();
    let driver = Driver(
        Command::new(std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into()))
            .arg(format!("--port={port}"))
            .process_group(0)
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

/// A fresh browser (own profile: no cookies, no storage) at 1280×900.
pub async fn open() -> Browser {
    // reqwest and fantoccini both bring rustls; choose its crypto provider once.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let (driver, port) = start_chromedriver();
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
    let client = ClientBuilder::rustls()
        .unwrap()
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .unwrap();
    Browser {
        client,
        _driver: driver,
        _profile: profile,
    }
}

/// Saves the page as `e2e/screenshots/<name>.png`, which CI keeps.
pub async fn screenshot(client: &Client, name: &str) {
    let dir = workspace_root().join("e2e/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let png = client.screenshot().await.unwrap();
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

/// Waits for the element, up to 20 seconds.
pub async fn find(client: &Client, locator: Locator<'_>) -> fantoccini::elements::Element {
    client
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(locator)
        .await
        .unwrap_or_else(|e| panic!("{locator:?} never appeared: {e}"))
}

/// Waits until the page's text contains `text`, up to 20 seconds.
pub async fn wait_for_text(client: &Client, text: &str) {
    for _ in 0..200 {
        if let Ok(body) = client.find(Locator::Css("body")).await
            && body.text().await.unwrap_or_default().contains(text)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let body = client.source().await.unwrap_or_default();
    panic!("{text:?} never appeared in: {body}");
}

pub async fn click_button(client: &Client, label: &str) {
    let xpath = format!("//button[normalize-space()='{label}']");
    find(client, Locator::XPath(&xpath)).await.click().await.unwrap();
}

pub async fn type_into(client: &Client, css: &str, text: &str) {
    let field = find(client, Locator::Css(css)).await;
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

/// Logs in on the provider's login page.
pub async fn log_in(client: &Client, username: &str, password: &str) {
    type_into(client, "#username", username).await;
    type_into(client, "#password", password).await;
    find(client, Locator::Css("button[type=submit]"))
        .await
        .click()
        .await
        .unwrap();
}

/// Enrols an authenticator app on the enrolment page the login led to, as a person would:
/// reads the key shown under the QR code, types the app's code, keeps the recovery codes.
/// Returns the key (base32) and the recovery codes.
pub async fn enrol_second_factor(client: &Client, screenshots: bool) -> (String, Vec<String>) {
    let key = find(client, Locator::Css("#manual-key"))
        .await
        .text()
        .await
        .unwrap();
    find(client, Locator::Css(".qr svg")).await;
    if screenshots {
        screenshot(client, "mfa-enrol").await;
    }
    type_into(client, "#code", &totp_code(&key, 0)).await;
    click_button(client, "Confirm").await;
    find(client, Locator::Css("#recovery-codes")).await;
    let mut codes = Vec::new();
    for code in client
        .find_all(Locator::Css("#recovery-codes code"))
        .await
        .unwrap()
    {
        codes.push(code.text().await.unwrap());
    }
    if screenshots {
        screenshot(client, "mfa-recovery-codes").await;
    }
    click_button(client, "I have saved them, continue").await;
    (key.replace(' ', ""), codes)
}

/// The RFC 6238 code of `key` (base32), `steps_ahead` 30-second steps from now.
pub fn totp_code(key: &str, steps_ahead: u64) -> String {
    let secret = totp_rs::Secret::try_from_base32(key.replace(' ', "")).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    totp_rs::Builder::new()
        .with_secret(secret.as_ref().to_vec())
        .build_noncompliant()
        .generate(now + steps_ahead * 30)
        .to_string()
}

/// Accepts one request on a relying party's callback and returns its path and query.
pub fn callback_listener() -> (u16, std::sync::mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        while let Ok((mut stream, _)) = listener.accept() {
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

/// The next request the callback listener saw, as a URL.
pub async fn next_callback(rx: &std::sync::mpsc::Receiver<String>) -> url::Url {
    loop {
        let path = tokio::task::block_in_place(|| rx.recv_timeout(Duration::from_secs(20)))
            .expect("the browser reached the callback");
        // Chromium also asks the callback's host for its icon.
        if !path.starts_with("/favicon") {
            return url::Url::parse(&format!("http://127.0.0.1{path}")).unwrap();
        }
    }
}

pub fn query(url: &url::Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// A command of the WebDriver extension of W3C WebAuthn §11 (virtual authenticators), which
/// ChromeDriver implements: `path` below `/session/{id}/webauthn/`.
#[derive(Debug)]
struct WebAuthnCommand {
    method: http::Method,
    path: String,
    body: Option<serde_json::Value>,
}

impl fantoccini::wd::WebDriverCompatibleCommand for WebAuthnCommand {
    fn endpoint(&self, base_url: &url::Url, session_id: Option<&str>) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/webauthn/{}",
            session_id.unwrap_or_default(),
            self.path
        ))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        (self.method.clone(), self.body.as_ref().map(|b| b.to_string()))
    }
}

/// Adds a virtual platform authenticator that keeps discoverable credentials and verifies
/// its user (a phone's or laptop's fingerprint reader, as far as the page can tell); returns
/// its id. Chromium then answers WebAuthn requests itself, without any dialog.
pub async fn add_virtual_authenticator(client: &Client) -> String {
    let added = client
        .issue_cmd(WebAuthnCommand {
            method: http::Method::POST,
            path: "authenticator".into(),
            body: Some(serde_json::json!({
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": true,
                "hasUserVerification": true,
                "isUserVerified": true,
                "isUserConsenting": true,
            })),
        })
        .await
        .expect("ChromeDriver adds a virtual authenticator");
    added.as_str().expect("an authenticator id").to_string()
}

/// The credentials the virtual authenticator keeps.
pub async fn virtual_credentials(client: &Client, authenticator: &str) -> Vec<serde_json::Value> {
    let listed = client
        .issue_cmd(WebAuthnCommand {
            method: http::Method::GET,
            path: format!("authenticator/{authenticator}/credentials"),
            body: None,
        })
        .await
        .unwrap();
    listed.as_array().cloned().unwrap_or_default()
}

/// Removes a virtual authenticator (as if the security key were unplugged).
pub async fn remove_virtual_authenticator(client: &Client, authenticator: &str) {
    client
        .issue_cmd(WebAuthnCommand {
            method: http::Method::DELETE,
            path: format!("authenticator/{authenticator}"),
            body: None,
        })
        .await
        .unwrap();
}

/// Puts a credential read with [`virtual_credentials`] (private key included) into an
/// authenticator: the same passkey, on a device plugged in again.
pub async fn add_virtual_credential(client: &Client, authenticator: &str, credential: &serde_json::Value) {
    client
        .issue_cmd(WebAuthnCommand {
            method: http::Method::POST,
            path: format!("authenticator/{authenticator}/credential"),
            body: Some(credential.clone()),
        })
        .await
        .unwrap();
}

/// The provider under test with one registered first-party client whose redirect URI is a
/// local callback listener.
pub struct App {
    pub server: Server,
    pub client_id: String,
    pub client_secret: String,
    pub redirect_uri: String,
}

impl App {
    /// Registers a confidential first-party client named `name` with the CLI.
    pub fn register(server: Server, redirect_uri: String, name: &str) -> Self {
        let mut app = Self {
            server,
            client_id: String::new(),
            client_secret: String::new(),
            redirect_uri,
        };
        let out = app.idp(&[
            "client",
            "add",
            "--name",
            name,
            "--redirect-uri",
            &app.redirect_uri,
            "--first-party",
            "--json",
        ]);
        let client: Value = serde_json::from_slice(&out.stdout).unwrap();
        app.client_id = client["client_id"].as_str().unwrap().into();
        app.client_secret = client["client_secret"].as_str().unwrap().into();
        app
    }

    pub fn authorize_url(&self) -> String {
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(sha2::Sha256::digest(VERIFIER.as_bytes()));
        let mut url = url::Url::parse(&format!("{}/authorize", self.server.base)).unwrap();
        url.query_pairs_mut()
            .append_pair("client_id", &self.client_id)
            .append_pair("redirect_uri", &self.redirect_uri)
            .append_pair("response_type", "code")
            .append_pair("scope", "openid")
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        url.to_string()
    }

    /// The `amr` of the ID token the client gets for `code`.
    pub async fn amr(&self, code: &str) -> Vec<String> {
        let tokens: Value = reqwest::Client::new()
            .post(format!("{}/token", self.server.base))
            .basic_auth(&self.client_id, Some(&self.client_secret))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", &self.redirect_uri),
                ("code_verifier", VERIFIER),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let payload = tokens["id_token"].as_str().unwrap().split('.').nth(1).unwrap();
        let claims: Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap(),
        )
        .unwrap();
        claims["amr"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m.as_str().unwrap().to_string())
            .collect()
    }

    pub fn idp(&self, args: &[&str]) -> std::process::Output {
        let out = Command::new(idp_binary())
            .current_dir(self.server.dir.path())
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        out
    }
}

/// A fresh login: the session cookie is dropped (the virtual authenticator stays), and the
/// application sends the browser to the provider.
pub async fn open_login_page(browser: &Client, app: &App) {
    // Cookies are deleted for the current page's host: the provider's.
    browser
        .goto(&format!("{}/healthz", app.server.base))
        .await
        .unwrap();
    browser.delete_all_cookies().await.unwrap();
    browser.goto(&app.authorize_url()).await.unwrap();
}

/// [`open_login_page`], then waits for the login form.
pub async fn start_login(browser: &Client, app: &App) {
    open_login_page(browser, app).await;
    find(browser, Locator::Css("#username")).await;
}
