//! The login as a sequence of steps: identify and prove a password, a second factor, a
//! forced password change, enrolment required by policy, then the session and consent.
//! Every step's handler, once its proof checks out, calls [`next`], which decides the next
//! step from what is proven and what the user, the client and the request need. No handler
//! picks its successor itself, so none can skip one.

use actix_web::cookie::SameSite;
use actix_web::{HttpRequest, HttpResponse};
use subtle::ConstantTimeEq;

use super::interaction::{Binding, Interaction, Proven, Step};
use super::pages::{self, csrf_value};
use super::{cookies, protection, session};
use crate::config::Settings;
use crate::domain::client::Client;
use crate::domain::mfa::{self, Factor, FactorKind, MfaPolicy};
use crate::domain::session::Session;
use crate::domain::user::{User, UserStatus};
use crate::http::meta::RequestMeta;
use crate::oidc::authorize::{self, Next, error_page, render};
use crate::oidc::error::OAuthError;
use crate::oidc::request::{AccountAction, AuthRequest, Target};
use crate::security::totp::TotpSecret;
use crate::services::Services;
use crate::startup::AppState;

/// The MFA policy of a login at `client`: the deployment's, raised by the client's own.
pub fn policy(settings: &Settings, client: &Client) -> MfaPolicy {
    client.mfa.map_or(settings.mfa, |own| own.max(settings.mfa))
}

/// Whether this login must end with a second factor, enrolling one if the user has none.
pub fn second_factor_required(
    settings: &Settings,
    client: &Client,
    user: &User,
    request: &AuthRequest,
) -> bool {
    policy(settings, client) == MfaPolicy::Required
        || user.mfa_enrolment_required
        || (settings.mfa_required_for_admins && user.is_admin())
        || request.asks_second_factor()
}

/// Whether methods `amr` are strong enough for this request: the class it asks for, or any
/// second factor (what policies ask for).
fn strong_enough(amr: &[String], request: &AuthRequest) -> bool {
    match &request.acr {
        Some(acr) => mfa::satisfies(amr, acr),
        None => amr.iter().any(|m| m == mfa::amr::MFA),
    }
}

/// Whether one of `factors` can raise a login to what `request` asks: only a passkey for a
/// phishing-resistant login, any factor otherwise.
pub(super) fn has_usable_factor(request: &AuthRequest, factors: &[Factor]) -> bool {
    let phishing_resistant = request.acr.as_deref() == Some(mfa::ACR_PHISHING_RESISTANT);
    factors
        .iter()
        .any(|f| !phishing_resistant || f.kind == FactorKind::Passkey)
}

/// For an existing session (single sign-on): the step that raises it to what this request
/// needs, if it falls short (OIDC step-up through `acr_values`, a stricter client, a policy),
/// or that proves a second factor afresh for an account-page action.
pub fn step_up(
    settings: &Settings,
    client: &Client,
    user: &User,
    session: &Session,
    request: &AuthRequest,
) -> Option<Step> {
    // The account page's actions on second factors take a fresh proof of one, whatever the
    // session has proven before.
    let fresh_proof = request.account_action.is_some();
    let short =
        !strong_enough(&session.amr, request) && second_factor_required(settings, client, user, request);
    (fresh_proof || short).then(|| {
        Step::SecondFactor(Proven {
            user_id: user.id,
            amr: session.amr.clone(),
            binding: Binding::Session(session.sid.clone()),
        })
    })
}

/// What a browser binding is a MAC for.
pub(super) const BINDING_PURPOSE: &str = "login-binding";

/// The binding of a login that has no session yet: a MAC of this browser's CSRF cookie.
pub(super) fn browser_binding(state: &AppState, req: &HttpRequest) -> Binding {
    Binding::Browser(
        state
            .interactions
            .tag(BINDING_PURPOSE, &csrf_value(state, req).unwrap_or_default()),
    )
}

/// Whether `proven` belongs to this browser: the same CSRF cookie, or the same session.
pub(super) async fn is_here(state: &AppState, req: &HttpRequest, proven: &Proven) -> bool {
    match &proven.binding {
        Binding::Browser(tag) => {
            let Some(cookie) = csrf_value(state, req) else {
                return false;
            };
            let expected = state.interactions.tag(BINDING_PURPOSE, &cookie);
            expected.as_bytes().ct_eq(tag.as_bytes()).into()
        }
        Binding::Session(sid) => {
            match session::current(&state.services, req, state.services.clock.now()).await {
                Ok(Some((session, user))) => session.sid == *sid && user.id == proven.user_id,
                _ => false,
            }
        }
    }
}

/// The active user a step is for, or the page to answer instead (the login page when the
/// account is gone or disabled meanwhile).
pub(super) async fn user_of(
    state: &AppState,
    interaction: &Interaction,
    proven: &Proven,
) -> Result<User, HttpResponse> {
    match state.services.store.find_user(proven.user_id).await {
        Ok(Some(user)) if user.status == UserStatus::Active => Ok(user),
        Ok(_) => Err(render(
            state,
            Next::interact(interaction.clone().at(Step::Authenticate)),
        )),
        Err(e) => Err(error_page(state, &e.into())),
    }
}

/// The user's confirmed factors.
pub async fn confirmed_factors(services: &Services, user: &User) -> Result<Vec<Factor>, OAuthError> {
    let mut factors = services.store.factors_of(user.id).await?;
    factors.retain(Factor::confirmed);
    Ok(factors)
}

/// After each proof: the next step, or the end of the login.
pub(super) async fn next(
    state: &AppState,
    req: &HttpRequest,
    interaction: Interaction,
    proven: Proven,
    meta: &RequestMeta,
) -> HttpResponse {
    let services = &state.services;
    let user = match user_of(state, &interaction, &proven).await {
        Ok(user) => user,
        Err(page) => return page,
    };
    let decided = async {
        let client = authorize::interaction_client(services, &interaction.request).await?;
        if !strong_enough(&proven.amr, &interaction.request) {
            let required = second_factor_required(&services.settings, &client, &user, &interaction.request);
            let usable = has_usable_factor(&interaction.request, &confirmed_factors(services, &user).await?);
            // Linking an upstream identity proves the account with every factor it has.
            let linking = interaction.link.is_some();
            if usable && (required || linking || policy(&services.settings, &client) != MfaPolicy::Off) {
                return Ok(Decided::SecondFactor);
            }
            if required && !usable && !user.must_change_password {
                return Ok(Decided::Enrol(new_totp_factor(services, &user).await?));
            }
        }
        // The account page's action, once a second factor is proven (a user without one has
        // just been walked through enrolment above, which ends the action).
        if let Some(action) = interaction.request.account_action
            && mfa::satisfies(&proven.amr, mfa::ACR_MFA)
        {
            return Ok(match action {
                AccountAction::AddFactor => Decided::Enrol(new_totp_factor(services, &user).await?),
                AccountAction::NewRecoveryCodes => {
                    Decided::NewRecoveryCodes(super::mfa::new_recovery_codes(services, &user).await?)
                }
            });
        }
        if user.must_change_password {
            return Ok(Decided::ChangePassword);
        }
        Ok::<_, OAuthError>(Decided::Done)
    }
    .await;
    // The second-factor pages are the answer to the form just posted (no redirect and reload
    // in between: the step costs the user one round trip, the code's).
    match decided {
        Ok(Decided::SecondFactor) => {
            let interaction = interaction.at(Step::SecondFactor(proven));
            super::mfa::code_page(state, req, &interaction, &user, None).await
        }
        Ok(Decided::Enrol(factor)) => {
            let interaction = interaction.at(Step::Enrol {
                proven,
                factor: factor.id,
            });
            super::mfa::enrol_page(state, req, &interaction, &user, &factor, None).await
        }
        Ok(Decided::NewRecoveryCodes(codes)) => {
            let interaction = interaction.action_done().at(Step::RecoveryCodes(proven));
            super::mfa::show_new_codes(state, req, &interaction, &user, &codes, "account", meta).await
        }
        Ok(Decided::ChangePassword) => render(
            state,
            Next::interact(interaction.at(Step::ChangePassword(proven))),
        ),
        Ok(Decided::Done) => finish(state, req, user, interaction, proven, meta).await,
        Err(e) => error_page(state, &e),
    }
}

/// What comes after a proof.
enum Decided {
    SecondFactor,
    Enrol(Factor),
    /// The account page asked for new recovery codes: these, shown once.
    NewRecoveryCodes(Vec<String>),
    ChangePassword,
    Done,
}

/// Starts an enrolment: an unconfirmed TOTP factor with a fresh secret, encrypted at rest.
async fn new_totp_factor(services: &Services, user: &User) -> Result<Factor, OAuthError> {
    let id = uuid::Uuid::new_v4();
    let secret = TotpSecret::generate().map_err(OAuthError::internal)?;
    let factor = Factor {
        id,
        user_id: user.id,
        kind: FactorKind::Totp,
        name: "Authenticator app".into(),
        secret: secret
            .encrypt(&services.mfa_key, id)
            .map_err(OAuthError::internal)?,
        created_at: services.clock.now(),
        confirmed_at: None,
        last_used_at: None,
        last_used_step: None,
        credential_id: None,
    };
    services.store.insert_factor(&factor).await?;
    Ok(factor)
}

/// Every step is done: the failures counted against this account from here are forgotten,
/// and the login becomes a session (or raises the session it stepped up).
async fn finish(
    state: &AppState,
    req: &HttpRequest,
    user: User,
    interaction: Interaction,
    proven: Proven,
    meta: &RequestMeta,
) -> HttpResponse {
    let services = &state.services;
    let source = meta.ip.clone().unwrap_or_default();
    if let Err(e) = protection::after_success(services, &user.username.key(), &source).await {
        tracing::warn!(error = %e, "could not clear login failures");
    }
    match proven.binding {
        Binding::Browser(binding) => {
            let mut interaction = interaction;
            if let Some(link) = interaction.link.take()
                && let Err(message) =
                    super::upstream::complete_link(services, &user, &link, &binding, &proven.amr, meta).await
            {
                return error_page(state, &OAuthError::invalid_request(message));
            }
            sign_in(state, user, interaction, proven.amr, meta).await
        }
        Binding::Session(sid) => {
            let now = services.clock.now();
            let raised = async {
                let Some((session, user)) = session::current(services, req, now).await? else {
                    return Ok(None);
                };
                if session.sid != sid
                    || !services
                        .store
                        .upgrade_session(&session.id_hash, &proven.amr, now)
                        .await?
                {
                    return Ok(None);
                }
                let session = Session {
                    amr: proven.amr.clone(),
                    auth_time: now,
                    ..session
                };
                Ok::<_, crate::store::StoreError>(Some((session, user)))
            }
            .await;
            match raised {
                Ok(Some(current)) => {
                    let continued = Interaction {
                        login_sid: Some(sid),
                        ..interaction
                    }
                    .at(Step::Authenticate);
                    continue_authorization(state, continued, current).await
                }
                Ok(None) => render(state, Next::interact(interaction.at(Step::Authenticate))),
                Err(e) => error_page(state, &e.into()),
            }
        }
    }
}

/// Starts a session for `user`, who has just authenticated with `amr`, and continues the
/// interaction.
pub(super) async fn sign_in(
    state: &AppState,
    user: User,
    interaction: Interaction,
    amr: Vec<String>,
    meta: &RequestMeta,
) -> HttpResponse {
    let services = &state.services;
    let now = services.clock.now();
    let upstream = interaction.upstream.clone();
    let (session, cookie_value) = match session::start(services, &user, amr, upstream, meta, now).await {
        Ok(started) => started,
        Err(e) => return error_page(state, &e.into()),
    };
    let cookie = cookies::build(
        &services.settings,
        cookies::SESSION,
        cookie_value,
        SameSite::Lax,
        None,
    );
    let continued = Interaction {
        login_sid: Some(session.sid.clone()),
        ..interaction
    }
    .at(Step::Authenticate);
    let mut response = continue_authorization(state, continued, (session, user)).await;
    let _ = response.add_cookie(&cookie);
    response
}

async fn continue_authorization(
    state: &AppState,
    interaction: Interaction,
    current: (Session, User),
) -> HttpResponse {
    let services = &state.services;
    let target = Target::of(&interaction.request);
    let next = authorize::proceed(services, interaction, Some(current), services.clock.now())
        .await
        .unwrap_or_else(|error| authorize::error_response(target, &error));
    render(state, next)
}

/// The interaction of a step page, if it is at a step carrying proof for this browser.
pub(super) async fn proven_step(
    state: &AppState,
    req: &HttpRequest,
    interaction: &Interaction,
) -> Result<Proven, HttpResponse> {
    let proven = match &interaction.step {
        Step::SecondFactor(p) | Step::ChangePassword(p) | Step::RecoveryCodes(p) => p,
        Step::Enrol { proven, .. } => proven,
        Step::Authenticate | Step::VerifyEmail | Step::Consent => return Err(pages::wrong_step(state)),
    };
    if !is_here(state, req, proven).await {
        return Err(pages::wrong_step(state));
    }
    Ok(proven.clone())
}
