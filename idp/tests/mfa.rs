//! Second factors through the login pages and a relying party: TOTP enrolment and codes
//! (drift, replay, brute force), recovery codes, step-up with `acr_values`, policies that
//! force enrolment, and the admin API's demand that administrators use one.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod admin_support;
mod common;

use chrono::Duration;
use common::browser::{Browser, Landing, form};
use common::{
    Backend, PASSWORD, REDIRECT, Registered, TestApp, TestDb, jwt_claims as claims, spawn_app, spawn_app_at,
    spawn_app_with,
};
use idp::domain::clock::ManualClock;
use idp::domain::mfa::MfaPolicy;
use openidconnect::core::CoreAuthenticationFlow;
use openidconnect::{
    AuthenticationContextClass, AuthorizationCode, CsrfToken, Nonce, PkceCodeChallenge, Scope, TokenResponse,
};
use reqwest::StatusCode;
use serde_json::Value;

const ACR_MFA: &str = "urn:aimpact:acr:mfa";
const ACR_PWD: &str = "urn:aimpact:acr:pwd";

async fn client(app: &TestApp, mfa: Option<MfaPolicy>) -> Registered {
    app.add_client(false, |c| {
        c.first_party = true;
        c.mfa = mfa;
    })
    .await
}

/// Logs in on the login page the authorization request leads to; returns the page after the
/// password (the second-factor page, an enrolment page, or the client).
async fn password_step(
    app: &TestApp,
    browser: &Browser,
    client: &Registered,
    username: &str,
    extra: &str,
) -> Landing {
    let url = format!("{}{extra}", app.authorize_url(&client.id, "openid"));
    let (_, _, html) = browser.visit(&url).await.page();
    browser
        .submit(&form(&html).set("username", username).set("password", PASSWORD))
        .await
}

fn page_html(landing: Landing) -> (StatusCode, String) {
    let (status, _, html) = landing.page();
    (status, html)
}

async fn exchange(app: &TestApp, client: &Registered, code: &str) -> Value {
    let response = app
        .token_request(
            client,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", common::VERIFIER),
            ],
        )
        .await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn event_count(app: &TestApp, kind: &str) -> usize {
    let query = idp::audit::EventQuery {
        event_type: idp::audit::EventType::parse(kind),
        limit: 100,
        ..Default::default()
    };
    app.services.store.query_events(&query).await.unwrap().len()
}

async fn an_administrator_enrols_at_first_login_then_always_gives_a_code(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_user_as("ada", true).await;
    let client = client(&app, None).await;
    let browser = app.browser();
    let (status, html) = page_html(password_step(&app, &browser, &client, "ada", "").await);
    assert_eq!(status, 200);
    let key = common::browser::text_of(&html, "#manual-key").expect("the enrolment page shows the key");
    assert!(html.contains("<svg"), "and the QR code, drawn on the server");
    // A wrong first code does not enrol.
    let wrong = browser.submit(&form(&html).set("code", "000000")).await;
    let (status, html) = page_html(wrong);
    assert_eq!(status, 400);
    assert!(html.contains("not right"));
    app.authenticator.enrol("ada", &key);
    let code = app.authenticator.fresh_code("ada").await;
    let (_, html) = page_html(browser.submit(&form(&html).set("code", &code)).await);
    let codes =
        common::browser::all_text_of(&html, "#recovery-codes code").expect("recovery codes shown once");
    assert_eq!(codes.len(), 10);
    let back = browser.submit(&form(&html)).await.client_url();
    let code = back
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let tokens = exchange(&app, &client, &code).await;
    let id_token = claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id_token["acr"], ACR_MFA);
    assert_eq!(id_token["amr"], serde_json::json!(["pwd", "otp", "mfa"]));
    let access = claims(tokens["access_token"].as_str().unwrap());
    assert_eq!(access["acr"], ACR_MFA, "RFC 9068 §2.2.1 in the access token too");
    assert_eq!(event_count(&app, "mfa_enrolled").await, 1);

    // The next login, in another browser, asks for a code: wrong, then right.
    let other = app.browser();
    let (status, html) = page_html(password_step(&app, &other, &client, "ada", "").await);
    assert_eq!(status, 200);
    assert!(common::browser::posts_to(&html, "/mfa"), "{html}");
    let (status, html) = page_html(other.submit(&form(&html).set("code", "123456")).await);
    assert_eq!(status, 401);
    let code = app.authenticator.fresh_code("ada").await;
    let back = other.submit(&form(&html).set("code", &code)).await.client_url();
    assert!(back.as_str().starts_with(REDIRECT));
    assert_eq!(event_count(&app, "mfa_failed").await, 1);
    assert!(event_count(&app, "mfa_succeeded").await >= 1);
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("idp_mfa_verifications_total{factor=\"totp\",outcome=\"failure\"} 1"),
        "{metrics}"
    );
}

async fn a_code_is_accepted_once_within_one_step_of_drift(backend: Backend) {
    let clock = ManualClock::at(chrono::Utc::now());
    let app = spawn_app_at(backend, clock.clone()).await;
    app.add_user_as("ada", true).await;
    let client = client(&app, None).await;
    app.tokens(&client, "ada", "openid").await; // enrols
    let step = app.authenticator.current_step();
    let login = |browser: Browser| {
        let app = &app;
        let client = &client;
        async move {
            let (_, html) = page_html(password_step(app, &browser, client, "ada", "").await);
            (browser, html)
        }
    };
    // Two steps ahead: too far.
    let (browser, html) = login(app.browser()).await;
    let far = app.authenticator.code_at_step("ada", step + 2);
    assert_eq!(
        page_html(browser.submit(&form(&html).set("code", &far)).await).0,
        401
    );
    // The next step's code (the user's phone runs 30 s fast) is accepted.
    let ahead = app.authenticator.code_at_step("ada", step + 1);
    let (browser, html) = login(app.browser()).await;
    assert!(matches!(
        browser.submit(&form(&html).set("code", &ahead)).await,
        Landing::Client(_)
    ));
    // The same code again, from another browser: refused (RFC 6238 §5.2).
    let (browser, html) = login(app.browser()).await;
    assert_eq!(
        page_html(browser.submit(&form(&html).set("code", &ahead)).await).0,
        401
    );
    // So is the current step's: it is older than the one used.
    let current = app.authenticator.code_at_step("ada", step);
    assert_eq!(
        page_html(browser.submit(&form(&html).set("code", &current)).await).0,
        401
    );
    // A minute later, the then-current code works.
    clock.advance(Duration::seconds(60));
    let later = app
        .authenticator
        .code_at_step("ada", app.authenticator.current_step());
    assert!(matches!(
        browser.submit(&form(&html).set("code", &later)).await,
        Landing::Client(_)
    ));
}

async fn a_recovery_code_works_once_and_says_how_many_remain(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_user_as("ada", true).await;
    let client = client(&app, None).await;
    app.tokens(&client, "ada", "openid").await;
    let code = app.authenticator.recovery_codes.lock().unwrap()["ada"][3].clone();
    let browser = app.browser();
    let (_, html) = page_html(password_step(&app, &browser, &client, "ada", "").await);
    // Typed in capitals with spaces: the same code.
    let typed = code.to_uppercase().replace('-', " ");
    let (status, html) = page_html(browser.submit(&form(&html).set("code", &typed)).await);
    assert_eq!(status, 200);
    assert!(html.contains("You have 9 recovery codes left"), "{html}");
    // New codes on demand: ten fresh ones replace the old.
    let renew = form(&html).with_action("/mfa/recovery-codes/new");
    let (status, html) = page_html(browser.submit(&renew).await);
    assert_eq!(status, 200);
    let fresh = common::browser::all_text_of(&html, "#recovery-codes code").unwrap();
    assert_eq!(fresh.len(), 10);
    assert!(!fresh.contains(&code));
    assert!(matches!(browser.submit(&form(&html)).await, Landing::Client(_)));
    assert_eq!(event_count(&app, "recovery_code_used").await, 1);
    assert_eq!(event_count(&app, "recovery_codes_regenerated").await, 1);
    // An old code no longer works; a new one does.
    let old = app.authenticator.recovery_codes.lock().unwrap()["ada"][5].clone();
    let other = app.browser();
    let (_, html) = page_html(password_step(&app, &other, &client, "ada", "").await);
    let (status, html) = page_html(other.submit(&form(&html).set("code", &old)).await);
    assert_eq!(status, 401);
    let (status, _) = page_html(other.submit(&form(&html).set("code", &fresh[0])).await);
    assert_eq!(status, 200);
    let again = app.browser();
    let (_, html) = page_html(password_step(&app, &again, &client, "ada", "").await);
    assert_eq!(
        page_html(again.submit(&form(&html).set("code", &code)).await).0,
        401
    );
}

async fn wrong_codes_lock_the_source_and_the_password_does_not_reset_the_count(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_user_as("ada", true).await;
    let client = client(&app, None).await;
    app.tokens(&client, "ada", "openid").await;
    let browser = app.browser();
    let mut refused = false;
    for attempt in 0..6 {
        // Each round proves the password again, then guesses: the count still grows.
        let (_, html) = page_html(password_step(&app, &browser, &client, "ada", "").await);
        if !common::browser::posts_to(&html, "/mfa") {
            refused = html.contains("Too many attempts");
            assert!(refused, "attempt {attempt}: {html}");
            break;
        }
        let (status, _) = page_html(browser.submit(&form(&html).set("code", "000000")).await);
        if status == 429 {
            refused = true;
            break;
        }
        assert_eq!(status, 401);
    }
    assert!(
        refused,
        "wrong codes lock the (account, source) pair like wrong passwords"
    );
}

async fn a_step_from_another_browser_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_user_as("ada", true).await;
    let client = client(&app, None).await;
    app.tokens(&client, "ada", "openid").await;
    let (_, _, url_html) = {
        let browser = app.browser();
        let landing = password_step(&app, &browser, &client, "ada", "").await;
        landing.page()
    };
    // The sealed interaction of the code page, carried to a browser that never gave the
    // password (a leaked URL): nothing is shown, nothing accepted.
    let sealed = form(&url_html)
        .fields
        .iter()
        .find(|(k, _)| k == "interaction")
        .unwrap()
        .1
        .clone();
    let thief = app.browser();
    let (_, _, login_html) = thief.visit(&app.authorize_url(&client.id, "openid")).await.page();
    let stolen = form(&login_html)
        .with_action("/mfa")
        .set("interaction", &sealed)
        .set("code", &app.authenticator.fresh_code("ada").await);
    let (status, html) = page_html(thief.submit(&stolen).await);
    assert_eq!(status, 400);
    assert!(html.contains("not available"), "{html}");
    let (status, _) = page_html(
        thief
            .visit(&format!("{}/mfa?interaction={sealed}", app.base))
            .await,
    );
    assert_eq!(status, 400);
}

async fn acr_values_steps_up_a_password_session_with_the_relying_party(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_user("rita").await;
    let registered = client(&app, None).await;
    let rp = app.relying_party(&registered).await;
    let browser = app.browser();
    let login = |acr: Option<&'static str>| {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = rp
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("openid".into()))
            .set_pkce_challenge(challenge);
        if let Some(acr) = acr {
            request = request.add_auth_context_value(AuthenticationContextClass::new(acr.into()));
        }
        let (url, _, nonce) = request.url();
        (url, nonce, verifier)
    };
    let id_token_of = |code: String, nonce: Nonce, verifier| {
        let rp = &rp;
        let app = &app;
        async move {
            let tokens = rp
                .exchange_code(AuthorizationCode::new(code))
                .unwrap()
                .set_pkce_verifier(verifier)
                .request_async(&app.rp_http())
                .await
                .unwrap();
            let id_token = tokens.id_token().unwrap().clone();
            id_token.claims(&rp.id_token_verifier(), &nonce).unwrap().clone()
        }
    };
    // A password login: acr pwd, amr pwd.
    let (url, nonce, verifier) = login(None);
    let landing = browser.visit(url.as_str()).await;
    let code = browser
        .log_in_and_consent(landing, "rita", PASSWORD)
        .await
        .query("code")
        .unwrap();
    let first = id_token_of(code, nonce, verifier).await;
    assert_eq!(first.auth_context_ref().unwrap().as_str(), ACR_PWD);
    assert_eq!(
        first
            .auth_method_refs()
            .unwrap()
            .iter()
            .map(|m| m.as_str())
            .collect::<Vec<_>>(),
        ["pwd"]
    );

    // The relying party asks for MFA within the session: rita has no factor, so she enrols
    // (no password asked again: the session stands for it), and the session is raised.
    let (url, nonce, verifier) = login(Some(ACR_MFA));
    let landing = browser.visit(url.as_str()).await;
    let (_, page_url, html) = match landing {
        Landing::Page { status, url, html } => (status, url, html),
        Landing::Client(url) => panic!("no step-up: back at {url}"),
    };
    assert!(page_url.contains("/mfa"), "{page_url}");
    assert!(!html.contains("name=\"password\""));
    let back = browser
        .pass_second_factor(
            Landing::Page {
                status: StatusCode::OK,
                url: page_url,
                html,
            },
            "rita",
        )
        .await;
    let code = back.query("code").unwrap();
    let stepped = id_token_of(code, nonce, verifier).await;
    assert_eq!(stepped.auth_context_ref().unwrap().as_str(), ACR_MFA);
    let amr: Vec<_> = stepped
        .auth_method_refs()
        .unwrap()
        .iter()
        .map(|m| m.as_str().to_string())
        .collect();
    assert_eq!(amr, ["pwd", "otp", "mfa"]);
    assert!(stepped.auth_time().unwrap() >= first.auth_time().unwrap());

    // Asked again: the raised session already satisfies it, no page.
    let (url, nonce, verifier) = login(Some(ACR_MFA));
    let code = browser.visit(url.as_str()).await.query("code").unwrap();
    let again = id_token_of(code, nonce, verifier).await;
    assert_eq!(again.auth_context_ref().unwrap().as_str(), ACR_MFA);

    // A new login in another browser with acr_values asks for the code after the password.
    let other = app.browser();
    let (url, nonce, verifier) = login(Some(ACR_MFA));
    let landing = other.visit(url.as_str()).await;
    let (_, _, html) = landing.page();
    let after_password = other
        .submit(&form(&html).set("username", "rita").set("password", PASSWORD))
        .await;
    let (_, html) = page_html(after_password);
    assert!(common::browser::posts_to(&html, "/mfa"), "{html}");
    let code = other
        .submit(&form(&html).set("code", &app.authenticator.fresh_code("rita").await))
        .await
        .query("code")
        .unwrap();
    let fresh = id_token_of(code, nonce, verifier).await;
    assert_eq!(fresh.auth_context_ref().unwrap().as_str(), ACR_MFA);
}

async fn an_essential_acr_that_cannot_be_met_is_an_error_not_a_weaker_login(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_user("rita").await;
    let client = client(&app, None).await;
    let claims = r#"{"id_token":{"acr":{"essential":true,"values":["urn:example:acr:retina"]}}}"#;
    let extra = format!(
        "&claims={}",
        url::form_urlencoded::byte_serialize(claims.as_bytes()).collect::<String>()
    );
    let url = format!("{}{extra}", app.authorize_url(&client.id, "openid"));
    let back = app.browser().visit(&url).await.client_url();
    let error = back
        .query_pairs()
        .find(|(k, _)| k == "error")
        .unwrap()
        .1
        .into_owned();
    assert_eq!(error, "unmet_authentication_requirements");
    // An unknown voluntary value is ignored: the login goes on.
    let url = format!(
        "{}&acr_values=urn:example:acr:retina",
        app.authorize_url(&client.id, "openid")
    );
    let (status, _, html) = app.browser().visit(&url).await.page();
    assert_eq!(status, 200);
    assert!(html.contains("name=\"password\""));
    let discovery: Value = app
        .http
        .get(format!("{}/.well-known/openid-configuration", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        discovery["acr_values_supported"],
        serde_json::json!([ACR_PWD, ACR_MFA, "phr"])
    );
}

async fn a_client_that_requires_mfa_walks_users_through_enrolment(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_user("rita").await;
    let optional = client(&app, None).await;
    let strict = client(&app, Some(MfaPolicy::Required)).await;
    // At the optional client, rita (no factor) signs in with her password alone.
    let tokens = app.tokens(&optional, "rita", "openid").await;
    assert_eq!(claims(tokens["id_token"].as_str().unwrap())["acr"], ACR_PWD);
    let browser = app.browser();
    let (_, html) = page_html(password_step(&app, &browser, &strict, "rita", "").await);
    assert!(html.contains("id=\"manual-key\""), "{html}");
    let back = browser
        .pass_second_factor(
            Landing::Page {
                status: StatusCode::OK,
                url: String::new(),
                html,
            },
            "rita",
        )
        .await;
    let code = back.query("code").unwrap();
    let tokens = exchange(&app, &strict, &code).await;
    assert_eq!(claims(tokens["id_token"].as_str().unwrap())["acr"], ACR_MFA);
    // Enrolled, she is asked for a code at the optional client too.
    let (_, html) = page_html(password_step(&app, &app.browser(), &optional, "rita", "").await);
    assert!(common::browser::posts_to(&html, "/mfa"), "{html}");
}

async fn the_admin_api_refuses_an_administrator_who_logged_in_without_a_second_factor(backend: Backend) {
    let db = TestDb::new(backend).await;
    // Two replicas of one deployment (same database, keys and issuer), one configured to let
    // administrators in with a password alone.
    let lax = spawn_app_with(
        TestDb::new_shared(&db),
        &[("IDP_MFA_REQUIRED_FOR_ADMINS", "false")],
    )
    .await;
    let strict = spawn_app_with(db, &[("IDP_ISSUER", lax.base.as_str())]).await;
    lax.add_user_as("ada", true).await;
    let client = lax
        .add_client(false, |c| {
            c.scopes.push("admin".into());
            c.first_party = true;
        })
        .await;
    let token = lax.tokens(&client, "ada", "openid admin").await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let call = |app: &TestApp| {
        app.http
            .get(format!("{}/admin/api/v1/users", app.base))
            .bearer_auth(&token)
            .send()
    };
    assert_eq!(call(&lax).await.unwrap().status(), 200);
    let refused = admin_support::assert_problem(call(&strict).await.unwrap(), 403).await;
    assert!(
        refused["detail"].as_str().unwrap().contains("second factor"),
        "{refused}"
    );
}

async fn administrators_see_reset_and_require_factors(backend: Backend) {
    let admin = admin_support::setup(backend).await;
    let app = &admin.app;
    let rita = admin.user_id("rita").await;
    let strict = client(app, Some(MfaPolicy::Required)).await;
    app.tokens(&strict, "rita", "openid").await; // enrols
    let mfa = admin.get(&format!("/users/{rita}/mfa")).await;
    assert_eq!(mfa["factors"].as_array().unwrap().len(), 1, "{mfa}");
    assert_eq!(mfa["factors"][0]["kind"], "totp");
    assert!(mfa["factors"][0]["last_used_at"].is_string());
    assert_eq!(mfa["recovery_codes_left"], 10);
    assert_eq!(admin.get(&format!("/users/{rita}")).await["mfa"], mfa);

    // Reset: factors gone, sessions and grants revoked, enrolment required next time.
    let reset = admin
        .post(
            &format!("/users/{rita}/mfa/reset"),
            serde_json::json!({ "require_enrolment": true }),
        )
        .await;
    assert_eq!(reset.status(), 200);
    let revoked: Value = reset.json().await.unwrap();
    assert!(revoked["grants"].as_u64().unwrap() >= 1, "{revoked}");
    let mfa = admin.get(&format!("/users/{rita}/mfa")).await;
    assert_eq!(mfa["factors"], serde_json::json!([]));
    assert_eq!(mfa["recovery_codes_left"], 0);
    assert_eq!(mfa["enrolment_required"], true);
    assert!(admin.audited("mfa_reset").await);
    // At an optional client, the requirement walks rita through enrolment.
    let optional = client(app, None).await;
    let browser = Browser::new(&app.base);
    let (_, html) = page_html(password_step(app, &browser, &optional, "rita", "").await);
    assert!(html.contains("id=\"manual-key\""), "{html}");

    // Removing one factor.
    let fresh = app.browser();
    let landing = password_step(app, &fresh, &optional, "rita", "").await;
    fresh.pass_second_factor(landing, "rita").await.client_url();
    let mfa = admin.get(&format!("/users/{rita}/mfa")).await;
    let factor = mfa["factors"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(
        mfa["enrolment_required"], false,
        "enrolling clears the requirement"
    );
    let removed = admin
        .call(
            reqwest::Method::DELETE,
            &format!("/users/{rita}/mfa/factors/{factor}"),
            None,
        )
        .await;
    assert_eq!(removed.status(), 204);
    let missing = admin
        .call(
            reqwest::Method::DELETE,
            &format!("/users/{rita}/mfa/factors/{factor}"),
            None,
        )
        .await;
    admin_support::assert_problem(missing, 404).await;
    assert!(admin.audited("mfa_factor_removed").await);
    let required = admin
        .call(
            reqwest::Method::PUT,
            &format!("/users/{rita}/mfa/enrolment-required"),
            Some(serde_json::json!({ "required": true })),
        )
        .await;
    assert_eq!(required.status(), 204);
    assert_eq!(
        admin.get(&format!("/users/{rita}/mfa")).await["enrolment_required"],
        true
    );
}

on_both_backends!(
    an_administrator_enrols_at_first_login_then_always_gives_a_code,
    a_code_is_accepted_once_within_one_step_of_drift,
    a_recovery_code_works_once_and_says_how_many_remain,
    wrong_codes_lock_the_source_and_the_password_does_not_reset_the_count,
    a_step_from_another_browser_is_refused,
    acr_values_steps_up_a_password_session_with_the_relying_party,
    an_essential_acr_that_cannot_be_met_is_an_error_not_a_weaker_login,
    a_client_that_requires_mfa_walks_users_through_enrolment,
    the_admin_api_refuses_an_administrator_who_logged_in_without_a_second_factor,
    administrators_see_reset_and_require_factors,
);
