//! Signing in through an upstream OpenID provider (federation), with a second `idp` as the
//! upstream on `localhost` (so the two keep their cookies apart in one browser): the login
//! page's button, the upstream's login, the callback, a new account at the first sign-in
//! (JIT), the same account at the next, `amr` `fed`; no silent link to an account that merely
//! shares the email address; a forged callback refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::browser::{Browser, Landing};
use common::{
    Backend, PASSWORD, REDIRECT, Registered, TestApp, VERIFIER, jwt_claims, spawn_app, spawn_app_on_localhost,
};
use serde_json::Value;

struct Federation {
    /// This provider, where the relying party's users sign in.
    app: TestApp,
    /// The upstream provider, where they have their identity.
    upstream: TestApp,
    client: Registered,
}

async fn federation(backend: Backend) -> Federation {
    let app = spawn_app(backend).await;
    let upstream = spawn_app_on_localhost(Backend::Sqlite).await;
    let callback = format!("{}/upstream/corp/callback", app.base);
    let at_upstream = upstream
        .add_client(false, |c| {
            c.redirect_uris =
                vec![idp::domain::client::RedirectUri::parse(&callback, c.client_type).unwrap()];
            c.first_party = true;
        })
        .await;
    let new = idp::domain::upstream::NewUpstream {
        slug: "corp".into(),
        display_name: "Corporate login".into(),
        issuer: upstream.services.settings.issuer_str().to_string(),
        client_id: at_upstream.id.clone(),
        scopes: vec!["email".into(), "profile".into()],
        jit: true,
        trust_email: true,
        allowed_domains: vec![],
        allowed_clients: vec![],
    };
    let secret = secrecy::SecretString::from(at_upstream.secret.clone().unwrap());
    idp::manage::upstreams::register(&app.services, new, &secret, idp::manage::Actor::Cli)
        .await
        .unwrap();
    let client = app.add_client(false, |c| c.first_party = true).await;
    Federation {
        app,
        upstream,
        client,
    }
}

/// The upstream's address as its issuer names it (`localhost`).
fn upstream_url(upstream: &TestApp) -> String {
    upstream.services.settings.issuer_str().to_string()
}

/// The browser at the upstream: the same cookies, its own pages.
fn at_upstream(browser: &Browser, upstream: &TestApp) -> Browser {
    Browser {
        http: browser.http.clone(),
        jar: browser.jar.clone(),
        base: upstream_url(upstream),
        authenticator: upstream.authenticator.clone(),
    }
}

/// From the relying party's login page through "Continue with Corporate login" and the
/// upstream's login as `username`, back to this provider: where that ends.
async fn continue_with_upstream(f: &Federation, browser: &Browser, username: &str) -> Landing {
    let (_, _, html) = browser
        .visit(&f.app.authorize_url(&f.client.id, "openid email"))
        .await
        .page();
    assert!(html.contains("Continue with Corporate login"), "{html}");
    let href = scraper::Html::parse_document(&html)
        .select(&scraper::Selector::parse("a.upstream").unwrap())
        .next()
        .unwrap()
        .value()
        .attr("href")
        .unwrap()
        .to_string();
    let to_upstream = browser.visit(&format!("{}{href}", f.app.base)).await.client_url();
    assert!(
        to_upstream.as_str().starts_with(&upstream_url(&f.upstream)),
        "{to_upstream}"
    );
    let upstream_browser = at_upstream(browser, &f.upstream);
    let login = upstream_browser.visit(to_upstream.as_str()).await;
    let back = upstream_browser
        .log_in_and_consent(login, username, PASSWORD)
        .await
        .client_url();
    assert!(back.path().ends_with("/upstream/corp/callback"), "{back}");
    // RFC 9207: the upstream names itself in its answer.
    assert!(
        back.query_pairs()
            .any(|(k, v)| k == "iss" && v == upstream_url(&f.upstream))
    );
    browser.visit(back.as_str()).await
}

async fn redeem(f: &Federation, landing: Landing) -> Value {
    let code = landing.query("code").unwrap();
    let response = f
        .app
        .token_request(
            &f.client,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", VERIFIER),
            ],
        )
        .await;
    assert_eq!(response.status(), 200);
    let tokens: Value = response.json().await.unwrap();
    jwt_claims(tokens["id_token"].as_str().unwrap())
}

async fn a_new_user_signs_in_with_the_upstream_and_comes_back(backend: Backend) {
    let f = federation(backend).await;
    let ursula = f.upstream.add_user("ursula").await;
    let first = redeem(&f, continue_with_upstream(&f, &f.app.browser(), "ursula").await).await;
    assert_eq!(first["amr"], serde_json::json!(["fed"]), "{first}");
    // A new local account, from the upstream's claims, linked by issuer and subject.
    let local = uuid::Uuid::parse_str(first["sub"].as_str().unwrap()).unwrap();
    assert_ne!(local, ursula.id, "a local account of its own");
    let user = f.app.services.store.find_user(local).await.unwrap().unwrap();
    assert_eq!(user.username.as_str(), "ursula");
    assert_eq!(
        user.email.as_ref().map(|e| e.as_str()),
        Some("ursula@example.com")
    );
    let links = f.app.services.store.identities_of_user(local).await.unwrap();
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].issuer, upstream_url(&f.upstream));
    assert_eq!(links[0].subject, ursula.id.to_string());

    // The next sign-in, in another browser, is the same account.
    let again = redeem(&f, continue_with_upstream(&f, &f.app.browser(), "ursula").await).await;
    assert_eq!(again["sub"], first["sub"]);

    // The identity is this account's only way to sign in: it cannot be unlinked.
    let refused = idp::manage::upstreams::unlink(
        &f.app.services,
        local,
        &links[0].issuer,
        &links[0].subject,
        idp::manage::Actor::Cli,
    )
    .await;
    assert!(refused.is_err_and(|e| e.to_string().contains("only way to sign in")));
}

async fn an_account_with_the_same_email_is_never_linked_silently(backend: Backend) {
    let f = federation(backend).await;
    // "carla" here and "carla" upstream share carla@example.com.
    let local = f.app.add_user("carla").await;
    f.upstream.add_user("carla").await;
    let (status, _, html) = continue_with_upstream(&f, &f.app.browser(), "carla").await.page();
    assert_eq!(status, 401);
    assert!(
        html.contains("An account with this email address already exists"),
        "{html}"
    );
    assert!(
        f.app
            .services
            .store
            .identities_of_user(local.id)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn a_forged_callback_is_refused(backend: Backend) {
    let f = federation(backend).await;
    // No sign-in was started in this browser: no flow cookie, whatever the state says.
    let forged = format!("{}/upstream/corp/callback?code=abc&state=xyz", f.app.base);
    let (status, _, _) = f.app.browser().visit(&forged).await.page();
    assert_eq!(status, 400);
}

async fn a_disabled_provider_is_neither_offered_nor_usable(backend: Backend) {
    let f = federation(backend).await;
    let change = idp::manage::upstreams::UpstreamChange {
        enabled: Some(false),
        ..Default::default()
    };
    idp::manage::upstreams::update(&f.app.services, "corp", change, idp::manage::Actor::Cli)
        .await
        .unwrap();
    let browser = f.app.browser();
    let (_, _, html) = browser
        .visit(&f.app.authorize_url(&f.client.id, "openid"))
        .await
        .page();
    assert!(!html.contains("Continue with"), "{html}");
    let interaction = scraper::Html::parse_document(&html)
        .select(&scraper::Selector::parse("input[name=interaction]").unwrap())
        .next()
        .unwrap()
        .value()
        .attr("value")
        .unwrap()
        .to_string();
    let start = format!("{}/upstream/corp/start?interaction={interaction}", f.app.base);
    let (status, _, html) = browser.visit(&start).await.page();
    assert_eq!(status, 401);
    assert!(html.contains("This sign-in option is not available"), "{html}");
}

on_both_backends!(
    a_disabled_provider_is_neither_offered_nor_usable,
    a_new_user_signs_in_with_the_upstream_and_comes_back,
    an_account_with_the_same_email_is_never_linked_silently,
    a_forged_callback_is_refused,
);
