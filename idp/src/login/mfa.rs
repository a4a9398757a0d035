//! The second-factor steps: the code page (`/mfa`: a TOTP code or a recovery code), the
//! enrolment page (`/mfa/enrol`: QR code, manual key, first code) and the recovery codes
//! shown once after it (`/mfa/recovery-codes`). Each accepts only an interaction at its own
//! step, begun in this browser; wrong codes count in the same brute-force protection as
//! wrong passwords, and only a completed login forgets them.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::flow;
use super::interaction::{Interaction, Proven, Step};
use super::pages::{
    InteractionQuery, PRODUCT, csrf_cookie, open_interaction, pass_gate, submitted_interaction,
    too_many_attempts, wrong_step,
};
use super::passkey::{self, Offer};
use super::protection;
use crate::audit::{EventType, Outcome, SecurityEvent};
use crate::domain::mfa::{self, Factor};
use crate::domain::user::User;
use crate::http::html;
use crate::http::meta::RequestMeta;
use crate::manage::record;
use crate::oidc::authorize::error_page;
use crate::oidc::error::OAuthError;
use crate::security::recovery_codes;
use crate::security::totp::{self, TotpSecret};
use crate::services::Services;
use crate::startup::AppState;

const WRONG_CODE: &str = "That code is not right. Check your authenticator app and try again.";

#[derive(Deserialize)]
pub struct CodeForm {
    csrf: String,
    interaction: String,
    #[serde(default)]
    code: String,
}

#[derive(Deserialize)]
pub struct ContinueForm {
    csrf: String,
    interaction: String,
}

/// The user and proof of an interaction at the second-factor step, or the page instead.
pub(super) async fn at_second_factor(
    state: &AppState,
    req: &HttpRequest,
    interaction: &Interaction,
) -> Result<(User, Proven), HttpResponse> {
    if !matches!(interaction.step, Step::SecondFactor(_)) {
        return Err(wrong_step(state));
    }
    let proven = flow::proven_step(state, req, interaction).await?;
    let user = flow::user_of(state, interaction, &proven).await?;
    Ok((user, proven))
}

/// `GET /mfa`.
pub async fn second_factor_form(
    req: HttpRequest,
    query: web::Query<InteractionQuery>,
    state: web::Data<AppState>,
    meta: RequestMeta,
) -> HttpResponse {
    let interaction = match open_interaction(&state, query.interaction.as_deref()) {
        Ok(i) => i,
        Err(page) => return page,
    };
    let (user, proven) = match at_second_factor(&state, &req, &interaction).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    match flow::confirmed_factors(&state.services, &user).await {
        // A step-up for a user with nothing to step up with: enrolment comes next.
        Ok(factors) if !flow::has_usable_factor(&interaction.request, &factors) => {
            flow::next(&state, &req, interaction, proven, &meta).await
        }
        Ok(_) => code_page(&state, &req, &interaction, &user, None).await,
        Err(e) => error_page(&state, &e),
    }
}

/// `POST /mfa`.
pub async fn second_factor_submit(
    req: HttpRequest,
    form: web::Form<CodeForm>,
    state: web::Data<AppState>,
    meta: RequestMeta,
) -> HttpResponse {
    let form = form.into_inner();
    let interaction = match submitted_interaction(&state, &req, &form.interaction, &form.csrf) {
        Ok(i) => i,
        Err(page) => return page,
    };
    let (user, proven) = match at_second_factor(&state, &req, &interaction).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let services = &state.services;
    let account_key = user.username.key();
    match pass_gate(&state, &account_key, user.username.as_str(), &interaction, &meta).await {
        Ok(None) => {}
        Ok(Some((message, retry_after_s))) => {
            let page = code_page(&state, &req, &interaction, &user, Some(&message)).await;
            return too_many_attempts(page, retry_after_s);
        }
        Err(e) => return error_page(&state, &e.into()),
    }
    let verified = match verify_code(services, &user, &form.code).await {
        Ok(verified) => verified,
        Err(e) => return error_page(&state, &e),
    };
    let now = services.clock.now();
    let Some(verified) = verified else {
        metrics::counter!("idp_mfa_verifications_total", "factor" => factor_label(&form.code), "outcome" => "failure")
            .increment(1);
        let mut event = user_event(EventType::MfaFailed, Outcome::Failure, &user, &interaction, now);
        event.details = serde_json::json!({ "factor": factor_label(&form.code) });
        record(services, meta.stamp(event)).await;
        if let Err(e) =
            protection::after_failure(services, &account_key, Some(user.id.to_string()), &meta, now).await
        {
            return error_page(&state, &e.into());
        }
        let mut page = code_page(&state, &req, &interaction, &user, Some(WRONG_CODE)).await;
        *page.status_mut() = StatusCode::UNAUTHORIZED;
        return page;
    };
    let factor = match verified {
        Verified::Totp => "totp",
        Verified::RecoveryCode { .. } => "recovery_code",
    };
    metrics::counter!("idp_mfa_verifications_total", "factor" => factor, "outcome" => "success").increment(1);
    let mut event = user_event(
        EventType::MfaSucceeded,
        Outcome::Success,
        &user,
        &interaction,
        now,
    );
    event.details = serde_json::json!({ "factor": factor });
    record(services, meta.stamp(event)).await;
    let proven = Proven {
        amr: mfa::with_second_factor(&proven.amr),
        ..proven
    };
    match verified {
        Verified::Totp => flow::next(&state, &req, interaction, proven, &meta).await,
        Verified::RecoveryCode { remaining } => {
            let mut event = user_event(
                EventType::RecoveryCodeUsed,
                Outcome::Success,
                &user,
                &interaction,
                now,
            );
            event.details = serde_json::json!({ "remaining": remaining });
            record(services, meta.stamp(event)).await;
            // The user learns how many codes remain before going on.
            let interaction = interaction.at(Step::RecoveryCodes(proven));
            codes_page(&state, &req, &interaction, &[], remaining).await
        }
    }
}

pub(super) enum Verified {
    Totp,
    RecoveryCode { remaining: i64 },
}

/// "totp" for what looks like an app's code, "recovery_code" otherwise.
fn factor_label(code: &str) -> &'static str {
    if code.trim().len() <= usize::from(totp::DIGITS) {
        "totp"
    } else {
        "recovery_code"
    }
}

/// Checks a typed code against the user's TOTP factors, or else their recovery codes. A TOTP
/// code is accepted once: its time step must be later than the last one accepted.
pub(super) async fn verify_code(
    services: &Services,
    user: &User,
    typed: &str,
) -> Result<Option<Verified>, OAuthError> {
    let now = services.clock.now();
    if factor_label(typed) == "totp" {
        for factor in flow::confirmed_factors(services, user).await? {
            let secret = open_secret(services, &factor)?;
            if let Some(step) = secret.matching_step(typed, now.timestamp()) {
                let fresh = services.store.use_totp_step(factor.id, step, now).await?;
                return Ok(fresh.then_some(Verified::Totp));
            }
        }
        return Ok(None);
    }
    let Some(code) = recovery_codes::normalize(typed) else {
        return Ok(None);
    };
    if !services
        .store
        .use_recovery_code(user.id, &recovery_code_hash(services, &code), now)
        .await?
    {
        return Ok(None);
    }
    let remaining = services.store.recovery_codes_left(user.id).await?;
    Ok(Some(Verified::RecoveryCode { remaining }))
}

pub fn recovery_code_hash(services: &Services, normalized: &str) -> String {
    services.tokens.hash(&format!("recovery-code:{normalized}"))
}

fn open_secret(services: &Services, factor: &Factor) -> Result<TotpSecret, OAuthError> {
    TotpSecret::decrypt(&services.mfa_key, factor.id, &factor.secret).map_err(OAuthError::internal)
}

/// The user, proof and unfinished factor of an interaction at the enrolment step.
pub(super) async fn at_enrolment(
    state: &AppState,
    req: &HttpRequest,
    interaction: &Interaction,
) -> Result<(User, Proven, Option<Factor>), HttpResponse> {
    let Step::Enrol { factor, .. } = interaction.step else {
        return Err(wrong_step(state));
    };
    let proven = flow::proven_step(state, req, interaction).await?;
    let user = flow::user_of(state, interaction, &proven).await?;
    let pending = match state.services.store.factors_of(user.id).await {
        Ok(factors) => factors.into_iter().find(|f| f.id == factor && !f.confirmed()),
        Err(e) => return Err(error_page(state, &e.into())),
    };
    Ok((user, proven, pending))
}

/// `GET /mfa/enrol`.
pub async fn enrol_form(
    req: HttpRequest,
    query: web::Query<InteractionQuery>,
    state: web::Data<AppState>,
    meta: RequestMeta,
) -> HttpResponse {
    let interaction = match open_interaction(&state, query.interaction.as_deref()) {
        Ok(i) => i,
        Err(page) => return page,
    };
    match at_enrolment(&state, &req, &interaction).await {
        Ok((user, _, Some(factor))) => enrol_page(&state, &req, &interaction, &user, &factor, None).await,
        // Replaced by a newer enrolment, or finished elsewhere: decide again.
        Ok((_, proven, None)) => flow::next(&state, &req, interaction, proven, &meta).await,
        Err(page) => page,
    }
}

/// `POST /mfa/enrol`: the first code confirms the factor; recovery codes are made and shown.
pub async fn enrol_submit(
    req: HttpRequest,
    form: web::Form<CodeForm>,
    state: web::Data<AppState>,
    meta: RequestMeta,
) -> HttpResponse {
    let form = form.into_inner();
    let interaction = match submitted_interaction(&state, &req, &form.interaction, &form.csrf) {
        Ok(i) => i,
        Err(page) => return page,
    };
    let (user, proven, factor) = match at_enrolment(&state, &req, &interaction).await {
        Ok((user, proven, Some(factor))) => (user, proven, factor),
        Ok((_, proven, None)) => return flow::next(&state, &req, interaction, proven, &meta).await,
        Err(page) => return page,
    };
    let services = &state.services;
    match pass_gate(
        &state,
        &user.username.key(),
        user.username.as_str(),
        &interaction,
        &meta,
    )
    .await
    {
        Ok(None) => {}
        Ok(Some((message, retry_after_s))) => {
            let page = enrol_page(&state, &req, &interaction, &user, &factor, Some(&message)).await;
            return too_many_attempts(page, retry_after_s);
        }
        Err(e) => return error_page(&state, &e.into()),
    }
    let now = services.clock.now();
    let confirmed = async {
        let secret = open_secret(services, &factor)?;
        let Some(step) = secret.matching_step(&form.code, now.timestamp()) else {
            return Ok(None);
        };
        if !services.store.confirm_factor(factor.id, step, now).await? {
            return Ok(None);
        }
        services
            .store
            .set_mfa_enrolment_required(user.id, false, now)
            .await?;
        let codes = new_recovery_codes(services, &user).await?;
        Ok::<_, OAuthError>(Some(codes))
    }
    .await;
    let codes = match confirmed {
        Ok(Some(codes)) => codes,
        Ok(None) => {
            let mut page = enrol_page(
                &state,
                &req,
                &interaction,
                &user,
                &factor,
                Some("That code is not right. Check the app was set up with this key and try again."),
            )
            .await;
            *page.status_mut() = StatusCode::BAD_REQUEST;
            return page;
        }
        Err(e) => return error_page(&state, &e),
    };
    metrics::counter!("idp_mfa_enrolments_total", "factor" => "totp").increment(1);
    let mut event = user_event(EventType::MfaEnrolled, Outcome::Success, &user, &interaction, now);
    event.actor_id = Some(user.id.to_string());
    event.details =
        serde_json::json!({ "factor": "totp", "factor_id": factor.id, "recovery_codes": codes.len() });
    record(services, meta.stamp(event)).await;
    let proven = Proven {
        amr: mfa::with_second_factor(&proven.amr),
        ..proven
    };
    let interaction = interaction.action_done().at(Step::RecoveryCodes(proven));
    codes_page(&state, &req, &interaction, &codes, codes.len() as i64).await
}

/// Ten new recovery codes for the user, replacing any others; returned once in the clear.
pub async fn new_recovery_codes(services: &Services, user: &User) -> Result<Vec<String>, OAuthError> {
    let codes = recovery_codes::generate().map_err(OAuthError::internal)?;
    let hashes: Vec<String> = codes
        .iter()
        .filter_map(|c| recovery_codes::normalize(c))
        .map(|c| recovery_code_hash(services, &c))
        .collect();
    services
        .store
        .replace_recovery_codes(user.id, &hashes, services.clock.now())
        .await?;
    Ok(codes)
}

/// `POST /mfa/recovery-codes`: the user kept their codes (or read how many remain); go on.
pub async fn recovery_codes_continue(
    req: HttpRequest,
    form: web::Form<ContinueForm>,
    state: web::Data<AppState>,
    meta: RequestMeta,
) -> HttpResponse {
    match at_recovery_codes(&state, &req, &form).await {
        Ok((interaction, proven)) => flow::next(&state, &req, interaction, proven, &meta).await,
        Err(page) => page,
    }
}

/// The interaction and proof of a form posted from the recovery-codes page, or the page to
/// answer instead.
async fn at_recovery_codes(
    state: &AppState,
    req: &HttpRequest,
    form: &ContinueForm,
) -> Result<(Interaction, Proven), HttpResponse> {
    let interaction = submitted_interaction(state, req, &form.interaction, &form.csrf)?;
    if !matches!(interaction.step, Step::RecoveryCodes(_)) {
        return Err(wrong_step(state));
    }
    let proven = flow::proven_step(state, req, &interaction).await?;
    Ok((interaction, proven))
}

/// `POST /mfa/recovery-codes/new`: after a login that used a recovery code, ten new codes
/// replace the old ones (shown once).
pub async fn recovery_codes_renew(
    req: HttpRequest,
    form: web::Form<ContinueForm>,
    state: web::Data<AppState>,
    meta: RequestMeta,
) -> HttpResponse {
    let (interaction, proven) = match at_recovery_codes(&state, &req, &form).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    if !proven.amr.iter().any(|m| m == mfa::amr::MFA) {
        return wrong_step(&state);
    }
    let user = match flow::user_of(&state, &interaction, &proven).await {
        Ok(user) => user,
        Err(page) => return page,
    };
    let services = &state.services;
    let codes = match new_recovery_codes(services, &user).await {
        Ok(codes) => codes,
        Err(e) => return error_page(&state, &e),
    };
    show_new_codes(&state, &req, &interaction, &user, &codes, "login", &meta).await
}

/// Records that `user` got new recovery codes (asked for `from` the login or the account
/// page) and shows them, once.
pub(super) async fn show_new_codes(
    state: &AppState,
    req: &HttpRequest,
    interaction: &Interaction,
    user: &User,
    codes: &[String],
    from: &str,
    meta: &RequestMeta,
) -> HttpResponse {
    let services = &state.services;
    let mut event = user_event(
        EventType::RecoveryCodesRegenerated,
        Outcome::Success,
        user,
        interaction,
        services.clock.now(),
    );
    event.actor_id = Some(user.id.to_string());
    event.details = serde_json::json!({ "recovery_codes": codes.len(), "from": from });
    record(services, meta.stamp(event)).await;
    codes_page(state, req, interaction, codes, codes.len() as i64).await
}

pub(super) fn user_event(
    kind: EventType,
    outcome: Outcome,
    user: &User,
    interaction: &Interaction,
    now: chrono::DateTime<chrono::Utc>,
) -> SecurityEvent {
    let mut event = SecurityEvent::new(kind, outcome, now);
    event.user_id = Some(user.id.to_string());
    event.username = Some(user.username.as_str().to_string());
    event.client_id = Some(interaction.request.client_id.clone());
    event
}

pub(super) async fn code_page(
    state: &AppState,
    req: &HttpRequest,
    interaction: &Interaction,
    user: &User,
    error: Option<&str>,
) -> HttpResponse {
    // A request for a phishing-resistant login is answered only by a passkey.
    let passkey_only = interaction.request.acr.as_deref() == Some(mfa::ACR_PHISHING_RESISTANT);
    step_page(
        state,
        req,
        interaction,
        "mfa.html",
        minijinja::context! {
            action => "/mfa",
            passkey_action => "/mfa/passkey",
            username => user.username.as_str(),
            error => error,
            passkey_only => passkey_only,
        },
        Offer::SecondFactor(user),
    )
    .await
}

pub(super) async fn enrol_page(
    state: &AppState,
    req: &HttpRequest,
    interaction: &Interaction,
    user: &User,
    factor: &Factor,
    error: Option<&str>,
) -> HttpResponse {
    let secret = match open_secret(&state.services, factor) {
        Ok(secret) => secret,
        Err(e) => return error_page(state, &e),
    };
    let issuer = state
        .services
        .settings
        .issuer
        .host_str()
        .map_or_else(|| PRODUCT.to_string(), |host| format!("{PRODUCT} ({host})"));
    let qr_svg = secret
        .otpauth_url(user.username.as_str(), &issuer)
        .and_then(|url| totp::qr_svg(&url))
        .unwrap_or_default();
    let reason = if interaction.request.account_action.is_some() {
        "Add a second factor: a passkey or an authenticator app."
    } else if user.is_admin() {
        "Administrators sign in with a second factor."
    } else {
        "This sign-in needs a second factor."
    };
    let passkey_only = interaction.request.acr.as_deref() == Some(mfa::ACR_PHISHING_RESISTANT);
    step_page(
        state,
        req,
        interaction,
        "mfa_enrol.html",
        minijinja::context! {
            action => "/mfa/enrol",
            passkey_action => "/mfa/enrol/passkey",
            username => user.username.as_str(),
            reason => reason,
            qr_svg => qr_svg,
            manual_key => secret.manual_key(),
            error => error,
            passkey_only => passkey_only,
        },
        Offer::Register(user),
    )
    .await
}

pub(super) async fn codes_page(
    state: &AppState,
    req: &HttpRequest,
    interaction: &Interaction,
    codes: &[String],
    remaining: i64,
) -> HttpResponse {
    step_page(
        state,
        req,
        interaction,
        "recovery_codes.html",
        minijinja::context! { action => "/mfa/recovery-codes", codes => codes, remaining => remaining },
        Offer::Nothing,
    )
    .await
}

/// A step page of the default theme, with the interaction, CSRF token, what it offers with
/// a passkey, and `values`.
async fn step_page(
    state: &AppState,
    req: &HttpRequest,
    interaction: &Interaction,
    template: &str,
    values: minijinja::Value,
    offer: Offer<'_>,
) -> HttpResponse {
    let (csrf_value, new_cookie) = csrf_cookie(state, req);
    let (theme_name, theme) = state.themes.get(None);
    let passkey = passkey::offer(state, &csrf_value, offer).await;
    let with_script = passkey.is_some();
    let context = minijinja::context! {
        product => PRODUCT,
        css_url => format!("/theme/{theme_name}/style.css"),
        csrf => state.interactions.tag("csrf", &csrf_value),
        interaction => state.interactions.seal(interaction),
        passkey => passkey,
        ..values
    };
    let form_action = html::csp_source(&interaction.request.redirect_uri);
    let mut response = match theme.render(template, context) {
        Ok(body) if with_script => html::page_with_own_scripts(StatusCode::OK, body, Some(&form_action)),
        Ok(body) => html::page(StatusCode::OK, body, Some(&form_action), None),
        Err(e) => return error_page(state, &OAuthError::internal(e)),
    };
    if let Some(cookie) = new_cookie {
        let _ = response.add_cookie(&cookie);
    }
    response
}
