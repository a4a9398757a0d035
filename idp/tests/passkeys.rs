//! Passkeys through the login pages, answered by a software authenticator that signs the
//! way a browser's would (webauthn-authenticator-rs): registration at enrolment, sign-in with
//! no username or password, a passkey as the second factor, replayed and unverified answers,
//! a removed passkey, and `acr_values=phr`. The same flows run in Chromium with its virtual
//! authenticator in `e2e/`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::browser::{Browser, Form, Landing, form};
use common::{Backend, PASSWORD, Registered, TestApp, jwt_claims, spawn_app, spawn_app_on_localhost};
use serde_json::Value;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs_proto::{
    CreationChallengeResponse, PublicKeyCredential, RequestChallengeResponse, UserVerificationPolicy,
};

/// The origin the browser runs the pages at: the issuer's.
fn origin(app: &TestApp) -> url::Url {
    url::Url::parse(&app.services.settings.issuer.origin().ascii_serialization()).unwrap()
}

/// The passkey form of a page (the form with `data-passkey`) and its WebAuthn options.
fn passkey_form(html: &str) -> Option<(Form, Value)> {
    let doc = scraper::Html::parse_document(html);
    let sel = scraper::Selector::parse("form[data-passkey]").unwrap();
    let element = doc.select(&sel).next()?;
    let options: Value = serde_json::from_str(element.value().attr("data-options")?).unwrap();
    let inputs = scraper::Selector::parse("input").unwrap();
    let fields = element
        .select(&inputs)
        .filter_map(|i| {
            Some((
                i.value().attr("name")?.to_string(),
                i.value().attr("value").unwrap_or_default().to_string(),
            ))
        })
        .collect();
    let action = element.value().attr("action")?.to_string();
    Some((Form { action, fields }, options))
}

/// Registers a passkey on an enrolment page; returns the recovery-codes page and the
/// credential id.
fn register(authenticator: &mut SoftPasskey, app: &TestApp, html: &str, name: &str) -> (Form, String) {
    let (form, options) = passkey_form(html).expect("the enrolment page offers a passkey");
    let mut options: CreationChallengeResponse = serde_json::from_value(options).unwrap();
    let selection = options.public_key.authenticator_selection.as_mut().unwrap();
    assert!(
        selection.require_resident_key,
        "a discoverable passkey is asked for"
    );
    assert_eq!(selection.user_verification, UserVerificationPolicy::Required);
    // The software authenticator cannot say it keeps the key; Chromium's virtual one can.
    selection.require_resident_key = false;
    selection.resident_key = None;
    let answer = authenticator.do_registration(origin(app), options).unwrap();
    let credential_id = answer.id.clone();
    let form = form
        .set("credential", &serde_json::to_string(&answer).unwrap())
        .set("name", name);
    (form, credential_id)
}

/// Signs a request for a passkey. For a sign-in without username (`allowCredentials`
/// empty) the user picks `credential_id` and the authenticator returns `user_handle`, as a
/// browser with a discoverable passkey does.
fn sign(
    authenticator: &mut SoftPasskey,
    app: &TestApp,
    options: Value,
    pick: Option<(&str, uuid::Uuid)>,
) -> PublicKeyCredential {
    let mut options: RequestChallengeResponse = serde_json::from_value(options).unwrap();
    if let Some((credential_id, _)) = pick {
        use base64::Engine;
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(credential_id)
            .unwrap();
        options.public_key.allow_credentials = vec![webauthn_rs_proto::AllowCredentials {
            type_: "public-key".into(),
            id: raw,
            transports: None,
        }];
    }
    let mut answer = authenticator.do_authentication(origin(app), options).unwrap();
    if let Some((_, user)) = pick {
        answer.response.user_handle = Some(user.as_bytes().to_vec());
    }
    answer
}

async fn first_party(app: &TestApp) -> Registered {
    app.add_client(false, |c| c.first_party = true).await
}

async fn authorize_page(app: &TestApp, browser: &Browser, client: &Registered, extra: &str) -> String {
    let url = format!("{}{extra}", app.authorize_url(&client.id, "openid"));
    let (status, _, html) = browser.visit(&url).await.page();
    assert_eq!(status, 200);
    html
}

/// The `amr` and `acr` of the ID token the client gets for the code in `landing`.
async fn amr_and_acr(app: &TestApp, client: &Registered, landing: Landing) -> (Vec<String>, String) {
    let code = landing.query("code").expect("the client got a code");
    let response = app
        .token_request(
            client,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", common::REDIRECT),
                ("code_verifier", common::VERIFIER),
            ],
        )
        .await;
    assert_eq!(response.status(), 200);
    let tokens: Value = response.json().await.unwrap();
    let id_token = jwt_claims(tokens["id_token"].as_str().unwrap());
    let amr = id_token["amr"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    (amr, id_token["acr"].as_str().unwrap().to_string())
}

/// An administrator (who must enrol a factor) registers a passkey at first login; returns
/// the passkey's credential id.
async fn enrol_passkey(app: &TestApp, authenticator: &mut SoftPasskey, client: &Registered) -> String {
    let browser = app.browser();
    let html = authorize_page(app, &browser, client, "").await;
    let (status, _, html) = browser
        .submit(&form(&html).set("username", "ada").set("password", PASSWORD))
        .await
        .page();
    assert_eq!(status, 200);
    assert!(
        html.contains("#manual-key") || html.contains("manual-key"),
        "an app remains an option"
    );
    let (registration, credential_id) = register(authenticator, app, &html, "Ada's laptop");
    let (status, _, html) = browser.submit(&registration).await.page();
    assert_eq!(status, 200, "{html}");
    let codes = common::browser::all_text_of(&html, "#recovery-codes code").expect("recovery codes follow");
    assert_eq!(codes.len(), 10);
    let landing = browser.submit(&form(&html)).await;
    let (amr, acr) = amr_and_acr(app, client, landing).await;
    assert_eq!(amr, ["pwd", "hwk", "user", "mfa"]);
    assert_eq!(acr, "phr", "a passkey is phishing-resistant");
    credential_id
}

async fn a_passkey_registered_at_enrolment_signs_in_alone_and_as_second_factor(backend: Backend) {
    let app = spawn_app_on_localhost(backend).await;
    let ada = app.add_user_as("ada", true).await;
    let client = first_party(&app).await;
    let mut authenticator = SoftPasskey::new(true);
    let credential_id = enrol_passkey(&app, &mut authenticator, &client).await;

    let factors = app.services.store.factors_of(ada.id).await.unwrap();
    assert_eq!(factors.len(), 1);
    assert_eq!(factors[0].kind.as_str(), "passkey");
    assert_eq!(factors[0].name, "Ada's laptop");

    // Without username or password: the login page's passkey button.
    let browser = app.browser();
    let html = authorize_page(&app, &browser, &client, "").await;
    assert!(
        html.contains("username webauthn"),
        "the username field offers passkeys in its autofill"
    );
    let (signin, options) = passkey_form(&html).expect("the login page offers a passkey");
    assert!(
        options["publicKey"]["allowCredentials"]
            .as_array()
            .is_none_or(|a| a.is_empty())
    );
    let answer = sign(&mut authenticator, &app, options, Some((&credential_id, ada.id)));
    let landing = browser
        .submit(&signin.set("credential", &serde_json::to_string(&answer).unwrap()))
        .await;
    let (amr, acr) = amr_and_acr(&app, &client, landing).await;
    assert_eq!(amr, ["hwk", "user", "mfa"], "no password was used");
    assert_eq!(acr, "phr");

    // After a password, the passkey is the second factor.
    let browser = app.browser();
    let html = authorize_page(&app, &browser, &client, "").await;
    let (_, _, html) = browser
        .submit(&form(&html).set("username", "ada").set("password", PASSWORD))
        .await
        .page();
    let (second, options) = passkey_form(&html).expect("the second-factor page offers the passkey");
    assert_eq!(
        options["publicKey"]["allowCredentials"][0]["id"], credential_id,
        "the user's own passkey is asked for"
    );
    let answer = sign(&mut authenticator, &app, options, None);
    let second = second.set("credential", &serde_json::to_string(&answer).unwrap());
    let landing = browser.submit(&second).await;
    let (amr, acr) = amr_and_acr(&app, &client, landing).await;
    assert_eq!(amr, ["pwd", "hwk", "user", "mfa"]);
    assert_eq!(acr, "phr");

    // The same answer again (a captured request replayed): the challenge is spent.
    let (status, _, html) = browser.submit(&second).await.page();
    assert_eq!(status, 401);
    assert!(html.contains("did not work"));
    let factor = &app.services.store.factors_of(ada.id).await.unwrap()[0];
    assert!(factor.last_used_at.is_some());
}

async fn a_removed_or_unverified_passkey_signs_nobody_in(backend: Backend) {
    let app = spawn_app_on_localhost(backend).await;
    let ada = app.add_user_as("ada", true).await;
    let client = first_party(&app).await;
    let mut authenticator = SoftPasskey::new(true);
    let credential_id = enrol_passkey(&app, &mut authenticator, &client).await;

    // An answer without user verification (a touch, no PIN or biometric) is refused: a
    // passkey that is the only factor must verify the user.
    let browser = app.browser();
    let html = authorize_page(&app, &browser, &client, "").await;
    let (signin, options) = passkey_form(&html).unwrap();
    let mut lowered: RequestChallengeResponse = serde_json::from_value(options.clone()).unwrap();
    lowered.public_key.user_verification = UserVerificationPolicy::Preferred;
    // Same key, signed without the UV flag.
    let answer = sign(
        &mut authenticator,
        &app,
        serde_json::to_value(&lowered).unwrap(),
        Some((&credential_id, ada.id)),
    );
    let (status, _, html) = browser
        .submit(&signin.set("credential", &serde_json::to_string(&answer).unwrap()))
        .await
        .page();
    assert_eq!(status, 401, "no user verification, no login");
    assert!(html.contains("did not work"));

    // Removed by an administrator: refused, though it signs correctly.
    let factor = app.services.store.factors_of(ada.id).await.unwrap().remove(0);
    assert!(app.services.store.delete_factor(ada.id, factor.id).await.unwrap());
    let browser = app.browser();
    let html = authorize_page(&app, &browser, &client, "").await;
    let (signin, options) = passkey_form(&html).unwrap();
    let answer = sign(&mut authenticator, &app, options, Some((&credential_id, ada.id)));
    let (status, _, html) = browser
        .submit(&signin.set("credential", &serde_json::to_string(&answer).unwrap()))
        .await
        .page();
    assert_eq!(status, 401);
    assert!(html.contains("did not work"));

    let query = idp::audit::EventQuery {
        event_type: idp::audit::EventType::parse("login_failed"),
        limit: 10,
        ..Default::default()
    };
    let failures = app.services.store.query_events(&query).await.unwrap();
    assert_eq!(
        failures.len(),
        2,
        "each refusal is a failed login in the audit trail"
    );
    assert_eq!(failures[0].details["method"], "passkey");
}

async fn a_phishing_resistant_login_takes_a_passkey_not_an_app_code(backend: Backend) {
    let app = spawn_app_on_localhost(backend).await;
    app.add_user("bob").await;
    let client = first_party(&app).await;
    let browser = app.browser();
    // Bob has no factor: `acr_values=phr` has him register a passkey, and only a passkey.
    let html = authorize_page(&app, &browser, &client, "&acr_values=phr").await;
    let (_, _, html) = browser
        .submit(&form(&html).set("username", "bob").set("password", PASSWORD))
        .await
        .page();
    assert!(passkey_form(&html).is_some());
    assert!(
        !html.contains("manual-key"),
        "no app enrolment for a phishing-resistant login"
    );
    let mut authenticator = SoftPasskey::new(true);
    let (registration, _) = register(&mut authenticator, &app, &html, "");
    let (_, _, html) = browser.submit(&registration).await.page();
    let landing = browser.submit(&form(&html)).await;
    let (amr, acr) = amr_and_acr(&app, &client, landing).await;
    assert_eq!(acr, "phr");
    assert!(amr.contains(&"hwk".to_string()));
}

async fn without_a_domain_name_no_passkey_is_offered(backend: Backend) {
    // The issuer is http://127.0.0.1:<port>: browsers refuse an IP address as RP id.
    let app = spawn_app(backend).await;
    let client = first_party(&app).await;
    let browser = app.browser();
    let html = authorize_page(&app, &browser, &client, "").await;
    assert!(passkey_form(&html).is_none());
    assert!(!html.contains("webauthn"));
    let (status, _, _) = browser
        .submit(&form(&html).with_action("/login/passkey").set("ceremony", "x"))
        .await
        .page();
    assert_eq!(status, 400, "the passkey endpoint refuses cleanly");
}

on_both_backends!(
    a_passkey_registered_at_enrolment_signs_in_alone_and_as_second_factor,
    a_removed_or_unverified_passkey_signs_nobody_in,
    a_phishing_resistant_login_takes_a_passkey_not_an_app_code,
    without_a_domain_name_no_passkey_is_offered,
);
