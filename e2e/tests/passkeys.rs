//! Passkeys in real Chromium with its virtual authenticator (WebDriver extension of W3C
//! WebAuthn §11): an administrator registers one at the enrolment their first login
//! requires, signs in with it alone from the username field's autofill (no username, no
//! password), uses it as the second factor after a password, and once it is removed on the
//! server it signs nobody in.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod webdriver;

use std::process::Command;

use base64::Engine;
use e2e::{Server, idp_binary};
use fantoccini::{Client, Locator};
use serde_json::Value;
use sha2::Digest;
use webdriver::{
    callback_listener, click_button, find, log_in, next_callback, query, screenshot, wait_for_text,
};

const ADMIN_PASSWORD: &str = "e2e-admin-password";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

struct App {
    server: Server,
    client_id: String,
    client_secret: String,
    redirect_uri: String,
}

impl App {
    fn authorize_url(&self) -> String {
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
    async fn amr(&self, code: &str) -> Vec<String> {
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

    fn idp(&self, args: &[&str]) -> std::process::Output {
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
async fn open_login_page(browser: &Client, app: &App) {
    // Cookies are deleted for the current page's host: the provider's.
    browser
        .goto(&format!("{}/healthz", app.server.base))
        .await
        .unwrap();
    browser.delete_all_cookies().await.unwrap();
    browser.goto(&app.authorize_url()).await.unwrap();
}

/// [`open_login_page`], then waits for the login form.
async fn start_login(browser: &Client, app: &App) {
    open_login_page(browser, app).await;
    find(browser, Locator::Css("#username")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passkey_registers_signs_in_alone_and_as_second_factor_in_chromium() {
    let server = Server::start_on_localhost(&[("IDP_BOOTSTRAP_ADMIN_PASSWORD", ADMIN_PASSWORD)]);
    let (callback_port, callback) = callback_listener();
    let redirect_uri = format!("http://127.0.0.1:{callback_port}/callback");
    let mut app = App {
        server,
        client_id: String::new(),
        client_secret: String::new(),
        redirect_uri,
    };
    let out = app.idp(&[
        "client",
        "add",
        "--name",
        "Passkey test app",
        "--redirect-uri",
        &app.redirect_uri,
        "--first-party",
        "--json",
    ]);
    let client: Value = serde_json::from_slice(&out.stdout).unwrap();
    app.client_id = client["client_id"].as_str().unwrap().into();
    app.client_secret = client["client_secret"].as_str().unwrap().into();

    let session = webdriver::open().await;
    let browser = &session.client;
    let authenticator = webdriver::add_virtual_authenticator(browser).await;

    // First login: the administrator must enrol a factor and picks a passkey.
    start_login(browser, &app).await;
    log_in(browser, "admin", ADMIN_PASSWORD).await;
    find(browser, Locator::Css("form[data-passkey=create]")).await;
    screenshot(browser, "passkey-enrol").await;
    webdriver::type_into(browser, "#passkey-name", "Test laptop").await;
    click_button(browser, "Create a passkey").await;
    find(browser, Locator::Css("#recovery-codes")).await;
    assert_eq!(
        webdriver::virtual_credentials(browser, &authenticator)
            .await
            .len(),
        1,
        "the authenticator keeps the new passkey"
    );
    click_button(browser, "I have saved them, continue").await;
    let code = query(&next_callback(&callback).await, "code").expect("a code");
    assert_eq!(app.amr(&code).await, ["pwd", "hwk", "user", "mfa"]);

    // Without username or password: the login page asks for a passkey in the username
    // field's autofill (conditional mediation), which the virtual authenticator answers at
    // once, as a person picking their passkey there would.
    open_login_page(browser, &app).await;
    let code = query(&next_callback(&callback).await, "code").expect("a code");
    assert_eq!(app.amr(&code).await, ["hwk", "user", "mfa"]);

    // As the second factor after the password: the key is unplugged while the password is
    // typed, and plugged in again on the second-factor page (with its signature counter:
    // a counter that goes back would mark a cloned key).
    let credentials = webdriver::virtual_credentials(browser, &authenticator).await;
    webdriver::remove_virtual_authenticator(browser, &authenticator).await;
    start_login(browser, &app).await;
    assert_eq!(
        find(browser, Locator::Css("#username"))
            .await
            .attr("autocomplete")
            .await
            .unwrap()
            .as_deref(),
        Some("username webauthn")
    );
    screenshot(browser, "passkey-login").await;
    log_in(browser, "admin", ADMIN_PASSWORD).await;
    find(browser, Locator::Css("form[data-passkey=get]")).await;
    screenshot(browser, "passkey-second-factor").await;
    let authenticator = webdriver::add_virtual_authenticator(browser).await;
    webdriver::add_virtual_credential(browser, &authenticator, &credentials[0]).await;
    click_button(browser, "Use your passkey").await;
    let code = query(&next_callback(&callback).await, "code").expect("a code");
    assert_eq!(app.amr(&code).await, ["pwd", "hwk", "user", "mfa"]);

    // Removed on the server (the user lost the device): the authenticator still offers it,
    // the provider refuses it.
    app.idp(&["user", "mfa", "reset", "admin"]);
    open_login_page(browser, &app).await;
    wait_for_text(browser, "That passkey did not work").await;
    assert!(
        browser.current_url().await.unwrap().as_str().contains("/login"),
        "still on the provider's login page"
    );
}
