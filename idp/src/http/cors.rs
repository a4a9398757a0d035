//! CORS (Fetch standard §3.2) for the endpoints browsers call cross-origin — token,
//! userinfo, JWKS, discovery and revocation — and only for origins of registered redirect
//! URIs: a single-page app may call them from its own origin, no other site may. No
//! credentials mode: these endpoints take bearer tokens and client credentials, not cookies.

use std::collections::HashSet;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpResponse, web};

use crate::startup::AppState;
use crate::store::{Store, StoreResult};

const CORS_PATHS: [&str; 6] = [
    "/token",
    "/userinfo",
    "/jwks",
    "/revoke",
    "/.well-known/openid-configuration",
    "/.well-known/oauth-authorization-server",
];

/// Origins of every registered redirect URI, re-read at most every `ttl`.
#[derive(Debug)]
pub struct AllowedOrigins {
    ttl: Duration,
    cached: RwLock<Option<(Instant, HashSet<String>)>>,
}

impl AllowedOrigins {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            cached: RwLock::new(None),
        }
    }

    pub async fn allows(&self, store: &dyn Store, origin: &str) -> StoreResult<bool> {
        if let Some((at, origins)) = self.cached.read().unwrap_or_else(|p| p.into_inner()).as_ref()
            && at.elapsed() < self.ttl
        {
            return Ok(origins.contains(origin));
        }
        let origins: HashSet<String> = store
            .list_clients()
            .await?
            .iter()
            .flat_map(|c| c.redirect_uris.iter())
            .filter_map(|uri| url::Url::parse(uri.as_str()).ok())
            .filter(|url| url.origin().is_tuple())
            .map(|url| url.origin().ascii_serialization())
            .collect();
        let allowed = origins.contains(origin);
        *self.cached.write().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), origins));
        Ok(allowed)
    }
}

pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let Some(origin) = origin.filter(|_| CORS_PATHS.contains(&req.path())) else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let allowed = match req.app_data::<web::Data<AppState>>() {
        Some(state) => state
            .services
            .cors_origins
            .allows(state.services.store.as_ref(), &origin)
            .await
            .unwrap_or(false),
        None => false,
    };
    let preflight =
        req.method() == Method::OPTIONS && req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if preflight {
        let mut response = HttpResponse::NoContent();
        response.insert_header((header::VARY, "Origin"));
        if allowed {
            response
                .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, origin))
                .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST"))
                .insert_header((
                    header::ACCESS_CONTROL_ALLOW_HEADERS,
                    "Authorization, Content-Type, DPoP",
                ))
                .insert_header((header::ACCESS_CONTROL_MAX_AGE, "600"));
        }
        return Ok(req.into_response(response.finish()));
    }
    let mut response = next.call(req).await?.map_into_boxed_body();
    let headers = response.headers_mut();
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    if allowed && let Ok(value) = HeaderValue::from_str(&origin) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("WWW-Authenticate, Retry-After, DPoP-Nonce"),
        );
    }
    Ok(response)
}
