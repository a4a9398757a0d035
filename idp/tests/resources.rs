//! Resource indicators (RFC 8707): a client asks for a token for one API with `resource`,
//! and gets one whose `aud` names that API alone, with only the scopes it accepts, that the
//! userinfo endpoint and other APIs' introspection refuse. A resource that is malformed,
//! unknown, not the client's or not granted is `invalid_target`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Backend, PASSWORD, REDIRECT, Registered, TestApp, VERIFIER, jwt_claims, spawn_app};
use idp::domain::resource::NewResourceServer;
use serde_json::{Value, json};

const ORDERS: &str = "https://orders.example.com/api";
const BILLING: &str = "urn:example:billing";

/// Registers the orders API (it accepts `orders:read` only, introspecting as `introspector`)
/// and the billing API (any scope).
async fn register_resources(app: &TestApp, introspector: Option<&Registered>) {
    for (identifier, scopes, client) in [
        (
            ORDERS,
            vec!["orders:read".to_string()],
            introspector.map(|c| c.id.clone()),
        ),
        (BILLING, vec![], None),
    ] {
        let new = NewResourceServer::parse(identifier, &scopes, client).unwrap();
        idp::manage::resources::register(&app.services, new, idp::manage::Actor::Cli)
            .await
            .unwrap();
    }
}

/// A web app allowed both APIs and their scopes.
async fn web_app(app: &TestApp) -> Registered {
    app.add_client(false, |c| {
        c.scopes
            .extend(["orders:read".to_string(), "orders:write".to_string()]);
        c.resources = vec![ORDERS.to_string(), BILLING.to_string()];
    })
    .await
}

fn with_resources(url: String, resources: &[&str]) -> String {
    let mut url = url::Url::parse(&url).unwrap();
    for resource in resources {
        url.query_pairs_mut().append_pair("resource", resource);
    }
    url.to_string()
}

/// Logs alice in for `client` with `scope` and `resources`; returns the code.
async fn code_for(app: &TestApp, client: &Registered, scope: &str, resources: &[&str]) -> String {
    let browser = app.browser();
    let landing = browser
        .visit(&with_resources(app.authorize_url(&client.id, scope), resources))
        .await;
    browser
        .log_in_and_consent(landing, "alice", PASSWORD)
        .await
        .query("code")
        .unwrap()
}

async fn exchange(app: &TestApp, client: &Registered, code: &str, resources: &[&str]) -> reqwest::Response {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ];
    form.extend(resources.iter().map(|r| ("resource", *r)));
    app.token_request(client, &form).await
}

/// A token response that must have succeeded, and its access token's claims.
async fn issued(response: reqwest::Response) -> (Value, Value) {
    assert_eq!(response.status(), 200);
    let tokens: Value = response.json().await.unwrap();
    let access = jwt_claims(tokens["access_token"].as_str().unwrap());
    (tokens, access)
}

/// What the userinfo endpoint answers to the access token of `tokens`.
async fn userinfo_status(app: &TestApp, tokens: &Value) -> u16 {
    app.http
        .get(format!("{}/userinfo", app.base))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn error_of(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    (status, body["error"].as_str().unwrap_or_default().to_string())
}

async fn a_token_for_a_resource_names_it_alone(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_user("alice").await;
    register_resources(&app, None).await;
    let client = web_app(&app).await;
    let scope = "openid offline_access orders:read orders:write";
    let code = code_for(&app, &client, scope, &[ORDERS, BILLING]).await;

    // §2.2: the token request narrows to one of the granted resources.
    let response = exchange(&app, &client, &code, &[ORDERS]).await;
    let (tokens, access) = issued(response).await;
    assert_eq!(access["aud"], ORDERS, "the audience is the orders API alone");
    assert_eq!(access["scope"], "orders:read", "only the scopes the API accepts");
    assert_eq!(tokens["scope"], "orders:read", "RFC 6749 §5.1: the token's scope");
    // The ID token is still the client's, and a refresh token still comes.
    assert_eq!(jwt_claims(tokens["id_token"].as_str().unwrap())["aud"], client.id);
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();

    // Not for the userinfo endpoint: another audience.
    assert_eq!(userinfo_status(&app, &tokens).await, 401);

    // A resource that was not granted is refused, and the refresh token is not spent.
    let response = app
        .token_request(
            &client,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh),
                ("resource", "https://orders.example.com/other"),
            ],
        )
        .await;
    assert_eq!(error_of(response).await, (400, "invalid_target".into()));
    // Refreshing for the billing API, which takes any scope.
    let response = app
        .token_request(
            &client,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh),
                ("resource", BILLING),
            ],
        )
        .await;
    let (tokens, access) = issued(response).await;
    assert_eq!(access["aud"], BILLING);
    assert_eq!(access["scope"], "offline_access openid orders:read orders:write");
    // Without `resource`: every granted resource, as an array.
    let response = app
        .token_request(
            &client,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
            ],
        )
        .await;
    assert_eq!(issued(response).await.1["aud"], json!([ORDERS, BILLING]));
}

async fn without_resource_the_audience_stays_the_client(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_user("alice").await;
    register_resources(&app, None).await;
    let client = web_app(&app).await;
    let tokens = app.tokens(&client, "alice", "openid").await;
    let access = jwt_claims(tokens["access_token"].as_str().unwrap());
    assert_eq!(access["aud"], client.id);
    assert_eq!(userinfo_status(&app, &tokens).await, 200);
}

async fn a_wrong_resource_is_invalid_target(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_user("alice").await;
    register_resources(&app, None).await;
    let client = web_app(&app).await;
    // A registered resource the client was not given, one nobody registered, a relative
    // URI and one with a fragment: each goes back to the client as invalid_target (§2).
    let stranger = app.add_client(false, |_| {}).await;
    for (who, resource) in [
        (&stranger, ORDERS),
        (&client, "https://unknown.example.com/"),
        (&client, "/orders"),
        (&client, "https://orders.example.com/api#x"),
    ] {
        let browser = app.browser();
        let back = browser
            .visit(&with_resources(app.authorize_url(&who.id, "openid"), &[resource]))
            .await
            .client_url();
        let query: std::collections::HashMap<_, _> = back.query_pairs().into_owned().collect();
        assert_eq!(
            query.get("error").map(String::as_str),
            Some("invalid_target"),
            "{resource}"
        );
        assert_eq!(query["state"], "s");
    }

    // At the token endpoint, a resource outside the authorization is refused before the
    // code is used: the same code still works without it.
    let code = code_for(&app, &client, "openid orders:read", &[ORDERS]).await;
    let (status, error) = error_of(exchange(&app, &client, &code, &[BILLING]).await).await;
    assert_eq!((status, error.as_str()), (400, "invalid_target"));
    let response = exchange(&app, &client, &code, &[]).await;
    assert_eq!(issued(response).await.1["aud"], ORDERS);
}

async fn a_service_asks_for_a_token_for_one_api(backend: Backend) {
    let app = spawn_app(backend).await;
    register_resources(&app, None).await;
    let service = app
        .add_client(false, |c| {
            c.grant_types = vec![idp::domain::client::GrantType::ClientCredentials];
            c.redirect_uris.clear();
            c.scopes = vec!["orders:read".into(), "orders:write".into()];
            c.resources = vec![ORDERS.into()];
        })
        .await;
    let response = app
        .token_request(
            &service,
            &[("grant_type", "client_credentials"), ("resource", ORDERS)],
        )
        .await;
    let (_, access) = issued(response).await;
    assert_eq!(access["aud"], ORDERS);
    assert_eq!(access["scope"], "orders:read");

    let response = app
        .token_request(
            &service,
            &[("grant_type", "client_credentials"), ("resource", BILLING)],
        )
        .await;
    assert_eq!(error_of(response).await, (400, "invalid_target".into()));
}

async fn introspection_tells_a_resource_server_only_about_its_tokens(backend: Backend) {
    let app = spawn_app(backend).await;
    let orders_api = app.add_service_client(&["introspect"]).await;
    register_resources(&app, Some(&orders_api)).await;
    let service = app
        .add_client(false, |c| {
            c.grant_types = vec![idp::domain::client::GrantType::ClientCredentials];
            c.redirect_uris.clear();
            c.scopes = vec!["orders:read".into()];
            c.resources = vec![ORDERS.into(), BILLING.into()];
        })
        .await;
    let token_for = |resource: &'static str| {
        let app = &app;
        let service = &service;
        async move {
            let tokens: Value = app
                .token_request(
                    service,
                    &[("grant_type", "client_credentials"), ("resource", resource)],
                )
                .await
                .json()
                .await
                .unwrap();
            tokens["access_token"].as_str().unwrap().to_string()
        }
    };
    let for_orders = token_for(ORDERS).await;
    let for_billing = token_for(BILLING).await;

    let answer = app.introspect(&orders_api, &for_orders).await;
    assert_eq!(answer["active"], true);
    assert_eq!(answer["aud"], ORDERS);
    // RFC 7662 §2.2: a token meant for another API is not the orders API's to know about.
    assert_eq!(
        app.introspect(&orders_api, &for_billing).await,
        json!({ "active": false })
    );
    // A client that is no resource server is told, with the audience to check.
    let other = app.add_service_client(&["introspect"]).await;
    let answer = app.introspect(&other, &for_billing).await;
    assert_eq!(answer["active"], true);
    assert_eq!(answer["aud"], BILLING);
}

async fn pushed_requests_carry_resources(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_user("alice").await;
    register_resources(&app, None).await;
    let client = web_app(&app).await;
    let mut form = vec![
        ("client_id", client.id.clone()),
        ("redirect_uri", REDIRECT.to_string()),
        ("response_type", "code".to_string()),
        ("scope", "openid orders:read".to_string()),
        ("state", "s".to_string()),
        ("code_challenge", common::CHALLENGE.to_string()),
        ("code_challenge_method", "S256".to_string()),
        ("resource", ORDERS.to_string()),
        ("resource", BILLING.to_string()),
    ];
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let response = app.post_as(&client, "/par", &pairs).await;
    assert_eq!(response.status(), 201);
    let request_uri = response.json::<Value>().await.unwrap()["request_uri"]
        .as_str()
        .unwrap()
        .to_string();
    let mut url = url::Url::parse(&format!("{}/authorize", app.base)).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", &client.id)
        .append_pair("request_uri", &request_uri);
    let browser = app.browser();
    let landing = browser.visit(url.as_str()).await;
    let code = browser
        .log_in_and_consent(landing, "alice", PASSWORD)
        .await
        .query("code")
        .unwrap();
    let tokens: Value = exchange(&app, &client, &code, &[]).await.json().await.unwrap();
    assert_eq!(
        jwt_claims(tokens["access_token"].as_str().unwrap())["aud"],
        json!([ORDERS, BILLING])
    );

    // A pushed request with a resource the client may not ask for: JSON invalid_target.
    form.push(("resource", "https://unknown.example.com/".to_string()));
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let response = app.post_as(&client, "/par", &pairs).await;
    assert_eq!(error_of(response).await, (400, "invalid_target".into()));
}

async fn removing_a_resource_takes_it_from_its_clients(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_user("alice").await;
    register_resources(&app, None).await;
    let client = web_app(&app).await;
    // A client cannot be given a resource nobody registered.
    let refused = idp::manage::clients::register(
        &app.services,
        idp::domain::client::NewClient {
            resources: vec!["https://nobody.example.com/".into()],
            ..idp::manage::clients::get(&app.services, &client.id)
                .await
                .unwrap()
                .settings()
        },
        idp::manage::Actor::Cli,
    )
    .await;
    assert!(refused.is_err_and(|e| e.to_string().contains("not registered")));

    let code = code_for(&app, &client, "openid orders:read", &[ORDERS]).await;
    idp::manage::resources::remove(&app.services, ORDERS, idp::manage::Actor::Cli)
        .await
        .unwrap();
    let changed = idp::manage::clients::get(&app.services, &client.id)
        .await
        .unwrap();
    assert_eq!(changed.resources, vec![BILLING.to_string()]);
    // A code granted for it no longer gets a token for it.
    let (status, error) = error_of(exchange(&app, &client, &code, &[]).await).await;
    assert_eq!((status, error.as_str()), (400, "invalid_target"));
}

on_both_backends!(
    a_token_for_a_resource_names_it_alone,
    without_resource_the_audience_stays_the_client,
    a_wrong_resource_is_invalid_target,
    a_service_asks_for_a_token_for_one_api,
    introspection_tells_a_resource_server_only_about_its_tokens,
    pushed_requests_carry_resources,
    removing_a_resource_takes_it_from_its_clients,
);
