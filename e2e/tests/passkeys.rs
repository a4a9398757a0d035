//! Passkeys in real Chromium with its virtual authenticator (WebDriver extension of W3C
//! WebAuthn §11): an administrator registers one at the enrolment their first login
//! requires, signs in with it alone from the username field's autofill (no username, no
//! password), uses it as the second factor after a password, and once it is removed on the
//! server it signs nobody in.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod webdriver;

use e2e::Server;
use fantoccini::Locator;
use webdriver::{
    App, callback_listener, click_button, find, log_in, next_callback, open_login_page, query, screenshot,
    start_login, wait_for_text,
};

const ADMIN_PASSWORD: &str = "e2e-admin-password";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passkey_registers_signs_in_alone_and_as_second_factor_in_chromium() {
    let server = Server::start_on_localhost(&[("IDP_BOOTSTRAP_ADMIN_PASSWORD", ADMIN_PASSWORD)]);
    let (callback_port, callback) = callback_listener();
    let redirect_uri = format!("http://127.0.0.1:{callback_port}/callback");
    let app = App::register(server, redirect_uri, "Passkey test app");

    let session = webdriver::open().await;
    let browser = &session.client;
    let authenticator = webdriver::add_virtual_authenticator(browser).await;

    // First login: the administrator must enrol a factor and picks a passkey.
    start_login(browser, &app).await;
    log_in(browser, "admin", ADMIN_PASSWORD).await;
    find(browser, Locator::Css("form[data-passkey=create]")).await;
    screenshot(browser, "passkey-enrol").await;
    webdriver::type_into(browser, "#passkey-name", "Test laptop").await;
    click_button(browser, "Create a passkey").await;
    find(browser, Locator::Css("#recovery-codes")).await;
    assert_eq!(
        webdriver::virtual_credentials(browser, &authenticator)
            .await
            .len(),
        1,
        "the authenticator keeps the new passkey"
    );
    click_button(browser, "I have saved them, continue").await;
    let code = query(&next_callback(&callback).await, "code").expect("a code");
    assert_eq!(app.amr(&code).await, ["pwd", "hwk", "user", "mfa"]);

    // Without username or password: the login page asks for a passkey in the username
    // field's autofill (conditional mediation), which the virtual authenticator answers at
    // once, as a person picking their passkey there would.
    open_login_page(browser, &app).await;
    let code = query(&next_callback(&callback).await, "code").expect("a code");
    assert_eq!(app.amr(&code).await, ["hwk", "user", "mfa"]);

    // As the second factor after the password: the key is unplugged while the password is
    // typed, and plugged in again on the second-factor page (with its signature counter:
    // a counter that goes back would mark a cloned key).
    let credentials = webdriver::virtual_credentials(browser, &authenticator).await;
    webdriver::remove_virtual_authenticator(browser, &authenticator).await;
    start_login(browser, &app).await;
    assert_eq!(
        find(browser, Locator::Css("#username"))
            .await
            .attr("autocomplete")
            .await
            .unwrap()
            .as_deref(),
        Some("username webauthn")
    );
    screenshot(browser, "passkey-login").await;
    log_in(browser, "admin", ADMIN_PASSWORD).await;
    find(browser, Locator::Css("form[data-passkey=get]")).await;
    screenshot(browser, "passkey-second-factor").await;
    let authenticator = webdriver::add_virtual_authenticator(browser).await;
    webdriver::add_virtual_credential(browser, &authenticator, &credentials[0]).await;
    click_button(browser, "Use your passkey").await;
    let code = query(&next_callback(&callback).await, "code").expect("a code");
    assert_eq!(app.amr(&code).await, ["pwd", "hwk", "user", "mfa"]);

    // Removed on the server (the user lost the device): the authenticator still offers it,
    // the provider refuses it.
    app.idp(&["user", "mfa", "reset", "admin"]);
    open_login_page(browser, &app).await;
    wait_for_text(browser, "That passkey did not work").await;
    assert!(
        browser.current_url().await.unwrap().as_str().contains("/login"),
        "still on the provider's login page"
    );
}
