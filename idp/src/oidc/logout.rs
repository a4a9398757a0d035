//! Logout: OpenID Connect RP-Initiated Logout 1.0 (`end_session_endpoint`, GET and POST)
//! and Back-Channel Logout 1.0 (a signed logout token POSTed to each client that had a
//! grant in the ended session).

use actix_web::http::StatusCode;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use subtle::ConstantTimeEq;

use super::authorize::error_page;
use super::error::OAuthError;
use super::params::Params;
use super::revocation::revoke_grant;
use crate::audit::{EventType, Outcome, SecurityEvent};
use crate::domain::session::Session;
use crate::domain::user::User;
use crate::http::html;
use crate::http::meta::RequestMeta;
use crate::login::{cookies, session};
use crate::manage::record;
use crate::security::keys::Alg;
use crate::security::random;
use crate::services::Services;
use crate::startup::AppState;

/// A validated logout request: where to send the browser afterwards.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct LogoutRequest {
    client_id: Option<String>,
    /// Only ever a URI registered for `client_id`.
    redirect: Option<String>,
    state: Option<String>,
    /// `sid` and `sub` of the `id_token_hint`, tying the request to a session.
    hint_sid: Option<String>,
    hint_sub: Option<String>,
}

/// GET and POST `/logout`.
pub async fn end_session(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
    meta: RequestMeta,
) -> HttpResponse {
    let raw: &[u8] = if req.method() == actix_web::http::Method::POST {
        &body
    } else {
        req.query_string().as_bytes()
    };
    if req.method() == actix_web::http::Method::POST
        && !req
            .content_type()
            .starts_with("application/x-www-form-urlencoded")
    {
        return error_page(
            &state,
            &OAuthError::invalid_request("the request must be application/x-www-form-urlencoded"),
        );
    }
    let request = match Params::parse(raw).map_err(|e| OAuthError::invalid_request(e.to_string())) {
        Ok(params) => validate(&state.services, &params).await,
        Err(e) => Err(e),
    };
    let request = match request {
        Ok(request) => request,
        Err(e) => return error_page(&state, &e),
    };
    let services = &state.services;
    let now = services.clock.now();
    let current = match session::current(services, &req, now).await {
        Ok(current) => current,
        Err(e) => return error_page(&state, &e.into()),
    };
    match current {
        None => finish(&state, &request, None),
        Some((session, user)) => {
            let tied = request.hint_sid.as_deref() == Some(session.sid.as_str())
                || request.hint_sub.as_deref() == Some(user.id.to_string().as_str());
            if tied {
                end(&state, &session, &user, &meta).await;
                finish(&state, &request, Some(&session))
            } else {
                confirmation_page(&state, &req, &request).await
            }
        }
    }
}

/// Validates the parameters (RP-Initiated Logout §2–3). The hint's signature is checked;
/// an expired hint is accepted (§2: "the OP … SHOULD accept ID Tokens … even if expired").
async fn validate(services: &Services, params: &Params) -> Result<LogoutRequest, OAuthError> {
    let mut request = LogoutRequest {
        state: params.get("state").map(str::to_string),
        ..Default::default()
    };
    let mut hint_client = None;
    if let Some(hint) = params.get("id_token_hint") {
        let not_an_id_token =
            || OAuthError::invalid_request("the id_token_hint is not an ID token issued by this provider");
        let (typ, claims) = services
            .keys
            .current()
            .verify(hint, services.settings.issuer_str(), true, services.clock.now())
            .map_err(|_| not_an_id_token())?;
        // Only our ID tokens (typ "JWT", with `auth_time`, no `client_id`): an access token,
        // logout token or introspection answer we signed is no hint (RP-Initiated Logout §2).
        let is_id_token = typ.as_deref() == Some("JWT")
            && claims.contains_key("auth_time")
            && claims.contains_key("aud")
            && !claims.contains_key("client_id");
        if !is_id_token {
            return Err(not_an_id_token());
        }
        hint_client = match claims.get("aud") {
            Some(Value::String(aud)) => Some(aud.clone()),
            Some(Value::Array(auds)) => auds.first().and_then(Value::as_str).map(str::to_string),
            _ => None,
        };
        request.hint_sid = claims.get("sid").and_then(Value::as_str).map(str::to_string);
        request.hint_sub = claims.get("sub").and_then(Value::as_str).map(str::to_string);
    }
    request.client_id = match (params.get("client_id"), hint_client) {
        (Some(given), Some(from_hint)) if given != from_hint => {
            return Err(OAuthError::invalid_request(
                "client_id does not match the id_token_hint",
            ));
        }
        (Some(given), _) => Some(given.to_string()),
        (None, from_hint) => from_hint,
    };
    if let Some(uri) = params.get("post_logout_redirect_uri") {
        // Only a URI registered for the identified client; otherwise no redirect at all (§3).
        let client = match &request.client_id {
            Some(id) => services.store.find_client(id).await?,
            None => None,
        };
        if client.is_some_and(|c| c.post_logout_redirect_uris.iter().any(|u| u.as_str() == uri)) {
            request.redirect = Some(uri.to_string());
        }
    }
    Ok(request)
}

/// Ends the session: deletes it, revokes its grants except those with offline access,
/// records the logout and notifies clients over the back channel.
pub(crate) async fn end(state: &AppState, session: &Session, user: &User, meta: &RequestMeta) {
    let services = &state.services;
    let now = services.clock.now();
    if let Err(e) = services.store.delete_session(&session.id_hash).await {
        tracing::error!(error = %e, "could not delete the session");
    }
    let grants = services
        .store
        .grants_of_session(&session.sid)
        .await
        .unwrap_or_default();
    let mut clients: Vec<String> = Vec::new();
    for grant in &grants {
        if !grant.offline
            && grant.revoked_at.is_none()
            && let Err(e) = revoke_grant(services, &grant.id, None, now).await
        {
            tracing::error!(error = %e, grant_id = %grant.id, "could not revoke a grant at logout");
        }
        if !clients.contains(&grant.client_id) {
            clients.push(grant.client_id.clone());
        }
    }
    let mut event = SecurityEvent::new(EventType::Logout, Outcome::Success, now);
    event.user_id = Some(user.id.to_string());
    event.username = Some(user.username.as_str().to_string());
    event.details = serde_json::json!({ "sid": session.sid, "clients": clients });
    record(services, meta.stamp(event)).await;
    for client_id in clients {
        notify_back_channel(
            services.clone(),
            client_id,
            user.id.to_string(),
            session.sid.clone(),
            now,
        );
    }
}

/// Redirects to the registered post-logout URI (with `state`), or shows "signed out".
fn finish(state: &AppState, request: &LogoutRequest, ended: Option<&Session>) -> HttpResponse {
    let mut response = match &request.redirect {
        Some(uri) => {
            let mut location = uri.clone();
            if let Some(s) = &request.state {
                let encoded: String = url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("state", s)
                    .finish();
                location.push(if location.contains('?') { '&' } else { '?' });
                location.push_str(&encoded);
            }
            HttpResponse::Found()
                .insert_header(("Location", location))
                .insert_header(("Cache-Control", "no-store"))
                .finish()
        }
        None => render(state, minijinja::context! { confirm => false }, None),
    };
    if ended.is_some() {
        let _ = response.add_cookie(&cookies::removal(&state.services.settings, cookies::SESSION));
    }
    response
}

fn render(state: &AppState, context: minijinja::Value, form_action: Option<&str>) -> HttpResponse {
    let (theme_name, theme) = state.themes.get(None);
    let context = minijinja::context! { product => "AImpact Identity", css_url => format!("/theme/{theme_name}/style.css"), ..context };
    match theme.render("logout.html", context) {
        Ok(body) => html::page(StatusCode::OK, body, form_action, None),
        Err(e) => error_page(state, &OAuthError::internal(e)),
    }
}

/// The request could not be tied to the session: ask before ending it (§2, a logout
/// without a hint must not be forced on the user by a third party).
async fn confirmation_page(state: &AppState, req: &HttpRequest, request: &LogoutRequest) -> HttpResponse {
    let csrf_value = req
        .cookie(&cookies::name(&state.services.settings, cookies::CSRF))
        .map(|c| c.value().to_string())
        .filter(|v| v.len() >= 32)
        .unwrap_or_else(|| random::token::<32>().unwrap_or_default());
    let sealed = seal(state, request);
    let client_name = match &request.client_id {
        Some(id) => state
            .services
            .store
            .find_client(id)
            .await
            .ok()
            .flatten()
            .map(|c| c.name),
        None => None,
    };
    let form_action = request.redirect.as_deref().map(html::csp_source);
    let mut response = render(
        state,
        minijinja::context! {
            confirm => true,
            client_name => client_name,
            csrf => state.interactions.tag("csrf", &csrf_value),
            request => sealed,
        },
        form_action.as_deref(),
    );
    let cookie = cookies::build(
        &state.services.settings,
        cookies::CSRF,
        csrf_value,
        actix_web::cookie::SameSite::Strict,
        None,
    );
    let _ = response.add_cookie(&cookie);
    response
}

fn seal(state: &AppState, request: &LogoutRequest) -> String {
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(request).unwrap_or_default());
    format!("{body}.{}", state.interactions.tag("logout", &body))
}

fn unseal(state: &AppState, sealed: &str) -> Option<LogoutRequest> {
    let (body, tag) = sealed.split_once('.')?;
    let expected = state.interactions.tag("logout", body);
    if !bool::from(expected.as_bytes().ct_eq(tag.as_bytes())) {
        return None;
    }
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).ok()?).ok()
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    csrf: String,
    request: String,
}

/// `POST /logout/confirm`: the user confirmed on the provider's own page.
pub async fn confirm(
    req: HttpRequest,
    form: web::Form<ConfirmForm>,
    state: web::Data<AppState>,
    meta: RequestMeta,
) -> HttpResponse {
    let csrf_ok = req
        .cookie(&cookies::name(&state.services.settings, cookies::CSRF))
        .map(|c| state.interactions.tag("csrf", c.value()))
        .is_some_and(|expected| bool::from(expected.as_bytes().ct_eq(form.csrf.as_bytes())));
    let Some(request) = unseal(&state, &form.request).filter(|_| csrf_ok) else {
        return error_page(
            &state,
            &OAuthError::invalid_request("the form expired; sign out again"),
        );
    };
    let now = state.services.clock.now();
    match session::current(&state.services, &req, now).await {
        Ok(Some((session, user))) => {
            end(&state, &session, &user, &meta).await;
            finish(&state, &request, Some(&session))
        }
        Ok(None) => finish(&state, &request, None),
        Err(e) => error_page(&state, &e.into()),
    }
}

/// Sends the logout token to the client's back-channel URI in the background, with up to
/// three attempts (Back-Channel Logout 1.0 §2.5: the RP answers 200; retrying is allowed).
pub(crate) fn notify_back_channel(
    services: Services,
    client_id: String,
    subject: String,
    sid: String,
    now: DateTime<Utc>,
) {
    tokio::spawn(async move {
        let client = match services.store.find_client(&client_id).await {
            Ok(Some(client)) => client,
            _ => return,
        };
        let Some(uri) = client.backchannel_logout_uri.clone() else {
            return;
        };
        let token = match logout_token(
            &services,
            &client.id,
            &client.id_token_signed_response_alg,
            &subject,
            &sid,
            now,
        ) {
            Ok(token) => token,
            Err(e) => return tracing::error!(error = %e, "could not sign a logout token"),
        };
        let http = match reqwest::Client::builder()
            .timeout(std::time::Duration::from_millis(
                services.settings.backchannel_logout_timeout_ms,
            ))
            .redirect(reqwest::redirect::Policy::none())
            .build()
        {
            Ok(http) => http,
            Err(e) => return tracing::error!(error = %e, "no HTTP client for back-channel logout"),
        };
        for attempt in 0..3u32 {
            let sent = http
                .post(&uri)
                .form(&[("logout_token", token.as_str())])
                .send()
                .await;
            match sent {
                Ok(response) if response.status().is_success() => {
                    return tracing::info!(client_id = %client.id, "back-channel logout delivered");
                }
                Ok(response) => {
                    tracing::warn!(client_id = %client.id, status = response.status().as_u16(), attempt, "back-channel logout refused")
                }
                Err(e) => {
                    tracing::warn!(client_id = %client.id, error = %e, attempt, "back-channel logout failed")
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(500 * 2u64.pow(attempt))).await;
        }
    });
}

/// Back-Channel Logout 1.0 §2.4: `typ` logout+jwt, the back-channel logout event, `sid`,
/// `sub`, and never a `nonce`.
fn logout_token(
    services: &Services,
    client_id: &str,
    alg: &str,
    subject: &str,
    sid: &str,
    now: DateTime<Utc>,
) -> Result<String, OAuthError> {
    let claims = serde_json::json!({
        "iss": services.settings.issuer_str(),
        "aud": client_id,
        "iat": now.timestamp(),
        "exp": (now + Duration::minutes(2)).timestamp(),
        "jti": random::token::<16>().map_err(OAuthError::internal)?,
        "sub": subject,
        "sid": sid,
        "events": { "http://schemas.openid.net/event/backchannel-logout": {} },
    });
    let alg = Alg::parse(alg).map_err(OAuthError::internal)?;
    services
        .keys
        .current()
        .sign(alg, "logout+jwt", &claims, now)
        .map_err(OAuthError::internal)
}
