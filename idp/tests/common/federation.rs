//! Federation test setup: this provider and a second `idp` as its upstream OpenID provider on
//! `localhost` (so the two keep their cookies apart in one browser), registered as `corp`
//! (JIT, trusted addresses), with the upstream's client sending back-channel logouts here.

use serde_json::Value;

use super::browser::{Browser, Landing};
use super::{Backend, PASSWORD, Registered, TestApp, jwt_claims, spawn_app, spawn_app_on_localhost};

pub struct Federation {
    /// This provider, where the relying party's users sign in.
    pub app: TestApp,
    /// The upstream provider, where they have their identity.
    pub upstream: TestApp,
    pub client: Registered,
}

pub async fn federation(backend: Backend) -> Federation {
    federation_authenticating_by(backend, idp::domain::upstream::TokenAuth::ClientSecretBasic).await
}

/// The same, this provider authenticating at the upstream's token endpoint by `token_auth`
/// (with `private_key_jwt`, the upstream reads this provider's keys from its `/jwks`).
pub async fn federation_authenticating_by(
    backend: Backend,
    token_auth: idp::domain::upstream::TokenAuth,
) -> Federation {
    federation_at(spawn_app(backend).await, token_auth).await
}

/// The same with `app` (a server with mail, say) as this provider.
pub async fn federation_at(app: TestApp, token_auth: idp::domain::upstream::TokenAuth) -> Federation {
    let private_key_jwt = token_auth == idp::domain::upstream::TokenAuth::PrivateKeyJwt;
    let upstream = spawn_app_on_localhost(Backend::Sqlite).await;
    let callback = format!("{}/upstream/corp/callback", app.base);
    let at_upstream = upstream
        .add_client(false, |c| {
            c.redirect_uris =
                vec![idp::domain::client::RedirectUri::parse(&callback, c.client_type).unwrap()];
            c.first_party = true;
            c.backchannel_logout_uri = Some(format!("{}/upstream/corp/backchannel-logout", app.base));
            if private_key_jwt {
                c.token_endpoint_auth_method =
                    Some(idp::domain::client::TokenEndpointAuthMethod::PrivateKeyJwt);
                c.jwks_uri = Some(format!("{}/jwks", app.base));
            }
        })
        .await;
    let new = idp::domain::upstream::NewUpstream {
        slug: "corp".into(),
        display_name: "Corporate login".into(),
        icon: None,
        issuer: upstream.services.settings.issuer_str().to_string(),
        protocol: idp::domain::upstream::Protocol::Oidc,
        token_auth,
        client_id: at_upstream.id.clone(),
        scopes: vec!["email".into(), "profile".into()],
        jit: true,
        trust_email: true,
        claims: Default::default(),
        allowed_domains: vec![],
        auto_link_domains: vec![],
        allowed_clients: vec![],
    };
    let secret = secrecy::SecretString::from(match token_auth {
        idp::domain::upstream::TokenAuth::PrivateKeyJwt => String::new(),
        _ => at_upstream.secret.clone().unwrap(),
    });
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
pub fn upstream_url(upstream: &TestApp) -> String {
    upstream.services.settings.issuer_str().to_string()
}

/// The browser at the upstream: the same cookies, its own pages.
pub fn at_upstream(browser: &Browser, upstream: &TestApp) -> Browser {
    Browser {
        http: browser.http.clone(),
        jar: browser.jar.clone(),
        base: upstream_url(upstream),
        authenticator: upstream.authenticator.clone(),
    }
}

/// From the relying party's login page through "Continue with Corporate login" and the
/// upstream's login as `username`, back to this provider: where that ends.
pub async fn continue_with_upstream(f: &Federation, browser: &Browser, username: &str) -> Landing {
    let (_, _, html) = browser
        .visit(&f.app.authorize_url(&f.client.id, "openid email"))
        .await
        .page();
    assert!(html.contains("Continue with Corporate login"), "{html}");
    let href = upstream_button(&html);
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

pub async fn redeem(f: &Federation, landing: Landing) -> Value {
    redeem_at(&f.app, &f.client, landing).await
}

/// The ID token's claims for the code the landing carries.
pub async fn redeem_at(app: &TestApp, client: &Registered, landing: Landing) -> Value {
    let tokens = app.redeem_code(client, &landing.query("code").unwrap()).await;
    jwt_claims(tokens["id_token"].as_str().unwrap())
}

/// The href of the login page's "Continue with" button.
pub fn upstream_button(html: &str) -> String {
    scraper::Html::parse_document(html)
        .select(&scraper::Selector::parse("a.upstream").unwrap())
        .next()
        .unwrap_or_else(|| panic!("no provider button: {html}"))
        .value()
        .attr("href")
        .unwrap()
        .to_string()
}

/// The security events of `kind`, newest first.
pub async fn events(app: &TestApp, kind: &str) -> Vec<idp::audit::SecurityEvent> {
    let query = idp::audit::EventQuery {
        event_type: idp::audit::EventType::parse(kind),
        limit: 100,
        ..Default::default()
    };
    app.services.store.query_events(&query).await.unwrap()
}
