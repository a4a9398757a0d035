//! The account page in real Chromium: a user signs in at `/account`, renames themselves,
//! changes their password, sets up an authenticator app, adds a second one, gets new
//! recovery codes, removes both, signs another browser out, disconnects an application they
//! signed in to, and reads it all in their activity. Each step is saved
//! as a screenshot for the docs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod webdriver;

use e2e::Server;
use fantoccini::{Client, Locator};
use webdriver::{
    App, callback_listener, click_button, enrol_second_factor, find, log_in, next_callback, query,
    screenshot, start_login, totp_code, type_into, wait_for_text,
};

const OLD_PASSWORD: &str = "the original passphrase 1";
const NEW_PASSWORD: &str = "a brand new passphrase 42";

/// Scrolls the section `id` into view, for its screenshot.
async fn scroll_to(browser: &Client, id: &str) {
    let script = format!("document.getElementById('{id}').scrollIntoView()");
    browser.execute(&script, vec![]).await.unwrap();
}

/// Answers the second-factor page of a sign-in with `code`.
async fn pass_code(browser: &Client, code: &str) {
    type_into(browser, "#code", code).await;
    click_button(browser, "Verify").await;
}

async fn section_text(browser: &Client, id: &str) -> String {
    find(browser, Locator::Css(&format!("#{id}")))
        .await
        .text()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_looks_after_their_account_in_chromium() {
    let server = Server::start(&[]);
    server.add_user(&["grace", "--email", "grace@example.com"], OLD_PASSWORD);
    let (callback_port, callback) = callback_listener();
    let app = App::register(
        server,
        format!("http://127.0.0.1:{callback_port}/callback"),
        "Photo Printer",
    );

    let session = webdriver::open().await;
    let browser = &session.client;
    // The user first signs in to an application, which then holds a grant.
    start_login(browser, &app).await;
    log_in(browser, "grace", OLD_PASSWORD).await;
    let back = next_callback(&callback).await;
    assert!(query(&back, "code").is_some(), "{back}");

    // The account page signs in through the provider (the same browser session: no form).
    browser
        .goto(&format!("{}/account", app.server.base))
        .await
        .unwrap();
    wait_for_text(browser, "Signed in as").await;
    assert!(section_text(browser, "apps").await.contains("Photo Printer"));
    assert!(section_text(browser, "sessions").await.contains("this browser"));
    screenshot(browser, "account-page").await;

    type_into(browser, "#name", "Grace Hopper").await;
    click_button(browser, "Save the profile").await;
    wait_for_text(browser, "Your profile was saved").await;

    type_into(browser, "#current_password", "a wrong password").await;
    type_into(browser, "#new_password", NEW_PASSWORD).await;
    type_into(browser, "#confirm_password", NEW_PASSWORD).await;
    click_button(browser, "Change the password").await;
    wait_for_text(browser, "The current password is incorrect").await;
    type_into(browser, "#current_password", OLD_PASSWORD).await;
    type_into(browser, "#new_password", NEW_PASSWORD).await;
    type_into(browser, "#confirm_password", NEW_PASSWORD).await;
    click_button(browser, "Change the password").await;
    wait_for_text(browser, "Your password was changed").await;
    screenshot(browser, "account-password-changed").await;

    // Two-step sign-in: the set-up link leads to the enrolment page and back.
    find(browser, Locator::LinkText("Set up two-step sign-in"))
        .await
        .click()
        .await
        .unwrap();
    let (first_key, _) = enrol_second_factor(browser, false).await;
    wait_for_text(browser, "Authenticator app").await;
    screenshot(browser, "account-mfa").await;

    // Another factor, and new recovery codes: each first asks for a second factor (codes of
    // later 30-second steps: a code works once).
    find(browser, Locator::Css("#add-factor"))
        .await
        .click()
        .await
        .unwrap();
    pass_code(browser, &totp_code(&first_key, 1)).await;
    let (second_key, _) = enrol_second_factor(browser, false).await;
    wait_for_text(browser, "Signed in as").await;
    assert_eq!(
        browser.find_all(Locator::Css("#mfa form")).await.unwrap().len(),
        2,
        "two factors"
    );
    scroll_to(browser, "mfa").await;
    screenshot(browser, "account-mfa-two-factors").await;
    find(browser, Locator::Css("#new-recovery-codes"))
        .await
        .click()
        .await
        .unwrap();
    pass_code(browser, &totp_code(&second_key, 1)).await;
    find(browser, Locator::Css("#recovery-codes")).await;
    screenshot(browser, "account-new-recovery-codes").await;
    click_button(browser, "I have saved them, continue").await;
    wait_for_text(browser, "10 recovery codes left").await;

    for _ in 0..2 {
        click_button(browser, "Remove").await;
        wait_for_text(browser, "The factor was removed").await;
    }
    wait_for_text(browser, "Only your password protects this account").await;

    // Another browser signs in; this one signs it out.
    let other = webdriver::open().await;
    other
        .client
        .goto(&format!("{}/account", app.server.base))
        .await
        .unwrap();
    log_in(&other.client, "grace", NEW_PASSWORD).await;
    wait_for_text(&other.client, "Signed in as").await;
    browser
        .goto(&format!("{}/account", app.server.base))
        .await
        .unwrap();
    wait_for_text(browser, "Signed in as").await;
    scroll_to(browser, "sessions").await;
    screenshot(browser, "account-sessions").await;
    click_button(browser, "Sign out everywhere else").await;
    wait_for_text(browser, "Every other session was signed out").await;
    // The other browser's account page ends with its session: back to the login form.
    other.client.refresh().await.unwrap();
    find(&other.client, Locator::Css("#username")).await;

    // The application's grant was given in this browser's session, which the password
    // change kept; disconnecting revokes it.
    assert!(section_text(browser, "apps").await.contains("Photo Printer"));
    click_button(browser, "Disconnect").await;
    wait_for_text(browser, "The application was disconnected").await;
    assert!(
        section_text(browser, "apps")
            .await
            .contains("No application holds access")
    );
    let activity = section_text(browser, "activity").await;
    for line in [
        "Password changed",
        "Second factor added",
        "Second factor removed",
        "Profile changed",
    ] {
        assert!(activity.contains(line), "{line} in {activity}");
    }
    screenshot(browser, "account-activity").await;

    click_button(browser, "Sign out").await;
    wait_for_text(browser, "You are signed out").await;
}
