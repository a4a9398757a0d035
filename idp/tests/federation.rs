//! Signing in through an upstream OpenID provider (federation), with a second `idp` as the
//! upstream (`common::federation`): the login page's button, the upstream's login, the
//! callback, a new account at the first sign-in (JIT), the same account at the next, `amr`
//! `fed`; an existing account linked only once its owner proves it (password and second
//! factor, in the same browser) or, by explicit configuration, for a verified address in a
//! trusted domain; a forged callback refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::browser::Landing;
use common::federation::{
    at_upstream, continue_with_upstream, events, federation, federation_authenticating_by, redeem,
    upstream_url,
};
use common::{Backend, PASSWORD, TestApp};

async fn a_new_user_signs_in_with_the_upstream_and_comes_back(backend: Backend) {
    let f = federation(backend).await;
    let ursula = f.upstream.add_user("ursula").await;
    let successes = || async {
        let labels = [("upstream", "corp"), ("outcome", "success")];
        common::metric_value(&f.app.metrics().await, "idp_upstream_logins_total", &labels)
    };
    let before = successes().await;
    let first = redeem(&f, continue_with_upstream(&f, &f.app.browser(), "ursula").await).await;
    assert_eq!(successes().await - before, 1.0, "counted per provider");
    // `fed`, then how the upstream says ursula authenticated there (her password).
    assert_eq!(first["amr"], serde_json::json!(["fed", "pwd"]), "{first}");
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
    assert_eq!(successes().await - before, 2.0);

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

/// The upstream vouches for the user's address (`email_verified`).
async fn verify_upstream_email(upstream: &TestApp, user: &idp::domain::user::User) {
    let email = user.email.as_ref().unwrap().as_str().to_string();
    let now = upstream.services.clock.now();
    assert!(
        upstream
            .services
            .store
            .mark_email_verified(user.id, &email, now)
            .await
            .unwrap()
    );
}

async fn links_of(app: &TestApp, user: uuid::Uuid) -> Vec<idp::domain::upstream::FederatedIdentity> {
    app.services.store.identities_of_user(user).await.unwrap()
}

async fn an_unverified_address_is_never_matched_to_an_account(backend: Backend) {
    let f = federation(backend).await;
    // "carla" here and "carla" upstream share carla@example.com, which the upstream does not
    // vouch for: it could be anyone's.
    let local = f.app.add_user("carla").await;
    f.upstream.add_user("carla").await;
    let claims = redeem(&f, continue_with_upstream(&f, &f.app.browser(), "carla").await).await;
    // A new account of its own (JIT), without the address, and nothing linked to carla's.
    assert_ne!(claims["sub"], local.id.to_string());
    let created = uuid::Uuid::parse_str(claims["sub"].as_str().unwrap()).unwrap();
    let created = f.app.services.store.find_user(created).await.unwrap().unwrap();
    assert_eq!(created.email, None);
    assert_ne!(created.username.as_str(), "carla");
    assert!(links_of(&f.app, local.id).await.is_empty());
}

async fn an_existing_account_is_linked_only_after_its_owner_proves_it(backend: Backend) {
    let f = federation(backend).await;
    let local = f.app.add_user("carla").await;
    let remote = f.upstream.add_user("carla").await;
    verify_upstream_email(&f.upstream, &remote).await;
    // carla protects her account here with an authenticator app.
    let strict = f
        .app
        .add_client(false, |c| {
            c.first_party = true;
            c.mfa = Some(idp::domain::mfa::MfaPolicy::Required);
        })
        .await;
    f.app.tokens(&strict, "carla", "openid").await;

    let browser = f.app.browser();
    let (status, _, html) = continue_with_upstream(&f, &browser, "carla").await.page();
    assert_eq!(status, 200);
    assert!(html.contains("Link your Corporate login account"), "{html}");
    assert!(
        !html.contains("class=\"button secondary upstream\""),
        "no other way in while linking: {html}"
    );
    assert!(
        links_of(&f.app, local.id).await.is_empty(),
        "nothing is linked before the proof"
    );

    // A wrong password links nothing and keeps the page in link mode.
    let wrong = browser
        .submit(
            &common::browser::form(&html)
                .set("username", "carla")
                .set("password", "wrong"),
        )
        .await;
    let (status, _, html) = wrong.page();
    assert_eq!(status, 401);
    assert!(html.contains("Link your Corporate login account"), "{html}");
    assert!(links_of(&f.app, local.id).await.is_empty());

    // The password and the second factor: linked, and signed in to carla's account.
    let proven = browser
        .log_in_and_consent(
            Landing::Page {
                status,
                url: String::new(),
                html,
            },
            "carla",
            PASSWORD,
        )
        .await;
    let claims = redeem(&f, proven).await;
    assert_eq!(claims["sub"], local.id.to_string());
    assert!(
        claims["amr"].as_array().unwrap().iter().any(|m| m == "otp"),
        "the proof took carla's second factor: {claims}"
    );
    let links = links_of(&f.app, local.id).await;
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].subject, remote.id.to_string());
    let linked = events(&f.app, "identity_linked").await;
    assert_eq!(linked.len(), 1);
    assert_eq!(linked[0].user_id.as_deref(), Some(local.id.to_string().as_str()));
    assert_eq!(linked[0].details["by"], "proof");

    // carla sees the link on her account page (this browser is signed in) and unlinks it:
    // her password still signs her in.
    let (status, _, account) = browser.visit(&format!("{}/account", f.app.base)).await.page();
    assert_eq!(status, 200);
    assert!(account.contains("Corporate login"), "{account}");
    let unlink = common::browser::forms_to(&account, "/account/identities/unlink");
    assert_eq!(unlink.len(), 1, "{account}");
    let (_, url, after) = browser.submit(&unlink[0]).await.page();
    assert!(url.contains("done=identity"), "{url}");
    assert!(after.contains("The identity was unlinked"), "{after}");
    assert!(links_of(&f.app, local.id).await.is_empty());
    assert_eq!(events(&f.app, "identity_unlinked").await.len(), 1);

    // Linked again (the link page, her password and second factor), for what follows.
    let browser = f.app.browser();
    let landing = continue_with_upstream(&f, &browser, "carla").await;
    let proven = browser.log_in_and_consent(landing, "carla", PASSWORD).await;
    assert_eq!(redeem(&f, proven).await["sub"], local.id.to_string());
    assert_eq!(links_of(&f.app, local.id).await.len(), 1);

    // From now on the upstream signs carla in to her account (then her second factor, as
    // the upstream does not say it asked for one).
    let browser = f.app.browser();
    let landing = continue_with_upstream(&f, &browser, "carla").await;
    let again = redeem(&f, browser.pass_second_factor(landing, "carla").await).await;
    assert_eq!(again["sub"], local.id.to_string());
    assert_eq!(again["amr"][0], "fed");
}

async fn a_pending_link_is_made_only_in_the_browser_that_signed_in_upstream(backend: Backend) {
    let f = federation(backend).await;
    // mallory signs in upstream with an identity claiming victor's address...
    let victor = f.app.add_user("victor").await;
    let mallory = f.upstream.add_user("victor").await;
    verify_upstream_email(&f.upstream, &mallory).await;
    let attacker = f.app.browser();
    let (_, _, link_page) = continue_with_upstream(&f, &attacker, "victor").await.page();
    // ...and gets victor to sign in with the link page's sealed interaction in his own browser.
    let victim = f.app.browser();
    let (_, _, own_page) = victim
        .visit(&f.app.authorize_url(&f.client.id, "openid"))
        .await
        .page();
    let own = common::browser::form(&own_page);
    let csrf = own.fields.iter().find(|(k, _)| k == "csrf").unwrap().1.clone();
    let planted = common::browser::form(&link_page)
        .set("csrf", &csrf)
        .set("username", "victor")
        .set("password", PASSWORD);
    let (status, _, _) = victim.submit(&planted).await.page();
    assert_eq!(status, 400);
    assert!(links_of(&f.app, victor.id).await.is_empty());
    assert!(events(&f.app, "identity_linked").await.is_empty());
}

async fn a_provider_trusted_for_a_domain_links_verified_addresses_there(backend: Backend) {
    let f = federation(backend).await;
    let change = idp::manage::upstreams::UpstreamChange {
        auto_link_domains: Some(vec!["example.com".into()]),
        ..Default::default()
    };
    idp::manage::upstreams::update(&f.app.services, "corp", change, idp::manage::Actor::Cli)
        .await
        .unwrap();
    // dora's address is verified here and upstream: linked without asking.
    let dora = f.app.add_user("dora").await;
    let now = f.app.services.clock.now();
    f.app
        .services
        .store
        .mark_email_verified(dora.id, "dora@example.com", now)
        .await
        .unwrap();
    let remote = f.upstream.add_user("dora").await;
    verify_upstream_email(&f.upstream, &remote).await;
    let claims = redeem(&f, continue_with_upstream(&f, &f.app.browser(), "dora").await).await;
    assert_eq!(claims["sub"], dora.id.to_string());
    assert_eq!(
        events(&f.app, "identity_linked").await[0].details["by"],
        "verified_email"
    );

    // erin's address was never verified here: her account is not handed to whoever has the
    // address upstream; she proves it first.
    let erin = f.app.add_user("erin").await;
    let remote = f.upstream.add_user("erin").await;
    verify_upstream_email(&f.upstream, &remote).await;
    let (status, _, html) = continue_with_upstream(&f, &f.app.browser(), "erin").await.page();
    assert_eq!(status, 200);
    assert!(html.contains("Link your Corporate login account"), "{html}");
    assert!(links_of(&f.app, erin.id).await.is_empty());
}

async fn a_forged_callback_is_refused(backend: Backend) {
    let f = federation(backend).await;
    // No sign-in was started in this browser: no flow cookie, whatever the state says.
    let forged = format!("{}/upstream/corp/callback?code=abc&state=xyz", f.app.base);
    let (status, _, _) = f.app.browser().visit(&forged).await.page();
    assert_eq!(status, 400);

    // A sign-in started in this browser, answered with another `state` (RFC 6749 §10.12).
    f.upstream.add_user("mia").await;
    let browser = f.app.browser();
    let (_, _, html) = browser
        .visit(&f.app.authorize_url(&f.client.id, "openid"))
        .await
        .page();
    let start = common::federation::upstream_button(&html);
    let to_upstream = browser
        .visit(&format!("{}{start}", f.app.base))
        .await
        .client_url();
    let at = at_upstream(&browser, &f.upstream);
    let answer = at
        .log_in_and_consent(at.visit(to_upstream.as_str()).await, "mia", PASSWORD)
        .await
        .client_url();
    let mut wrong_state = answer.clone();
    let pairs: Vec<(String, String)> = answer
        .query_pairs()
        .map(|(k, v)| {
            (
                k.to_string(),
                if k == "state" {
                    "another".into()
                } else {
                    v.to_string()
                },
            )
        })
        .collect();
    wrong_state.query_pairs_mut().clear().extend_pairs(pairs);
    let (status, _, _) = browser.visit(wrong_state.as_str()).await.page();
    assert_eq!(status, 400);
    assert!(
        f.app
            .services
            .store
            .find_user_by_username("mia")
            .await
            .unwrap()
            .is_none()
    );
    // The genuine answer still completes the sign-in it belongs to.
    assert!(browser.visit(answer.as_str()).await.query("code").is_some());
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

async fn a_response_mixed_up_between_providers_is_refused(backend: Backend) {
    let f = federation(backend).await;
    // A second provider is registered too: the attacker's, say.
    let other = idp::domain::upstream::NewUpstream {
        slug: "other".into(),
        display_name: "Other login".into(),
        icon: None,
        issuer: "https://other.example.com".into(),
        protocol: idp::domain::upstream::Protocol::Oidc,
        token_auth: Default::default(),
        client_id: "aimpact".into(),
        scopes: vec![],
        claims: Default::default(),
        jit: true,
        trust_email: false,
        allowed_domains: vec![],
        auto_link_domains: vec![],
        allowed_clients: vec![],
    };
    let secret = secrecy::SecretString::from("other-secret".to_string());
    idp::manage::upstreams::register(&f.app.services, other, &secret, idp::manage::Actor::Cli)
        .await
        .unwrap();
    f.upstream.add_user("mia").await;
    let browser = f.app.browser();
    let (_, _, html) = browser
        .visit(&f.app.authorize_url(&f.client.id, "openid"))
        .await
        .page();
    let corp = scraper::Html::parse_document(&html)
        .select(&scraper::Selector::parse("a.upstream").unwrap())
        .map(|a| a.value().attr("href").unwrap().to_string())
        .find(|href| href.starts_with("/upstream/corp/"))
        .unwrap();
    let to_upstream = browser.visit(&format!("{}{corp}", f.app.base)).await.client_url();
    let at = at_upstream(&browser, &f.upstream);
    let login = at.visit(to_upstream.as_str()).await;
    let answer = at.log_in_and_consent(login, "mia", PASSWORD).await.client_url();

    // The answer delivered to the other provider's callback: not the sign-in it started.
    let mut elsewhere = answer.clone();
    elsewhere.set_path("/upstream/other/callback");
    let (status, _, _) = browser.visit(elsewhere.as_str()).await.page();
    assert_eq!(status, 400);

    // The answer claiming to come from the other provider (RFC 9207 §2.4): refused before
    // the code is spent, and nobody signed in.
    let mut claimed: url::Url = answer.clone();
    let pairs: Vec<(String, String)> = answer
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "iss" {
                "https://other.example.com".into()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    claimed.query_pairs_mut().clear().extend_pairs(pairs);
    let (status, _, html) = browser.visit(claimed.as_str()).await.page();
    assert_eq!(status, 401);
    assert!(html.contains("Signing in with Corporate login failed"), "{html}");
    assert!(
        f.app
            .services
            .store
            .find_user_by_username("mia")
            .await
            .unwrap()
            .is_none()
    );
}

async fn an_idp_hint_goes_straight_to_the_provider(backend: Backend) {
    let f = federation(backend).await;
    f.upstream.add_user("hugo").await;
    let browser = f.app.browser();
    let hinted = format!("{}&idp_hint=corp", f.app.authorize_url(&f.client.id, "openid"));
    // No login page here: the browser is sent on to the upstream.
    let to_upstream = browser.visit(&hinted).await.client_url();
    assert!(
        to_upstream.as_str().starts_with(&upstream_url(&f.upstream)),
        "{to_upstream}"
    );
    let at = at_upstream(&browser, &f.upstream);
    let login = at.visit(to_upstream.as_str()).await;
    let back = at.log_in_and_consent(login, "hugo", PASSWORD).await.client_url();
    let claims = redeem(&f, browser.visit(back.as_str()).await).await;
    assert_eq!(claims["amr"][0], "fed");

    // A provider the login may not use, or no provider at all: the login page.
    for hint in ["nobody", "Not a slug!"] {
        let url = format!(
            "{}&idp_hint={}",
            f.app.authorize_url(&f.client.id, "openid"),
            url::form_urlencoded::byte_serialize(hint.as_bytes()).collect::<String>()
        );
        let (status, _, html) = f.app.browser().visit(&url).await.page();
        assert_eq!(status, 200);
        assert!(html.contains("name=\"password\""), "{html}");
    }
}

/// With `private_key_jwt`, this provider signs its client assertion with its own key, which
/// the upstream (a second `idp`, checking RFC 7523 strictly) reads from this provider's JWKS;
/// no secret exists.
async fn a_provider_taking_private_key_jwt_signs_users_in_without_a_secret(backend: Backend) {
    let f = federation_authenticating_by(backend, idp::domain::upstream::TokenAuth::PrivateKeyJwt).await;
    f.upstream.add_user("ursula").await;
    let claims = redeem(&f, continue_with_upstream(&f, &f.app.browser(), "ursula").await).await;
    assert_eq!(claims["amr"][0], "fed");
    let failures = events(&f.upstream, "client_authentication_failed").await;
    assert!(failures.is_empty(), "{failures:?}");
    let stored = f.app.services.store.find_upstream("corp").await.unwrap().unwrap();
    let secret = idp::manage::upstreams::client_secret(&f.app.services, &stored).unwrap();
    assert_eq!(
        secrecy::ExposeSecret::expose_secret(&secret),
        "",
        "no secret is kept"
    );
}

on_both_backends!(
    a_provider_taking_private_key_jwt_signs_users_in_without_a_secret,
    a_disabled_provider_is_neither_offered_nor_usable,
    a_new_user_signs_in_with_the_upstream_and_comes_back,
    an_unverified_address_is_never_matched_to_an_account,
    an_existing_account_is_linked_only_after_its_owner_proves_it,
    a_pending_link_is_made_only_in_the_browser_that_signed_in_upstream,
    a_provider_trusted_for_a_domain_links_verified_addresses_there,
    a_forged_callback_is_refused,
    a_response_mixed_up_between_providers_is_refused,
    an_idp_hint_goes_straight_to_the_provider,
);
