//! Forgot password, through the pages and a real SMTP server (aiosmtpd): the link arrives by
//! mail and works once, within 30 minutes, while the password it was issued against is
//! unchanged; a user with a second factor needs a code too; the request page says the same
//! thing at the same speed for accounts that exist and accounts that do not; mail waits in
//! the outbox while the SMTP server is down and goes out when it is back.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::browser::{Browser, form, text_of};
use common::self_service::{
    NEW_PASSWORD, app_with_mail, app_with_mail_and, client, clocked_app_with_mail, event_count, logs_in,
};
use common::{Backend, PASSWORD, TestApp, spawn_app};
use e2e::smtp::SmtpServer;
use idp::domain::clock::ManualClock;
use reqwest::StatusCode;

/// Asks for a reset link for `login` on the forgot-password page; returns the answer page.
async fn request_link(app: &TestApp, browser: &Browser, login: &str) -> (StatusCode, String) {
    let (_, _, html) = browser
        .visit(&format!("{}/forgot-password", app.base))
        .await
        .page();
    let (status, _, html) = browser.submit(&form(&html).set("login", login)).await.page();
    (status, html)
}

/// The reset link of the newest mail to `address`, once `count` mails have arrived.
async fn reset_link(app: &TestApp, smtp: &SmtpServer, address: &str, count: usize) -> String {
    let prefix = format!("{}/reset-password?token=", app.base);
    let mails = smtp.wait_for_link(address, &prefix, count).await;
    mails[count - 1].link(&prefix)
}

async fn a_forgotten_password_is_reset_through_the_mailed_link(backend: Backend) {
    let smtp = SmtpServer::start().await;
    let app = app_with_mail(backend, &smtp).await;
    let user = app.add_user("ada").await;
    let client = client(&app).await;
    let before = app.tokens(&client, "ada", "openid offline_access").await;

    // The login page leads to the forgot-password page.
    let browser = app.browser();
    let (_, _, login) = browser
        .visit(&app.authorize_url(&client.id, "openid"))
        .await
        .page();
    assert!(login.contains("href=\"/forgot-password?interaction="), "{login}");

    let (status, html) = request_link(&app, &browser, "ada").await;
    assert_eq!(status, 200);
    assert!(text_of(&html, "#reset-sent").is_some(), "{html}");
    let prefix = format!("{}/reset-password?token=", app.base);
    let mails = smtp.wait_for_link("ada@example.com", &prefix, 1).await;
    let mail = &mails[0];
    assert_eq!(mail.from, "no-reply@example.com");
    assert_eq!(mail.subject, "Reset your AImpact Identity password");
    assert!(
        mail.html
            .as_deref()
            .unwrap_or_default()
            .contains("Choose a new password")
    );
    let link = mail.link(&prefix);

    let (status, _, html) = browser.visit(&link).await.page();
    assert_eq!(status, 200);
    assert!(
        !html.contains("name=\"code\""),
        "no second factor, no code field: {html}"
    );
    // A password outside the policy is refused and the link stays usable.
    let (status, _, html) = browser
        .submit(
            &form(&html)
                .set("new_password", "short")
                .set("confirm_password", "short"),
        )
        .await
        .page();
    assert_eq!(status, 400);
    let (status, _, html) = browser
        .submit(
            &form(&html)
                .set("new_password", NEW_PASSWORD)
                .set("confirm_password", NEW_PASSWORD),
        )
        .await
        .page();
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Password changed"), "{html}");

    // The reset ended every session and grant: the old refresh token is dead.
    let refreshed = app
        .token_request(
            &client,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", before["refresh_token"].as_str().unwrap()),
            ],
        )
        .await;
    assert_eq!(refreshed.status(), 400);
    let body: serde_json::Value = refreshed.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    assert!(
        !logs_in(&app, &client, "ada", PASSWORD).await,
        "the old password no longer works"
    );
    assert!(
        logs_in(&app, &client, "ada", NEW_PASSWORD).await,
        "the new one does"
    );

    // The link works once.
    let (status, _, html) = browser.visit(&link).await.page();
    assert_eq!(status, 400);
    assert!(html.contains("This link cannot be used"), "{html}");
    assert_eq!(event_count(&app, "password_reset_requested").await, 1);
    assert_eq!(event_count(&app, "password_reset").await, 1);
    let query = idp::audit::EventQuery {
        event_type: idp::audit::EventType::parse("password_reset"),
        limit: 1,
        ..Default::default()
    };
    let events = app.services.store.query_events(&query).await.unwrap();
    assert_eq!(events[0].user_id.as_deref(), Some(user.id.to_string().as_str()));
    assert_eq!(events[0].details["grants_revoked"], 1);
    // The outbox keeps no message once sent (the reset link, and the address verification
    // mailed when the account was created).
    let status = app.services.store.outbox_status().await.unwrap();
    assert_eq!((status.pending, status.sent), (0, 2));
}

async fn a_link_expires_after_30_minutes_and_dies_with_a_newer_link_or_password(backend: Backend) {
    let smtp = SmtpServer::start().await;
    let clock = ManualClock::at(chrono::Utc::now());
    // Four links for one account: its hourly limit (tested elsewhere) is lifted here.
    let app = clocked_app_with_mail(
        backend,
        &smtp,
        clock.clone(),
        &[("IDP_PASSWORD_RESET_PER_HOUR", "0")],
    )
    .await;
    app.add_user("ada").await;
    let browser = app.browser();

    request_link(&app, &browser, "ada").await;
    let first = reset_link(&app, &smtp, "ada@example.com", 1).await;
    clock.advance(chrono::Duration::minutes(31));
    assert_eq!(browser.visit(&first).await.page().0, 400, "expired");

    request_link(&app, &browser, "ada").await;
    let second = reset_link(&app, &smtp, "ada@example.com", 2).await;
    request_link(&app, &browser, "ada").await;
    let third = reset_link(&app, &smtp, "ada@example.com", 3).await;
    assert_eq!(
        browser.visit(&second).await.page().0,
        400,
        "replaced by the third"
    );
    assert_eq!(browser.visit(&third).await.page().0, 200);

    // An administrator's temporary password (any password change) kills the link.
    let admin_set = idp::manage::users::set_temporary_password_of(
        &app.services,
        "ada",
        &secrecy::SecretString::from("temporary passphrase 77"),
        idp::manage::Actor::Cli,
    )
    .await;
    assert!(admin_set.is_ok());
    assert_eq!(
        browser.visit(&third).await.page().0,
        400,
        "superseded by the new password"
    );
}

async fn a_user_with_a_second_factor_must_give_a_code_to_reset(backend: Backend) {
    let smtp = SmtpServer::start().await;
    let app = app_with_mail(backend, &smtp).await;
    app.add_user_as("root", true).await; // administrators enrol TOTP at first login
    let client = client(&app).await;
    app.tokens(&client, "root", "openid").await;
    let browser = app.browser();
    request_link(&app, &browser, "root@example.com").await;
    let link = reset_link(&app, &smtp, "root@example.com", 1).await;

    let (_, _, html) = browser.visit(&link).await.page();
    assert!(html.contains("name=\"code\""), "{html}");
    let fill = |html: &str, code: &str| {
        form(html)
            .set("code", code)
            .set("new_password", NEW_PASSWORD)
            .set("confirm_password", NEW_PASSWORD)
    };
    // The mailbox alone is not enough.
    let (status, _, html) = browser.submit(&fill(&html, "000000")).await.page();
    assert_eq!(status, 401);
    assert!(html.contains("The code is incorrect"), "{html}");
    assert!(logs_in(&app, &client, "root", PASSWORD).await, "nothing changed");
    // A recovery code does it (and is spent).
    let recovery = app.authenticator.recovery_codes.lock().unwrap()["root"][0].clone();
    let (status, _, html) = browser.submit(&fill(&html, &recovery)).await.page();
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Password changed"));
    assert_eq!(
        app.services
            .store
            .recovery_codes_left(app_user_id(&app, "root").await)
            .await
            .unwrap(),
        9
    );
}

async fn app_user_id(app: &TestApp, username: &str) -> uuid::Uuid {
    app.services
        .store
        .find_user_by_username(username)
        .await
        .unwrap()
        .unwrap()
        .id
}

async fn the_request_page_does_not_tell_whether_an_account_exists(backend: Backend) {
    let smtp = SmtpServer::start().await;
    // Forty requests from one address: its own limit (tested elsewhere) is lifted here.
    let app = app_with_mail_and(backend, &smtp, &[("IDP_PASSWORD_RESET_IP_PER_HOUR", "0")]).await;
    app.add_user("ada").await;
    let browser = app.browser();
    let (_, _, page) = browser
        .visit(&format!("{}/forgot-password", app.base))
        .await
        .page();
    let blank = form(&page);
    let mut timings: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
    let mut answers = Vec::new();
    // Interleaved, so that drift in the machine's load hits both alike.
    for round in 0..20 {
        for (i, login) in ["ada", "nobody-here"].into_iter().enumerate() {
            let started = Instant::now();
            let (status, _, html) = browser.submit(&blank.clone().set("login", login)).await.page();
            timings[i].push(started.elapsed());
            if round == 0 {
                answers.push((status, html));
            }
        }
    }
    assert_eq!(answers[0], answers[1], "the same status and page, word for word");
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (existing, missing) = (median(&mut timings[0]), median(&mut timings[1]));
    let gap = existing.abs_diff(missing);
    assert!(
        gap < Duration::from_millis(5),
        "medians {existing:?} (existing) and {missing:?} (missing) differ by {gap:?}"
    );
    // The existing account got its (rate-limited) mails; the missing one none.
    let prefix = format!("{}/reset-password?token=", app.base);
    smtp.wait_for_link("ada@example.com", &prefix, 2).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let resets = smtp
        .messages()
        .into_iter()
        .filter(|m| m.text.contains(&prefix))
        .count();
    assert_eq!(resets, 2, "2 per burst for one account, whatever was asked");
}

async fn without_smtp_the_page_says_so_and_the_cli_hands_out_a_link(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_user("ada").await;
    let browser = app.browser();
    let (status, _, html) = browser
        .visit(&format!("{}/forgot-password", app.base))
        .await
        .page();
    assert_eq!(status, 200);
    assert!(text_of(&html, "#mail-unavailable").is_some(), "{html}");

    let link = idp::manage::recovery::reset_link_for(&app.services, "ada", &idp::manage::Actor::Cli)
        .await
        .unwrap();
    assert!(
        link.starts_with(&format!("{}/reset-password?token=", app.base)),
        "{link}"
    );
    let (status, _, html) = browser.visit(&link).await.page();
    assert_eq!(status, 200);
    let (status, _, html) = browser
        .submit(
            &form(&html)
                .set("new_password", NEW_PASSWORD)
                .set("confirm_password", NEW_PASSWORD),
        )
        .await
        .page();
    assert_eq!(status, 200, "{html}");
    let missing =
        idp::manage::recovery::reset_link_for(&app.services, "nobody", &idp::manage::Actor::Cli).await;
    assert!(matches!(missing, Err(idp::manage::ManageError::NotFound(_))));
}

async fn mail_waits_in_the_outbox_while_smtp_is_down(backend: Backend) {
    let mut smtp = SmtpServer::start().await;
    let port = smtp.port;
    smtp.stop();
    let clock = ManualClock::at(chrono::Utc::now());
    let app = clocked_app_with_mail(backend, &smtp, clock.clone(), &[]).await;
    app.add_user("ada").await;
    let browser = app.browser();
    let (status, _) = request_link(&app, &browser, "ada").await;
    assert_eq!(status, 200, "the request does not wait for SMTP");
    // The first attempt fails and is scheduled again.
    let retried = "idp_mail_sent_total{template=\"password_reset\",outcome=\"retry\"} 1";
    let mut metrics = app.metrics().await;
    for _ in 0..100 {
        if metrics.contains(retried) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        metrics = app.metrics().await;
    }
    assert!(metrics.contains(retried), "{metrics}");
    let status = app.services.store.outbox_status().await.unwrap();
    assert_eq!(
        status.pending, 2,
        "the reset link and the address verification wait"
    );
    assert!(status.last_error.is_some(), "{status:?}");
    // The server comes back; at the retry time the message goes out.
    let smtp = SmtpServer::start_on(port).await;
    clock.advance(chrono::Duration::seconds(31));
    reset_link(&app, &smtp, "ada@example.com", 1).await;
}

async fn userinfo(app: &TestApp, access_token: &str) -> serde_json::Value {
    app.http
        .get(format!("{}/userinfo", app.base))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn an_address_is_verified_through_the_mailed_link_and_tokens_say_so(backend: Backend) {
    let smtp = SmtpServer::start().await;
    let app = app_with_mail(backend, &smtp).await;
    let user = app.add_user("ada").await;
    let client = client(&app).await;
    let before = app.tokens(&client, "ada", "openid email").await;
    let claims = userinfo(&app, before["access_token"].as_str().unwrap()).await;
    assert_eq!(claims["email"], "ada@example.com");
    assert_eq!(claims["email_verified"], false, "nothing proved yet");

    let prefix = format!("{}/verify-email?token=", app.base);
    let mails = smtp.wait_for_link("ada@example.com", &prefix, 1).await;
    assert_eq!(mails[0].subject, "Verify your email address for AImpact Identity");
    let link = mails[0].link(&prefix);
    let browser = app.browser();
    let (status, _, html) = browser.visit(&link).await.page();
    assert_eq!(status, 200);
    // Opening the link (as a mail scanner would) proves nothing; the button does.
    let unchanged = app.services.store.find_user(user.id).await.unwrap().unwrap();
    assert!(!unchanged.email_verified);
    let (status, _, html) = browser.submit(&form(&html)).await.page();
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Email address verified"), "{html}");

    let after = app.tokens(&client, "ada", "openid email").await;
    let claims = userinfo(&app, after["access_token"].as_str().unwrap()).await;
    assert_eq!(claims["email_verified"], true);
    let id_token = common::jwt_claims(after["id_token"].as_str().unwrap());
    if id_token.get("email_verified").is_some() {
        assert_eq!(id_token["email_verified"], true);
    }
    assert_eq!(event_count(&app, "email_verified").await, 1);
    assert_eq!(browser.visit(&link).await.page().0, 400, "used once");

    // A changed address is unverified again, mailed a new link, and the old link is void.
    idp::manage::users::update_profile(
        &app.services,
        user.id,
        idp::manage::users::ProfileChange {
            email: Some(Some("ada@new.example.org".into())),
            ..Default::default()
        },
        idp::manage::Actor::Cli,
    )
    .await
    .unwrap();
    let changed = app.services.store.find_user(user.id).await.unwrap().unwrap();
    assert!(!changed.email_verified);
    let mails = smtp.wait_for_link("ada@new.example.org", &prefix, 1).await;
    let new_link = mails[0].link(&prefix);
    let (status, _, html) = browser.visit(&new_link).await.page();
    assert_eq!(status, 200);
    assert!(html.contains("ada@new.example.org"));
    // The old address is told, in case the change was not the user's.
    let to_old = smtp.wait_for("ada@example.com", 2).await;
    assert_eq!(
        to_old[1].subject,
        "The email address of your AImpact Identity account changed"
    );
    assert!(
        to_old[1].text.contains("to ada@new.example.org"),
        "{}",
        to_old[1].text
    );
}

async fn an_invited_user_chooses_a_password_through_the_mailed_link(backend: Backend) {
    let smtp = SmtpServer::start().await;
    let app = app_with_mail(backend, &smtp).await;
    let client = client(&app).await;
    let invite = idp::manage::users::Invite {
        username: "nia".into(),
        email: "nia@example.com".into(),
        name: Some("Nia".into()),
        admin: false,
    };
    let (user, link) = idp::manage::users::invite(&app.services, invite, idp::manage::Actor::Cli)
        .await
        .unwrap();
    assert!(link.is_none(), "mailed, not printed");
    assert!(!logs_in(&app, &client, "nia", "").await, "no password yet");
    let prefix = format!("{}/accept-invitation?token=", app.base);
    let mails = smtp.wait_for_link("nia@example.com", &prefix, 1).await;
    assert_eq!(mails[0].subject, "You are invited to AImpact Identity");
    let link = mails[0].link(&prefix);
    let browser = app.browser();
    let (status, _, html) = browser.visit(&link).await.page();
    assert_eq!(status, 200);
    assert!(html.contains("Welcome, choose your password"), "{html}");
    let (status, _, html) = browser
        .submit(
            &form(&html)
                .set("new_password", NEW_PASSWORD)
                .set("confirm_password", NEW_PASSWORD),
        )
        .await
        .page();
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("your account is ready"), "{html}");
    assert!(logs_in(&app, &client, "nia", NEW_PASSWORD).await);
    let nia = app.services.store.find_user(user.id).await.unwrap().unwrap();
    assert!(nia.email_verified, "the invitation reached the mailbox");
    assert_eq!(browser.visit(&link).await.page().0, 400, "used once");
}

async fn a_client_requiring_a_verified_address_waits_until_it_is(backend: Backend) {
    let smtp = SmtpServer::start().await;
    let app = app_with_mail(backend, &smtp).await;
    app.add_user("ada").await;
    app.add_user("bob").await;
    let client = app
        .add_client(false, |c| {
            c.first_party = true;
            c.require_verified_email = true;
        })
        .await;
    let login = |browser: Browser, username: &'static str| {
        let url = app.authorize_url(&client.id, "openid email");
        async move {
            let (_, _, html) = browser.visit(&url).await.page();
            let landing = browser
                .submit(&form(&html).set("username", username).set("password", PASSWORD))
                .await;
            (browser, landing)
        }
    };
    let (browser, landing) = login(app.browser(), "ada").await;
    let (status, url, gate) = landing.page();
    assert_eq!(status, StatusCode::OK);
    assert!(url.contains("/login/verify-email"), "{url}");
    assert!(gate.contains("needs a verified email address"), "{gate}");

    // Nothing is issued without the user: prompt=none says so (OIDC Core §3.1.2.6).
    let silent = format!("{}&prompt=none", app.authorize_url(&client.id, "openid email"));
    let error = browser.visit(&silent).await.query("error");
    assert_eq!(error.as_deref(), Some("interaction_required"));

    // Continue before verifying: the same page, saying so.
    let (status, _, html) = browser
        .submit(&form(&gate).set("decision", "continue"))
        .await
        .page();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("not verified yet"), "{html}");

    let (status, _, html) = browser.submit(&form(&html).set("decision", "send")).await.page();
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("We sent a link to ada@example.com"), "{html}");
    let prefix = format!("{}/verify-email?token=", app.base);
    let mails = smtp.wait_for_link("ada@example.com", &prefix, 2).await;
    let link = mails[1].link(&prefix);
    let mailbox = app.browser();
    let (_, _, confirm) = mailbox.visit(&link).await.page();
    let (status, _, _) = mailbox.submit(&form(&confirm)).await.page();
    assert_eq!(status, StatusCode::OK);

    let back = browser.submit(&form(&html).set("decision", "continue")).await;
    assert!(
        back.query("code").is_some(),
        "verified: the login ends at the client"
    );

    // Cancelling answers the client with access_denied.
    let (browser, landing) = login(app.browser(), "bob").await;
    let (_, _, gate) = landing.page();
    let error = browser
        .submit(&form(&gate).set("decision", "cancel"))
        .await
        .query("error");
    assert_eq!(error.as_deref(), Some("access_denied"));
}

on_both_backends!(
    a_client_requiring_a_verified_address_waits_until_it_is,
    an_invited_user_chooses_a_password_through_the_mailed_link,
    an_address_is_verified_through_the_mailed_link_and_tokens_say_so,
    a_forgotten_password_is_reset_through_the_mailed_link,
    a_link_expires_after_30_minutes_and_dies_with_a_newer_link_or_password,
    a_user_with_a_second_factor_must_give_a_code_to_reset,
    the_request_page_does_not_tell_whether_an_account_exists,
    without_smtp_the_page_says_so_and_the_cli_hands_out_a_link,
    mail_waits_in_the_outbox_while_smtp_is_down,
);
