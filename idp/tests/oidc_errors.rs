//! Every error case of the authorization, token and userinfo endpoints, and bad input:
//! each a clean 4xx with the right OAuth error, never a 500 and never a redirect to an
//! untrusted URI.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Backend, CHALLENGE, REDIRECT, TestApp, authorize_query, spawn_app};
use reqwest::StatusCode;
use serde_json::Value;

async fn get(app: &TestApp, path_and_query: &str) -> reqwest::Response {
    app.http
        .get(format!("{}{path_and_query}", app.base))
        .send()
        .await
        .unwrap()
}

fn location(response: &reqwest::Response) -> url::Url {
    url::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap()
}

fn param(url: &url::Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The request is refused on a page at the provider, never redirected.
async fn assert_error_page(response: reqwest::Response, needle: &str) {
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.headers().get("location").is_none(), "must not redirect");
    let html = response.text().await.unwrap();
    assert!(html.contains(needle), "{html}");
}

/// The error goes back to the client with state and iss.
fn assert_redirected_error(app: &TestApp, response: &reqwest::Response, code: &str) {
    assert_eq!(response.status(), StatusCode::FOUND, "expected a redirect");
    let url = location(response);
    assert!(url.as_str().starts_with(REDIRECT));
    assert_eq!(param(&url, "error").as_deref(), Some(code), "{url}");
    assert_eq!(param(&url, "state").as_deref(), Some("xyz"));
    assert_eq!(param(&url, "iss").as_deref(), Some(app.base.as_str()));
}

async fn an_unknown_or_missing_client_is_shown_an_error_page(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_error_page(
        get(&app, &authorize_query("no-such-client", "")).await,
        "invalid_request",
    )
    .await;
    assert_error_page(
        get(&app, "/authorize?response_type=code&scope=openid").await,
        "client_id",
    )
    .await;
}

async fn a_mismatched_redirect_uri_is_never_redirected_to(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.add_client(false, |_| {}).await;
    for other in [
        "http://127.0.0.1:9/callback/",
        "http://127.0.0.1:9/callback?x=1",
        "http://127.0.0.1:9/CALLBACK",
        "https://evil.example/callback",
    ] {
        let q = authorize_query(&client.id, "").replace(
            &url::form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>(),
            &url::form_urlencoded::byte_serialize(other.as_bytes()).collect::<String>(),
        );
        assert_error_page(get(&app, &q).await, "redirect_uri").await;
    }
}

async fn protocol_errors_after_the_client_is_known_go_back_to_the_client(backend: Backend) {
    let app = spawn_app(backend).await;
    let public = app.add_client(true, |_| {}).await;
    let id = &public.id;
    let cases = [
        (
            authorize_query(id, "").replace("response_type=code", "response_type=token"),
            "unsupported_response_type",
        ),
        (
            authorize_query(id, "").replace("&response_type=code", ""),
            "invalid_request",
        ),
        (
            authorize_query(id, "").replace("code_challenge_method=S256", "code_challenge_method=plain"),
            "invalid_request",
        ),
        (
            authorize_query(id, "").replace(
                &format!("&code_challenge={CHALLENGE}&code_challenge_method=S256"),
                "",
            ),
            "invalid_request",
        ),
        (
            // An unsigned request object (alg none) is never accepted (RFC 9101 §6.1).
            authorize_query(id, "&request=eyJhbGciOiJub25lIn0.e30."),
            "invalid_request_object",
        ),
        (
            authorize_query(id, "&request_uri=https%3A%2F%2Fx.example%2Fr"),
            "request_uri_not_supported",
        ),
        (authorize_query(id, "&prompt=none%20login"), "invalid_request"),
        (authorize_query(id, "&max_age=-1"), "invalid_request"),
        (
            authorize_query(id, "").replace("scope=openid", "scope=unknown-scope"),
            "invalid_scope",
        ),
        (authorize_query(id, "&response_mode=fragment"), "invalid_request"),
    ];
    for (query, code) in cases {
        let response = get(&app, &query).await;
        assert_redirected_error(&app, &response, code);
    }
}

async fn unknown_parameters_and_locales_are_accepted(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.add_client(false, |_| {}).await;
    let response = get(
        &app,
        &authorize_query(&client.id, "&ui_locales=fr-CA%20en&claims_locales=en&foo=bar"),
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(
        response.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/login?")
    );
}

async fn malformed_authorization_requests_get_a_clean_400(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.add_client(false, |_| {}).await;
    let base = authorize_query(&client.id, "");
    let cases = [
        format!("{base}&state=second"), // duplicated parameter (RFC 6749 §3.1)
        format!("{base}&nonce=%zz"),    // invalid percent-encoding
        format!("{base}&nonce=%ff%fe"), // not UTF-8
        format!("{base}&nonce={}", "n".repeat(9000)), // oversized parameter
    ];
    for query in cases {
        let response = get(&app, &query).await;
        assert_eq!(
            response.status(),
            StatusCode::BAD_REQUEST,
            "{}",
            &query[..query.len().min(200)]
        );
        assert!(response.headers().get("location").is_none());
    }
    // A 60 KB state (near the longest URL an HTTP client will send): still a 4xx, never a 5xx.
    let huge = get(
        &app,
        &format!(
            "{}&state={}",
            base.replace("&state=xyz", ""),
            "s".repeat(60 * 1024)
        ),
    )
    .await;
    assert!(huge.status().is_client_error(), "{}", huge.status());
    // POSTed, it is refused by the body limit or the parameter limit.
    let form = format!(
        "{}&state={}",
        &base[11..].replace("&state=xyz", ""),
        "s".repeat(100 * 1024)
    );
    let posted = app
        .http
        .post(format!("{}/authorize", app.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    assert!(posted.status().is_client_error(), "{}", posted.status());
    let wrong_type = app
        .http
        .post(format!("{}/authorize", app.base))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_type.status(), StatusCode::BAD_REQUEST);
}

async fn discovery_describes_exactly_what_is_implemented(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = get(&app, "/.well-known/openid-configuration").await;
    assert!(
        response.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age")
    );
    let etag = response.headers()["etag"].to_str().unwrap().to_string();
    let doc: Value = response.json().await.unwrap();
    assert_eq!(doc["issuer"], app.base.as_str());
    assert_eq!(doc["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(
        doc["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(doc["request_parameter_supported"], true);
    assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
    for alg in ["RS256", "PS256", "ES256", "EdDSA"] {
        assert!(
            doc["id_token_signing_alg_values_supported"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a == alg)
        );
    }
    let again = app
        .http
        .get(format!("{}/.well-known/openid-configuration", app.base))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    let rfc8414: Value = get(&app, "/.well-known/oauth-authorization-server")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rfc8414["issuer"], app.base.as_str());
    let jwks: Value = get(&app, "/jwks").await.json().await.unwrap();
    for key in jwks["keys"].as_array().unwrap() {
        assert!(key["kid"].is_string() && key["use"] == "sig" && key["alg"].is_string());
        assert!(
            key.get("d").is_none() && key.get("p").is_none(),
            "public parts only"
        );
    }
}

async fn login_and_consent_pages_are_hardened(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.add_client(false, |_| {}).await;
    let redirect = get(&app, &authorize_query(&client.id, "")).await;
    let login = get(&app, redirect.headers()["location"].to_str().unwrap()).await;
    assert_eq!(login.status(), 200);
    let csp = login.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(login.headers()["x-frame-options"], "DENY");
    assert_eq!(login.headers()["cache-control"], "no-store");
    let cookie = login.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let html = login.text().await.unwrap();
    assert!(html.contains("name=\"csrf\"") && html.contains("<label for=\"password\">"));
    // A login POST without the CSRF cookie is refused.
    let form = common::browser::form(&html)
        .set("username", "x")
        .set("password", "y");
    let forged = reqwest::Client::new()
        .post(format!("{}/login", app.base))
        .form(&form.fields)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 400);
}

async fn a_confidential_client_can_be_required_to_use_pkce(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.add_client(false, |c| c.require_pkce = true).await;
    let without = authorize_query(&client.id, "").replace(
        &format!("&code_challenge={CHALLENGE}&code_challenge_method=S256"),
        "",
    );
    let response = get(&app, &without).await;
    assert_redirected_error(&app, &response, "invalid_request");
    let with = get(&app, &authorize_query(&client.id, "")).await;
    assert_eq!(
        with.status(),
        303,
        "with PKCE the request goes on to the login page"
    );
}

on_both_backends!(
    a_confidential_client_can_be_required_to_use_pkce,
    an_unknown_or_missing_client_is_shown_an_error_page,
    a_mismatched_redirect_uri_is_never_redirected_to,
    protocol_errors_after_the_client_is_known_go_back_to_the_client,
    unknown_parameters_and_locales_are_accepted,
    malformed_authorization_requests_get_a_clean_400,
    discovery_describes_exactly_what_is_implemented,
    login_and_consent_pages_are_hardened,
);
