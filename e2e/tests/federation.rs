//! Signing in with another identity provider, in real headless Chromium: the login page's
//! "Continue with" button, the upstream's own login page (a second `idp` on `localhost`), the
//! link page where carla proves her account here, and the next sign-in straight through the
//! upstream, then with a second factor the application requires. Screenshots:
//! `federation-login`, `federation-link`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod webdriver;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use e2e::{Server, idp_binary};
use fantoccini::{Client, Locator};
use webdriver::{
    App, callback_listener, find, log_in, next_callback, open_login_page, query, screenshot, wait_for_text,
};

const PASSWORD: &str = "carla's long passphrase 7";

/// Waits until the browser is on a page under `base`.
async fn wait_until_at(browser: &Client, base: &str) {
    for _ in 0..200 {
        if browser
            .current_url()
            .await
            .is_ok_and(|u| u.as_str().starts_with(base))
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the browser never reached {base}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn carla_links_her_account_then_signs_in_with_the_upstream() {
    let here = Server::start(&[]);
    let upstream = Server::start_on_localhost(&[]);
    let upstream_base = upstream.base.clone();
    // At the upstream, this provider is a first-party client; carla has an identity there.
    let callback = format!("{}/upstream/corp/callback", here.base);
    upstream.add_user(&["carla", "--email", "carla@example.com"], PASSWORD);
    let at_upstream = App::register(upstream, callback, "AImpact federation");
    // Here, carla has an account of her own, and the upstream is registered without
    // just-in-time accounts: an unknown identity is linked to an account its owner proves.
    here.add_user(&["carla", "--email", "carla@example.com"], PASSWORD);
    let mut add = Command::new(idp_binary())
        .current_dir(here.dir.path())
        .args([
            "upstream",
            "add",
            "--name",
            "corp",
            "--display-name",
            "Corporate login",
            "--issuer",
            &upstream_base,
            "--client-id",
            &at_upstream.client_id,
            "--client-secret-stdin",
            "--scope",
            "email",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    add.stdin
        .take()
        .unwrap()
        .write_all(at_upstream.client_secret.as_bytes())
        .unwrap();
    assert!(add.wait().unwrap().success());
    let (port, callback) = callback_listener();
    let app = App::register(here, format!("http://127.0.0.1:{port}/callback"), "Federated app");

    let session = webdriver::open().await;
    let browser = &session.client;
    open_login_page(browser, &app).await;
    let button = find(browser, Locator::Css("a.upstream")).await;
    assert_eq!(button.text().await.unwrap(), "Continue with Corporate login");
    screenshot(browser, "federation-login").await;
    button.click().await.unwrap();

    // The upstream's login page; then back here, on the link page.
    wait_until_at(browser, &upstream_base).await;
    log_in(browser, "carla", PASSWORD).await;
    wait_until_at(browser, &app.server.base).await;
    wait_for_text(browser, "Link your Corporate login account").await;
    screenshot(browser, "federation-link").await;
    log_in(browser, "carla", PASSWORD).await;
    let back = next_callback(&callback).await;
    let amr = app.amr(&query(&back, "code").unwrap()).await;
    assert_eq!(amr, ["pwd"], "carla proved her account here with her password");

    // Linked: the next sign-in goes through the upstream (still signed in there) and
    // straight back to the application, with no password typed here.
    open_login_page(browser, &app).await;
    find(browser, Locator::Css("a.upstream"))
        .await
        .click()
        .await
        .unwrap();
    let back = next_callback(&callback).await;
    let amr = app.amr(&query(&back, "code").unwrap()).await;
    assert_eq!(amr, ["fed", "pwd"]);

    // The application now requires a second factor: after the upstream's redirect, carla
    // enrols one here (the page and its form bound to this browser across that cross-site
    // redirect), and the login ends with it.
    app.idp(&["client", "update", &app.client_id, "--mfa", "required"]);
    tokio::time::sleep(Duration::from_millis(1500)).await; // the client cache's lifetime
    open_login_page(browser, &app).await;
    find(browser, Locator::Css("a.upstream"))
        .await
        .click()
        .await
        .unwrap();
    webdriver::enrol_second_factor(browser, false).await;
    let back = next_callback(&callback).await;
    let amr = app.amr(&query(&back, "code").unwrap()).await;
    assert_eq!(amr[..2], ["fed", "pwd"]);
    assert!(amr.iter().any(|m| m == "mfa"), "{amr:?}");
}
