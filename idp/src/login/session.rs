//! Server-side login sessions behind a random cookie. Single sign-on across clients: any
//! client's authorization request finds the same session.

use actix_web::HttpRequest;
use chrono::{DateTime, Utc};

use super::cookies;
use crate::domain::session::Session;
use crate::domain::user::{User, UserStatus};
use crate::http::meta::RequestMeta;
use crate::security::random;
use crate::services::Services;
use crate::store::StoreError;

/// The valid session of this browser and its (active) user, if any. A user who must
/// replace a temporary password has no session: they must log in with it first.
pub async fn current(
    services: &Services,
    req: &HttpRequest,
    now: DateTime<Utc>,
) -> Result<Option<(Session, User)>, StoreError> {
    let Some(cookie) = req.cookie(&cookies::name(&services.settings, cookies::SESSION)) else {
        return Ok(None);
    };
    let hash = services.tokens.hash(cookie.value());
    let Some(session) = services.store.find_session(&hash, now).await? else {
        return Ok(None);
    };
    let Ok(user_id) = uuid::Uuid::parse_str(&session.user_id) else {
        return Ok(None);
    };
    match services.store.find_user(user_id).await? {
        Some(user) if user.status == UserStatus::Active && !user.must_change_password => {
            Ok(Some((session, user)))
        }
        _ => Ok(None),
    }
}

/// Starts a session for `user`, who authenticated with `amr` (through `upstream`, for a
/// federated sign-in); returns it and the cookie value.
pub async fn start(
    services: &Services,
    user: &User,
    amr: Vec<String>,
    upstream: Option<crate::domain::session::UpstreamSession>,
    meta: &RequestMeta,
    now: DateTime<Utc>,
) -> Result<(Session, String), StoreError> {
    let random_error = |e: random::RandomError| StoreError::Other(e.to_string());
    let cookie_value = random::token::<32>().map_err(random_error)?;
    let session = Session {
        id_hash: services.tokens.hash(&cookie_value),
        sid: random::token::<16>().map_err(random_error)?,
        user_id: user.id.to_string(),
        auth_time: now,
        amr,
        ip: meta.ip.clone(),
        user_agent: meta.user_agent.clone(),
        created_at: now,
        last_seen_at: now,
        expires_at: crate::domain::clock::after(
            now,
            crate::domain::clock::secs(services.settings.session_ttl_s),
        ),
        upstream,
    };
    services.store.create_session(&session).await?;
    Ok((session, cookie_value))
}
