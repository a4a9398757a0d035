//! Rate limits of the OAuth endpoints: per client and per source address on the token
//! endpoint, per client on introspection and revocation. Each client may carry its own
//! limits (a busy resource server, a batch job); the deployment's settings are the default.
//! Rejections are 429 with `Retry-After`, in the OAuth error shape, and say which limit was
//! hit; each refusal is counted in `idp_rate_limited_total{limiter}`.

use super::error::OAuthError;
use crate::domain::client::Client;
use crate::security::ratelimit::{Decision, Limit};
use crate::services::Services;

/// The endpoint whose limits apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Token,
    /// Introspection and revocation share one budget.
    Introspection,
}

/// Counts one request of the client presented as `client_id` (registered as `client`, if
/// it exists) from `source`, and refuses it when a limit is spent.
pub async fn enforce(
    services: &Services,
    endpoint: Endpoint,
    client_id: &str,
    client: Option<&Client>,
    source: &str,
) -> Result<(), OAuthError> {
    let s = &services.settings;
    let (default, own, limiter) = match endpoint {
        Endpoint::Token => (
            s.rate_limit_token_per_minute,
            client.and_then(|c| c.rate_limit_token_per_minute),
            "token-client",
        ),
        Endpoint::Introspection => (
            s.rate_limit_introspect_per_minute,
            client.and_then(|c| c.rate_limit_introspect_per_minute),
            "introspect-client",
        ),
    };
    let per_minute = own.map_or(default, |own| u32::try_from(own).unwrap_or(u32::MAX));
    // Described only when refused (the id as presented, shortened: it is client input).
    let whose = || {
        let shown: String = client_id.chars().take(64).collect();
        match endpoint {
            Endpoint::Token => format!("token requests of client {shown}"),
            Endpoint::Introspection => format!("introspection and revocation requests of client {shown}"),
        }
    };
    count(services, limiter, client_id, per_minute, whose).await?;
    // A client with a limit of its own is held to it alone: a service granted more is not
    // refused for calling from one address. Everyone else also shares the address's budget
    // (a flood naming many client ids).
    if endpoint == Endpoint::Token && own.is_none() {
        let whose = || "token requests from this address".to_string();
        count(services, "token-ip", source, default, whose).await?;
    }
    Ok(())
}

/// Counts one request under `limiter:key`; `per_minute` 0 disables the limit.
async fn count(
    services: &Services,
    limiter: &'static str,
    key: &str,
    per_minute: u32,
    whose: impl FnOnce() -> String,
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
            let mut error = OAuthError::too_many_requests(retry_after_s);
            error.description = format!(
                "{} are limited to {per_minute} per minute; retry after {retry_after_s} s",
                whose()
            );
            Err(error)
        }
    }
}
