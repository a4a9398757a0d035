//! Signing in with an upstream provider (federation): the login page's "Continue with" button
//! starts the code flow there (PKCE, `state`, `nonce`, kept in a sealed cookie of this
//! browser), its callback finishes it ([`rp`] for OpenID providers, [`plain_oauth`] for plain
//! OAuth 2.0 ones such as GitHub), and the identity leads to a local account
//! ([`accounts`]): linked, linked after the user proves the account here (the login page in
//! "link" mode), or new. The login then continues like any other, with `amr` `fed` and the
//! upstream's own methods.

mod accounts;
mod identity;
mod keys;
mod logout;
mod plain_oauth;
mod rp;

pub(super) use accounts::complete_link;
pub use logout::backchannel_logout;

use actix_web::cookie::SameSite;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use self::accounts::{Account, account_for};
use self::identity::{Answer, Identity, Started};
use super::interaction::{Binding, Interaction, PendingLink, Proven, Step};
use super::{cookies, flow, pages};
use crate::audit::{EventType, Outcome, SecurityEvent};
use crate::domain::mfa::amr;
use crate::domain::session::UpstreamSession;
use crate::domain::upstream::{Protocol, Upstream};
use crate::http::meta::RequestMeta;
use crate::manage::record;
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
    issued_at: i64,
}

#[derive(Deserialize)]
pub struct StartQuery {
    interaction: String,
}

/// The upstreams the login page of `client_id` offers: enabled, and allowed for the client.
pub async fn offered(services: &Services, client_id: &str) -> Vec<Upstream> {
    let all = services.store.list_upstreams().await.unwrap_or_default();
    let offered: Vec<Upstream> = all
        .into_iter()
        .filter(|u| {
            u.enabled && (u.allowed_clients.is_empty() || u.allowed_clients.iter().any(|c| c == client_id))
        })
        .collect();
    // Every sign-in through a provider starts here: its series exist, at zero, before it.
    for upstream in &offered {
        crate::metrics::register_upstream(&upstream.slug);
    }
    offered
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
    let upstream = match usable(services, &slug, &interaction).await {
        Ok(upstream) => upstream,
        Err(message) => return pages::login_page_with_error(&state, &req, &interaction, &message).await,
    };
    let started = match &upstream.protocol {
        Protocol::Oidc => rp::authorization(services, &upstream).await,
        Protocol::OAuth2(endpoints) => plain_oauth::authorization(services, &upstream, endpoints),
    };
    let Started {
        url,
        state: upstream_state,
        nonce,
        pkce_verifier,
    } = match started {
        Ok(started) => started,
        Err(error) => {
            tracing::warn!(upstream = %upstream.slug, %error, "upstream sign-in could not start");
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
        state: upstream_state,
        nonce,
        pkce_verifier,
        interaction: query.interaction.clone(),
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

/// With `idp_hint` naming a provider this login may use (and no link waiting for a local
/// proof): straight to it, instead of the login page.
pub(super) async fn hinted(state: &AppState, interaction: &Interaction) -> Option<HttpResponse> {
    let slug = interaction.request.idp_hint.as_deref()?;
    if interaction.link.is_some() {
        return None;
    }
    let upstream = usable(&state.services, slug, interaction).await.ok()?;
    let sealed = state.interactions.seal(interaction);
    let location = format!(
        "/upstream/{}/start?interaction={}",
        upstream.slug,
        url::form_urlencoded::byte_serialize(sealed.as_bytes()).collect::<String>()
    );
    Some(
        HttpResponse::SeeOther()
            .insert_header(("Location", location))
            .insert_header(("Cache-Control", "no-store"))
            .finish(),
    )
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
    let answer = Answer {
        code: query.code.as_deref(),
        iss: query.iss.as_deref(),
        nonce: &flow_state.nonce,
        pkce_verifier: &flow_state.pkce_verifier,
    };
    let identified = match &upstream.protocol {
        Protocol::Oidc => rp::identify(services, &upstream, answer).await,
        Protocol::OAuth2(endpoints) => plain_oauth::identify(services, &upstream, endpoints, answer).await,
    };
    let identity = match identified {
        Ok(identity) => identity,
        Err(reason) => {
            tracing::warn!(upstream = %upstream.slug, %reason, "upstream sign-in refused");
            return refused(format!("Signing in with {} failed.", upstream.display_name)).await;
        }
    };
    // The login goes on in this browser, which the flow cookie and `state` just proved. Its
    // SameSite=Strict CSRF cookie does not come with the upstream's cross-site redirect: the
    // binding and the pages that follow use a value set afresh by this answer.
    let (csrf, fresh) = pages::csrf_cookie(state, req);
    if fresh.is_some() {
        req.extensions_mut().insert(pages::FreshCsrf(csrf.clone()));
    }
    let binding = state.interactions.tag(flow::BINDING_PURPOSE, &csrf);
    // A link waiting from an earlier attempt is not made by this sign-in.
    let mut interaction = interaction.clone();
    interaction.link = None;
    interaction.upstream = None;
    let user = match account_for(services, &upstream, &identity, meta, services.clock.now()).await {
        Ok(Account::Ready(user)) => user,
        Ok(Account::Prove) => {
            metrics::counter!("idp_upstream_logins_total", "upstream" => upstream.slug.clone(), "outcome" => "link")
                .increment(1);
            interaction.link = Some(PendingLink {
                upstream: upstream.slug.clone(),
                display_name: upstream.display_name.clone(),
                issuer: identity.issuer,
                subject: identity.subject,
                email: identity.email,
                binding,
            });
            return pages::link_page(state, req, &interaction).await;
        }
        Err(message) => return refused(message).await,
    };
    let mut event = SecurityEvent::new(EventType::LoginSucceeded, Outcome::Success, services.clock.now());
    event.user_id = Some(user.id.to_string());
    event.username = Some(user.username.as_str().to_string());
    event.client_id = Some(interaction.request.client_id.clone());
    event.details = serde_json::json!({
        "upstream": upstream.slug, "upstream_amr": identity.amr, "upstream_acr": identity.acr,
    });
    record(services, meta.stamp(event)).await;
    metrics::counter!("idp_upstream_logins_total", "upstream" => upstream.slug.clone(), "outcome" => "success")
        .increment(1);
    interaction.upstream = Some(UpstreamSession {
        issuer: identity.issuer.clone(),
        sid: identity.sid.clone(),
    });
    let proven = Proven {
        user_id: user.id,
        amr: methods(&identity),
        binding: Binding::Browser(binding),
    };
    flow::next(state, req, interaction.at(Step::Authenticate), proven, meta).await
}

/// The session's methods: `fed`, then those the upstream says it used (RFC 8176 values).
fn methods(identity: &Identity) -> Vec<String> {
    let mut methods = vec![amr::FED.to_string()];
    for method in &identity.amr {
        if !methods.contains(method) {
            methods.push(method.clone());
        }
    }
    methods
}

async fn failed(services: &Services, slug: &str, client_id: &str, reason: &str, meta: &RequestMeta) {
    let mut event = SecurityEvent::new(EventType::LoginFailed, Outcome::Failure, services.clock.now());
    event.client_id = Some(client_id.to_string());
    event.details = serde_json::json!({ "upstream": slug, "reason": reason });
    record(services, meta.stamp(event)).await;
    metrics::counter!("idp_upstream_logins_total", "upstream" => slug.to_string(), "outcome" => "failure")
        .increment(1);
}
