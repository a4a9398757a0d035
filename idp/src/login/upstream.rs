//! Signing in with an upstream OpenID provider (federation), as a relying party built on the
//! `openidconnect` crate: the code flow with PKCE, `state` and `nonce`, the ID token checked
//! with the provider's published keys, RFC 9207 `iss` checked when the provider sends it.
//! The identity is the provider's `iss` + `sub`, linked to at most one local account; with
//! just-in-time provisioning an unknown identity gets a new account, but never one whose
//! email address another account already has (no silent linking by email). The login then
//! continues like any other, with `amr` `fed`.

use actix_web::cookie::SameSite;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use super::interaction::{Binding, Interaction, Proven, Step};
use super::{cookies, flow, pages};
use crate::audit::{EventType, Outcome, SecurityEvent};
use crate::domain::upstream::{FederatedIdentity, Upstream};
use crate::domain::user::{Email, NewUser, User, UserStatus, Username};
use crate::http::meta::RequestMeta;
use crate::manage::{record, upstreams};
use crate::oidc::authorize::error_page;
use crate::oidc::error::OAuthError;
use crate::services::Services;
use crate::startup::AppState;

/// The cookie that carries a sign-in at an upstream from its start to its callback.
const FLOW_COOKIE: &str = "upstream_flow";
/// How long the user may take at the upstream.
const FLOW_LIFETIME_S: i64 = 600;

/// What the callback must match, sealed in a cookie of this browser (SameSite=Lax: it comes
/// back with the upstream's redirect).
#[derive(Serialize, Deserialize)]
struct FlowState {
    slug: String,
    state: String,
    nonce: String,
    pkce_verifier: String,
    /// The sealed interaction to continue.
    interaction: String,
    /// The login's browser binding, computed where this browser's CSRF cookie is sent.
    binding: String,
    issued_at: i64,
}

#[derive(Deserialize)]
pub struct StartQuery {
    interaction: String,
}

/// The upstreams the login page of `client_id` offers: enabled, and allowed for the client.
pub async fn offered(services: &Services, client_id: &str) -> Vec<Upstream> {
    let all = services.store.list_upstreams().await.unwrap_or_default();
    all.into_iter()
        .filter(|u| {
            u.enabled && (u.allowed_clients.is_empty() || u.allowed_clients.iter().any(|c| c == client_id))
        })
        .collect()
}

fn http() -> Result<openidconnect::reqwest::Client, OAuthError> {
    openidconnect::reqwest::Client::builder()
        .timeout(crate::security::outbound::TIMEOUT)
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .map_err(OAuthError::internal)
}

type Rp = CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

/// This provider as the upstream's client, configured by its discovery document.
async fn relying_party(
    services: &Services,
    upstream: &Upstream,
    http: &openidconnect::reqwest::Client,
) -> Result<(Rp, bool), String> {
    let issuer = IssuerUrl::new(upstream.issuer.clone()).map_err(|e| e.to_string())?;
    let metadata = CoreProviderMetadata::discover_async(issuer, http)
        .await
        .map_err(|e| format!("discovery failed: {e}"))?;
    let sends_iss = upstreams::discover(upstream)
        .await
        .map(|d| d.authorization_response_iss_parameter_supported)
        .unwrap_or(false);
    let secret = upstreams::client_secret(services, upstream).map_err(|e| e.to_string())?;
    let redirect =
        RedirectUrl::new(upstreams::redirect_uri(services, &upstream.slug)).map_err(|e| e.to_string())?;
    let rp = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(upstream.client_id.clone()),
        Some(ClientSecret::new(secret.expose_secret().to_string())),
    )
    .set_redirect_uri(redirect);
    Ok((rp, sends_iss))
}

/// GET /upstream/{slug}/start?interaction=…: from the login page's "Continue with" button to
/// the upstream's authorization endpoint.
pub async fn start(
    req: HttpRequest,
    slug: web::Path<String>,
    query: web::Query<StartQuery>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let services = &state.services;
    let now = services.clock.now();
    let Some(interaction) = state.interactions.open(&query.interaction, now) else {
        return pages::wrong_step(&state);
    };
    // The binding needs this browser's CSRF cookie, set by the login page it came from.
    if pages::csrf_value(&state, &req).is_none() {
        return pages::wrong_step(&state);
    }
    let Binding::Browser(binding) = flow::browser_binding(&state, &req) else {
        return pages::wrong_step(&state);
    };
    let upstream = match usable(services, &slug, &interaction).await {
        Ok(upstream) => upstream,
        Err(message) => return pages::login_page_with_error(&state, &req, &interaction, &message).await,
    };
    let started = async {
        let http = http()?;
        let (rp, _) = relying_party(services, &upstream, &http)
            .await
            .map_err(OAuthError::temporarily_unavailable)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = rp
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        for scope in upstream.scopes.iter().filter(|s| *s != "openid") {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, csrf, nonce) = request.url();
        Ok::<_, OAuthError>((url, csrf, nonce, verifier))
    }
    .await;
    let (url, csrf, nonce, verifier) = match started {
        Ok(started) => started,
        Err(e) => {
            tracing::warn!(upstream = %upstream.slug, error = %e, "upstream sign-in could not start");
            return pages::login_page_with_error(
                &state,
                &req,
                &interaction,
                &format!("{} cannot be reached right now.", upstream.display_name),
            )
            .await;
        }
    };
    let flow_state = FlowState {
        slug: upstream.slug.clone(),
        state: csrf.secret().clone(),
        nonce: nonce.secret().clone(),
        pkce_verifier: verifier.secret().clone(),
        interaction: query.interaction.clone(),
        binding,
        issued_at: now.timestamp(),
    };
    let cookie = cookies::build(
        &services.settings,
        FLOW_COOKIE,
        state.interactions.seal_for(FLOW_COOKIE, &flow_state),
        SameSite::Lax,
        Some(FLOW_LIFETIME_S),
    );
    let mut response = HttpResponse::SeeOther()
        .insert_header(("Location", url.to_string()))
        .insert_header(("Cache-Control", "no-store"))
        .finish();
    let _ = response.add_cookie(&cookie);
    response
}

/// The provider, if it may be used for this login.
async fn usable(services: &Services, slug: &str, interaction: &Interaction) -> Result<Upstream, String> {
    let client_id = &interaction.request.client_id;
    offered(services, client_id)
        .await
        .into_iter()
        .find(|u| u.slug == slug)
        .ok_or_else(|| "This sign-in option is not available.".to_string())
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    iss: Option<String>,
    error: Option<String>,
}

/// GET /upstream/{slug}/callback: the upstream's answer.
pub async fn callback(
    req: HttpRequest,
    slug: web::Path<String>,
    query: web::Query<CallbackQuery>,
    state: web::Data<AppState>,
    meta: RequestMeta,
) -> HttpResponse {
    let services = &state.services;
    let now = services.clock.now();
    let cookie_name = cookies::name(&services.settings, FLOW_COOKIE);
    let flow_state: Option<FlowState> = req
        .cookie(&cookie_name)
        .and_then(|c| state.interactions.open_for(FLOW_COOKIE, c.value()));
    // The flow of this browser, for this provider, recent, and the state it sent (RFC 6749
    // §10.12): anything else is a forged or replayed callback.
    let Some(flow_state) = flow_state.filter(|f| {
        f.slug == *slug
            && (0..=FLOW_LIFETIME_S).contains(&(now.timestamp() - f.issued_at))
            && query
                .state
                .as_deref()
                .is_some_and(|s| bool::from(s.as_bytes().ct_eq(f.state.as_bytes())))
    }) else {
        return error_page(
            &state,
            &OAuthError::invalid_request("this sign-in cannot be continued; start again"),
        );
    };
    let mut response = match state.interactions.open(&flow_state.interaction, now) {
        Some(interaction) => finish(&state, &req, &slug, &query, flow_state, interaction, &meta).await,
        None => error_page(
            &state,
            &OAuthError::invalid_request("the sign-in took too long; start again"),
        ),
    };
    let _ = response.add_removal_cookie(&cookies::removal(&services.settings, FLOW_COOKIE));
    response
}

async fn finish(
    state: &AppState,
    req: &HttpRequest,
    slug: &str,
    query: &CallbackQuery,
    flow_state: FlowState,
    interaction: Interaction,
    meta: &RequestMeta,
) -> HttpResponse {
    let services = &state.services;
    let interaction_ref = &interaction;
    let refused = |reason: String| async move {
        failed(services, slug, &interaction_ref.request.client_id, &reason, meta).await;
        pages::login_page_with_error(state, req, interaction_ref, &reason).await
    };
    let upstream = match usable(services, slug, &interaction).await {
        Ok(upstream) => upstream,
        Err(message) => return refused(message).await,
    };
    if let Some(error) = &query.error {
        return refused(format!(
            "{} did not sign you in ({error}).",
            upstream.display_name
        ))
        .await;
    }
    let identity = match identify(services, &upstream, query, &flow_state).await {
        Ok(identity) => identity,
        Err(reason) => {
            tracing::warn!(upstream = %upstream.slug, %reason, "upstream sign-in refused");
            return refused(format!("Signing in with {} failed.", upstream.display_name)).await;
        }
    };
    let user = match account_for(services, &upstream, &identity, services.clock.now()).await {
        Ok(user) => user,
        Err(message) => return refused(message).await,
    };
    let mut event = SecurityEvent::new(EventType::LoginSucceeded, Outcome::Success, services.clock.now());
    event.user_id = Some(user.id.to_string());
    event.username = Some(user.username.as_str().to_string());
    event.client_id = Some(interaction.request.client_id.clone());
    event.details = serde_json::json!({ "upstream": upstream.slug });
    record(services, meta.stamp(event)).await;
    metrics::counter!("idp_upstream_logins_total", "upstream" => upstream.slug.clone(), "outcome" => "success")
        .increment(1);
    let proven = Proven {
        user_id: user.id,
        amr: vec![crate::domain::mfa::amr::FED.to_string()],
        binding: Binding::Browser(flow_state.binding),
    };
    flow::next(
        state,
        req,
        interaction.clone().at(Step::Authenticate),
        proven,
        meta,
    )
    .await
}

async fn failed(services: &Services, slug: &str, client_id: &str, reason: &str, meta: &RequestMeta) {
    let mut event = SecurityEvent::new(EventType::LoginFailed, Outcome::Failure, services.clock.now());
    event.client_id = Some(client_id.to_string());
    event.details = serde_json::json!({ "upstream": slug, "reason": reason });
    record(services, meta.stamp(event)).await;
    metrics::counter!("idp_upstream_logins_total", "upstream" => slug.to_string(), "outcome" => "failure")
        .increment(1);
}

/// Who the upstream says signed in.
struct Identity {
    issuer: String,
    subject: String,
    email: Option<String>,
    email_verified: bool,
    username: Option<String>,
    name: Option<String>,
}

/// The code exchanged, the ID token verified (signature by the upstream's keys, `iss`,
/// `aud`, `exp`, `nonce`), and the user's claims from its userinfo endpoint.
async fn identify(
    services: &Services,
    upstream: &Upstream,
    query: &CallbackQuery,
    flow_state: &FlowState,
) -> Result<Identity, String> {
    let http = http().map_err(|e| e.to_string())?;
    let (rp, sends_iss) = relying_party(services, upstream, &http).await?;
    // RFC 9207 §2.4: the `iss` of the response is this provider's issuer, and required when
    // it says it sends one (a mix-up attack sends the code to the wrong provider).
    match (&query.iss, sends_iss) {
        (Some(iss), _) if *iss != upstream.issuer => return Err(format!("iss {iss:?} is another issuer's")),
        (None, true) => return Err("the response lacks iss".into()),
        _ => {}
    }
    let code = query.code.clone().ok_or("no code")?;
    let tokens = rp
        .exchange_code(AuthorizationCode::new(code))
        .map_err(|e| e.to_string())?
        .set_pkce_verifier(PkceCodeVerifier::new(flow_state.pkce_verifier.clone()))
        .request_async(&http)
        .await
        .map_err(|e| format!("code exchange failed: {e}"))?;
    let id_token = tokens.id_token().ok_or("no ID token")?;
    let claims = id_token
        .claims(&rp.id_token_verifier(), &Nonce::new(flow_state.nonce.clone()))
        .map_err(|e| format!("ID token refused: {e}"))?;
    let subject = claims.subject().clone();
    let info: Option<CoreUserInfoClaims> =
        match rp.user_info(tokens.access_token().clone(), Some(subject.clone())) {
            Ok(request) => request.request_async(&http).await.ok(),
            Err(_) => None,
        };
    let email = info
        .as_ref()
        .and_then(|i| i.email())
        .or(claims.email())
        .map(|e| e.as_str().to_string());
    let email_verified = info
        .as_ref()
        .and_then(|i| i.email_verified())
        .or(claims.email_verified())
        .unwrap_or(false);
    let username = info
        .as_ref()
        .and_then(|i| i.preferred_username())
        .or(claims.preferred_username())
        .map(|u| u.as_str().to_string());
    let name = info
        .as_ref()
        .and_then(|i| i.name())
        .or(claims.name())
        .and_then(|n| n.get(None))
        .map(|n| n.as_str().to_string());
    Ok(Identity {
        issuer: claims.issuer().as_str().to_string(),
        subject: subject.as_str().to_string(),
        email,
        email_verified,
        username,
        name,
    })
}

/// The account linked to the identity; with just-in-time provisioning, a new one. An account
/// that merely shares the email address is never linked here.
async fn account_for(
    services: &Services,
    upstream: &Upstream,
    identity: &Identity,
    now: DateTime<Utc>,
) -> Result<User, String> {
    let unavailable = |_| "Signing in is not possible right now; try again.".to_string();
    if let Some(linked) = services
        .store
        .find_identity(&identity.issuer, &identity.subject)
        .await
        .map_err(unavailable)?
    {
        let user = services
            .store
            .find_user(linked.user_id)
            .await
            .map_err(unavailable)?
            .filter(|u| u.status == UserStatus::Active)
            .ok_or("This account is disabled.")?;
        let _ = services
            .store
            .touch_identity(&identity.issuer, &identity.subject, now)
            .await;
        return Ok(user);
    }
    if !upstream.jit {
        return Err(format!(
            "No account here is linked to your {} identity.",
            upstream.display_name
        ));
    }
    let email = identity
        .email
        .as_deref()
        .map(Email::parse)
        .transpose()
        .map_err(|_| "The provider gave no usable email address.".to_string())?;
    if !upstream.allowed_domains.is_empty() {
        let domain = email
            .as_ref()
            .and_then(|e| e.as_str().rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase()));
        if !domain.is_some_and(|d| upstream.allowed_domains.contains(&d)) {
            return Err("Your email domain may not sign in here.".into());
        }
    }
    if let Some(email) = &email
        && services
            .store
            .find_user_by_email(&email.key())
            .await
            .map_err(unavailable)?
            .is_some()
    {
        // Never linked silently by email: the account's owner must prove it first.
        return Err(
            "An account with this email address already exists. Sign in with it to link your identity."
                .into(),
        );
    }
    let user = create_account(services, upstream, identity, email, now).await?;
    Ok(user)
}

async fn create_account(
    services: &Services,
    upstream: &Upstream,
    identity: &Identity,
    email: Option<Email>,
    now: DateTime<Utc>,
) -> Result<User, String> {
    let failed = |_| "Your account could not be created; try again.".to_string();
    let wanted = identity
        .username
        .clone()
        .or_else(|| {
            email
                .as_ref()
                .and_then(|e| e.as_str().split('@').next().map(str::to_string))
        })
        .unwrap_or_else(|| upstream.slug.clone());
    let suffix = crate::security::random::token::<4>().map_err(|_| "no randomness".to_string())?;
    let mut user = None;
    for candidate in [wanted.clone(), format!("{wanted}-{}", suffix.to_lowercase())] {
        let Ok(username) = Username::parse(&candidate) else {
            continue;
        };
        let new = NewUser {
            username,
            email: email.clone(),
            name: identity.name.clone(),
            roles: vec![],
        };
        match services.store.create_user(&new, None, now).await {
            Ok(created) => {
                user = Some(created);
                break;
            }
            Err(crate::store::StoreError::Conflict(_)) => continue,
            Err(e) => return Err(failed(e)),
        }
    }
    let mut user = user.ok_or("No username could be chosen for your account.")?;
    if upstream.trust_email
        && identity.email_verified
        && let Some(email) = &email
        && services
            .store
            .mark_email_verified(user.id, email.as_str(), now)
            .await
            .map_err(failed)?
    {
        user.email_verified = true;
    }
    services
        .store
        .link_identity(&FederatedIdentity {
            issuer: identity.issuer.clone(),
            subject: identity.subject.clone(),
            user_id: user.id,
            upstream: upstream.slug.clone(),
            email: email.map(|e| e.as_str().to_string()),
            created_at: now,
            last_login_at: Some(now),
        })
        .await
        .map_err(failed)?;
    let mut event = SecurityEvent::new(EventType::UserCreated, Outcome::Success, now);
    event.user_id = Some(user.id.to_string());
    event.username = Some(user.username.as_str().to_string());
    event.details = serde_json::json!({ "upstream": upstream.slug, "jit": true });
    record(services, event).await;
    Ok(user)
}
