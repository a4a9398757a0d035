//! Self-registration (`/register`, off by default): the address is proved by a mailed link
//! (through a real SMTP server, aiosmtpd) before the account exists; a known address gets
//! the same answer and a note by mail, not a second account; the allowed domains and a
//! rate limit bound who can register.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::browser::{Browser, form, text_of};
use common::self_service::{
    NEW_PASSWORD, app_with_mail, app_with_mail_and, client, clocked_app_with_mail, event_count, logs_in,
};
use common::{Backend, TestApp};
use e2e::smtp::SmtpServer;
use idp::domain::clock::ManualClock;
use reqwest::StatusCode;

/// The `prompt_values_supported` of the discovery document.
async fn prompt_values(app: &TestApp) -> Vec<String> {
    let url = format!("{}/.well-known/openid-configuration", app.base);
    let document: serde_json::Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
    serde_json::from_value(document["prompt_values_supported"].clone()).unwrap()
}

/// Asks `/register` to mail `address` a link; returns the answer.
async fn ask_to_register(app: &TestApp, browser: &Browser, address: &str) -> (StatusCode, String) {
    let (status, _, html) = browser.visit(&format!("{}/register", app.base)).await.page();
    assert_eq!(status, StatusCode::OK, "{html}");
    let (status, _, html) = browser.submit(&form(&html).set("email", address)).await.page();
    (status, html)
}

async fn self_registration_creates_a_verified_account_through_the_mailed_link(backend: Backend) {
    let smtp = SmtpServer::start().await;
    let clock = ManualClock::at(chrono::Utc::now());
    let app = clocked_app_with_mail(backend, &smtp, clock.clone(), &[("IDP_REGISTRATION", "true")]).await;
    app.add_user("ada").await;
    let client = client(&app).await;
    let browser = app.browser();
    let (_, _, login) = browser
        .visit(&app.authorize_url(&client.id, "openid"))
        .await
        .page();
    assert!(login.contains("Create an account"), "{login}");

    let (status, html) = ask_to_register(&app, &browser, "Zoe@Example.com").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("We have sent a link to <strong>Zoe@Example.com</strong>"),
        "{html}"
    );
    let prefix = format!("{}/register/complete?token=", app.base);
    let mails = smtp.wait_for_link("Zoe@Example.com", &prefix, 1).await;
    assert_eq!(mails[0].subject, "Finish creating your AImpact Identity account");
    let link = mails[0].link(&prefix);

    let mailbox = app.browser();
    let (status, _, page) = mailbox.visit(&link).await.page();
    assert_eq!(status, StatusCode::OK, "{page}");
    let filled = |username: &str, password: &str| {
        form(&page)
            .set("username", username)
            .set("name", "Zoe Q")
            .set("new_password", password)
            .set("confirm_password", password)
    };
    let (status, _, html) = mailbox.submit(&filled("zoe", "short")).await.page();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("at least"), "the password policy: {html}");
    let (status, _, html) = mailbox.submit(&filled("ada", NEW_PASSWORD)).await.page();
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(html.contains("This username is taken"), "{html}");
    assert!(
        !logs_in(&app, &client, "zoe", NEW_PASSWORD).await,
        "no account yet"
    );

    let (status, _, html) = mailbox.submit(&filled("zoe", NEW_PASSWORD)).await.page();
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("Your account is ready"), "{html}");
    assert!(logs_in(&app, &client, "zoe", NEW_PASSWORD).await);
    let zoe = app
        .services
        .store
        .find_user_by_email("zoe@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(zoe.username.as_str(), "zoe");
    assert_eq!(zoe.name.as_deref(), Some("Zoe Q"));
    assert!(zoe.email_verified, "the link proved the address");
    assert!(zoe.roles.is_empty());
    let query = idp::audit::EventQuery {
        event_type: Some(idp::audit::EventType::UserCreated),
        user_id: Some(zoe.id.to_string()),
        limit: 10,
        ..Default::default()
    };
    let created = app.services.store.query_events(&query).await.unwrap();
    assert_eq!(created.len(), 1);
    assert_eq!(
        created[0].actor_id.as_deref(),
        Some(zoe.id.to_string().as_str()),
        "their own act"
    );
    assert_eq!(created[0].details["registered"], true);

    // Used: the address has its account.
    assert_eq!(mailbox.visit(&link).await.page().0, StatusCode::BAD_REQUEST);
    let (status, _, _) = mailbox.submit(&filled("zoe2", NEW_PASSWORD)).await.page();
    assert_eq!(status, StatusCode::BAD_REQUEST, "not a second account");

    // A link works for 60 minutes; an altered one never.
    ask_to_register(&app, &browser, "yann@example.com").await;
    let late = smtp.wait_for_link("yann@example.com", &prefix, 1).await[0].link(&prefix);
    assert_eq!(mailbox.visit(&late).await.page().0, StatusCode::OK);
    let altered = late.replacen("token=", "token=A", 1);
    assert_eq!(mailbox.visit(&altered).await.page().0, StatusCode::BAD_REQUEST);
    clock.advance(chrono::Duration::minutes(61));
    assert_eq!(mailbox.visit(&late).await.page().0, StatusCode::BAD_REQUEST);
}

async fn registering_a_known_address_answers_alike_and_mails_a_note(backend: Backend) {
    let smtp = SmtpServer::start().await;
    let app = app_with_mail_and(backend, &smtp, &[("IDP_REGISTRATION", "true")]).await;
    app.add_user("ada").await;
    let browser = app.browser();
    let (status, known) = ask_to_register(&app, &browser, "ada@example.com").await;
    let (status2, unknown) = ask_to_register(&app, &browser, "ada@example.org").await;
    assert_eq!((status, status2), (StatusCode::OK, StatusCode::OK));
    assert_eq!(
        known.replace("ada@example.com", "ADDRESS"),
        unknown.replace("ada@example.org", "ADDRESS"),
        "the same page but for the address"
    );
    // The owner of the known address learns that someone tried, with the way back in.
    let mails = smtp.wait_for("ada@example.com", 2).await;
    let note = mails
        .iter()
        .find(|m| m.subject == "You already have an account at AImpact Identity")
        .unwrap_or_else(|| {
            panic!(
                "the note: {:?}",
                mails.iter().map(|m| &m.subject).collect::<Vec<_>>()
            )
        });
    assert!(
        note.text.contains(&format!("{}/forgot-password", app.base)),
        "{}",
        note.text
    );
    assert!(!note.text.contains("/register/complete"), "no second account");
    smtp.wait_for_link(
        "ada@example.org",
        &format!("{}/register/complete?token=", app.base),
        1,
    )
    .await;
    assert_eq!(event_count(&app, "registration_requested").await, 2);
}

async fn registration_is_off_by_default_limited_to_its_domains_and_rate_limited(backend: Backend) {
    let smtp = SmtpServer::start().await;
    let app = app_with_mail(backend, &smtp).await;
    let registered = client(&app).await;
    let browser = app.browser();
    let (_, _, login) = browser
        .visit(&app.authorize_url(&registered.id, "openid"))
        .await
        .page();
    assert!(!login.contains("Create an account"), "{login}");
    for page in ["/register", "/register/complete?token=x"] {
        let (status, _, _) = browser.visit(&format!("{}{page}", app.base)).await.page();
        assert_eq!(status, StatusCode::NOT_FOUND, "{page}");
    }
    // prompt=create (Initiating User Registration via OpenID Connect 1.0) is not offered.
    let create = format!("{}&prompt=create", app.authorize_url(&registered.id, "openid"));
    assert_eq!(
        browser.visit(&create).await.query("error").as_deref(),
        Some("invalid_request")
    );
    assert!(!prompt_values(&app).await.contains(&"create".to_string()));

    let app = app_with_mail_and(
        backend,
        &smtp,
        &[
            ("IDP_REGISTRATION", "true"),
            ("IDP_REGISTRATION_DOMAINS", "example.org"),
        ],
    )
    .await;
    let browser = app.browser();
    // An application can open the registration page (prompt=create); it leads back to the
    // sign-in of that very request.
    assert!(prompt_values(&app).await.contains(&"create".to_string()));
    let app_client = client(&app).await;
    let create = format!("{}&prompt=create", app.authorize_url(&app_client.id, "openid"));
    let (status, url, html) = browser.visit(&create).await.page();
    assert_eq!(status, StatusCode::OK);
    assert!(url.contains("/register?interaction="), "{url}");
    let back = text_of(&html, "#back-to-sign-in").expect("a way back to the sign-in");
    assert_eq!(back, "Back to sign in");
    let (status, html) = ask_to_register(&app, &browser, "eve@example.com").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("open to addresses at example.org only"), "{html}");
    let (status, html) = ask_to_register(&app, &browser, "not an address").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("valid email address"), "{html}");
    // Ten per hour per network, three at once: the checks above counted too.
    let (status, _) = ask_to_register(&app, &browser, "eve@example.org").await;
    assert_eq!(status, StatusCode::OK);
    let (status, html) = ask_to_register(&app, &browser, "eve2@example.org").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{html}");
    assert!(html.contains("Too many requests"), "{html}");
}

on_both_backends!(
    self_registration_creates_a_verified_account_through_the_mailed_link,
    registering_a_known_address_answers_alike_and_mails_a_note,
    registration_is_off_by_default_limited_to_its_domains_and_rate_limited,
);
