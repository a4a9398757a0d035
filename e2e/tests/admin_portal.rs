//! An administrator runs the provider from the portal in real headless Chromium: logs in
//! through the provider's own login page as the bootstrap admin, creates and finds a user,
//! registers a client and uses it in an OIDC flow, disables the user and sees their login
//! fail, finds that failure in the security events, and rotates the signing keys. Each
//! page is saved as a screenshot in e2e/screenshots/.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod webdriver;

use base64::Engine;
use e2e::Server;
use fantoccini::{Client, Locator};
use serde_json::Value;
use sha2::Digest;
use webdriver::{click_button, find, log_in, screenshot, type_into, wait_for_text};

const ADMIN_PASSWORD: &str = "e2e-admin-password";
const EVE_PASSWORD: &str = "eve's long password 7";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

/// Starts an OIDC login for `client_id` in `browser` and returns at the provider's page.
async fn authorize(browser: &Client, base: &str, client_id: &str, redirect_uri: &str) {
    let challenge =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(VERIFIER.as_bytes()));
    let mut url = url::Url::parse(&format!("{base}/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid profile")
        .append_pair("state", "portal-e2e")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    browser.goto(url.as_str()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_runs_the_provider_from_the_portal() {
    let server = Server::start(&[("IDP_BOOTSTRAP_ADMIN_PASSWORD", ADMIN_PASSWORD)]);
    let base = server.base.clone();
    let admin_session = webdriver::open().await;
    let admin = &admin_session.client;

    // Not logged in: the portal sends the browser to the provider's login page.
    admin.goto(&format!("{base}/admin/")).await.unwrap();
    find(admin, Locator::Css("#username")).await;
    assert!(
        admin
            .current_url()
            .await
            .unwrap()
            .path()
            .starts_with("/authorize")
            || admin.current_url().await.unwrap().path().starts_with("/login")
    );
    screenshot(admin, "portal-login").await;
    log_in(admin, "admin", ADMIN_PASSWORD).await;
    // Administrators sign in with a second factor: the first login enrols one.
    let (key, recovery) = webdriver::enrol_second_factor(admin, true).await;
    assert_eq!(recovery.len(), 10);
    find(admin, Locator::Css("#portal-ready")).await;
    wait_for_text(admin, "Failed logins (24 h)").await;
    assert_eq!(admin.current_url().await.unwrap().path(), "/admin/");
    screenshot(admin, "portal-overview").await;

    // Create a user.
    find(admin, Locator::Css("a[href='/admin/users']"))
        .await
        .click()
        .await
        .unwrap();
    click_button(admin, "New user").await;
    type_into(admin, "form[aria-label='New user'] input[name=username]", "eve").await;
    type_into(
        admin,
        "form[aria-label='New user'] input[name=email]",
        "eve@example.com",
    )
    .await;
    type_into(
        admin,
        "form[aria-label='New user'] input[name=name]",
        "Eve Example",
    )
    .await;
    // Validation happens before anything is sent.
    type_into(admin, "form[aria-label='New user'] input[name=password]", "short").await;
    click_button(admin, "Create user").await;
    wait_for_text(admin, "at least 12 characters").await;
    type_into(
        admin,
        "form[aria-label='New user'] input[name=password]",
        EVE_PASSWORD,
    )
    .await;
    find(
        admin,
        Locator::Css("form[aria-label='New user'] input[name=temporary]"),
    )
    .await
    .click()
    .await
    .unwrap();
    click_button(admin, "Create user").await;
    find(admin, Locator::XPath("//table//a[normalize-space()='eve']")).await;
    screenshot(admin, "portal-users").await;

    // Find them by search.
    type_into(admin, "input[name=q]", "Eve Ex").await;
    click_button(admin, "Search").await;
    for _ in 0..50 {
        if admin.find_all(Locator::Css("tbody tr")).await.unwrap().len() == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let rows = admin.find_all(Locator::Css("tbody tr")).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert!(rows[0].text().await.unwrap().contains("eve@example.com"));

    // Register a client and use it in an OIDC flow (in another browser, as eve).
    let (callback_port, callback) = webdriver::callback_listener();
    let redirect_uri = format!("http://127.0.0.1:{callback_port}/callback");
    find(admin, Locator::Css("a[href='/admin/clients']"))
        .await
        .click()
        .await
        .unwrap();
    click_button(admin, "Register client").await;
    type_into(
        admin,
        "form[aria-label='Client settings'] input[name=name]",
        "Portal-made app",
    )
    .await;
    type_into(
        admin,
        "form[aria-label='Client settings'] textarea[name=redirect_uris]",
        &redirect_uri,
    )
    .await;
    click_button(admin, "Register").await;
    let client_id = find(admin, Locator::Css("#new-client-id"))
        .await
        .text()
        .await
        .unwrap();
    let client_secret = find(admin, Locator::Css("#new-client-secret"))
        .await
        .text()
        .await
        .unwrap();
    screenshot(admin, "portal-client-registered").await;
    assert!(client_secret.len() >= 32);

    let user_session = webdriver::open().await;
    let user = &user_session.client;
    authorize(user, &base, &client_id, &redirect_uri).await;
    log_in(user, "eve", EVE_PASSWORD).await;
    find(user, Locator::Css("button[value=allow]"))
        .await
        .click()
        .await
        .unwrap();
    let back = webdriver::next_callback(&callback).await;
    let code = webdriver::query(&back, "code").expect("a code");
    let tokens: Value = reqwest::Client::new()
        .post(format!("{base}/token"))
        .basic_auth(&client_id, Some(&client_secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &redirect_uri),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(tokens["id_token"].is_string(), "{tokens}");

    // Disable eve: her session ends and her password no longer logs her in.
    find(admin, Locator::Css("a[href='/admin/users']"))
        .await
        .click()
        .await
        .unwrap();
    find(admin, Locator::XPath("//table//a[normalize-space()='eve']"))
        .await
        .click()
        .await
        .unwrap();
    wait_for_text(admin, "eve@example.com").await;
    screenshot(admin, "portal-user-detail").await;
    click_button(admin, "Disable").await;
    find(admin, Locator::Css("button[data-confirm=yes]"))
        .await
        .click()
        .await
        .unwrap();
    wait_for_text(admin, "User disabled").await;

    authorize(user, &base, &client_id, &redirect_uri).await;
    log_in(user, "eve", EVE_PASSWORD).await;
    wait_for_text(user, "Incorrect username or password.").await;
    screenshot(user, "login-refused-for-disabled-user").await;

    // The failed login is in the security events; filter down to it.
    find(admin, Locator::Css("a[href='/admin/events']"))
        .await
        .click()
        .await
        .unwrap();
    find(admin, Locator::Css("select[name=type]")).await;
    admin
        .find(Locator::Css("select[name=type]"))
        .await
        .unwrap()
        .select_by_value("login_failed")
        .await
        .unwrap();
    type_into(admin, "input[name=user]", "eve").await;
    click_button(admin, "Filter").await;
    let row = find(admin, Locator::XPath("//table[contains(@class,'events')]//tr[td[normalize-space()='login_failed'] and td[normalize-space()='eve']]")).await;
    row.click().await.unwrap();
    let drawer = find(admin, Locator::Css("aside.drawer")).await;
    assert!(
        drawer.text().await.unwrap().contains("disabled"),
        "the reason is shown"
    );
    screenshot(admin, "portal-events").await;

    // Rotate the signing keys.
    find(admin, Locator::Css("a[href='/admin/keys']"))
        .await
        .click()
        .await
        .unwrap();
    find(admin, Locator::Css("table")).await;
    click_button(admin, "Rotate keys").await;
    find(admin, Locator::Css("button[data-confirm=yes]"))
        .await
        .click()
        .await
        .unwrap();
    wait_for_text(admin, "new keys published").await;
    let pending = admin.find_all(Locator::Css(".badge.pending")).await.unwrap();
    assert_eq!(
        pending.len(),
        4,
        "one staged key per algorithm: RS256, PS256, ES256, EdDSA"
    );
    screenshot(admin, "portal-keys").await;

    // Register a resource server (RFC 8707) and see it listed.
    find(admin, Locator::Css("a[href='/admin/resources']"))
        .await
        .click()
        .await
        .unwrap();
    type_into(admin, "input[name=identifier]", "https://api.example.com/orders").await;
    type_into(admin, "input[name=scopes]", "orders:read").await;
    click_button(admin, "Register").await;
    wait_for_text(admin, "Resource server https://api.example.com/orders registered").await;
    find(
        admin,
        Locator::XPath("//table//code[normalize-space()='https://api.example.com/orders']"),
    )
    .await;
    screenshot(admin, "portal-resources").await;

    // Register an identity provider (this very provider stands in for one) and test the
    // connection: its discovery document is fetched and names its issuer.
    find(admin, Locator::Css("a[href='/admin/upstreams']"))
        .await
        .click()
        .await
        .unwrap();
    type_into(admin, "input[name=slug]", "corp").await;
    type_into(admin, "input[name=display_name]", "Corporate login").await;
    type_into(admin, "input[name=issuer]", &base).await;
    type_into(admin, "input[name=client_id]", "aimpact").await;
    type_into(admin, "input[name=client_secret]", "upstream-secret").await;
    click_button(admin, "Register").await;
    wait_for_text(admin, "/upstream/corp/callback").await;
    click_button(admin, "Test connection").await;
    wait_for_text(admin, "corp: connected").await;
    assert!(
        !admin.source().await.unwrap().contains("upstream-secret"),
        "the secret is not shown"
    );
    // Edit it: the form fills with its settings; the secret stays unless a new one is typed.
    click_button(admin, "Edit").await;
    wait_for_text(admin, "Edit corp").await;
    type_into(admin, "input[name=display_name]", "Corporate sign-in").await;
    type_into(admin, "input[name=claim_email]", "mail").await;
    click_button(admin, "Save changes").await;
    wait_for_text(admin, "Corporate sign-in saved.").await;

    // GitHub: a plain OAuth 2.0 provider whose endpoints and claims are filled in.
    admin
        .find(Locator::Css("select[name=kind]"))
        .await
        .unwrap()
        .select_by_value("github")
        .await
        .unwrap();
    find(admin, Locator::Css("input[name=userinfo_endpoint]")).await;
    type_into(admin, "input[name=slug]", "github").await;
    type_into(admin, "input[name=display_name]", "GitHub").await;
    type_into(admin, "input[name=client_id]", "Iv1.abc").await;
    type_into(admin, "input[name=client_secret]", "github-secret").await;
    click_button(admin, "Register").await;
    wait_for_text(admin, "/upstream/github/callback").await;
    find(
        admin,
        Locator::XPath("//table//td[normalize-space()='OAuth 2.0']"),
    )
    .await;
    screenshot(admin, "portal-identity-providers").await;

    // Deep links survive a reload (history-API fallback), and unknown ones say so.
    admin.goto(&format!("{base}/admin/events")).await.unwrap();
    find(admin, Locator::Css("select[name=type]")).await;
    admin.goto(&format!("{base}/admin/no/such/page")).await.unwrap();
    wait_for_text(admin, "Page not found").await;

    // At a narrow laptop width the layout still works.
    admin.set_window_size(900, 800).await.unwrap();
    admin.goto(&format!("{base}/admin/users")).await.unwrap();
    find(admin, Locator::XPath("//table//a[normalize-space()='eve']")).await;
    screenshot(admin, "portal-users-narrow").await;

    // Logging out ends the provider session too: the portal asks for a login again.
    click_button(admin, "Log out").await;
    for _ in 0..100 {
        if admin.current_url().await.unwrap().path() != "/admin/users" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    admin.goto(&format!("{base}/admin/")).await.unwrap();
    find(admin, Locator::Css("#username")).await;

    // The next login asks for the authenticator's code after the password (the enrolment
    // used this time step's code, so the app's next one).
    log_in(admin, "admin", ADMIN_PASSWORD).await;
    find(admin, Locator::Css("#code")).await;
    screenshot(admin, "mfa-code").await;
    type_into(admin, "#code", &webdriver::totp_code(&key, 1)).await;
    click_button(admin, "Verify").await;
    find(admin, Locator::Css("#portal-ready")).await;
}
