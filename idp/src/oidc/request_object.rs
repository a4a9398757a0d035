//! Signed authorization requests (JAR, RFC 9101; OIDC Core §6.1): the `request` parameter
//! is a JWT signed with one of the client's registered keys, whose claims are the request's
//! parameters. It is accepted by value, at `/authorize` and inside a pushed request; a
//! `request_uri` pointing elsewhere is not fetched. Per RFC 9101 §6.3 only the parameters
//! inside the signed object count: those beside it (but `client_id`, which must match) are
//! ignored, so nothing unsigned can change a signed request.

use jsonwebtoken::{Validation, decode_header};
use serde_json::Value;

use super::client_assertion::{NoKey, public_keys};
use super::error::OAuthError;
use super::params::Params;
use crate::domain::client::Client;
use crate::services::Services;

/// Clock skew allowed on `exp` and `nbf`, in seconds.
const LEEWAY_S: i64 = 15;
/// The longest lifetime of a request object (FAPI 2.0 Message Signing: `exp` at most 60
/// minutes after `nbf`).
const MAX_LIFETIME_S: i64 = 3600;
/// Claims that describe the object itself, not the request.
const ENVELOPE: [&str; 6] = ["iss", "aud", "exp", "nbf", "iat", "jti"];

fn invalid(description: &str) -> OAuthError {
    OAuthError::invalid_request_object(description.to_string())
}

/// The request's parameters: those of its request object if it has one, verified; otherwise
/// the parameters as given.
pub async fn resolve(services: &Services, client: &Client, params: &Params) -> Result<Params, OAuthError> {
    let Some(object) = params.get("request") else {
        return Ok(params.clone());
    };
    if params.contains("request_uri") {
        return Err(OAuthError::invalid_request(
            "request and request_uri cannot both be given",
        ));
    }
    let claims = verify(services, client, object).await?;
    let mut resolved = Params::default();
    for (name, value) in &claims {
        if ENVELOPE.contains(&name.as_str()) {
            continue;
        }
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Null => continue,
            // RFC 8707 §2 with RFC 9101: several resources are a JSON array of strings.
            Value::Array(items) if name == "resource" => {
                for item in items {
                    let text = item.as_str().map_or_else(|| item.to_string(), str::to_string);
                    resolved.insert(name, &text);
                }
                continue;
            }
            // `max_age` as a number, `claims` as an object: their text, as in a query string.
            other => other.to_string(),
        };
        resolved.insert(name, &text);
    }
    // RFC 9101 §5: the client_id beside the object is the one inside it.
    if resolved.get("client_id").is_some_and(|id| id != client.id) {
        return Err(invalid("the request object's client_id is not the client's"));
    }
    if resolved.contains("request") || resolved.contains("request_uri") {
        return Err(invalid("a request object cannot hold another request"));
    }
    resolved.insert("client_id", &client.id);
    Ok(resolved)
}

/// RFC 9101 §6.1–6.2: the signature by one of the client's keys (never `none`, never a
/// symmetric key), `iss` the client, `aud` this provider, `exp` in the future and close.
async fn verify(
    services: &Services,
    client: &Client,
    object: &str,
) -> Result<serde_json::Map<String, Value>, OAuthError> {
    let header = decode_header(object).map_err(|_| invalid("the request object is not a signed JWT"))?;
    let keys = public_keys(services, client, &header)
        .await
        .map_err(|e| match e {
            NoKey::AlgNotAllowed => invalid("the request object's algorithm is not supported"),
            NoKey::AlgNotAllowedByProfile => {
                invalid("the request object's algorithm is not allowed by the client's profile")
            }
            NoKey::Unavailable(cause) => invalid(&format!("the client's keys are unavailable: {cause}")),
        })?;
    let issuer = services.settings.issuer_str();
    let mut validation = Validation::new(header.alg);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.set_required_spec_claims(&["iss", "aud"]);
    validation.set_issuer(&[&client.id]);
    validation.set_audience(&[issuer]);
    let claims = keys
        .iter()
        .find_map(|key| jsonwebtoken::decode::<serde_json::Map<String, Value>>(object, key, &validation).ok())
        .ok_or_else(|| {
            invalid("the request object is not signed by the client's keys, or its iss or aud is wrong")
        })?
        .claims;
    let now = services.clock.now().timestamp();
    let exp = claims
        .get("exp")
        .and_then(Value::as_i64)
        .ok_or_else(|| invalid("the request object has no exp"))?;
    if exp + LEEWAY_S <= now {
        return Err(invalid("the request object has expired"));
    }
    let nbf = claims.get("nbf").and_then(Value::as_i64);
    if nbf.is_some_and(|nbf| nbf > now + LEEWAY_S) {
        return Err(invalid("the request object is not valid yet"));
    }
    if exp - nbf.unwrap_or(now) > MAX_LIFETIME_S {
        return Err(invalid("the request object lives longer than an hour"));
    }
    Ok(claims)
}
