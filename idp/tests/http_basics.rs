//! The server's basics through HTTP: probes, request ids, errors, limits, first start.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Backend, TestDb, proxy::Proxy, spawn_app, spawn_app_with};
use idp::audit::{EventQuery, EventType};
use serde_json::Value;

async fn liveness_and_readiness_answer_ok(backend: Backend) {
    let app = spawn_app(backend).await;
    let live = app
        .http
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), 200);
    let ready = app.http.get(format!("{}/readyz", app.base)).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["checks"]["database"], "ok");
}

async fn every_response_carries_a_request_id_and_an_incoming_one_is_kept(backend: Backend) {
    let app = spawn_app(backend).await;
    let generated = app
        .http
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap();
    let id = generated.headers()["x-request-id"].to_str().unwrap().to_string();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
    let kept = app
        .http
        .get(format!("{}/healthz", app.base))
        .header("X-Request-Id", "lb-1234")
        .send()
        .await
        .unwrap();
    assert_eq!(kept.headers()["x-request-id"], "lb-1234");
    let forged = app
        .http
        .get(format!("{}/healthz", app.base))
        .header("X-Request-Id", "a\"b c")
        .send()
        .await
        .unwrap();
    assert_ne!(forged.headers()["x-request-id"], "a\"b c");
}

async fn an_unknown_path_gets_a_json_404(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app
        .http
        .get(format!("{}/no/such/thing", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "not_found");
}

async fn first_start_creates_the_admin_and_signing_keys_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let store = &app.services.store;
    let admin = store
        .find_user_by_username("admin")
        .await
        .unwrap()
        .expect("bootstrap admin");
    assert!(admin.is_admin());
    let phc = store.password_phc(admin.id).await.unwrap().unwrap();
    assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
    let verified = app
        .services
        .passwords
        .verify(&secrecy::SecretString::from(common::ADMIN_PASSWORD), Some(phc))
        .await
        .unwrap();
    assert!(matches!(
        verified,
        idp::security::password::Verification::Valid { .. }
    ));
    let keys = store.published_signing_keys().await.unwrap();
    let mut algs: Vec<_> = keys.iter().map(|k| k.alg.as_str()).collect();
    algs.sort();
    assert_eq!(algs, ["ES256", "EdDSA", "PS256", "RS256"]);
    for key in &keys {
        let jwk: Value = serde_json::from_str(&key.public_jwk).unwrap();
        assert!(jwk.get("d").is_none(), "public JWK must not hold the private key");
        // The private key at rest is ciphertext: the DER key it decrypts to appears nowhere in
        // it. (Its first byte is random: 0x30, DER's SEQUENCE tag, one time in 256.)
        let der = app
            .services
            .key_encryptor
            .decrypt(&key.kid, &key.private_key_enc)
            .unwrap();
        let der = secrecy::ExposeSecret::expose_secret(&der);
        assert_eq!(der.first(), Some(&0x30), "decrypts to a DER structure");
        assert!(
            !key.private_key_enc.windows(16).any(|w| w == &der[..16]),
            "the stored key holds no run of the DER key in clear"
        );
    }
    let created = store
        .query_events(&EventQuery {
            event_type: Some(EventType::UserCreated),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].actor_id.as_deref(), Some("system"));

    // A second start (another replica) creates nothing new.
    idp::manage::bootstrap::ensure_admin(&app.services).await.unwrap();
    assert!(
        idp::manage::keys::ensure_signing_keys(&app.services)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.published_signing_keys().await.unwrap().len(), 4);
    let users = store
        .list_users(&idp::store::UserQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(users.len(), 1);
}

async fn an_oversized_body_is_refused_with_413(backend: Backend) {
    let app = spawn_app_with(TestDb::new(backend).await, &[("IDP_MAX_BODY_BYTES", "1024")]).await;
    let response = app
        .http
        .post(format!("{}/healthz", app.base))
        .body(vec![b'a'; 4096])
        .send()
        .await
        .unwrap();
    assert!(response.status().is_client_error(), "{}", response.status());
}

async fn security_headers_are_on_every_response(backend: Backend) {
    let app = spawn_app(backend).await;
    for path in ["/healthz", "/missing"] {
        let response = app.http.get(format!("{}{path}", app.base)).send().await.unwrap();
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
        assert_eq!(response.headers()["x-frame-options"], "DENY");
        assert!(response.headers().get("server").is_none(), "no version banner");
    }
}

async fn hsts_is_sent_only_when_the_issuer_is_https(backend: Backend) {
    let plain = spawn_app(backend).await;
    let response = plain
        .http
        .get(format!("{}/healthz", plain.base))
        .send()
        .await
        .unwrap();
    assert!(response.headers().get("strict-transport-security").is_none());
    // Behind a TLS-terminating ingress the issuer is https while the pod speaks http.
    let tls = spawn_app_with(
        TestDb::new(backend).await,
        &[("IDP_ISSUER", "https://idp.example.com")],
    )
    .await;
    let response = tls
        .http
        .get(format!("{}/healthz", tls.base))
        .send()
        .await
        .unwrap();
    let hsts = response.headers()["strict-transport-security"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(hsts.contains("max-age=31536000"), "{hsts}");
}

async fn cors_is_allowed_only_for_origins_of_registered_redirect_uris(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_client(true, |_| {}).await; // redirect URI http://127.0.0.1:9/callback
    let preflight = |origin: &'static str| {
        app.http
            .request(reqwest::Method::OPTIONS, format!("{}/token", app.base))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let allowed = preflight("http://127.0.0.1:9").await.unwrap();
    assert_eq!(allowed.status(), 204);
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "http://127.0.0.1:9"
    );
    assert!(
        allowed.headers()["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("POST")
    );
    let refused = preflight("https://evil.example").await.unwrap();
    assert!(refused.headers().get("access-control-allow-origin").is_none());
    // Actual requests carry the header for allowed origins only, and never on the login pages.
    let jwks = app
        .http
        .get(format!("{}/jwks", app.base))
        .header("origin", "http://127.0.0.1:9")
        .send()
        .await
        .unwrap();
    assert_eq!(
        jwks.headers()["access-control-allow-origin"],
        "http://127.0.0.1:9"
    );
    let evil = app
        .http
        .get(format!("{}/jwks", app.base))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(evil.headers().get("access-control-allow-origin").is_none());
    let login = app
        .http
        .get(format!("{}/healthz", app.base))
        .header("origin", "http://127.0.0.1:9")
        .send()
        .await
        .unwrap();
    assert!(login.headers().get("access-control-allow-origin").is_none());
}

on_both_backends!(
    cors_is_allowed_only_for_origins_of_registered_redirect_uris,
    hsts_is_sent_only_when_the_issuer_is_https,
    liveness_and_readiness_answer_ok,
    every_response_carries_a_request_id_and_an_incoming_one_is_kept,
    an_unknown_path_gets_a_json_404,
    first_start_creates_the_admin_and_signing_keys_once,
    an_oversized_body_is_refused_with_413,
    security_headers_are_on_every_response,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_a_postgres_outage_and_recovers_without_restart() {
    let db = TestDb::new(Backend::Postgres).await;
    let target: std::net::SocketAddr = "127.0.0.1:5432".parse().unwrap();
    let proxy = Proxy::start(target).await;
    let name = db.url.rsplit('/').next().unwrap().to_string();
    let via_proxy = format!("postgres://postgres@{}/{name}", proxy.address);
    let app = spawn_app_with(
        db,
        &[
            ("IDP_DATABASE_URL", &via_proxy),
            ("IDP_DATABASE_ACQUIRE_TIMEOUT_MS", "500"),
            ("IDP_CLIENT_CACHE_TTL_MS", "0"),
        ],
    )
    .await;
    let ready = || async { app.http.get(format!("{}/readyz", app.base)).send().await.unwrap() };
    assert_eq!(ready().await.status(), 200);

    let client = app.add_service_client(&["api"]).await;
    let token = || async {
        app.http
            .post(format!("{}/token", app.base))
            .basic_auth(&client.id, client.secret.as_deref())
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap()
    };
    assert_eq!(token().await.status(), 200);

    proxy.cut();
    let refused = token().await;
    assert_eq!(
        refused.status(),
        503,
        "requests fail cleanly while the database is down"
    );
    assert!(refused.headers().get("retry-after").is_some());
    let down = ready().await;
    assert_eq!(down.status(), 503);
    let body: Value = down.json().await.unwrap();
    assert_eq!(body["checks"]["database"], "down");
    assert_eq!(
        app.http
            .get(format!("{}/healthz", app.base))
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "liveness stays up"
    );

    proxy.restore();
    let mut status = 0;
    for _ in 0..50 {
        status = ready().await.status().as_u16();
        if status == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status, 200, "readiness recovers once the database is back");
    assert_eq!(
        token().await.status(),
        200,
        "requests work again without a restart"
    );
}
