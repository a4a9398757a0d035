//! Forgot password in real Chromium, through a real SMTP server (aiosmtpd): from the login
//! page's link to the mailed link, a new password, and a sign-in with it; the link used a
//! second time is refused. The pages are saved as screenshots for the docs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod webdriver;

use e2e::Server;
use e2e::smtp::SmtpServer;
use fantoccini::Locator;
use webdriver::{
    App, callback_listener, click_button, find, log_in, next_callback, query, screenshot, start_login,
    type_into, wait_for_text,
};

const OLD_PASSWORD: &str = "the original passphrase 1";
const NEW_PASSWORD: &str = "a brand new passphrase 42";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_resets_a_forgotten_password_from_the_mailed_link_in_chromium() {
    let smtp = SmtpServer::start().await;
    let server = Server::start(&[
        ("IDP_SMTP_URL", &smtp.url()),
        ("IDP_SMTP_FROM", "AImpact Identity <no-reply@example.com>"),
    ]);
    server.add_user(
        &["ada", "--email", "ada@example.com", "--name", "Ada"],
        OLD_PASSWORD,
    );
    let (callback_port, callback) = callback_listener();
    let app = App::register(
        server,
        format!("http://127.0.0.1:{callback_port}/callback"),
        "Recovery test app",
    );

    let session = webdriver::open().await;
    let browser = &session.client;
    start_login(browser, &app).await;
    find(browser, Locator::Css("#forgot-password"))
        .await
        .click()
        .await
        .unwrap();
    type_into(browser, "#login", "ada").await;
    screenshot(browser, "forgot-password").await;
    click_button(browser, "Send the link").await;
    wait_for_text(browser, "we have sent it a link").await;
    screenshot(browser, "forgot-password-sent").await;

    let prefix = format!("{}/reset-password?token=", app.server.base);
    let mail = smtp.wait_for_link("ada@example.com", &prefix, 1).await;
    let link = mail[0].link(&prefix);
    browser.goto(&link).await.unwrap();
    type_into(browser, "#new_password", NEW_PASSWORD).await;
    type_into(browser, "#confirm_password", NEW_PASSWORD).await;
    screenshot(browser, "reset-password").await;
    click_button(browser, "Change the password").await;
    wait_for_text(browser, "Password changed").await;
    screenshot(browser, "reset-password-done").await;

    // The new password signs in; the link does not work twice.
    start_login(browser, &app).await;
    log_in(browser, "ada", NEW_PASSWORD).await;
    let back = next_callback(&callback).await;
    assert!(query(&back, "code").is_some(), "{back}");
    browser.goto(&link).await.unwrap();
    wait_for_text(browser, "This link cannot be used").await;
    screenshot(browser, "reset-link-used").await;
}
