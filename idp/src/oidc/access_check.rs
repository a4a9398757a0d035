//! Deciding whether an access token is active: our signature, not expired, an access
//! token (`typ` at+jwt, RFC 9068 §4), and neither it nor its grant on the deny-list.
//! Shared by userinfo and introspection; no database round trip.

use std::collections::HashMap;

use serde_json::Value;

use crate::security::denylist::TokenIds;
use crate::services::Services;

pub type Claims = HashMap<String, Value>;

#[derive(Debug)]
pub enum AccessCheck {
    Active(Claims),
    Inactive,
    /// The deny-list could not be asked; the caller fails closed.
    Unknown(String),
}

pub async fn check(services: &Services, token: &str) -> AccessCheck {
    let now = services.clock.now();
    let Ok((typ, claims)) = services
        .keys
        .current()
        .verify(token, services.settings.issuer_str(), false, now)
    else {
        return AccessCheck::Inactive;
    };
    if !typ.as_deref().is_some_and(|t| t.eq_ignore_ascii_case("at+jwt")) {
        return AccessCheck::Inactive;
    }
    let Some(jti) = claims.get("jti").and_then(Value::as_str) else {
        return AccessCheck::Inactive;
    };
    let ids = TokenIds {
        jti,
        gid: claims.get("gid").and_then(Value::as_str),
        client_id: claims.get("client_id").and_then(Value::as_str),
    };
    match services.deny_list.is_denied(ids, now).await {
        Ok(false) => AccessCheck::Active(claims),
        Ok(true) => AccessCheck::Inactive,
        Err(e) => {
            metrics::counter!("idp_denylist_errors_total").increment(1);
            AccessCheck::Unknown(e.to_string())
        }
    }
}
