//! Pushed authorization requests (RFC 9126): the client pushes its authorization request to
//! `/par` and the browser carries only the reference. The reference works once, for the
//! client that pushed it, for 60 seconds; a client may require that all its requests be
//! pushed; the pushed request is validated at once, and errors come back as JSON.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{
    Backend, CHALLENGE, PASSWORD, REDIRECT, Registered, TestApp, VERIFIER, spawn_app, spawn_app_at,
};
use serde_json::Value;

/// An authorization request's parameters, as pushed.
type Pushed = Vec<(&'static str, String)>;

/// The authorization request a web app would push.
fn request_params(client_id: &str) -> Pushed {
    vec![
        ("client_id", client_id.to_string()),
        ("redirect_uri", REDIRECT.to_string()),
        ("response_type", "code".to_string()),
        ("scope", "openid profile".to_string()),
        ("state", "pushed-state".to_string()),
        ("nonce", "n-1".to_string()),
        ("code_challenge", CHALLENGE.to_string()),
        ("code_challenge_method", "S256".to_string()),
    ]
}

async fn push(app: &TestApp, client: &Registered, params: &[(&'static str, String)]) -> reqwest::Response {
    let form: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    app.post_as(client, "/par", &form).await
}

async fn pushed_request_uri(app: &TestApp, client: &Registered) -> String {
    let response = push(app, client, &request_params(&client.id)).await;
    assert_eq!(response.status(), 201, "RFC 9126 §2.2: 201 Created");
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["expires_in"], 60);
    let request_uri = body["request_uri"].as_str().unwrap().to_string();
    assert!(
        request_uri.starts_with("urn:ietf:params:oauth:request_uri:"),
        "{request_uri}"
    );
    request_uri
}

fn authorize_by_reference(app: &TestApp, client_id: &str, request_uri: &str) -> String {
    let mut url = url::Url::parse(&format!("{}/authorize", app.base)).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", client_id)
        .append_pair("request_uri", request_uri);
    url.to_string()
}

async fn a_pushed_request_logs_the_user_in_once(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_user("alice").await;
    let client = app.add_client(false, |c| c.require_par = true).await;
    let request_uri = pushed_request_uri(&app, &client).await;

    let browser = app.browser();
    let landing = browser
        .visit(&authorize_by_reference(&app, &client.id, &request_uri))
        .await;
    let back = browser
        .log_in_and_consent(landing, "alice", PASSWORD)
        .await
        .client_url();
    let query: std::collections::HashMap<_, _> = back.query_pairs().into_owned().collect();
    assert_eq!(query["state"], "pushed-state", "the pushed parameters were used");
    let tokens: Value = app
        .token_request(
            &client,
            &[
                ("grant_type", "authorization_code"),
                ("code", &query["code"]),
                ("redirect_uri", REDIRECT),
                ("code_verifier", VERIFIER),
            ],
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        common::jwt_claims(tokens["id_token"].as_str().unwrap())["nonce"],
        "n-1"
    );

    // RFC 9126 §7.3: the reference is single use.
    let again = browser
        .visit(&authorize_by_reference(&app, &client.id, &request_uri))
        .await;
    let (status, _, html) = again.page();
    assert_eq!(status, 400);
    assert!(html.contains("invalid_request_uri"), "{html}");

    // §6: this client's requests must be pushed; a plain one goes back with an error.
    let plain = browser.visit(&app.authorize_url(&client.id, "openid")).await;
    let error = plain.client_url();
    assert!(
        error
            .query_pairs()
            .any(|(k, v)| k == "error" && v == "invalid_request"),
        "{error}"
    );
}

async fn a_reference_works_only_for_the_client_that_pushed_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let pusher = app.add_client(false, |_| {}).await;
    let other = app.add_client(false, |_| {}).await;
    let request_uri = pushed_request_uri(&app, &pusher).await;
    let (status, _, html) = app
        .browser()
        .visit(&authorize_by_reference(&app, &other.id, &request_uri))
        .await
        .page();
    assert_eq!(status, 400);
    assert!(html.contains("invalid_request_uri"), "{html}");
    // A made-up reference is no better.
    let (status, _, html) = app
        .browser()
        .visit(&authorize_by_reference(
            &app,
            &pusher.id,
            "urn:ietf:params:oauth:request_uri:made-up",
        ))
        .await
        .page();
    assert_eq!(status, 400);
    assert!(html.contains("invalid_request_uri"), "{html}");
}

async fn a_reference_expires_after_60_seconds(backend: Backend) {
    let clock = idp::domain::clock::ManualClock::at(chrono::Utc::now());
    let app = spawn_app_at(backend, clock.clone()).await;
    let client = app.add_client(false, |_| {}).await;
    let request_uri = pushed_request_uri(&app, &client).await;
    clock.advance(chrono::Duration::seconds(61));
    let (status, _, html) = app
        .browser()
        .visit(&authorize_by_reference(&app, &client.id, &request_uri))
        .await
        .page();
    assert_eq!(status, 400);
    assert!(html.contains("invalid_request_uri"), "{html}");
}

async fn a_pushed_request_is_validated_at_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.add_client(false, |_| {}).await;
    let public = app.add_client(true, |_| {}).await;
    let with = |name: &'static str, value: &str| {
        let mut params = request_params(&client.id);
        params.retain(|(k, _)| *k != name);
        params.push((name, value.to_string()));
        params
    };
    let cases: Vec<(Pushed, u16, &str)> = vec![
        (
            with("redirect_uri", "https://evil.example.com/cb"),
            400,
            "invalid_request",
        ),
        (with("scope", "unknown-scope"), 400, "invalid_scope"),
        (with("response_type", "token"), 400, "unsupported_response_type"),
        (
            with("request_uri", "urn:ietf:params:oauth:request_uri:x"),
            400,
            "invalid_request",
        ),
        (with("code_challenge_method", "plain"), 400, "invalid_request"),
    ];
    for (params, status, code) in cases {
        let response = push(&app, &client, &params).await;
        assert_eq!(response.status().as_u16(), status);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], code, "{body}");
    }

    // Client authentication is that of the token endpoint.
    let wrong = Registered {
        id: client.id.clone(),
        secret: Some("wrong".into()),
    };
    let response = push(&app, &wrong, &request_params(&client.id)).await;
    assert_eq!(response.status(), 401);
    // A public client pushes with its client_id alone (and PKCE); `post_as` adds the id.
    let mut params = request_params(&public.id);
    params.retain(|(k, _)| *k != "client_id");
    let response = push(&app, &public, &params).await;
    assert_eq!(response.status(), 201);

    // Only POST.
    let get = app.http.get(format!("{}/par", app.base)).send().await.unwrap();
    assert_eq!(get.status(), 405);
    assert_eq!(get.headers()["allow"], "POST");
}

async fn discovery_names_the_par_endpoint(backend: Backend) {
    let app = spawn_app(backend).await;
    let metadata = app.discovery().await;
    assert_eq!(
        metadata["pushed_authorization_request_endpoint"],
        format!("{}/par", app.base)
    );
    assert_eq!(metadata["require_pushed_authorization_requests"], false);
}

on_both_backends!(
    a_pushed_request_logs_the_user_in_once,
    a_reference_works_only_for_the_client_that_pushed_it,
    a_reference_expires_after_60_seconds,
    a_pushed_request_is_validated_at_once,
    discovery_names_the_par_endpoint,
);
