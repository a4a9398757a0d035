//! The admin API from the outside, as the portal and scripts use it: bearer tokens from
//! this provider's own login, every route, its authorization, its audit trail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Backend, Registered, TestApp, TestDb, browser, spawn_app, spawn_app_with};
use serde_json::{Value, json};

/// An app with an administrator (`ada`), a user (`rita`), a client allowed the `admin`
/// scope, and ada's token from it.
struct Admin {
    app: TestApp,
    client: Registered,
    token: String,
    ada: String,
}

async fn setup(backend: Backend) -> Admin {
    setup_on(spawn_app(backend).await).await
}

async fn setup_on(app: TestApp) -> Admin {
    let ada = app.add_user_as("ada", true).await.id.to_string();
    app.add_user("rita").await;
    let client = app
        .add_client(false, |c| {
            c.scopes.push("admin".into());
            c.first_party = true;
        })
        .await;
    let token = app.tokens(&client, "ada", "openid admin").await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    Admin {
        app,
        client,
        token,
        ada,
    }
}

impl Admin {
    fn url(&self, path: &str) -> String {
        format!("{}/admin/api/v1{path}", self.app.base)
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> reqwest::Response {
        let mut request = self
            .app
            .http
            .request(method, self.url(path))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.unwrap()
    }

    async fn get(&self, path: &str) -> Value {
        let response = self.call(reqwest::Method::GET, path, None).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.unwrap()
    }

    async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    async fn user_id(&self, username: &str) -> String {
        let page = self.get(&format!("/users?q={username}")).await;
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["username"] == username)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Whether an event of `kind` names this administrator as the actor.
    async fn audited(&self, kind: &str) -> bool {
        self.events(kind)
            .await
            .iter()
            .any(|e| e["actor_id"] == self.ada.as_str())
    }

    /// The newest events of `kind`, through the API.
    async fn events(&self, kind: &str) -> Vec<Value> {
        self.get(&format!("/events?type={kind}")).await["items"]
            .as_array()
            .unwrap()
            .clone()
    }
}

async fn assert_problem(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["status"], status);
    assert!(
        problem["title"].is_string() && problem["type"].is_string(),
        "{problem}"
    );
    problem
}

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
}

async fn users_are_created_found_changed_and_deleted(backend: Backend) {
    let admin = setup(backend).await;
    let created = admin
        .post("/users", json!({"username": "Bob", "email": "bob@example.com", "name": "Bob Builder", "password": "correct horse battery", "roles": ["support"]}))
        .await;
    assert_eq!(created.status(), 201);
    let location = created.headers()["location"].to_str().unwrap().to_string();
    let bob: Value = created.json().await.unwrap();
    assert_eq!(
        location,
        format!("/admin/api/v1/users/{}", bob["id"].as_str().unwrap())
    );
    assert_eq!(bob["roles"], json!(["support"]));

    let duplicate = admin
        .post(
            "/users",
            json!({"username": "bob", "password": "correct horse battery"}),
        )
        .await;
    assert_problem(duplicate, 409).await;
    let weak = admin
        .post("/users", json!({"username": "carl", "password": "x"}))
        .await;
    let problem = assert_problem(weak, 400).await;
    assert!(
        problem["detail"].as_str().unwrap().contains("password"),
        "{problem}"
    );
    let malformed = admin.post("/users", json!({"user": "carl"})).await;
    assert_problem(malformed, 400).await;

    // Search by any part of username, email or name; filters; sort.
    for q in ["bob", "BUILD", "bob@example"] {
        let page = admin.get(&format!("/users?q={q}")).await;
        assert_eq!(page["items"].as_array().unwrap().len(), 1, "q={q}");
    }
    let admins = admin.get("/users?role=admin").await;
    assert!(
        admins["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["roles"].as_array().unwrap().contains(&json!("admin")))
    );
    let by_name = admin.get("/users?sort=-username&limit=200").await;
    let names: Vec<_> = by_name["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap().to_lowercase())
        .collect();
    let mut sorted = names.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(names, sorted);
    assert_problem(
        admin.call(reqwest::Method::GET, "/users?sort=age", None).await,
        400,
    )
    .await;
    assert_problem(
        admin
            .call(reqwest::Method::GET, "/users?cursor=garbage", None)
            .await,
        400,
    )
    .await;

    // Cursor pagination visits every user exactly once, in every order.
    for sort in ["created", "-created", "username", "-username"] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/users?limit=1&sort={sort}&cursor={c}"),
                None => format!("/users?limit=1&sort={sort}"),
            };
            let page = admin.get(&path).await;
            seen.extend(page["items"].as_array().unwrap().iter().map(|u| u["id"].clone()));
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_string()),
                None => break,
            }
        }
        let unique: std::collections::HashSet<_> = seen.iter().map(|v| v.to_string()).collect();
        assert_eq!(unique.len(), seen.len(), "{sort}: a user listed twice");
        assert_eq!(seen.len(), 4, "{sort}: ada, rita, bob and the bootstrap admin");
    }

    let id = bob["id"].as_str().unwrap();
    let changed = admin
        .call(
            reqwest::Method::PATCH,
            &format!("/users/{id}"),
            Some(json!({"email": "robert@example.com", "name": null, "roles": ["support", "auditor"]})),
        )
        .await;
    assert_eq!(changed.status(), 200);
    let detail = admin.get(&format!("/users/{id}")).await;
    assert_eq!(detail["email"], "robert@example.com");
    assert_eq!(detail["name"], Value::Null);
    assert_eq!(detail["roles"], json!(["auditor", "support"]));
    assert_eq!(detail["must_change_password"], false);

    let response = admin
        .post(
            &format!("/users/{id}/password"),
            json!({"password": "a temporary one 42"}),
        )
        .await;
    assert_eq!(response.status(), 204);
    assert_eq!(
        admin.get(&format!("/users/{id}")).await["must_change_password"],
        true
    );
    assert_eq!(
        admin
            .post(&format!("/users/{id}/unlock"), json!({}))
            .await
            .status(),
        204
    );

    let response = admin
        .call(reqwest::Method::DELETE, &format!("/users/{id}"), None)
        .await;
    assert_eq!(response.status(), 204);
    assert_problem(
        admin
            .call(reqwest::Method::GET, &format!("/users/{id}"), None)
            .await,
        404,
    )
    .await;
    assert_problem(
        admin.call(reqwest::Method::GET, "/users/not-a-uuid", None).await,
        404,
    )
    .await;

    // Every change is audited, naming the administrator and where they called from.
    for kind in [
        "user_created",
        "user_changed",
        "password_changed",
        "account_unlocked",
        "user_deleted",
    ] {
        let events = admin.events(kind).await;
        let event = events
            .iter()
            .find(|e| e["user_id"] == id)
            .unwrap_or_else(|| panic!("no {kind} event"));
        assert_eq!(event["actor_id"], admin.ada.as_str(), "{kind}");
        assert_eq!(event["ip"], "127.0.0.1", "{kind}");
    }
}

async fn disabling_a_user_ends_their_access(backend: Backend) {
    let admin = setup(backend).await;
    let app_client = admin.app.add_client(false, |c| c.first_party = true).await;
    let tokens = admin
        .app
        .tokens(&app_client, "rita", "openid offline_access")
        .await;
    let rita = admin.user_id("rita").await;

    let detail = admin.get(&format!("/users/{rita}")).await;
    assert_eq!(detail["sessions"].as_array().unwrap().len(), 1);
    let grant = &detail["grants"].as_array().unwrap()[0];
    assert_eq!(grant["client_id"], app_client.id.as_str());
    assert_eq!(grant["ip"], "127.0.0.1");
    assert!(detail["last_login_at"].is_string());

    let response = admin.post(&format!("/users/{rita}/disable"), json!({})).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "disabled");
    let introspected = admin
        .app
        .introspect(&app_client, tokens["access_token"].as_str().unwrap())
        .await;
    assert_eq!(introspected, json!({"active": false}));
    let refreshed = admin
        .app
        .token_request(
            &app_client,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
            ],
        )
        .await;
    assert_eq!(refreshed.status(), 400);
    assert!(
        admin.get(&format!("/users/{rita}")).await["sessions"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // Disabled: the right password no longer logs in, and that failure is an event.
    let browser = browser::Browser::new(&admin.app.base);
    let landing = browser
        .visit(&format!(
            "{}{}",
            admin.app.base,
            common::authorize_query(&app_client.id, "")
        ))
        .await;
    let (_, _, html) = browser
        .log_in_and_consent(landing, "rita", common::PASSWORD)
        .await
        .page();
    assert!(html.contains("name=\"password\""), "still on the login page");
    let failures = admin.get("/events?type=login_failed&user=rita").await;
    assert_eq!(failures["items"][0]["details"]["reason"], "disabled");

    assert_eq!(
        admin
            .post(&format!("/users/{rita}/enable"), json!({}))
            .await
            .status(),
        200
    );
    admin.app.tokens(&app_client, "rita", "openid").await;
}

async fn sessions_and_grants_are_revoked_one_by_one(backend: Backend) {
    let admin = setup(backend).await;
    let app_client = admin.app.add_client(false, |c| c.first_party = true).await;
    let first = admin
        .app
        .tokens(&app_client, "rita", "openid offline_access")
        .await;
    let second = admin
        .app
        .tokens(&app_client, "rita", "openid offline_access")
        .await;
    let rita = admin.user_id("rita").await;
    let detail = admin.get(&format!("/users/{rita}")).await;
    let grants = detail["grants"].as_array().unwrap();
    assert_eq!(grants.len(), 2);
    assert_eq!(detail["sessions"].as_array().unwrap().len(), 2);

    // Revoking the newest grant leaves the other working.
    let newest = grants[0]["id"].as_str().unwrap();
    let response = admin
        .call(
            reqwest::Method::DELETE,
            &format!("/users/{rita}/grants/{newest}"),
            None,
        )
        .await;
    assert_eq!(response.status(), 200);
    let revoked: Value = response.json().await.unwrap();
    assert_eq!(revoked, json!({"sessions": 0, "grants": 1}));
    let second_state = admin
        .app
        .introspect(&app_client, second["access_token"].as_str().unwrap())
        .await;
    let first_state = admin
        .app
        .introspect(&app_client, first["access_token"].as_str().unwrap())
        .await;
    assert_eq!(second_state["active"], false);
    assert_eq!(first_state["active"], true);
    assert_problem(
        admin
            .call(
                reqwest::Method::DELETE,
                &format!("/users/{rita}/grants/{newest}"),
                None,
            )
            .await,
        404,
    )
    .await;

    let sid = detail["sessions"][1]["sid"].as_str().unwrap();
    let response = admin
        .call(
            reqwest::Method::DELETE,
            &format!("/users/{rita}/sessions/{sid}"),
            None,
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_problem(
        admin
            .call(
                reqwest::Method::DELETE,
                &format!("/users/{rita}/sessions/{sid}"),
                None,
            )
            .await,
        404,
    )
    .await;

    let response = admin.post(&format!("/users/{rita}/revoke"), json!({})).await;
    assert_eq!(response.status(), 200);
    let first_state = admin
        .app
        .introspect(&app_client, first["access_token"].as_str().unwrap())
        .await;
    assert_eq!(first_state["active"], false);
    let detail = admin.get(&format!("/users/{rita}")).await;
    assert!(
        detail["grants"].as_array().unwrap().is_empty() && detail["sessions"].as_array().unwrap().is_empty()
    );
    assert!(admin.audited("token_revoked").await);
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
    assert_eq!(items.len(), 3);
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

async fn a_temporary_password_is_replaced_at_the_next_login(backend: Backend) {
    let admin = setup(backend).await;
    let app_client = admin.app.add_client(false, |c| c.first_party = true).await;
    let rita = admin.user_id("rita").await;
    let temporary = "temporary password 1";
    let response = admin
        .post(&format!("/users/{rita}/password"), json!({"password": temporary}))
        .await;
    assert_eq!(response.status(), 204);

    let browser = browser::Browser::new(&admin.app.base);
    let start = format!(
        "{}{}",
        admin.app.base,
        common::authorize_query(&app_client.id, "")
    );
    let landing = browser.visit(&start).await;
    let (_, url, html) = browser
        .log_in_and_consent(landing, "rita", temporary)
        .await
        .page();
    assert!(url.contains("/password?"), "{url}");
    let mismatched = browser::form(&html)
        .set("new_password", "rita's own password")
        .set("confirm_password", "something else entirely");
    let (status, _, html) = browser.submit(&mismatched).await.page();
    assert_eq!(status, 400);
    assert!(html.contains("differ"));
    // Starting over does not get round it: the session still needs a new password.
    let (_, url, html) = browser.visit(&start).await.page();
    assert!(url.contains("/password?"), "{url}");
    let chosen = browser::form(&html)
        .set("new_password", "rita's own password")
        .set("confirm_password", "rita's own password");
    let code = browser.submit(&chosen).await.query("code");
    assert!(code.is_some(), "the flow continues to the client");
    assert_eq!(
        admin.get(&format!("/users/{rita}")).await["must_change_password"],
        false
    );
    let changed = admin.events("password_changed").await;
    assert!(
        changed
            .iter()
            .any(|e| e["actor_id"] == rita.as_str() && e["details"]["forced"] == true)
    );
    // The new password works; the temporary one no longer does.
    let again = browser::Browser::new(&admin.app.base);
    let landing = again.visit(&start).await;
    let (_, _, html) = again.log_in_and_consent(landing, "rita", temporary).await.page();
    assert!(html.contains("Incorrect username or password."));
    let landing = again.visit(&start).await;
    assert!(
        again
            .log_in_and_consent(landing, "rita", "rita's own password")
            .await
            .query("code")
            .is_some()
    );
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

on_both_backends!(
    only_administrators_get_in,
    users_are_created_found_changed_and_deleted,
    disabling_a_user_ends_their_access,
    sessions_and_grants_are_revoked_one_by_one,
    clients_are_registered_changed_and_removed,
    events_are_filtered_exported_and_counted,
    keys_are_listed_and_rotated,
    a_temporary_password_is_replaced_at_the_next_login,
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
    ] {
        assert!(paths.contains_key(path), "{path} undocumented");
    }
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    assert!(doc["paths"]["/admin/api/v1/users"]["get"]["responses"]["401"].is_object());
}
