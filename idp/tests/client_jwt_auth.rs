//! Client authentication with JWTs (RFC 7523, OIDC Core §9): `private_key_jwt` with keys
//! registered inline or published at a `jwks_uri`, and `client_secret_jwt`. Each RFC rule
//! that a broken or hostile client could break is answered `invalid_client`: wrong `aud`,
//! expired assertion, replayed `jti` (also to another replica), key the client never
//! registered, a method the client did not register.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::client_key::ClientKey;
use common::{Backend, Registered, TestApp, TestDb, spawn_app, spawn_app_with};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The claims RFC 7523 §3 asks of a client assertion, addressed to `aud`.
fn claims(client_id: &str, aud: &str) -> Value {
    json!({
        "iss": client_id,
        "sub": client_id,
        "aud": aud,
        "jti": uuid::Uuid::new_v4().to_string(),
        "iat": now(),
        "exp": now() + 60,
    })
}

async fn client_credentials(app: &TestApp, assertion: &str, extra: &[(&str, &str)]) -> reqwest::Response {
    let mut form = vec![
        ("grant_type", "client_credentials"),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", assertion),
    ];
    form.extend_from_slice(extra);
    app.http
        .post(format!("{}/token", app.base))
        .form(&form)
        .send()
        .await
        .unwrap()
}

async fn assert_refused(response: reqwest::Response, status: u16, code: &str) {
    assert_eq!(response.status().as_u16(), status);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], code, "{body}");
}

async fn service_client(
    app: &TestApp,
    method: &str,
    keys: Option<JwkSet>,
    jwks_uri: Option<String>,
) -> Registered {
    let method = idp::domain::client::TokenEndpointAuthMethod::parse(method).unwrap();
    app.add_client(false, |c| {
        c.grant_types = vec![idp::domain::client::GrantType::ClientCredentials];
        c.redirect_uris.clear();
        c.scopes = vec!["api".into()];
        c.token_endpoint_auth_method = Some(method);
        c.jwks = keys;
        c.jwks_uri = jwks_uri;
    })
    .await
}

async fn private_key_jwt_follows_rfc_7523(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = ClientKey::es256("k1");
    let client = service_client(&app, "private_key_jwt", Some(ClientKey::jwks(&[&key])), None).await;
    assert!(
        client.secret.is_none(),
        "a private_key_jwt client is given no secret"
    );

    // The issuer and the token endpoint are both accepted as the audience.
    for aud in [app.base.clone(), format!("{}/token", app.base)] {
        let response = client_credentials(&app, &key.sign(&claims(&client.id, &aud)), &[]).await;
        assert_eq!(response.status(), 200, "aud {aud}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            common::jwt_claims(body["access_token"].as_str().unwrap())["client_id"],
            client.id
        );
    }

    // RFC 7523 §3 item 7: a jti is used once.
    let once = key.sign(&claims(&client.id, &app.base));
    assert_eq!(client_credentials(&app, &once, &[]).await.status(), 200);
    assert_refused(client_credentials(&app, &once, &[]).await, 401, "invalid_client").await;

    // Item 3: the audience must name this provider.
    let elsewhere = key.sign(&claims(&client.id, "https://other.example.com"));
    assert_refused(
        client_credentials(&app, &elsewhere, &[]).await,
        401,
        "invalid_client",
    )
    .await;

    // Item 4: expired.
    let mut expired = claims(&client.id, &app.base);
    expired["exp"] = json!(now() - 120);
    assert_refused(
        client_credentials(&app, &key.sign(&expired), &[]).await,
        401,
        "invalid_client",
    )
    .await;

    // Item 1: iss must be the client.
    let mut other_issuer = claims(&client.id, &app.base);
    other_issuer["iss"] = json!("someone-else");
    assert_refused(
        client_credentials(&app, &key.sign(&other_issuer), &[]).await,
        401,
        "invalid_client",
    )
    .await;

    // A jti is required: without it replays could not be caught.
    let mut no_jti = claims(&client.id, &app.base);
    no_jti.as_object_mut().unwrap().remove("jti");
    assert_refused(
        client_credentials(&app, &key.sign(&no_jti), &[]).await,
        401,
        "invalid_client",
    )
    .await;

    // A key the client never registered, even with the registered kid.
    let stranger = ClientKey::es256("k1");
    let forged = stranger.sign(&claims(&client.id, &app.base));
    assert_refused(
        client_credentials(&app, &forged, &[]).await,
        401,
        "invalid_client",
    )
    .await;

    // An HMAC assertion "signed" with nothing the client registered: a method it does not use.
    let hmac = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(&client.id, &app.base),
        &EncodingKey::from_secret(b"guess"),
    )
    .unwrap();
    assert_refused(client_credentials(&app, &hmac, &[]).await, 401, "invalid_client").await;

    // RFC 7523 §3 item 2: a client_id beside the assertion must be its subject.
    let assertion = key.sign(&claims(&client.id, &app.base));
    assert_refused(
        client_credentials(&app, &assertion, &[("client_id", "another")]).await,
        400,
        "invalid_request",
    )
    .await;
    // RFC 7521 §4.2: the assertion type must be the JWT one.
    let wrong_type = app
        .http
        .post(format!("{}/token", app.base))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", "urn:example:saml"),
            ("client_assertion", assertion.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_refused(wrong_type, 400, "invalid_request").await;

    // The failures are security events with their reasons.
    let events = app
        .services
        .store
        .query_events(&idp::audit::EventQuery {
            event_type: Some(idp::audit::EventType::ClientAuthFailed),
            client_id: Some(client.id.clone()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    let reasons: Vec<String> = events
        .iter()
        .filter_map(|e| e.details["reason"].as_str().map(String::from))
        .collect();
    for expected in [
        "assertion jti replayed",
        "aud does not name this provider",
        "assertion expired",
        "assertion has no jti",
        "bad signature",
    ] {
        assert!(reasons.iter().any(|r| r == expected), "{expected}: {reasons:?}");
    }
}

async fn private_key_jwt_with_ed25519_also_authenticates_introspection(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = ClientKey::ed25519("ed");
    let client = service_client(&app, "private_key_jwt", Some(ClientKey::jwks(&[&key])), None).await;
    let response = client_credentials(&app, &key.sign(&claims(&client.id, &app.base)), &[]).await;
    let token: Value = response.json().await.unwrap();
    let token = token["access_token"].as_str().unwrap();
    let assertion = key.sign(&claims(&client.id, &format!("{}/introspect", app.base)));
    let introspection: Value = app
        .http
        .post(format!("{}/introspect", app.base))
        .form(&[
            ("token", token),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", assertion.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(introspection["active"], true, "{introspection}");
}

async fn client_secret_jwt_is_keyed_by_the_current_secret(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = service_client(&app, "client_secret_jwt", None, None).await;
    let secret = client
        .secret
        .clone()
        .expect("a client_secret_jwt client has a secret");
    let hs256 = |secret: &str| {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims(&client.id, &app.base),
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    };
    assert_eq!(client_credentials(&app, &hs256(&secret), &[]).await.status(), 200);
    assert_refused(
        client_credentials(&app, &hs256("not-the-secret"), &[]).await,
        401,
        "invalid_client",
    )
    .await;
    // The secret itself is not usable as client_secret_basic for this client.
    let basic = app
        .token_request(&client, &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(basic.status(), 401);

    // After a rotation only the new secret keys assertions.
    let (_, new_secret) =
        idp::manage::clients::rotate_secret(&app.services, &client.id, idp::manage::Actor::Cli)
            .await
            .unwrap();
    let new_secret = secrecy::ExposeSecret::expose_secret(&new_secret).to_string();
    assert_refused(
        client_credentials(&app, &hs256(&secret), &[]).await,
        401,
        "invalid_client",
    )
    .await;
    assert_eq!(
        client_credentials(&app, &hs256(&new_secret), &[]).await.status(),
        200
    );
}

/// Serves `jwks` at `http://127.0.0.1:<port>/jwks` and counts the fetches.
async fn serve_jwks(
    jwks: std::sync::Arc<std::sync::Mutex<JwkSet>>,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use actix_web::{App, HttpResponse, HttpServer, web};
    let fetches = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = fetches.clone();
    let server = HttpServer::new(move || {
        let jwks = jwks.clone();
        let counter = counter.clone();
        App::new().route(
            "/jwks",
            web::get().to(move || {
                let body = serde_json::to_string(&*jwks.lock().unwrap()).unwrap();
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async move { HttpResponse::Ok().content_type("application/json").body(body) }
            }),
        )
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let address = server.addrs()[0];
    tokio::spawn(server.run());
    (format!("http://{address}/jwks"), fetches)
}

async fn private_key_jwt_with_a_jwks_uri_follows_key_rotation(backend: Backend) {
    let app = spawn_app(backend).await;
    let first = ClientKey::es256("2026-01");
    let published = std::sync::Arc::new(std::sync::Mutex::new(ClientKey::jwks(&[&first])));
    let (uri, fetches) = serve_jwks(published.clone()).await;
    let client = service_client(&app, "private_key_jwt", None, Some(uri)).await;

    for _ in 0..3 {
        let response = client_credentials(&app, &first.sign(&claims(&client.id, &app.base)), &[]).await;
        assert_eq!(response.status(), 200);
    }
    assert_eq!(
        fetches.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the set is cached"
    );

    // The client rotates: a new kid makes the provider fetch the set again (once the
    // cached copy is a few seconds old; until then an unknown kid is refused).
    let second = ClientKey::es256("2026-02");
    *published.lock().unwrap() = ClientKey::jwks(&[&second]);
    tokio::time::sleep(std::time::Duration::from_millis(10_500)).await;
    let response = client_credentials(&app, &second.sign(&claims(&client.id, &app.base)), &[]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(fetches.load(std::sync::atomic::Ordering::SeqCst), 2);
}

/// Two replicas on one PostgreSQL and Redis: an assertion used at one is a replay at the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jti_used_at_one_replica_is_refused_at_another() {
    let first = spawn_app(Backend::Postgres).await;
    let second = spawn_app_with(TestDb::new_shared(&first.db), &[]).await;
    let key = ClientKey::es256("k");
    let client = service_client(&first, "private_key_jwt", Some(ClientKey::jwks(&[&key])), None).await;
    // Both replicas share the issuer only when configured alike: aim at each one's own.
    let mut shared = claims(&client.id, &first.base);
    shared["aud"] = json!([first.base, second.base]);
    let assertion = key.sign(&shared);
    assert_eq!(client_credentials(&first, &assertion, &[]).await.status(), 200);
    assert_refused(
        client_credentials(&second, &assertion, &[]).await,
        401,
        "invalid_client",
    )
    .await;
}

async fn discovery_advertises_the_jwt_methods_and_their_algorithms(backend: Backend) {
    let app = spawn_app(backend).await;
    let metadata = app.discovery().await;
    for field in [
        "token_endpoint_auth_methods_supported",
        "introspection_endpoint_auth_methods_supported",
        "revocation_endpoint_auth_methods_supported",
    ] {
        let methods = metadata[field].as_array().unwrap();
        for method in ["client_secret_jwt", "private_key_jwt"] {
            assert!(methods.contains(&json!(method)), "{field}: {method}");
        }
    }
    for field in [
        "token_endpoint_auth_signing_alg_values_supported",
        "introspection_endpoint_auth_signing_alg_values_supported",
        "revocation_endpoint_auth_signing_alg_values_supported",
    ] {
        assert_eq!(
            metadata[field],
            json!(["HS256", "RS256", "PS256", "ES256", "EdDSA"]),
            "{field}"
        );
    }
}

on_both_backends!(
    private_key_jwt_follows_rfc_7523,
    private_key_jwt_with_ed25519_also_authenticates_introspection,
    client_secret_jwt_is_keyed_by_the_current_secret,
    private_key_jwt_with_a_jwks_uri_follows_key_rotation,
    discovery_advertises_the_jwt_methods_and_their_algorithms,
);
