//! The account page in real Chromium: a user signs in at `/account`, renames themselves,
//! changes their password, sets up and removes an authenticator app, disconnects an
//! application they signed in to, and reads it all in their activity. Each step is saved
//! as a screenshot for the docs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod webdriver;

use e2e::Server;
use fantoccini::{Client, Locator};
use webdriver::{
    App, callback_listener, click_button, enrol_second_factor, find, log_in, next_callback, query,
    screenshot, start_login, type_into, wait_for_text,
};

const OLD_PASSWORD: &str = "the original passphrase 1";
const NEW_PASSWORD: &str = "a brand new passphrase 42";

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
    enrol_second_factor(browser, false).await;
    wait_for_text(browser, "Authenticator app").await;
    screenshot(browser, "account-mfa").await;
    click_button(browser, "Remove").await;
    wait_for_text(browser, "The factor was removed").await;

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
