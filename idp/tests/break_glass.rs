//! The procedures of docs/runbooks/account-recovery.md, run as written: the `idp` command
//! line on a server host (the real binary, with the server's configuration) against a
//! running server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use common::browser::{Landing, form, posts_to};
use common::{Backend, PASSWORD, Registered, TestApp, spawn_app};

const NEW_PASSWORD: &str = "a brand new passphrase 42";

/// Runs `idp <args>` with the server's own configuration (database, master key, issuer),
/// as an operator on a server host does; `stdin` is piped in.
fn idp(app: &TestApp, args: &[&str], stdin: &str) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_idp"));
    if app.db.backend == Backend::Postgres {
        command
            .env("IDP_REDIS_URL", common::redis_url())
            .env("IDP_REDIS_KEY_PREFIX", &app.db.redis_prefix);
    }
    let mut child = command
        .args(args)
        .env("IDP_DATABASE_URL", &app.db.url)
        .env("IDP_DATA_DIR", app.db.dir.path())
        .env("IDP_MASTER_KEY", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
        .env("IDP_ISSUER", &app.base)
        .env(
            "IDP_THEMES_DIR",
            concat!(env!("CARGO_MANIFEST_DIR"), "/../themes"),
        )
        .env("IDP_LOG_LEVEL", "off")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "idp {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

async fn client(app: &TestApp) -> Registered {
    app.add_client(false, |c| c.first_party = true).await
}

/// The page after typing `password` on the login page a fresh browser is sent to.
async fn after_password(app: &TestApp, client: &Registered, username: &str, password: &str) -> Landing {
    let browser = app.browser();
    let (_, _, html) = browser
        .visit(&app.authorize_url(&client.id, "openid"))
        .await
        .page();
    browser
        .submit(&form(&html).set("username", username).set("password", password))
        .await
}

async fn events_of(app: &TestApp, user_id: &str) -> Vec<String> {
    let query = idp::audit::EventQuery {
        user_id: Some(user_id.to_string()),
        limit: 100,
        ..Default::default()
    };
    let events = app.services.store.query_events(&query).await.unwrap();
    events.iter().map(|e| e.event_type.as_str().to_string()).collect()
}

/// Every administrator locked out (password forgotten, authenticator lost): on a server
/// host, `idp user mfa reset` and `idp user reset-link`; the administrator sets a password
/// through the link and enrols a new factor at the next login.
async fn every_administrator_locked_out(backend: Backend) {
    let app = spawn_app(backend).await;
    let root = app.add_user_as("root", true).await;
    let client = client(&app).await;
    app.tokens(&client, "root", "openid").await; // enrols TOTP, as administrators must

    idp(&app, &["user", "mfa", "reset", "root", "--require-enrolment"], "");
    let out = idp(&app, &["user", "reset-link", "root"], "");
    let link = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(
        link.starts_with(&format!("{}/reset-password?token=", app.base)),
        "{link}"
    );

    let browser = app.browser();
    let (status, _, html) = browser.visit(&link).await.page();
    assert_eq!(status, 200);
    assert!(
        !html.contains("name=\"code\""),
        "the factors are gone, so no code is asked"
    );
    let (status, _, html) = browser
        .submit(
            &form(&html)
                .set("new_password", NEW_PASSWORD)
                .set("confirm_password", NEW_PASSWORD),
        )
        .await
        .page();
    assert_eq!(status, 200, "{html}");
    // The next login asks for a new factor before anything else.
    let (status, _, html) = after_password(&app, &client, "root", NEW_PASSWORD).await.page();
    assert_eq!(status, 200);
    assert!(posts_to(&html, "/mfa/enrol"), "{html}");
    let trail = events_of(&app, &root.id.to_string()).await;
    for expected in ["mfa_reset", "password_reset_requested", "password_reset"] {
        assert!(trail.iter().any(|t| t == expected), "{expected} in {trail:?}");
    }
}

/// A compromised account: a temporary password (which ends every session and revokes every
/// token), its factors reset (an attacker may have enrolled one), and its events reviewed.
async fn a_compromised_account(backend: Backend) {
    let app = spawn_app(backend).await;
    let ada = app.add_user("ada").await;
    let client = client(&app).await;
    let stolen = app.tokens(&client, "ada", "openid offline_access").await;

    idp(
        &app,
        &["user", "set-password", "ada", "--password-stdin"],
        "temporary passphrase 77",
    );
    idp(&app, &["user", "mfa", "reset", "ada", "--require-enrolment"], "");

    let refreshed = app
        .token_request(
            &client,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", stolen["refresh_token"].as_str().unwrap()),
            ],
        )
        .await;
    assert_eq!(refreshed.status(), 400, "the attacker's refresh token is dead");
    let userinfo = app
        .http
        .get(format!("{}/userinfo", app.base))
        .bearer_auth(stolen["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(userinfo.status(), 401, "and so is the access token");
    let (status, _, _) = after_password(&app, &client, "ada", PASSWORD).await.page();
    assert_eq!(status, 401, "the old password no longer works");
    let trail = events_of(&app, &ada.id.to_string()).await;
    for expected in ["login_succeeded", "password_changed", "mfa_reset"] {
        assert!(trail.iter().any(|t| t == expected), "{expected} in {trail:?}");
    }
}

on_both_backends!(every_administrator_locked_out, a_compromised_account);
