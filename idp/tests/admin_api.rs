//! The admin API from the outside, as the portal and scripts use it: who gets in, clients,
//! security events, keys, rate limiting and the OpenAPI document. Users and their sessions
//! are in admin_users.rs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod admin_support;
mod common;

use admin_support::{assert_problem, setup, setup_on};
use common::{Backend, Registered, TestDb, browser, spawn_app, spawn_app_with};
use serde_json::{Value, json};

async fn only_administrators_get_in(backend: Backend) {
    let admin = setup(backend).await;
    let http = &admin.app.http;
    let users = admin.url("/users");

    let none = http.get(&users).send().await.unwrap();
    assert_eq!(none.headers()["www-authenticate"], "Bearer realm=\"admin\"");
    assert_problem(none, 401).await;

    let forged = http
        .get(&users)
        .bearer_auth("eyJhbGciOiJub25lIn0.e30.")
        .send()
        .await
        .unwrap();
    assert!(
        forged.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    assert_problem(forged, 401).await;

    // rita is no administrator, even with a token for the admin API.
    let rita = admin.app.tokens(&admin.client, "rita", "openid admin").await;
    let response = http
        .get(&users)
        .bearer_auth(rita["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_problem(response, 403).await;

    // ada's token for an ordinary app (no admin scope, not the portal) is not for this API.
    let app = admin.app.add_client(false, |c| c.first_party = true).await;
    let ordinary = admin.app.tokens(&app, "ada", "openid").await;
    let response = http
        .get(&users)
        .bearer_auth(ordinary["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_problem(response, 403).await;

    // Nor is a client's own token.
    let service = admin.app.add_service_client(&["admin"]).await;
    let response = admin
        .app
        .token_request(
            &service,
            &[("grant_type", "client_credentials"), ("scope", "admin")],
        )
        .await;
    let service_token: Value = response.json().await.unwrap();
    let response = http
        .get(&users)
        .bearer_auth(service_token["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_problem(response, 403).await;

    assert_eq!(
        admin.call(reqwest::Method::GET, "/users", None).await.status(),
        200
    );
    assert_problem(admin.call(reqwest::Method::GET, "/nothing-here", None).await, 404).await;

    // Losing the role takes effect at once, whatever the token says.
    let me = admin.ada.clone();
    let other = admin.app.add_user_as("grace", true).await.id.to_string();
    let grace_token = admin.app.tokens(&admin.client, "grace", "openid admin").await;
    let response = admin
        .call(
            reqwest::Method::PATCH,
            &format!("/users/{other}"),
            Some(json!({"roles": []})),
        )
        .await;
    assert_eq!(response.status(), 200);
    let response = http
        .get(&users)
        .bearer_auth(grace_token["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_problem(response, 403).await;
    // And an administrator cannot lock themselves out.
    let response = admin
        .call(
            reqwest::Method::PATCH,
            &format!("/users/{me}"),
            Some(json!({"roles": []})),
        )
        .await;
    assert_problem(response, 400).await;
    assert_problem(admin.post(&format!("/users/{me}/disable"), json!({})).await, 400).await;
    assert_problem(admin.post(&format!("/users/{me}/revoke"), json!({})).await, 400).await;
    let own = admin
        .post(
            &format!("/users/{me}/password"),
            json!({"password": "a temporary one for me"}),
        )
        .await;
    assert_problem(own, 400).await;
    assert!(
        admin.get("/overview").await["users"].is_number(),
        "still logged in"
    );
}

async fn clients_are_registered_changed_and_removed(backend: Backend) {
    let admin = setup(backend).await;
    let response = admin
        .post(
            "/clients",
            json!({"name": "Billing", "grant_types": ["client_credentials"], "scopes": ["invoices"]}),
        )
        .await;
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["cache-control"], "no-store");
    // Issue 15 (info): every admin API answer, reads included, is never cached.
    for path in ["/clients", "/users", "/overview"] {
        let read = admin.call(reqwest::Method::GET, path, None).await;
        assert_eq!(read.status(), 200);
        assert_eq!(read.headers()["cache-control"], "no-store", "{path}");
    }
    let created: Value = response.json().await.unwrap();
    let id = created["client"]["client_id"].as_str().unwrap().to_string();
    let secret = created["client_secret"].as_str().unwrap().to_string();
    assert_eq!(created["client"]["has_secret"], true);
    let billing = Registered {
        id: id.clone(),
        secret: Some(secret),
    };
    let grant = [("grant_type", "client_credentials")];
    assert_eq!(admin.app.token_request(&billing, &grant).await.status(), 200);

    let listed = admin.get("/clients").await;
    assert!(
        listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["client_id"] == id.as_str())
    );
    assert!(
        listed
            .to_string()
            .find(billing.secret.as_deref().unwrap())
            .is_none(),
        "a secret is never listed"
    );
    assert!(
        listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["client_id"] == "admin-portal")
    );

    let invalid = admin
        .post(
            "/clients",
            json!({"name": "Bad", "redirect_uris": ["http://evil.example/cb"]}),
        )
        .await;
    let problem = assert_problem(invalid, 400).await;
    assert!(problem["detail"].as_str().unwrap().contains("https"), "{problem}");

    // Issue 15 #13: a client's own rate limits, bounded at input.
    let limited = admin
        .call(reqwest::Method::PUT, &format!("/clients/{id}"), Some(json!({"name": "Billing", "grant_types": ["client_credentials"], "scopes": ["invoices"], "rate_limit_token_per_minute": 600000, "rate_limit_introspect_per_minute": 0})))
        .await;
    assert_eq!(limited.status(), 200);
    let limited: Value = limited.json().await.unwrap();
    assert_eq!(limited["rate_limit_token_per_minute"], 600000);
    assert_eq!(limited["rate_limit_introspect_per_minute"], 0);
    let negative = admin
        .call(reqwest::Method::PUT, &format!("/clients/{id}"), Some(json!({"name": "Billing", "grant_types": ["client_credentials"], "scopes": ["invoices"], "rate_limit_token_per_minute": -1})))
        .await;
    let problem = assert_problem(negative, 400).await;
    assert!(
        problem["detail"].as_str().unwrap().contains("rate limit"),
        "{problem}"
    );

    let replaced = admin
        .call(reqwest::Method::PUT, &format!("/clients/{id}"), Some(json!({"name": "Billing v2", "grant_types": ["client_credentials"], "scopes": ["invoices"], "access_token_ttl_s": 120})))
        .await;
    assert_eq!(replaced.status(), 200);
    let view = admin.get(&format!("/clients/{id}")).await;
    assert_eq!(view["name"], "Billing v2");
    assert_eq!(view["access_token_ttl_s"], 120);
    let issued: Value = admin
        .app
        .token_request(&billing, &grant)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(issued["expires_in"], 120, "the change is in effect at once");

    let rotated: Value = admin
        .post(&format!("/clients/{id}/secret"), json!({}))
        .await
        .json()
        .await
        .unwrap();
    let new_secret = rotated["client_secret"].as_str().unwrap().to_string();
    assert_eq!(
        admin.app.token_request(&billing, &grant).await.status(),
        401,
        "the old secret is dead"
    );
    let billing = Registered {
        id: id.clone(),
        secret: Some(new_secret),
    };
    assert_eq!(admin.app.token_request(&billing, &grant).await.status(), 200);

    assert_problem(
        admin
            .call(reqwest::Method::DELETE, "/clients/admin-portal", None)
            .await,
        400,
    )
    .await;
    assert_eq!(
        admin
            .call(reqwest::Method::DELETE, &format!("/clients/{id}"), None)
            .await
            .status(),
        204
    );
    assert_eq!(admin.app.token_request(&billing, &grant).await.status(), 401);
    assert_problem(
        admin
            .call(reqwest::Method::GET, &format!("/clients/{id}"), None)
            .await,
        404,
    )
    .await;
    for kind in ["client_created", "client_changed", "client_deleted"] {
        let events = admin.events(kind).await;
        assert!(
            events
                .iter()
                .any(|e| e["client_id"] == id.as_str() && e["actor_id"] == admin.ada.as_str()),
            "{kind}"
        );
    }
}

async fn events_are_filtered_exported_and_counted(backend: Backend) {
    let admin = setup(backend).await;
    let app_client = admin.app.add_client(false, |c| c.first_party = true).await;
    let browser = browser::Browser::new(&admin.app.base);
    for _ in 0..2 {
        let landing = browser
            .visit(&format!(
                "{}{}",
                admin.app.base,
                common::authorize_query(&app_client.id, "")
            ))
            .await;
        browser
            .log_in_and_consent(landing, "rita", "not her password")
            .await;
    }
    let failed = admin
        .get("/events?type=login_failed&outcome=failure&user=RITA&ip=127.0.0.1")
        .await;
    let items = failed["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert!(
        items
            .iter()
            .all(|e| e["username"] == "rita" && e["client_id"] == app_client.id.as_str())
    );
    assert!(items[0]["id"].as_i64() > items[1]["id"].as_i64(), "newest first");
    let none = admin.get("/events?type=login_failed&ip=10.0.0.1").await;
    assert!(none["items"].as_array().unwrap().is_empty());
    let page = admin.get("/events?type=login_failed&limit=1").await;
    let next = admin
        .get(&format!(
            "/events?type=login_failed&limit=1&cursor={}",
            page["next_cursor"].as_str().unwrap()
        ))
        .await;
    assert_eq!(next["items"][0]["id"], items[1]["id"]);
    assert_problem(
        admin
            .call(reqwest::Method::GET, "/events?type=made_up", None)
            .await,
        400,
    )
    .await;

    let csv = admin
        .call(reqwest::Method::GET, "/events/export.csv?type=login_failed", None)
        .await;
    assert_eq!(csv.status(), 200);
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let text = csv.text().await.unwrap();
    let lines: Vec<_> = text.lines().collect();
    assert!(lines[0].starts_with("id,occurred_at,event_type"));
    assert_eq!(lines.len(), 3);
    assert!(lines[1].contains("login_failed") && lines[1].contains("rita"));
    let json_export: Value = admin
        .call(reqwest::Method::GET, "/events/export.json", None)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        json_export.as_array().unwrap().len() >= 3,
        "logins, failures and the client's creation"
    );

    let stats = admin.get("/events/stats?interval=hour").await;
    let failures: i64 = stats["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["event_type"] == "login_failed")
        .map(|b| b["count"].as_i64().unwrap())
        .sum();
    assert_eq!(failures, 2);
    assert_eq!(
        stats["top_failure_ips"][0],
        json!({"ip": "127.0.0.1", "count": 2})
    );
    assert_problem(
        admin
            .call(reqwest::Method::GET, "/events/stats?interval=week", None)
            .await,
        400,
    )
    .await;

    let overview = admin.get("/overview").await;
    assert_eq!(overview["login_failures_24h"], 2);
    assert!(overview["logins_24h"].as_i64().unwrap() >= 1, "ada's own login");
    assert_eq!(overview["users"], 3);
    assert!(overview["active_sessions"].as_i64().unwrap() >= 1);
    // No SMTP server here: the portal says that no mail can be sent.
    assert_eq!(overview["mail"]["configured"], false);
    assert_eq!(overview["mail"]["pending"], 0);
}

async fn keys_are_listed_and_rotated(backend: Backend) {
    let app = spawn_app_with(
        TestDb::new(backend).await,
        &[("IDP_KEY_ACTIVATION_DELAY_S", "3600")],
    )
    .await;
    let admin = setup_on(app).await;
    let keys = admin.get("/keys").await;
    let items = keys["items"].as_array().unwrap();
    assert_eq!(items.len(), 4, "RS256, PS256, ES256, EdDSA");
    assert!(items.iter().all(|k| k["state"] == "active"));
    assert!(!keys.to_string().contains("private"), "only public facts");
    let response = admin.post("/keys/rotate", json!({"algs": ["ES256"]})).await;
    assert_eq!(response.status(), 201);
    let staged: Value = response.json().await.unwrap();
    let kid = staged["items"][0]["kid"].as_str().unwrap();
    assert_eq!(staged["items"][0]["state"], "pending");
    let jwks: Value = admin
        .app
        .http
        .get(format!("{}/jwks", admin.app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(jwks.to_string().contains(kid), "published at once");
    assert_problem(admin.post("/keys/rotate", json!({"algs": ["HS256"]})).await, 400).await;
    assert!(admin.audited("key_rotated").await);
}

async fn the_admin_api_is_rate_limited(backend: Backend) {
    let admin = setup_on(
        spawn_app_with(
            TestDb::new(backend).await,
            &[("IDP_RATE_LIMIT_ADMIN_PER_MINUTE", "60")],
        )
        .await,
    )
    .await;
    let mut limited = None;
    for _ in 0..40 {
        let response = admin.call(reqwest::Method::GET, "/overview", None).await;
        if response.status() == 429 {
            limited = Some(response);
            break;
        }
    }
    let response = limited.expect("never rate limited");
    assert!(response.headers().contains_key("retry-after"));
    assert_problem(response, 429).await;
}
/// Issue 15 (info): the portal's client gets the rotating refresh tokens docs/admin.md
/// describes: a login through it with `offline_access` yields one, and it rotates.
async fn the_portal_gets_rotating_refresh_tokens(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_user_as("ada", true).await;
    let callback = format!("{}/admin/callback", app.base);
    let mut url = url::Url::parse(&format!("{}/authorize", app.base)).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", "admin-portal")
        .append_pair("redirect_uri", &callback)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid profile offline_access")
        .append_pair("code_challenge", common::CHALLENGE)
        .append_pair("code_challenge_method", "S256");
    // The login (with the administrator's second-factor enrolment) ends at the portal's
    // callback page, whose address carries the code.
    let browser = app.browser();
    let landing = browser.visit(url.as_str()).await;
    let (_, callback_url, _) = browser
        .log_in_and_consent(landing, "ada", common::PASSWORD)
        .await
        .page();
    assert!(callback_url.starts_with(&callback), "{callback_url}");
    let code = url::Url::parse(&callback_url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    let portal = Registered {
        id: "admin-portal".into(),
        secret: None,
    };
    let tokens: Value = app
        .token_request(
            &portal,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", &callback),
                ("code_verifier", common::VERIFIER),
            ],
        )
        .await
        .json()
        .await
        .unwrap();
    let refresh = tokens["refresh_token"].as_str().expect("a refresh token");
    let rotated: Value = app
        .token_request(
            &portal,
            &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        )
        .await
        .json()
        .await
        .unwrap();
    let next = rotated["refresh_token"].as_str().unwrap();
    assert_ne!(next, refresh, "rotated");
}

/// Resource servers (RFC 8707): registered, given to a client, removed by their identifier
/// percent-encoded as one path segment.
async fn resource_servers_are_registered_and_removed(backend: Backend) {
    let admin = setup(backend).await;
    let api = "https://api.example.com/orders?v=1";
    let response = admin
        .post(
            "/resources",
            json!({"identifier": api, "scopes": ["orders:read", "orders:read"]}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["scopes"], json!(["orders:read"]));
    assert_problem(admin.post("/resources", json!({"identifier": api})).await, 409).await;
    assert_problem(
        admin.post("/resources", json!({"identifier": "orders"})).await,
        400,
    )
    .await;
    assert!(admin.audited("resource_created").await);

    let response = admin
        .post(
            "/clients",
            json!({"name": "Shop", "redirect_uris": ["https://shop.example/cb"], "resources": [api]}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let client: Value = response.json().await.unwrap();
    assert_eq!(client["client"]["resources"], json!([api]));
    let unknown = admin
        .post(
            "/clients",
            json!({"name": "X", "redirect_uris": ["https://x.example/cb"], "resources": ["https://nobody.example/"]}),
        )
        .await;
    assert_problem(unknown, 400).await;

    let listed = admin.get("/resources").await;
    assert_eq!(listed["items"][0]["identifier"], api);
    let encoded: String = url::form_urlencoded::byte_serialize(api.as_bytes()).collect();
    let removed = admin
        .call(reqwest::Method::DELETE, &format!("/resources/{encoded}"), None)
        .await;
    assert_eq!(removed.status(), 204);
    assert_eq!(admin.get("/resources").await["items"], json!([]));
    let id = client["client"]["client_id"].as_str().unwrap();
    assert_eq!(admin.get(&format!("/clients/{id}")).await["resources"], json!([]));
    let again = admin
        .call(reqwest::Method::DELETE, &format!("/resources/{encoded}"), None)
        .await;
    assert_problem(again, 404).await;
    assert!(admin.audited("resource_deleted").await);
}

on_both_backends!(
    resource_servers_are_registered_and_removed,
    the_portal_gets_rotating_refresh_tokens,
    only_administrators_get_in,
    clients_are_registered_changed_and_removed,
    events_are_filtered_exported_and_counted,
    keys_are_listed_and_rotated,
    the_admin_api_is_rate_limited,
);

#[tokio::test]
async fn the_openapi_document_describes_every_route() {
    let app = spawn_app(Backend::Sqlite).await;
    let response = app
        .http
        .get(format!("{}/admin/api/openapi.json", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let doc: Value = response.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/admin/api/v1/users",
        "/admin/api/v1/users/{id}",
        "/admin/api/v1/clients/{client_id}/secret",
        "/admin/api/v1/events/export.csv",
        "/admin/api/v1/keys/rotate",
        "/admin/api/v1/overview",
        "/admin/api/v1/resources",
        "/admin/api/v1/resources/{identifier}",
    ] {
        assert!(paths.contains_key(path), "{path} undocumented");
    }
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    assert!(doc["paths"]["/admin/api/v1/users"]["get"]["responses"]["401"].is_object());
}
