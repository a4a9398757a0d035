//! Self-service in real Chromium, through a real SMTP server (aiosmtpd): registration (on and
//! off), an invitation, a changed address verified from its link, the reset of a user with a
//! second factor, and an expired reset link. Each page is saved as a screenshot for the docs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod webdriver;

use e2e::Server;
use e2e::smtp::SmtpServer;
use fantoccini::{Client, Locator};
use webdriver::{
    App, callback_listener, click_button, enrol_second_factor, find, log_in, next_callback, query,
    screenshot, start_login, totp_code, type_into, wait_for_text,
};

const PASSWORD: &str = "the original passphrase 1";
const NEW_PASSWORD: &str = "a brand new passphrase 42";

fn mail_settings(smtp: &SmtpServer) -> Vec<(&'static str, String)> {
    vec![
        ("IDP_SMTP_URL", smtp.url()),
        ("IDP_SMTP_FROM", "AImpact Identity <no-reply@example.com>".into()),
    ]
}

fn start(settings: &[(&'static str, String)]) -> Server {
    let env: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Server::start(&env)
}

/// A new page's text, once it has loaded.
async fn body_text(browser: &Client) -> String {
    find(browser, Locator::Css("body")).await.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visitor_creates_an_account_when_registration_is_on_in_chromium() {
    let smtp = SmtpServer::start().await;
    let mut settings = mail_settings(&smtp);
    settings.push(("IDP_REGISTRATION", "true".into()));
    let (callback_port, callback) = callback_listener();
    let app = App::register(
        start(&settings),
        format!("http://127.0.0.1:{callback_port}/callback"),
        "Registration test app",
    );
    let session = webdriver::open().await;
    let browser = &session.client;
    start_login(browser, &app).await;
    find(browser, Locator::Css("#register"))
        .await
        .click()
        .await
        .unwrap();
    type_into(browser, "#email", "zoe@example.com").await;
    screenshot(browser, "register").await;
    click_button(browser, "Send the link").await;
    wait_for_text(browser, "We have sent a link to").await;
    screenshot(browser, "register-sent").await;

    let prefix = format!("{}/register/complete?token=", app.server.base);
    let link = smtp.wait_for_link("zoe@example.com", &prefix, 1).await[0].link(&prefix);
    browser.goto(&link).await.unwrap();
    type_into(browser, "#username", "zoe").await;
    type_into(browser, "#name", "Zoe Quinn").await;
    type_into(browser, "#new_password", NEW_PASSWORD).await;
    type_into(browser, "#confirm_password", NEW_PASSWORD).await;
    screenshot(browser, "register-complete").await;
    click_button(browser, "Create the account").await;
    wait_for_text(browser, "Your account is ready").await;
    screenshot(browser, "register-done").await;

    // The new account signs in to the application; the link does not make a second one.
    start_login(browser, &app).await;
    log_in(browser, "zoe", NEW_PASSWORD).await;
    let back = next_callback(&callback).await;
    assert!(query(&back, "code").is_some(), "{back}");
    browser.goto(&link).await.unwrap();
    wait_for_text(browser, "This link cannot be used").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_registration_the_login_page_offers_none_in_chromium() {
    let smtp = SmtpServer::start().await;
    let app = App::register(
        start(&mail_settings(&smtp)),
        "http://127.0.0.1:9/callback".into(),
        "No registration app",
    );
    let session = webdriver::open().await;
    let browser = &session.client;
    start_login(browser, &app).await;
    assert!(
        browser.find(Locator::Css("#register")).await.is_err(),
        "no link to a registration page"
    );
    browser
        .goto(&format!("{}/register", app.server.base))
        .await
        .unwrap();
    wait_for_text(browser, "Registration is closed").await;
    screenshot(browser, "register-closed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invited_user_chooses_a_password_in_chromium() {
    let smtp = SmtpServer::start().await;
    let settings = mail_settings(&smtp);
    let (callback_port, callback) = callback_listener();
    let app = App::register(
        start(&settings),
        format!("http://127.0.0.1:{callback_port}/callback"),
        "Invitation test app",
    );
    // The administrator's CLI on the server host, with the server's settings: it queues
    // the invitation in the outbox, which the running server sends.
    let invited = std::process::Command::new(e2e::idp_binary())
        .current_dir(app.server.dir.path())
        .envs(settings.iter().map(|(k, v)| (*k, v.as_str())))
        .env("IDP_ISSUER", &app.server.base)
        .args([
            "user",
            "invite",
            "nia",
            "--email",
            "nia@example.com",
            "--name",
            "Nia",
        ])
        .output()
        .unwrap();
    assert!(
        invited.status.success(),
        "{}",
        String::from_utf8_lossy(&invited.stderr)
    );
    let prefix = format!("{}/accept-invitation?token=", app.server.base);
    let link = smtp.wait_for_link("nia@example.com", &prefix, 1).await[0].link(&prefix);

    let session = webdriver::open().await;
    let browser = &session.client;
    browser.goto(&link).await.unwrap();
    type_into(browser, "#new_password", NEW_PASSWORD).await;
    type_into(browser, "#confirm_password", NEW_PASSWORD).await;
    screenshot(browser, "accept-invitation").await;
    click_button(browser, "Set the password").await;
    wait_for_text(browser, "your account is ready").await;

    start_login(browser, &app).await;
    log_in(browser, "nia", NEW_PASSWORD).await;
    let back = next_callback(&callback).await;
    assert!(query(&back, "code").is_some(), "{back}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_address_is_verified_from_its_link_in_chromium() {
    let smtp = SmtpServer::start().await;
    let server = start(&mail_settings(&smtp));
    server.add_user(&["ada", "--email", "ada@example.com"], PASSWORD);
    let session = webdriver::open().await;
    let browser = &session.client;
    browser.goto(&format!("{}/account", server.base)).await.unwrap();
    log_in(browser, "ada", PASSWORD).await;
    wait_for_text(browser, "Signed in as").await;
    type_into(browser, "#email", "ada@example.org").await;
    click_button(browser, "Save the profile").await;
    wait_for_text(browser, "We sent a link to the new address").await;
    screenshot(browser, "account-email-pending").await;
    let email = find(browser, Locator::Css("#email")).await;
    assert_eq!(
        email.prop("value").await.unwrap().as_deref(),
        Some("ada@example.com"),
        "the old address until the new one is proven"
    );

    let prefix = format!("{}/verify-email?token=", server.base);
    let link = smtp.wait_for_link("ada@example.org", &prefix, 1).await[0].link(&prefix);
    browser.goto(&link).await.unwrap();
    screenshot(browser, "verify-email").await;
    find(browser, Locator::Css("#verify"))
        .await
        .click()
        .await
        .unwrap();
    wait_for_text(browser, "your email address is verified").await;

    browser.goto(&format!("{}/account", server.base)).await.unwrap();
    wait_for_text(browser, "Signed in as").await;
    let profile = find(browser, Locator::Css("#profile"))
        .await
        .text()
        .await
        .unwrap();
    assert!(profile.contains("verified"), "{profile}");
    assert!(!profile.contains("not verified"), "{profile}");
    let email = find(browser, Locator::Css("#email")).await;
    assert_eq!(
        email.prop("value").await.unwrap().as_deref(),
        Some("ada@example.org")
    );
    screenshot(browser, "account-email-verified").await;
    // The old address was told.
    let told = smtp.wait_for("ada@example.com", 1).await;
    assert!(
        told.iter().any(|m| m.text.contains("ada@example.org")),
        "a notice to the old address"
    );
}

/// Asks for a reset link for `login` on the forgot-password page; returns the link once
/// `count` mails with one have reached `address`.
async fn ask_for_a_reset_link(
    browser: &Client,
    server: &Server,
    smtp: &SmtpServer,
    address: &str,
    count: usize,
) -> String {
    browser
        .goto(&format!("{}/forgot-password", server.base))
        .await
        .unwrap();
    type_into(browser, "#login", "ada").await;
    click_button(browser, "Send the link").await;
    wait_for_text(browser, "we have sent it a link").await;
    let prefix = format!("{}/reset-password?token=", server.base);
    smtp.wait_for_link(address, &prefix, count).await[count - 1].link(&prefix)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_reset_link_is_refused_in_chromium() {
    let smtp = SmtpServer::start().await;
    let mut settings = mail_settings(&smtp);
    // Links of 2 seconds, so that one expires within the test.
    settings.push(("IDP_PASSWORD_RESET_LINK_TTL_S", "2".into()));
    let server = start(&settings);
    server.add_user(&["ada", "--email", "ada@example.com"], PASSWORD);
    let session = webdriver::open().await;
    let browser = &session.client;
    let late = ask_for_a_reset_link(browser, &server, &smtp, "ada@example.com", 1).await;
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    browser.goto(&late).await.unwrap();
    wait_for_text(browser, "This link cannot be used").await;
    screenshot(browser, "reset-link-expired").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_of_a_user_with_a_second_factor_needs_a_code_in_chromium() {
    let smtp = SmtpServer::start().await;
    let server = start(&mail_settings(&smtp));
    server.add_user(&["ada", "--email", "ada@example.com"], PASSWORD);
    let session = webdriver::open().await;
    let browser = &session.client;
    // Ada sets up an authenticator app from her account page.
    browser.goto(&format!("{}/account", server.base)).await.unwrap();
    log_in(browser, "ada", PASSWORD).await;
    wait_for_text(browser, "Signed in as").await;
    find(browser, Locator::LinkText("Set up two-step sign-in"))
        .await
        .click()
        .await
        .unwrap();
    let (key, _) = enrol_second_factor(browser, false).await;
    wait_for_text(browser, "Authenticator app").await;

    let link = ask_for_a_reset_link(browser, &server, &smtp, "ada@example.com", 1).await;
    browser.goto(&link).await.unwrap();
    wait_for_text(browser, "Your account has a second factor").await;
    type_into(browser, "#code", "000000").await;
    type_into(browser, "#new_password", NEW_PASSWORD).await;
    type_into(browser, "#confirm_password", NEW_PASSWORD).await;
    click_button(browser, "Change the password").await;
    wait_for_text(browser, "The code is incorrect").await;
    let refused = body_text(browser).await;
    assert!(!refused.contains("Password changed"), "a wrong code: {refused}");
    // The next step's code: the enrolment used this step's (a code works once).
    type_into(browser, "#code", &totp_code(&key, 1)).await;
    type_into(browser, "#new_password", NEW_PASSWORD).await;
    type_into(browser, "#confirm_password", NEW_PASSWORD).await;
    screenshot(browser, "reset-password-mfa").await;
    click_button(browser, "Change the password").await;
    wait_for_text(browser, "Password changed").await;
}
