//! Helpers of the self-service tests (forgot password, verification, invitations,
//! registration): a server that sends mail through a real SMTP server (aiosmtpd), and what
//! those tests check of it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use e2e::smtp::SmtpServer;

use super::browser::{Landing, form};
use super::{Backend, Registered, TestApp, TestDb, spawn_app_clocked_with, spawn_app_with};
use idp::domain::clock::ManualClock;

/// The password the self-service flows set.
pub const NEW_PASSWORD: &str = "a brand new passphrase 42";

pub async fn app_with_mail(backend: Backend, smtp: &SmtpServer) -> TestApp {
    app_with_mail_and(backend, smtp, &[]).await
}

pub async fn app_with_mail_and(backend: Backend, smtp: &SmtpServer, extra: &[(&str, &str)]) -> TestApp {
    let url = smtp.url();
    let mut env = vec![
        ("IDP_SMTP_URL", url.as_str()),
        ("IDP_SMTP_FROM", "AImpact Identity <no-reply@example.com>"),
    ];
    env.extend_from_slice(extra);
    spawn_app_with(TestDb::new(backend).await, &env).await
}

/// A server on `clock` that sends mail through `smtp`, with `extra` settings.
pub async fn clocked_app_with_mail(
    backend: Backend,
    smtp: &SmtpServer,
    clock: ManualClock,
    extra: &[(&str, &str)],
) -> TestApp {
    let url = smtp.url();
    let mut env = vec![
        ("IDP_SMTP_URL", url.as_str()),
        ("IDP_SMTP_FROM", "no-reply@example.com"),
    ];
    env.extend_from_slice(extra);
    spawn_app_clocked_with(TestDb::new(backend).await, clock, &env).await
}

pub async fn client(app: &TestApp) -> Registered {
    app.add_client(false, |c| c.first_party = true).await
}

pub async fn event_count(app: &TestApp, kind: &str) -> usize {
    let query = idp::audit::EventQuery {
        event_type: idp::audit::EventType::parse(kind),
        limit: 100,
        ..Default::default()
    };
    app.services.store.query_events(&query).await.unwrap().len()
}

pub async fn logs_in(app: &TestApp, client: &Registered, username: &str, password: &str) -> bool {
    let browser = app.browser();
    let landing = browser.visit(&app.authorize_url(&client.id, "openid")).await;
    let (_, _, html) = landing.page();
    let after = browser
        .submit(&form(&html).set("username", username).set("password", password))
        .await;
    matches!(after, Landing::Client(_)) || matches!(&after, Landing::Page { status, .. } if *status == 200)
}
