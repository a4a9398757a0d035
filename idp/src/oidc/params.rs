//! Strict parsing of `application/x-www-form-urlencoded` parameters, for query strings and
//! request bodies: invalid percent-encoding, non-UTF-8 bytes and repeated parameters are
//! refused (RFC 6749 §3.1: "Request and response parameters MUST NOT be included more than
//! once"), except `resource`, which RFC 8707 §2 lets a client repeat. Parameters sent
//! without a value are treated as omitted (RFC 6749 §3.1).

use std::collections::HashMap;

/// The longest value any single parameter may have. Generous for `state`, `nonce` and
/// JWT-valued parameters; refuses abuse early.
pub const MAX_VALUE_BYTES: usize = 8192;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    #[error("parameter {0} is included more than once")]
    Repeated(String),
    #[error("the request has invalid percent-encoding")]
    BadEncoding,
    #[error("the request is not valid UTF-8")]
    NotUtf8,
    #[error("parameter {0} is too long")]
    TooLong(String),
}

/// RFC 8707 §2: the one parameter that may be given more than once.
const RESOURCE: &str = "resource";
/// Where the `resource` values are kept when stored (pushed requests): a key no parameter
/// can take, as [`Params::insert`] refuses it.
const RESOURCES_KEY: &str = "\u{0}resources";

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Params {
    #[serde(flatten)]
    values: HashMap<String, String>,
    #[serde(default, rename = "\u{0}resources", skip_serializing_if = "Vec::is_empty")]
    resources: Vec<String>,
}

impl Params {
    pub fn parse(raw: &[u8]) -> Result<Self, ParamError> {
        let mut params = Self::default();
        for pair in raw.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
            let (name, value) = match pair.iter().position(|b| *b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &b""[..]),
            };
            let name = decode(name)?;
            let value = decode(value)?;
            if value.is_empty() {
                continue;
            }
            if value.len() > MAX_VALUE_BYTES {
                return Err(ParamError::TooLong(name));
            }
            if name != RESOURCE && params.values.contains_key(&name) {
                return Err(ParamError::Repeated(name));
            }
            params.insert(&name, &value);
        }
        Ok(params)
    }

    /// The value of a parameter; of `resource`, the first.
    pub fn get(&self, name: &str) -> Option<&str> {
        if name == RESOURCE {
            return self.resources.first().map(String::as_str);
        }
        self.values.get(name).map(String::as_str)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Sets a parameter; a `resource` is added to those given.
    pub fn insert(&mut self, name: &str, value: &str) {
        match name {
            RESOURCE => self.resources.push(value.to_string()),
            RESOURCES_KEY => {}
            _ => {
                self.values.insert(name.to_string(), value.to_string());
            }
        }
    }

    /// Every `resource` given (RFC 8707 §2), in order.
    pub fn resources(&self) -> &[String] {
        &self.resources
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain(self.resources.iter().map(|v| (RESOURCE, v.as_str())))
    }
}

/// Requires a form-encoded POST body and parses it (token, introspection and revocation; RFC 6749 §3.2).
pub fn form_params(req: &actix_web::HttpRequest, body: &[u8]) -> Result<Params, super::error::OAuthError> {
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !content_type
        .to_ascii_lowercase()
        .starts_with("application/x-www-form-urlencoded")
    {
        return Err(super::error::OAuthError::invalid_request(
            "the request body must be application/x-www-form-urlencoded",
        ));
    }
    Params::parse(body).map_err(|e| super::error::OAuthError::invalid_request(e.to_string()))
}

/// Decodes `+` and `%XX`; anything else after a `%` is an error.
fn decode(raw: &[u8]) -> Result<String, ParamError> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = raw.get(i + 1..i + 3).ok_or(ParamError::BadEncoding)?;
                let text = std::str::from_utf8(hex).map_err(|_| ParamError::BadEncoding)?;
                out.push(u8::from_str_radix(text, 16).map_err(|_| ParamError::BadEncoding)?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| ParamError::NotUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_decoded() {
        let p = Params::parse(b"a=b+c&d=%2F%20x&empty=").unwrap_or_default();
        assert_eq!(p.get("a"), Some("b c"));
        assert_eq!(p.get("d"), Some("/ x"));
        assert!(!p.contains("empty"), "a parameter without a value is omitted");
    }

    #[test]
    fn repeated_parameters_are_refused() {
        assert_eq!(Params::parse(b"a=1&a=2"), Err(ParamError::Repeated("a".into())));
    }

    #[test]
    fn resource_may_be_repeated_and_survives_storage() {
        let p =
            Params::parse(b"resource=https%3A%2F%2Fa.example&scope=x&resource=urn%3Ab").unwrap_or_default();
        assert_eq!(p.resources(), ["https://a.example", "urn:b"]);
        let stored = serde_json::to_string(&p).unwrap_or_default();
        assert_eq!(serde_json::from_str::<Params>(&stored).ok(), Some(p));
        // A parameter cannot pose as the stored resources.
        let sneaky = Params::parse(b"%00resources=x").unwrap_or_default();
        assert!(sneaky.resources().is_empty() && sneaky.iter().next().is_none());
    }

    #[test]
    fn bad_percent_encoding_and_non_utf8_are_refused() {
        assert_eq!(Params::parse(b"a=%zz"), Err(ParamError::BadEncoding));
        assert_eq!(Params::parse(b"a=%4"), Err(ParamError::BadEncoding));
        assert_eq!(Params::parse(b"a=%ff%fe"), Err(ParamError::NotUtf8));
        assert_eq!(Params::parse(b"a=\xff"), Err(ParamError::NotUtf8));
    }

    #[test]
    fn oversized_values_are_refused() {
        let long = format!("state={}", "x".repeat(MAX_VALUE_BYTES + 1));
        assert_eq!(
            Params::parse(long.as_bytes()),
            Err(ParamError::TooLong("state".into()))
        );
    }
}
