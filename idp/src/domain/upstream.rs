//! Upstream identity providers (federation): another OpenID provider (or a plain OAuth 2.0
//! server with a user API, such as GitHub) whose users may sign in here. Each has a slug (in
//! its callback URL), a display name for the login page's button, the issuer that names it
//! (and finds an OpenID provider by discovery), and this provider's client registration there.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use url::Url;

use super::Invalid;
use super::client::{is_loopback, parse_scope_token};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Upstream {
    pub slug: String,
    pub display_name: String,
    /// The image on its login page button: a `data:` URI (no request leaves the user's
    /// browser for it); none: the display name's initial.
    pub icon: Option<String>,
    /// An OpenID provider's discovery document is at `<issuer>/.well-known/openid-configuration`
    /// (OIDC Discovery §4); a plain OAuth 2.0 provider's identities are named by it.
    pub issuer: String,
    #[serde(flatten)]
    pub protocol: Protocol,
    /// This provider's client id at the upstream.
    pub client_id: String,
    /// How this provider authenticates at the upstream's token endpoint.
    pub token_auth: TokenAuth,
    /// The client secret, sealed under the master key; never shown (empty for
    /// `private_key_jwt`).
    #[serde(skip)]
    pub client_secret_sealed: Vec<u8>,
    /// Scopes asked of the upstream; with `openid` for an OpenID provider.
    pub scopes: Vec<String>,
    /// Create a local account at the first sign-in of an unknown identity.
    pub jit: bool,
    /// Take the upstream's `email_verified` as true of the local account.
    pub trust_email: bool,
    /// Which of its claims give the local username, email and name.
    pub claims: ClaimMapping,
    /// Email domains whose users may sign in with it; empty: any.
    pub allowed_domains: Vec<String>,
    /// Email domains for which a verified address from it links the identity to the local
    /// account with that address, without asking (only with `trust_email`); empty: never.
    pub auto_link_domains: Vec<String>,
    /// Clients whose logins offer it; empty: every client.
    pub allowed_clients: Vec<String>,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// How this provider authenticates as the upstream's client at its token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenAuth {
    /// RFC 6749 §2.3.1: the client secret in HTTP Basic.
    #[default]
    ClientSecretBasic,
    /// OIDC Core §9, RFC 7523: a JWT signed with this provider's own signing key, which the
    /// upstream reads from this provider's JWKS (`<issuer>/jwks`); no secret at all.
    PrivateKeyJwt,
}

impl TokenAuth {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::PrivateKeyJwt => "private_key_jwt",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        match raw {
            "client_secret_basic" => Ok(Self::ClientSecretBasic),
            "private_key_jwt" => Ok(Self::PrivateKeyJwt),
            other => Err(Invalid::new(format!(
                "{other:?} is not a token endpoint authentication method here: client_secret_basic or private_key_jwt"
            ))),
        }
    }
}

/// How this provider signs its users in there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum Protocol {
    /// OpenID Connect, found by discovery: the user is the ID token's `iss` and `sub`.
    #[serde(rename = "oidc")]
    Oidc,
    /// Plain OAuth 2.0 (GitHub-style): no ID token; the user is read from its user API with
    /// the access token, and is the provider's `issuer` and the subject claim of that answer.
    #[serde(rename = "oauth2")]
    OAuth2(OAuth2Endpoints),
}

impl Protocol {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Oidc => "oidc",
            Self::OAuth2(_) => "oauth2",
        }
    }
}

/// Where a plain OAuth 2.0 provider authorizes, issues tokens and tells who the user is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuth2Endpoints {
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    /// A JSON object about the user, for the access token (GitHub: `GET /user`).
    pub userinfo_endpoint: String,
    /// A JSON array of the user's addresses, each with `email`, `primary` and `verified`
    /// (GitHub: `GET /user/emails`): the primary one is the user's address, verified or not
    /// as it says. Without it, the address and `email_verified` come from the user API.
    #[serde(default)]
    pub emails_endpoint: Option<String>,
}

impl OAuth2Endpoints {
    fn validated(self) -> Result<Self, Invalid> {
        let endpoints = [
            Some(&self.authorization_endpoint),
            Some(&self.token_endpoint),
            Some(&self.userinfo_endpoint),
            self.emails_endpoint.as_ref(),
        ];
        for endpoint in endpoints.into_iter().flatten() {
            parse_endpoint(endpoint)?;
        }
        Ok(self)
    }
}

/// GitHub as an upstream, from its public documentation ("Authorizing OAuth apps"; REST API
/// "Get the authenticated user" and "List email addresses for the authenticated user").
pub mod github {
    use super::{ClaimMapping, OAuth2Endpoints};

    /// The name of GitHub's identities here (GitHub has no issuer of its own).
    pub const ISSUER: &str = "https://github.com";
    /// The profile and every address with its `verified` flag (also the private ones).
    pub const SCOPES: [&str; 2] = ["read:user", "user:email"];

    pub fn endpoints() -> OAuth2Endpoints {
        OAuth2Endpoints {
            authorization_endpoint: "https://github.com/login/oauth/authorize".into(),
            token_endpoint: "https://github.com/login/oauth/access_token".into(),
            userinfo_endpoint: "https://api.github.com/user".into(),
            emails_endpoint: Some("https://api.github.com/user/emails".into()),
        }
    }

    /// The numeric, never reused `id` (a login can be renamed and taken by someone else).
    pub fn claims() -> ClaimMapping {
        ClaimMapping {
            subject: "id".into(),
            username: "login".into(),
            email: "email".into(),
            name: "name".into(),
        }
    }
}

/// Which claims of the upstream (ID token or userinfo) give the user's identity there and the
/// local account's username, email address and name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClaimMapping {
    /// Always `sub` for an OpenID provider; a stable, never reassigned id for plain OAuth 2.0.
    pub subject: String,
    pub username: String,
    pub email: String,
    pub name: String,
}

impl Default for ClaimMapping {
    fn default() -> Self {
        Self {
            subject: "sub".into(),
            username: "preferred_username".into(),
            email: "email".into(),
            name: "name".into(),
        }
    }
}

impl ClaimMapping {
    fn validated(self) -> Result<Self, Invalid> {
        for claim in [&self.subject, &self.username, &self.email, &self.name] {
            let valid = !claim.is_empty()
                && claim.len() <= 64
                && claim
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.' || b == b':');
            if !valid {
                return Err(Invalid::new(format!("{claim:?} is not a claim name")));
            }
        }
        Ok(self)
    }
}

/// An identity at an upstream provider, linked to a local account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FederatedIdentity {
    /// The upstream's `iss` and the user's `sub` there: the identity itself.
    pub issuer: String,
    pub subject: String,
    pub user_id: uuid::Uuid,
    /// The slug of the provider it came through.
    pub upstream: String,
    /// The address the provider gave when it was linked (shown, never used to match).
    pub email: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
}

/// What an operator registers (the secret is given apart: it is sealed before it is stored).
#[derive(Debug, Clone)]
pub struct NewUpstream {
    pub slug: String,
    pub display_name: String,
    pub icon: Option<String>,
    pub issuer: String,
    pub protocol: Protocol,
    pub client_id: String,
    pub token_auth: TokenAuth,
    pub scopes: Vec<String>,
    pub jit: bool,
    pub trust_email: bool,
    pub claims: ClaimMapping,
    pub allowed_domains: Vec<String>,
    pub auto_link_domains: Vec<String>,
    pub allowed_clients: Vec<String>,
}

impl NewUpstream {
    /// Checks every field; adds `openid` to an OpenID provider's scopes and keeps each scope
    /// and domain once.
    pub fn validated(mut self) -> Result<Self, Invalid> {
        parse_slug(&self.slug)?;
        self.display_name = self.display_name.trim().to_string();
        if self.display_name.is_empty() || self.display_name.chars().count() > 100 {
            return Err(Invalid::new("the display name must be 1 to 100 characters"));
        }
        parse_issuer(&self.issuer)?;
        if let Some(icon) = &self.icon {
            parse_icon(icon)?;
        }
        if self.client_id.trim().is_empty() || self.client_id.len() > 255 {
            return Err(Invalid::new("the client id must be 1 to 255 characters"));
        }
        let mut scopes = Vec::new();
        match self.protocol {
            Protocol::Oidc => {
                // OIDC Core §2: the ID token's `sub` is the user, whatever the mapping says.
                if self.claims.subject != "sub" {
                    return Err(Invalid::new(
                        "an OpenID provider's users are the ID token's sub: the subject claim is sub",
                    ));
                }
                scopes.push("openid".to_string());
            }
            Protocol::OAuth2(_) if self.token_auth == TokenAuth::PrivateKeyJwt => {
                return Err(Invalid::new(
                    "private_key_jwt is for OpenID providers, which read this provider's keys from its JWKS",
                ));
            }
            Protocol::OAuth2(endpoints) => self.protocol = Protocol::OAuth2(endpoints.validated()?),
        }
        for scope in &self.scopes {
            let scope = parse_scope_token(scope)?;
            if !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
        self.scopes = scopes;
        self.allowed_domains = email_domains(&self.allowed_domains)?;
        self.auto_link_domains = email_domains(&self.auto_link_domains)?;
        if !self.auto_link_domains.is_empty() && !self.trust_email {
            return Err(Invalid::new(
                "linking by email address needs the provider's verified addresses to be trusted (trust_email)",
            ));
        }
        self.claims = self.claims.validated()?;
        Ok(self)
    }
}

/// A provider as an operator describes it (CLI, admin API): `kind` and what it leaves out
/// decide the rest.
#[derive(Debug, Clone, Default)]
pub struct UpstreamDraft {
    /// `oidc` (the default), `oauth2`, or `github` (OAuth 2.0 at GitHub's endpoints, with its
    /// claims and scopes unless given).
    pub kind: Option<String>,
    pub slug: String,
    pub display_name: String,
    pub icon: Option<String>,
    /// Required but for `github`.
    pub issuer: Option<String>,
    pub client_id: String,
    /// `client_secret_basic` (the default) or `private_key_jwt`.
    pub token_endpoint_auth_method: Option<String>,
    pub scopes: Vec<String>,
    pub jit: bool,
    pub trust_email: bool,
    pub claim_subject: Option<String>,
    pub claim_username: Option<String>,
    pub claim_email: Option<String>,
    pub claim_name: Option<String>,
    pub authorization_endpoint: Option<String>,
    pub token_endpoint: Option<String>,
    pub userinfo_endpoint: Option<String>,
    pub emails_endpoint: Option<String>,
    pub allowed_domains: Vec<String>,
    pub auto_link_domains: Vec<String>,
    pub allowed_clients: Vec<String>,
}

impl UpstreamDraft {
    /// The provider it describes, checked.
    pub fn resolve(self) -> Result<NewUpstream, Invalid> {
        let given_endpoint = self.authorization_endpoint.is_some()
            || self.token_endpoint.is_some()
            || self.userinfo_endpoint.is_some()
            || self.emails_endpoint.is_some();
        let required = |value: Option<String>, what: &str| {
            value.ok_or_else(|| Invalid::new(format!("a plain OAuth 2.0 provider needs its {what}")))
        };
        let (protocol, issuer, claims, scopes) = match self.kind.as_deref().unwrap_or("oidc") {
            "oidc" if given_endpoint => {
                return Err(Invalid::new(
                    "an OpenID provider's endpoints come from its discovery document: give only its issuer",
                ));
            }
            "oidc" => (Protocol::Oidc, self.issuer, ClaimMapping::default(), self.scopes),
            "oauth2" => {
                let endpoints = OAuth2Endpoints {
                    authorization_endpoint: required(self.authorization_endpoint, "authorization endpoint")?,
                    token_endpoint: required(self.token_endpoint, "token endpoint")?,
                    userinfo_endpoint: required(self.userinfo_endpoint, "userinfo endpoint")?,
                    emails_endpoint: self.emails_endpoint,
                };
                let claims = ClaimMapping {
                    subject: "id".into(),
                    ..ClaimMapping::default()
                };
                (Protocol::OAuth2(endpoints), self.issuer, claims, self.scopes)
            }
            "github" => {
                let preset = github::endpoints();
                let endpoints = OAuth2Endpoints {
                    authorization_endpoint: self
                        .authorization_endpoint
                        .unwrap_or(preset.authorization_endpoint),
                    token_endpoint: self.token_endpoint.unwrap_or(preset.token_endpoint),
                    userinfo_endpoint: self.userinfo_endpoint.unwrap_or(preset.userinfo_endpoint),
                    emails_endpoint: self.emails_endpoint.or(preset.emails_endpoint),
                };
                let scopes = if self.scopes.is_empty() {
                    github::SCOPES.map(String::from).to_vec()
                } else {
                    self.scopes
                };
                let issuer = self.issuer.or_else(|| Some(github::ISSUER.into()));
                (Protocol::OAuth2(endpoints), issuer, github::claims(), scopes)
            }
            other => {
                return Err(Invalid::new(format!(
                    "{other:?} is not a kind of provider: oidc, oauth2 or github"
                )));
            }
        };
        NewUpstream {
            slug: self.slug,
            display_name: self.display_name,
            icon: self.icon,
            issuer: issuer.ok_or_else(|| Invalid::new("the provider's issuer is required"))?,
            protocol,
            client_id: self.client_id,
            token_auth: self
                .token_endpoint_auth_method
                .as_deref()
                .map(TokenAuth::parse)
                .transpose()?
                .unwrap_or_default(),
            scopes,
            jit: self.jit,
            trust_email: self.trust_email,
            claims: ClaimMapping {
                subject: self.claim_subject.unwrap_or(claims.subject),
                username: self.claim_username.unwrap_or(claims.username),
                email: self.claim_email.unwrap_or(claims.email),
                name: self.claim_name.unwrap_or(claims.name),
            },
            allowed_domains: self.allowed_domains,
            auto_link_domains: self.auto_link_domains,
            allowed_clients: self.allowed_clients,
        }
        .validated()
    }
}

/// Email domains, lower-cased, each once.
fn email_domains(raw: &[String]) -> Result<Vec<String>, Invalid> {
    let mut domains: Vec<String> = Vec::new();
    for domain in raw {
        let domain = domain.trim().to_ascii_lowercase();
        let valid = !domain.is_empty()
            && domain.len() <= 253
            && domain.contains('.')
            && domain
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        if !valid {
            return Err(Invalid::new(format!("{domain:?} is not an email domain")));
        }
        if !domains.contains(&domain) {
            domains.push(domain);
        }
    }
    Ok(domains)
}

/// A slug names the provider in URLs: 1 to 63 lower-case letters, digits and dashes,
/// beginning with a letter or digit.
pub fn parse_slug(raw: &str) -> Result<(), Invalid> {
    let valid = !raw.is_empty()
        && raw.len() <= 63
        && !raw.starts_with('-')
        && raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if valid {
        Ok(())
    } else {
        Err(Invalid::new(format!(
            "{raw:?} is not a slug: 1 to 63 lower-case letters, digits and dashes"
        )))
    }
}

/// The largest icon kept (its data URI).
pub const MAX_ICON_BYTES: usize = 16 * 1024;
/// The image types an icon may be.
pub const ICON_TYPES: [&str; 5] = [
    "image/png",
    "image/svg+xml",
    "image/webp",
    "image/jpeg",
    "image/gif",
];

/// A login button's icon: a base64 `data:` URI of an image (RFC 2397), at most 16 KiB. An SVG
/// shown by `<img>` runs no script, and the page's CSP allows `data:` images only.
pub fn parse_icon(raw: &str) -> Result<(), Invalid> {
    use base64::Engine;
    let invalid = || {
        Invalid::new(format!(
            "the icon must be a data: URI (base64) of a PNG, SVG, WebP, JPEG or GIF image of at most {} KiB",
            MAX_ICON_BYTES / 1024
        ))
    };
    let rest = raw.strip_prefix("data:").ok_or_else(invalid)?;
    let (media_type, data) = rest.split_once(";base64,").ok_or_else(invalid)?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(data);
    if raw.len() > MAX_ICON_BYTES || !ICON_TYPES.contains(&media_type) || decoded.is_err() {
        return Err(invalid());
    }
    Ok(())
}

/// An endpoint of a plain OAuth 2.0 provider: an https URL (http only on loopback) without
/// fragment or credentials (RFC 6749 §3.1, §3.2).
fn parse_endpoint(raw: &str) -> Result<(), Invalid> {
    let url = Url::parse(raw).map_err(|e| Invalid::new(format!("endpoint {raw:?} is not a URL: {e}")))?;
    let scheme_ok = url.scheme() == "https" || (url.scheme() == "http" && is_loopback(&url));
    if !scheme_ok || url.fragment().is_some() || !url.username().is_empty() {
        return Err(Invalid::new(format!(
            "endpoint {raw:?} must be an https URL (http only on loopback) without fragment or credentials"
        )));
    }
    Ok(())
}

/// OIDC Discovery §2: an https URL without query or fragment (http only on loopback, for
/// tests and local setups).
pub fn parse_issuer(raw: &str) -> Result<(), Invalid> {
    let url = Url::parse(raw).map_err(|e| Invalid::new(format!("issuer {raw:?} is not a URL: {e}")))?;
    let scheme_ok = url.scheme() == "https" || (url.scheme() == "http" && is_loopback(&url));
    if !scheme_ok || url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(Invalid::new(format!(
            "issuer {raw:?} must be an https URL (http only on loopback) without query, fragment or credentials"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(slug: &str, issuer: &str) -> NewUpstream {
        NewUpstream {
            slug: slug.into(),
            display_name: " Corporate login ".into(),
            icon: None,
            issuer: issuer.into(),
            protocol: Protocol::Oidc,
            client_id: "idp".into(),
            token_auth: TokenAuth::default(),
            scopes: vec!["email".into(), "openid".into(), "email".into()],
            jit: false,
            trust_email: false,
            claims: ClaimMapping::default(),
            allowed_domains: vec!["Example.COM".into()],
            auto_link_domains: vec![],
            allowed_clients: vec![],
        }
    }

    #[test]
    fn a_valid_provider_is_normalised() {
        let upstream = new("corp", "https://login.example.com/tenant").validated();
        assert!(upstream.is_ok(), "{upstream:?}");
        let Ok(upstream) = upstream else { return };
        assert_eq!(upstream.display_name, "Corporate login");
        assert_eq!(upstream.scopes, ["openid", "email"]);
        assert_eq!(upstream.allowed_domains, ["example.com"]);
        assert!(new("local", "http://127.0.0.1:8080").validated().is_ok());
    }

    #[test]
    fn linking_by_email_needs_trusted_addresses_and_claims_are_names() {
        let mut linking = new("corp", "https://login.example.com");
        linking.auto_link_domains = vec!["example.com".into()];
        assert!(linking.clone().validated().is_err());
        linking.trust_email = true;
        assert!(linking.validated().is_ok());
        let mut claims = new("corp", "https://login.example.com");
        claims.claims.username = "login name".into();
        assert!(claims.validated().is_err());
    }

    #[test]
    fn icons_are_small_data_uris_of_images() {
        assert!(parse_icon("data:image/svg+xml;base64,PHN2Zy8+").is_ok());
        for icon in [
            "https://example.com/logo.png",
            "data:text/html;base64,PHNjcmlwdD4=",
            "data:image/png,raw",
            "data:image/png;base64,not base64!",
            &format!("data:image/png;base64,{}", "A".repeat(MAX_ICON_BYTES)),
        ] {
            assert!(parse_icon(icon).is_err(), "{icon}");
        }
    }

    #[test]
    fn bad_slugs_and_issuers_are_refused() {
        for slug in ["", "Corp", "-corp", "corp/x", &"a".repeat(64)] {
            assert!(
                new(slug, "https://login.example.com").validated().is_err(),
                "{slug}"
            );
        }
        for issuer in [
            "http://login.example.com",
            "https://login.example.com/?tenant=1",
            "https://login.example.com/#x",
            "https://user:pw@login.example.com",
            "login.example.com",
        ] {
            assert!(new("corp", issuer).validated().is_err(), "{issuer}");
        }
    }

    #[test]
    fn a_github_draft_takes_its_endpoints_claims_and_scopes() {
        let draft = UpstreamDraft {
            kind: Some("github".into()),
            slug: "github".into(),
            display_name: "GitHub".into(),
            client_id: "Iv1.abc".into(),
            ..UpstreamDraft::default()
        };
        let github = draft.clone().resolve();
        assert!(github.is_ok(), "{github:?}");
        let Ok(github) = github else { return };
        assert_eq!(github.issuer, "https://github.com");
        assert_eq!(github.scopes, ["read:user", "user:email"], "no openid");
        assert_eq!(github.claims.subject, "id");
        assert_eq!(github.claims.username, "login");
        assert_eq!(github.protocol, Protocol::OAuth2(github::endpoints()));
        // Plain OAuth 2.0 needs every endpoint; an OpenID provider takes none.
        let partial = UpstreamDraft {
            kind: Some("oauth2".into()),
            issuer: Some("https://oauth.example.com".into()),
            authorization_endpoint: Some("https://oauth.example.com/authorize".into()),
            ..draft.clone()
        };
        assert!(
            partial
                .resolve()
                .is_err_and(|e| e.to_string().contains("token endpoint"))
        );
        let oidc = UpstreamDraft {
            kind: None,
            issuer: Some("https://login.example.com".into()),
            token_endpoint: Some("https://login.example.com/token".into()),
            ..draft.clone()
        };
        assert!(oidc.resolve().is_err());
        let subject = UpstreamDraft {
            kind: None,
            issuer: Some("https://login.example.com".into()),
            claim_subject: Some("email".into()),
            ..draft.clone()
        };
        assert!(subject.resolve().is_err(), "an OpenID provider's user is its sub");
        let unknown = UpstreamDraft {
            kind: Some("saml".into()),
            ..draft.clone()
        };
        assert!(unknown.resolve().is_err());
        let plain_http = UpstreamDraft {
            userinfo_endpoint: Some("http://api.example.com/user".into()),
            ..draft
        };
        assert!(plain_http.resolve().is_err());
    }
}
