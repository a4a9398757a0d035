//! Signing in with a plain OAuth 2.0 provider, GitHub-style: no ID token, the user read from
//! its user API and the address from its address list. The upstream is a small server on
//! 127.0.0.1 that answers as GitHub's documentation describes ("Authorizing OAuth apps", REST
//! "Get the authenticated user" and "List email addresses for the authenticated user"): codes
//! for one redirect URI and PKCE challenge, JSON tokens for `Accept: application/json`, 200
//! with an `error` member for a bad code, and 403 for an API request without a user agent.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use common::browser::{Browser, Landing, form};
use common::{Backend, PASSWORD, Registered, TestApp, jwt_claims, spawn_app};
use serde_json::{Value, json};

const CLIENT_ID: &str = "Iv1.8a61f9b3a7aba766";
const CLIENT_SECRET: &str = "github-client-secret-1b2c3d";

/// A user signed in at the GitHub-style provider.
#[derive(Clone)]
struct GitHubUser {
    id: u64,
    login: &'static str,
    /// Their addresses: (address, primary, verified).
    emails: Vec<(&'static str, bool, bool)>,
}

#[derive(Default)]
struct GitHubState {
    /// Who is signed in there (the provider's own login is not what is tested).
    signed_in: Mutex<Option<GitHubUser>>,
    /// code → (user, redirect URI, PKCE challenge).
    codes: Mutex<HashMap<String, (GitHubUser, String, String)>>,
    tokens: Mutex<HashMap<String, GitHubUser>>,
}

struct GitHub {
    base: String,
    state: Arc<GitHubState>,
}

impl GitHub {
    async fn start() -> Self {
        let state = Arc::new(GitHubState::default());
        let (listener, base) = common::local_listener();
        let data = web::Data::from(state.clone());
        common::serve(listener, move |routes| {
            routes
                .app_data(data.clone())
                .route("/login/oauth/authorize", web::get().to(authorize))
                .route("/login/oauth/access_token", web::post().to(access_token))
                .route("/user", web::get().to(user))
                .route("/user/emails", web::get().to(user_emails));
        });
        Self { base, state }
    }

    fn sign_in(&self, user: GitHubUser) {
        *self.state.signed_in.lock().unwrap() = Some(user);
    }
}

fn random() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

async fn authorize(
    query: web::Query<HashMap<String, String>>,
    state: web::Data<GitHubState>,
) -> HttpResponse {
    let q = |name: &str| query.get(name).cloned().unwrap_or_default();
    assert_eq!(q("client_id"), CLIENT_ID);
    assert_eq!(q("response_type"), "code");
    assert_eq!(q("code_challenge_method"), "S256");
    assert_eq!(q("scope"), "read:user user:email");
    let user = state.signed_in.lock().unwrap().clone().unwrap();
    let code = random();
    state
        .codes
        .lock()
        .unwrap()
        .insert(code.clone(), (user, q("redirect_uri"), q("code_challenge")));
    let mut back = url::Url::parse(&q("redirect_uri")).unwrap();
    back.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &q("state"));
    HttpResponse::Found()
        .insert_header(("Location", back.to_string()))
        .finish()
}

async fn access_token(
    req: HttpRequest,
    body: web::Form<HashMap<String, String>>,
    state: web::Data<GitHubState>,
) -> HttpResponse {
    // The client authenticates with HTTP Basic (RFC 6749 §2.3.1) or in the body.
    let basic = req
        .headers()
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok());
    let body_credentials = format!(
        "{}:{}",
        body.get("client_id").cloned().unwrap_or_default(),
        body.get("client_secret").cloned().unwrap_or_default()
    );
    let authenticated = basic.unwrap_or(body_credentials) == format!("{CLIENT_ID}:{CLIENT_SECRET}");
    let granted = state
        .codes
        .lock()
        .unwrap()
        .remove(body.get("code").map(String::as_str).unwrap_or_default());
    let verifier = body.get("code_verifier").cloned().unwrap_or_default();
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        verifier.as_bytes(),
    ));
    let answer = match granted {
        _ if !authenticated => json!({ "error": "incorrect_client_credentials" }),
        Some((user, redirect_uri, expected))
            if body.get("redirect_uri") == Some(&redirect_uri) && challenge == expected =>
        {
            let token = format!("gho_{}", random());
            state.tokens.lock().unwrap().insert(token.clone(), user);
            json!({ "access_token": token, "token_type": "bearer", "scope": "read:user,user:email" })
        }
        _ => json!({ "error": "bad_verification_code" }),
    };
    // GitHub answers JSON only when asked to, and its errors with 200.
    assert!(
        req.headers()
            .get("accept")
            .unwrap()
            .to_str()
            .unwrap()
            .contains("application/json")
    );
    HttpResponse::Ok().json(answer)
}

/// The user behind the request's token, if it has a user agent and a token.
fn authorized(req: &HttpRequest, state: &GitHubState) -> Result<GitHubUser, HttpResponse> {
    if !req.headers().contains_key("user-agent") {
        return Err(HttpResponse::Forbidden().body("Please make sure your request has a User-Agent header"));
    }
    let token = req
        .headers()
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .unwrap_or_default();
    let found = state.tokens.lock().unwrap().get(token).cloned();
    found.ok_or_else(|| HttpResponse::Unauthorized().json(json!({ "message": "Requires authentication" })))
}

async fn user(req: HttpRequest, state: web::Data<GitHubState>) -> HttpResponse {
    match authorized(&req, &state) {
        // Its `email` is the public address only: here none.
        Ok(user) => HttpResponse::Ok().json(json!({
            "login": user.login, "id": user.id, "name": "The Octocat", "email": null, "type": "User",
        })),
        Err(refused) => refused,
    }
}

async fn user_emails(req: HttpRequest, state: web::Data<GitHubState>) -> HttpResponse {
    match authorized(&req, &state) {
        Ok(user) => {
            let list: Vec<Value> = user
                .emails
                .iter()
                .map(|(email, primary, verified)| {
                    json!({ "email": email, "primary": primary, "verified": verified, "visibility": null })
                })
                .collect();
            HttpResponse::Ok().json(list)
        }
        Err(refused) => refused,
    }
}

struct Setup {
    app: TestApp,
    github: GitHub,
    client: Registered,
}

/// This provider with the GitHub-style upstream registered as `kind github`, its endpoints
/// pointed at the local server.
async fn setup(backend: Backend, client_secret: &str) -> Setup {
    let app = spawn_app(backend).await;
    let github = GitHub::start().await;
    let draft = idp::domain::upstream::UpstreamDraft {
        kind: Some("github".into()),
        slug: "github".into(),
        display_name: "GitHub".into(),
        client_id: CLIENT_ID.into(),
        jit: true,
        trust_email: true,
        authorization_endpoint: Some(format!("{}/login/oauth/authorize", github.base)),
        token_endpoint: Some(format!("{}/login/oauth/access_token", github.base)),
        userinfo_endpoint: Some(format!("{}/user", github.base)),
        emails_endpoint: Some(format!("{}/user/emails", github.base)),
        ..Default::default()
    };
    app.add_upstream(draft, client_secret).await;
    let client = app.add_client(false, |c| c.first_party = true).await;
    Setup { app, github, client }
}

/// From the login page through "Continue with GitHub" (signed in there already) back here.
async fn continue_with_github(s: &Setup, browser: &Browser) -> Landing {
    let (_, _, html) = browser
        .visit(&s.app.authorize_url(&s.client.id, "openid email"))
        .await
        .page();
    assert!(html.contains("Continue with GitHub"), "{html}");
    // No icon registered: the button shows the provider's initial.
    assert!(html.contains(r#"data-initial="G""#), "{html}");
    let href = scraper::Html::parse_document(&html)
        .select(&scraper::Selector::parse("a.upstream").unwrap())
        .next()
        .unwrap()
        .value()
        .attr("href")
        .unwrap()
        .to_string();
    let to_github = browser.visit(&format!("{}{href}", s.app.base)).await.client_url();
    assert!(to_github.as_str().starts_with(&s.github.base), "{to_github}");
    // GitHub redirects straight back (the user has authorized the app before).
    let back = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(to_github)
        .send()
        .await
        .unwrap();
    let back = back.headers()["location"].to_str().unwrap().to_string();
    assert!(
        back.starts_with(&format!("{}/upstream/github/callback", s.app.base)),
        "{back}"
    );
    browser.visit(&back).await
}

/// The ID token's claims for the code the landing carries.
async fn id_token(s: &Setup, landing: Landing) -> Value {
    let tokens = s
        .app
        .redeem_code(&s.client, &landing.query("code").unwrap())
        .await;
    jwt_claims(tokens["id_token"].as_str().unwrap())
}

const OCTOCAT: GitHubUser = GitHubUser {
    id: 583231,
    login: "octocat",
    emails: Vec::new(),
};

async fn a_github_user_signs_in_from_the_user_api_and_comes_back(backend: Backend) {
    let s = setup(backend, CLIENT_SECRET).await;
    s.github.sign_in(GitHubUser {
        emails: vec![
            ("octocat@old.example", false, false),
            ("octocat@example.com", true, true),
        ],
        ..OCTOCAT
    });
    let first = id_token(&s, continue_with_github(&s, &s.app.browser()).await).await;
    // No ID token upstream: `fed` only, nothing taken from an API about how they signed in.
    assert_eq!(first["amr"], json!(["fed"]), "{first}");
    let local = uuid::Uuid::parse_str(first["sub"].as_str().unwrap()).unwrap();
    let user = s.app.services.store.find_user(local).await.unwrap().unwrap();
    assert_eq!(user.username.as_str(), "octocat", "from `login`");
    assert_eq!(user.name.as_deref(), Some("The Octocat"));
    // The primary address of the list, verified there (and the provider trusted for it).
    assert_eq!(
        user.email.as_ref().map(|e| e.as_str()),
        Some("octocat@example.com")
    );
    assert!(user.email_verified);
    // The identity is GitHub's numeric id, never the login (which can be renamed and reused).
    let links = s.app.services.store.identities_of_user(local).await.unwrap();
    assert_eq!(links.len(), 1);
    assert_eq!(
        (links[0].issuer.as_str(), links[0].subject.as_str()),
        ("https://github.com", "583231")
    );

    // The next sign-in is the same account, even after a rename there.
    s.github.sign_in(GitHubUser {
        login: "octocat-renamed",
        emails: vec![("octocat@example.com", true, true)],
        ..OCTOCAT
    });
    let again = id_token(&s, continue_with_github(&s, &s.app.browser()).await).await;
    assert_eq!(again["sub"], first["sub"]);
}

async fn an_unverified_primary_address_is_never_matched(backend: Backend) {
    let s = setup(backend, CLIENT_SECRET).await;
    let victim = s.app.add_user("victim").await;
    let address = victim.email.as_ref().unwrap().as_str();
    assert!(
        s.app
            .services
            .store
            .mark_email_verified(victim.id, address, s.app.services.clock.now())
            .await
            .unwrap()
    );
    let address: &'static str = Box::leak(address.to_string().into_boxed_str());
    // An attacker's GitHub account claims the victim's address without verifying it.
    s.github.sign_in(GitHubUser {
        id: 1,
        login: "mallory",
        emails: vec![(address, true, false)],
    });
    let claims = id_token(&s, continue_with_github(&s, &s.app.browser()).await).await;
    let local = uuid::Uuid::parse_str(claims["sub"].as_str().unwrap()).unwrap();
    assert_ne!(local, victim.id, "never the account that has the address");
    let created = s.app.services.store.find_user(local).await.unwrap().unwrap();
    assert_eq!(created.email, None, "and the address stays off the new account");

    // A verified primary address an account has: its owner must prove that account first.
    s.github.sign_in(GitHubUser {
        id: 2,
        login: "victim-at-github",
        emails: vec![(address, true, true)],
    });
    let browser = s.app.browser();
    let (status, _, html) = continue_with_github(&s, &browser).await.page();
    assert_eq!(status, 200);
    assert!(html.contains("Link your GitHub account"), "{html}");
    assert!(
        s.app
            .services
            .store
            .find_identity("https://github.com", "2")
            .await
            .unwrap()
            .is_none()
    );
    // The owner signs in here, and the identity is linked to their account.
    let proof = form(&html).set("username", "victim").set("password", PASSWORD);
    let claims = id_token(&s, browser.submit(&proof).await).await;
    assert_eq!(claims["sub"], victim.id.to_string());
    let linked = s
        .app
        .services
        .store
        .find_identity("https://github.com", "2")
        .await
        .unwrap();
    assert_eq!(linked.map(|i| i.user_id), Some(victim.id));
}

async fn a_refused_code_exchange_signs_no_one_in(backend: Backend) {
    let s = setup(backend, "not-the-secret").await;
    s.github.sign_in(GitHubUser {
        emails: vec![("octocat@example.com", true, true)],
        ..OCTOCAT
    });
    let (status, _, html) = continue_with_github(&s, &s.app.browser()).await.page();
    // The login page again, saying so, as after a wrong password.
    assert_eq!(status, 401);
    assert!(html.contains("Signing in with GitHub failed."), "{html}");
    let query = idp::audit::EventQuery {
        event_type: idp::audit::EventType::parse("login_failed"),
        limit: 10,
        ..Default::default()
    };
    let failed = s.app.services.store.query_events(&query).await.unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].details["upstream"], "github");
    assert!(
        s.app
            .services
            .store
            .find_identity("https://github.com", "583231")
            .await
            .unwrap()
            .is_none()
    );
}

on_both_backends!(
    a_github_user_signs_in_from_the_user_api_and_comes_back,
    an_unverified_primary_address_is_never_matched,
    a_refused_code_exchange_signs_no_one_in,
);
