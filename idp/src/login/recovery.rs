//! Forgot password: `GET/POST /forgot-password` asks for a reset link by mail, and
//! `GET/POST /reset-password` takes the link's token and a new password, as
//! `GET/POST /accept-invitation` does for an invited user's first password.
//!
//! The request page answers the same way, at once, whether or not the account exists: the
//! lookup, the link and the mail happen after the answer, off the request (so neither the
//! words nor the timing enumerate accounts). A user with a second factor must also give a
//! code from it, or a recovery code, so that a stolen mailbox alone does not take over the
//! account. A completed reset ends every session and grant of the user.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::SecretString;
use serde::Deserialize;

use super::mfa::{Verified, verify_code};
use super::pages::{PRODUCT, csrf_cookie, csrf_ok, too_many_attempts};
use super::protection::{self, Gate};
use crate::audit::{EventType, Outcome, SecurityEvent};
use crate::domain::user::{Email, User, UserStatus, Username};
use crate::http::html;
use crate::http::meta::RequestMeta;
use crate::mail;
use crate::manage::recovery::{self, LinkProblem};
use crate::manage::{ManageError, record};
use crate::oidc::authorize::error_page;
use crate::oidc::error::OAuthError;
use crate::security::ratelimit::{Decision, Limit};
use crate::startup::AppState;
use crate::store::account::LinkPurpose;

const FORM_EXPIRED: &str = "The form expired; go back and try again.";

#[derive(Deserialize)]
pub struct ForgotQuery {
    interaction: Option<String>,
}

#[derive(Deserialize)]
pub struct ForgotForm {
    csrf: String,
    login: String,
    #[serde(default)]
    interaction: Option<String>,
}

#[derive(Deserialize)]
pub struct ResetQuery {
    #[serde(default)]
    token: String,
}

#[derive(Deserialize)]
pub struct ResetForm {
    csrf: String,
    token: String,
    #[serde(default)]
    code: String,
    new_password: String,
    confirm_password: String,
}

/// What the forgot-password page shows.
#[derive(Default)]
struct ForgotPage<'a> {
    sent: bool,
    error: Option<&'a str>,
    interaction: Option<&'a str>,
}

fn forgot_page(
    state: &AppState,
    req: &HttpRequest,
    status: StatusCode,
    shown: ForgotPage<'_>,
) -> HttpResponse {
    let (csrf_value, new_cookie) = csrf_cookie(state, req);
    let (theme_name, theme) = state.themes.get(None);
    let back = back_to_sign_in(state, shown.interaction);
    let context = minijinja::context! {
        product => PRODUCT,
        css_url => format!("/theme/{theme_name}/style.css"),
        action => "/forgot-password",
        csrf => state.interactions.tag("csrf", &csrf_value),
        interaction => shown.interaction.unwrap_or_default(),
        back_url => back,
        sent => shown.sent,
        minutes => recovery::reset_link_minutes(&state.services),
        mail_unavailable => !mail::configured(&state.services),
        error => shown.error,
    };
    respond(
        state,
        theme.render("forgot_password.html", context),
        status,
        new_cookie,
    )
}

/// The way back to the sign-in a page was opened from, while its interaction is still valid.
pub(super) fn back_to_sign_in(state: &AppState, interaction: Option<&str>) -> Option<String> {
    let now = state.services.clock.now();
    interaction
        .filter(|sealed| state.interactions.open(sealed, now).is_some())
        .map(|sealed| {
            let escaped: String = url::form_urlencoded::byte_serialize(sealed.as_bytes()).collect();
            format!("/login?interaction={escaped}")
        })
}

fn respond(
    state: &AppState,
    body: Result<String, String>,
    status: StatusCode,
    new_cookie: Option<actix_web::cookie::Cookie<'static>>,
) -> HttpResponse {
    let mut response = match body {
        Ok(body) => html::page(status, body, None, None),
        Err(e) => return error_page(state, &OAuthError::internal(e)),
    };
    if let Some(cookie) = new_cookie {
        let _ = response.add_cookie(&cookie);
    }
    response
}

/// A page with a title and a message, and optionally a link onwards.
pub(crate) fn notice(
    state: &AppState,
    status: StatusCode,
    title: &str,
    message: &str,
    link: Option<(&str, &str)>,
) -> HttpResponse {
    let (theme_name, theme) = state.themes.get(None);
    let context = minijinja::context! {
        product => PRODUCT,
        css_url => format!("/theme/{theme_name}/style.css"),
        title => title,
        message => message,
        link_url => link.map(|(url, _)| url),
        link_label => link.map(|(_, label)| label),
    };
    respond(state, theme.render("notice.html", context), status, None)
}

/// `GET /forgot-password`.
pub async fn forgot_form(
    req: HttpRequest,
    query: web::Query<ForgotQuery>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let shown = ForgotPage {
        interaction: query.interaction.as_deref(),
        ..ForgotPage::default()
    };
    forgot_page(&state, &req, StatusCode::OK, shown)
}

/// `POST /forgot-password`.
pub async fn forgot_submit(
    req: HttpRequest,
    form: web::Form<ForgotForm>,
    state: web::Data<AppState>,
    meta: RequestMeta,
) -> HttpResponse {
    let form = form.into_inner();
    let interaction = form.interaction.as_deref().filter(|i| !i.is_empty());
    if !csrf_ok(&state, &req, &form.csrf) {
        let shown = ForgotPage {
            error: Some(FORM_EXPIRED),
            interaction,
            ..ForgotPage::default()
        };
        return forgot_page(&state, &req, StatusCode::BAD_REQUEST, shown);
    }
    if !mail::configured(&state.services) {
        return forgot_page(
            &state,
            &req,
            StatusCode::SERVICE_UNAVAILABLE,
            ForgotPage {
                interaction,
                ..ForgotPage::default()
            },
        );
    }
    let services = &state.services;
    let source = meta.ip.clone().unwrap_or_default();
    if let Some(limit) = Limit::per_hour(services.settings.password_reset_ip_per_hour, 5) {
        let key = format!("reset-ip:{}", protection::source_group(&source));
        if let Decision::Limited { retry_after_s } = services.rate_limiter.check(&key, limit).await {
            let shown = ForgotPage {
                error: Some("Too many requests from this network. Try again later."),
                interaction,
                ..ForgotPage::default()
            };
            let page = forgot_page(&state, &req, StatusCode::OK, shown);
            return too_many_attempts(page, retry_after_s);
        }
    }
    let login: String = form.login.trim().chars().take(254).collect();
    let task_state = state.clone();
    let task_meta = meta.clone();
    tokio::spawn(async move {
        if let Err(e) = send_reset_link(&task_state, &login, &task_meta).await {
            tracing::warn!(error = %e, "could not queue a password-reset mail");
        }
    });
    let shown = ForgotPage {
        sent: true,
        interaction,
        ..ForgotPage::default()
    };
    forgot_page(&state, &req, StatusCode::OK, shown)
}

/// The account a forgot-password form names: by username, else by email.
async fn account_named(state: &AppState, login: &str) -> Result<Option<User>, ManageError> {
    let store = &state.services.store;
    if let Ok(username) = Username::parse(login)
        && let Some(user) = store.find_user_by_username(&username.key()).await?
    {
        return Ok(Some(user));
    }
    match Email::parse(login) {
        Ok(email) => Ok(store.find_user_by_email(&email.key()).await?),
        Err(_) => Ok(None),
    }
}

/// After the answer: finds the account, and when it can receive one, queues a reset link.
async fn send_reset_link(state: &AppState, login: &str, meta: &RequestMeta) -> Result<(), ManageError> {
    let services = &state.services;
    let now = services.clock.now();
    let user = account_named(state, login).await?;
    let mut event = SecurityEvent::new(EventType::PasswordResetRequested, Outcome::Failure, now);
    event.username = Some(login.chars().take(64).collect());
    let reason = match &user {
        None => Some("unknown_account"),
        Some(user) if user.status != UserStatus::Active => Some("disabled"),
        Some(user) if user.email.is_none() => Some("no_email"),
        Some(user) => {
            let limit = Limit::per_hour(services.settings.password_reset_per_hour, 2);
            let key = format!("reset-account:{}", user.id);
            match limit {
                Some(limit) if services.rate_limiter.check(&key, limit).await != Decision::Allowed => {
                    Some("rate_limited")
                }
                _ => None,
            }
        }
    };
    if let Some(user) = &user {
        event.user_id = Some(user.id.to_string());
        event.username = Some(user.username.as_str().to_string());
    }
    let (Some(user), None) = (&user, reason) else {
        event.details = serde_json::json!({ "sent": false, "reason": reason });
        metrics::counter!("idp_password_resets_total", "outcome" => "not_sent").increment(1);
        record(services, meta.stamp(event)).await;
        return Ok(());
    };
    let Some(email) = &user.email else {
        return Ok(());
    };
    let token = recovery::issue(
        services,
        user,
        LinkPurpose::PasswordReset,
        recovery::reset_link_ttl(services),
    )
    .await?;
    let (_, theme) = state.themes.get(None);
    let context = minijinja::context! {
        product => PRODUCT,
        username => user.username.as_str(),
        name => user.name.as_deref(),
        link => recovery::reset_url(services, &token),
        minutes => recovery::reset_link_minutes(services),
        address => meta.ip.as_deref(),
    };
    let message = mail::compose(theme, "password_reset", context).map_err(ManageError::Internal)?;
    mail::enqueue(services, email.as_str(), "password_reset", &message)
        .await
        .map_err(|e| ManageError::Internal(e.to_string()))?;
    event.outcome = Outcome::Success;
    event.details = serde_json::json!({ "sent": true });
    metrics::counter!("idp_password_resets_total", "outcome" => "requested").increment(1);
    record(services, meta.stamp(event)).await;
    Ok(())
}

/// The page for a link that cannot be used, whatever the reason (logged, not shown).
fn unusable_link(state: &AppState, problem: LinkProblem) -> HttpResponse {
    tracing::info!(problem = problem.as_str(), "password-reset link refused");
    metrics::counter!("idp_password_resets_total", "outcome" => format!("link_{}", problem.as_str()))
        .increment(1);
    notice(
        state,
        StatusCode::BAD_REQUEST,
        "This link cannot be used",
        "The link has expired or has already been used. Ask for a new one.",
        Some(("/forgot-password", "Send a new link")),
    )
}

/// Whether resetting this user's password also takes a code from a second factor.
async fn needs_code(state: &AppState, user: &User) -> Result<bool, OAuthError> {
    Ok(!super::flow::confirmed_factors(&state.services, user)
        .await?
        .is_empty())
}

async fn reset_page(
    state: &AppState,
    req: &HttpRequest,
    token: &str,
    purpose: LinkPurpose,
    user: &User,
    status: StatusCode,
    error: Option<&str>,
) -> HttpResponse {
    let needs_code = match needs_code(state, user).await {
        Ok(needs) => needs,
        Err(e) => return error_page(state, &e),
    };
    let (csrf_value, new_cookie) = csrf_cookie(state, req);
    let (theme_name, theme) = state.themes.get(None);
    let context = minijinja::context! {
        product => PRODUCT,
        css_url => format!("/theme/{theme_name}/style.css"),
        action => action_of(purpose),
        invitation => purpose == LinkPurpose::Invitation,
        csrf => state.interactions.tag("csrf", &csrf_value),
        token => token,
        username => user.username.as_str(),
        needs_code => needs_code,
        min_length => crate::security::password::min_chars(&crate::security::password::Owner::of(user)),
        error => error,
    };
    respond(
        state,
        theme.render("reset_password.html", context),
        status,
        new_cookie,
    )
}

/// Where the form of a link of `purpose` posts.
fn action_of(purpose: LinkPurpose) -> &'static str {
    match purpose {
        LinkPurpose::Invitation => "/accept-invitation",
        _ => "/reset-password",
    }
}

/// `GET /reset-password?token=…`: the form, when the link is usable.
pub async fn reset_form(
    req: HttpRequest,
    query: web::Query<ResetQuery>,
    state: web::Data<AppState>,
) -> HttpResponse {
    link_form(req, query, state, LinkPurpose::PasswordReset).await
}

/// `GET /accept-invitation?token=…`: an invited user chooses their first password.
pub async fn invitation_form(
    req: HttpRequest,
    query: web::Query<ResetQuery>,
    state: web::Data<AppState>,
) -> HttpResponse {
    link_form(req, query, state, LinkPurpose::Invitation).await
}

/// `POST /reset-password`.
pub async fn reset_submit(
    req: HttpRequest,
    form: web::Form<ResetForm>,
    state: web::Data<AppState>,
    meta: RequestMeta,
) -> HttpResponse {
    link_submit(req, form, state, meta, LinkPurpose::PasswordReset).await
}

/// `POST /accept-invitation`.
pub async fn invitation_submit(
    req: HttpRequest,
    form: web::Form<ResetForm>,
    state: web::Data<AppState>,
    meta: RequestMeta,
) -> HttpResponse {
    link_submit(req, form, state, meta, LinkPurpose::Invitation).await
}

async fn link_form(
    req: HttpRequest,
    query: web::Query<ResetQuery>,
    state: web::Data<AppState>,
    purpose: LinkPurpose,
) -> HttpResponse {
    let now = state.services.clock.now();
    match recovery::open(&state.services, &query.token, purpose, now).await {
        Ok(Ok((_, user))) => {
            reset_page(&state, &req, &query.token, purpose, &user, StatusCode::OK, None).await
        }
        Ok(Err(problem)) => unusable_link(&state, problem),
        Err(e) => error_page(&state, &OAuthError::internal(e)),
    }
}

async fn link_submit(
    req: HttpRequest,
    form: web::Form<ResetForm>,
    state: web::Data<AppState>,
    meta: RequestMeta,
    purpose: LinkPurpose,
) -> HttpResponse {
    let form = form.into_inner();
    let services = &state.services;
    let now = services.clock.now();
    let (link, user) = match recovery::open(services, &form.token, purpose, now).await {
        Ok(Ok(found)) => found,
        Ok(Err(problem)) => return unusable_link(&state, problem),
        Err(e) => return error_page(&state, &OAuthError::internal(e)),
    };
    if !csrf_ok(&state, &req, &form.csrf) {
        return reset_page(
            &state,
            &req,
            &form.token,
            purpose,
            &user,
            StatusCode::BAD_REQUEST,
            Some(FORM_EXPIRED),
        )
        .await;
    }
    if let Some(problem) = recovery::policy_problem(&user, &form.new_password, &form.confirm_password) {
        return reset_page(
            &state,
            &req,
            &form.token,
            purpose,
            &user,
            StatusCode::BAD_REQUEST,
            Some(&problem),
        )
        .await;
    }
    match needs_code(&state, &user).await {
        Ok(false) => {}
        Ok(true) => {
            if let Some(page) = check_code(&state, &req, &form, purpose, &user, &meta).await {
                return page;
            }
        }
        Err(e) => return error_page(&state, &e),
    }
    match recovery::complete_reset(
        services,
        &link,
        &user,
        SecretString::from(form.new_password),
        &meta,
    )
    .await
    {
        Ok(Some(_)) if purpose == LinkPurpose::Invitation => notice(
            &state,
            StatusCode::OK,
            "Welcome",
            "Your password is set and your account is ready. Go back to your application and sign in.",
            None,
        ),
        Ok(Some(_)) => notice(
            &state,
            StatusCode::OK,
            "Password changed",
            "Your password has been changed and you have been signed out everywhere. Go back to your application and sign in with the new password.",
            None,
        ),
        Ok(None) => unusable_link(&state, LinkProblem::Used),
        Err(e) => error_page(&state, &OAuthError::internal(e)),
    }
}

/// Checks the second-factor code of a reset behind the brute-force gate; the page to answer
/// instead when it is refused or wrong.
async fn check_code(
    state: &AppState,
    req: &HttpRequest,
    form: &ResetForm,
    purpose: LinkPurpose,
    user: &User,
    meta: &RequestMeta,
) -> Option<HttpResponse> {
    let services = &state.services;
    let account_key = user.username.key();
    let source = meta.ip.clone().unwrap_or_default();
    let now = services.clock.now();
    match protection::before_attempt(services, &account_key, &source, now).await {
        Ok(Gate::Open { delay }) => tokio::time::sleep(delay).await,
        Ok(Gate::Refused { retry_after_s, .. }) => {
            let page = reset_page(
                state,
                req,
                &form.token,
                purpose,
                user,
                StatusCode::OK,
                Some("Too many attempts. Try again later."),
            )
            .await;
            return Some(too_many_attempts(page, retry_after_s));
        }
        Err(e) => return Some(error_page(state, &e.into())),
    }
    match verify_code(services, user, &form.code).await {
        Ok(Some(verified)) => {
            let factor = match verified {
                Verified::Totp => "totp",
                Verified::RecoveryCode { .. } => "recovery_code",
            };
            let mut event = SecurityEvent::new(EventType::MfaSucceeded, Outcome::Success, now);
            event.user_id = Some(user.id.to_string());
            event.username = Some(user.username.as_str().to_string());
            event.details = serde_json::json!({ "factor": factor, "purpose": "password_reset" });
            record(services, meta.stamp(event)).await;
            None
        }
        Ok(None) => {
            let mut event = SecurityEvent::new(EventType::MfaFailed, Outcome::Failure, now);
            event.user_id = Some(user.id.to_string());
            event.username = Some(user.username.as_str().to_string());
            event.details = serde_json::json!({ "purpose": "password_reset" });
            record(services, meta.stamp(event)).await;
            if let Err(e) =
                protection::after_failure(services, &account_key, Some(user.id.to_string()), meta, now).await
            {
                return Some(error_page(state, &e.into()));
            }
            Some(
                reset_page(
                    state,
                    req,
                    &form.token,
                    purpose,
                    user,
                    StatusCode::UNAUTHORIZED,
                    Some("The code is incorrect."),
                )
                .await,
            )
        }
        Err(e) => Some(error_page(state, &e)),
    }
}

#[derive(Deserialize)]
pub struct VerifyForm {
    csrf: String,
    token: String,
}

/// `GET /verify-email?token=…`: a page with one button. The address is verified by the
/// POST it sends, not by the GET, so that a mail scanner fetching the link proves nothing.
pub async fn verify_form(
    req: HttpRequest,
    query: web::Query<ResetQuery>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let now = state.services.clock.now();
    let (link, user) = match recovery::open_any(&state.services, &query.token, VERIFICATION, now).await {
        Ok(Ok(found)) => found,
        Ok(Err(problem)) => return unusable_verification(&state, problem),
        Err(e) => return error_page(&state, &OAuthError::internal(e)),
    };
    let (csrf_value, new_cookie) = csrf_cookie(&state, &req);
    let (theme_name, theme) = state.themes.get(None);
    let context = minijinja::context! {
        product => PRODUCT,
        css_url => format!("/theme/{theme_name}/style.css"),
        action => "/verify-email",
        csrf => state.interactions.tag("csrf", &csrf_value),
        token => &query.token,
        email => link.email.as_deref(),
        username => user.username.as_str(),
    };
    respond(
        &state,
        theme.render("verify_email.html", context),
        StatusCode::OK,
        new_cookie,
    )
}

/// `POST /verify-email`.
pub async fn verify_submit(
    req: HttpRequest,
    form: web::Form<VerifyForm>,
    state: web::Data<AppState>,
    meta: RequestMeta,
) -> HttpResponse {
    if !csrf_ok(&state, &req, &form.csrf) {
        return error_page(
            &state,
            &OAuthError::invalid_request("the form expired; open the link again"),
        );
    }
    let services = &state.services;
    let now = services.clock.now();
    let (link, user) = match recovery::open_any(services, &form.token, VERIFICATION, now).await {
        Ok(Ok(found)) => found,
        Ok(Err(problem)) => return unusable_verification(&state, problem),
        Err(e) => return error_page(&state, &OAuthError::internal(e)),
    };
    match recovery::verify_email(services, &link, &user, &meta).await {
        Ok(true) => notice(
            &state,
            StatusCode::OK,
            "Email address verified",
            "Thank you: your email address is verified. You can close this page.",
            None,
        ),
        Ok(false) => unusable_verification(&state, LinkProblem::Used),
        Err(ManageError::Conflict(_)) => notice(
            &state,
            StatusCode::CONFLICT,
            "This address is taken",
            "Another account uses this email address now, so yours was not changed.",
            None,
        ),
        Err(e) => error_page(&state, &OAuthError::internal(e)),
    }
}

/// The links the verification page takes: proving the account's address, or moving the
/// account to a new one.
const VERIFICATION: &[LinkPurpose] = &[LinkPurpose::VerifyEmail, LinkPurpose::ChangeEmail];

fn unusable_verification(state: &AppState, problem: LinkProblem) -> HttpResponse {
    tracing::info!(problem = problem.as_str(), "email-verification link refused");
    notice(
        state,
        StatusCode::BAD_REQUEST,
        "This link cannot be used",
        "The link has expired, has already been used, or is for an address your account no longer has.",
        None,
    )
}
