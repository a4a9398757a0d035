//! The admin API tests' shared setup: an administrator's token from the provider's own
//! login, and calls with it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;

use crate::common::{Backend, Registered, TestApp, spawn_app};

/// An app with an administrator (`ada`), a user (`rita`), a client allowed the `admin`
/// scope, and ada's token from it.
pub struct Admin {
    pub app: TestApp,
    pub client: Registered,
    pub token: String,
    pub ada: String,
}

pub async fn setup(backend: Backend) -> Admin {
    setup_on(spawn_app(backend).await).await
}

pub async fn setup_on(app: TestApp) -> Admin {
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
    pub fn url(&self, path: &str) -> String {
        format!("{}/admin/api/v1{path}", self.app.base)
    }

    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> reqwest::Response {
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

    pub async fn get(&self, path: &str) -> Value {
        let response = self.call(reqwest::Method::GET, path, None).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.unwrap()
    }

    pub async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn user_id(&self, username: &str) -> String {
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
    pub async fn audited(&self, kind: &str) -> bool {
        self.events(kind)
            .await
            .iter()
            .any(|e| e["actor_id"] == self.ada.as_str())
    }

    /// The newest events of `kind`, through the API.
    pub async fn events(&self, kind: &str) -> Vec<Value> {
        self.get(&format!("/events?type={kind}")).await["items"]
            .as_array()
            .unwrap()
            .clone()
    }
}

pub async fn assert_problem(response: reqwest::Response, status: u16) -> Value {
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
