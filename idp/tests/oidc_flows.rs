//! OpenID Connect flows from the outside: the `openidconnect` crate as the relying party,
//! a scripted browser for the login and consent pages, on both storage backends.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::browser::{Browser, Landing, form};
use common::{Backend, PASSWORD, REDIRECT, Registered, Rp, TestApp, spawn_app};
use openidconnect::core::{CoreAuthenticationFlow, CoreUserInfoClaims};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, CsrfToken, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    PkceCodeVerifier, Scope, TokenResponse,
};
use serde_json::Value;

/// Starts an authorization request; returns the URL, state, nonce and PKCE verifier.
fn auth_request(rp: &Rp, scopes: &[&str]) -> (url::Url, CsrfToken, Nonce, PkceCodeVerifier) {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = rp
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(challenge);
    for scope in scopes {
        request = request.add_scope(Scope::new(scope.to_string()));
    }
    let (url, state, nonce) = request.url();
    (url, state, nonce, verifier)
}

/// Redeems a code at the token endpoint, as the relying party does.
async fn exchange(
    app: &TestApp,
    rp: &Rp,
    code: String,
    verifier: PkceCodeVerifier,
) -> openidconnect::core::CoreTokenResponse {
    rp.exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&app.rp_http())
        .await
        .unwrap()
}

fn param(url: &url::Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// A full login: authorize, log in, consent, come back with a code.
async fn log_in(
    app: &TestApp,
    rp: &Rp,
    browser: &Browser,
    username: &str,
    scopes: &[&str],
) -> (String, Nonce, PkceCodeVerifier) {
    let (url, state, nonce, verifier) = auth_request(rp, scopes);
    let landing = browser.visit(url.as_str()).await;
    let back = browser
        .log_in_and_consent(landing, username, PASSWORD)
        .await
        .client_url();
    assert!(back.as_str().starts_with(REDIRECT), "{back}");
    assert_eq!(
        param(&back, "state").as_deref(),
        Some(state.secret().as_str()),
        "state is echoed byte for byte"
    );
    assert_eq!(
        param(&back, "iss").as_deref(),
        Some(app.base.as_str()),
        "RFC 9207 iss in the response"
    );
    (param(&back, "code").expect("a code"), nonce, verifier)
}

async fn a_confidential_client_logs_a_user_in_and_reads_userinfo(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.add_user("alice").await;
    let client = app.add_client(false, |_| {}).await;
    let rp = app.relying_party(&client).await;
    let browser = Browser::new(&app.base);
    let (code, nonce, verifier) = log_in(&app, &rp, &browser, "alice", &["openid", "profile", "email"]).await;

    let http = app.rp_http();
    let tokens = exchange(&app, &rp, code, verifier).await;
    let id_token = tokens.id_token().expect("an ID token");
    let claims = id_token
        .claims(&rp.id_token_verifier(), &nonce)
        .expect("the ID token verifies against the JWKS");
    assert_eq!(
        claims.subject().as_str(),
        user.id.to_string(),
        "sub is the stable opaque id, not the username"
    );
    assert!(claims.auth_time().is_some());
    let at_hash = claims.access_token_hash().expect("at_hash");
    let expected = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&rp.id_token_verifier()).unwrap(),
    )
    .unwrap();
    assert_eq!(at_hash, &expected);
    assert!(
        tokens.refresh_token().is_none(),
        "no refresh token without offline_access"
    );

    let info: CoreUserInfoClaims = rp
        .user_info(tokens.access_token().clone(), None)
        .unwrap()
        .request_async(&http)
        .await
        .unwrap();
    assert_eq!(info.subject().as_str(), user.id.to_string());
    assert_eq!(info.email().map(|e| e.as_str()), Some("alice@example.com"));
    assert_eq!(info.preferred_username().map(|u| u.as_str()), Some("alice"));

    // The access token is an RFC 9068 JWT.
    let header: Value = decode_part(tokens.access_token().secret(), 0);
    assert_eq!(header["typ"], "at+jwt");
    let body: Value = decode_part(tokens.access_token().secret(), 1);
    assert_eq!(body["client_id"], client.id.as_str());
    assert_eq!(body["iss"], app.base.as_str());
    assert!(body["jti"].is_string());
    assert_eq!(body["exp"].as_i64().unwrap() - body["iat"].as_i64().unwrap(), 600);
}

fn decode_part(jwt: &str, index: usize) -> Value {
    use base64::Engine;
    let part = jwt.split('.').nth(index).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

async fn a_public_client_uses_pkce_and_gets_a_refresh_token_with_offline_access(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_user("bob").await;
    let client = app.add_client(true, |_| {}).await;
    assert!(client.secret.is_none());
    let rp = app.relying_party(&client).await;
    let browser = Browser::new(&app.base);
    let (code, nonce, verifier) = log_in(&app, &rp, &browser, "bob", &["openid", "offline_access"]).await;
    let http = app.rp_http();
    let tokens = exchange(&app, &rp, code, verifier).await;
    tokens
        .id_token()
        .unwrap()
        .claims(&rp.id_token_verifier(), &nonce)
        .unwrap();
    let refresh = tokens
        .refresh_token()
        .expect("offline_access gives a refresh token")
        .clone();
    let refreshed = rp
        .exchange_refresh_token(&refresh)
        .unwrap()
        .request_async(&http)
        .await
        .unwrap();
    assert_ne!(
        refreshed.refresh_token().unwrap().secret(),
        refresh.secret(),
        "the refresh token rotates"
    );
    // The retired token is refused.
    let again = rp
        .exchange_refresh_token(&refresh)
        .unwrap()
        .request_async(&http)
        .await;
    assert!(again.is_err());
}

async fn client_credentials_issue_an_access_token_for_the_client_itself(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.add_service_client(&["reports.read", "openid"]).await;
    let rp = app.relying_party(&client).await;
    let tokens = rp
        .exchange_client_credentials()
        .unwrap()
        .request_async(&app.rp_http())
        .await
        .unwrap();
    let body = decode_part(tokens.access_token().secret(), 1);
    assert_eq!(body["sub"], client.id.as_str());
    assert_eq!(body["scope"], "reports.read");
    assert!(tokens.refresh_token().is_none());
    assert!(tokens.extra_fields().id_token().is_none());
}

async fn single_sign_on_reuses_the_session_and_remembers_consent(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_user("carol").await;
    let first = app.add_client(false, |_| {}).await;
    let second = app.add_client(false, |_| {}).await;
    let browser = Browser::new(&app.base);
    let rp1 = app.relying_party(&first).await;
    log_in(&app, &rp1, &browser, "carol", &["openid"]).await;
    // Same client again: no login, no consent.
    let (url, ..) = auth_request(&rp1, &["openid"]);
    assert!(param(&browser.visit(url.as_str()).await.client_url(), "code").is_some());
    // Another client: no login, but its own consent.
    let rp2 = app.relying_party(&second).await;
    let (url, ..) = auth_request(&rp2, &["openid"]);
    let (_, page_url, html) = browser.visit(url.as_str()).await.page();
    assert!(page_url.contains("/consent"), "{page_url}");
    assert!(html.contains("Allow access"));
}

async fn first_party_clients_skip_consent(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_user("dan").await;
    let client = app.add_client(false, |c| c.first_party = true).await;
    let rp = app.relying_party(&client).await;
    let browser = Browser::new(&app.base);
    let (url, ..) = auth_request(&rp, &["openid"]);
    let (_, _, html) = browser.visit(url.as_str()).await.page();
    let login = form(&html).set("username", "dan").set("password", PASSWORD);
    assert!(param(&browser.submit(&login).await.client_url(), "code").is_some());
}

async fn prompt_none_without_a_session_is_login_required(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.add_client(false, |_| {}).await;
    let rp = app.relying_party(&client).await;
    let (mut url, state, ..) = auth_request(&rp, &["openid"]);
    url.query_pairs_mut().append_pair("prompt", "none");
    let back = Browser::new(&app.base).visit(url.as_str()).await.client_url();
    assert_eq!(param(&back, "error").as_deref(), Some("login_required"));
    assert_eq!(param(&back, "state").as_deref(), Some(state.secret().as_str()));
    assert_eq!(param(&back, "iss").as_deref(), Some(app.base.as_str()));
}

async fn prompt_none_with_a_session_returns_a_code_or_consent_required(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_user("erin").await;
    let client = app.add_client(false, |_| {}).await;
    let rp = app.relying_party(&client).await;
    let browser = Browser::new(&app.base);
    log_in(&app, &rp, &browser, "erin", &["openid"]).await;
    let (mut url, ..) = auth_request(&rp, &["openid"]);
    url.query_pairs_mut().append_pair("prompt", "none");
    assert!(param(&browser.visit(url.as_str()).await.client_url(), "code").is_some());
    // A scope not yet consented to cannot be asked for silently.
    let (mut url, ..) = auth_request(&rp, &["openid", "email"]);
    url.query_pairs_mut().append_pair("prompt", "none");
    let back = browser.visit(url.as_str()).await.client_url();
    assert_eq!(param(&back, "error").as_deref(), Some("consent_required"));
}

async fn prompt_login_forces_a_new_login(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_user("fay").await;
    let client = app.add_client(false, |c| c.first_party = true).await;
    let rp = app.relying_party(&client).await;
    let browser = Browser::new(&app.base);
    log_in(&app, &rp, &browser, "fay", &["openid"]).await;
    let (mut url, ..) = auth_request(&rp, &["openid"]);
    url.query_pairs_mut()
        .append_pair("prompt", "login")
        .append_pair("login_hint", "fay");
    let (_, page_url, html) = browser.visit(url.as_str()).await.page();
    assert!(page_url.contains("/login"));
    assert!(html.contains("value=\"fay\""), "login_hint prefills the username");
    let login = form(&html).set("password", PASSWORD);
    assert!(param(&browser.submit(&login).await.client_url(), "code").is_some());
}

async fn max_age_exceeded_requires_login_and_auth_time_is_in_the_id_token(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_user("gus").await;
    let client = app.add_client(false, |c| c.first_party = true).await;
    let rp = app.relying_party(&client).await;
    let browser = Browser::new(&app.base);
    log_in(&app, &rp, &browser, "gus", &["openid"]).await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let relogin_started = chrono::Utc::now().timestamp();
    let (mut url, _, nonce, verifier) = auth_request(&rp, &["openid"]);
    url.query_pairs_mut().append_pair("max_age", "1");
    let (_, page_url, html) = browser.visit(url.as_str()).await.page();
    assert!(
        page_url.contains("/login"),
        "max_age=1 after 2 s demands a new login"
    );
    let back = browser
        .submit(&form(&html).set("username", "gus").set("password", PASSWORD))
        .await
        .client_url();
    let code = param(&back, "code").unwrap();
    let tokens = exchange(&app, &rp, code, verifier).await;
    let claims = tokens
        .id_token()
        .unwrap()
        .claims(&rp.id_token_verifier(), &nonce)
        .unwrap();
    let auth_time = claims.auth_time().expect("auth_time with max_age");
    assert!(
        auth_time.timestamp() >= relogin_started,
        "auth_time is the new login, not the first one"
    );
}

async fn a_reused_code_is_refused_and_revokes_the_tokens_issued_from_it(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_user("hal").await;
    let client = app.add_client(false, |_| {}).await;
    let rp = app.relying_party(&client).await;
    let browser = Browser::new(&app.base);
    let (code, _, verifier) = log_in(&app, &rp, &browser, "hal", &["openid", "offline_access"]).await;
    let http = app.rp_http();
    let verifier_again = PkceCodeVerifier::new(verifier.secret().clone());
    let tokens = exchange(&app, &rp, code.clone(), verifier).await;
    let replay = rp
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier_again)
        .request_async(&http)
        .await;
    assert!(format!("{:?}", replay.unwrap_err()).contains("invalid_grant"));
    // Everything issued from the first use is revoked.
    let info: Result<CoreUserInfoClaims, _> = rp
        .user_info(tokens.access_token().clone(), None)
        .unwrap()
        .request_async(&http)
        .await;
    assert!(
        info.is_err(),
        "the access token from the first use no longer works"
    );
    assert!(
        rp.exchange_refresh_token(tokens.refresh_token().unwrap())
            .unwrap()
            .request_async(&http)
            .await
            .is_err()
    );
    let events = app
        .services
        .store
        .query_events(&idp::audit::EventQuery {
            event_type: Some(idp::audit::EventType::CodeReuseDetected),
            limit: 5,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
}

async fn a_tampered_id_token_is_rejected_by_the_relying_party(backend: Backend) {
    use openidconnect::core::CoreIdToken;
    use std::str::FromStr;
    let app = spawn_app(backend).await;
    app.add_user("ivy").await;
    let client = app.add_client(false, |c| c.first_party = true).await;
    let rp = app.relying_party(&client).await;
    let browser = Browser::new(&app.base);
    let (code, nonce, verifier) = log_in(&app, &rp, &browser, "ivy", &["openid"]).await;
    let tokens = exchange(&app, &rp, code, verifier).await;
    let jwt = tokens.id_token().unwrap().to_string();
    let mut parts: Vec<String> = jwt.split('.').map(String::from).collect();
    let mut body = decode_part(&jwt, 1);
    body["sub"] = Value::String("someone-else".into());
    use base64::Engine;
    parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(body.to_string());
    let forged = CoreIdToken::from_str(&parts.join(".")).unwrap();
    assert!(forged.claims(&rp.id_token_verifier(), &nonce).is_err());
}

async fn a_rotated_key_still_verifies_older_tokens(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_user("jo").await;
    let client = app.add_client(false, |c| c.first_party = true).await;
    let rp = app.relying_party(&client).await;
    let browser = Browser::new(&app.base);
    let (code, nonce, verifier) = log_in(&app, &rp, &browser, "jo", &["openid"]).await;
    let old = exchange(&app, &rp, code, verifier).await;
    let old_kid = decode_part(&old.id_token().unwrap().to_string(), 0)["kid"]
        .as_str()
        .unwrap()
        .to_string();

    idp::manage::keys::rotate(
        &app.services,
        &[idp::security::keys::Alg::RS256],
        idp::manage::Actor::Cli,
    )
    .await
    .unwrap();
    app.services.reload_keys().await.unwrap();

    // A relying party that fetches the JWKS now still verifies the older token...
    let fresh_rp = app.relying_party(&client).await;
    old.id_token()
        .unwrap()
        .claims(&fresh_rp.id_token_verifier(), &nonce)
        .expect("old token verifies after rotation");
    // ...and new tokens carry the new key.
    let (code, nonce, verifier) = log_in(&app, &fresh_rp, &Browser::new(&app.base), "jo", &["openid"]).await;
    let new = exchange(&app, &fresh_rp, code, verifier).await;
    let new_kid = decode_part(&new.id_token().unwrap().to_string(), 0)["kid"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(
        old_kid,
        new_kid,
        "published: {:?}",
        app.services.keys.current().published_kids()
    );
    new.id_token()
        .unwrap()
        .claims(&fresh_rp.id_token_verifier(), &nonce)
        .unwrap();
}

async fn form_post_answers_with_an_auto_submitting_form(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_user("kim").await;
    let client = app.add_client(false, |c| c.first_party = true).await;
    let rp = app.relying_party(&client).await;
    let browser = Browser::new(&app.base);
    let (mut url, state, ..) = auth_request(&rp, &["openid"]);
    url.query_pairs_mut().append_pair("response_mode", "form_post");
    let (_, _, html) = browser.visit(url.as_str()).await.page();
    let answer = browser
        .submit(&form(&html).set("username", "kim").set("password", PASSWORD))
        .await;
    let (status, _, html) = answer.page();
    assert_eq!(status, 200);
    let post = form(&html);
    assert_eq!(post.action, REDIRECT);
    let get = |name: &str| {
        post.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    assert!(get("code").is_some());
    assert_eq!(get("state").as_deref(), Some(state.secret().as_str()));
    assert_eq!(get("iss").as_deref(), Some(app.base.as_str()));
}

async fn denying_consent_returns_access_denied(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_user("lee").await;
    let client = app.add_client(false, |_| {}).await;
    let rp = app.relying_party(&client).await;
    let browser = Browser::new(&app.base);
    let (url, ..) = auth_request(&rp, &["openid"]);
    let (_, _, html) = browser.visit(url.as_str()).await.page();
    let (_, _, consent) = browser
        .submit(&form(&html).set("username", "lee").set("password", PASSWORD))
        .await
        .page();
    let back = browser
        .submit(&form(&consent).set("decision", "deny"))
        .await
        .client_url();
    assert_eq!(param(&back, "error").as_deref(), Some("access_denied"));
}

async fn wrong_password_and_unknown_user_get_the_same_answer(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_user("max").await;
    let client = app.add_client(false, |_| {}).await;
    let rp = app.relying_party(&client).await;
    let browser = Browser::new(&app.base);
    let (url, ..) = auth_request(&rp, &["openid"]);
    let (_, _, html) = browser.visit(url.as_str()).await.page();
    let wrong_password = browser
        .submit(&form(&html).set("username", "max").set("password", "nope-nope"))
        .await
        .page();
    let unknown_user = browser
        .submit(&form(&html).set("username", "nobody").set("password", "nope-nope"))
        .await
        .page();
    assert_eq!(wrong_password.0, 401);
    assert_eq!(unknown_user.0, 401);
    let message = |html: &str| {
        let doc = scraper::Html::parse_document(html);
        let sel = scraper::Selector::parse(".error").unwrap();
        doc.select(&sel)
            .map(|e| e.text().collect::<String>())
            .collect::<String>()
    };
    assert_eq!(message(&wrong_password.2), message(&unknown_user.2));
    assert!(!message(&wrong_password.2).is_empty());
}

async fn a_disabled_user_cannot_log_in(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_user("ned").await;
    idp::manage::users::set_status(
        &app.services,
        "ned",
        idp::domain::user::UserStatus::Disabled,
        idp::manage::Actor::Cli,
    )
    .await
    .unwrap();
    let client = app.add_client(false, |_| {}).await;
    let rp = app.relying_party(&client).await;
    let browser = Browser::new(&app.base);
    let (url, ..) = auth_request(&rp, &["openid"]);
    let (_, _, html) = browser.visit(url.as_str()).await.page();
    let (status, _, _) = browser
        .submit(&form(&html).set("username", "ned").set("password", PASSWORD))
        .await
        .page();
    assert_eq!(status, 401);
}

async fn id_tokens_can_be_signed_with_ps256_es256_and_eddsa(backend: Backend) {
    use openidconnect::core::CoreJwsSigningAlgorithm;
    let app = spawn_app(backend).await;
    app.add_user("oli").await;
    for (alg, rp_alg) in [
        // RSASSA-PSS (RFC 7518 §3.5), which FAPI 2.0 allows where it refuses RS256.
        ("PS256", CoreJwsSigningAlgorithm::RsaSsaPssSha256),
        ("ES256", CoreJwsSigningAlgorithm::EcdsaP256Sha256),
        ("EdDSA", CoreJwsSigningAlgorithm::EdDsa),
    ] {
        let client = app
            .add_client(false, |c| {
                c.first_party = true;
                c.id_token_signed_response_alg = alg.into();
                c.access_token_signing_alg = Some(alg.into());
            })
            .await;
        let rp = app.relying_party(&client).await;
        let (code, nonce, verifier) = log_in(&app, &rp, &Browser::new(&app.base), "oli", &["openid"]).await;
        let tokens = exchange(&app, &rp, code, verifier).await;
        let id_token = tokens.id_token().unwrap();
        let verifier = rp.id_token_verifier().set_allowed_algs(vec![rp_alg]);
        let claims = id_token
            .claims(&verifier, &nonce)
            .unwrap_or_else(|e| panic!("{alg} ID token: {e}"));
        assert!(claims.access_token_hash().is_some());
        assert_eq!(decode_part(&id_token.to_string(), 0)["alg"], alg);
        assert_eq!(decode_part(tokens.access_token().secret(), 0)["alg"], alg);
    }
}

async fn prompt_consent_asks_again_even_when_consent_was_given(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_user("pia").await;
    let client = app.add_client(false, |_| {}).await;
    let rp = app.relying_party(&client).await;
    let browser = Browser::new(&app.base);
    log_in(&app, &rp, &browser, "pia", &["openid"]).await;
    let (mut url, ..) = auth_request(&rp, &["openid"]);
    url.query_pairs_mut().append_pair("prompt", "consent");
    let (_, page_url, html) = browser.visit(url.as_str()).await.page();
    assert!(page_url.contains("/consent"), "{page_url}");
    let back = browser
        .submit(&form(&html).set("decision", "allow"))
        .await
        .client_url();
    assert!(param(&back, "code").is_some());
}

on_both_backends!(
    prompt_consent_asks_again_even_when_consent_was_given,
    id_tokens_can_be_signed_with_ps256_es256_and_eddsa,
    a_confidential_client_logs_a_user_in_and_reads_userinfo,
    a_public_client_uses_pkce_and_gets_a_refresh_token_with_offline_access,
    client_credentials_issue_an_access_token_for_the_client_itself,
    single_sign_on_reuses_the_session_and_remembers_consent,
    first_party_clients_skip_consent,
    prompt_none_without_a_session_is_login_required,
    prompt_none_with_a_session_returns_a_code_or_consent_required,
    prompt_login_forces_a_new_login,
    max_age_exceeded_requires_login_and_auth_time_is_in_the_id_token,
    a_reused_code_is_refused_and_revokes_the_tokens_issued_from_it,
    a_tampered_id_token_is_rejected_by_the_relying_party,
    a_rotated_key_still_verifies_older_tokens,
    form_post_answers_with_an_auto_submitting_form,
    denying_consent_returns_access_denied,
    wrong_password_and_unknown_user_get_the_same_answer,
    a_disabled_user_cannot_log_in,
);

#[allow(dead_code)]
fn unused(_: Registered, _: Landing) {}
