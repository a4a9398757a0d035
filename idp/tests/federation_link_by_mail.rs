//! An account's owner without its password (lost, or never set) can still link an upstream
//! identity to it: the link page's "Forgot your password?" mails a reset link to the
//! account's address (the proof by email), and the new password (with every second factor)
//! then makes the link. Nothing is linked before that proof.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::browser::{Landing, form};
use common::federation::{continue_with_upstream, events, federation_at, redeem};
use common::self_service::{NEW_PASSWORD, app_with_mail};
use common::{Backend, TestApp};
use e2e::smtp::SmtpServer;

async fn verify_email(app: &TestApp, user: &idp::domain::user::User) {
    let email = user.email.as_ref().unwrap().as_str().to_string();
    let now = app.services.clock.now();
    let store = &app.services.store;
    assert!(store.mark_email_verified(user.id, &email, now).await.unwrap());
}

async fn an_owner_without_the_password_links_after_a_mailed_reset(backend: Backend) {
    let smtp = SmtpServer::start().await;
    let f = federation_at(
        app_with_mail(backend, &smtp).await,
        idp::domain::upstream::TokenAuth::ClientSecretBasic,
    )
    .await;
    // dora's account here has no password at all (as one made by another provider).
    let now = f.app.services.clock.now();
    let new = common::fixtures::new_user("dora");
    let local = f.app.services.store.create_user(&new, None, now).await.unwrap();
    verify_email(&f.app, &local).await;
    let remote = f.upstream.add_user("dora").await;
    verify_email(&f.upstream, &remote).await;

    // The link page, then "Forgot your password?" from it.
    let browser = f.app.browser();
    let (status, _, html) = continue_with_upstream(&f, &browser, "dora").await.page();
    assert_eq!(status, 200);
    assert!(html.contains("Link your Corporate login account"), "{html}");
    let forgot = html
        .split("href=\"")
        .find_map(|rest| {
            rest.split('"')
                .next()
                .filter(|h| h.starts_with("/forgot-password"))
        })
        .expect("the link page offers a password reset")
        .replace("&amp;", "&");
    let (_, _, html) = browser.visit(&format!("{}{forgot}", f.app.base)).await.page();
    let (status, _, _) = browser.submit(&form(&html).set("login", "dora")).await.page();
    assert_eq!(status, 200);
    let prefix = format!("{}/reset-password?token=", f.app.base);
    let mails = smtp.wait_for_link("dora@example.com", &prefix, 1).await;
    assert!(
        f.app
            .services
            .store
            .identities_of_user(local.id)
            .await
            .unwrap()
            .is_empty(),
        "asking for the mail links nothing"
    );

    // The mailed link sets a new password.
    let (_, _, html) = browser.visit(&mails[0].link(&prefix)).await.page();
    let (status, _, html) = browser
        .submit(
            &form(&html)
                .set("new_password", NEW_PASSWORD)
                .set("confirm_password", NEW_PASSWORD),
        )
        .await
        .page();
    assert_eq!(status, 200, "{html}");

    // Back to the application and through the provider (a fresh browser: this one is still
    // signed in there): the link page again, and the new password links dora.
    let browser = f.app.browser();
    let (status, url, html) = continue_with_upstream(&f, &browser, "dora").await.page();
    assert!(html.contains("Link your Corporate login account"), "{html}");
    let link_page = Landing::Page { status, url, html };
    let proven = browser.log_in_and_consent(link_page, "dora", NEW_PASSWORD).await;
    let claims = redeem(&f, proven).await;
    assert_eq!(claims["sub"], local.id.to_string());
    let links = f.app.services.store.identities_of_user(local.id).await.unwrap();
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].subject, remote.id.to_string());
    let linked = events(&f.app, "identity_linked").await;
    assert_eq!(linked.len(), 1);
    assert_eq!(linked[0].details["by"], "proof");
}

on_both_backends!(an_owner_without_the_password_links_after_a_mailed_reset);
