//! Issue 15's token gaps, each tried from the outside as an attacker would: a client's own
//! refresh-token lifetime, removed clients' access tokens, introspection by public clients,
//! codes burned or replayed by the wrong client, concurrent redemption of one code, access
//! tokens as logout hints, and durations that overflow time arithmetic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Backend, REDIRECT, Registered, TestApp, TestDb, VERIFIER, browser, spawn_app_with};

use serde_json::Value;

const OFFLINE: &str = "openid offline_access";

async fn refresh(app: &TestApp, client: &Registered, token: &str) -> reqwest::Response {
    app.token_request(
        client,
        &[("grant_type", "refresh_token"), ("refresh_token", token)],
    )
    .await
}

/// A fresh code for `client` (PKCE with the RFC 7636 verifier), through the login page.
async fn code_for(app: &TestApp, client: &Registered, username: &str) -> String {
    let browser = browser::Browser::new(&app.base);
    let landing = browser.visit(&app.authorize_url(&client.id, OFFLINE)).await;
    browser
        .log_in_and_consent(landing, username, common::PASSWORD)
        .await
        .query("code")
        .unwrap()
}

fn exchange_form(code: &str) -> Vec<(&'static str, String)> {
    vec![
        ("grant_type", "authorization_code".into()),
        ("code", code.into()),
        ("redirect_uri", REDIRECT.into()),
        ("code_verifier", VERIFIER.into()),
    ]
}

async fn exchange(app: &TestApp, client: &Registered, form: &[(&'static str, String)]) -> reqwest::Response {
    let fields: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    app.token_request(client, &fields).await
}

async fn error_of(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    (status, body["error"].as_str().unwrap_or_default().to_string())
}

/// #4: the client's own refresh-token lifetime bounds its grants, not the global 30 days.
async fn a_clients_refresh_token_lifetime_is_its_own(backend: Backend) {
    let clock = idp::domain::clock::ManualClock::at(chrono::Utc::now());
    let app = common::spawn_app_at(backend, clock.clone()).await;
    app.add_user("rita").await;
    let short = app
        .add_client(false, |c| {
            c.first_party = true;
            c.refresh_token_ttl_s = Some(300);
        })
        .await;
    let tokens = app.tokens(&short, "rita", OFFLINE).await;
    clock.advance(chrono::Duration::seconds(200));
    let rotated = refresh(&app, &short, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(rotated.status(), 200, "within the client's lifetime");
    let rotated: Value = rotated.json().await.unwrap();
    // The lifetime is the grant's: rotation does not extend it.
    clock.advance(chrono::Duration::seconds(101));
    let late = refresh(&app, &short, rotated["refresh_token"].as_str().unwrap()).await;
    assert_eq!(error_of(late).await, (400, "invalid_grant".to_string()));
}

/// #5: removing a client denies its access tokens at once, on every replica.
async fn removing_a_client_ends_its_access_tokens(backend: Backend) {
    let app = common::spawn_app(backend).await;
    let replica = match backend {
        Backend::Postgres => Some(spawn_app_with(TestDb::new_shared(&app.db), &[]).await),
        Backend::Sqlite => None,
    };
    app.add_user("rita").await;
    let doomed = app.add_client(false, |c| c.first_party = true).await;
    let service = app.add_service_client(&["api"]).await;
    let resource_server = app.add_service_client(&["api"]).await;
    let user_access = app.tokens(&doomed, "rita", OFFLINE).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let service_access: Value = app
        .token_request(&service, &[("grant_type", "client_credentials")])
        .await
        .json()
        .await
        .unwrap();
    let service_access = service_access["access_token"].as_str().unwrap().to_string();
    for (client, access) in [(&doomed, &user_access), (&service, &service_access)] {
        assert_eq!(app.introspect(&resource_server, access).await["active"], true);
        idp::manage::clients::remove(&app.services, &client.id, idp::manage::Actor::Cli)
            .await
            .unwrap();
        for instance in std::iter::once(&app).chain(replica.as_ref()) {
            assert_eq!(
                instance.introspect(&resource_server, access).await["active"],
                false
            );
        }
    }
    let userinfo = app
        .http
        .get(format!("{}/userinfo", app.base))
        .bearer_auth(&user_access)
        .send()
        .await
        .unwrap();
    assert_eq!(userinfo.status(), 401);
}

/// #6: a public client cannot introspect; a refresh token is described only to its client.
async fn only_confidential_clients_introspect_and_only_their_own_refresh_tokens(backend: Backend) {
    let app = common::spawn_app(backend).await;
    app.add_user("rita").await;
    let web = app.add_client(false, |c| c.first_party = true).await;
    let spa = app.add_client(true, |c| c.first_party = true).await;
    let resource_server = app.add_service_client(&["api"]).await;
    let tokens = app.tokens(&web, "rita", OFFLINE).await;
    let access = tokens["access_token"].as_str().unwrap();
    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    for token in [access, refresh_token] {
        let response = app.post_as(&spa, "/introspect", &[("token", token)]).await;
        assert_eq!(error_of(response).await, (401, "invalid_client".to_string()));
    }
    assert_eq!(app.introspect(&resource_server, access).await["active"], true);
    let other = app.introspect(&resource_server, refresh_token).await;
    assert_eq!(
        other,
        serde_json::json!({"active": false}),
        "not its refresh token"
    );
    assert_eq!(app.introspect(&web, refresh_token).await["active"], true);
    let discovery: Value = app
        .http
        .get(format!("{}/.well-known/openid-configuration", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        discovery["introspection_endpoint_auth_methods_supported"],
        serde_json::json!([
            "client_secret_basic",
            "client_secret_post",
            "client_secret_jwt",
            "private_key_jwt"
        ]),
        "confidential clients' methods only, never none"
    );
    assert!(
        discovery.get("userinfo_signing_alg_values_supported").is_none(),
        "unsigned-JWT userinfo is not implemented, so not advertised"
    );
}

/// #7: a code sent by the wrong client, with the wrong redirect URI or without its verifier
/// is refused with no side effect; a used code replayed by another client revokes nothing.
async fn a_code_is_checked_before_it_is_burned(backend: Backend) {
    let app = common::spawn_app(backend).await;
    app.add_user("rita").await;
    let victim = app.add_client(true, |c| c.first_party = true).await;
    let attacker = app.add_client(true, |c| c.first_party = true).await;
    let code = code_for(&app, &victim, "rita").await;
    let good = exchange_form(&code);
    let mut wrong_redirect = good.clone();
    wrong_redirect[2].1 = "http://127.0.0.1:9/elsewhere".into();
    let mut no_redirect = good.clone();
    no_redirect.remove(2);
    let mut no_verifier = good.clone();
    no_verifier.pop();
    assert_eq!(
        error_of(exchange(&app, &attacker, &good).await).await,
        (400, "invalid_grant".to_string())
    );
    assert_eq!(
        error_of(exchange(&app, &victim, &wrong_redirect).await).await,
        (400, "invalid_grant".to_string())
    );
    // RFC 6749 §4.1.3: the authorization request carried redirect_uri, so it is required.
    assert_eq!(
        error_of(exchange(&app, &victim, &no_redirect).await).await,
        (400, "invalid_request".to_string())
    );
    assert_eq!(
        error_of(exchange(&app, &victim, &no_verifier).await).await,
        (400, "invalid_grant".to_string())
    );
    // None of that burned the code: the real client redeems it.
    let tokens = exchange(&app, &victim, &good).await;
    assert_eq!(tokens.status(), 200);
    let tokens: Value = tokens.json().await.unwrap();
    // A replay by another (public, unauthenticated) client revokes nothing.
    assert_eq!(
        error_of(exchange(&app, &attacker, &good).await).await,
        (400, "invalid_grant".to_string())
    );
    let refreshed = refresh(&app, &victim, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(refreshed.status(), 200, "the victim's grant survives");
    let refreshed: Value = refreshed.json().await.unwrap();
    // A replay by the code's own client, with its binding, revokes what was issued.
    assert_eq!(
        error_of(exchange(&app, &victim, &good).await).await,
        (400, "invalid_grant".to_string())
    );
    assert_eq!(
        error_of(refresh(&app, &victim, refreshed["refresh_token"].as_str().unwrap()).await).await,
        (400, "invalid_grant".to_string())
    );
}

/// #8: of 20 concurrent redemptions of one code exactly one gets tokens; the replays then
/// revoke what was issued.
async fn one_of_twenty_concurrent_redemptions_wins(backend: Backend) {
    let app = common::spawn_app(backend).await;
    app.add_user("rita").await;
    let client = app.add_client(false, |c| c.first_party = true).await;
    let resource_server = app.add_service_client(&["api"]).await;
    let code = code_for(&app, &client, "rita").await;
    let form = exchange_form(&code);
    let attempts = (0..20).map(|_| exchange(&app, &client, &form));
    let responses = futures_util::future::join_all(attempts).await;
    let mut winners = Vec::new();
    for response in responses {
        match response.status().as_u16() {
            200 => winners.push(response.json::<Value>().await.unwrap()),
            400 => assert_eq!(response.json::<Value>().await.unwrap()["error"], "invalid_grant"),
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one redemption succeeds");
    let access = winners[0]["access_token"].as_str().unwrap();
    assert_eq!(app.introspect(&resource_server, access).await["active"], false);
    assert_eq!(
        error_of(refresh(&app, &client, winners[0]["refresh_token"].as_str().unwrap()).await).await,
        (400, "invalid_grant".to_string())
    );
}

/// #9: only an ID token of ours is a logout hint; an access token is refused and the
/// session stays.
async fn an_access_token_is_no_logout_hint(backend: Backend) {
    let app = common::spawn_app(backend).await;
    app.add_user("rita").await;
    let client = app.add_client(false, |c| c.first_party = true).await;
    let browser = browser::Browser::new(&app.base);
    let start = format!("{}{}", app.base, common::authorize_query(&client.id, ""));
    let landing = browser.visit(&start).await;
    let code = browser
        .log_in_and_consent(landing, "rita", common::PASSWORD)
        .await
        .query("code")
        .unwrap();
    let tokens: Value = exchange(&app, &client, &exchange_form(&code))
        .await
        .json()
        .await
        .unwrap();
    let logout = |hint: &str| format!("{}/logout?id_token_hint={hint}", app.base);
    let (status, _, html) = browser
        .visit(&logout(tokens["access_token"].as_str().unwrap()))
        .await
        .page();
    assert_eq!(status, 400, "{html}");
    assert!(html.contains("not an ID token"), "{html}");
    // Still logged in: the next authorization request needs no login.
    assert!(browser.visit(&start).await.query("code").is_some());
    // The ID token is accepted as a hint (the confirmation page or the logout itself).
    let (status, _, _) = browser
        .visit(&logout(tokens["id_token"].as_str().unwrap()))
        .await
        .page();
    assert_eq!(status, 200);
}

/// #10: a huge idle timeout stored before durations were bounded at input does not panic a
/// worker on refresh.
async fn a_huge_stored_idle_timeout_never_panics(backend: Backend) {
    let app = spawn_app_with(TestDb::new(backend).await, &[("IDP_CLIENT_CACHE_TTL_MS", "0")]).await;
    app.add_user("rita").await;
    // The bound at input is tested through the CLI (`cli.rs`).
    // A row written before the bound: the refresh answers, no worker dies.
    let client = app.add_client(false, |c| c.first_party = true).await;
    let tokens = app.tokens(&client, "rita", OFFLINE).await;
    let mut huge = app.services.store.find_client(&client.id).await.unwrap().unwrap();
    huge.refresh_idle_ttl_s = Some(i64::MAX / 2);
    app.services.store.update_client(&huge).await.unwrap();
    let response = refresh(&app, &client, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(response.status(), 200);
    let again = refresh(&app, &client, "unknown").await;
    assert_eq!(again.status(), 400);
}

on_both_backends!(
    a_clients_refresh_token_lifetime_is_its_own,
    removing_a_client_ends_its_access_tokens,
    only_confidential_clients_introspect_and_only_their_own_refresh_tokens,
    a_code_is_checked_before_it_is_burned,
    one_of_twenty_concurrent_redemptions_wins,
    an_access_token_is_no_logout_hint,
    a_huge_stored_idle_timeout_never_panics,
);
