//! An independent, certified relying party against this provider: panva's `openid-client`
//! (npm, pinned in `e2e/openid-client/package-lock.json`, installed by
//! `scripts/install-tools.sh --test`). Its Node script does every protocol step (discovery,
//! PAR, client assertions, the code exchange with its own ID token checks, userinfo,
//! refresh, introspection); the test does the browser's part in between.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Backend, PASSWORD, REDIRECT, TestApp, spawn_app};
use serde_json::Value;

fn script_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../e2e/openid-client")
}

/// Runs `node rp.mjs <args>` with `env`; returns its JSON answer and whether it succeeded.
async fn rp(args: &[&str], env: &[(&str, &str)]) -> (bool, Value) {
    let dir = script_dir();
    assert!(
        dir.join("node_modules/openid-client").exists(),
        "openid-client is not installed: run scripts/install-tools.sh --test"
    );
    let output = tokio::process::Command::new("node")
        .arg("rp.mjs")
        .args(args)
        .envs(env.iter().copied())
        .current_dir(&dir)
        .output()
        .await
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let answer = serde_json::from_str(stdout.trim()).unwrap_or_else(|_| {
        panic!(
            "rp.mjs {args:?} printed no JSON: {stdout} {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.success(), answer)
}

/// The script builds the authorization URL (pushing the request when `PAR` is set) and the
/// browser logs in: the script's saved state and the callback URL.
async fn authorize_and_log_in(
    app: &TestApp,
    env: &[(&str, &str)],
    username: &str,
) -> (tempfile::NamedTempFile, String) {
    let state = tempfile::NamedTempFile::new().unwrap();
    let (ok, started) = rp(&["authorize", state.path().to_str().unwrap()], env).await;
    assert!(ok, "authorize: {started}");
    let browser = app.browser();
    let callback = browser
        .log_in_and_consent(
            browser.visit(started["url"].as_str().unwrap()).await,
            username,
            PASSWORD,
        )
        .await
        .client_url();
    (state, callback.to_string())
}

/// The script's answer to the callback: its token request and what follows.
async fn callback(state: &tempfile::NamedTempFile, env: &[(&str, &str)], url: &str) -> (bool, Value) {
    let env = [env, &[("CALLBACK_URL", url)]].concat();
    rp(&["callback", state.path().to_str().unwrap()], &env).await
}

/// The whole code flow, which must succeed.
async fn code_flow(app: &TestApp, env: &[(&str, &str)], username: &str) -> Value {
    let (state, url) = authorize_and_log_in(app, env, username).await;
    let (ok, finished) = callback(&state, env, &url).await;
    assert!(ok, "callback: {finished}");
    finished
}

/// A client with a key pair of the script's making: its id and the private JWK.
async fn keyed_client(
    app: &TestApp,
    adjust: impl FnOnce(&mut idp::domain::client::NewClient),
) -> (String, String) {
    let (ok, keys) = rp(&["keygen"], &[]).await;
    assert!(ok);
    let jwks = serde_json::from_value(keys["jwks"].clone()).unwrap();
    let client = app
        .add_client(false, |c| {
            c.jwks = Some(jwks);
            adjust(c);
        })
        .await;
    (client.id, keys["private"].to_string())
}

async fn par_with_private_key_jwt_passes_openid_client(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.add_user("alice").await;
    let (client_id, private) = keyed_client(&app, |c| {
        c.token_endpoint_auth_method = Some(idp::domain::client::TokenEndpointAuthMethod::PrivateKeyJwt);
        c.require_par = true;
    })
    .await;
    let env = [
        ("ISSUER", app.base.as_str()),
        ("CLIENT_ID", client_id.as_str()),
        ("REDIRECT_URI", REDIRECT),
        ("AUTH", "private_key_jwt"),
        ("PRIVATE_JWK", private.as_str()),
        ("PAR", "1"),
    ];
    let result = code_flow(&app, &env, "alice").await;
    assert_eq!(result["id_token_claims"]["sub"], user.id.to_string());
    // The same request signed as a request object (JAR) inside the push.
    let signed = [&env[..], &[("JAR", "1")]].concat();
    let jar = code_flow(&app, &signed, "alice").await;
    assert_eq!(jar["id_token_claims"]["sub"], user.id.to_string());
    assert_eq!(jar["refreshed"], true);
    assert_eq!(result["userinfo"]["preferred_username"], "alice");
    assert_eq!(result["refreshed"], true);
    assert_eq!(result["introspection"]["active"], true);
    assert_eq!(result["introspection"]["client_id"], client_id);

    // The same client without PAR is refused, as it registered.
    let no_par: Vec<(&str, &str)> = env.iter().copied().filter(|(k, _)| *k != "PAR").collect();
    let state = tempfile::NamedTempFile::new().unwrap();
    let (_, started) = rp(&["authorize", state.path().to_str().unwrap()], &no_par).await;
    let browser = app.browser();
    let refused = browser.visit(started["url"].as_str().unwrap()).await.client_url();
    assert!(
        refused
            .query_pairs()
            .any(|(k, v)| k == "error" && v == "invalid_request")
    );
}

async fn client_secret_jwt_and_basic_pass_openid_client(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_user("bob").await;
    for method in ["client_secret_jwt", "client_secret_basic", "client_secret_post"] {
        let auth = idp::domain::client::TokenEndpointAuthMethod::parse(method).unwrap();
        let client = app
            .add_client(false, |c| {
                c.token_endpoint_auth_method = Some(auth);
                c.grant_types
                    .push(idp::domain::client::GrantType::ClientCredentials);
            })
            .await;
        let secret = client.secret.clone().unwrap();
        let env = [
            ("ISSUER", app.base.as_str()),
            ("CLIENT_ID", client.id.as_str()),
            ("REDIRECT_URI", REDIRECT),
            ("AUTH", method),
            ("CLIENT_SECRET", secret.as_str()),
            ("PAR", "1"),
            ("SCOPE", "openid profile offline_access"),
        ];
        let result = code_flow(&app, &env, "bob").await;
        assert_eq!(result["userinfo"]["preferred_username"], "bob", "{method}");
        assert_eq!(result["refreshed"], true, "{method}");
        // A client acting for itself: no user scopes, so none asked.
        let (ok, token) = rp(&["client-credentials"], &[&env[..], &[("SCOPE", "")]].concat()).await;
        assert!(ok, "{method}: {token}");
        assert!(
            token["token_type"]
                .as_str()
                .unwrap()
                .eq_ignore_ascii_case("bearer"),
            "{method}: {token}"
        );

        // A wrong secret is refused, with the error the library reports as the server's.
        let wrong = [&env[..2], &[("AUTH", method), ("CLIENT_SECRET", "wrong")]].concat();
        let (ok, answer) = rp(&["client-credentials"], &wrong).await;
        assert!(!ok);
        assert_eq!(answer["error"], "invalid_client", "{method}: {answer}");
    }
}

/// A FAPI 2.0 client as openid-client builds one: PAR, PKCE, private_key_jwt, DPoP (with the
/// provider's nonces), ES256.
async fn a_fapi2_client_passes_openid_client(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.add_user("carol").await;
    let (client_id, private) =
        keyed_client(&app, |c| c.profile = Some(idp::domain::client::Profile::Fapi2)).await;
    let env = [
        ("ISSUER", app.base.as_str()),
        ("CLIENT_ID", client_id.as_str()),
        ("REDIRECT_URI", REDIRECT),
        ("AUTH", "private_key_jwt"),
        ("PRIVATE_JWK", private.as_str()),
        ("PAR", "1"),
        ("DPOP", "1"),
    ];
    let result = code_flow(&app, &env, "carol").await;
    assert_eq!(result["id_token_claims"]["sub"], user.id.to_string());
    assert!(
        result["token_type"]
            .as_str()
            .unwrap()
            .eq_ignore_ascii_case("dpop"),
        "{result}"
    );
    assert_eq!(result["userinfo"]["preferred_username"], "carol");
    assert_eq!(result["refreshed"], true);
    assert_eq!(result["introspection"]["token_type"], "DPoP");
    assert!(result["introspection"]["cnf"]["jkt"].is_string());

    // Without DPoP the token request is refused; openid-client reports the server's error.
    let without_dpop: Vec<(&str, &str)> = env.iter().copied().filter(|(k, _)| *k != "DPOP").collect();
    let (state, url) = authorize_and_log_in(&app, &without_dpop, "carol").await;
    let (ok, refused) = callback(&state, &without_dpop, &url).await;
    assert!(!ok);
    assert_eq!(refused["error"], "invalid_request", "{refused}");
}

/// Resource indicators (RFC 8707) as openid-client sends them: two resources pushed with the
/// authorization request, one asked for at the token endpoint (code and refresh), and one
/// for a client credentials token.
async fn resource_indicators_pass_openid_client(backend: Backend) {
    const ORDERS: &str = "https://orders.example.com/";
    const BILLING: &str = "https://billing.example.com/";
    let app = spawn_app(backend).await;
    app.add_user("dave").await;
    for (identifier, scopes) in [(ORDERS, vec!["orders:read".to_string()]), (BILLING, vec![])] {
        let new = idp::domain::resource::NewResourceServer::parse(identifier, &scopes, None).unwrap();
        idp::manage::resources::register(&app.services, new, idp::manage::Actor::Cli)
            .await
            .unwrap();
    }
    let client = app
        .add_client(false, |c| {
            c.scopes.push("orders:read".into());
            c.grant_types
                .push(idp::domain::client::GrantType::ClientCredentials);
            c.resources = vec![ORDERS.into(), BILLING.into()];
        })
        .await;
    let secret = client.secret.clone().unwrap();
    let env = [
        ("ISSUER", app.base.as_str()),
        ("CLIENT_ID", client.id.as_str()),
        ("CLIENT_SECRET", secret.as_str()),
        ("REDIRECT_URI", REDIRECT),
        ("SCOPE", "openid offline_access orders:read"),
        ("PAR", "1"),
        (
            "RESOURCE",
            "https://orders.example.com/ https://billing.example.com/",
        ),
        ("TOKEN_RESOURCE", ORDERS),
    ];
    let result = code_flow(&app, &env, "dave").await;
    let access = common::jwt_claims(result["access_token"].as_str().unwrap());
    assert_eq!(access["aud"], ORDERS);
    assert_eq!(access["scope"], "orders:read");
    let refreshed = common::jwt_claims(result["refreshed_access_token"].as_str().unwrap());
    assert_eq!(refreshed["aud"], ORDERS);
    assert_eq!(result["introspection"]["aud"], ORDERS);

    // A resource the authorization did not grant: invalid_target, as openid-client reports it.
    let env_other = [&env[..6], &[("RESOURCE", ORDERS), ("TOKEN_RESOURCE", BILLING)]].concat();
    let (state, url) = authorize_and_log_in(&app, &env_other, "dave").await;
    let (ok, refused) = callback(&state, &env_other, &url).await;
    assert!(!ok);
    assert_eq!(refused["error"], "invalid_target", "{refused}");

    let (ok, tokens) = rp(
        &["client-credentials"],
        &[&env[..3], &[("SCOPE", "orders:read"), ("RESOURCE", BILLING)]].concat(),
    )
    .await;
    assert!(ok, "{tokens}");
    assert_eq!(
        common::jwt_claims(tokens["access_token"].as_str().unwrap())["aud"],
        BILLING
    );
}

on_both_backends!(
    resource_indicators_pass_openid_client,
    a_fapi2_client_passes_openid_client,
    par_with_private_key_jwt_passes_openid_client,
    client_secret_jwt_and_basic_pass_openid_client,
);
