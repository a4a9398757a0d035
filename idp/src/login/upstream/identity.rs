//! What both kinds of upstream share: who signed in there ([`Identity`], read through the
//! provider's claim mapping), what the callback brought ([`Answer`]), the `iss` check of
//! RFC 9207, and the bounded HTTP of the code exchange and the user API.

use serde_json::{Map, Value};

use crate::domain::upstream::ClaimMapping;
use crate::security::outbound;

/// The largest key set, user API or address list answer read.
pub(super) const MAX_DOCUMENT_BYTES: usize = 256 * 1024;

/// Who the upstream says signed in.
#[derive(Debug, Clone)]
pub(super) struct Identity {
    pub issuer: String,
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub username: Option<String>,
    pub name: Option<String>,
    /// How the user authenticated there (RFC 8176 values of its ID token), and its class.
    pub amr: Vec<String>,
    pub acr: Option<String>,
    /// Its session id there (the ID token's `sid`), named by its back-channel logout tokens.
    pub sid: Option<String>,
}

/// What the callback brought and the sign-in's own secrets.
pub(super) struct Answer<'a> {
    pub code: Option<&'a str>,
    pub iss: Option<&'a str>,
    /// Empty for plain OAuth 2.0 (no ID token to carry it).
    pub nonce: &'a str,
    pub pkce_verifier: &'a str,
}

/// Where the sign-in at the upstream starts, and the secrets its callback must match.
pub(super) struct Started {
    pub url: url::Url,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

/// RFC 9207 §2.4: the `iss` of an authorization response is the provider's issuer, and
/// required when the provider says it sends one (a mix-up attack sends the code to the wrong
/// provider).
pub(super) fn check_iss(iss: Option<&str>, issuer: &str, required: bool) -> Result<(), String> {
    match iss {
        Some(iss) if iss != issuer => Err(format!("iss {iss:?} is another issuer's")),
        None if required => Err("the response lacks iss".into()),
        _ => Ok(()),
    }
}

/// The HTTP client of the code exchange: the outbound timeout and user agent, no redirects.
pub(super) fn http() -> Result<openidconnect::reqwest::Client, String> {
    openidconnect::reqwest::Client::builder()
        .timeout(outbound::TIMEOUT)
        .user_agent(outbound::USER_AGENT)
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())
}

/// The JSON answer of a user API (userinfo, GitHub's `/user` or `/user/emails`) for the
/// access token; a signed userinfo answer is not read.
pub(super) async fn fetch_json(endpoint: &str, access_token: &str) -> Result<Value, String> {
    let http = outbound::client().map_err(|e| e.to_string())?;
    let request = http
        .get(endpoint)
        .bearer_auth(access_token)
        .header("accept", "application/json");
    let body = outbound::send(request, MAX_DOCUMENT_BYTES)
        .await
        .map_err(|e| format!("{endpoint}: {e}"))?;
    serde_json::from_slice(&body).map_err(|e| format!("{endpoint}: {e}"))
}

impl Identity {
    /// The identity from the upstream's claims, read through `mapping`.
    pub(super) fn from_claims(
        issuer: String,
        subject: String,
        claims: &Map<String, Value>,
        mapping: &ClaimMapping,
    ) -> Self {
        let email_verified = match claims.get("email_verified") {
            Some(Value::Bool(b)) => *b,
            // Some providers send it as a string.
            Some(Value::String(s)) => s == "true",
            _ => false,
        };
        let amr = claims
            .get("amr")
            .and_then(Value::as_array)
            .map(|methods| {
                methods
                    .iter()
                    .filter_map(Value::as_str)
                    .filter(|m| crate::domain::mfa::amr::is_registered(m))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        Self {
            email: text(claims, &mapping.email),
            email_verified,
            username: text(claims, &mapping.username),
            name: text(claims, &mapping.name),
            acr: text(claims, "acr"),
            sid: None,
            amr,
            issuer,
            subject,
        }
    }
}

/// A claim as text: a non-empty string, or a number (GitHub's user `id`).
pub(super) fn text(claims: &Map<String, Value>, name: &str) -> Option<String> {
    match claims.get(name) {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}
