//! The token lifecycle from the outside: refresh rotation and reuse detection (strict and
//! within a reuse window, under concurrency), revocation, introspection of every state,
//! logout (RP-initiated and back-channel), two instances sharing a database and Redis, and
//! restarts. SQLite runs with the in-process deny-list, PostgreSQL with Redis.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashSet;

use common::{Backend, Registered, TestApp, TestDb, spawn_app, spawn_app_with};
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

/// A revoked access token stays revoked when the server restarts (on SQLite the deny-list is
/// in-process and kept in the database too; on PostgreSQL it is Redis).
async fn a_revoked_access_token_stays_revoked_after_a_restart(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (client, access) = {
        let app = spawn_app_with(TestDb::new_shared(&db), &[]).await;
        app.add_user("rita").await;
        let client = app.add_client(false, |c| c.first_party = true).await;
        let tokens = app.tokens(&client, "rita", OFFLINE).await;
        let access = tokens["access_token"].as_str().unwrap().to_string();
        let revoked = app
            .post_as(&client, "/revoke", &[("token", access.as_str())])
            .await;
        assert_eq!(revoked.status(), 200);
        assert_eq!(app.introspect(&client, &access).await["active"], false);
        (client, access)
    };
    let app = spawn_app_with(db, &[]).await;
    assert_eq!(
        app.introspect(&client, &access).await["active"],
        false,
        "still revoked after the restart"
    );
}

on_both_backends!(
    a_revoked_access_token_stays_revoked_after_a_restart,
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
/// Issue 18: losing Redis does not take a replica out of service. Readiness says Redis is
/// down but stays 200 (a Redis restart must not empty the load balancer); discovery, JWKS,
/// logins and token issuance go on; only the deny-list checks answer as configured.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_leaves_the_replica_ready_and_serving() {
    let proxy = common::proxy::Proxy::start("127.0.0.1:6379".parse().unwrap()).await;
    let via_proxy = format!("redis://{}", proxy.address);
    let app = spawn_app_with(
        TestDb::new(Backend::Postgres).await,
        &[("IDP_REDIS_URL", &via_proxy)],
    )
    .await;
    app.add_user("rita").await;
    let client = app.add_client(false, |c| c.first_party = true).await;
    let ready = || async { app.http.get(format!("{}/readyz", app.base)).send().await.unwrap() };
    let body: Value = ready().await.json().await.unwrap();
    assert_eq!(body["checks"]["redis"], "ok");

    proxy.cut();
    let during = ready().await;
    assert_eq!(during.status(), 200, "still in service");
    let body: Value = during.json().await.unwrap();
    assert_eq!(body["checks"]["redis"], "down", "{body}");
    assert_eq!(body["checks"]["database"], "ok");
    assert_eq!(body["status"], "degraded");
    for path in ["/.well-known/openid-configuration", "/jwks"] {
        let answer = app.http.get(format!("{}{path}", app.base)).send().await.unwrap();
        assert_eq!(answer.status(), 200, "{path}");
    }
    let tokens = app.tokens(&client, "rita", OFFLINE).await;
    assert!(
        tokens["access_token"].is_string(),
        "a login and a code exchange: {tokens}"
    );
}

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
    // Issue 15 (info): the answer names the request, never the internal cause.
    let request_id = response.headers()["x-request-id"].to_str().unwrap().to_string();
    let body: Value = response.json().await.unwrap();
    let description = body["error_description"].as_str().unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    assert!(description.contains("temporarily unavailable"), "{description}");
    assert!(description.contains(&request_id), "{description}");
    for internal in ["redis", "deny-list", "connection", "refused", "broken"] {
        assert!(!description.to_lowercase().contains(internal), "{description}");
    }
    let userinfo = app
        .http
        .get(format!("{}/userinfo", app.base))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_ne!(userinfo.status(), 200);
}
