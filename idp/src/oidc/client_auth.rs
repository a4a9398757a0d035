//! Client authentication at the token endpoint (RFC 6749 §2.3, OIDC Core §9):
//! `client_secret_basic`, `client_secret_post`, `client_secret_jwt` and `private_key_jwt`
//! (RFC 7523, in `client_assertion`), and `none` for public clients. A client may use only
//! its registered method, and only one method per request.

use actix_web::http::header::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::client_assertion::{self, JWT_BEARER};
use super::error::OAuthError;
use super::params::Params;
use super::throttle::{self, Endpoint};
use crate::audit::{EventType, Outcome, SecurityEvent};
use crate::domain::client::{Client, TokenEndpointAuthMethod};
use crate::http::meta::RequestMeta;
use crate::http::request_id::record_client_id;
use crate::manage::record;
use crate::services::Services;

/// The credentials a request presents.
#[derive(Debug, PartialEq, Eq)]
pub struct Presented {
    pub client_id: String,
    pub secret: Option<String>,
    /// A client assertion (RFC 7521 §4.2), for the JWT methods.
    pub assertion: Option<String>,
    pub method: TokenEndpointAuthMethod,
}

const BASIC_CHALLENGE: &str = "Basic realm=\"idp\", charset=\"UTF-8\"";

/// Reads the client's credentials from the `Authorization` header or the body.
pub fn presented(headers: &HeaderMap, params: &Params) -> Result<Presented, OAuthError> {
    let basic = headers
        .get("authorization")
        .map(|v| parse_basic(v.as_bytes()))
        .transpose()?;
    let body_secret = params.get("client_secret");
    if let Some(assertion) = params.get("client_assertion") {
        if basic.is_some() || body_secret.is_some() {
            return Err(OAuthError::invalid_request(
                "use only one client authentication method",
            ));
        }
        return presented_assertion(assertion, params);
    }
    if params.contains("client_assertion_type") {
        return Err(OAuthError::invalid_request(
            "client_assertion_type without client_assertion",
        ));
    }
    match basic {
        Some((id, secret)) => {
            if body_secret.is_some() {
                return Err(OAuthError::invalid_request(
                    "use only one client authentication method",
                ));
            }
            if params.get("client_id").is_some_and(|body_id| body_id != id) {
                return Err(OAuthError::invalid_request(
                    "client_id does not match the Authorization header",
                ));
            }
            Ok(Presented {
                client_id: id,
                secret: Some(secret),
                assertion: None,
                method: TokenEndpointAuthMethod::ClientSecretBasic,
            })
        }
        None => {
            let client_id = params
                .get("client_id")
                .ok_or_else(|| OAuthError::invalid_client("client authentication is required"))?
                .to_string();
            let method = if body_secret.is_some() {
                TokenEndpointAuthMethod::ClientSecretPost
            } else {
                TokenEndpointAuthMethod::None
            };
            Ok(Presented {
                client_id,
                secret: body_secret.map(str::to_string),
                assertion: None,
                method,
            })
        }
    }
}

/// RFC 7521 §4.2: `client_assertion_type` names a JWT; `client_id`, when also given, must be
/// the assertion's subject (RFC 7523 §3 item 2).
fn presented_assertion(assertion: &str, params: &Params) -> Result<Presented, OAuthError> {
    if params.get("client_assertion_type") != Some(JWT_BEARER) {
        return Err(OAuthError::invalid_request(format!(
            "client_assertion_type must be {JWT_BEARER}"
        )));
    }
    let unverified = client_assertion::peek(assertion)?;
    if params
        .get("client_id")
        .is_some_and(|id| id != unverified.client_id)
    {
        return Err(OAuthError::invalid_request(
            "client_id does not match the client assertion's subject",
        ));
    }
    Ok(Presented {
        client_id: unverified.client_id,
        secret: None,
        assertion: Some(assertion.to_string()),
        method: unverified.method,
    })
}

/// RFC 7617 Basic credentials; id and secret are each form-urlencoded (RFC 6749 §2.3.1).
fn parse_basic(header: &[u8]) -> Result<(String, String), OAuthError> {
    let malformed = || {
        OAuthError::invalid_client("malformed Authorization header").with_www_authenticate(BASIC_CHALLENGE)
    };
    let text = std::str::from_utf8(header).map_err(|_| malformed())?;
    let (scheme, encoded) = text.trim().split_once(' ').ok_or_else(malformed)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(malformed());
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| malformed())?;
    let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
    let id = form_decode(id).ok_or_else(malformed)?;
    let secret = form_decode(secret).ok_or_else(malformed)?;
    if id.is_empty() {
        return Err(malformed());
    }
    Ok((id, secret))
}

fn form_decode(part: &str) -> Option<String> {
    let params = Params::parse(format!("v={part}").as_bytes()).ok()?;
    Some(params.get("v").unwrap_or_default().to_string())
}

/// Counts the request against its client's (and, at the token endpoint, its address's)
/// rate limits, then authenticates the client; every authentication failure is
/// `invalid_client` and a security event. The client is read once, for both.
pub async fn authenticate_limited(
    services: &Services,
    headers: &HeaderMap,
    params: &Params,
    meta: &RequestMeta,
    endpoint: Endpoint,
) -> Result<Client, OAuthError> {
    let presented = presented(headers, params)?;
    let registered = services
        .clients
        .get(services.store.as_ref(), &presented.client_id)
        .await?;
    throttle::enforce(
        services,
        endpoint,
        &presented.client_id,
        registered.as_deref(),
        meta.ip.as_deref().unwrap_or_default(),
    )
    .await?;
    authenticate(services, &presented, registered, meta).await
}

async fn authenticate(
    services: &Services,
    presented: &Presented,
    client: Option<std::sync::Arc<Client>>,
    meta: &RequestMeta,
) -> Result<Client, OAuthError> {
    let verdict = match &client {
        None => {
            // Spend the same HMAC as for a known client: no timing difference.
            let _ = services
                .secrets
                .verify(presented.secret.as_deref().unwrap_or_default(), "");
            Err("unknown client")
        }
        Some(client) if client.token_endpoint_auth_method != presented.method => {
            Err("authentication method not registered")
        }
        Some(client) => match (&presented.assertion, &presented.secret, &client.secret_hash) {
            (Some(assertion), _, _) => client_assertion::verify(services, client, assertion).await,
            (None, None, None) => Ok(()),
            (None, Some(secret), Some(hash)) if services.secrets.verify(secret, hash) => Ok(()),
            _ => Err("bad secret"),
        },
    };
    match (verdict, client) {
        (Ok(()), Some(client)) => {
            record_client_id(&client.id);
            Ok(Client::clone(&client))
        }
        (verdict, _) => {
            let reason = verdict.err().unwrap_or("unknown client");
            let mut event = SecurityEvent::new(
                EventType::ClientAuthFailed,
                Outcome::Failure,
                services.clock.now(),
            );
            event.client_id = Some(presented.client_id.chars().take(128).collect());
            event.details = serde_json::json!({ "reason": reason, "method": presented.method.as_str() });
            record(services, meta.stamp(event)).await;
            let error = OAuthError::invalid_client("client authentication failed");
            Err(
                if presented.method == TokenEndpointAuthMethod::ClientSecretBasic {
                    error.with_www_authenticate(BASIC_CHALLENGE)
                } else {
                    error
                },
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(HeaderName::from_static("authorization"), v);
        }
        h
    }

    #[test]
    fn basic_credentials_are_form_urldecoded() {
        // id "a:b" and secret "p w%" per RFC 6749 §2.3.1: "a%3Ab:p+w%25".
        let value = format!("Basic {}", STANDARD.encode("a%3Ab:p+w%25"));
        let p = presented(&headers(&value), &Params::default());
        assert_eq!(
            p,
            Ok(Presented {
                client_id: "a:b".into(),
                secret: Some("p w%".into()),
                assertion: None,
                method: TokenEndpointAuthMethod::ClientSecretBasic
            })
        );
    }

    #[test]
    fn garbage_authorization_headers_are_invalid_client() {
        for value in [
            "Basic !!!",
            "Bearer x",
            "Basic",
            &format!("Basic {}", STANDARD.encode("nocolon")),
        ] {
            let e = presented(&headers(value), &Params::default());
            assert!(
                matches!(e, Err(ref e) if e.code == "invalid_client"),
                "{value}: {e:?}"
            );
        }
    }

    #[test]
    fn two_methods_at_once_are_refused() {
        let value = format!("Basic {}", STANDARD.encode("id:secret"));
        let params = Params::parse(b"client_secret=other").unwrap_or_default();
        assert!(matches!(presented(&headers(&value), &params), Err(e) if e.code == "invalid_request"));
    }
}
