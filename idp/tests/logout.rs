//! Logout from the outside: OpenID Connect RP-Initiated Logout (with and without an
//! `id_token_hint`, registered and unregistered post-logout redirects, the confirmation page)
//! and Back-Channel Logout delivered to a test receiver, on both backends.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::browser::{Browser, form};
use common::{Backend, PASSWORD, REDIRECT, Registered, TestApp, spawn_app};
use serde_json::{Value, json};

const OFFLINE: &str = "openid offline_access";

async fn setup(backend: Backend) -> (TestApp, Registered) {
    let app = spawn_app(backend).await;
    app.add_user("rita").await;
    let client = app.add_client(false, |c| c.first_party = true).await;
    (app, client)
}

async fn refresh(app: &TestApp, client: &Registered, token: &str) -> reqwest::Response {
    app.token_request(
        client,
        &[("grant_type", "refresh_token"), ("refresh_token", token)],
    )
    .await
}

async fn logout_with_id_token_hint_ends_the_session_and_redirects(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_user("rita").await;
    let client = app
        .add_client(false, |c| {
            c.first_party = true;
            c.post_logout_redirect_uris = vec![
                idp::domain::client::RedirectUri::parse(
                    "http://127.0.0.1:9/bye",
                    idp::domain::client::ClientType::Confidential,
                )
                .unwrap(),
            ];
        })
        .await;
    let browser = Browser::new(&app.base);
    let (code, tokens) = login_with(&app, &browser, &client, "openid").await;
    let _ = code;
    let id_token = tokens["id_token"].as_str().unwrap();
    let access = tokens["access_token"].as_str().unwrap();
    let mut url = url::Url::parse(&format!("{}/logout", app.base)).unwrap();
    url.query_pairs_mut()
        .append_pair("id_token_hint", id_token)
        .append_pair("post_logout_redirect_uri", "http://127.0.0.1:9/bye")
        .append_pair("state", "st8");
    let back = browser.visit(url.as_str()).await.client_url();
    assert_eq!(back.as_str(), "http://127.0.0.1:9/bye?state=st8");
    // The session is over: prompt=none now fails; the session's (non-offline) tokens are revoked.
    assert_eq!(
        prompt_none(&app, &browser, &client).await.as_deref(),
        Some("login_required")
    );
    assert_eq!(app.introspect(&client, access).await, json!({ "active": false }));
    assert_eq!(
        app.services
            .store
            .query_events(&idp::audit::EventQuery {
                event_type: Some(idp::audit::EventType::Logout),
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn logout_keeps_offline_access_and_refuses_unregistered_redirects(backend: Backend) {
    let (app, client) = setup(backend).await;
    let browser = Browser::new(&app.base);
    let (_, tokens) = login_with(&app, &browser, &client, OFFLINE).await;
    let mut url = url::Url::parse(&format!("{}/logout", app.base)).unwrap();
    url.query_pairs_mut()
        .append_pair("id_token_hint", tokens["id_token"].as_str().unwrap())
        .append_pair("post_logout_redirect_uri", "https://evil.example/steal");
    let (status, _, html) = browser.visit(url.as_str()).await.page();
    assert_eq!(status, 200);
    assert!(
        html.contains("signed out"),
        "no redirect to an unregistered URI: {html}"
    );
    assert_eq!(
        refresh(&app, &client, tokens["refresh_token"].as_str().unwrap())
            .await
            .status(),
        200,
        "offline_access outlives the session"
    );
}

async fn logout_without_a_hint_asks_for_confirmation(backend: Backend) {
    let (app, client) = setup(backend).await;
    let browser = Browser::new(&app.base);
    login_with(&app, &browser, &client, "openid").await;
    let (status, _, html) = browser.visit(&format!("{}/logout", app.base)).await.page();
    assert_eq!(status, 200);
    assert!(html.contains("Sign out?"));
    assert_eq!(
        prompt_none(&app, &browser, &client).await,
        None,
        "not logged out before confirming"
    );
    let (_, _, done) = browser.submit(&form(&html)).await.page();
    assert!(done.contains("signed out"));
    assert_eq!(
        prompt_none(&app, &browser, &client).await.as_deref(),
        Some("login_required")
    );
}

async fn back_channel_logout_delivers_a_signed_logout_token(backend: Backend) {
    let receiver = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let receiver_uri = format!("http://{}/backchannel", receiver.local_addr().unwrap());
    let app = spawn_app(backend).await;
    app.add_user("rita").await;
    let client = app
        .add_client(false, |c| {
            c.first_party = true;
            c.backchannel_logout_uri = Some(receiver_uri.clone());
        })
        .await;
    let browser = Browser::new(&app.base);
    let (_, tokens) = login_with(&app, &browser, &client, "openid").await;
    let id_claims = app
        .services
        .keys
        .current()
        .verify(
            tokens["id_token"].as_str().unwrap(),
            &app.base,
            false,
            chrono::Utc::now(),
        )
        .unwrap()
        .1;
    let received = tokio::spawn(async move { receive_form(receiver).await });
    let mut url = url::Url::parse(&format!("{}/logout", app.base)).unwrap();
    url.query_pairs_mut()
        .append_pair("id_token_hint", tokens["id_token"].as_str().unwrap());
    browser.visit(url.as_str()).await;
    let body = tokio::time::timeout(std::time::Duration::from_secs(10), received)
        .await
        .unwrap()
        .unwrap();
    let token = url::form_urlencoded::parse(body.as_bytes())
        .find(|(k, _)| k == "logout_token")
        .unwrap()
        .1
        .into_owned();
    let (typ, claims) = app
        .services
        .keys
        .current()
        .verify(&token, &app.base, false, chrono::Utc::now())
        .unwrap();
    assert_eq!(typ.as_deref(), Some("logout+jwt"));
    assert_eq!(claims["aud"], client.id.as_str());
    assert_eq!(claims["sid"], id_claims["sid"]);
    assert_eq!(claims["sub"], id_claims["sub"]);
    assert!(claims["events"]["http://schemas.openid.net/event/backchannel-logout"].is_object());
    assert!(!claims.contains_key("nonce"));
}

/// Reads one HTTP request's body and answers 200.
async fn receive_form(listener: tokio::net::TcpListener) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut stream, _) = listener.accept().await.unwrap();
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).await.unwrap();
        data.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&data);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap_or(0))
                })
                .unwrap_or(0);
            if body.len() >= length {
                stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                    .await
                    .unwrap();
                return body.to_string();
            }
        }
        if n == 0 {
            return String::new();
        }
    }
}

async fn login_with(app: &TestApp, browser: &Browser, client: &Registered, scope: &str) -> (String, Value) {
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let mut url = url::Url::parse(&format!("{}/authorize", app.base)).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", &client.id)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("response_type", "code")
        .append_pair("scope", scope)
        .append_pair("code_challenge", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
        .append_pair("code_challenge_method", "S256");
    let landing = browser.visit(url.as_str()).await;
    let code = browser
        .log_in_and_consent(landing, "rita", PASSWORD)
        .await
        .query("code")
        .unwrap();
    let tokens = app
        .token_request(
            client,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", verifier),
            ],
        )
        .await
        .json()
        .await
        .unwrap();
    (code, tokens)
}

async fn prompt_none(app: &TestApp, browser: &Browser, client: &Registered) -> Option<String> {
    let mut url = url::Url::parse(&format!("{}/authorize", app.base)).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", &client.id)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid")
        .append_pair("prompt", "none");
    let back = browser.visit(url.as_str()).await.client_url();
    back.query_pairs()
        .find(|(k, _)| k == "error")
        .map(|(_, v)| v.into_owned())
}

on_both_backends!(
    logout_with_id_token_hint_ends_the_session_and_redirects,
    logout_keeps_offline_access_and_refuses_unregistered_redirects,
    logout_without_a_hint_asks_for_confirmation,
    back_channel_logout_delivers_a_signed_logout_token,
);
