//! panva's `oidc-provider` as an independent, certified upstream OpenID provider: a user
//! signs in there and gets an account here from its ID token and userinfo claims.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::browser::Browser;
use common::federation::{redeem_at, upstream_button};
use common::{Backend, spawn_app};

/// panva's `oidc-provider` (npm, pinned in `e2e/oidc-provider`, installed by
/// `scripts/install-tools.sh --test`): an independent, certified OpenID provider as the
/// upstream. Its development login pages take any login and password; the login is the
/// subject. Stopped when dropped.
struct OidcProvider {
    child: std::process::Child,
    issuer: String,
    /// Its standard output, kept open (a closed pipe would stop it at its next line).
    _stdout: std::io::BufReader<std::process::ChildStdout>,
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn oidc_provider(client_id: &str, secret: &str, redirect_uri: &str) -> OidcProvider {
    use std::io::BufRead;
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../e2e/oidc-provider");
    assert!(
        dir.join("node_modules/oidc-provider").exists(),
        "oidc-provider is not installed: run scripts/install-tools.sh --test"
    );
    let port = common::process::free_port();
    let issuer = format!("http://localhost:{port}");
    let mut child = std::process::Command::new("node")
        .arg("op.mjs")
        .current_dir(&dir)
        .env("PORT", port.to_string())
        .env("ISSUER", &issuer)
        .env("CLIENT_ID", client_id)
        .env("CLIENT_SECRET", secret)
        .env("REDIRECT_URI", redirect_uri)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("node runs");
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert_eq!(first.trim(), "ready", "oidc-provider did not start");
    OidcProvider {
        child,
        issuer,
        _stdout: stdout,
    }
}

async fn an_independent_openid_provider_signs_users_in(backend: Backend) {
    let app = spawn_app(backend).await;
    let secret = "oidc-provider-client-secret";
    let op = oidc_provider(
        "aimpact",
        secret,
        &format!("{}/upstream/panva/callback", app.base),
    );
    let new = idp::domain::upstream::NewUpstream {
        slug: "panva".into(),
        display_name: "oidc-provider".into(),
        icon: None,
        issuer: op.issuer.clone(),
        protocol: idp::domain::upstream::Protocol::Oidc,
        token_auth: Default::default(),
        client_id: "aimpact".into(),
        scopes: vec!["email".into(), "profile".into()],
        claims: Default::default(),
        jit: true,
        trust_email: true,
        allowed_domains: vec![],
        auto_link_domains: vec![],
        allowed_clients: vec![],
    };
    let secret = secrecy::SecretString::from(secret.to_string());
    idp::manage::upstreams::register(&app.services, new, &secret, idp::manage::Actor::Cli)
        .await
        .unwrap();
    let client = app.add_client(false, |c| c.first_party = true).await;

    let browser = app.browser();
    let (_, _, html) = browser
        .visit(&app.authorize_url(&client.id, "openid email"))
        .await
        .page();
    let start = upstream_button(&html);
    let to_op = browser.visit(&format!("{}{start}", app.base)).await.client_url();
    // At oidc-provider: its login page, then its consent page.
    let at_op = Browser {
        http: browser.http.clone(),
        jar: browser.jar.clone(),
        base: op.issuer.clone(),
        authenticator: app.authenticator.clone(),
    };
    let (_, _, login) = at_op.visit(to_op.as_str()).await.page();
    let consent = at_op
        .submit(
            &common::browser::form(&login)
                .set("login", "nina")
                .set("password", "anything"),
        )
        .await;
    let (_, _, consent) = consent.page();
    let back = at_op.submit(&common::browser::form(&consent)).await.client_url();
    assert!(back.path().ends_with("/upstream/panva/callback"), "{back}");
    // RFC 9207: oidc-provider names itself in its answer.
    assert!(back.query_pairs().any(|(k, v)| k == "iss" && v == op.issuer));

    let claims = redeem_at(&app, &client, browser.visit(back.as_str()).await).await;
    assert_eq!(claims["amr"][0], "fed", "{claims}");
    let local = uuid::Uuid::parse_str(claims["sub"].as_str().unwrap()).unwrap();
    let user = app.services.store.find_user(local).await.unwrap().unwrap();
    assert_eq!(user.username.as_str(), "nina");
    // Its ID token carries only `sub`: the address came from its userinfo endpoint, verified
    // there and trusted here.
    assert_eq!(user.email.as_ref().map(|e| e.as_str()), Some("nina@example.org"));
    assert!(user.email_verified);
    let links = app.services.store.identities_of_user(local).await.unwrap();
    assert_eq!(links.len(), 1);
    assert_eq!(
        (links[0].issuer.as_str(), links[0].subject.as_str()),
        (op.issuer.as_str(), "nina")
    );
}

on_both_backends!(an_independent_openid_provider_signs_users_in);
