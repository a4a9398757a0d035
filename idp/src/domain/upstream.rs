//! Upstream identity providers (federation): another OpenID provider whose users may sign in
//! here. Each has a slug (in its callback URL), a display name for the login page's button,
//! the issuer to discover it by, and this provider's client registration there.

use chrono::{DateTime, Utc};
use serde::Serialize;
use url::Url;

use super::Invalid;
use super::client::{is_loopback, parse_scope_token};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Upstream {
    pub slug: String,
    pub display_name: String,
    /// Where its discovery document is (OIDC Discovery §4): `<issuer>/.well-known/openid-configuration`.
    pub issuer: String,
    /// This provider's client id at the upstream.
    pub client_id: String,
    /// The client secret, sealed under the master key; never shown.
    #[serde(skip)]
    pub client_secret_sealed: Vec<u8>,
    /// Scopes asked of the upstream; always with `openid`.
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

/// Which claims of the upstream (ID token or userinfo) give the local account's username,
/// email address and name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClaimMapping {
    pub username: String,
    pub email: String,
    pub name: String,
}

impl Default for ClaimMapping {
    fn default() -> Self {
        Self {
            username: "preferred_username".into(),
            email: "email".into(),
            name: "name".into(),
        }
    }
}

impl ClaimMapping {
    fn validated(self) -> Result<Self, Invalid> {
        for claim in [&self.username, &self.email, &self.name] {
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
    pub issuer: String,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub jit: bool,
    pub trust_email: bool,
    pub claims: ClaimMapping,
    pub allowed_domains: Vec<String>,
    pub auto_link_domains: Vec<String>,
    pub allowed_clients: Vec<String>,
}

impl NewUpstream {
    /// Checks every field; adds `openid` to the scopes and keeps each scope and domain once.
    pub fn validated(mut self) -> Result<Self, Invalid> {
        parse_slug(&self.slug)?;
        self.display_name = self.display_name.trim().to_string();
        if self.display_name.is_empty() || self.display_name.chars().count() > 100 {
            return Err(Invalid::new("the display name must be 1 to 100 characters"));
        }
        parse_issuer(&self.issuer)?;
        if self.client_id.trim().is_empty() || self.client_id.len() > 255 {
            return Err(Invalid::new("the client id must be 1 to 255 characters"));
        }
        let mut scopes = vec!["openid".to_string()];
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
            issuer: issuer.into(),
            client_id: "idp".into(),
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
}
