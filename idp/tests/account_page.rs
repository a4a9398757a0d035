//! The account page, through HTTP like a browser: it signs in through the provider's own
//! authorization endpoint; the user changes their password (the current one is asked,
//! other sessions end), signs out another session, disconnects an application (whose
//! refresh token, used by an `openidconnect` relying party, is then `invalid_grant`), sets
//! up and removes a second factor, and sees all of it in their activity.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::browser::{Browser, Form, forms_to, text_of};
use common::{Backend, PASSWORD, TestApp, TestDb, spawn_app, spawn_app_with};
use e2e::smtp::SmtpServer;
use openidconnect::core::CoreErrorResponseType;
use openidconnect::{RefreshToken, RequestTokenError};
use reqwest::StatusCode;

const NEW_PASSWORD: &str = "a brand new passphrase 42";

/// Opens the account page in `browser`, signing in with `password` if asked; returns its HTML.
async fn open_account(app: &TestApp, browser: &Browser, username: &str, password: &str) -> String {
    let landing = browser.visit(&format!("{}/account", app.base)).await;
    let (status, url, html) = landing.page();
    let (status, url, html) = if url.contains("/account") && !url.contains("/authorize") {
        (status, url, html)
    } else {
        browser
            .log_in_and_consent(
                common::browser::Landing::Page { status, url, html },
                username,
                password,
            )
            .await
            .page()
    };
    assert_eq!(status, StatusCode::OK, "{url}: {html}");
    assert!(url.ends_with("/account") || url.contains("/account?"), "{url}");
    html
}

fn only_form(html: &str, action: &str) -> Form {
    let mut found = forms_to(html, action);
    assert_eq!(found.len(), 1, "one form posting to {action}");
    found.remove(0)
}

/// The form posting to `action` whose hidden `id` is `id`.
fn form_for(html: &str, action: &str, id: &str) -> Form {
    forms_to(html, action)
        .into_iter()
        .find(|f| f.fields.iter().any(|(k, v)| k == "id" && v == id))
        .unwrap_or_else(|| panic!("no form to {action} for {id}: {html}"))
}

/// A refresh token of a relying party `client` for `username`.
async fn connected_app(app: &TestApp, username: &str) -> (common::Registered, String) {
    let client = app.add_client(false, |c| c.name = "Photo Printer".into()).await;
    let tokens = app.tokens(&client, username, "openid offline_access").await;
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    (client, refresh)
}

/// Refreshes with the `openidconnect` relying party; `Err` carries the OAuth error code.
async fn refresh(
    app: &TestApp,
    client: &common::Registered,
    token: &str,
) -> Result<(), CoreErrorResponseType> {
    let rp = app.relying_party(client).await;
    let token = RefreshToken::new(token.to_string());
    match rp
        .exchange_refresh_token(&token)
        .unwrap()
        .request_async(&app.rp_http())
        .await
    {
        Ok(_) => Ok(()),
        Err(RequestTokenError::ServerResponse(e)) => Err(e.error().clone()),
        Err(other) => panic!("the refresh failed otherwise: {other:?}"),
    }
}

async fn the_page_signs_in_through_the_provider_and_shows_the_account(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_user("alice").await;
    let browser = app.browser();
    let first = browser.visit(&format!("{}/account", app.base)).await;
    let (_, url, html) = first.page();
    assert!(url.contains("/authorize") || url.contains("/login"), "{url}");
    assert!(html.contains("name=\"password\""), "the login page: {html}");

    let html = open_account(&app, &browser, "alice", PASSWORD).await;
    assert!(html.contains("alice@example.com"));
    assert!(html.contains("this browser"), "the current session is marked");
    assert_eq!(
        text_of(&html, "#activity td:nth-child(2)")
            .as_deref()
            .map(str::trim),
        Some("Signed in")
    );
    // The account page is no application of the user's.
    assert!(
        text_of(&html, "#apps")
            .unwrap()
            .contains("No application holds access")
    );

    // Another browser, without the sign-in, changes nothing.
    let stranger = Browser::new(&app.base);
    let forged = only_form(&html, "/account/password")
        .set("current_password", PASSWORD)
        .set("new_password", NEW_PASSWORD)
        .set("confirm_password", NEW_PASSWORD);
    let (_, url, _) = stranger.submit(&forged).await.page();
    assert!(!url.ends_with("done=password"), "{url}");
    let (_, _, html) = browser.visit(&format!("{}/account", app.base)).await.page();
    assert!(!html.contains("Password changed"));
}

async fn changing_the_password_asks_for_the_current_one_and_ends_other_sessions(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_user("bob").await;
    let (client, refresh_token) = connected_app(&app, "bob").await;
    let browser = app.browser();
    let html = open_account(&app, &browser, "bob", PASSWORD).await;

    let wrong = only_form(&html, "/account/password")
        .set("current_password", "not my password")
        .set("new_password", NEW_PASSWORD)
        .set("confirm_password", NEW_PASSWORD);
    let (status, _, html) = browser.submit(&wrong).await.page();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("The current password is incorrect."));

    let change = only_form(&html, "/account/password")
        .set("current_password", PASSWORD)
        .set("new_password", NEW_PASSWORD)
        .set("confirm_password", NEW_PASSWORD);
    let (status, url, html) = browser.submit(&change).await.page();
    assert_eq!(status, StatusCode::OK);
    assert!(url.ends_with("/account?done=password"), "{url}");
    assert!(html.contains("Your password was changed"));
    assert!(text_of(&html, "#activity").unwrap().contains("Password changed"));

    // The application's grant, given in another session, ended with it.
    assert_eq!(
        refresh(&app, &client, &refresh_token).await,
        Err(CoreErrorResponseType::InvalidGrant)
    );
    // The old password no longer signs in; the new one does.
    let elsewhere = app.browser();
    let landing = elsewhere.visit(&format!("{}/account", app.base)).await;
    let (status, _, _) = elsewhere
        .log_in_and_consent(landing, "bob", PASSWORD)
        .await
        .page();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    open_account(&app, &elsewhere, "bob", NEW_PASSWORD).await;
}

async fn a_user_signs_out_another_session_and_disconnects_an_application(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_user("carol").await;
    let (client, refresh_token) = connected_app(&app, "carol").await;
    let laptop = app.browser();
    open_account(&app, &laptop, "carol", PASSWORD).await;
    let phone = app.browser();
    let html = open_account(&app, &phone, "carol", PASSWORD).await;
    assert!(text_of(&html, "#apps").unwrap().contains("Photo Printer"));

    // The phone signs the laptop out: the laptop's next visit asks to sign in again.
    let sessions = forms_to(&html, "/account/sessions/end");
    assert_eq!(sessions.len(), 3, "laptop, phone and the app's login: {html}");
    let laptop_sid = {
        let (_, _, laptop_html) = laptop.visit(&format!("{}/account", app.base)).await.page();
        let scraped = scraper::Html::parse_document(&laptop_html);
        let row = scraper::Selector::parse("#sessions tr").unwrap();
        let id = scraper::Selector::parse("input[name=id]").unwrap();
        scraped
            .select(&row)
            .find(|r| r.text().collect::<String>().contains("this browser"))
            .and_then(|r| r.select(&id).next())
            .and_then(|i| i.value().attr("value"))
            .unwrap()
            .to_string()
    };
    let (status, url, _) = phone
        .submit(&form_for(&html, "/account/sessions/end", &laptop_sid))
        .await
        .page();
    assert_eq!(status, StatusCode::OK);
    assert!(url.ends_with("done=session"), "{url}");
    let (_, url, html) = laptop.visit(&format!("{}/account", app.base)).await.page();
    assert!(html.contains("name=\"password\""), "{url}: signed out");

    // The phone disconnects the application: its refresh token is refused.
    let (_, _, html) = phone.visit(&format!("{}/account", app.base)).await.page();
    let (_, url, html) = phone
        .submit(&form_for(&html, "/account/apps/disconnect", &client.id))
        .await
        .page();
    assert!(url.ends_with("done=app"), "{url}");
    assert!(
        text_of(&html, "#apps")
            .unwrap()
            .contains("No application holds access")
    );
    assert!(
        text_of(&html, "#activity")
            .unwrap()
            .contains("Application disconnected")
    );
    assert_eq!(
        refresh(&app, &client, &refresh_token).await,
        Err(CoreErrorResponseType::InvalidGrant)
    );
}

async fn a_user_sets_up_and_removes_a_second_factor(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_user("dave").await;
    let browser = app.browser();
    let html = open_account(&app, &browser, "dave", PASSWORD).await;
    assert!(html.contains("/account/mfa/setup"));

    // Set-up is a sign-in asking for a second factor: a user without one enrols.
    let landing = browser.visit(&format!("{}/account/mfa/setup", app.base)).await;
    let (status, url, html) = browser.pass_second_factor(landing, "dave").await.page();
    assert_eq!(status, StatusCode::OK, "{url}");
    assert!(url.ends_with("/account"), "{url}");
    assert!(text_of(&html, "#mfa").unwrap().contains("Authenticator app"));
    assert!(
        text_of(&html, "#activity")
            .unwrap()
            .contains("Second factor added")
    );

    // Another factor: the sign-in asks for the first one, then enrols the second.
    let first_codes = browser.authenticator.recovery_codes_of("dave");
    let landing = browser.visit(&format!("{}/account/mfa/setup", app.base)).await;
    let (status, url, html) = browser.pass_second_factor(landing, "dave").await.page();
    assert_eq!(status, StatusCode::OK, "{url}");
    assert!(url.ends_with("/account"), "{url}");
    assert_eq!(forms_to(&html, "/account/mfa/remove").len(), 2, "two factors");

    // New recovery codes: shown once, after a second factor, replacing the others.
    let second_codes = browser.authenticator.recovery_codes_of("dave");
    assert_ne!(first_codes, second_codes, "enrolling shows new codes");
    let landing = browser
        .visit(&format!("{}/account/mfa/recovery-codes", app.base))
        .await;
    let (status, url, html) = browser.pass_second_factor(landing, "dave").await.page();
    assert_eq!(status, StatusCode::OK, "{url}");
    assert!(url.ends_with("/account"), "{url}");
    let third_codes = browser.authenticator.recovery_codes_of("dave");
    assert_eq!(third_codes.len(), 10);
    assert_ne!(second_codes, third_codes);
    assert!(text_of(&html, "#mfa").unwrap().contains("10 recovery codes left"));
    assert!(
        text_of(&html, "#activity")
            .unwrap()
            .contains("New recovery codes")
    );

    // The parameter is the account page's own: another client's sign-in ignores it.
    let client = app.add_client(false, |c| c.first_party = true).await;
    let url = format!(
        "{}&acr_values=urn:aimpact:acr:mfa&account_action=new_recovery_codes&prompt=login",
        app.authorize_url(&client.id, "openid")
    );
    let landing = browser
        .log_in_and_consent(browser.visit(&url).await, "dave", PASSWORD)
        .await;
    assert!(landing.query("code").is_some(), "straight back to the client");
    assert_eq!(browser.authenticator.recovery_codes_of("dave"), third_codes);

    for _ in 0..2 {
        let html = open_account(&app, &browser, "dave", PASSWORD).await;
        let factor = forms_to(&html, "/account/mfa/remove").remove(0);
        browser.submit(&factor).await.page();
    }
    let (_, url, html) = browser.visit(&format!("{}/account", app.base)).await.page();
    assert!(url.ends_with("/account"), "{url}");
    assert!(text_of(&html, "#mfa").unwrap().contains("Only your password"));
    assert!(
        text_of(&html, "#activity")
            .unwrap()
            .contains("Second factor removed")
    );
}

async fn a_form_without_its_csrf_token_changes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_user("erin").await;
    let browser = app.browser();
    let html = open_account(&app, &browser, "erin", PASSWORD).await;
    let forged = only_form(&html, "/account/profile")
        .set("csrf", "forged")
        .set("name", "Mallory");
    let (status, _, _) = browser.submit(&forged).await.page();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let html = open_account(&app, &browser, "erin", PASSWORD).await;
    assert!(!html.contains("Mallory"));

    let rename = only_form(&html, "/account/profile").set("name", "Erin Example");
    let (_, url, html) = browser.submit(&rename).await.page();
    assert!(url.ends_with("done=profile"), "{url}");
    assert!(html.contains("value=\"Erin Example\""));
}

async fn a_new_address_takes_effect_only_when_its_link_is_opened(backend: Backend) {
    let smtp = SmtpServer::start().await;
    let url = smtp.url();
    let env = [
        ("IDP_SMTP_URL", url.as_str()),
        ("IDP_SMTP_FROM", "AImpact Identity <no-reply@example.com>"),
    ];
    let app = spawn_app_with(TestDb::new(backend).await, &env).await;
    let user = app.add_user("ada").await;
    let prefix = format!("{}/verify-email?token=", app.base);
    smtp.wait_for_link("ada@example.com", &prefix, 1).await; // the welcome verification
    let browser = app.browser();
    let html = open_account(&app, &browser, "ada", PASSWORD).await;
    let change = only_form(&html, "/account/profile")
        .set("name", "Ada Lovelace")
        .set("email", "ada@new.example.org");
    let (status, url, html) = browser.submit(&change).await.page();
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(url.ends_with("done=email"), "{url}");
    assert!(html.contains("when you open the link"), "{html}");
    let stored = app.services.store.find_user(user.id).await.unwrap().unwrap();
    assert_eq!(
        stored.name.as_deref(),
        Some("Ada Lovelace"),
        "the name is saved at once"
    );
    assert_eq!(
        stored.email.as_ref().map(|e| e.as_str()),
        Some("ada@example.com"),
        "the address is not changed until the new one proves it receives mail"
    );

    let mails = smtp.wait_for_link("ada@new.example.org", &prefix, 1).await;
    let link = mails[0].link(&prefix);
    let (status, _, html) = browser.visit(&link).await.page();
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("ada@new.example.org"), "{html}");
    let (status, _, html) = browser.submit(&common::browser::form(&html)).await.page();
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("Email address verified"), "{html}");
    let moved = app.services.store.find_user(user.id).await.unwrap().unwrap();
    assert_eq!(
        moved.email.as_ref().map(|e| e.as_str()),
        Some("ada@new.example.org")
    );
    assert!(moved.email_verified);
    // A relying party sees the new, verified address.
    let client = app.add_client(false, |c| c.first_party = true).await;
    let tokens = app.tokens(&client, "ada", "openid email").await;
    let claims: serde_json::Value = app
        .http
        .get(format!("{}/userinfo", app.base))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(claims["email"], "ada@new.example.org");
    assert_eq!(claims["email_verified"], true);
    // The old address is told, in case it was not its owner who moved the account.
    let to_old = smtp.wait_for("ada@example.com", 2).await;
    assert_eq!(
        to_old[1].subject,
        "The email address of your AImpact Identity account changed"
    );
    assert_eq!(
        browser.visit(&link).await.page().0,
        StatusCode::BAD_REQUEST,
        "used once"
    );

    // A change still pending dies when an administrator sets the address.
    let html = open_account(&app, &browser, "ada", PASSWORD).await;
    let change = only_form(&html, "/account/profile").set("email", "ada@elsewhere.example.net");
    assert!(browser.submit(&change).await.page().1.ends_with("done=email"));
    let mails = smtp.wait_for_link("ada@elsewhere.example.net", &prefix, 1).await;
    let pending = mails[0].link(&prefix);
    idp::manage::users::update_profile(
        &app.services,
        user.id,
        idp::manage::users::ProfileChange {
            email: Some(Some("ada@company.example.com".into())),
            ..Default::default()
        },
        idp::manage::Actor::Cli,
    )
    .await
    .unwrap();
    assert_eq!(browser.visit(&pending).await.page().0, StatusCode::BAD_REQUEST);
}

on_both_backends!(
    a_new_address_takes_effect_only_when_its_link_is_opened,
    the_page_signs_in_through_the_provider_and_shows_the_account,
    changing_the_password_asks_for_the_current_one_and_ends_other_sessions,
    a_user_signs_out_another_session_and_disconnects_an_application,
    a_user_sets_up_and_removes_a_second_factor,
    a_form_without_its_csrf_token_changes_nothing,
);
