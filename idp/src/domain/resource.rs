//! Resource servers (RFC 8707): the APIs that accept this provider's access tokens. A token
//! asked for with `resource` names that API alone in its `aud`, so it is refused by every
//! other API that trusts this provider.

use chrono::{DateTime, Utc};
use url::Url;

use super::Invalid;
use super::client::parse_scope_token;
use super::scope::Scopes;

/// The longest identifier accepted: URIs longer than this are not API addresses.
const MAX_IDENTIFIER_BYTES: usize = 2048;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceServer {
    /// Its resource indicator: an absolute URI without fragment, compared as a string.
    pub identifier: String,
    /// The scopes it accepts; its tokens carry only those. Empty: every granted scope.
    pub scopes: Vec<String>,
    /// The client it authenticates with at the introspection endpoint, if any: to it,
    /// tokens meant for other audiences are inactive.
    pub client_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl ResourceServer {
    /// The part of `granted` this resource accepts.
    pub fn accepted(&self, granted: &Scopes) -> Scopes {
        if self.scopes.is_empty() {
            return granted.clone();
        }
        granted.intersect(&self.scopes)
    }
}

/// What an operator registers.
#[derive(Debug, Clone)]
pub struct NewResourceServer {
    pub identifier: String,
    pub scopes: Vec<String>,
    pub client_id: Option<String>,
}

impl NewResourceServer {
    /// Checks the identifier and scopes, and keeps each scope once.
    pub fn parse(identifier: &str, scopes: &[String], client_id: Option<String>) -> Result<Self, Invalid> {
        let identifier = parse_identifier(identifier)?;
        let mut parsed = Vec::with_capacity(scopes.len());
        for scope in scopes {
            let scope = parse_scope_token(scope)?;
            if !parsed.contains(&scope) {
                parsed.push(scope);
            }
        }
        Ok(Self {
            identifier,
            scopes: parsed,
            client_id: client_id.filter(|c| !c.trim().is_empty()),
        })
    }
}

/// RFC 8707 §2: "an absolute URI … MUST NOT include a fragment component". Kept exactly as
/// given: tokens and requests compare it as a string.
pub fn parse_identifier(raw: &str) -> Result<String, Invalid> {
    if raw.len() > MAX_IDENTIFIER_BYTES {
        return Err(Invalid::new("a resource identifier is at most 2048 bytes"));
    }
    if raw.contains('#') {
        return Err(Invalid::new(format!(
            "resource {raw:?} must not have a fragment (RFC 8707 §2)"
        )));
    }
    if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Invalid::new(format!("resource {raw:?} is not a URI")));
    }
    Url::parse(raw).map_err(|e| Invalid::new(format!("resource {raw:?} is not an absolute URI: {e}")))?;
    Ok(raw.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_absolute_uris_without_fragment() {
        assert!(parse_identifier("https://api.example.com/orders").is_ok());
        assert!(parse_identifier("urn:example:api").is_ok());
        assert!(parse_identifier("/orders").is_err());
        assert!(parse_identifier("api.example.com").is_err());
        assert!(parse_identifier("https://api.example.com/#x").is_err());
        assert!(parse_identifier("https://api.example.com/ x").is_err());
        assert!(parse_identifier(&format!("https://a.example/{}", "x".repeat(2048))).is_err());
    }

    #[test]
    fn a_resource_accepts_only_its_scopes() {
        let granted = Scopes::parse("openid orders:read orders:write").unwrap_or_default();
        let api = ResourceServer {
            identifier: "https://api.example".into(),
            scopes: vec!["orders:read".into(), "billing".into()],
            client_id: None,
            created_at: Utc::now(),
        };
        assert_eq!(api.accepted(&granted).to_string(), "orders:read");
        let open = ResourceServer {
            scopes: vec![],
            ..api
        };
        assert_eq!(open.accepted(&granted), granted);
    }

    #[test]
    fn scopes_are_checked_and_kept_once() {
        let new = NewResourceServer::parse("https://api.example", &["a".into(), "a".into()], None);
        assert_eq!(new.map(|n| n.scopes), Ok(vec!["a".to_string()]));
        assert!(NewResourceServer::parse("https://api.example", &["a b".into()], None).is_err());
    }
}
