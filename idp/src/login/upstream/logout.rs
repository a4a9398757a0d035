//! OpenID Connect Back-Channel Logout 1.0 as a relying party: an upstream OpenID provider
//! POSTs a logout token to `/upstream/<slug>/backchannel-logout` (the URI to register there as
//! `backchannel_logout_uri`) when a user signs out there, and the sessions its sign-ins started
//! here end too — with their grants and this provider's own back-channel notices to its
//! clients. Signing out at the upstream is never required to sign out here.

use actix_web::{HttpResponse, web};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};

use crate::domain::upstream::{Protocol, Upstream};
use crate::http::meta::RequestMeta;
use crate::manage::upstreams;
use crate::oidc::client_assertion::usable_key;
use crate::services::Services;
use crate::startup::AppState;

/// Back-Channel Logout 1.0 §2.4: the event a logout token carries.
const LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// How far `iat` may be in the future, and `exp` in the past (clock skew).
const LEEWAY_S: i64 = 60;

/// Who signed out at the upstream: a session there, a user there, or both (§2.4).
#[derive(Debug)]
struct SignedOut {
    subject: Option<String>,
    sid: Option<String>,
}

/// POST /upstream/{slug}/backchannel-logout.
pub async fn backchannel_logout(
    slug: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
    meta: RequestMeta,
) -> HttpResponse {
    let services = &state.services;
    let token = url::form_urlencoded::parse(&body)
        .find(|(name, _)| name == "logout_token")
        .map(|(_, value)| value.into_owned());
    let verified = async {
        let token = token.ok_or("no logout_token")?;
        let upstream = services
            .store
            .find_upstream(&slug)
            .await
            .map_err(|_| "the provider cannot be read")?
            .ok_or("no such provider")?;
        verify(services, &upstream, &token)
            .await
            .map(|out| (upstream, out))
    }
    .await;
    let (upstream, signed_out) = match verified {
        Ok(verified) => verified,
        Err(reason) => {
            tracing::warn!(upstream = %slug, %reason, "upstream logout token refused");
            // §2.8: 400 with an OAuth error; the reason is for the provider's operators.
            return HttpResponse::BadRequest()
                .insert_header(("Cache-Control", "no-store"))
                .json(serde_json::json!({ "error": "invalid_request", "error_description": reason }));
        }
    };
    let ended = end_sessions(&state, &upstream, signed_out, &meta).await;
    match ended {
        Ok(count) => {
            metrics::counter!("idp_upstream_logouts_total", "upstream" => upstream.slug.clone()).increment(1);
            tracing::info!(upstream = %upstream.slug, sessions = count, "upstream back-channel logout");
            HttpResponse::Ok()
                .insert_header(("Cache-Control", "no-store"))
                .finish()
        }
        // §2.8: a logout that could not be done is not a 200 (the provider may retry).
        Err(_) => HttpResponse::ServiceUnavailable()
            .insert_header(("Cache-Control", "no-store"))
            .insert_header(("Retry-After", "5"))
            .finish(),
    }
}

/// Ends the live sessions the upstream's logout names; returns how many.
async fn end_sessions(
    state: &AppState,
    upstream: &Upstream,
    signed_out: SignedOut,
    meta: &RequestMeta,
) -> Result<usize, crate::store::StoreError> {
    let services = &state.services;
    let now = services.clock.now();
    // §2.7: with `sub`, only that user's sessions; an unlinked subject has none here.
    let user_id = match &signed_out.subject {
        Some(subject) => match services.store.find_identity(&upstream.issuer, subject).await? {
            Some(identity) => Some(identity.user_id.to_string()),
            None => return Ok(0),
        },
        None => None,
    };
    let sessions = services
        .store
        .sessions_from_upstream(
            &upstream.issuer,
            signed_out.sid.as_deref(),
            user_id.as_deref(),
            now,
        )
        .await?;
    for session in &sessions {
        let Ok(user_id) = uuid::Uuid::parse_str(&session.user_id) else {
            continue;
        };
        if let Some(user) = services.store.find_user(user_id).await? {
            crate::oidc::logout::end(state, session, &user, meta).await;
        }
    }
    Ok(sessions.len())
}

/// §2.6: the logout token's signature by the upstream's keys, `iss`, `aud`, `iat`, `exp`, the
/// logout event, `sub` or `sid`, no `nonce`, and a `jti` never seen before.
async fn verify(services: &Services, upstream: &Upstream, token: &str) -> Result<SignedOut, String> {
    if upstream.protocol != Protocol::Oidc {
        return Err("a plain OAuth 2.0 provider has no logout tokens".into());
    }
    let header = jsonwebtoken::decode_header(token).map_err(|e| format!("malformed token: {e}"))?;
    // §2.4: explicitly typed `logout+jwt`, or untyped JWT from older providers; never
    // another kind of JWT of that provider (an ID or access token).
    if header
        .typ
        .as_deref()
        .is_some_and(|typ| !typ.eq_ignore_ascii_case("logout+jwt") && !typ.eq_ignore_ascii_case("JWT"))
    {
        return Err(format!("typ {:?} is not logout+jwt", header.typ));
    }
    if matches!(header.alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
        return Err("only signatures by the provider's published keys are accepted".into());
    }
    let (discovered, _) = upstreams::discovery_document(upstream).await?;
    let uri = &discovered.jwks_uri;
    let keys = super::keys::key_set(uri, header.kid.as_deref()).await?;
    let keys: JwkSet = serde_json::from_slice(&keys).map_err(|e| format!("{uri}: {e}"))?;
    let mut validation = Validation::new(header.alg);
    // Times are checked below against this provider's clock.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.set_required_spec_claims(&["iss", "aud"]);
    validation.set_issuer(&[&upstream.issuer]);
    validation.set_audience(&[&upstream.client_id]);
    let claims = keys
        .keys
        .iter()
        .filter(|jwk| header.kid.is_none() || jwk.common.key_id == header.kid)
        .filter_map(|jwk| usable_key(jwk, header.alg))
        .find_map(|key| jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation).ok())
        .ok_or("no key of the provider verifies the token, or its iss or aud is not this client's")?
        .claims;
    let now = services.clock.now();
    let time = |name: &str| {
        claims
            .get(name)
            .and_then(Value::as_i64)
            .ok_or(format!("no {name}"))
    };
    let (iat, exp) = (time("iat")?, time("exp")?);
    if iat > now.timestamp() + LEEWAY_S || exp < now.timestamp() - LEEWAY_S {
        return Err("the token is not valid now (iat, exp)".into());
    }
    if !claims
        .get("events")
        .and_then(|events| events.get(LOGOUT_EVENT))
        .is_some_and(Value::is_object)
    {
        return Err("no back-channel logout event".into());
    }
    if claims.contains_key("nonce") {
        return Err("a logout token has no nonce".into());
    }
    let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_string);
    let signed_out = SignedOut {
        subject: text("sub"),
        sid: text("sid"),
    };
    if signed_out.subject.is_none() && signed_out.sid.is_none() {
        return Err("neither sub nor sid".into());
    }
    let jti = text("jti").ok_or("no jti")?;
    let until = chrono::DateTime::from_timestamp(exp + LEEWAY_S, 0).unwrap_or(now);
    let first = services
        .replay
        .first_use(&format!("upstream-logout:{}:{jti}", upstream.issuer), until, now)
        .await
        .map_err(|e| e.to_string())?;
    if !first {
        return Err("the token was used before (jti)".into());
    }
    Ok(signed_out)
}
