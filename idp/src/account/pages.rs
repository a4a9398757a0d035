//! `/account`: the signed-in user's own page (profile, password, second factors, sessions,
//! connected applications, recent activity), and the forms it posts. Every form carries
//! the CSRF token of the login pages; every change answers with a redirect back to the page
//! (post/redirect/get) naming what was done.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::Deserialize;

use super::signin::{self, Ask, Holder};
use crate::audit::{EventQuery, EventType, Outcome, SecurityEvent};
use crate::domain::mfa::{ACR_MFA, FactorKind};
use crate::http::html;
use crate::http::meta::RequestMeta;
use crate::login::pages::{PRODUCT, csrf_cookie, csrf_ok};
use crate::login::protection::{self, Gate};
use crate::login::recovery::notice;
use crate::mail;
use crate::manage::account::{self as self_service, PasswordRefusal};
use crate::manage::sessions::{self, Target};
use crate::manage::users::{self, EmailChange, ProfileChange};
use crate::manage::{Actor, ManageError, mfa};
use crate::oidc::authorize::error_page;
use crate::oidc::error::OAuthError;
use crate::oidc::request::AccountAction;
use crate::startup::AppState;

/// Events shown in the activity list.
const ACTIVITY_SHOWN: u32 = 25;

#[derive(Deserialize)]
pub struct PageQuery {
    done: Option<String>,
}

#[derive(Deserialize)]
pub struct ProfileForm {
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
}

#[derive(Deserialize)]
pub struct PasswordForm {
    csrf: String,
    current_password: String,
    new_password: String,
    confirm_password: String,
}

#[derive(Deserialize)]
pub struct TargetForm {
    csrf: String,
    #[serde(default)]
    id: String,
}

/// The signed-in user, or the answer to give instead: a sign-in for a page view, an error
/// when the store cannot say.
async fn holder(state: &AppState, req: &HttpRequest) -> Result<Holder, HttpResponse> {
    match signin::current(state, req).await {
        Ok(Some(holder)) => Ok(holder),
        Ok(None) => Err(signin::begin(state, Ask::default())),
        Err(e) => Err(error_page(state, &e.into())),
    }
}

/// The holder of a posted form, once its CSRF token checks out.
pub(super) async fn poster(state: &AppState, req: &HttpRequest, csrf: &str) -> Result<Holder, HttpResponse> {
    let holder = holder(state, req).await?;
    if !csrf_ok(state, req, csrf) {
        return Err(notice(
            state,
            StatusCode::BAD_REQUEST,
            "The form expired",
            "Nothing was changed. Reload the page and try again.",
            Some(("/account", "Back to your account")),
        ));
    }
    Ok(holder)
}

pub(super) fn actor(holder: &Holder, meta: &RequestMeta) -> Actor {
    Actor::User {
        user_id: holder.user.id.to_string(),
        meta: meta.clone(),
    }
}

/// Back to the page, saying what was done.
pub(super) fn done(what: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header(("Location", format!("/account?done={what}")))
        .finish()
}

pub(super) fn failed(state: &AppState, e: ManageError) -> HttpResponse {
    match e {
        ManageError::Invalid(_) | ManageError::Conflict(_) | ManageError::NotFound(_) => notice(
            state,
            StatusCode::BAD_REQUEST,
            "Nothing was changed",
            &e.to_string(),
            Some(("/account", "Back to your account")),
        ),
        other => error_page(state, &OAuthError::internal(other)),
    }
}

/// What a `done` marker tells the user.
fn done_message(done: &str) -> Option<&'static str> {
    Some(match done {
        "profile" => "Your profile was saved.",
        "email" => {
            "Your profile was saved. We sent a link to the new address: your account moves to it when you open the link."
        }
        "password" => "Your password was changed. Your other sessions were signed out.",
        "session" => "The session was signed out.",
        "others" => "Every other session was signed out.",
        "app" => "The application was disconnected. It must ask for your permission again.",
        "factor" => "The factor was removed.",
        "identity" => "The identity was unlinked. It no longer signs you in.",
        _ => return None,
    })
}

/// `GET /account`.
pub async fn page(
    req: HttpRequest,
    query: web::Query<PageQuery>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let holder = match holder(&state, &req).await {
        Ok(holder) => holder,
        Err(answer) => return answer,
    };
    let message = query.done.as_deref().and_then(done_message);
    render(&state, &req, &holder, StatusCode::OK, message, None).await
}

async fn render(
    state: &AppState,
    req: &HttpRequest,
    holder: &Holder,
    status: StatusCode,
    message: Option<&str>,
    error: Option<&str>,
) -> HttpResponse {
    match view(state, holder).await {
        Ok(view) => {
            let (csrf_value, new_cookie) = csrf_cookie(state, req);
            let (theme_name, theme) = state.themes.get(None);
            let context = minijinja::context! {
                product => PRODUCT,
                css_url => format!("/theme/{theme_name}/style.css"),
                csrf => state.interactions.tag("csrf", &csrf_value),
                message => message,
                error => error,
                mail_unavailable => !mail::configured(&state.services),
                min_length => crate::security::password::min_chars(
                    &crate::security::password::Owner::of(&holder.user)),
                ..view
            };
            let mut response = match theme.render("account.html", context) {
                Ok(body) => html::page(status, body, None, None),
                Err(e) => return error_page(state, &OAuthError::internal(e)),
            };
            response.headers_mut().insert(
                actix_web::http::header::CACHE_CONTROL,
                actix_web::http::header::HeaderValue::from_static("no-store"),
            );
            if let Some(cookie) = new_cookie {
                let _ = response.add_cookie(&cookie);
            }
            response
        }
        Err(e) => error_page(state, &OAuthError::internal(e)),
    }
}

/// Everything the page shows of the user, as template values.
async fn view(state: &AppState, holder: &Holder) -> Result<minijinja::Value, ManageError> {
    let services = &state.services;
    let user = &holder.user;
    let user_id = user.id.to_string();
    let now = services.clock.now();
    let sessions: Vec<_> = services
        .store
        .sessions_of_user(&user_id, now)
        .await?
        .into_iter()
        .map(|s| {
            minijinja::context! {
                sid => s.sid,
                current => holder.sid.as_deref() == Some(s.sid.as_str()),
                device => device(s.user_agent.as_deref()),
                ip => s.ip,
                signed_in => when(s.auth_time),
                last_seen => when(s.last_seen_at),
            }
        })
        .collect();
    let mut apps: Vec<(String, Vec<String>, DateTime<Utc>)> = Vec::new();
    for consent in services.store.consents_of_user(&user_id).await? {
        apps.push((consent.client_id, consent.scopes, consent.updated_at));
    }
    for grant in services.store.grants_of_user(&user_id, now).await? {
        if !apps.iter().any(|(id, _, _)| *id == grant.client_id) {
            let scopes = grant.scope.split(' ').map(str::to_string).collect();
            apps.push((grant.client_id, scopes, grant.created_at));
        }
    }
    let mut connected = Vec::new();
    for (client_id, scopes, since) in apps {
        // The account page itself is not an application the user connected.
        if client_id == api_types::ACCOUNT_CLIENT_ID {
            continue;
        }
        let name = match services.store.find_client(&client_id).await? {
            Some(client) => client.name,
            None => continue,
        };
        connected.push(minijinja::context! { client_id, name, scopes, since => when(since) });
    }
    let summary = mfa::summary(services, user.id).await?;
    let factors: Vec<_> = summary
        .factors
        .iter()
        .map(|f| {
            minijinja::context! {
                id => f.id.to_string(),
                kind => match f.kind {
                    FactorKind::Totp => "Authenticator app",
                    FactorKind::Passkey => "Passkey",
                },
                name => f.name,
                added => when(f.created_at),
                last_used => f.last_used_at.map(when),
            }
        })
        .collect();
    let activity: Vec<_> = services
        .store
        .query_events(&EventQuery {
            user_id: Some(user_id),
            limit: ACTIVITY_SHOWN,
            ..EventQuery::default()
        })
        .await?
        .iter()
        .map(activity_line)
        .collect();
    Ok(minijinja::context! {
        username => user.username.as_str(),
        name => user.name.as_deref().unwrap_or_default(),
        email => user.email.as_ref().map(|e| e.as_str()).unwrap_or_default(),
        email_verified => user.email_verified,
        sessions,
        apps => connected,
        factors,
        recovery_codes_left => summary.recovery_codes_left,
        identities => super::identities::linked(services, user.id).await?,
        activity,
    })
}

fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// A short, readable name for a browser from its User-Agent.
fn device(user_agent: Option<&str>) -> String {
    let Some(ua) = user_agent else {
        return "Unknown device".into();
    };
    let browser = ["Edg/", "Firefox/", "Chrome/", "Safari/", "curl/"]
        .iter()
        .find(|marker| ua.contains(*marker))
        .map(|marker| match *marker {
            "Edg/" => "Edge",
            "Firefox/" => "Firefox",
            "Chrome/" => "Chrome",
            "Safari/" => "Safari",
            _ => "curl",
        });
    let system = ["Windows", "Android", "iPhone", "iPad", "Mac OS X", "Linux"]
        .iter()
        .find(|marker| ua.contains(*marker))
        .map(|marker| if *marker == "Mac OS X" { "macOS" } else { marker });
    match (browser, system) {
        (Some(b), Some(s)) => format!("{b} on {s}"),
        (Some(b), None) => b.to_string(),
        (None, Some(s)) => s.to_string(),
        (None, None) => ua.chars().take(60).collect(),
    }
}

fn activity_line(e: &SecurityEvent) -> minijinja::Value {
    let what = match e.event_type {
        EventType::LoginSucceeded => "Signed in",
        EventType::LoginFailed => "Sign-in failed",
        EventType::AccountLocked => "Account locked after failed sign-ins",
        EventType::AccountUnlocked => "Account unlocked",
        EventType::ConsentGranted => "Application allowed",
        EventType::ConsentRevoked => "Application disconnected",
        EventType::TokenRevoked => "Sessions or applications signed out",
        EventType::Logout => "Signed out",
        EventType::UserCreated => "Account created",
        EventType::UserChanged => "Profile changed",
        EventType::PasswordChanged => "Password changed",
        EventType::MfaEnrolled => "Second factor added",
        EventType::MfaSucceeded => "Second factor used",
        EventType::MfaFailed => "Second factor refused",
        EventType::RecoveryCodeUsed => "Recovery code used",
        EventType::RecoveryCodesRegenerated => "New recovery codes",
        EventType::MfaFactorRemoved => "Second factor removed",
        EventType::MfaReset => "Second factors reset by an administrator",
        EventType::PasswordResetRequested => "Password reset asked for",
        EventType::PasswordReset => "Password reset",
        EventType::EmailVerified => "Email address verified",
        other => other.as_str(),
    };
    minijinja::context! {
        what,
        failed => e.outcome == Outcome::Failure,
        at => when(e.occurred_at),
        ip => e.ip.as_deref(),
        by_admin => e.actor_id.as_deref().is_some_and(|a| Some(a) != e.user_id.as_deref() && a != "system"),
    }
}

/// `POST /account/profile`: name and email address (a new address must be verified).
pub async fn update_profile(
    req: HttpRequest,
    form: web::Form<ProfileForm>,
    state: web::Data<AppState>,
    meta: RequestMeta,
) -> HttpResponse {
    let form = form.into_inner();
    let holder = match poster(&state, &req, &form.csrf).await {
        Ok(holder) => holder,
        Err(answer) => return answer,
    };
    let change = ProfileChange {
        name: Some(Some(form.name)),
        ..ProfileChange::default()
    };
    let services = &state.services;
    let saved = match users::update_profile(services, holder.user.id, change, actor(&holder, &meta)).await {
        Ok(user) => users::request_email_change(services, &user, &form.email, actor(&holder, &meta)).await,
        Err(e) => Err(e),
    };
    match saved {
        Ok(EmailChange::Pending) => done("email"),
        Ok(EmailChange::Unchanged | EmailChange::Applied) => done("profile"),
        Err(ManageError::Invalid(problem)) => {
            let message = problem.to_string();
            render(
                &state,
                &req,
                &holder,
                StatusCode::BAD_REQUEST,
                None,
                Some(&message),
            )
            .await
        }
        Err(e) => failed(&state, e),
    }
}

/// `POST /account/password`: the current password, then the new one twice. Wrong current
/// passwords count toward the account's lockout like failed sign-ins.
pub async fn change_password(
    req: HttpRequest,
    form: web::Form<PasswordForm>,
    state: web::Data<AppState>,
    meta: RequestMeta,
) -> HttpResponse {
    let form = form.into_inner();
    let holder = match poster(&state, &req, &form.csrf).await {
        Ok(holder) => holder,
        Err(answer) => return answer,
    };
    let services = &state.services;
    let account_key = holder.user.username.key();
    let source = meta.ip.clone().unwrap_or_default();
    let now = services.clock.now();
    match protection::before_attempt(services, &account_key, &source, now).await {
        Ok(Gate::Open { delay }) => tokio::time::sleep(delay).await,
        Ok(Gate::Refused { retry_after_s, .. }) => {
            let message = format!(
                "Too many wrong passwords. Try again in {} minutes.",
                retry_after_s.div_ceil(60)
            );
            return render(
                &state,
                &req,
                &holder,
                StatusCode::TOO_MANY_REQUESTS,
                None,
                Some(&message),
            )
            .await;
        }
        Err(e) => return error_page(&state, &e.into()),
    }
    let outcome = self_service::change_password(
        services,
        &holder.user,
        SecretString::from(form.current_password),
        SecretString::from(form.new_password),
        &form.confirm_password,
        holder.sid.as_deref(),
        &actor(&holder, &meta),
    )
    .await;
    match outcome {
        Ok(Ok(_)) => {
            if let Err(e) = protection::after_success(services, &account_key, &source).await {
                tracing::warn!(error = %e, "could not clear the login failures");
            }
            done("password")
        }
        Ok(Err(refusal)) => {
            if refusal == PasswordRefusal::WrongCurrent
                && let Err(e) = protection::after_failure(
                    services,
                    &account_key,
                    Some(holder.user.id.to_string()),
                    &meta,
                    now,
                )
                .await
            {
                return error_page(&state, &e.into());
            }
            render(
                &state,
                &req,
                &holder,
                StatusCode::BAD_REQUEST,
                None,
                Some(refusal.message()),
            )
            .await
        }
        Err(e) => failed(&state, e),
    }
}

/// `POST /account/sessions/end`: signs out one session (this one too, if asked).
pub async fn end_session(
    req: HttpRequest,
    form: web::Form<TargetForm>,
    state: web::Data<AppState>,
    meta: RequestMeta,
) -> HttpResponse {
    let form = form.into_inner();
    let holder = match poster(&state, &req, &form.csrf).await {
        Ok(holder) => holder,
        Err(answer) => return answer,
    };
    let this_one = holder.sid.as_deref() == Some(form.id.as_str());
    let target = Some(Target::Session(&form.id));
    match sessions::revoke_user_access(&state.services, &holder.user, target, &actor(&holder, &meta)).await {
        Ok(_) if this_one => signed_out(&state),
        Ok(_) => done("session"),
        Err(e) => failed(&state, e),
    }
}

/// `POST /account/sessions/end-others`.
pub async fn end_other_sessions(
    req: HttpRequest,
    form: web::Form<TargetForm>,
    state: web::Data<AppState>,
    meta: RequestMeta,
) -> HttpResponse {
    let form = form.into_inner();
    let holder = match poster(&state, &req, &form.csrf).await {
        Ok(holder) => holder,
        Err(answer) => return answer,
    };
    let keep = holder.sid.as_deref();
    match self_service::sign_out_others(&state.services, &holder.user, keep, &actor(&holder, &meta)).await {
        Ok(_) => done("others"),
        Err(e) => failed(&state, e),
    }
}

/// `POST /account/apps/disconnect`: revokes what one application holds.
pub async fn disconnect_app(
    req: HttpRequest,
    form: web::Form<TargetForm>,
    state: web::Data<AppState>,
    meta: RequestMeta,
) -> HttpResponse {
    let form = form.into_inner();
    let holder = match poster(&state, &req, &form.csrf).await {
        Ok(holder) => holder,
        Err(answer) => return answer,
    };
    if form.id == api_types::ACCOUNT_CLIENT_ID {
        return failed(&state, ManageError::NotFound(format!("application {}", form.id)));
    }
    match self_service::disconnect_app(&state.services, &holder.user, &form.id, &actor(&holder, &meta)).await
    {
        Ok(_) => done("app"),
        Err(e) => failed(&state, e),
    }
}

/// `POST /account/mfa/remove`.
pub async fn remove_factor(
    req: HttpRequest,
    form: web::Form<TargetForm>,
    state: web::Data<AppState>,
    meta: RequestMeta,
) -> HttpResponse {
    let form = form.into_inner();
    let holder = match poster(&state, &req, &form.csrf).await {
        Ok(holder) => holder,
        Err(answer) => return answer,
    };
    let Ok(factor_id) = uuid::Uuid::parse_str(&form.id) else {
        return failed(&state, ManageError::NotFound(format!("factor {}", form.id)));
    };
    match mfa::remove_factor(&state.services, holder.user.id, factor_id, actor(&holder, &meta)).await {
        Ok(()) => done("factor"),
        Err(e) => failed(&state, e),
    }
}

/// `GET /account/mfa/setup`: a sign-in that asks for a second factor (which takes a user
/// who has none to the enrolment page), then sets up another one.
pub async fn setup_mfa(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    mfa_signin(&state, &req, AccountAction::AddFactor).await
}

/// `GET /account/mfa/recovery-codes`: a sign-in with a second factor, then ten new recovery
/// codes, shown once, replacing the others.
pub async fn new_recovery_codes(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    mfa_signin(&state, &req, AccountAction::NewRecoveryCodes).await
}

/// Changing second factors takes proving one first, even when the page is open: a sign-in
/// with `acr_values` for a second factor, and the action after it.
async fn mfa_signin(state: &AppState, req: &HttpRequest, action: AccountAction) -> HttpResponse {
    if let Err(answer) = holder(state, req).await {
        return answer;
    }
    signin::begin(
        state,
        Ask {
            acr_values: Some(ACR_MFA),
            account_action: Some(action),
            ..Ask::default()
        },
    )
}

/// `POST /account/signout`: ends this browser's session and the account page's access.
pub async fn sign_out(
    req: HttpRequest,
    form: web::Form<TargetForm>,
    state: web::Data<AppState>,
    meta: RequestMeta,
) -> HttpResponse {
    let form = form.into_inner();
    let holder = match poster(&state, &req, &form.csrf).await {
        Ok(holder) => holder,
        Err(answer) => return answer,
    };
    if let Some(sid) = holder.sid.as_deref() {
        let target = Some(Target::Session(sid));
        match sessions::revoke_user_access(&state.services, &holder.user, target, &actor(&holder, &meta))
            .await
        {
            Ok(_) | Err(ManageError::NotFound(_)) => {}
            Err(e) => return failed(&state, e),
        }
    }
    signed_out(&state)
}

fn signed_out(state: &AppState) -> HttpResponse {
    let mut page = notice(
        state,
        StatusCode::OK,
        "Signed out",
        "You are signed out of this browser.",
        Some(("/account", "Sign in again")),
    );
    let _ = page.add_cookie(&signin::forget(state));
    let _ = page.add_cookie(&crate::login::cookies::removal(
        &state.services.settings,
        crate::login::cookies::SESSION,
    ));
    page
}
