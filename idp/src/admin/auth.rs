//! Who may call the admin API: a bearer access token of this provider (RFC 6750 §2.1),
//! issued to the admin portal or carrying the `admin` scope, whose user is, right now,
//! an active administrator. The role is read from the store on every call, so revoking
//! it takes effect at once rather than when a token expires.

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use futures_util::future::LocalBoxFuture;
use uuid::Uuid;

use super::problem::ApiError;
use crate::domain::mfa;
use crate::domain::user::{User, UserStatus};
use crate::http::meta::RequestMeta;
use crate::http::request_id::record_client_id;
use crate::manage::Actor;
use crate::oidc::access_check::{self, AccessCheck};
use crate::security::ratelimit::{Decision, Limit};
use crate::startup::AppState;

/// The scope that lets a client other than the portal call the admin API.
pub const ADMIN_SCOPE: &str = "admin";

/// An authenticated administrator.
pub struct Admin {
    pub user: User,
    pub meta: RequestMeta,
}

impl Admin {
    pub fn actor(&self) -> Actor {
        Actor::Admin {
            user_id: self.user.id.to_string(),
            meta: self.meta.clone(),
        }
    }
}

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = bearer(req);
        let meta = RequestMeta::of(req);
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::Internal("no application state".into()))?;
            let token = token.ok_or(ApiError::NoToken)?;
            let user = authenticate(&state, &token).await?;
            limit(&state, &user).await?;
            Ok(Admin { user, meta })
        })
    }
}

fn bearer(req: &HttpRequest) -> Option<String> {
    let header = req.headers().get("authorization")?.to_str().ok()?;
    let (scheme, token) = header.split_once(' ')?;
    // RFC 7235 §2.1: the scheme is case-insensitive.
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty()).then(|| token.trim().to_string())
}

async fn authenticate(state: &AppState, token: &str) -> Result<User, ApiError> {
    let services = &state.services;
    let claims = match access_check::check(services, token).await {
        AccessCheck::Active(claims) => claims,
        AccessCheck::Inactive => return Err(ApiError::InvalidToken),
        AccessCheck::Unknown(cause) => return Err(ApiError::Unavailable(cause)),
    };
    let claim = |name: &str| claims.get(name).and_then(|v| v.as_str()).unwrap_or_default();
    record_client_id(claim("client_id"));
    let for_admin_api = claim("client_id") == api_types::PORTAL_CLIENT_ID
        || claim("scope").split(' ').any(|s| s == ADMIN_SCOPE);
    if !for_admin_api {
        return Err(ApiError::Forbidden(
            "the access token was not issued for the admin API (the portal, or the admin scope)",
        ));
    }
    let user = match Uuid::parse_str(claim("sub")) {
        Ok(id) => services.store.find_user(id).await?,
        Err(_) => None,
    };
    let Some(user) = user else {
        // A client_credentials token, or a deleted user's.
        return Err(ApiError::Forbidden(
            "the access token does not belong to an administrator",
        ));
    };
    if user.status != UserStatus::Active || !user.is_admin() {
        return Err(ApiError::Forbidden("the administrator role is required"));
    }
    // The token's `amr` (RFC 9068 §2.2.1) tells how the administrator logged in.
    let with_second_factor = claims
        .get("amr")
        .and_then(|v| v.as_array())
        .is_some_and(|amr| amr.iter().any(|m| m == mfa::amr::MFA));
    if services.settings.mfa_required_for_admins && !with_second_factor {
        return Err(ApiError::Forbidden(
            "administrators must sign in with a second factor: sign in again to enrol or use one",
        ));
    }
    Ok(user)
}

async fn limit(state: &AppState, user: &User) -> Result<(), ApiError> {
    let per_minute = state.services.settings.rate_limit_admin_per_minute;
    let Some(limit) = Limit::per_minute(per_minute, (per_minute / 10).max(20)) else {
        return Ok(());
    };
    match state
        .services
        .rate_limiter
        .check(&format!("admin:{}", user.id), limit)
        .await
    {
        Decision::Allowed => Ok(()),
        Decision::Limited { retry_after_s } => {
            metrics::counter!("idp_rate_limited_total", "limiter" => "admin").increment(1);
            Err(ApiError::RateLimited { retry_after_s })
        }
    }
}
