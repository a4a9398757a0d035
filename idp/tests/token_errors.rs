//! Token and userinfo endpoint errors (RFC 6749 §5.2, RFC 6750 §3): method, content type,
//! client authentication, grant types, PKCE and redirect-URI binding, bearer challenges —
//! each a clean 4xx with the right error code, on both backends.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Backend, REDIRECT, TestApp, authorize_query, spawn_app};
use reqwest::StatusCode;
use serde_json::Value;

async fn post(app: &TestApp, body: &str, auth: Option<(&str, &str)>) -> reqwest::Response {
    let mut request = app
        .http
        .post(format!("{}/token", app.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_string());
    if let Some((id, secret)) = auth {
        request = request.basic_auth(id, Some(secret));
    }
    request.send().await.unwrap()
}

async fn assert_oauth_error(response: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status().as_u16(), status);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["pragma"], "no-cache");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], code, "{body}");
    body
}

async fn token_endpoint_errors_follow_rfc_6749_section_5_2(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.add_client(false, |_| {}).await;
    let id = client.id.as_str();
    let secret = client.secret.clone().unwrap();

    // Method and content type.
    let by_get = app
        .http
        .get(format!("{}/token?grant_type=client_credentials", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(by_get.status(), StatusCode::METHOD_NOT_ALLOWED);
    let json = app
        .http
        .post(format!("{}/token", app.base))
        .json(&serde_json::json!({"grant_type": "authorization_code"}))
        .send()
        .await
        .unwrap();
    assert_oauth_error(json, 400, "invalid_request").await;

    // Client authentication.
    let wrong = post(
        &app,
        "grant_type=authorization_code&code=x&redirect_uri=x",
        Some((id, "wrong")),
    )
    .await;
    assert!(
        wrong.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    assert_oauth_error(wrong, 401, "invalid_client").await;
    assert_oauth_error(
        post(
            &app,
            "grant_type=authorization_code&code=x",
            Some(("unknown", "x")),
        )
        .await,
        401,
        "invalid_client",
    )
    .await;
    let garbage = app
        .http
        .post(format!("{}/token", app.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("authorization", "Basic %%%not-base64")
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert_oauth_error(garbage, 401, "invalid_client").await;
    // A confidential client must not fall back to `none`, nor switch to client_secret_post.
    assert_oauth_error(
        post(
            &app,
            &format!("grant_type=authorization_code&code=x&client_id={id}"),
            None,
        )
        .await,
        401,
        "invalid_client",
    )
    .await;
    assert_oauth_error(
        post(
            &app,
            &format!("grant_type=authorization_code&code=x&client_id={id}&client_secret={secret}"),
            None,
        )
        .await,
        401,
        "invalid_client",
    )
    .await;

    // Grant type and parameters.
    assert_oauth_error(
        post(&app, "code=x", Some((id, &secret))).await,
        400,
        "invalid_request",
    )
    .await;
    assert_oauth_error(
        post(
            &app,
            "grant_type=password&username=a&password=b",
            Some((id, &secret)),
        )
        .await,
        400,
        "unsupported_grant_type",
    )
    .await;
    assert_oauth_error(
        post(&app, "grant_type=client_credentials", Some((id, &secret))).await,
        400,
        "unauthorized_client",
    )
    .await;
    assert_oauth_error(
        post(
            &app,
            "grant_type=authorization_code&code=nope",
            Some((id, &secret)),
        )
        .await,
        400,
        "invalid_grant",
    )
    .await;
    assert_oauth_error(
        post(
            &app,
            "grant_type=authorization_code&code=a&code=b",
            Some((id, &secret)),
        )
        .await,
        400,
        "invalid_request",
    )
    .await;
    assert_oauth_error(
        post(
            &app,
            "grant_type=refresh_token&refresh_token=nope",
            Some((id, &secret)),
        )
        .await,
        400,
        "invalid_grant",
    )
    .await;
    assert_oauth_error(
        post(
            &app,
            "grant_type=authorization_code&code=%zz",
            Some((id, &secret)),
        )
        .await,
        400,
        "invalid_request",
    )
    .await;
}

async fn a_code_needs_the_right_verifier_and_redirect_uri(backend: Backend) {
    use common::browser::Browser;
    let app = spawn_app(backend).await;
    app.add_user("pat").await;
    let client = app.add_client(false, |c| c.first_party = true).await;
    let secret = client.secret.clone().unwrap();
    let url = format!("{}{}", app.base, authorize_query(&client.id, ""));
    let login = |_: &()| {
        let url = url.clone();
        let base = app.base.clone();
        async move {
            let browser = Browser::new(&base);
            let landing = browser.visit(&url).await;
            browser
                .log_in_and_consent(landing, "pat", common::PASSWORD)
                .await
                .query("code")
                .unwrap()
        }
    };
    let redirect = url::form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>();
    let code = login(&()).await;
    let wrong_verifier = format!(
        "grant_type=authorization_code&code={code}&redirect_uri={redirect}&code_verifier={}",
        "x".repeat(43)
    );
    assert_oauth_error(
        post(&app, &wrong_verifier, Some((&client.id, &secret))).await,
        400,
        "invalid_grant",
    )
    .await;
    let code = login(&()).await;
    let no_verifier = format!("grant_type=authorization_code&code={code}&redirect_uri={redirect}");
    assert_oauth_error(
        post(&app, &no_verifier, Some((&client.id, &secret))).await,
        400,
        "invalid_grant",
    )
    .await;
    let code = login(&()).await;
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let other_redirect = format!(
        "grant_type=authorization_code&code={code}&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fother&code_verifier={verifier}"
    );
    assert_oauth_error(
        post(&app, &other_redirect, Some((&client.id, &secret))).await,
        400,
        "invalid_grant",
    )
    .await;
    let code = login(&()).await;
    let good =
        format!("grant_type=authorization_code&code={code}&redirect_uri={redirect}&code_verifier={verifier}");
    let response = post(&app, &good, Some((&client.id, &secret))).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["id_token"].is_string());
}

async fn userinfo_refuses_bad_tokens_with_bearer_challenges(backend: Backend) {
    let app = spawn_app(backend).await;
    let none = app
        .http
        .get(format!("{}/userinfo", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 401);
    assert!(
        none.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let bad = app
        .http
        .get(format!("{}/userinfo", app.base))
        .bearer_auth("not.a.jwt")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
    assert!(
        bad.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("error=\"invalid_token\"")
    );
    // A client-credentials token has no openid scope: insufficient scope.
    let client = app.add_service_client(&["api"]).await;
    let token: Value = post(
        &app,
        "grant_type=client_credentials",
        Some((&client.id, client.secret.as_deref().unwrap())),
    )
    .await
    .json()
    .await
    .unwrap();
    let access = token["access_token"].as_str().unwrap();
    let forbidden = app
        .http
        .get(format!("{}/userinfo", app.base))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(forbidden.status(), 403);
    assert!(
        forbidden.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("insufficient_scope")
    );
    // A token signed by someone else's key is invalid.
    let mut parts: Vec<&str> = access.split('.').collect();
    parts[2] = "AAAA";
    let forged = parts.join(".");
    let refused = app
        .http
        .post(format!("{}/userinfo", app.base))
        .form(&[("access_token", forged.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
}

on_both_backends!(
    token_endpoint_errors_follow_rfc_6749_section_5_2,
    a_code_needs_the_right_verifier_and_redirect_uri,
    userinfo_refuses_bad_tokens_with_bearer_challenges,
);
