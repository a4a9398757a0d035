//! DPoP (RFC 9449): proofs at the token endpoint and at userinfo, nonces, tokens bound to
//! the proof's key, a public client's refresh tokens bound to it, codes bound with
//! `dpop_jkt`, and every refusal the RFC names: a proof for another URL or method, a stale
//! `iat`, a replayed `jti` (also at another replica), a missing nonce, a bound token used as
//! a bearer token, a proof by another key.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{Backend, PASSWORD, REDIRECT, Registered, TestApp, TestDb, VERIFIER, spawn_app, spawn_app_with};
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

/// A client's DPoP key.
struct DpopKey {
    pkcs8: Vec<u8>,
    private: EncodingKey,
    public: Jwk,
}

impl DpopKey {
    fn new() -> Self {
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new()).unwrap();
        let private = EncodingKey::from_ec_der(pkcs8.as_ref());
        let mut public = Jwk::from_encoding_key(&private, Algorithm::ES256).unwrap();
        public.common.key_algorithm = None;
        Self {
            pkcs8: pkcs8.as_ref().to_vec(),
            private,
            public,
        }
    }

    /// A JWS with exactly this header, which a JWT library would not write (a private key in it).
    fn sign_raw(&self, header: &Value, claims: &Value) -> String {
        let encode = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let message = format!("{}.{}", encode(header), encode(claims));
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &self.pkcs8).unwrap();
        let signature = pair.sign(&SystemRandom::new(), message.as_bytes()).unwrap();
        format!("{message}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
    }

    fn jkt(&self) -> String {
        self.public.thumbprint(ThumbprintHash::SHA256).unwrap()
    }

    /// A proof for `method` at `url`, with `nonce`, for `access_token` if given.
    fn proof(&self, method: &str, url: &str, nonce: Option<&str>, access_token: Option<&str>) -> String {
        self.proof_with(json!({
            "jti": uuid::Uuid::new_v4().to_string(),
            "htm": method,
            "htu": url,
            "iat": chrono::Utc::now().timestamp(),
            "nonce": nonce,
            "ath": access_token.map(|t| URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, t.as_bytes()))),
        }))
    }

    fn proof_with(&self, mut claims: Value) -> String {
        claims.as_object_mut().unwrap().retain(|_, v| !v.is_null());
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some("dpop+jwt".into());
        header.jwk = Some(self.public.clone());
        jsonwebtoken::encode(&header, &claims, &self.private).unwrap()
    }
}

async fn token_post(
    app: &TestApp,
    client: &Registered,
    form: &[(&str, &str)],
    proof: Option<&str>,
) -> reqwest::Response {
    let mut fields = form.to_vec();
    let mut request = app.http.post(format!("{}/token", app.base));
    match &client.secret {
        Some(secret) => request = request.basic_auth(&client.id, Some(secret)),
        None => fields.push(("client_id", &client.id)),
    }
    if let Some(proof) = proof {
        request = request.header("DPoP", proof);
    }
    request.form(&fields).send().await.unwrap()
}

/// The nonce the provider hands out: the first proof without one is refused with it. (Asked
/// with a grant type the client has; the proof is checked before the grant's parameters.)
async fn nonce_for(app: &TestApp, client: &Registered, key: &DpopKey, grant: &str) -> String {
    let url = format!("{}/token", app.base);
    let response = token_post(
        app,
        client,
        &[("grant_type", grant), ("refresh_token", "none")],
        Some(&key.proof("POST", &url, None, None)),
    )
    .await;
    assert_eq!(response.status(), 400);
    let nonce = response.headers()["dpop-nonce"].to_str().unwrap().to_string();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "use_dpop_nonce", "RFC 9449 §8");
    nonce
}

/// The nonce, asked as a service client (client_credentials).
async fn nonce(app: &TestApp, client: &Registered, key: &DpopKey) -> String {
    nonce_for(app, client, key, "client_credentials").await
}

async fn error_of(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    (status, body["error"].as_str().unwrap_or_default().to_string())
}

async fn client_credentials_tokens_are_bound_to_the_proofs_key(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.add_service_client(&["api"]).await;
    let key = DpopKey::new();
    let url = format!("{}/token", app.base);
    let nonce = nonce(&app, &client, &key).await;

    let response = token_post(
        &app,
        &client,
        &[("grant_type", "client_credentials")],
        Some(&key.proof("POST", &url, Some(&nonce), None)),
    )
    .await;
    assert_eq!(response.status(), 200);
    let tokens: Value = response.json().await.unwrap();
    assert_eq!(tokens["token_type"], "DPoP", "RFC 9449 §5.1");
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(common::jwt_claims(access)["cnf"]["jkt"], key.jkt(), "§6.1");
    // §6.2: introspection tells the resource server about the binding.
    let introspection = app.introspect(&client, access).await;
    assert_eq!(introspection["token_type"], "DPoP");
    assert_eq!(introspection["cnf"]["jkt"], key.jkt());

    // Refusals at the token endpoint, each invalid_dpop_proof (§5.2).
    let cc = [("grant_type", "client_credentials")];
    let replayed = key.proof("POST", &url, Some(&nonce), None);
    assert_eq!(
        token_post(&app, &client, &cc, Some(&replayed)).await.status(),
        200
    );
    let bad_proofs = [
        ("replayed jti", replayed),
        (
            "another URL",
            key.proof("POST", &format!("{}/par", app.base), Some(&nonce), None),
        ),
        ("another method", key.proof("GET", &url, Some(&nonce), None)),
        (
            "stale iat",
            key.proof_with(json!({
                "jti": "stale", "htm": "POST", "htu": url, "nonce": nonce,
                "iat": chrono::Utc::now().timestamp() - 600,
            })),
        ),
        ("not a JWT", "not-a-jwt".to_string()),
    ];
    for (what, proof) in bad_proofs {
        let (status, error) = error_of(token_post(&app, &client, &cc, Some(&proof)).await).await;
        assert_eq!((status, error.as_str()), (400, "invalid_dpop_proof"), "{what}");
    }
    // The same proof, well formed, passes; with a private key member in its jwk it does not.
    let claims = |jti: &str| json!({"jti": jti, "htm": "POST", "htu": url, "iat": chrono::Utc::now().timestamp(), "nonce": nonce});
    let mut jwk = serde_json::to_value(&key.public).unwrap();
    let header = |jwk: &Value| json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk});
    let fine = key.sign_raw(&header(&jwk), &claims("raw-1"));
    assert_eq!(token_post(&app, &client, &cc, Some(&fine)).await.status(), 200);
    jwk["d"] = json!("c2VjcmV0");
    let leaky = key.sign_raw(&header(&jwk), &claims("raw-2"));
    let (status, error) = error_of(token_post(&app, &client, &cc, Some(&leaky)).await).await;
    assert_eq!(
        (status, error.as_str()),
        (400, "invalid_dpop_proof"),
        "a private key in the proof"
    );
    // And a proof that is not typed dpop+jwt.
    jwk.as_object_mut().unwrap().remove("d");
    let untyped = key.sign_raw(
        &json!({"typ": "JWT", "alg": "ES256", "jwk": jwk}),
        &claims("raw-3"),
    );
    let (status, error) = error_of(token_post(&app, &client, &cc, Some(&untyped)).await).await;
    assert_eq!((status, error.as_str()), (400, "invalid_dpop_proof"), "typ");
}

/// A public client's code flow with DPoP: returns the key, the nonce and the tokens.
async fn public_client_tokens(
    app: &TestApp,
    client: &Registered,
    key: &DpopKey,
    extra: &str,
) -> (String, Value) {
    let browser = app.browser();
    let landing = browser
        .visit(&format!(
            "{}{extra}",
            app.authorize_url(&client.id, "openid profile offline_access")
        ))
        .await;
    let code = browser
        .log_in_and_consent(landing, "alice", PASSWORD)
        .await
        .query("code")
        .unwrap();
    let nonce = nonce_for(app, client, key, "refresh_token").await;
    let url = format!("{}/token", app.base);
    let response = token_post(
        app,
        client,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
        Some(&key.proof("POST", &url, Some(&nonce), None)),
    )
    .await;
    assert_eq!(response.status(), 200);
    (nonce, response.json().await.unwrap())
}

async fn a_bound_token_needs_a_proof_by_its_key_at_userinfo(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_user("alice").await;
    let client = app.add_client(true, |_| {}).await;
    let key = DpopKey::new();
    let (nonce, tokens) = public_client_tokens(&app, &client, &key, "").await;
    let access = tokens["access_token"].as_str().unwrap();
    let userinfo = format!("{}/userinfo", app.base);
    let get = |scheme: &str, proof: Option<String>| {
        let mut request = app
            .http
            .get(&userinfo)
            .header("Authorization", format!("{scheme} {access}"));
        if let Some(proof) = proof {
            request = request.header("DPoP", proof);
        }
        request.send()
    };

    let ok = get(
        "DPoP",
        Some(key.proof("GET", &userinfo, Some(&nonce), Some(access))),
    )
    .await
    .unwrap();
    assert_eq!(ok.status(), 200);
    let claims: Value = ok.json().await.unwrap();
    assert_eq!(claims["preferred_username"], "alice");

    // §7.2: never as a bearer token.
    let as_bearer = get("Bearer", None).await.unwrap();
    assert_eq!(as_bearer.status(), 401);
    assert!(
        as_bearer.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("DPoP ")
    );
    // No ath, ath of another token, another key, no nonce: each refused with 401.
    let cases = [
        ("no proof", None, "invalid_dpop_proof"),
        (
            "no ath",
            Some(key.proof("GET", &userinfo, Some(&nonce), None)),
            "invalid_dpop_proof",
        ),
        (
            "ath of another token",
            Some(key.proof("GET", &userinfo, Some(&nonce), Some("other"))),
            "invalid_dpop_proof",
        ),
        (
            "another key",
            Some(DpopKey::new().proof("GET", &userinfo, Some(&nonce), Some(access))),
            "invalid_token",
        ),
        (
            "no nonce",
            Some(key.proof("GET", &userinfo, None, Some(access))),
            "use_dpop_nonce",
        ),
    ];
    for (what, proof, code) in cases {
        let response = get("DPoP", proof).await.unwrap();
        assert_eq!(response.status(), 401, "{what}");
        let challenge = response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            challenge.starts_with("DPoP ") && challenge.contains(code),
            "{what}: {challenge}"
        );
        if code == "use_dpop_nonce" {
            assert!(response.headers().contains_key("dpop-nonce"), "§9: a fresh nonce");
        }
    }

    // §5: the public client's refresh token needs a proof by the same key.
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let url = format!("{}/token", app.base);
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh)];
    let (status, error) = error_of(token_post(&app, &client, &form, None).await).await;
    assert_eq!((status, error.as_str()), (400, "invalid_grant"));
    let other = DpopKey::new();
    let (status, error) = error_of(
        token_post(
            &app,
            &client,
            &form,
            Some(&other.proof("POST", &url, Some(&nonce), None)),
        )
        .await,
    )
    .await;
    assert_eq!((status, error.as_str()), (400, "invalid_grant"));
    let refreshed = token_post(
        &app,
        &client,
        &form,
        Some(&key.proof("POST", &url, Some(&nonce), None)),
    )
    .await;
    assert_eq!(refreshed.status(), 200);
    let refreshed: Value = refreshed.json().await.unwrap();
    assert_eq!(
        common::jwt_claims(refreshed["access_token"].as_str().unwrap())["cnf"]["jkt"],
        key.jkt()
    );
}

async fn a_code_requested_with_dpop_jkt_needs_that_key(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_user("alice").await;
    let client = app.add_client(false, |_| {}).await;
    let key = DpopKey::new();
    let browser = app.browser();
    let landing = browser
        .visit(&format!(
            "{}&dpop_jkt={}",
            app.authorize_url(&client.id, "openid"),
            key.jkt()
        ))
        .await;
    let code = browser
        .log_in_and_consent(landing, "alice", PASSWORD)
        .await
        .query("code")
        .unwrap();
    let other = DpopKey::new();
    let nonce = nonce_for(&app, &client, &other, "refresh_token").await;
    let url = format!("{}/token", app.base);
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ];
    let (status, error) = error_of(
        token_post(
            &app,
            &client,
            &form,
            Some(&other.proof("POST", &url, Some(&nonce), None)),
        )
        .await,
    )
    .await;
    assert_eq!((status, error.as_str()), (400, "invalid_grant"), "RFC 9449 §10");
    let ok = token_post(
        &app,
        &client,
        &form,
        Some(&key.proof("POST", &url, Some(&nonce), None)),
    )
    .await;
    assert_eq!(ok.status(), 200);

    // A malformed dpop_jkt goes back to the client.
    let back = app
        .browser()
        .visit(&format!(
            "{}&dpop_jkt=short",
            app.authorize_url(&client.id, "openid")
        ))
        .await
        .client_url();
    assert!(
        back.query_pairs()
            .any(|(k, v)| k == "error" && v == "invalid_request")
    );
}

async fn a_client_may_require_dpop(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app
        .add_client(false, |c| {
            c.grant_types = vec![idp::domain::client::GrantType::ClientCredentials];
            c.redirect_uris.clear();
            c.scopes = vec!["api".into()];
            c.dpop_bound_access_tokens = true;
        })
        .await;
    let (status, error) =
        error_of(token_post(&app, &client, &[("grant_type", "client_credentials")], None).await).await;
    assert_eq!((status, error.as_str()), (400, "invalid_request"));
    let metadata = app.discovery().await;
    assert_eq!(
        metadata["dpop_signing_alg_values_supported"],
        json!(["ES256", "EdDSA", "PS256", "RS256"])
    );
}

/// Two replicas on one PostgreSQL and Redis: a nonce from one works at the other, and a
/// proof used at one is a replay at the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nonces_and_replays_hold_across_replicas() {
    let first = spawn_app(Backend::Postgres).await;
    let second = spawn_app_with(TestDb::new_shared(&first.db), &[]).await;
    let client = first.add_service_client(&["api"]).await;
    let key = DpopKey::new();
    let nonce = nonce(&first, &client, &key).await;
    let cc = [("grant_type", "client_credentials")];
    // Each replica has its own URL here; a proof names one, so it is replayed at the same URL
    // of the other replica by rewriting nothing but the host the request goes to.
    let proof = key.proof("POST", &format!("{}/token", second.base), Some(&nonce), None);
    assert_eq!(
        token_post(&second, &client, &cc, Some(&proof)).await.status(),
        200,
        "the first replica's nonce"
    );
    let (status, error) = error_of(token_post(&second, &client, &cc, Some(&proof)).await).await;
    assert_eq!((status, error.as_str()), (400, "invalid_dpop_proof"));
    // The replay cache is Redis: the first replica, told the same jti, refuses it too.
    let again = key.proof_with(json!({
        "jti": common::jwt_claims(&proof)["jti"], "htm": "POST", "htu": format!("{}/token", first.base),
        "iat": chrono::Utc::now().timestamp(), "nonce": nonce,
    }));
    let (status, error) = error_of(token_post(&first, &client, &cc, Some(&again)).await).await;
    assert_eq!((status, error.as_str()), (400, "invalid_dpop_proof"));
}

on_both_backends!(
    client_credentials_tokens_are_bound_to_the_proofs_key,
    a_bound_token_needs_a_proof_by_its_key_at_userinfo,
    a_code_requested_with_dpop_jkt_needs_that_key,
    a_client_may_require_dpop,
);
