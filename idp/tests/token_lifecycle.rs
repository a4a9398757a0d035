//! The token lifecycle from the outside: refresh rotation and reuse detection (strict and
//! within a reuse window, under concurrency), revocation, introspection of every state,
//! logout (RP-initiated and back-channel), two instances sharing a database and Redis, and
//! restarts. SQLite runs with the in-process deny-list, PostgreSQL with Redis.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashSet;

use common::browser::{Browser, form};
use common::{Backend, PASSWORD, REDIRECT, Registered, TestApp, TestDb, spawn_app, spawn_app_with};
use serde_json::{Value, json};

const OFFLINE: &str = "openid offline_access";

async fn refresh(app: &TestApp, client: &Registered, token: &str) -> reqwest::Response {
    app.token_request(
        client,
        &[("grant_type", "refresh_token"), ("refresh_token", token)],
    )
    .await
}

async fn events(app: &TestApp, kind: idp::audit::EventType) -> Vec<idp::audit::SecurityEvent> {
    let query = idp::audit::EventQuery {
        event_type: Some(kind),
        limit: 100,
        ..Default::default()
    };
    app.services.store.query_events(&query).await.unwrap()
}

async fn setup(backend: Backend, reuse_window: i64) -> (TestApp, Registered) {
    let app = spawn_app(backend).await;
    app.add_user("rita").await;
    let client = app
        .add_client(false, |c| {
            c.first_party = true;
            c.refresh_reuse_window_s = reuse_window;
        })
        .await;
    (app, client)
}

async fn a_refresh_rotates_and_a_reused_token_revokes_the_whole_family(backend: Backend) {
    let (app, client) = setup(backend, 0).await;
    let first = app.tokens(&client, "rita", OFFLINE).await;
    let r1 = first["refresh_token"].as_str().unwrap().to_string();
    let second: Value = refresh(&app, &client, &r1).await.json().await.unwrap();
    let r2 = second["refresh_token"].as_str().unwrap().to_string();
    let a2 = second["access_token"].as_str().unwrap().to_string();
    assert_ne!(r1, r2);
    assert!(
        second["id_token"].is_string(),
        "an ID token on refresh for openid grants"
    );
    assert_eq!(app.introspect(&client, &a2).await["active"], true);

    // The retired token again: a reuse.
    let reused = refresh(&app, &client, &r1).await;
    assert_eq!(reused.status(), 400);
    assert_eq!(reused.json::<Value>().await.unwrap()["error"], "invalid_grant");
    // The whole family is gone: the newest refresh token and the access tokens.
    assert_eq!(refresh(&app, &client, &r2).await.status(), 400);
    assert_eq!(app.introspect(&client, &a2).await, json!({ "active": false }));
    assert_eq!(
        app.introspect(&client, first["access_token"].as_str().unwrap())
            .await,
        json!({ "active": false })
    );
    assert_eq!(app.introspect(&client, &r2).await, json!({ "active": false }));
    let reuse = events(&app, idp::audit::EventType::RefreshTokenReused).await;
    assert_eq!(reuse.len(), 1);
    assert_eq!(reuse[0].client_id.as_deref(), Some(client.id.as_str()));
    assert!(reuse[0].ip.is_some());
}

async fn within_the_reuse_window_a_retry_gets_the_same_answer(backend: Backend) {
    let clock = idp::domain::clock::ManualClock::at(chrono::Utc::now());
    let app = common::spawn_app_at(backend, clock.clone()).await;
    app.add_user("rita").await;
    let client = app
        .add_client(false, |c| {
            c.first_party = true;
            c.refresh_reuse_window_s = 5;
        })
        .await;
    let first = app.tokens(&client, "rita", OFFLINE).await;
    let r1 = first["refresh_token"].as_str().unwrap().to_string();
    let answer: Value = refresh(&app, &client, &r1).await.json().await.unwrap();
    clock.advance(chrono::Duration::seconds(4));
    let retry: Value = refresh(&app, &client, &r1).await.json().await.unwrap();
    assert_eq!(answer, retry, "the very same successor tokens");
    assert_eq!(
        app.introspect(&client, answer["access_token"].as_str().unwrap())
            .await["active"],
        true
    );
    // After the window, the strict rule applies: a reuse, and the family is revoked.
    clock.advance(chrono::Duration::seconds(2));
    assert_eq!(refresh(&app, &client, &r1).await.status(), 400);
    assert_eq!(
        refresh(&app, &client, answer["refresh_token"].as_str().unwrap())
            .await
            .status(),
        400
    );
}

async fn concurrent_refreshes(
    app: &TestApp,
    client: &Registered,
    token: &str,
    n: usize,
) -> Vec<(u16, Value)> {
    let requests = (0..n).map(|_| async {
        let response = refresh(app, client, token).await;
        (
            response.status().as_u16(),
            response.json::<Value>().await.unwrap(),
        )
    });
    futures_util::future::join_all(requests).await
}

async fn twenty_concurrent_strict_refreshes_rotate_exactly_once(backend: Backend) {
    let (app, client) = setup(backend, 0).await;
    let first = app.tokens(&client, "rita", OFFLINE).await;
    let results = concurrent_refreshes(&app, &client, first["refresh_token"].as_str().unwrap(), 20).await;
    let successes = results.iter().filter(|(status, _)| *status == 200).count();
    assert_eq!(successes, 1, "exactly one rotation: {results:?}");
    assert!(
        results
            .iter()
            .all(|(status, body)| *status == 200 || body["error"] == "invalid_grant")
    );
}

async fn twenty_concurrent_refreshes_within_the_window_all_get_one_answer(backend: Backend) {
    let (app, client) = setup(backend, 10).await;
    let first = app.tokens(&client, "rita", OFFLINE).await;
    let results = concurrent_refreshes(&app, &client, first["refresh_token"].as_str().unwrap(), 20).await;
    assert!(results.iter().all(|(status, _)| *status == 200), "{results:?}");
    let distinct: HashSet<String> = results.iter().map(|(_, body)| body.to_string()).collect();
    assert_eq!(distinct.len(), 1, "all answers identical");
    // One family, one successor: the answer's refresh token works exactly once.
    let successor = results[0].1["refresh_token"].as_str().unwrap();
    assert_eq!(refresh(&app, &client, successor).await.status(), 200);
}

async fn a_refresh_token_of_another_client_or_a_wider_scope_is_refused(backend: Backend) {
    let (app, client) = setup(backend, 0).await;
    let other = app.add_client(false, |c| c.first_party = true).await;
    let first = app.tokens(&client, "rita", OFFLINE).await;
    let r1 = first["refresh_token"].as_str().unwrap();
    assert_eq!(
        refresh(&app, &other, r1).await.json::<Value>().await.unwrap()["error"],
        "invalid_grant"
    );
    let wider = app
        .token_request(
            &client,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", r1),
                ("scope", "openid offline_access email"),
            ],
        )
        .await;
    assert_eq!(wider.json::<Value>().await.unwrap()["error"], "invalid_scope");
    let narrower: Value = app
        .token_request(
            &client,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", r1),
                ("scope", "offline_access"),
            ],
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(narrower["scope"], "offline_access");
    assert!(narrower.get("id_token").is_none());
}

async fn a_disabled_user_can_no_longer_refresh(backend: Backend) {
    let (app, client) = setup(backend, 0).await;
    let first = app.tokens(&client, "rita", OFFLINE).await;
    idp::manage::users::set_status(
        &app.services,
        "rita",
        idp::domain::user::UserStatus::Disabled,
        idp::manage::Actor::Cli,
    )
    .await
    .unwrap();
    assert_eq!(
        refresh(&app, &client, first["refresh_token"].as_str().unwrap())
            .await
            .status(),
        400
    );
}

async fn revoking_tokens_follows_rfc_7009(backend: Backend) {
    let (app, client) = setup(backend, 0).await;
    let other = app.add_client(false, |c| c.first_party = true).await;
    let tokens = app.tokens(&client, "rita", OFFLINE).await;
    let access = tokens["access_token"].as_str().unwrap();
    let refresh_token = tokens["refresh_token"].as_str().unwrap();

    // Another client cannot revoke it: 200, nothing revoked.
    assert_eq!(
        app.post_as(&other, "/revoke", &[("token", access)])
            .await
            .status(),
        200
    );
    assert_eq!(app.introspect(&client, access).await["active"], true);
    // Unknown and malformed tokens: 200.
    assert_eq!(
        app.post_as(&client, "/revoke", &[("token", "no-such-token")])
            .await
            .status(),
        200
    );
    // Without client authentication: 401.
    let anonymous = app
        .http
        .post(format!("{}/revoke", app.base))
        .form(&[("token", access)])
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);

    // Revoking the access token makes it inactive at once, for introspection and userinfo.
    assert_eq!(
        app.post_as(
            &client,
            "/revoke",
            &[("token", access), ("token_type_hint", "access_token")]
        )
        .await
        .status(),
        200
    );
    assert_eq!(app.introspect(&client, access).await, json!({ "active": false }));
    assert_eq!(
        app.http
            .get(format!("{}/userinfo", app.base))
            .bearer_auth(access)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    // The refresh token is still good; revoking it (with a misleading hint) ends the family.
    let refreshed: Value = refresh(&app, &client, refresh_token).await.json().await.unwrap();
    let r2 = refreshed["refresh_token"].as_str().unwrap();
    let a2 = refreshed["access_token"].as_str().unwrap();
    assert_eq!(
        app.post_as(
            &client,
            "/revoke",
            &[("token", r2), ("token_type_hint", "access_token")]
        )
        .await
        .status(),
        200
    );
    assert_eq!(refresh(&app, &client, r2).await.status(), 400);
    assert_eq!(app.introspect(&client, a2).await, json!({ "active": false }));
    assert!(!events(&app, idp::audit::EventType::TokenRevoked).await.is_empty());
}

async fn introspection_answers_every_state(backend: Backend) {
    let clock = idp::domain::clock::ManualClock::at(chrono::Utc::now());
    let app = common::spawn_app_at(backend, clock.clone()).await;
    app.add_user("rita").await;
    let client = app.add_client(false, |c| c.first_party = true).await;
    let tokens = app.tokens(&client, "rita", "openid email offline_access").await;
    let access = tokens["access_token"].as_str().unwrap();
    let active = app.introspect(&client, access).await;
    assert_eq!(active["active"], true);
    assert_eq!(active["client_id"], client.id.as_str());
    assert_eq!(active["username"], "rita");
    assert_eq!(active["token_type"], "Bearer");
    assert_eq!(active["iss"], app.base.as_str());
    for field in ["scope", "sub", "aud", "exp", "iat", "nbf", "jti"] {
        assert!(active.get(field).is_some(), "{field} missing: {active}");
    }
    let refresh_info = app
        .introspect(&client, tokens["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(refresh_info["active"], true);
    assert_eq!(refresh_info["token_type"], "refresh_token");
    assert_eq!(refresh_info["username"], "rita");

    // Signed by someone else, malformed, unknown: inactive and nothing else.
    let foreign =
        "eyJhbGciOiJIUzI1NiIsInR5cCI6ImF0K2p3dCJ9.eyJzdWIiOiJ4IiwiZXhwIjo0MTAyNDQ0ODAwfQ.c2lnbmF0dXJl";
    for token in [
        foreign,
        "garbage",
        "",
        "a.b.c",
        tokens["id_token"].as_str().unwrap(),
    ] {
        let response = app.post_as(&client, "/introspect", &[("token", token)]).await;
        if token.is_empty() {
            assert_eq!(response.status(), 400, "a missing token is invalid_request");
            continue;
        }
        assert_eq!(
            response.json::<Value>().await.unwrap(),
            json!({ "active": false }),
            "{token}"
        );
    }
    // Expired (access tokens live 600 s).
    clock.advance(chrono::Duration::seconds(601));
    assert_eq!(app.introspect(&client, access).await, json!({ "active": false }));
}

async fn introspection_can_answer_with_a_signed_jwt(backend: Backend) {
    let (app, client) = setup(backend, 0).await;
    let tokens = app.tokens(&client, "rita", OFFLINE).await;
    let response = app
        .http
        .post(format!("{}/introspect", app.base))
        .basic_auth(&client.id, client.secret.as_deref())
        .header("accept", "application/token-introspection+jwt")
        .form(&[("token", tokens["access_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["content-type"],
        "application/token-introspection+jwt"
    );
    let jwt = response.text().await.unwrap();
    // Verify it as a resource server would: with the published JWKS.
    let header = jsonwebtoken::decode_header(&jwt).unwrap();
    assert_eq!(header.typ.as_deref(), Some("token-introspection+jwt"));
    let jwks: jsonwebtoken::jwk::JwkSet = app
        .http
        .get(format!("{}/jwks", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key =
        jsonwebtoken::DecodingKey::from_jwk(jwks.find(header.kid.as_deref().unwrap()).unwrap()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_audience(&[&client.id]);
    validation.set_issuer(&[&app.base]);
    validation.set_required_spec_claims(&["iss", "aud"]);
    validation.validate_exp = false;
    let claims = jsonwebtoken::decode::<Value>(&jwt, &key, &validation)
        .unwrap()
        .claims;
    assert_eq!(claims["token_introspection"]["active"], true);
}

async fn introspection_requires_client_authentication(backend: Backend) {
    let (app, _) = setup(backend, 0).await;
    let response = app
        .http
        .post(format!("{}/introspect", app.base))
        .form(&[("token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
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
    assert_eq!(events(&app, idp::audit::EventType::Logout).await.len(), 1);
}

async fn logout_keeps_offline_access_and_refuses_unregistered_redirects(backend: Backend) {
    let (app, client) = setup(backend, 0).await;
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
    let (app, client) = setup(backend, 0).await;
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

async fn a_refresh_token_survives_a_restart_and_so_does_reuse_detection(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (client, r1, r2) = {
        let app = spawn_app_with(TestDb::new_shared(&db), &[]).await;
        app.add_user("rita").await;
        let client = app.add_client(false, |c| c.first_party = true).await;
        let first = app.tokens(&client, "rita", OFFLINE).await;
        let r1 = first["refresh_token"].as_str().unwrap().to_string();
        let second: Value = refresh(&app, &client, &r1).await.json().await.unwrap();
        (client, r1, second["refresh_token"].as_str().unwrap().to_string())
    };
    // A new server process on the same database.
    let app = spawn_app_with(db, &[]).await;
    let third = refresh(&app, &client, &r2).await;
    assert_eq!(third.status(), 200, "a refresh token still works after a restart");
    let r3 = third.json::<Value>().await.unwrap()["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        refresh(&app, &client, &r1).await.status(),
        400,
        "a retired token still counts as reused"
    );
    assert_eq!(
        refresh(&app, &client, &r3).await.status(),
        400,
        "and the family is revoked"
    );
}

async fn an_idle_refresh_token_lapses_after_the_clients_idle_timeout(backend: Backend) {
    let clock = idp::domain::clock::ManualClock::at(chrono::Utc::now());
    let app = common::spawn_app_at(backend, clock.clone()).await;
    app.add_user("rita").await;
    let idle = app
        .add_client(false, |c| {
            c.first_party = true;
            c.refresh_idle_ttl_s = Some(120);
        })
        .await;
    let plain = app.add_client(false, |c| c.first_party = true).await;
    let idle_tokens = app.tokens(&idle, "rita", OFFLINE).await;
    let plain_tokens = app.tokens(&plain, "rita", OFFLINE).await;
    // Used within the timeout: rotates, and the successor's idle clock starts afresh.
    clock.advance(chrono::Duration::seconds(100));
    let next: Value = refresh(&app, &idle, idle_tokens["refresh_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    clock.advance(chrono::Duration::seconds(100));
    let r2 = next["refresh_token"].as_str().unwrap();
    let again: Value = refresh(&app, &idle, r2).await.json().await.unwrap();
    // Left unused beyond it: lapsed. A client without an idle timeout is unaffected.
    clock.advance(chrono::Duration::seconds(121));
    assert_eq!(
        refresh(&app, &idle, again["refresh_token"].as_str().unwrap())
            .await
            .status(),
        400
    );
    assert_eq!(
        refresh(&app, &plain, plain_tokens["refresh_token"].as_str().unwrap())
            .await
            .status(),
        200
    );
}

on_both_backends!(
    an_idle_refresh_token_lapses_after_the_clients_idle_timeout,
    a_refresh_rotates_and_a_reused_token_revokes_the_whole_family,
    within_the_reuse_window_a_retry_gets_the_same_answer,
    twenty_concurrent_strict_refreshes_rotate_exactly_once,
    twenty_concurrent_refreshes_within_the_window_all_get_one_answer,
    a_refresh_token_of_another_client_or_a_wider_scope_is_refused,
    a_disabled_user_can_no_longer_refresh,
    revoking_tokens_follows_rfc_7009,
    introspection_answers_every_state,
    introspection_can_answer_with_a_signed_jwt,
    introspection_requires_client_authentication,
    logout_with_id_token_hint_ends_the_session_and_redirects,
    logout_keeps_offline_access_and_refuses_unregistered_redirects,
    logout_without_a_hint_asks_for_confirmation,
    back_channel_logout_delivers_a_signed_logout_token,
    a_refresh_token_survives_a_restart_and_so_does_reuse_detection,
);

/// Two server instances on one PostgreSQL database and one Redis: a revocation on one is
/// seen by introspection on the other at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_on_one_instance_is_seen_by_another() {
    let db = TestDb::new(Backend::Postgres).await;
    let first = spawn_app_with(TestDb::new_shared(&db), &[]).await;
    // Replicas behind one load balancer share the issuer.
    let second = spawn_app_with(db, &[("IDP_ISSUER", &first.base)]).await;
    first.add_user("rita").await;
    let client = first.add_client(false, |c| c.first_party = true).await;
    let tokens = first.tokens(&client, "rita", OFFLINE).await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(second.introspect(&client, access).await["active"], true);
    assert_eq!(
        first
            .post_as(&client, "/revoke", &[("token", access)])
            .await
            .status(),
        200
    );
    assert_eq!(
        second.introspect(&client, access).await,
        json!({ "active": false })
    );
}

/// With Redis configured but down, introspection fails closed (503), never accepting a
/// token that may have been revoked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_fails_closed_when_redis_is_down() {
    let proxy = common::proxy::Proxy::start("127.0.0.1:6379".parse().unwrap()).await;
    let via_proxy = format!("redis://{}", proxy.address);
    let app = spawn_app_with(
        TestDb::new(Backend::Postgres).await,
        &[("IDP_REDIS_URL", &via_proxy)],
    )
    .await;
    app.add_user("rita").await;
    let client = app.add_client(false, |c| c.first_party = true).await;
    let tokens = app.tokens(&client, "rita", OFFLINE).await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(app.introspect(&client, access).await["active"], true);
    proxy.cut();
    let response = app.post_as(&client, "/introspect", &[("token", access)]).await;
    assert_eq!(response.status(), 503);
    let userinfo = app
        .http
        .get(format!("{}/userinfo", app.base))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_ne!(userinfo.status(), 200);
}
