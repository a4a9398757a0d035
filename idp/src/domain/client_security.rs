//! What makes a client a high-security one: the public keys it signs with (registered inline
//! or at a `jwks_uri`), the algorithms accepted from it, and the security profile it may be
//! held to (FAPI 2.0).

use serde::{Deserialize, Serialize};
use url::Url;

use super::Invalid;
use super::client::{ClientType, NewClient, TokenEndpointAuthMethod, is_loopback};

/// A security profile a client is held to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// FAPI 2.0 Security Profile (final, 2025): pushed requests, PKCE S256, `private_key_jwt`,
    /// DPoP-bound access tokens, ES256/PS256/EdDSA only, codes valid at most 60 s.
    Fapi2,
}

impl Profile {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fapi2 => "fapi2",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        match raw {
            "fapi2" => Ok(Self::Fapi2),
            _ => Err(Invalid::new(format!("unknown profile {raw:?}; expected fapi2"))),
        }
    }

    /// FAPI 2.0 §5.4.1: the JWS algorithms allowed (PS256, ES256, EdDSA; not RS256).
    pub fn allows_alg(profile: Option<Self>, alg: &str) -> bool {
        match profile {
            None => true,
            Some(Self::Fapi2) => FAPI2_ALGS.contains(&alg),
        }
    }
}

/// FAPI 2.0 Security Profile §5.4.1.
pub const FAPI2_ALGS: [&str; 3] = ["PS256", "ES256", "EdDSA"];

/// JWS algorithms of the client assertions this provider verifies (RFC 7523, OIDC Core §9):
/// for `private_key_jwt` and, keyed by the secret, for `client_secret_jwt`.
pub const CLIENT_ASSERTION_ALGS: [&str; 4] = ["RS256", "PS256", "ES256", "EdDSA"];
pub const CLIENT_SECRET_JWT_ALGS: [&str; 1] = ["HS256"];

/// Whether a JWK carries private or symmetric key material (RFC 7518 §6.2.2, §6.3.2, §6.4:
/// `d`, the RSA primes and CRT values, `k`): never accepted where a public key is expected.
pub fn holds_secret_material(jwk: &serde_json::Value) -> bool {
    ["d", "p", "q", "dp", "dq", "qi", "k"]
        .iter()
        .any(|member| jwk.get(member).is_some())
}

/// A client's JWK set as registered or published: public keys only, each of a kind this
/// provider can verify with.
pub fn parse_public_jwks(raw: &[u8]) -> Result<jsonwebtoken::jwk::JwkSet, Invalid> {
    let value: serde_json::Value =
        serde_json::from_slice(raw).map_err(|e| Invalid::new(format!("the JWKS is not JSON: {e}")))?;
    let keys = value["keys"]
        .as_array()
        .ok_or_else(|| Invalid::new("a JWKS is an object with a \"keys\" array"))?;
    if keys.is_empty() || keys.len() > 20 {
        return Err(Invalid::new("a JWKS must hold 1 to 20 keys"));
    }
    for key in keys {
        if holds_secret_material(key) {
            return Err(Invalid::new(
                "the JWKS holds private or symmetric key material; register public keys only",
            ));
        }
    }
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value(value)
        .map_err(|e| Invalid::new(format!("the JWKS is not a valid JWK set: {e}")))?;
    if let Some(key) = set
        .keys
        .iter()
        .find(|k| jsonwebtoken::DecodingKey::from_jwk(k).is_err())
    {
        return Err(Invalid::new(format!(
            "the JWKS key {:?} is not an RSA, P-256 or Ed25519 public key",
            key.common.key_id.as_deref().unwrap_or("(no kid)")
        )));
    }
    Ok(set)
}

impl NewClient {
    /// A profile's settings, where the operator left the defaults: a FAPI 2.0 client pushes
    /// its requests, uses PKCE, authenticates with `private_key_jwt`, gets DPoP-bound tokens
    /// and ES256 ID tokens. What contradicts the profile is refused by `validate`.
    pub fn apply_profile(&mut self) {
        if self.profile == Some(Profile::Fapi2) {
            self.require_par = true;
            self.require_pkce = true;
            self.dpop_bound_access_tokens = true;
            self.token_endpoint_auth_method
                .get_or_insert(TokenEndpointAuthMethod::PrivateKeyJwt);
            if self.id_token_signed_response_alg == "RS256" {
                self.id_token_signed_response_alg = "ES256".into();
            }
        }
    }

    pub(super) fn validate_profile(&self) -> Result<(), Invalid> {
        let Some(Profile::Fapi2) = self.profile else {
            return Ok(());
        };
        let fapi = |what: &str| Err(Invalid::new(format!("the fapi2 profile requires {what}")));
        if self.client_type != ClientType::Confidential {
            return fapi("a confidential client");
        }
        if self.auth_method() != TokenEndpointAuthMethod::PrivateKeyJwt {
            return fapi("private_key_jwt client authentication");
        }
        if !(self.require_par && self.require_pkce && self.dpop_bound_access_tokens) {
            return fapi("pushed requests, PKCE and DPoP-bound access tokens");
        }
        let algs = std::iter::once(&self.id_token_signed_response_alg).chain(&self.access_token_signing_alg);
        for alg in algs {
            if !FAPI2_ALGS.contains(&alg.as_str()) {
                return fapi("ES256, PS256 or EdDSA signatures, not RS256");
            }
        }
        Ok(())
    }

    /// OIDC Registration §2: `jwks` and `jwks_uri` are exclusive; `private_key_jwt` needs one.
    pub(super) fn validate_keys(&self) -> Result<(), Invalid> {
        if self.jwks.is_some() && self.jwks_uri.is_some() {
            return Err(Invalid::new(
                "give the client's keys inline (jwks) or by jwks_uri, not both",
            ));
        }
        let has_keys = self.jwks.is_some() || self.jwks_uri.is_some();
        if self.auth_method() == TokenEndpointAuthMethod::PrivateKeyJwt && !has_keys {
            return Err(Invalid::new(
                "private_key_jwt needs the client's public keys: a jwks or a jwks_uri",
            ));
        }
        if let Some(uri) = &self.jwks_uri {
            let parsed = Url::parse(uri).map_err(|e| Invalid::new(format!("jwks_uri {uri:?}: {e}")))?;
            let allowed = parsed.scheme() == "https" || (parsed.scheme() == "http" && is_loopback(&parsed));
            if !allowed || parsed.fragment().is_some() || parsed.username() != "" {
                return Err(Invalid::new(format!(
                    "jwks_uri {uri:?} must be an https URL (http only on loopback), without fragment or credentials"
                )));
            }
        }
        Ok(())
    }
}
