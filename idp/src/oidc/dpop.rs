//! DPoP (RFC 9449): a client proves, with each request, that it holds the private key its
//! tokens are bound to. The proof is a JWT in the `DPoP` header, signed by that key, whose
//! public half it carries; it names the request's method and URL (`htm`, `htu`), its time
//! (`iat`), a one-time `jti`, a nonce this provider handed out, and, with an access token,
//! the token's hash (`ath`). An access token issued with a proof is bound to the key's
//! thumbprint (`cnf.jkt`) and is useless without a fresh proof by the same key.

use actix_web::http::header::HeaderMap;
use aws_lc_rs::{digest, hmac};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use jsonwebtoken::{Validation, decode_header};

use super::error::OAuthError;
use crate::services::Services;

/// JWS algorithms accepted for proofs (`dpop_signing_alg_values_supported`).
pub const ALGS: [&str; 4] = ["ES256", "EdDSA", "PS256", "RS256"];
/// How far a proof's `iat` may be from now (RFC 9449 §11.1: a short window).
const IAT_WINDOW_S: i64 = 60;
/// Nonces change every minute; one is accepted in its minute and the two after.
const NONCE_PERIOD_S: i64 = 60;
const NONCE_PERIODS_ACCEPTED: i64 = 3;

/// A verified proof: the thumbprint (RFC 7638) of the key that signed it, and its algorithm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    pub jkt: String,
    pub alg: &'static str,
}

/// Why a proof is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum ProofError {
    /// The proof is wrong (`invalid_dpop_proof`).
    Invalid(&'static str),
    /// The proof lacks this provider's current nonce (`use_dpop_nonce`, §8).
    UseNonce,
}

#[derive(serde::Deserialize)]
struct Claims {
    jti: String,
    htm: String,
    htu: String,
    iat: i64,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    ath: Option<String>,
}

/// The nonce for now (RFC 9449 §8): an HMAC of the current minute, so every replica knows it
/// without sharing state.
pub fn current_nonce(services: &Services) -> String {
    nonce_for(
        services,
        services.clock.now().timestamp().div_euclid(NONCE_PERIOD_S),
    )
}

fn nonce_for(services: &Services, period: i64) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, services.dpop_nonce_key.expose());
    URL_SAFE_NO_PAD.encode(&hmac::sign(&key, &period.to_be_bytes()).as_ref()[..16])
}

fn nonce_is_current(services: &Services, nonce: &str, now: DateTime<Utc>) -> bool {
    let period = now.timestamp().div_euclid(NONCE_PERIOD_S);
    (0..NONCE_PERIODS_ACCEPTED).any(|back| {
        let expected = nonce_for(services, period - back);
        subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), nonce.as_bytes()).into()
    })
}

/// `ath` (§4.2): the base64url SHA-256 of the access token.
pub fn token_hash(access_token: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, access_token.as_bytes()))
}

/// Verifies the request's `DPoP` header, if it has one, for `method` at `url` (this
/// provider's public URL of the endpoint), and with `access_token` when one is presented
/// (§4.3, §7.1). `Ok(None)`: no proof was sent.
pub async fn verify(
    services: &Services,
    headers: &HeaderMap,
    method: &str,
    url: &str,
    access_token: Option<&str>,
) -> Result<Option<Proof>, ProofError> {
    let mut values = headers.get_all("dpop");
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ProofError::Invalid("more than one DPoP header"));
    }
    let proof = value
        .to_str()
        .map_err(|_| ProofError::Invalid("malformed proof"))?;
    let jwk = checked_header(proof)?;
    let header = decode_header(proof).map_err(|_| ProofError::Invalid("malformed proof"))?;
    let key = super::client_assertion::usable_key(&jwk, header.alg)
        .ok_or(ProofError::Invalid("the proof's key does not fit its algorithm"))?;
    let mut validation = Validation::new(header.alg);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<Claims>(proof, &key, &validation)
        .map_err(|_| ProofError::Invalid("the proof's signature or claims are invalid"))?
        .claims;
    if !claims.htm.eq_ignore_ascii_case(method) {
        return Err(ProofError::Invalid("htm is not this request's method"));
    }
    if strip_query(&claims.htu) != url {
        return Err(ProofError::Invalid("htu is not this request's URL"));
    }
    let now = services.clock.now();
    if (claims.iat - now.timestamp()).abs() > IAT_WINDOW_S {
        return Err(ProofError::Invalid("the proof's iat is too far from now"));
    }
    if claims.jti.is_empty() || claims.jti.len() > 256 {
        return Err(ProofError::Invalid("the proof's jti is missing or too long"));
    }
    match access_token {
        Some(token) if claims.ath.as_deref() != Some(token_hash(token).as_str()) => {
            return Err(ProofError::Invalid("ath is not the hash of the access token"));
        }
        _ => {}
    }
    if !claims
        .nonce
        .as_deref()
        .is_some_and(|n| nonce_is_current(services, n, now))
    {
        return Err(ProofError::UseNonce);
    }
    let jkt = jwk
        .thumbprint(ThumbprintHash::SHA256)
        .map_err(|_| ProofError::Invalid("the proof's key has no thumbprint"))?;
    let until = DateTime::<Utc>::from_timestamp(claims.iat + IAT_WINDOW_S, 0).unwrap_or(now);
    let first = services
        .replay
        .first_use(&format!("dpop:{jkt}:{}", claims.jti), until, now)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "replay cache unavailable: refusing DPoP proofs");
            ProofError::Invalid("the proof cannot be checked for replay now")
        })?;
    if !first {
        return Err(ProofError::Invalid("the proof's jti was used before"));
    }
    Ok(Some(Proof {
        jkt,
        alg: super::client_assertion::alg_name(header.alg),
    }))
}

/// §4.3 items 4–7: `typ` is `dpop+jwt`, the algorithm is asymmetric and supported, and the
/// header carries a public key (never a private one). Returns that key.
fn checked_header(proof: &str) -> Result<Jwk, ProofError> {
    let encoded = proof.split('.').next().unwrap_or_default();
    let raw = URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|_| ProofError::Invalid("malformed proof"))?;
    let header: serde_json::Value =
        serde_json::from_slice(&raw).map_err(|_| ProofError::Invalid("malformed proof"))?;
    if header["typ"] != "dpop+jwt" {
        return Err(ProofError::Invalid("the proof's typ is not dpop+jwt"));
    }
    let alg = header["alg"].as_str().unwrap_or_default();
    if !ALGS.contains(&alg) {
        return Err(ProofError::Invalid("the proof's algorithm is not supported"));
    }
    let jwk = &header["jwk"];
    if crate::domain::client_security::holds_secret_material(jwk) {
        return Err(ProofError::Invalid("the proof's jwk holds a private key"));
    }
    serde_json::from_value(jwk.clone()).map_err(|_| ProofError::Invalid("the proof has no valid jwk"))
}

/// §4.3 item 9: `htu` is compared without query and fragment.
fn strip_query(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or(url)
}

impl ProofError {
    /// The error for the token endpoint (§5.2: 400 `invalid_dpop_proof` or `use_dpop_nonce`,
    /// with a fresh nonce in `DPoP-Nonce`).
    pub fn at_token_endpoint(self, services: &Services) -> OAuthError {
        match self {
            Self::Invalid(reason) => OAuthError::invalid_dpop_proof(reason),
            Self::UseNonce => {
                OAuthError::use_dpop_nonce("a DPoP nonce is required; use the one in DPoP-Nonce")
                    .with_dpop_nonce(current_nonce(services))
            }
        }
    }

    /// The error for a protected resource (§7.1, §9: 401 with a `DPoP` challenge).
    pub fn at_resource(self, services: &Services) -> OAuthError {
        let algs = ALGS.join(" ");
        match self {
            Self::Invalid(reason) => OAuthError::invalid_dpop_proof(reason)
                .with_status(actix_web::http::StatusCode::UNAUTHORIZED)
                .with_www_authenticate(format!(
                    "DPoP error=\"invalid_dpop_proof\", error_description=\"{reason}\", algs=\"{algs}\""
                )),
            Self::UseNonce => OAuthError::use_dpop_nonce("a DPoP nonce is required; use the one in DPoP-Nonce")
                .with_status(actix_web::http::StatusCode::UNAUTHORIZED)
                .with_www_authenticate(format!(
                    "DPoP error=\"use_dpop_nonce\", error_description=\"Resource server requires nonce in DPoP proof\", algs=\"{algs}\""
                ))
                .with_dpop_nonce(current_nonce(services)),
        }
    }
}
