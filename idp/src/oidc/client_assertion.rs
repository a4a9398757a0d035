//! Client authentication with a JWT (RFC 7523 §2.2 and §3, RFC 7521 §4.2, OIDC Core §9):
//! `private_key_jwt` (signed with one of the client's registered keys) and
//! `client_secret_jwt` (an HMAC keyed by the client's secret). The assertion's `iss` and
//! `sub` are the client id, its `aud` names this provider (the issuer, or the URL of one of
//! its endpoints that take client authentication), it has not expired, and its `jti` is
//! used once: a replay within its lifetime is refused on every replica.

use chrono::{DateTime, Utc};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use secrecy::ExposeSecret;

use super::error::OAuthError;
use crate::domain::client::{
    CLIENT_ASSERTION_ALGS, CLIENT_SECRET_JWT_ALGS, Client, Profile, TokenEndpointAuthMethod,
};
use crate::services::Services;

/// RFC 7521 §4.2 `client_assertion_type` for a JWT.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Clock skew allowed on `exp`, `nbf` and `iat`, in seconds.
const LEEWAY_S: i64 = 15;
/// An assertion may not live longer than this: its `jti` is remembered that long.
const MAX_LIFETIME_S: i64 = 3600;

/// The endpoints of this provider that take client authentication (an assertion's `aud`
/// may name any of them, or the issuer).
pub const AUTHENTICATING_ENDPOINTS: [&str; 4] = ["/token", "/par", "/introspect", "/revoke"];

/// What an assertion says before it is verified: enough to find the client and the method.
#[derive(Debug, PartialEq, Eq)]
pub struct Unverified {
    pub client_id: String,
    pub method: TokenEndpointAuthMethod,
}

/// Reads the client id (`sub`) and the method (from `alg`) of an assertion, unverified.
pub fn peek(assertion: &str) -> Result<Unverified, OAuthError> {
    let malformed = || OAuthError::invalid_client("the client_assertion is not a valid JWT");
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| malformed())?;
    let claims: serde_json::Value =
        jsonwebtoken::dangerous::insecure_decode_claims(assertion).map_err(|_| malformed())?;
    let client_id = claims["sub"].as_str().ok_or_else(malformed)?.to_string();
    let method = match header.alg {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => TokenEndpointAuthMethod::ClientSecretJwt,
        _ => TokenEndpointAuthMethod::PrivateKeyJwt,
    };
    Ok(Unverified { client_id, method })
}

#[derive(serde::Deserialize)]
struct Claims {
    exp: i64,
    #[serde(default)]
    iat: Option<i64>,
    #[serde(default)]
    nbf: Option<i64>,
    #[serde(default)]
    jti: Option<String>,
}

/// Verifies `assertion` as `client`'s, by the client's registered method. The error is the
/// reason, for the security event; the client is only ever told `invalid_client`.
pub async fn verify(services: &Services, client: &Client, assertion: &str) -> Result<(), &'static str> {
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| "malformed assertion")?;
    let keys = keys_for(services, client, &header).await?;
    let issuer = services.settings.issuer_str();
    let mut audiences = vec![issuer.to_string()];
    audiences.extend(
        AUTHENTICATING_ENDPOINTS
            .iter()
            .map(|path| format!("{issuer}{path}")),
    );
    let mut validation = Validation::new(header.alg);
    // Times are checked below against the provider's clock, with its leeway.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.set_required_spec_claims(&["iss", "sub", "aud"]);
    validation.set_issuer(&[&client.id]);
    validation.sub = Some(client.id.clone());
    validation.set_audience(&audiences);
    let mut last_error = "no key of the client verifies the signature";
    for key in &keys {
        match jsonwebtoken::decode::<Claims>(assertion, key, &validation) {
            Ok(data) => return accept(services, client, data.claims).await,
            Err(e) => last_error = reason(e.kind()),
        }
    }
    Err(last_error)
}

/// The keys that may have signed an assertion with this header.
async fn keys_for(
    services: &Services,
    client: &Client,
    header: &Header,
) -> Result<Vec<DecodingKey>, &'static str> {
    let alg = header.alg;
    match client.token_endpoint_auth_method {
        TokenEndpointAuthMethod::ClientSecretJwt => {
            if !CLIENT_SECRET_JWT_ALGS.contains(&alg_name(alg)) {
                return Err("algorithm not allowed for client_secret_jwt");
            }
            let sealed = client
                .secret_sealed
                .as_deref()
                .ok_or("no secret kept for client_secret_jwt: rotate the client's secret")?;
            let secret = services
                .client_secret_key
                .decrypt(&client.id, sealed)
                .map_err(|_| "the client's sealed secret does not open")?;
            Ok(vec![DecodingKey::from_secret(secret.expose_secret())])
        }
        TokenEndpointAuthMethod::PrivateKeyJwt => {
            let keys = public_keys(services, client, header).await.map_err(|e| match e {
                NoKey::AlgNotAllowed => "algorithm not allowed for private_key_jwt",
                NoKey::AlgNotAllowedByProfile => "algorithm not allowed by the client's profile",
                NoKey::Unavailable(cause) => {
                    tracing::warn!(client_id = %client.id, error = %cause, "client keys unavailable");
                    "the client's keys are unavailable"
                }
            })?;
            if keys.is_empty() {
                return Err("no registered key matches the assertion's kid and alg");
            }
            Ok(keys)
        }
        _ => Err("the client does not authenticate with a JWT"),
    }
}

/// Why none of a client's public keys can be tried.
pub enum NoKey {
    AlgNotAllowed,
    AlgNotAllowedByProfile,
    Unavailable(String),
}

/// The client's registered public keys that may verify a JWS with `header` (a
/// `private_key_jwt` assertion, a request object): an allowed asymmetric algorithm (by the
/// client's profile too), and of the keys, those the `kid` names (all without one) that are
/// for signatures with that algorithm.
pub async fn public_keys(
    services: &Services,
    client: &Client,
    header: &Header,
) -> Result<Vec<DecodingKey>, NoKey> {
    let alg = header.alg;
    if !CLIENT_ASSERTION_ALGS.contains(&alg_name(alg)) {
        return Err(NoKey::AlgNotAllowed);
    }
    if !Profile::allows_alg(client.profile, alg_name(alg)) {
        return Err(NoKey::AlgNotAllowedByProfile);
    }
    let set = services
        .client_keys
        .keys(client, header.kid.as_deref())
        .await
        .map_err(|e| NoKey::Unavailable(e.to_string()))?;
    Ok(set
        .keys
        .iter()
        .filter(|jwk| header.kid.is_none() || jwk.common.key_id == header.kid)
        .filter_map(|jwk| usable_key(jwk, alg))
        .collect())
}

/// The JWK as a verification key for `alg`, if it is one: same family, and the key's own
/// `alg`, when it names one, is `alg`; a key meant for encryption only is not.
pub fn usable_key(jwk: &Jwk, alg: Algorithm) -> Option<DecodingKey> {
    if jwk
        .common
        .public_key_use
        .as_ref()
        .is_some_and(|u| *u != jsonwebtoken::jwk::PublicKeyUse::Signature)
    {
        return None;
    }
    if let Some(key_alg) = jwk.common.key_algorithm
        && key_alg.to_string() != alg_name(alg)
    {
        return None;
    }
    let key = DecodingKey::from_jwk(jwk).ok()?;
    (key.family() == alg.family()).then_some(key)
}

pub fn alg_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::HS256 => "HS256",
        Algorithm::HS384 => "HS384",
        Algorithm::HS512 => "HS512",
        Algorithm::ES256 => "ES256",
        Algorithm::ES384 => "ES384",
        Algorithm::RS256 => "RS256",
        Algorithm::RS384 => "RS384",
        Algorithm::RS512 => "RS512",
        Algorithm::PS256 => "PS256",
        Algorithm::PS384 => "PS384",
        Algorithm::PS512 => "PS512",
        Algorithm::EdDSA => "EdDSA",
        _ => "unknown",
    }
}

/// RFC 7523 §3 items 4–7: the time claims, then the one-time `jti`.
async fn accept(services: &Services, client: &Client, claims: Claims) -> Result<(), &'static str> {
    let now = services.clock.now();
    let t = now.timestamp();
    if claims.exp + LEEWAY_S <= t {
        return Err("assertion expired");
    }
    if claims.exp - t > MAX_LIFETIME_S {
        return Err("assertion lives longer than an hour");
    }
    if claims.nbf.is_some_and(|nbf| nbf > t + LEEWAY_S) || claims.iat.is_some_and(|iat| iat > t + LEEWAY_S) {
        return Err("assertion not yet valid");
    }
    let jti = claims
        .jti
        .filter(|j| !j.is_empty() && j.len() <= 256)
        .ok_or("assertion has no jti")?;
    let until = DateTime::<Utc>::from_timestamp(claims.exp + LEEWAY_S, 0).unwrap_or(now);
    let first = services
        .replay
        .first_use(&format!("ca:{}:{jti}", client.id), until, now)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "replay cache unavailable: refusing client assertions");
            "replay cache unavailable"
        })?;
    if first {
        Ok(())
    } else {
        Err("assertion jti replayed")
    }
}

fn reason(kind: &jsonwebtoken::errors::ErrorKind) -> &'static str {
    use jsonwebtoken::errors::ErrorKind;
    match kind {
        ErrorKind::InvalidSignature => "bad signature",
        ErrorKind::InvalidAudience => "aud does not name this provider",
        ErrorKind::InvalidIssuer => "iss is not the client id",
        ErrorKind::InvalidSubject => "sub is not the client id",
        ErrorKind::MissingRequiredClaim(_) => "assertion lacks a required claim",
        ErrorKind::InvalidAlgorithm => "algorithm does not fit the key",
        _ => "malformed assertion",
    }
}
