//! The login and consent pages (GET renders, POST decides) and theme stylesheets.

use actix_web::cookie::SameSite;
use actix_web::http::StatusCode;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use secrecy::SecretString;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::flow;
use super::interaction::{Interaction, Proven, Step};
use super::protection::{self, Gate};

use super::{cookies, session};
use crate::audit::{EventType, Outcome, SecurityEvent};
use crate::domain::mfa;
use crate::domain::user::{User, UserStatus, Username};
use crate::http::html;
use crate::http::meta::RequestMeta;
use crate::manage::record;
use crate::oidc::authorize::{self, error_page, render};
use crate::oidc::error::OAuthError;
use crate::oidc::request::Target;
use crate::security::password::Verification;
use crate::security::random;
use crate::startup::AppState;

pub const PRODUCT: &str = "AImpact Identity";
/// Shown for every failed login: never says which of username or password was wrong.
const LOGIN_FAILED: &str = "Incorrect username or password.";

#[derive(Deserialize)]
pub struct InteractionQuery {
    pub(super) interaction: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginForm {
    csrf: String,
    interaction: String,
    username: String,
    password: String,
}

#[derive(Deserialize)]
pub struct ConsentForm {
    csrf: String,
    interaction: String,
    decision: String,
}

/// A CSRF value chosen for this request's answer, which sets it as the cookie: the answer to
/// an upstream provider's callback, a cross-site navigation with which the browser does not
/// send the SameSite=Strict cookie. The binding computed there and the forms of the page it
/// renders then agree on one value.
#[derive(Clone)]
pub(crate) struct FreshCsrf(pub String);

/// The CSRF cookie value, creating one when the browser has none yet.
pub(crate) fn csrf_cookie(
    state: &AppState,
    req: &HttpRequest,
) -> (String, Option<actix_web::cookie::Cookie<'static>>) {
    let settings = &state.services.settings;
    if let Some(FreshCsrf(value)) = req.extensions().get::<FreshCsrf>().cloned() {
        let cookie = cookies::build(settings, cookies::CSRF, value.clone(), SameSite::Strict, None);
        return (value, Some(cookie));
    }
    match req.cookie(&cookies::name(settings, cookies::CSRF)) {
        Some(c) if c.value().len() >= 32 => (c.value().to_string(), None),
        _ => {
            let value = random::token::<32>().unwrap_or_default();
            (
                value.clone(),
                Some(cookies::build(
                    settings,
                    cookies::CSRF,
                    value,
                    SameSite::Strict,
                    None,
                )),
            )
        }
    }
}

/// This browser's CSRF cookie value, if it has one.
pub(crate) fn csrf_value(state: &AppState, req: &HttpRequest) -> Option<String> {
    if let Some(FreshCsrf(value)) = req.extensions().get::<FreshCsrf>() {
        return Some(value.clone());
    }
    req.cookie(&cookies::name(&state.services.settings, cookies::CSRF))
        .map(|c| c.value().to_string())
        .filter(|v| v.len() >= 32)
}

/// Double-submit check: the form's token must be the MAC of this browser's CSRF cookie.
pub(crate) fn csrf_ok(state: &AppState, req: &HttpRequest, token: &str) -> bool {
    let Some(cookie) = csrf_value(state, req) else {
        return false;
    };
    let expected = state.interactions.tag("csrf", &cookie);
    expected.as_bytes().ct_eq(token.as_bytes()).into()
}

pub(super) fn open_interaction(state: &AppState, sealed: Option<&str>) -> Result<Interaction, HttpResponse> {
    let now = state.services.clock.now();
    sealed
        .and_then(|s| state.interactions.open(s, now))
        .ok_or_else(|| {
            error_page(
                state,
                &OAuthError::invalid_request(
                    "this sign-in link has expired or is invalid; start again from the application",
                ),
            )
        })
}

/// The interaction of a submitted form, once its CSRF token checks out.
pub(super) fn submitted_interaction(
    state: &AppState,
    req: &HttpRequest,
    sealed: &str,
    csrf: &str,
) -> Result<Interaction, HttpResponse> {
    let interaction = open_interaction(state, Some(sealed))?;
    if !csrf_ok(state, req, csrf) {
        return Err(error_page(
            state,
            &OAuthError::invalid_request("the form expired; go back and try again"),
        ));
    }
    Ok(interaction)
}

/// The browser's session and user, or the page to answer instead: the login page when
/// there is no session, an error page when the store fails.
pub(super) async fn logged_in(
    state: &AppState,
    req: &HttpRequest,
    interaction: &Interaction,
) -> Result<(crate::domain::session::Session, User), HttpResponse> {
    match session::current(&state.services, req, state.services.clock.now()).await {
        Ok(Some(current)) => Ok(current),
        Ok(None) => Err(render(
            state,
            authorize::Next::interact(interaction.clone().at(Step::Authenticate)),
        )),
        Err(e) => Err(error_page(state, &e.into())),
    }
}

/// The browser's session and user for the consent step: the interaction must be at
/// [`Step::Consent`] and belong to this very session, or the page to answer instead.
async fn consenting(
    state: &AppState,
    req: &HttpRequest,
    interaction: &Interaction,
) -> Result<(crate::domain::session::Session, User), HttpResponse> {
    at_session_step(state, req, interaction, &Step::Consent).await
}

/// The browser's session and user for a step after the login (`step`): the interaction
/// must be at it and belong to this very session, or the page to answer instead.
pub(super) async fn at_session_step(
    state: &AppState,
    req: &HttpRequest,
    interaction: &Interaction,
    step: &Step,
) -> Result<(crate::domain::session::Session, User), HttpResponse> {
    let (session, user) = logged_in(state, req, interaction).await?;
    if interaction.step != *step || interaction.login_sid.as_deref() != Some(session.sid.as_str()) {
        return Err(wrong_step(state));
    }
    Ok((session, user))
}

/// A form posted to a page its interaction is not at (e.g. a password-change form's values
/// sent to `/consent`): nothing happens.
pub(super) fn wrong_step(state: &AppState) -> HttpResponse {
    error_page(
        state,
        &OAuthError::invalid_request(
            "this sign-in step is not available now; start again from the application",
        ),
    )
}

pub(super) async fn client_name(state: &AppState, client_id: &str) -> (String, Option<String>) {
    match state.services.store.find_client(client_id).await {
        Ok(Some(c)) => (c.name, c.theme),
        _ => (String::new(), None),
    }
}

async fn login_page(
    state: &AppState,
    req: &HttpRequest,
    interaction: &Interaction,
    username: &str,
    error: Option<&str>,
) -> HttpResponse {
    let (csrf_value, new_cookie) = csrf_cookie(state, req);
    let (client_name, client_theme) = client_name(state, &interaction.request.client_id).await;
    let (theme_name, theme) = state.themes.get(client_theme.as_deref());
    let passkey = super::passkey::offer(state, &csrf_value, super::passkey::Offer::SignIn).await;
    let with_script = passkey.is_some();
    let linking = interaction.link.as_ref().map(|l| l.display_name.clone());
    let context = minijinja::context! {
        product => PRODUCT,
        css_url => format!("/theme/{theme_name}/style.css"),
        action => "/login",
        passkey_action => "/login/passkey",
        client_name => client_name,
        username => username,
        error => error,
        csrf => state.interactions.tag("csrf", &csrf_value),
        interaction => state.interactions.seal(interaction),
        passkey => passkey,
        registration => state.services.settings.registration && linking.is_none(),
        // Linking: the identity waits for the account's proof; no other way in is offered.
        linking => linking,
        upstreams => if linking.is_some() {
            vec![]
        } else {
            super::upstream::offered(&state.services, &interaction.request.client_id)
                .await
                .into_iter()
                .map(|u| {
                    let initial = u.display_name.chars().next().map(|c| c.to_uppercase().to_string());
                    minijinja::context! { slug => u.slug, display_name => u.display_name, icon => u.icon, initial => initial }
                })
                .collect::<Vec<_>>()
        },
    };
    let status = if error.is_some() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    let form_action = html::csp_source(&interaction.request.redirect_uri);
    let mut response = match theme.render("login.html", context) {
        Ok(body) if with_script => html::page_with_own_scripts(status, body, Some(&form_action)),
        Ok(body) => html::page(status, body, Some(&form_action), None),
        Err(e) => return error_page(state, &OAuthError::internal(e)),
    };
    if let Some(cookie) = new_cookie {
        let _ = response.add_cookie(&cookie);
    }
    response
}

/// The login page in "link" mode: an upstream identity waits for the account it is to be
/// linked to, which the user proves here.
pub(super) async fn link_page(
    state: &AppState,
    req: &HttpRequest,
    interaction: &Interaction,
) -> HttpResponse {
    login_page(state, req, interaction, "", None).await
}

/// The login page again, with `error` (a passkey that did not work, a refused attempt).
pub(super) async fn login_page_with_error(
    state: &AppState,
    req: &HttpRequest,
    interaction: &Interaction,
    error: &str,
) -> HttpResponse {
    login_page(state, req, interaction, "", Some(error)).await
}

pub async fn login_form(
    req: HttpRequest,
    query: web::Query<InteractionQuery>,
    state: web::Data<AppState>,
) -> HttpResponse {
    match open_interaction(&state, query.interaction.as_deref()) {
        Ok(interaction) => {
            if let Some(to_upstream) = super::upstream::hinted(&state, &interaction).await {
                return to_upstream;
            }
            let hint = interaction.request.login_hint.clone().unwrap_or_default();
            login_page(&state, &req, &interaction, &hint, None).await
        }
        Err(page) => page,
    }
}

pub async fn login_submit(
    req: HttpRequest,
    form: web::Form<LoginForm>,
    state: web::Data<AppState>,
    meta: RequestMeta,
) -> HttpResponse {
    let form = form.into_inner();
    let interaction = match submitted_interaction(&state, &req, &form.interaction, &form.csrf) {
        Ok(i) => i,
        Err(page) => return page,
    };
    let services = &state.services;
    let password = SecretString::from(form.password);
    let account_key: String = form.username.trim().to_lowercase().chars().take(128).collect();
    match pass_gate(&state, &account_key, &form.username, &interaction, &meta).await {
        Ok(None) => {}
        Ok(Some((message, retry_after_s))) => {
            let page = login_page(&state, &req, &interaction, &form.username, Some(&message)).await;
            return too_many_attempts(page, retry_after_s);
        }
        Err(e) => return error_page(&state, &e.into()),
    }
    let user = match check_credentials(&state, &form.username, &password, &interaction, &meta).await {
        Ok(Some(user)) => user,
        Ok(None) => {
            let user_id = match Username::parse(&form.username) {
                Ok(name) => services
                    .store
                    .find_user_by_username(&name.key())
                    .await
                    .ok()
                    .flatten()
                    .map(|u| u.id.to_string()),
                Err(_) => None,
            };
            if let Err(e) =
                protection::after_failure(services, &account_key, user_id, &meta, services.clock.now()).await
            {
                return error_page(&state, &e.into());
            }
            return login_page(&state, &req, &interaction, &form.username, Some(LOGIN_FAILED)).await;
        }
        Err(e) => return error_page(&state, &e),
    };
    // The password is proven; what follows (a second factor, a temporary password to
    // replace, an enrolment) is decided in one place. Failures are forgotten only once the
    // whole login succeeds, so a known password cannot reset the count of wrong codes.
    let proven = Proven {
        user_id: user.id,
        amr: vec![mfa::amr::PASSWORD.to_string()],
        binding: flow::browser_binding(&state, &req),
    };
    flow::next(&state, &req, interaction, proven, &meta).await
}

/// Verifies username and password with equal cost whatever is wrong, records the outcome,
/// and returns the user when the login succeeds.
async fn check_credentials(
    state: &AppState,
    username: &str,
    password: &SecretString,
    interaction: &Interaction,
    meta: &RequestMeta,
) -> Result<Option<User>, OAuthError> {
    let services = &state.services;
    let user = match Username::parse(username) {
        Ok(name) => services.store.find_user_by_username(&name.key()).await?,
        Err(_) => None,
    };
    let phc = match &user {
        Some(u) => services.store.password_phc(u.id).await?,
        None => None,
    };
    let verification = services
        .passwords
        .verify(password, phc)
        .await
        .map_err(OAuthError::internal)?;
    let now = services.clock.now();
    let failure = match (&user, &verification) {
        (None, _) => Some("unknown_user"),
        (Some(u), _) if u.status != UserStatus::Active => Some("disabled"),
        (Some(_), Verification::Invalid) => Some("bad_password"),
        (Some(_), Verification::Valid { .. }) => None,
    };
    metrics::counter!(
        "idp_login_attempts_total",
        "outcome" => if failure.is_some() { "failure" } else { "success" },
        "reason" => failure.unwrap_or("none")
    )
    .increment(1);
    let mut event = SecurityEvent::new(
        if failure.is_some() {
            EventType::LoginFailed
        } else {
            EventType::LoginSucceeded
        },
        if failure.is_some() {
            Outcome::Failure
        } else {
            Outcome::Success
        },
        now,
    );
    event.user_id = user.as_ref().map(|u| u.id.to_string());
    event.username = Some(username.chars().take(64).collect());
    event.client_id = Some(interaction.request.client_id.clone());
    if let Some(reason) = failure {
        event.details = serde_json::json!({ "reason": reason });
    }
    record(services, meta.stamp(event)).await;
    if failure.is_some() {
        return Ok(None);
    }
    let Some(user) = user else { return Ok(None) };
    if let Verification::Valid { rehash: Some(phc) } = verification {
        services.store.set_password_phc(user.id, &phc, now).await?;
    }
    services.store.record_login(user.id, now).await?;
    Ok(Some(user))
}

pub async fn consent_form(
    req: HttpRequest,
    query: web::Query<InteractionQuery>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let interaction = match open_interaction(&state, query.interaction.as_deref()) {
        Ok(i) => i,
        Err(page) => return page,
    };
    let user = match consenting(&state, &req, &interaction).await {
        Ok((_, user)) => user,
        Err(page) => return page,
    };
    let (csrf_value, new_cookie) = csrf_cookie(&state, &req);
    let (client_name, client_theme) = client_name(&state, &interaction.request.client_id).await;
    let (theme_name, theme) = state.themes.get(client_theme.as_deref());
    let scopes: Vec<_> = interaction
        .request
        .scopes()
        .iter()
        .map(|s| minijinja::context! { name => s, description => describe_scope(s) })
        .collect();
    let context = minijinja::context! {
        product => PRODUCT,
        css_url => format!("/theme/{theme_name}/style.css"),
        action => "/consent",
        client_name => client_name,
        username => user.username.as_str(),
        scopes => scopes,
        csrf => state.interactions.tag("csrf", &csrf_value),
        interaction => state.interactions.seal(&interaction),
    };
    let mut response = match theme.render("consent.html", context) {
        Ok(body) => html::page(
            StatusCode::OK,
            body,
            Some(&html::csp_source(&interaction.request.redirect_uri)),
            None,
        ),
        Err(e) => return error_page(&state, &OAuthError::internal(e)),
    };
    if let Some(cookie) = new_cookie {
        let _ = response.add_cookie(&cookie);
    }
    response
}

pub async fn consent_submit(
    req: HttpRequest,
    form: web::Form<ConsentForm>,
    state: web::Data<AppState>,
    meta: RequestMeta,
) -> HttpResponse {
    let interaction = match submitted_interaction(&state, &req, &form.interaction, &form.csrf) {
        Ok(i) => i,
        Err(page) => return page,
    };
    let services = &state.services;
    let now = services.clock.now();
    let (session, user) = match consenting(&state, &req, &interaction).await {
        Ok(current) => current,
        Err(page) => return page,
    };
    let request = &interaction.request;
    let target = Target::of(request);
    let allowed = form.decision == "allow";
    let mut event = SecurityEvent::new(
        if allowed {
            EventType::ConsentGranted
        } else {
            EventType::AuthorizationDenied
        },
        if allowed {
            Outcome::Success
        } else {
            Outcome::Failure
        },
        now,
    );
    event.user_id = Some(user.id.to_string());
    event.username = Some(user.username.as_str().to_string());
    event.client_id = Some(request.client_id.clone());
    event.details = serde_json::json!({ "scope": request.scope });
    record(services, meta.stamp(event)).await;
    if !allowed {
        return render(
            &state,
            authorize::error_response(target, &OAuthError::access_denied("the user denied the request")),
        );
    }
    let next = async {
        let mut scopes = services
            .store
            .find_consent(&user.id.to_string(), &request.client_id)
            .await?
            .unwrap_or_default();
        scopes.extend(request.scopes().to_vec());
        scopes.sort();
        scopes.dedup();
        services
            .store
            .save_consent(&user.id.to_string(), &request.client_id, &scopes, now)
            .await?;
        let client = authorize::interaction_client(services, request).await?;
        authorize::issue_code(services, &client, request, &session, &user, now).await
    }
    .await
    .unwrap_or_else(|error| authorize::error_response(target, &error));
    render(&state, next)
}

/// The brute-force gate before a password of `account_key` is checked: waits the delay it
/// asks for, or returns the message and `Retry-After` of a refusal (recorded as an event).
pub(super) async fn pass_gate(
    state: &AppState,
    account_key: &str,
    typed_username: &str,
    interaction: &Interaction,
    meta: &RequestMeta,
) -> Result<Option<(String, u64)>, crate::store::StoreError> {
    let services = &state.services;
    let source = meta.ip.clone().unwrap_or_default();
    match protection::before_attempt(services, account_key, &source, services.clock.now()).await? {
        Gate::Open { delay } => {
            tokio::time::sleep(delay).await;
            Ok(None)
        }
        Gate::Refused {
            retry_after_s,
            reason,
        } => {
            refused_attempt(state, typed_username, interaction, meta, reason).await;
            let message = format!(
                "Too many attempts. Try again in {}.",
                describe_wait(retry_after_s)
            );
            Ok(Some((message, retry_after_s)))
        }
    }
}

/// A page answering a refused attempt: 429 with `Retry-After`.
pub(super) fn too_many_attempts(mut page: HttpResponse, retry_after_s: u64) -> HttpResponse {
    *page.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    if let Ok(value) = actix_web::http::header::HeaderValue::from_str(&retry_after_s.to_string()) {
        page.headers_mut()
            .insert(actix_web::http::header::RETRY_AFTER, value);
    }
    page
}

/// A refused attempt is a failed login too: recorded with why, counted, never explained.
async fn refused_attempt(
    state: &AppState,
    username: &str,
    interaction: &Interaction,
    meta: &RequestMeta,
    reason: &'static str,
) {
    let services = &state.services;
    metrics::counter!("idp_login_attempts_total", "outcome" => "failure", "reason" => reason).increment(1);
    let mut event = SecurityEvent::new(EventType::RateLimited, Outcome::Failure, services.clock.now());
    event.username = Some(username.chars().take(64).collect());
    event.client_id = Some(interaction.request.client_id.clone());
    event.details = serde_json::json!({ "limiter": "login", "reason": reason });
    record(services, meta.stamp(event)).await;
}

fn describe_wait(seconds: u64) -> String {
    match seconds {
        0..=1 => "a second".into(),
        2..=59 => format!("{seconds} seconds"),
        60..=119 => "a minute".into(),
        _ => format!("{} minutes", seconds.div_ceil(60)),
    }
}

fn describe_scope(scope: &str) -> String {
    match scope {
        "openid" => "Confirm your identity".into(),
        "profile" => "See your name and username".into(),
        "email" => "See your email address".into(),
        "offline_access" => "Stay signed in to it when you are away (offline access)".into(),
        other => format!("Use the \u{201c}{other}\u{201d} permission"),
    }
}

/// `GET /theme/{name}/style.css`.
pub async fn theme_css(path: web::Path<String>, state: web::Data<AppState>) -> HttpResponse {
    match state.themes.css(&path.into_inner()) {
        Some(css) => HttpResponse::Ok()
            .content_type("text/css; charset=utf-8")
            .insert_header(("Cache-Control", "public, max-age=3600"))
            .body(css.to_string()),
        None => HttpResponse::NotFound().finish(),
    }
}
