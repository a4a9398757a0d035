//! A person logs in through the provider's own login and consent pages in real headless
//! Chromium (driven over WebDriver by ChromeDriver), and the relying party redeems the code.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod webdriver;

use std::process::Command;

use base64::Engine;
use e2e::{Server, idp_binary};
use fantoccini::Locator;
use serde_json::Value;
use sha2::Digest;
use webdriver::{callback_listener, next_callback, query, screenshot};

const ADMIN_PASSWORD: &str = "e2e-admin-password";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_logs_in_through_the_pages_in_chromium() {
    // The bootstrap administrator stands in for a user here: without the administrators' second
    // factor (tests/mfa.rs and admin_portal.rs cover it), this is the plain password login.
    let server = Server::start(&[
        ("IDP_BOOTSTRAP_ADMIN_PASSWORD", ADMIN_PASSWORD),
        ("IDP_MFA_REQUIRED_FOR_ADMINS", "false"),
    ]);
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

    let session = webdriver::open().await;
    let browser = &session.client;

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
    screenshot(browser, "login").await;
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
    screenshot(browser, "consent").await;
    allow.click().await.unwrap();

    let back = next_callback(&callback).await;
    let get = |name: &str| query(&back, name);
    assert_eq!(get("state").as_deref(), Some("browser-state-42"));
    assert_eq!(get("iss").as_deref(), Some(server.base.as_str()));
    let code = get("code").expect("a code");

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
