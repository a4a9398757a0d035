//! Scope arithmetic (RFC 6749 §3.3): space-delimited, order-insensitive sets.

use std::collections::BTreeSet;

/// A set of scope values, kept sorted so that equal sets print equally.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scopes(BTreeSet<String>);

impl Scopes {
    /// Parses a `scope` parameter; `None` when a value is not a valid scope-token.
    pub fn parse(raw: &str) -> Option<Self> {
        let mut set = BTreeSet::new();
        for token in raw.split(' ').filter(|t| !t.is_empty()) {
            super::client::parse_scope_token(token).ok()?;
            set.insert(token.to_string());
        }
        Some(Self(set))
    }

    pub fn from_values<I: IntoIterator<Item = S>, S: Into<String>>(items: I) -> Self {
        Self(items.into_iter().map(Into::into).collect())
    }

    pub fn contains(&self, scope: &str) -> bool {
        self.0.contains(scope)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn is_subset(&self, other: &Scopes) -> bool {
        self.0.is_subset(&other.0)
    }

    /// The values of `self` that `allowed` permits.
    pub fn intersect(&self, allowed: &[String]) -> Scopes {
        Self(self.0.iter().filter(|s| allowed.contains(s)).cloned().collect())
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    pub fn to_vec(&self) -> Vec<String> {
        self.0.iter().cloned().collect()
    }
}

impl std::fmt::Display for Scopes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.iter().map(String::as_str).collect::<Vec<_>>().join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_sets_printed_in_order() {
        let s = Scopes::parse("openid  email openid profile").unwrap_or_default();
        assert_eq!(s.to_string(), "email openid profile");
    }

    #[test]
    fn invalid_scope_tokens_are_refused() {
        assert!(Scopes::parse("openid \"bad").is_none());
    }

    #[test]
    fn intersection_keeps_only_allowed_values() {
        let s = Scopes::parse("openid email admin").unwrap_or_default();
        assert_eq!(
            s.intersect(&["openid".into(), "email".into()]).to_string(),
            "email openid"
        );
        assert!(Scopes::parse("email").unwrap_or_default().is_subset(&s));
    }
}
