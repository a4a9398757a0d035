//! Signed authorization requests (JAR, RFC 9101): a request object signed with the client's
//! registered key, by value at `/authorize` and inside a pushed request. Only the signed
//! parameters count (§6.3); an object that is unsigned, expired, for another audience, by
//! another key or of another client is `invalid_request_object`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::client_key::ClientKey;
use common::{Backend, CHALLENGE, PASSWORD, REDIRECT, Registered, TestApp, spawn_app};
use serde_json::{Value, json};

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The claims of a request object for `client` at `app` (RFC 9101 §4).
fn request_claims(app: &TestApp, client_id: &str) -> Value {
    json!({
        "iss": client_id,
        "aud": app.base,
        "exp": now() + 300,
        "nbf": now(),
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "scope": "openid profile",
        "state": "signed-state",
        "nonce": "signed-nonce",
        "max_age": 3600,
        "code_challenge": CHALLENGE,
        "code_challenge_method": "S256",
    })
}

async fn keyed_client(app: &TestApp, key: &ClientKey) -> Registered {
    let jwks = ClientKey::jwks(&[key]);
    app.add_client(false, |c| c.jwks = Some(jwks)).await
}

fn authorize_with(app: &TestApp, pairs: &[(&str, &str)]) -> String {
    let mut url = url::Url::parse(&format!("{}/authorize", app.base)).unwrap();
    for (k, v) in pairs {
        url.query_pairs_mut().append_pair(k, v);
    }
    url.to_string()
}

async fn a_signed_request_object_is_what_counts(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_user("alice").await;
    let key = ClientKey::es256("rk");
    let client = keyed_client(&app, &key).await;
    let object = key.sign(&request_claims(&app, &client.id));
    // The parameters beside the object differ: they are ignored (RFC 9101 §6.3).
    let url = authorize_with(
        &app,
        &[
            ("client_id", &client.id),
            ("request", &object),
            ("state", "unsigned-state"),
            ("scope", "openid email"),
        ],
    );
    let browser = app.browser();
    let back = browser
        .log_in_and_consent(browser.visit(&url).await, "alice", PASSWORD)
        .await
        .client_url();
    assert!(
        back.query_pairs()
            .any(|(k, v)| k == "state" && v == "signed-state"),
        "{back}"
    );
}

async fn a_request_object_can_be_pushed(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_user("alice").await;
    let key = ClientKey::es256("rk");
    let client = keyed_client(&app, &key).await;
    let object = key.sign(&request_claims(&app, &client.id));
    let pushed = app
        .post_as(&client, "/par", &[("request", object.as_str())])
        .await;
    assert_eq!(pushed.status(), 201);
    let body: Value = pushed.json().await.unwrap();
    let url = authorize_with(
        &app,
        &[
            ("client_id", &client.id),
            ("request_uri", body["request_uri"].as_str().unwrap()),
        ],
    );
    let browser = app.browser();
    let back = browser
        .log_in_and_consent(browser.visit(&url).await, "alice", PASSWORD)
        .await
        .client_url();
    assert!(
        back.query_pairs()
            .any(|(k, v)| k == "state" && v == "signed-state"),
        "{back}"
    );

    // At the PAR endpoint a bad object is a JSON error.
    let mut expired = request_claims(&app, &client.id);
    expired["exp"] = json!(now() - 60);
    let refused = app
        .post_as(&client, "/par", &[("request", key.sign(&expired).as_str())])
        .await;
    assert_eq!(refused.status(), 400);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request_object");
}

async fn bad_request_objects_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = ClientKey::es256("rk");
    // Two redirect URIs: no default one to report an error to when none is given beside.
    let jwks = ClientKey::jwks(&[&key]);
    let client = app
        .add_client(false, |c| {
            c.jwks = Some(jwks);
            c.redirect_uris.push(
                idp::domain::client::RedirectUri::parse("http://127.0.0.1:9/other", c.client_type).unwrap(),
            );
        })
        .await;
    let other_client = keyed_client(&app, &ClientKey::es256("rk")).await;
    let with = |name: &str, value: Value| {
        let mut claims = request_claims(&app, &client.id);
        claims[name] = value;
        claims
    };
    let cases = [
        ("expired", key.sign(&with("exp", json!(now() - 60)))),
        (
            "for another audience",
            key.sign(&with("aud", json!("https://other.example.com"))),
        ),
        (
            "issued by another client",
            key.sign(&with("iss", json!(other_client.id))),
        ),
        (
            "for another client",
            key.sign(&with("client_id", json!(other_client.id))),
        ),
        ("without exp", {
            let mut claims = request_claims(&app, &client.id);
            claims.as_object_mut().unwrap().remove("exp");
            key.sign(&claims)
        }),
        ("living a day", key.sign(&with("exp", json!(now() + 86_400)))),
        (
            "signed by another key",
            ClientKey::es256("rk").sign(&request_claims(&app, &client.id)),
        ),
    ];
    for (what, object) in cases {
        // The registered redirect URI beside the object receives the error.
        let url = authorize_with(
            &app,
            &[
                ("client_id", &client.id),
                ("redirect_uri", REDIRECT),
                ("request", &object),
                ("state", "s"),
            ],
        );
        let back = app.browser().visit(&url).await.client_url();
        assert!(
            back.query_pairs()
                .any(|(k, v)| k == "error" && v == "invalid_request_object"),
            "{what}: {back}"
        );
        // Without one, the error is shown at the provider.
        let url = authorize_with(&app, &[("client_id", &client.id), ("request", &object)]);
        let (status, _, html) = app.browser().visit(&url).await.page();
        assert_eq!(status, 400, "{what}");
        assert!(html.contains("invalid_request_object"), "{what}");
    }
    // Both `request` and `request_uri`.
    let object = key.sign(&request_claims(&app, &client.id));
    let url = authorize_with(
        &app,
        &[
            ("client_id", &client.id),
            ("request", &object),
            ("request_uri", "urn:ietf:params:oauth:request_uri:x"),
        ],
    );
    let (status, _, _) = app.browser().visit(&url).await.page();
    assert_eq!(status, 400);
}

async fn discovery_advertises_request_objects(backend: Backend) {
    let app = spawn_app(backend).await;
    let metadata = app.discovery().await;
    assert_eq!(metadata["request_parameter_supported"], true);
    assert_eq!(metadata["request_uri_parameter_supported"], false);
    assert_eq!(
        metadata["request_object_signing_alg_values_supported"],
        json!(["RS256", "PS256", "ES256", "EdDSA"])
    );
}

on_both_backends!(
    a_signed_request_object_is_what_counts,
    a_request_object_can_be_pushed,
    bad_request_objects_are_refused,
    discovery_advertises_request_objects,
);
