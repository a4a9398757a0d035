//! The admin API's users from the outside: create, find, change, disable, delete, their
//! sessions and grants, and temporary passwords.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod admin_support;
mod common;

use admin_support::{assert_problem, setup};
use common::{Backend, browser};
use serde_json::{Value, json};

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

/// Issue 15 #1 and #2: a temporary password set by an administrator ends everything the user
/// (or whoever stole their session) held, the password-change step is reachable only from a
/// login with the temporary password and asks for it, and its form values cannot be posted
/// to the consent step to get a code without changing the password.
async fn a_temporary_password_is_replaced_at_the_next_login(backend: Backend) {
    let admin = setup(backend).await;
    let app_client = admin.app.add_client(false, |c| c.first_party = true).await;
    let rita = admin.user_id("rita").await;
    let start = format!(
        "{}{}",
        admin.app.base,
        common::authorize_query(&app_client.id, "")
    );
    // Before the reset: tokens and a logged-in browser (perhaps an attacker's).
    let before = admin
        .app
        .tokens(&app_client, "rita", "openid offline_access")
        .await;
    let old_access = before["access_token"].as_str().unwrap();
    let old_refresh = before["refresh_token"].as_str().unwrap();
    let old_browser = browser::Browser::new(&admin.app.base);
    let landing = old_browser.visit(&start).await;
    assert!(
        old_browser
            .log_in_and_consent(landing, "rita", common::PASSWORD)
            .await
            .query("code")
            .is_some()
    );
    // A second replica, sharing the database (and Redis on PostgreSQL).
    let replica = match backend {
        Backend::Postgres => {
            Some(common::spawn_app_with(common::TestDb::new_shared(&admin.app.db), &[]).await)
        }
        Backend::Sqlite => None,
    };

    let temporary = "temporary password 1";
    let response = admin
        .post(&format!("/users/{rita}/password"), json!({"password": temporary}))
        .await;
    assert_eq!(response.status(), 204);

    // Everything from before is dead, on every replica.
    for app in std::iter::once(&admin.app).chain(replica.as_ref()) {
        assert_eq!(app.introspect(&app_client, old_access).await["active"], false);
        let userinfo = app
            .http
            .get(format!("{}/userinfo", app.base))
            .bearer_auth(old_access)
            .send()
            .await
            .unwrap();
        assert_eq!(userinfo.status(), 401);
    }
    let refreshed = admin
        .app
        .token_request(
            &app_client,
            &[("grant_type", "refresh_token"), ("refresh_token", old_refresh)],
        )
        .await;
    assert_eq!(refreshed.status(), 400);
    assert_eq!(refreshed.json::<Value>().await.unwrap()["error"], "invalid_grant");
    // The old session is gone: it gets the login page, not the password-change page.
    let (status, url, _) = old_browser.visit(&start).await.page();
    assert_eq!(status, 200);
    assert!(url.contains("/login?"), "{url}");
    let direct = old_browser
        .http
        .get(format!("{}/password", admin.app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(direct.status(), 400, "no password-change step without a login");
    let changed = admin.events("password_changed").await;
    let reset = changed
        .iter()
        .find(|e| e["details"]["temporary"] == true)
        .unwrap();
    assert_eq!(reset["actor_id"], admin.ada.as_str(), "{reset}");
    assert!(
        reset["details"]["sessions_ended"].as_u64().unwrap() >= 2,
        "{reset}"
    );
    assert!(
        reset["details"]["grants_revoked"].as_u64().unwrap() >= 2,
        "{reset}"
    );

    let browser = browser::Browser::new(&admin.app.base);
    let landing = browser.visit(&start).await;
    let (_, url, html) = browser
        .log_in_and_consent(landing, "rita", temporary)
        .await
        .page();
    assert!(url.contains("/password?"), "{url}");
    // #2: the password page's values posted to the consent step issue nothing.
    let skipped = browser::form(&html)
        .set("decision", "allow")
        .with_action("/consent");
    let (status, url, page) = browser.submit(&skipped).await.page();
    assert!(
        url.contains("/login?") || (status == 400 && page.contains("not available")),
        "{status} {url}: {page}"
    );
    let without_temporary = browser::form(&html)
        .set("current_password", "not the temporary one")
        .set("new_password", "rita's own password")
        .set("confirm_password", "rita's own password");
    let (status, _, html) = browser.submit(&without_temporary).await.page();
    assert_eq!(status, 400);
    assert!(html.contains("temporary password is incorrect"), "{html}");
    let mismatched = browser::form(&html)
        .set("current_password", temporary)
        .set("new_password", "rita's own password")
        .set("confirm_password", "something else entirely");
    let (status, _, html) = browser.submit(&mismatched).await.page();
    assert_eq!(status, 400);
    assert!(html.contains("differ"));
    let common_one = browser::form(&html)
        .set("current_password", temporary)
        .set("new_password", "Password123!")
        .set("confirm_password", "Password123!");
    let (status, _, html) = browser.submit(&common_one).await.page();
    assert_eq!(status, 400);
    assert!(html.contains("too easy to guess"), "{html}");
    // Starting over does not get round it: no session exists until the password is changed.
    let (_, url, html) = browser.visit(&start).await.page();
    assert!(url.contains("/login?"), "{url}");
    let again = browser
        .log_in_and_consent(
            browser::Landing::Page {
                status: reqwest::StatusCode::OK,
                url,
                html,
            },
            "rita",
            temporary,
        )
        .await;
    let (_, url, html) = again.page();
    assert!(url.contains("/password?"), "{url}");
    let chosen = browser::form(&html)
        .set("current_password", temporary)
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

on_both_backends!(
    users_are_created_found_changed_and_deleted,
    disabling_a_user_ends_their_access,
    sessions_and_grants_are_revoked_one_by_one,
    a_temporary_password_is_replaced_at_the_next_login,
);
