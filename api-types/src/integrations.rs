//! Clients, resource servers (RFC 8707) and upstream identity providers: the systems this
//! provider is integrated with, as the admin API shows and takes them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
#[cfg(feature = "openapi")]
use utoipa::ToSchema;

api_type! {
    /// A relying-party client. The secret is never returned, only whether one is set.
    pub struct ClientView {
        pub client_id: String,
        pub name: String,
        /// `confidential` or `public`.
        pub client_type: String,
        pub has_secret: bool,
        pub redirect_uris: Vec<String>,
        pub post_logout_redirect_uris: Vec<String>,
        pub backchannel_logout_uri: Option<String>,
        pub grant_types: Vec<String>,
        pub scopes: Vec<String>,
        pub token_endpoint_auth_method: String,
        pub id_token_signed_response_alg: String,
        pub access_token_signing_alg: Option<String>,
        /// Skips the consent page.
        pub first_party: bool,
        pub require_pkce: bool,
        pub access_token_ttl_s: Option<i64>,
        pub refresh_token_ttl_s: Option<i64>,
        pub refresh_idle_ttl_s: Option<i64>,
        pub refresh_reuse_window_s: i64,
        /// Token requests per minute; `null`: the deployment's default, 0: no limit.
        pub rate_limit_token_per_minute: Option<i64>,
        /// Introspection and revocation requests per minute; `null`: the default, 0: no limit.
        pub rate_limit_introspect_per_minute: Option<i64>,
        /// MFA policy of the client's logins: `off`, `optional`, `required`; `null`: the
        /// deployment's. It can only raise the deployment's.
        #[serde(default)]
        pub mfa: Option<String>,
        /// Users with an unverified email address must verify it before logging in here.
        #[serde(default)]
        pub require_verified_email: bool,
        /// The client's public keys as a JWK set (for `private_key_jwt`), when given inline.
        #[serde(default)]
        pub jwks: Option<serde_json::Value>,
        /// Where the client publishes its public keys.
        #[serde(default)]
        pub jwks_uri: Option<String>,
        /// Only pushed authorization requests (RFC 9126) are accepted.
        #[serde(default)]
        pub require_par: bool,
        /// Only DPoP-bound access tokens (RFC 9449) are issued.
        #[serde(default)]
        pub dpop_bound_access_tokens: bool,
        /// The security profile the client is held to: `fapi2`, or `null`.
        #[serde(default)]
        pub profile: Option<String>,
        /// Resource servers (RFC 8707) the client may ask tokens for.
        #[serde(default)]
        pub resources: Vec<String>,
        pub created_at: DateTime<Utc>,
        pub updated_at: DateTime<Utc>,
    }
}

api_type! {
    /// A client's settings, as created or replaced. Omitted fields take their defaults.
    pub struct ClientInput {
        pub name: String,
        /// `confidential` (default) or `public`.
        #[serde(default)]
        pub client_type: Option<String>,
        #[serde(default)]
        pub redirect_uris: Vec<String>,
        #[serde(default)]
        pub post_logout_redirect_uris: Vec<String>,
        #[serde(default)]
        pub backchannel_logout_uri: Option<String>,
        /// Default: authorization_code and refresh_token.
        #[serde(default)]
        pub grant_types: Option<Vec<String>>,
        /// Default: openid, profile, email, offline_access.
        #[serde(default)]
        pub scopes: Option<Vec<String>>,
        /// `client_secret_basic` (default for confidential), `client_secret_post`,
        /// `client_secret_jwt`, `private_key_jwt` or `none` (public clients).
        #[serde(default)]
        pub token_endpoint_auth_method: Option<String>,
        /// `RS256` (default), `PS256`, `ES256` or `EdDSA`.
        #[serde(default)]
        pub id_token_signed_response_alg: Option<String>,
        #[serde(default)]
        pub access_token_signing_alg: Option<String>,
        #[serde(default)]
        pub first_party: bool,
        #[serde(default)]
        pub require_pkce: bool,
        #[serde(default)]
        pub access_token_ttl_s: Option<i64>,
        #[serde(default)]
        pub refresh_token_ttl_s: Option<i64>,
        #[serde(default)]
        pub refresh_idle_ttl_s: Option<i64>,
        #[serde(default)]
        pub refresh_reuse_window_s: i64,
        /// Token requests per minute (0: none); omitted or `null`: the deployment's default.
        #[serde(default)]
        pub rate_limit_token_per_minute: Option<i64>,
        /// Introspection and revocation requests per minute (0: none); omitted: the default.
        #[serde(default)]
        pub rate_limit_introspect_per_minute: Option<i64>,
        /// `off`, `optional` or `required`; omitted or `null`: the deployment's policy.
        #[serde(default)]
        pub mfa: Option<String>,
        /// Refuse users whose email address is not verified until they verify it (default false).
        #[serde(default)]
        pub require_verified_email: bool,
        /// The client's public keys as a JWK set (`{"keys": [...]}`), for `private_key_jwt`;
        /// exclusive with `jwks_uri`.
        #[serde(default)]
        pub jwks: Option<serde_json::Value>,
        /// Where the client publishes its public keys (https; http only on loopback).
        #[serde(default)]
        pub jwks_uri: Option<String>,
        /// Accept only authorization requests pushed to /par first (RFC 9126; default false).
        #[serde(default)]
        pub require_par: bool,
        /// Issue only DPoP-bound access tokens: token requests need a proof (RFC 9449; default false).
        #[serde(default)]
        pub dpop_bound_access_tokens: bool,
        /// `fapi2` holds the client to the FAPI 2.0 Security Profile (and turns on what it needs
        /// where left at the defaults); omitted or `null`: none.
        #[serde(default)]
        pub profile: Option<String>,
        /// Identifiers of registered resource servers (RFC 8707) the client may ask tokens
        /// for with `resource`; default none.
        #[serde(default)]
        pub resources: Vec<String>,
    }
}

api_type! {
    pub struct ClientList {
        pub items: Vec<ClientView>,
    }
}

api_type! {
    /// A resource server (RFC 8707): an API whose tokens name it alone in `aud`.
    pub struct ResourceView {
        /// Its resource indicator: an absolute URI without fragment.
        pub identifier: String,
        /// The scopes it accepts (its tokens carry only these); empty: every granted scope.
        pub scopes: Vec<String>,
        /// The client it introspects with: to it, tokens for other audiences are inactive.
        pub client_id: Option<String>,
        pub created_at: DateTime<Utc>,
    }
}

api_type! {
    /// A resource server to register.
    pub struct ResourceInput {
        pub identifier: String,
        #[serde(default)]
        pub scopes: Vec<String>,
        #[serde(default)]
        pub client_id: Option<String>,
    }
}

api_type! {
    pub struct ResourceList {
        pub items: Vec<ResourceView>,
    }
}

api_type! {
    /// An upstream identity provider (federation). Its client secret is never returned.
    pub struct UpstreamView {
        pub slug: String,
        pub display_name: String,
        /// The login button's image (a `data:` URI); none: the display name's initial.
        #[serde(default)]
        pub icon: Option<String>,
        /// `oidc` (found by discovery) or `oauth2` (plain OAuth 2.0 with a user API).
        pub kind: String,
        pub issuer: String,
        /// A plain OAuth 2.0 provider's endpoints (none for an OpenID provider).
        #[serde(default)]
        pub authorization_endpoint: Option<String>,
        #[serde(default)]
        pub token_endpoint: Option<String>,
        #[serde(default)]
        pub userinfo_endpoint: Option<String>,
        #[serde(default)]
        pub emails_endpoint: Option<String>,
        pub client_id: String,
        /// `client_secret_basic` or `private_key_jwt` (this provider's own keys, published at
        /// `<issuer>/jwks`).
        pub token_endpoint_auth_method: String,
        pub scopes: Vec<String>,
        pub jit: bool,
        pub trust_email: bool,
        /// The claim that is the user there (`sub` for an OpenID provider).
        pub claim_subject: String,
        /// The claims that give the local username, email address and name.
        pub claim_username: String,
        pub claim_email: String,
        pub claim_name: String,
        pub allowed_domains: Vec<String>,
        /// Domains whose verified addresses link to the local account with that address
        /// without asking (needs `trust_email`).
        pub auto_link_domains: Vec<String>,
        /// Empty: every client offers it.
        pub allowed_clients: Vec<String>,
        pub enabled: bool,
        /// The redirect URI to register at the provider.
        pub redirect_uri: String,
        /// An OpenID provider's `backchannel_logout_uri` to register there (OpenID Connect
        /// Back-Channel Logout 1.0): its sign-outs then end the sessions they started here.
        #[serde(default)]
        pub backchannel_logout_uri: Option<String>,
        pub created_at: DateTime<Utc>,
        pub updated_at: DateTime<Utc>,
    }
}

api_type! {
    /// An upstream identity provider to register.
    pub struct UpstreamInput {
        /// Its name in URLs: lower-case letters, digits and dashes.
        pub slug: String,
        pub display_name: String,
        /// The login button's image: a base64 `data:` URI of a PNG, SVG, WebP, JPEG or GIF
        /// image, at most 16 KiB.
        #[serde(default)]
        pub icon: Option<String>,
        /// `oidc` (default): an OpenID provider found by discovery; `oauth2`: a plain OAuth 2.0
        /// provider (its endpoints required); `github`: GitHub (endpoints, claims and scopes
        /// filled in).
        #[serde(default)]
        pub kind: Option<String>,
        /// An OpenID provider is found by discovery from it; it names a plain OAuth 2.0
        /// provider's identities (default for `github`: `https://github.com`). https (http
        /// only on loopback).
        #[serde(default)]
        pub issuer: Option<String>,
        #[serde(default)]
        pub authorization_endpoint: Option<String>,
        #[serde(default)]
        pub token_endpoint: Option<String>,
        /// A JSON object about the user, for the access token.
        #[serde(default)]
        pub userinfo_endpoint: Option<String>,
        /// The user's addresses with `primary` and `verified` flags (GitHub's `/user/emails`).
        #[serde(default)]
        pub emails_endpoint: Option<String>,
        pub client_id: String,
        /// Kept sealed under the master key; never returned. Required but with
        /// `private_key_jwt`.
        #[serde(default)]
        pub client_secret: String,
        /// `client_secret_basic` (default) or `private_key_jwt`.
        #[serde(default)]
        pub token_endpoint_auth_method: Option<String>,
        #[serde(default)]
        pub scopes: Vec<String>,
        #[serde(default)]
        pub jit: bool,
        #[serde(default)]
        pub trust_email: bool,
        /// The user API's claim that is the user (plain OAuth 2.0; default `id`).
        #[serde(default)]
        pub claim_subject: Option<String>,
        /// Default `preferred_username`.
        #[serde(default)]
        pub claim_username: Option<String>,
        /// Default `email`.
        #[serde(default)]
        pub claim_email: Option<String>,
        /// Default `name`.
        #[serde(default)]
        pub claim_name: Option<String>,
        #[serde(default)]
        pub allowed_domains: Vec<String>,
        #[serde(default)]
        pub auto_link_domains: Vec<String>,
        #[serde(default)]
        pub allowed_clients: Vec<String>,
    }
}

api_type! {
    /// Changes to an upstream provider; omitted fields stay as they are.
    #[derive(Default)]
    pub struct UpstreamChange {
        #[serde(default)]
        pub display_name: Option<String>,
        /// A new icon (`data:` URI); an empty string removes it.
        #[serde(default)]
        pub icon: Option<String>,
        #[serde(default)]
        pub client_id: Option<String>,
        /// A new client secret.
        #[serde(default)]
        pub client_secret: Option<String>,
        #[serde(default)]
        pub token_endpoint_auth_method: Option<String>,
        #[serde(default)]
        pub scopes: Option<Vec<String>>,
        #[serde(default)]
        pub jit: Option<bool>,
        #[serde(default)]
        pub trust_email: Option<bool>,
        /// A plain OAuth 2.0 provider's endpoints and subject claim.
        #[serde(default)]
        pub authorization_endpoint: Option<String>,
        #[serde(default)]
        pub token_endpoint: Option<String>,
        #[serde(default)]
        pub userinfo_endpoint: Option<String>,
        #[serde(default)]
        pub emails_endpoint: Option<String>,
        #[serde(default)]
        pub claim_subject: Option<String>,
        #[serde(default)]
        pub claim_username: Option<String>,
        #[serde(default)]
        pub claim_email: Option<String>,
        #[serde(default)]
        pub claim_name: Option<String>,
        #[serde(default)]
        pub allowed_domains: Option<Vec<String>>,
        #[serde(default)]
        pub auto_link_domains: Option<Vec<String>>,
        #[serde(default)]
        pub allowed_clients: Option<Vec<String>>,
        /// false: the login page no longer offers it and its sign-ins are refused.
        #[serde(default)]
        pub enabled: Option<bool>,
    }
}

api_type! {
    pub struct UpstreamList {
        pub items: Vec<UpstreamView>,
    }
}

api_type! {
    /// What "test connection" found: the provider's discovery document, or why not.
    pub struct UpstreamTest {
        pub ok: bool,
        #[serde(default)]
        pub error: Option<String>,
        #[serde(default)]
        pub authorization_endpoint: Option<String>,
        #[serde(default)]
        pub token_endpoint: Option<String>,
        #[serde(default)]
        pub jwks_uri: Option<String>,
        /// RFC 9207 `iss` in its authorization responses.
        #[serde(default)]
        pub iss_parameter_supported: bool,
    }
}

api_type! {
    /// An identity at an upstream provider linked to an account.
    pub struct IdentityView {
        pub issuer: String,
        pub subject: String,
        /// The provider's slug it was linked through.
        pub upstream: String,
        pub email: Option<String>,
        pub created_at: DateTime<Utc>,
        pub last_login_at: Option<DateTime<Utc>>,
    }
}

api_type! {
    /// A client and its new secret. The secret is shown this once and never again.
    pub struct ClientWithSecret {
        pub client: ClientView,
        pub client_secret: Option<String>,
    }
}
