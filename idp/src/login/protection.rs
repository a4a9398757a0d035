//! Brute-force protection for the login form, without handing attackers a lockout weapon:
//!
//! - failures are counted per (account, source): after `lockout_threshold` of them the pair
//!   is locked for `lockout_initial_s`, doubling with each further lock up to
//!   `lockout_max_s`; a flood from one address locks *that address* out of the account,
//!   while the real user logs in from theirs;
//! - two failures before the lock, answers slow down (1 s, 2 s);
//! - spraying many accounts from one address is caught by a per-address budget of
//!   *failures* (an office behind one NAT, logging in successfully, is never throttled);
//! - an account-wide budget counts only *failures* (from every source) and, once spent,
//!   slows every attempt on the account by 2 s — it never refuses, so a source with no
//!   failures of its own that brings the right password always gets in (the lockout DoS
//!   Keycloak's per-account lock allows is not possible here);
//! - every attempt also passes a per-address rate limit;
//! - an IPv6 source is its /64 (one subscriber's prefix): rotating addresses inside it
//!   neither escapes a lock nor a budget;
//! - locks and limits apply to any typed username, existing or not, and say nothing about
//!   the account, so they reveal nothing.

use std::net::IpAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::audit::{EventType, Outcome, SecurityEvent};
use crate::http::meta::RequestMeta;
use crate::manage::record;
use crate::security::ratelimit::{Decision, Limit};
use crate::services::Services;
use crate::store::StoreError;

/// What may happen with a login attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Check the password, after waiting `delay`.
    Open { delay: Duration },
    /// Refuse without checking; the user may retry after this many seconds.
    Refused {
        retry_after_s: u64,
        reason: &'static str,
    },
}

fn limit(per_minute: u32, burst: u32) -> Option<Limit> {
    Limit::per_minute(per_minute, burst)
}

/// How long every attempt on an account waits once its account-wide failure budget is spent.
pub const ACCOUNT_SLOWDOWN: Duration = Duration::from_secs(2);

/// The source that locks and budgets count: an IPv4 address as it is, an IPv6 address as its
/// /64 (an IPv4-mapped one as the IPv4 address), anything unparsable as given.
pub fn source_group(ip: &str) -> String {
    match ip.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                format!("{}/64", std::net::Ipv6Addr::from(segments))
            }
        },
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Err(_) => ip.to_string(),
    }
}

/// Decides before any password is checked.
pub async fn before_attempt(
    services: &Services,
    account_key: &str,
    source: &str,
    now: DateTime<Utc>,
) -> Result<Gate, StoreError> {
    let s = &services.settings;
    let source = source_group(source);
    if let Some(attempts) = limit(
        s.rate_limit_login_ip_per_minute,
        s.rate_limit_login_ip_per_minute / 2,
    ) && let Decision::Limited { retry_after_s } = services
        .rate_limiter
        .check(&format!("login-ip:{source}"), attempts)
        .await
    {
        metrics::counter!("idp_rate_limited_total", "limiter" => "login-ip").increment(1);
        return Ok(Gate::Refused {
            retry_after_s,
            reason: "rate_limited",
        });
    }
    if let Some(failures) = limit(s.login_failures_ip_per_minute, s.login_failures_ip_burst)
        && let Decision::Limited { retry_after_s } = services
            .rate_limiter
            .peek(&format!("login-fail-ip:{source}"), failures)
            .await
    {
        metrics::counter!("idp_rate_limited_total", "limiter" => "login-failures-ip").increment(1);
        return Ok(Gate::Refused {
            retry_after_s,
            reason: "source_throttled",
        });
    }
    let state = services
        .store
        .login_failure_state(account_key, &source, now)
        .await?;
    if let Some(until) = state.locked_until.filter(|until| *until > now) {
        let retry_after_s = (until - now).num_seconds().max(1) as u64;
        return Ok(Gate::Refused {
            retry_after_s,
            reason: "locked",
        });
    }
    let threshold = s.lockout_threshold as i64;
    let pair_delay = match threshold - state.failures {
        2 => Duration::from_secs(1),
        1 => Duration::from_secs(2),
        _ => Duration::ZERO,
    };
    let budget = i64::from(s.login_account_failures_before_slowdown);
    let account_delay = if budget > 0 && state.account_failures >= budget {
        metrics::counter!("idp_login_slowed_total").increment(1);
        ACCOUNT_SLOWDOWN
    } else {
        Duration::ZERO
    };
    Ok(Gate::Open {
        delay: pair_delay.max(account_delay),
    })
}

/// Counts a failure; locks the (account, source) pair when the threshold is reached.
pub async fn after_failure(
    services: &Services,
    account_key: &str,
    user_id: Option<String>,
    meta: &RequestMeta,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let s = &services.settings;
    let source = source_group(meta.ip.as_deref().unwrap_or_default());
    if let Some(failures) = limit(s.login_failures_ip_per_minute, s.login_failures_ip_burst) {
        services
            .rate_limiter
            .check(&format!("login-fail-ip:{source}"), failures)
            .await;
    }
    let state = services
        .store
        .record_login_failure(account_key, &source, now)
        .await?;
    if state.failures < s.lockout_threshold as i64 {
        return Ok(());
    }
    let factor = 2u64.saturating_pow(state.lockouts.clamp(0, 20) as u32);
    let seconds = s.lockout_initial_s.saturating_mul(factor).min(s.lockout_max_s);
    let until = crate::domain::clock::after(now, crate::domain::clock::secs(seconds));
    services
        .store
        .lock_login(account_key, &source, until, now)
        .await?;
    metrics::counter!("idp_account_lockouts_total").increment(1);
    let mut event = SecurityEvent::new(EventType::AccountLocked, Outcome::Failure, now);
    event.user_id = user_id;
    event.username = Some(account_key.to_string());
    event.details = serde_json::json!({ "source": source, "locked_until": until, "lock_seconds": seconds, "lockouts": state.lockouts + 1 });
    record(services, meta.stamp(event)).await;
    Ok(())
}

/// A successful login forgets this pair's failures and lock history.
pub async fn after_success(services: &Services, account_key: &str, source: &str) -> Result<(), StoreError> {
    services
        .store
        .clear_login_failures(account_key, &source_group(source))
        .await
}

#[cfg(test)]
mod tests {
    use super::source_group;

    #[test]
    fn ipv6_sources_are_grouped_by_their_64_bit_prefix() {
        assert_eq!(source_group("2001:db8:1:2::1"), "2001:db8:1:2::/64");
        assert_eq!(source_group("2001:db8:1:2:ffff:1:2:3"), "2001:db8:1:2::/64");
        assert_ne!(source_group("2001:db8:1:3::1"), source_group("2001:db8:1:2::1"));
        assert_eq!(source_group("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(source_group("192.0.2.7"), "192.0.2.7");
        assert_eq!(source_group(""), "");
    }
}
