//! Issuing tokens: RFC 9068 JWT access tokens, OIDC ID tokens (Core §2, §3.1.3.6), and
//! opaque random refresh tokens and codes, of which only keyed hashes are stored.

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::error::OAuthError;
use crate::domain::client::Client;
use crate::domain::mfa;
use crate::security::keys::Alg;
use crate::security::random;
use crate::services::Services;

/// RFC 9068 §2.2 claims, plus `gid` (the grant) and `sid` so revocation can reach the token.
#[derive(Debug, Serialize)]
pub struct AccessTokenClaims<'a> {
    pub iss: &'a str,
    pub sub: &'a str,
    pub aud: Audience<'a>,
    pub client_id: &'a str,
    pub scope: &'a str,
    pub jti: String,
    pub iat: i64,
    pub exp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<&'a str>,
    /// RFC 9068 §2.2.1: how the user authenticated, so that a resource server (and the admin
    /// API) can demand a second factor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acr: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amr: Option<&'a [String]>,
    /// RFC 9449 §6.1: the DPoP key the token is bound to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation<'a>>,
}

/// RFC 9068 §3 `aud`: the resource servers the token is for (RFC 8707), or the client
/// itself; one as a string, several as an array (RFC 7519 §4.1.3).
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Audience<'a> {
    One(&'a str),
    Many(&'a [String]),
}

impl<'a> Audience<'a> {
    fn of(resources: &'a [String], client_id: &'a str) -> Self {
        match resources {
            [] => Self::One(client_id),
            [one] => Self::One(one),
            many => Self::Many(many),
        }
    }
}

/// RFC 7800 confirmation claim with the RFC 9449 §6.1 `jkt` member.
#[derive(Debug, Serialize)]
pub struct Confirmation<'a> {
    pub jkt: &'a str,
}

/// What an access token says: who, what for, and (for a user) how they authenticated.
pub struct AccessTokenFacts<'a> {
    pub subject: &'a str,
    pub scope: &'a str,
    pub grant_id: Option<&'a str>,
    pub sid: Option<&'a str>,
    /// The user's `auth_time` and `amr`; `None` for a client acting for itself.
    pub authentication: Option<(DateTime<Utc>, &'a [String])>,
    /// The thumbprint of the DPoP key the token is bound to, if any.
    pub dpop_jkt: Option<&'a str>,
    /// The resource servers it is for (RFC 8707); empty: the client itself.
    pub audience: &'a [String],
}

pub struct IssuedAccessToken {
    pub token: String,
    pub expires_in: i64,
    /// `Bearer`, or `DPoP` for a token bound to a key (RFC 9449 §5.1).
    pub token_type: &'static str,
}

/// The algorithm that signs this client's access tokens.
fn access_token_alg(services: &Services, client: &Client) -> Result<Alg, OAuthError> {
    let name = client
        .access_token_signing_alg
        .as_deref()
        .unwrap_or(&services.settings.access_token_signing_alg);
    Alg::parse(name).map_err(OAuthError::internal)
}

pub fn issue_access_token(
    services: &Services,
    client: &Client,
    facts: &AccessTokenFacts<'_>,
    now: DateTime<Utc>,
) -> Result<IssuedAccessToken, OAuthError> {
    let ttl = client
        .access_token_ttl_s
        .unwrap_or(services.settings.access_token_ttl_s as i64);
    let claims = AccessTokenClaims {
        iss: services.settings.issuer_str(),
        sub: facts.subject,
        aud: Audience::of(facts.audience, &client.id),
        client_id: &client.id,
        scope: facts.scope,
        jti: random::token::<16>().map_err(OAuthError::internal)?,
        iat: now.timestamp(),
        exp: now.timestamp().saturating_add(ttl),
        gid: facts.grant_id,
        sid: facts.sid,
        auth_time: facts.authentication.map(|(at, _)| at.timestamp()),
        acr: facts.authentication.map(|(_, amr)| mfa::acr_of(amr)),
        amr: facts
            .authentication
            .map(|(_, amr)| amr)
            .filter(|amr| !amr.is_empty()),
        cnf: facts.dpop_jkt.map(|jkt| Confirmation { jkt }),
    };
    let alg = access_token_alg(services, client)?;
    // RFC 9068 §2.1: typ "at+jwt" tells access tokens from ID tokens.
    let token = services
        .keys
        .current()
        .sign(alg, "at+jwt", &claims, now)
        .map_err(OAuthError::internal)?;
    Ok(IssuedAccessToken {
        token,
        expires_in: ttl,
        token_type: if facts.dpop_jkt.is_some() {
            "DPoP"
        } else {
            "Bearer"
        },
    })
}

/// What an ID token says about an authentication.
pub struct IdTokenFacts<'a> {
    pub client: &'a Client,
    pub subject: &'a str,
    pub nonce: Option<&'a str>,
    pub auth_time: DateTime<Utc>,
    pub amr: &'a [String],
    pub sid: Option<&'a str>,
    pub access_token: Option<&'a str>,
}

#[derive(Serialize)]
struct IdTokenClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    azp: &'a str,
    exp: i64,
    iat: i64,
    auth_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    /// OIDC Core §2: the class the authentication reached (`mfa::ACR_VALUES_SUPPORTED`).
    acr: &'static str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    amr: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    sid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    at_hash: Option<String>,
}

pub fn issue_id_token(
    services: &Services,
    facts: &IdTokenFacts<'_>,
    now: DateTime<Utc>,
) -> Result<String, OAuthError> {
    let alg = Alg::parse(&facts.client.id_token_signed_response_alg).map_err(OAuthError::internal)?;
    let claims = IdTokenClaims {
        iss: services.settings.issuer_str(),
        sub: facts.subject,
        aud: &facts.client.id,
        azp: &facts.client.id,
        exp: now
            .timestamp()
            .saturating_add(crate::domain::clock::secs(services.settings.id_token_ttl_s)),
        iat: now.timestamp(),
        auth_time: facts.auth_time.timestamp(),
        nonce: facts.nonce,
        acr: mfa::acr_of(facts.amr),
        amr: facts.amr,
        sid: facts.sid,
        at_hash: facts.access_token.map(|t| token_hash_claim(alg, t)),
    };
    services
        .keys
        .current()
        .sign(alg, "JWT", &claims, now)
        .map_err(OAuthError::internal)
}

/// OIDC Core §3.1.3.6 `at_hash`: the left half of the hash of the token's ASCII, with the
/// hash of the JWS algorithm (SHA-512 for Ed25519, as OpenID's EdDSA profiles use).
pub fn token_hash_claim(alg: Alg, token: &str) -> String {
    let algorithm = match alg {
        Alg::RS256 | Alg::PS256 | Alg::ES256 => &digest::SHA256,
        Alg::EdDSA => &digest::SHA512,
    };
    let hash = digest::digest(algorithm, token.as_bytes());
    let bytes = hash.as_ref();
    URL_SAFE_NO_PAD.encode(&bytes[..bytes.len() / 2])
}

/// A new opaque token (256 bits) and the hash under which it is stored.
pub fn opaque_token(services: &Services) -> Result<(String, String), OAuthError> {
    let token = random::token::<32>().map_err(OAuthError::internal)?;
    let hash = services.tokens.hash(&token);
    Ok((token, hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_matches_the_oidc_example() {
        // OIDC Core A.3: at_hash of "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y" with RS256.
        assert_eq!(
            token_hash_claim(Alg::RS256, "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
    }
}
