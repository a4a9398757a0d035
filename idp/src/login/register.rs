//! Self-registration (`registration = true`; off by default): `GET/POST /register` takes an
//! email address and mails it a link; `GET/POST /register/complete?token=…` takes a
//! username, a name and a password, and creates the account with the address verified.
//!
//! The address comes first, so the account exists only once its address is proven, and the
//! request page answers the same way, at once, whether or not the address already has an
//! account: the lookup and the mail happen after the answer, off the request. An address
//! that has an account is mailed a "you already have an account" note with the
//! forgot-password link instead, so neither the words nor the timing enumerate accounts.
//!
//! The link's token is the address and an expiry, MACed with the interaction key: nothing
//! is stored until the account is. It works until it expires or an account has the address
//! (the unique index decides a race), so it cannot create two accounts.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::pages::{PRODUCT, csrf_cookie, csrf_ok, too_many_attempts};
use super::protection;
use super::recovery::notice;
use crate::audit::{EventType, Outcome, SecurityEvent};
use crate::domain::user::Email;
use crate::http::html;
use crate::http::meta::RequestMeta;
use crate::mail;
use crate::manage::users::{self, AddUser};
use crate::manage::{ManageError, record, recovery};
use crate::oidc::authorize::error_page;
use crate::oidc::error::OAuthError;
use crate::security::password;
use crate::security::ratelimit::{Decision, Limit};
use crate::startup::AppState;

/// How long a registration link works.
pub const LINK_TTL_MIN: i64 = 60;

/// The seal purpose of a registration token: it opens as nothing else.
const SEAL_PURPOSE: &str = "registration";

const FORM_EXPIRED: &str = "The form expired; go back and try again.";

/// What a registration link proves: `email` received it, and it works until `exp`.
#[derive(Serialize, Deserialize)]
struct Claim {
    email: String,
    exp: i64,
}

#[derive(Deserialize)]
pub struct StartQuery {
    interaction: Option<String>,
}

#[derive(Deserialize)]
pub struct StartForm {
    csrf: String,
    email: String,
    #[serde(default)]
    interaction: Option<String>,
}

#[derive(Deserialize)]
pub struct CompleteQuery {
    #[serde(default)]
    token: String,
}

#[derive(Deserialize)]
pub struct CompleteForm {
    csrf: String,
    token: String,
    username: String,
    #[serde(default)]
    name: String,
    new_password: String,
    confirm_password: String,
}

/// What the page shows: the address form, the "sent" answer, or the account form.
#[derive(Default)]
struct Shown<'a> {
    email: &'a str,
    sent: bool,
    /// The account form, for this token.
    token: Option<&'a str>,
    username: &'a str,
    name: &'a str,
    error: Option<&'a str>,
    interaction: Option<&'a str>,
}

fn page(state: &AppState, req: &HttpRequest, status: StatusCode, shown: Shown<'_>) -> HttpResponse {
    let (csrf_value, new_cookie) = csrf_cookie(state, req);
    let (theme_name, theme) = state.themes.get(None);
    let back = super::recovery::back_to_sign_in(state, shown.interaction);
    let context = minijinja::context! {
        product => PRODUCT,
        css_url => format!("/theme/{theme_name}/style.css"),
        csrf => state.interactions.tag("csrf", &csrf_value),
        interaction => shown.interaction.unwrap_or_default(),
        back_url => back,
        domains => state.services.settings.registration_domain_list().unwrap_or_default(),
        minutes => LINK_TTL_MIN,
        email => shown.email,
        sent => shown.sent,
        token => shown.token,
        username => shown.username,
        name => shown.name,
        min_length => password::min_chars(&password::Owner::default()),
        error => shown.error,
    };
    let mut response = match theme.render("register.html", context) {
        Ok(body) => html::page(status, body, None, None),
        Err(e) => return error_page(state, &OAuthError::internal(e)),
    };
    if let Some(cookie) = new_cookie {
        let _ = response.add_cookie(&cookie);
    }
    response
}

/// The answer while registration is off: there is no such page.
fn closed(state: &AppState) -> HttpResponse {
    notice(
        state,
        StatusCode::NOT_FOUND,
        "Registration is closed",
        "Accounts on this server are created by an administrator.",
        None,
    )
}

/// `GET /register`.
pub async fn start_form(
    req: HttpRequest,
    query: web::Query<StartQuery>,
    state: web::Data<AppState>,
) -> HttpResponse {
    if !state.services.settings.registration {
        return closed(&state);
    }
    let shown = Shown {
        interaction: query.interaction.as_deref(),
        ..Shown::default()
    };
    page(&state, &req, StatusCode::OK, shown)
}

/// `POST /register`: checks the address and answers "sent" at once; the mail follows.
pub async fn start_submit(
    req: HttpRequest,
    form: web::Form<StartForm>,
    state: web::Data<AppState>,
    meta: RequestMeta,
) -> HttpResponse {
    let services = &state.services;
    if !services.settings.registration {
        return closed(&state);
    }
    let form = form.into_inner();
    let interaction = form.interaction.as_deref().filter(|i| !i.is_empty());
    let typed: String = form.email.trim().chars().take(254).collect();
    let refuse = |status, error| {
        let shown = Shown {
            email: &typed,
            error: Some(error),
            interaction,
            ..Shown::default()
        };
        page(&state, &req, status, shown)
    };
    if !csrf_ok(&state, &req, &form.csrf) {
        return refuse(StatusCode::BAD_REQUEST, FORM_EXPIRED);
    }
    let source = meta.ip.clone().unwrap_or_default();
    if let Some(limit) = Limit::per_hour(services.settings.registration_ip_per_hour, 3) {
        let key = format!("register-ip:{}", protection::source_group(&source));
        if let Decision::Limited { retry_after_s } = services.rate_limiter.check(&key, limit).await {
            let page = refuse(
                StatusCode::OK,
                "Too many requests from this network. Try again later.",
            );
            return too_many_attempts(page, retry_after_s);
        }
    }
    let Ok(email) = Email::parse(&typed) else {
        return refuse(StatusCode::BAD_REQUEST, "Enter a valid email address.");
    };
    let domains = services.settings.registration_domain_list().unwrap_or_default();
    let domain = email
        .key()
        .rsplit_once('@')
        .map(|(_, d)| d.to_string())
        .unwrap_or_default();
    if !domains.is_empty() && !domains.contains(&domain) {
        let allowed = format!(
            "Registration is open to addresses at {} only.",
            domains.join(", ")
        );
        return refuse(StatusCode::BAD_REQUEST, &allowed);
    }
    let task_state = state.clone();
    let task_meta = meta.clone();
    let task_email = email.clone();
    tokio::spawn(async move {
        if let Err(e) = send_link(&task_state, &task_email, &task_meta).await {
            tracing::warn!(error = %e, "could not queue a registration mail");
        }
    });
    let shown = Shown {
        email: email.as_str(),
        sent: true,
        interaction,
        ..Shown::default()
    };
    page(&state, &req, StatusCode::OK, shown)
}

/// After the answer: mails the address a registration link, or, when it has an account
/// already, a note saying so. Limited per address.
async fn send_link(state: &AppState, email: &Email, meta: &RequestMeta) -> Result<(), ManageError> {
    let services = &state.services;
    let now = services.clock.now();
    let mut event = SecurityEvent::new(EventType::RegistrationRequested, Outcome::Failure, now);
    event.details = serde_json::json!({ "sent": false, "reason": "rate_limited" });
    if let Some(limit) = Limit::per_hour(services.settings.registration_per_hour, 2) {
        let key = format!("register-address:{}", services.tokens.hash(&email.key()));
        if services.rate_limiter.check(&key, limit).await != Decision::Allowed {
            metrics::counter!("idp_registrations_total", "outcome" => "not_sent").increment(1);
            record(services, meta.stamp(event)).await;
            return Ok(());
        }
    }
    let (_, theme) = state.themes.get(None);
    let existing = services.store.find_user_by_email(&email.key()).await?;
    let (template, context) = match &existing {
        Some(user) => (
            "account_exists",
            minijinja::context! {
                product => PRODUCT,
                username => user.username.as_str(),
                name => user.name.as_deref(),
                link => recovery::forgot_password_url(services),
                address => meta.ip.as_deref(),
            },
        ),
        None => {
            let claim = Claim {
                email: email.as_str().to_string(),
                exp: (now + chrono::Duration::minutes(LINK_TTL_MIN)).timestamp(),
            };
            let token = state.interactions.seal_for(SEAL_PURPOSE, &claim);
            (
                "register",
                minijinja::context! {
                    product => PRODUCT,
                    link => recovery::registration_url(services, &token),
                    minutes => LINK_TTL_MIN,
                    address => meta.ip.as_deref(),
                },
            )
        }
    };
    let message = mail::compose(theme, template, context).map_err(ManageError::Internal)?;
    mail::enqueue(services, email.as_str(), template, &message)
        .await
        .map_err(|e| ManageError::Internal(e.to_string()))?;
    if let Some(user) = &existing {
        event.user_id = Some(user.id.to_string());
        event.username = Some(user.username.as_str().to_string());
    }
    event.outcome = Outcome::Success;
    event.details = serde_json::json!({ "sent": template });
    metrics::counter!("idp_registrations_total", "outcome" => "requested").increment(1);
    record(services, meta.stamp(event)).await;
    Ok(())
}

/// The address a registration token proves, while it works and the address has no account.
async fn open_token(state: &AppState, token: &str) -> Result<Option<Email>, OAuthError> {
    let now = state.services.clock.now().timestamp();
    let Some(claim) = state.interactions.open_for::<Claim>(SEAL_PURPOSE, token) else {
        return Ok(None);
    };
    let Ok(email) = Email::parse(&claim.email) else {
        return Ok(None);
    };
    if now > claim.exp {
        return Ok(None);
    }
    let taken = state.services.store.find_user_by_email(&email.key()).await?;
    Ok(taken.is_none().then_some(email))
}

/// The page for a link that cannot be used: expired, altered, or its address registered.
fn unusable_link(state: &AppState) -> HttpResponse {
    metrics::counter!("idp_registrations_total", "outcome" => "link_refused").increment(1);
    notice(
        state,
        StatusCode::BAD_REQUEST,
        "This link cannot be used",
        "The link has expired or its account was already created. Ask for a new one, or sign in.",
        Some(("/register", "Send a new link")),
    )
}

/// `GET /register/complete?token=…`: the account form, while the link works.
pub async fn complete_form(
    req: HttpRequest,
    query: web::Query<CompleteQuery>,
    state: web::Data<AppState>,
) -> HttpResponse {
    if !state.services.settings.registration {
        return closed(&state);
    }
    match open_token(&state, &query.token).await {
        Ok(Some(email)) => {
            let shown = Shown {
                email: email.as_str(),
                token: Some(&query.token),
                ..Shown::default()
            };
            page(&state, &req, StatusCode::OK, shown)
        }
        Ok(None) => unusable_link(&state),
        Err(e) => error_page(&state, &e),
    }
}

/// `POST /register/complete`: creates the account.
pub async fn complete_submit(
    req: HttpRequest,
    form: web::Form<CompleteForm>,
    state: web::Data<AppState>,
    meta: RequestMeta,
) -> HttpResponse {
    if !state.services.settings.registration {
        return closed(&state);
    }
    let form = form.into_inner();
    let email = match open_token(&state, &form.token).await {
        Ok(Some(email)) => email,
        Ok(None) => return unusable_link(&state),
        Err(e) => return error_page(&state, &e),
    };
    let refuse = |status, error: &str| {
        let shown = Shown {
            email: email.as_str(),
            token: Some(&form.token),
            username: &form.username,
            name: &form.name,
            error: Some(error),
            ..Shown::default()
        };
        page(&state, &req, status, shown)
    };
    if !csrf_ok(&state, &req, &form.csrf) {
        return refuse(StatusCode::BAD_REQUEST, FORM_EXPIRED);
    }
    if form.new_password != form.confirm_password {
        return refuse(StatusCode::BAD_REQUEST, "The two passwords differ.");
    }
    let request = AddUser {
        username: form.username.trim().to_string(),
        email: Some(email.as_str().to_string()),
        name: Some(form.name.clone()),
        password: SecretString::from(form.new_password.clone()),
        admin: false,
    };
    match users::register(&state.services, request, &meta).await {
        Ok(_) => {
            metrics::counter!("idp_registrations_total", "outcome" => "created").increment(1);
            notice(
                &state,
                StatusCode::OK,
                "Your account is ready",
                "Your account is created and its email address verified. Go back to the application and sign in.",
                Some(("/account", "Open your account")),
            )
        }
        Err(ManageError::Invalid(why)) => refuse(StatusCode::BAD_REQUEST, &why.to_string()),
        Err(ManageError::Conflict("a user with this username")) => {
            refuse(StatusCode::CONFLICT, "This username is taken. Choose another.")
        }
        // The address got an account meanwhile (this link, in another tab).
        Err(ManageError::Conflict(_)) => unusable_link(&state),
        Err(e) => error_page(&state, &OAuthError::internal(e)),
    }
}
