//! Relying-party clients (RFC 6749 §2, OIDC Dynamic Client Registration §2 metadata).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use url::{Host, Url};

use super::Invalid;
pub use super::client_security::{
    CLIENT_ASSERTION_ALGS, CLIENT_SECRET_JWT_ALGS, FAPI2_ALGS, Profile, parse_public_jwks,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientType {
    /// Can keep a secret (a server-side web app).
    Confidential,
    /// Cannot (a single-page or native app); must use PKCE.
    Public,
}

impl ClientType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Confidential => "confidential",
            Self::Public => "public",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "confidential" => Some(Self::Confidential),
            "public" => Some(Self::Public),
            _ => None,
        }
    }
}

/// Grant types this provider implements (RFC 6749 §4, §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    AuthorizationCode,
    RefreshToken,
    ClientCredentials,
}

impl GrantType {
    pub const ALL: [GrantType; 3] = [
        Self::AuthorizationCode,
        Self::RefreshToken,
        Self::ClientCredentials,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
            Self::ClientCredentials => "client_credentials",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        Self::ALL.into_iter().find(|g| g.as_str() == raw).ok_or_else(|| {
            Invalid::new(format!(
                "unknown grant type {raw:?}; expected authorization_code, refresh_token or client_credentials"
            ))
        })
    }
}

/// Client authentication at the token endpoint (OIDC Core §9, RFC 6749 §2.3.1, RFC 7523).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenEndpointAuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    /// A JWT signed with HMAC keyed by the client's secret.
    ClientSecretJwt,
    /// A JWT signed with one of the client's registered private keys.
    PrivateKeyJwt,
    None,
}

impl TokenEndpointAuthMethod {
    pub const ALL: [Self; 5] = [
        Self::ClientSecretBasic,
        Self::ClientSecretPost,
        Self::ClientSecretJwt,
        Self::PrivateKeyJwt,
        Self::None,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::ClientSecretJwt => "client_secret_jwt",
            Self::PrivateKeyJwt => "private_key_jwt",
            Self::None => "none",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == raw)
    }

    /// Whether the client proves a shared secret (and so is given one at registration).
    pub fn uses_secret(self) -> bool {
        matches!(
            self,
            Self::ClientSecretBasic | Self::ClientSecretPost | Self::ClientSecretJwt
        )
    }
}

/// A registered redirect URI: absolute, without fragment (RFC 6749 §3.1.2), and for
/// `http` only on a loopback host (RFC 8252 §7.3). Native apps may use a private-use
/// scheme such as `com.example.app:/cb` (RFC 8252 §7.1); only public clients are native.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedirectUri(String);

impl RedirectUri {
    pub fn parse(raw: &str, client_type: ClientType) -> Result<Self, Invalid> {
        let url = Url::parse(raw)
            .map_err(|e| Invalid::new(format!("redirect URI {raw:?} is not an absolute URI: {e}")))?;
        if url.fragment().is_some() || raw.contains('#') {
            return Err(Invalid::new(format!(
                "redirect URI {raw:?} must not have a fragment"
            )));
        }
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(&url) => {}
            "http" => {
                return Err(Invalid::new(format!(
                    "redirect URI {raw:?} uses http on a non-loopback host; use https"
                )));
            }
            "javascript" | "data" | "file" | "vbscript" => {
                return Err(Invalid::new(format!(
                    "redirect URI {raw:?} has a forbidden scheme"
                )));
            }
            _ if client_type == ClientType::Public && url.scheme().contains('.') => {}
            _ => {
                return Err(Invalid::new(format!(
                    "redirect URI {raw:?} must be https, http on loopback, or (public clients) a reverse-domain private-use scheme"
                )));
            }
        }
        if url.username() != "" || url.password().is_some() {
            return Err(Invalid::new(format!(
                "redirect URI {raw:?} must not contain credentials"
            )));
        }
        // Stored exactly as registered: matching is by simple string comparison (RFC 6749 §3.1.2.3,
        // OIDC Core §3.1.2.1), so the text the client registered is the text it must send.
        Ok(Self(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// Scope values are `scope-token`s: printable ASCII except space, `"` and `\` (RFC 6749 §3.3).
pub fn parse_scope_token(raw: &str) -> Result<String, Invalid> {
    let valid = !raw.is_empty()
        && raw
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b));
    if valid {
        Ok(raw.to_string())
    } else {
        Err(Invalid::new(format!("{raw:?} is not a valid scope")))
    }
}

/// JWS algorithms tokens can be signed with.
pub const SIGNING_ALGS: [&str; 4] = ["RS256", "PS256", "ES256", "EdDSA"];

/// The highest per-client rate limit (requests per minute): far above what one replica serves.
pub const MAX_RATE_LIMIT_PER_MINUTE: i64 = 100_000_000;

pub const DEFAULT_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Client {
    pub id: String,
    pub name: String,
    pub client_type: ClientType,
    /// Keyed hash of the secret, never the secret itself.
    #[serde(skip)]
    pub secret_hash: Option<String>,
    /// The secret encrypted under the master key, kept only for `client_secret_jwt`: an
    /// HMAC needs the secret itself.
    #[serde(skip)]
    pub secret_sealed: Option<Vec<u8>>,
    /// The client's public keys (`private_key_jwt`, signed request objects), given inline…
    pub jwks: Option<jsonwebtoken::jwk::JwkSet>,
    /// …or published by the client at this URL.
    pub jwks_uri: Option<String>,
    /// Authorization requests must be pushed first (RFC 9126 §6).
    pub require_par: bool,
    /// Access tokens must be bound to a DPoP key (RFC 9449 §5.2).
    pub dpop_bound_access_tokens: bool,
    /// The security profile the client is held to, if any.
    pub profile: Option<Profile>,
    /// The resource servers it may ask tokens for (RFC 8707 `resource`).
    pub resources: Vec<String>,
    pub redirect_uris: Vec<RedirectUri>,
    pub post_logout_redirect_uris: Vec<RedirectUri>,
    pub backchannel_logout_uri: Option<String>,
    pub grant_types: Vec<GrantType>,
    pub scopes: Vec<String>,
    pub token_endpoint_auth_method: TokenEndpointAuthMethod,
    pub id_token_signed_response_alg: String,
    pub access_token_signing_alg: Option<String>,
    pub first_party: bool,
    pub require_pkce: bool,
    pub access_token_ttl_s: Option<i64>,
    pub refresh_token_ttl_s: Option<i64>,
    pub refresh_idle_ttl_s: Option<i64>,
    pub refresh_reuse_window_s: i64,
    /// Token requests per minute for this client; `None`: the deployment's default, 0: none.
    pub rate_limit_token_per_minute: Option<i64>,
    /// Introspection and revocation requests per minute; `None`: the default, 0: none.
    pub rate_limit_introspect_per_minute: Option<i64>,
    /// The client's MFA policy; `None` follows the deployment's. It can only raise it.
    pub mfa: Option<super::mfa::MfaPolicy>,
    /// Users whose email address is not verified must verify it before logging in here.
    pub require_verified_email: bool,
    pub theme: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Client {
    pub fn allows_grant(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }

    /// The settings of this client as an operator would give them, to change some.
    pub fn settings(&self) -> NewClient {
        NewClient {
            name: self.name.clone(),
            client_type: self.client_type,
            redirect_uris: self.redirect_uris.clone(),
            post_logout_redirect_uris: self.post_logout_redirect_uris.clone(),
            grant_types: self.grant_types.clone(),
            scopes: self.scopes.clone(),
            first_party: self.first_party,
            refresh_reuse_window_s: self.refresh_reuse_window_s,
            require_pkce: self.require_pkce,
            refresh_idle_ttl_s: self.refresh_idle_ttl_s,
            id_token_signed_response_alg: self.id_token_signed_response_alg.clone(),
            access_token_signing_alg: self.access_token_signing_alg.clone(),
            backchannel_logout_uri: self.backchannel_logout_uri.clone(),
            token_endpoint_auth_method: Some(self.token_endpoint_auth_method),
            jwks: self.jwks.clone(),
            jwks_uri: self.jwks_uri.clone(),
            require_par: self.require_par,
            dpop_bound_access_tokens: self.dpop_bound_access_tokens,
            profile: self.profile,
            resources: self.resources.clone(),
            access_token_ttl_s: self.access_token_ttl_s,
            refresh_token_ttl_s: self.refresh_token_ttl_s,
            rate_limit_token_per_minute: self.rate_limit_token_per_minute,
            rate_limit_introspect_per_minute: self.rate_limit_introspect_per_minute,
            mfa: self.mfa,
            require_verified_email: self.require_verified_email,
        }
    }
}

/// What an operator gives to register a client; validated by [`NewClient::validate`].
#[derive(Debug, Clone)]
pub struct NewClient {
    pub name: String,
    pub client_type: ClientType,
    pub redirect_uris: Vec<RedirectUri>,
    pub post_logout_redirect_uris: Vec<RedirectUri>,
    pub grant_types: Vec<GrantType>,
    pub scopes: Vec<String>,
    pub first_party: bool,
    pub refresh_reuse_window_s: i64,
    /// Require PKCE even of a confidential client (always required of public ones).
    pub require_pkce: bool,
    /// Seconds a refresh token may go unused before it lapses; `None`: only the absolute lifetime.
    pub refresh_idle_ttl_s: Option<i64>,
    /// JWS algorithm of ID tokens (OIDC Registration `id_token_signed_response_alg`).
    pub id_token_signed_response_alg: String,
    /// JWS algorithm of access tokens; `None` uses the deployment's default.
    pub access_token_signing_alg: Option<String>,
    /// Where logout tokens are POSTed (OIDC Back-Channel Logout 1.0 §2.2).
    pub backchannel_logout_uri: Option<String>,
    /// `None`: the type's default (client_secret_basic, or none for public clients).
    pub token_endpoint_auth_method: Option<TokenEndpointAuthMethod>,
    /// The client's public keys, inline (`private_key_jwt`); exclusive with `jwks_uri`.
    pub jwks: Option<jsonwebtoken::jwk::JwkSet>,
    /// Where the client publishes its public keys.
    pub jwks_uri: Option<String>,
    /// Refuse authorization requests that were not pushed (RFC 9126 §6).
    pub require_par: bool,
    /// Refuse token requests without a DPoP proof (RFC 9449 §5.2).
    pub dpop_bound_access_tokens: bool,
    /// Hold the client to a security profile; see [`NewClient::apply_profile`].
    pub profile: Option<Profile>,
    /// Resource servers it may ask tokens for; each must be registered.
    pub resources: Vec<String>,
    /// Lifetimes overriding the deployment's defaults.
    pub access_token_ttl_s: Option<i64>,
    pub refresh_token_ttl_s: Option<i64>,
    /// Rate limits overriding the deployment's defaults (per minute; 0: none).
    pub rate_limit_token_per_minute: Option<i64>,
    pub rate_limit_introspect_per_minute: Option<i64>,
    /// MFA policy raising the deployment's for this client's logins.
    pub mfa: Option<super::mfa::MfaPolicy>,
    /// Refuse users with an unverified email address until they verify it.
    pub require_verified_email: bool,
}

impl NewClient {
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.name.trim().is_empty() || self.name.chars().count() > 200 {
            return Err(Invalid::new("client name must be 1 to 200 characters"));
        }
        if self.grant_types.is_empty() {
            return Err(Invalid::new("a client needs at least one grant type"));
        }
        if self.grant_types.contains(&GrantType::AuthorizationCode) && self.redirect_uris.is_empty() {
            return Err(Invalid::new(
                "the authorization_code grant needs at least one redirect URI",
            ));
        }
        if self.client_type == ClientType::Public && self.grant_types.contains(&GrantType::ClientCredentials)
        {
            return Err(Invalid::new(
                "public clients cannot use client_credentials (RFC 6749 §4.4)",
            ));
        }
        if self
            .refresh_idle_ttl_s
            .is_some_and(|s| !(60..=31_536_000).contains(&s))
        {
            return Err(Invalid::new(
                "the refresh idle timeout must be 60 seconds to 365 days",
            ));
        }
        if self
            .access_token_ttl_s
            .is_some_and(|s| !(60..=86_400).contains(&s))
        {
            return Err(Invalid::new(
                "the access token lifetime must be 60 to 86400 seconds",
            ));
        }
        if self
            .refresh_token_ttl_s
            .is_some_and(|s| !(60..=31_536_000).contains(&s))
        {
            return Err(Invalid::new(
                "the refresh token lifetime must be 60 seconds to 365 days",
            ));
        }
        match (self.client_type, self.token_endpoint_auth_method) {
            (ClientType::Public, Some(m)) if m != TokenEndpointAuthMethod::None => {
                return Err(Invalid::new(
                    "a public client has no secret: its auth method is none",
                ));
            }
            (ClientType::Confidential, Some(TokenEndpointAuthMethod::None)) => {
                return Err(Invalid::new(
                    "a confidential client authenticates: use client_secret_basic, client_secret_post, \
                     client_secret_jwt or private_key_jwt",
                ));
            }
            _ => {}
        }
        self.validate_keys()?;
        self.validate_profile()?;
        for resource in &self.resources {
            super::resource::parse_identifier(resource)?;
        }
        for (name, limit) in [
            ("token", self.rate_limit_token_per_minute),
            ("introspection", self.rate_limit_introspect_per_minute),
        ] {
            if limit.is_some_and(|l| !(0..=MAX_RATE_LIMIT_PER_MINUTE).contains(&l)) {
                return Err(Invalid::new(format!(
                    "the {name} rate limit must be 0 (none) to {MAX_RATE_LIMIT_PER_MINUTE} requests per minute"
                )));
            }
        }
        if self.refresh_reuse_window_s < 0 || self.refresh_reuse_window_s > 300 {
            return Err(Invalid::new("the refresh reuse window must be 0 to 300 seconds"));
        }
        if let Some(uri) = &self.backchannel_logout_uri {
            let parsed =
                Url::parse(uri).map_err(|e| Invalid::new(format!("back-channel logout URI {uri:?}: {e}")))?;
            if !matches!(parsed.scheme(), "http" | "https") || parsed.fragment().is_some() {
                return Err(Invalid::new(format!(
                    "back-channel logout URI {uri:?} must be an http(s) URL without fragment"
                )));
            }
        }
        for alg in std::iter::once(&self.id_token_signed_response_alg).chain(&self.access_token_signing_alg) {
            if !SIGNING_ALGS.contains(&alg.as_str()) {
                return Err(Invalid::new(format!(
                    "unknown signing algorithm {alg:?}; expected RS256, PS256, ES256 or EdDSA"
                )));
            }
        }
        Ok(())
    }

    pub fn auth_method(&self) -> TokenEndpointAuthMethod {
        if let Some(method) = self.token_endpoint_auth_method {
            return method;
        }
        match self.client_type {
            ClientType::Confidential => TokenEndpointAuthMethod::ClientSecretBasic,
            ClientType::Public => TokenEndpointAuthMethod::None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_must_be_absolute_without_fragment() {
        let c = ClientType::Confidential;
        assert!(RedirectUri::parse("https://app.example.com/cb", c).is_ok());
        assert!(RedirectUri::parse("/cb", c).is_err());
        assert!(RedirectUri::parse("https://app.example.com/cb#x", c).is_err());
        assert!(RedirectUri::parse("https://app.example.com/cb#", c).is_err());
    }

    #[test]
    fn http_is_allowed_only_on_loopback() {
        let c = ClientType::Confidential;
        assert!(RedirectUri::parse("http://127.0.0.1:9000/cb", c).is_ok());
        assert!(RedirectUri::parse("http://localhost/cb", c).is_ok());
        assert!(RedirectUri::parse("http://[::1]/cb", c).is_ok());
        assert!(RedirectUri::parse("http://app.example.com/cb", c).is_err());
    }

    #[test]
    fn private_use_schemes_are_for_public_clients_only() {
        assert!(RedirectUri::parse("com.example.app:/cb", ClientType::Public).is_ok());
        assert!(RedirectUri::parse("com.example.app:/cb", ClientType::Confidential).is_err());
        assert!(RedirectUri::parse("javascript:alert(1)", ClientType::Public).is_err());
    }

    #[test]
    fn redirect_uris_keep_their_exact_text() {
        let uri = RedirectUri::parse("https://App.example.com:443/cb?x=1", ClientType::Confidential);
        assert_eq!(
            uri.map(|u| u.as_str().to_string()),
            Ok("https://App.example.com:443/cb?x=1".into())
        );
    }

    #[test]
    fn scope_tokens_exclude_spaces_and_quotes() {
        assert!(parse_scope_token("openid").is_ok());
        assert!(parse_scope_token("a b").is_err());
        assert!(parse_scope_token("a\"b").is_err());
        assert!(parse_scope_token("").is_err());
    }
}
