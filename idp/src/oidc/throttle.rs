//! Rate limits of the OAuth endpoints: per client and per source address on the token
//! endpoint, per client on introspection and revocation. Rejections are 429 with
//! `Retry-After`, in the OAuth error shape.

use super::error::OAuthError;
use crate::security::ratelimit::{Decision, Limit};
use crate::services::Services;

/// Counts one request under `key`; `per_minute` 0 disables the limit.
pub async fn enforce(
    services: &Services,
    limiter: &'static str,
    key: &str,
    per_minute: u32,
) -> Result<(), OAuthError> {
    let Some(limit) = Limit::per_minute(per_minute, (per_minute / 30).max(10)) else {
        return Ok(());
    };
    match services
        .rate_limiter
        .check(&format!("{limiter}:{key}"), limit)
        .await
    {
        Decision::Allowed => Ok(()),
        Decision::Limited { retry_after_s } => {
            metrics::counter!("idp_rate_limited_total", "limiter" => limiter).increment(1);
            Err(OAuthError::too_many_requests(retry_after_s))
        }
    }
}
