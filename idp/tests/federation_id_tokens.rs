//! ID tokens this provider must refuse as a relying party (OIDC Core §3.1.3.7): an upstream
//! OpenID provider on 127.0.0.1, a few lines of a real HTTP server with its own ES256 key,
//! that can be told to answer with an ID token for another nonce, from another issuer, for
//! another audience, or signed by a key it does not publish. The same provider answering
//! correctly signs the user in, so each refusal is the tampered claim's doing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use actix_web::{HttpResponse, web};
use common::browser::Landing;
use common::client_key::ClientKey;
use common::{Backend, Registered, TestApp, spawn_app};
use serde_json::{Value, json};

const CLIENT_ID: &str = "aimpact";

/// What the provider does wrong in its next ID token.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Tamper {
    Nothing,
    Nonce,
    Issuer,
    Audience,
    UnpublishedKey,
}

struct OpState {
    base: String,
    /// Its signing keys in turn; `current` is the one it signs with and publishes.
    keys: [ClientKey; 2],
    current: AtomicUsize,
    /// A key it never publishes.
    other_key: ClientKey,
    /// How often its key set was read.
    jwks_reads: AtomicUsize,
    tamper: Mutex<Tamper>,
    /// code → the nonce of its authorization request.
    codes: Mutex<HashMap<String, String>>,
}

async fn discovery(state: web::Data<OpState>) -> HttpResponse {
    let base = &state.base;
    HttpResponse::Ok().json(json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/authorize"),
        "token_endpoint": format!("{base}/token"),
        "jwks_uri": format!("{base}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
    }))
}

impl OpState {
    fn key(&self) -> &ClientKey {
        &self.keys[self.current.load(Ordering::SeqCst)]
    }
}

async fn jwks(state: web::Data<OpState>) -> HttpResponse {
    state.jwks_reads.fetch_add(1, Ordering::SeqCst);
    HttpResponse::Ok().json(ClientKey::jwks(&[state.key()]))
}

/// The user is signed in there already: straight back with a code.
async fn authorize(query: web::Query<HashMap<String, String>>, state: web::Data<OpState>) -> HttpResponse {
    let code = uuid::Uuid::new_v4().to_string();
    state
        .codes
        .lock()
        .unwrap()
        .insert(code.clone(), query["nonce"].clone());
    let mut back = url::Url::parse(&query["redirect_uri"]).unwrap();
    back.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &query["state"]);
    HttpResponse::Found()
        .insert_header(("Location", back.to_string()))
        .finish()
}

async fn token(body: web::Form<HashMap<String, String>>, state: web::Data<OpState>) -> HttpResponse {
    let Some(nonce) = state.codes.lock().unwrap().remove(&body["code"]) else {
        return HttpResponse::BadRequest().json(json!({ "error": "invalid_grant" }));
    };
    let tamper = *state.tamper.lock().unwrap();
    let now = chrono::Utc::now().timestamp();
    let mut claims = json!({
        "iss": state.base, "sub": "user-1", "aud": CLIENT_ID, "iat": now, "exp": now + 300,
        "nonce": nonce, "email": "user-1@example.com", "email_verified": true,
    });
    match tamper {
        Tamper::Nothing | Tamper::UnpublishedKey => {}
        Tamper::Nonce => claims["nonce"] = json!("a-nonce-of-another-sign-in"),
        Tamper::Issuer => claims["iss"] = json!("https://other-issuer.example.com"),
        Tamper::Audience => claims["aud"] = json!("another-client"),
    }
    let key = if tamper == Tamper::UnpublishedKey {
        &state.other_key
    } else {
        state.key()
    };
    HttpResponse::Ok().json(json!({
        "access_token": "at-1", "token_type": "Bearer", "expires_in": 300, "id_token": key.sign(&claims),
    }))
}

struct Setup {
    app: TestApp,
    client: Registered,
    op: Arc<OpState>,
}

async fn setup(backend: Backend) -> Setup {
    let (listener, base) = common::local_listener();
    let op = Arc::new(OpState {
        base,
        keys: [ClientKey::es256("op-key"), ClientKey::es256("op-key-2")],
        current: AtomicUsize::new(0),
        // The same `kid` as the first key: only the signature tells them apart.
        other_key: ClientKey::es256("op-key"),
        jwks_reads: AtomicUsize::new(0),
        tamper: Mutex::new(Tamper::Nothing),
        codes: Mutex::new(HashMap::new()),
    });
    let data = web::Data::from(op.clone());
    common::serve(listener, move |routes| {
        routes
            .app_data(data.clone())
            .route("/.well-known/openid-configuration", web::get().to(discovery))
            .route("/jwks", web::get().to(jwks))
            .route("/authorize", web::get().to(authorize))
            .route("/token", web::post().to(token));
    });
    let app = spawn_app(backend).await;
    let draft = idp::domain::upstream::UpstreamDraft {
        slug: "op".into(),
        display_name: "Small OP".into(),
        issuer: Some(op.base.clone()),
        client_id: CLIENT_ID.into(),
        jit: true,
        ..Default::default()
    };
    app.add_upstream(draft, "op-secret").await;
    let client = app.add_client(false, |c| c.first_party = true).await;
    Setup { app, client, op }
}

/// Through "Continue with Small OP" and straight back: where the callback leads.
async fn sign_in(s: &Setup) -> Landing {
    let browser = s.app.browser();
    let url = format!("{}&idp_hint=op", s.app.authorize_url(&s.client.id, "openid"));
    let to_op = browser.visit(&url).await.client_url();
    assert!(to_op.as_str().starts_with(&s.op.base), "{to_op}");
    let back = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(to_op)
        .send()
        .await
        .unwrap();
    browser.visit(back.headers()["location"].to_str().unwrap()).await
}

/// Whether the small OP's user is linked to an account here.
async fn linked(s: &Setup) -> bool {
    let identity = s.app.services.store.find_identity(&s.op.base, "user-1").await;
    identity.unwrap().is_some()
}

async fn id_tokens_are_verified_before_anyone_signs_in(backend: Backend) {
    let s = setup(backend).await;
    for tamper in [
        Tamper::Nonce,
        Tamper::Issuer,
        Tamper::Audience,
        Tamper::UnpublishedKey,
    ] {
        *s.op.tamper.lock().unwrap() = tamper;
        let (status, _, html) = sign_in(&s).await.page();
        assert_eq!(status, 401, "{tamper:?}");
        assert!(
            html.contains("Signing in with Small OP failed."),
            "{tamper:?}: {html}"
        );
    }
    let query = idp::audit::EventQuery {
        event_type: idp::audit::EventType::parse("login_failed"),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(s.app.services.store.query_events(&query).await.unwrap().len(), 4);
    let failures = [("upstream", "op"), ("outcome", "failure")];
    let metrics = s.app.metrics().await;
    assert_eq!(
        common::metric_value(&metrics, "idp_upstream_logins_total", &failures),
        4.0
    );
    assert!(!linked(&s).await, "nobody was signed in or created");

    // The same provider, answering correctly: the user signs in.
    *s.op.tamper.lock().unwrap() = Tamper::Nothing;
    let code = sign_in(&s).await.query("code").unwrap();
    let tokens: Value = s.app.redeem_code(&s.client, &code).await;
    let claims = common::jwt_claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(claims["amr"], json!(["fed"]));
    assert!(
        linked(&s).await,
        "the provider's user is linked to an account here"
    );
}

/// The key set is read once and kept; a token signed with a key it lacks (the provider
/// rotated its keys) has it read again at once.
async fn the_key_set_is_cached_and_read_again_for_a_new_key(backend: Backend) {
    let s = setup(backend).await;
    for _ in 0..2 {
        assert!(sign_in(&s).await.query("code").is_some());
    }
    assert_eq!(s.op.jwks_reads.load(Ordering::SeqCst), 1, "cached");
    s.op.current.store(1, Ordering::SeqCst);
    assert!(
        sign_in(&s).await.query("code").is_some(),
        "the rotated key is read"
    );
    assert_eq!(s.op.jwks_reads.load(Ordering::SeqCst), 2);
    assert!(sign_in(&s).await.query("code").is_some());
    assert_eq!(s.op.jwks_reads.load(Ordering::SeqCst), 2, "and kept");
    // A token naming a key the provider does not publish: the set just read again is not
    // read yet again (made-up `kid`s cannot make this provider hammer the upstream).
    s.op.current.store(0, Ordering::SeqCst);
    let (status, _, _) = sign_in(&s).await.page();
    assert_eq!(
        status, 401,
        "op-key is gone from the cached set and not read again within 10 s"
    );
    assert_eq!(s.op.jwks_reads.load(Ordering::SeqCst), 2);
}

on_both_backends!(
    id_tokens_are_verified_before_anyone_signs_in,
    the_key_set_is_cached_and_read_again_for_a_new_key,
);
