//! The FAPI 2.0 Security Profile as a client setting (`--profile fapi2`): registering such a
//! client turns on what the profile needs and refuses what contradicts it; at run time its
//! plain (unpushed) requests and its token requests without DPoP are refused, and its codes
//! live at most 60 s. (The whole flow is driven by openid-client in interop_openid_client.rs.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::client_key::ClientKey;
use common::{Backend, PASSWORD, spawn_app};
use idp::domain::client::{Profile, TokenEndpointAuthMethod};
use serde_json::{Value, json};

async fn the_profile_sets_and_guards_the_clients_settings(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = ClientKey::es256("k");
    let jwks = ClientKey::jwks(&[&key]);
    let client = app
        .add_client(false, |c| {
            c.profile = Some(Profile::Fapi2);
            c.jwks = Some(jwks.clone());
        })
        .await;
    assert!(client.secret.is_none(), "private_key_jwt: no secret");
    let stored = idp::manage::clients::get(&app.services, &client.id)
        .await
        .unwrap();
    assert_eq!(
        stored.token_endpoint_auth_method,
        TokenEndpointAuthMethod::PrivateKeyJwt
    );
    assert!(stored.require_par && stored.require_pkce && stored.dpop_bound_access_tokens);
    assert_eq!(stored.id_token_signed_response_alg, "ES256");
    assert_eq!(stored.profile, Some(Profile::Fapi2));

    // Settings that contradict the profile are refused.
    let mut secret_based = stored.settings();
    secret_based.token_endpoint_auth_method = Some(TokenEndpointAuthMethod::ClientSecretBasic);
    secret_based.jwks = None;
    let refused =
        idp::manage::clients::update(&app.services, &client.id, secret_based, idp::manage::Actor::Cli).await;
    assert!(refused.unwrap_err().to_string().contains("private_key_jwt"));
    let mut rs256 = stored.settings();
    rs256.access_token_signing_alg = Some("RS256".into());
    let refused =
        idp::manage::clients::update(&app.services, &client.id, rs256, idp::manage::Actor::Cli).await;
    assert!(refused.unwrap_err().to_string().contains("RS256"));

    // Its unpushed requests go back with an error (RFC 9126 §6).
    let back = app
        .browser()
        .visit(&app.authorize_url(&client.id, "openid"))
        .await
        .client_url();
    assert!(
        back.query_pairs()
            .any(|(k, v)| k == "error" && v == "invalid_request"),
        "{back}"
    );

    // Its token requests without a DPoP proof are refused.
    let assertion = key.sign(&json!({
        "iss": client.id, "sub": client.id, "aud": app.base, "jti": "j1",
        "iat": chrono::Utc::now().timestamp(), "exp": chrono::Utc::now().timestamp() + 60,
    }));
    let response = app
        .http
        .post(format!("{}/token", app.base))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", "x"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request", "{body}");
}

/// FAPI 2.0 §5.3.2.1: codes live at most 60 s, even where the deployment allows longer.
async fn a_fapi2_clients_code_lives_at_most_60_seconds(backend: Backend) {
    let db = common::TestDb::new(backend).await;
    let app = common::spawn_app_with(db, &[("IDP_AUTHORIZATION_CODE_TTL_S", "300")]).await;
    app.add_user("alice").await;
    let key = ClientKey::es256("k");
    let jwks = ClientKey::jwks(&[&key]);
    let client = app
        .add_client(false, |c| {
            c.profile = Some(Profile::Fapi2);
            c.jwks = Some(jwks);
        })
        .await;
    let now = || chrono::Utc::now().timestamp();
    let assertion = |jti: &str| {
        key.sign(&json!({
            "iss": client.id, "sub": client.id, "aud": app.base, "jti": jti,
            "iat": now(), "exp": now() + 60,
        }))
    };
    let mut url = url::Url::parse(&app.authorize_url(&client.id, "openid")).unwrap();
    let query: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    url.set_query(None);
    let mut form: Vec<(&str, &str)> = query.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let first = assertion("par");
    form.push((
        "client_assertion_type",
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
    ));
    form.push(("client_assertion", &first));
    form.retain(|(k, _)| *k != "client_id");
    let pushed: Value = app
        .http
        .post(format!("{}/par", app.base))
        .form(&form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut authorize = url::Url::parse(&format!("{}/authorize", app.base)).unwrap();
    authorize
        .query_pairs_mut()
        .append_pair("client_id", &client.id)
        .append_pair("request_uri", pushed["request_uri"].as_str().unwrap());
    let browser = app.browser();
    let code = browser
        .log_in_and_consent(browser.visit(authorize.as_str()).await, "alice", PASSWORD)
        .await
        .query("code")
        .unwrap();
    let codes = app
        .services
        .store
        .find_code(&app.services.tokens.hash(&code))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((codes.expires_at - codes.created_at).num_seconds(), 60);
}

#[test]
fn the_profile_allows_only_its_algorithms() {
    assert!(Profile::allows_alg(None, "RS256"));
    assert!(!Profile::allows_alg(Some(Profile::Fapi2), "RS256"));
    for alg in ["PS256", "ES256", "EdDSA"] {
        assert!(Profile::allows_alg(Some(Profile::Fapi2), alg));
    }
}

on_both_backends!(
    the_profile_sets_and_guards_the_clients_settings,
    a_fapi2_clients_code_lives_at_most_60_seconds,
);
