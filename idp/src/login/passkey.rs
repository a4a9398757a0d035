//! The passkey steps: signing in with a discoverable passkey from the login page
//! (`/login/passkey`, no username), a passkey as the second factor (`/mfa/passkey`), and
//! registering one when enrolling (`/mfa/enrol/passkey`).
//!
//! Each page that offers a passkey carries the WebAuthn options for the browser and, sealed
//! beside them, the ceremony's state (webauthn-rs's registration or authentication state),
//! bound to this browser's CSRF cookie. The state never has to be kept on the server between
//! the page and the answer, so a login page costs no write; what must be server-side, that a
//! challenge is answered once, is enforced by spending it in the store when the answer comes
//! (atomic, all replicas): a captured answer cannot be replayed.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use uuid::Uuid;
use webauthn_rs::prelude::{Passkey, PublicKeyCredential, RegisterPublicKeyCredential};

use super::flow;
use super::interaction::{Interaction, LIFETIME_S, Proven, Step};
use super::mfa::{self as mfa_pages, at_enrolment, at_second_factor, user_event};
use super::pages::{pass_gate, submitted_interaction, too_many_attempts, wrong_step};
use super::protection;
use crate::audit::{EventType, Outcome, SecurityEvent};
use crate::domain::mfa::{self, Factor, FactorKind};
use crate::domain::user::{User, UserStatus};
use crate::http::meta::RequestMeta;
use crate::manage::record;
use crate::oidc::authorize::error_page;
use crate::oidc::error::OAuthError;
use crate::security::passkeys::{self, PasskeyError};
use crate::services::Services;
use crate::startup::AppState;
use crate::store::StoreError;

const PASSKEY_FAILED: &str = "That passkey did not work. Try again, or sign in another way.";

#[derive(Deserialize)]
pub struct PasskeyForm {
    csrf: String,
    interaction: String,
    ceremony: String,
    /// The browser's answer (`PublicKeyCredential`, in JSON with base64url fields).
    #[serde(default)]
    credential: String,
    /// The name the user gives a passkey they register.
    #[serde(default)]
    name: String,
}

/// What a ceremony is for: sealed in, so an answer to one cannot be posted to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Purpose {
    SignIn,
    SecondFactor,
    Register,
}

#[derive(Serialize, Deserialize)]
struct Ceremony<S> {
    purpose: Purpose,
    /// The account it is for (none for a sign-in without a username).
    user_id: Option<Uuid>,
    /// A MAC of the CSRF cookie of the browser it was offered to.
    binding: String,
    issued_at: i64,
    state: S,
}

const SEAL_PURPOSE: &str = "passkey-ceremony";

/// What a page offers with a passkey.
pub(super) enum Offer<'a> {
    Nothing,
    SignIn,
    SecondFactor(&'a User),
    Register(&'a User),
}

/// The `passkey` value of a page's template (`options`: JSON for the browser, `ceremony`:
/// the sealed state), or `None` when there is nothing to offer.
pub(super) async fn offer(state: &AppState, csrf_cookie: &str, what: Offer<'_>) -> Option<minijinja::Value> {
    let passkeys = state.services.passkeys.as_ref()?;
    let (options, sealed) = match what {
        Offer::Nothing => return None,
        Offer::SignIn => {
            let (options, ceremony) = passkeys.start_discoverable().ok()?;
            (
                serde_json::to_string(&options).ok()?,
                seal(state, csrf_cookie, Purpose::SignIn, None, &ceremony),
            )
        }
        Offer::SecondFactor(user) => {
            let registered = registered_passkeys(&state.services, user).await.ok()?;
            if registered.is_empty() {
                return None;
            }
            let keys: Vec<Passkey> = registered.into_iter().map(|(_, key)| key).collect();
            let (options, ceremony) = passkeys.start_authentication(&keys).ok()?;
            (
                serde_json::to_string(&options).ok()?,
                seal(
                    state,
                    csrf_cookie,
                    Purpose::SecondFactor,
                    Some(user.id),
                    &ceremony,
                ),
            )
        }
        Offer::Register(user) => {
            let registered = registered_passkeys(&state.services, user).await.ok()?;
            let keys: Vec<Passkey> = registered.into_iter().map(|(_, key)| key).collect();
            let display = user.name.as_deref().unwrap_or(user.username.as_str());
            let (options, ceremony) = passkeys
                .start_registration(user.id, user.username.as_str(), display, &keys)
                .ok()?;
            (
                serde_json::to_string(&options).ok()?,
                seal(state, csrf_cookie, Purpose::Register, Some(user.id), &ceremony),
            )
        }
    };
    Some(minijinja::context! { options => options, ceremony => sealed })
}

fn seal<S: Serialize>(
    state: &AppState,
    csrf_cookie: &str,
    purpose: Purpose,
    user_id: Option<Uuid>,
    ceremony_state: &S,
) -> String {
    let ceremony = Ceremony {
        purpose,
        user_id,
        binding: state.interactions.tag(SEAL_PURPOSE, csrf_cookie),
        issued_at: state.services.clock.now().timestamp(),
        state: ceremony_state,
    };
    state.interactions.seal_for(SEAL_PURPOSE, &ceremony)
}

/// The ceremony posted with a form, if it is authentic, for `purpose` and `user_id`, offered
/// to this browser, and not older than an interaction.
fn open<S: DeserializeOwned>(
    state: &AppState,
    req: &HttpRequest,
    sealed: &str,
    purpose: Purpose,
    user_id: Option<Uuid>,
) -> Option<Ceremony<S>> {
    let ceremony: Ceremony<S> = state.interactions.open_for(SEAL_PURPOSE, sealed)?;
    let cookie = super::pages::csrf_value(state, req)?;
    let binding = state.interactions.tag(SEAL_PURPOSE, &cookie);
    let age = state.services.clock.now().timestamp() - ceremony.issued_at;
    let here: bool = binding.as_bytes().ct_eq(ceremony.binding.as_bytes()).into();
    (here && ceremony.purpose == purpose && ceremony.user_id == user_id && (0..=LIFETIME_S).contains(&age))
        .then_some(ceremony)
}

/// Spends the challenge of a ceremony: true the first time only.
async fn spend(services: &Services, sealed: &str, issued_at: i64) -> Result<bool, StoreError> {
    let hash = services.tokens.hash(&format!("webauthn-challenge:{sealed}"));
    let expires =
        chrono::DateTime::from_timestamp(issued_at + LIFETIME_S, 0).unwrap_or_else(|| services.clock.now());
    services.store.spend_challenge(&hash, expires).await
}

/// The user's confirmed passkeys, opened.
async fn registered_passkeys(services: &Services, user: &User) -> Result<Vec<(Factor, Passkey)>, OAuthError> {
    let factors = flow::confirmed_factors(services, user).await?;
    factors
        .into_iter()
        .filter(|f| f.kind == FactorKind::Passkey)
        .map(|f| {
            let key = passkeys::decrypt(&services.mfa_key, f.id, &f.secret).map_err(OAuthError::internal)?;
            Ok((f, key))
        })
        .collect()
}

/// Saves what a signature taught about a passkey (its counter, backup state) and when it
/// was used.
async fn record_use(
    services: &Services,
    factor: &Factor,
    mut key: Passkey,
    result: &webauthn_rs::prelude::AuthenticationResult,
) -> Result<(), OAuthError> {
    let updated = match key.update_credential(result) {
        Some(true) => {
            Some(passkeys::encrypt(&services.mfa_key, factor.id, &key).map_err(OAuthError::internal)?)
        }
        _ => None,
    };
    services
        .store
        .record_passkey_use(factor.id, updated.as_deref(), services.clock.now())
        .await?;
    Ok(())
}

/// `POST /login/passkey`: a discoverable passkey signs in, without a username. The passkey
/// proves possession and, through user verification, a PIN or biometric: two factors.
pub async fn sign_in(
    req: HttpRequest,
    form: web::Form<PasskeyForm>,
    state: web::Data<AppState>,
    meta: RequestMeta,
) -> HttpResponse {
    let form = form.into_inner();
    let interaction = match submitted_interaction(&state, &req, &form.interaction, &form.csrf) {
        Ok(i) => i,
        Err(page) => return page,
    };
    let Some(passkeys) = state.services.passkeys.clone() else {
        return wrong_step(&state);
    };
    if interaction.step != Step::Authenticate {
        return wrong_step(&state);
    }
    let services = &state.services;
    let Some(ceremony) = open::<webauthn_rs::prelude::DiscoverableAuthentication>(
        &state,
        &req,
        &form.ceremony,
        Purpose::SignIn,
        None,
    ) else {
        return super::pages::login_page_with_error(&state, &req, &interaction, PASSKEY_FAILED).await;
    };
    // Who the answer claims to be: checked against that account's passkey below.
    let answer: Option<PublicKeyCredential> = serde_json::from_str(&form.credential).ok();
    let claimed = answer.as_ref().and_then(|a| passkeys.identify(a).ok());
    let found = match &claimed {
        Some((user_id, credential_id)) => match services.store.find_passkey(credential_id).await {
            Ok(Some(factor)) if factor.user_id == *user_id => {
                match services.store.find_user(*user_id).await {
                    Ok(Some(user)) => Some((factor, user)),
                    Ok(None) => None,
                    Err(e) => return error_page(&state, &e.into()),
                }
            }
            Ok(_) => None,
            Err(e) => return error_page(&state, &e.into()),
        },
        None => None,
    };
    let account_key = match (&found, &claimed) {
        (Some((_, user)), _) => user.username.key(),
        (None, Some((_, credential_id))) => {
            format!("passkey:{}", credential_id.chars().take(64).collect::<String>())
        }
        (None, None) => "passkey:".to_string(),
    };
    let shown_name = found
        .as_ref()
        .map_or("(passkey)", |(_, u)| u.username.as_str())
        .to_string();
    match pass_gate(&state, &account_key, &shown_name, &interaction, &meta).await {
        Ok(None) => {}
        Ok(Some((message, retry_after_s))) => {
            let page = super::pages::login_page_with_error(&state, &req, &interaction, &message).await;
            return too_many_attempts(page, retry_after_s);
        }
        Err(e) => return error_page(&state, &e.into()),
    }
    let verified = async {
        let (Some(answer), Some((factor, user))) = (&answer, &found) else {
            return Ok(None);
        };
        if user.status != UserStatus::Active || !spend(services, &form.ceremony, ceremony.issued_at).await? {
            return Ok(None);
        }
        let key =
            passkeys::decrypt(&services.mfa_key, factor.id, &factor.secret).map_err(OAuthError::internal)?;
        match passkeys.finish_discoverable(answer, ceremony.state, key.clone()) {
            Ok(result) => {
                record_use(services, factor, key, &result).await?;
                Ok::<_, OAuthError>(Some(()))
            }
            Err(PasskeyError::Rejected(why)) => {
                tracing::info!(reason = %why, "passkey sign-in refused");
                Ok(None)
            }
            Err(e) => Err(OAuthError::internal(e)),
        }
    }
    .await;
    let now = services.clock.now();
    let outcome = match verified {
        Ok(outcome) => outcome,
        Err(e) => return error_page(&state, &e),
    };
    let succeeded = outcome.is_some();
    let user = found.map(|(_, user)| user);
    metrics::counter!(
        "idp_login_attempts_total",
        "outcome" => if succeeded { "success" } else { "failure" },
        "reason" => if succeeded { "none" } else { "passkey_rejected" }
    )
    .increment(1);
    metrics::counter!("idp_mfa_verifications_total", "factor" => "passkey", "outcome" => if succeeded { "success" } else { "failure" })
        .increment(1);
    let mut event = SecurityEvent::new(
        if succeeded {
            EventType::LoginSucceeded
        } else {
            EventType::LoginFailed
        },
        if succeeded {
            Outcome::Success
        } else {
            Outcome::Failure
        },
        now,
    );
    event.user_id = user.as_ref().map(|u| u.id.to_string());
    event.username = user.as_ref().map(|u| u.username.as_str().to_string());
    event.client_id = Some(interaction.request.client_id.clone());
    event.details = if succeeded {
        serde_json::json!({ "method": "passkey" })
    } else {
        serde_json::json!({ "method": "passkey", "reason": "passkey_rejected" })
    };
    record(services, meta.stamp(event)).await;
    let user_id = user.as_ref().map(|u| u.id.to_string());
    let Some(user) = user.filter(|_| succeeded) else {
        if let Err(e) = protection::after_failure(services, &account_key, user_id, &meta, now).await {
            return error_page(&state, &e.into());
        }
        return super::pages::login_page_with_error(&state, &req, &interaction, PASSKEY_FAILED).await;
    };
    if let Err(e) = services.store.record_login(user.id, now).await {
        return error_page(&state, &e.into());
    }
    let proven = Proven {
        user_id: user.id,
        amr: mfa::with_passkey(&[]),
        binding: flow::browser_binding(&state, &req),
    };
    flow::next(&state, &req, interaction, proven, &meta).await
}

/// `POST /mfa/passkey`: one of the user's passkeys signs as the second factor.
pub async fn second_factor(
    req: HttpRequest,
    form: web::Form<PasskeyForm>,
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
    let Some(passkeys) = state.services.passkeys.clone() else {
        return wrong_step(&state);
    };
    let services = &state.services;
    let account_key = user.username.key();
    match pass_gate(&state, &account_key, user.username.as_str(), &interaction, &meta).await {
        Ok(None) => {}
        Ok(Some((message, retry_after_s))) => {
            let page = mfa_pages::code_page(&state, &req, &interaction, &user, Some(&message)).await;
            return too_many_attempts(page, retry_after_s);
        }
        Err(e) => return error_page(&state, &e.into()),
    }
    let verified = async {
        let Some(ceremony) = open::<webauthn_rs::prelude::PasskeyAuthentication>(
            &state,
            &req,
            &form.ceremony,
            Purpose::SecondFactor,
            Some(user.id),
        ) else {
            return Ok(false);
        };
        let Ok(answer) = serde_json::from_str::<PublicKeyCredential>(&form.credential) else {
            return Ok(false);
        };
        if !spend(services, &form.ceremony, ceremony.issued_at).await? {
            return Ok(false);
        }
        let result = match passkeys.finish_authentication(&answer, &ceremony.state) {
            Ok(result) => result,
            Err(PasskeyError::Rejected(why)) => {
                tracing::info!(reason = %why, "passkey second factor refused");
                return Ok(false);
            }
            Err(e) => return Err(OAuthError::internal(e)),
        };
        // The factor that signed: it must still be registered (a removed passkey is refused).
        let used = registered_passkeys(services, &user)
            .await?
            .into_iter()
            .find(|(_, key)| key.cred_id() == result.cred_id());
        let Some((factor, key)) = used else {
            return Ok(false);
        };
        record_use(services, &factor, key, &result).await?;
        Ok::<_, OAuthError>(true)
    }
    .await;
    let now = services.clock.now();
    let outcome = match verified {
        Ok(outcome) => outcome,
        Err(e) => return error_page(&state, &e),
    };
    metrics::counter!("idp_mfa_verifications_total", "factor" => "passkey", "outcome" => if outcome { "success" } else { "failure" })
        .increment(1);
    let mut event = if outcome {
        user_event(
            EventType::MfaSucceeded,
            Outcome::Success,
            &user,
            &interaction,
            now,
        )
    } else {
        user_event(EventType::MfaFailed, Outcome::Failure, &user, &interaction, now)
    };
    event.details = serde_json::json!({ "factor": "passkey" });
    record(services, meta.stamp(event)).await;
    if !outcome {
        if let Err(e) =
            protection::after_failure(services, &account_key, Some(user.id.to_string()), &meta, now).await
        {
            return error_page(&state, &e.into());
        }
        let mut page = mfa_pages::code_page(&state, &req, &interaction, &user, Some(PASSKEY_FAILED)).await;
        *page.status_mut() = StatusCode::UNAUTHORIZED;
        return page;
    }
    let proven = Proven {
        amr: mfa::with_passkey(&proven.amr),
        ..proven
    };
    flow::next(&state, &req, interaction, proven, &meta).await
}

/// `POST /mfa/enrol/passkey`: the user registers a passkey as their factor; recovery codes
/// follow, as for an app.
pub async fn enrol(
    req: HttpRequest,
    form: web::Form<PasskeyForm>,
    state: web::Data<AppState>,
    meta: RequestMeta,
) -> HttpResponse {
    let form = form.into_inner();
    let interaction = match submitted_interaction(&state, &req, &form.interaction, &form.csrf) {
        Ok(i) => i,
        Err(page) => return page,
    };
    let (user, proven, pending) = match at_enrolment(&state, &req, &interaction).await {
        Ok((user, proven, Some(pending))) => (user, proven, pending),
        Ok((_, proven, None)) => return flow::next(&state, &req, interaction, proven, &meta).await,
        Err(page) => return page,
    };
    let Some(passkeys) = state.services.passkeys.clone() else {
        return wrong_step(&state);
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
            let page =
                mfa_pages::enrol_page(&state, &req, &interaction, &user, &pending, Some(&message)).await;
            return too_many_attempts(page, retry_after_s);
        }
        Err(e) => return error_page(&state, &e.into()),
    }
    let now = services.clock.now();
    let registered = async {
        let Some(ceremony) = open::<webauthn_rs::prelude::PasskeyRegistration>(
            &state,
            &req,
            &form.ceremony,
            Purpose::Register,
            Some(user.id),
        ) else {
            return Ok(None);
        };
        let Ok(answer) = serde_json::from_str::<RegisterPublicKeyCredential>(&form.credential) else {
            return Ok(None);
        };
        if !spend(services, &form.ceremony, ceremony.issued_at).await? {
            return Ok(None);
        }
        let key = match passkeys.finish_registration(&answer, &ceremony.state) {
            Ok(key) => key,
            Err(PasskeyError::Rejected(why)) => {
                tracing::info!(reason = %why, "passkey registration refused");
                return Ok(None);
            }
            Err(e) => return Err(OAuthError::internal(e)),
        };
        let id = Uuid::new_v4();
        let name: String = form.name.trim().chars().take(64).collect();
        let factor = Factor {
            id,
            user_id: user.id,
            kind: FactorKind::Passkey,
            name: if name.is_empty() { "Passkey".into() } else { name },
            secret: passkeys::encrypt(&services.mfa_key, id, &key).map_err(OAuthError::internal)?,
            credential_id: Some(passkeys::credential_id_text(key.cred_id().as_ref())),
            created_at: now,
            confirmed_at: Some(now),
            last_used_at: Some(now),
            last_used_step: None,
        };
        match services.store.insert_factor(&factor).await {
            Ok(()) => {}
            // The same authenticator credential is registered already (to anyone).
            Err(StoreError::Conflict(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        services
            .store
            .set_mfa_enrolment_required(user.id, false, now)
            .await?;
        let codes = mfa_pages::new_recovery_codes(services, &user).await?;
        Ok::<_, OAuthError>(Some((factor, codes)))
    }
    .await;
    let (factor, codes) = match registered {
        Ok(Some(done)) => done,
        Ok(None) => {
            let mut page = mfa_pages::enrol_page(
                &state,
                &req,
                &interaction,
                &user,
                &pending,
                Some("The passkey was not registered. Try again, or use an authenticator app."),
            )
            .await;
            *page.status_mut() = StatusCode::BAD_REQUEST;
            return page;
        }
        Err(e) => return error_page(&state, &e),
    };
    metrics::counter!("idp_mfa_enrolments_total", "factor" => "passkey").increment(1);
    let mut event = user_event(EventType::MfaEnrolled, Outcome::Success, &user, &interaction, now);
    event.actor_id = Some(user.id.to_string());
    event.details = serde_json::json!({
        "factor": "passkey", "factor_id": factor.id, "name": factor.name, "recovery_codes": codes.len()
    });
    record(services, meta.stamp(event)).await;
    let proven = Proven {
        amr: mfa::with_passkey(&proven.amr),
        ..proven
    };
    let interaction: Interaction = interaction.action_done().at(Step::RecoveryCodes(proven));
    mfa_pages::codes_page(&state, &req, &interaction, &codes, codes.len() as i64).await
}

/// `GET /assets/passkey.js`: the script of the passkey buttons (the only script of the
/// login pages, allowed by their CSP as `'self'`).
pub async fn script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .body(include_str!("../../assets/passkey.js"))
}
