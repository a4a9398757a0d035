//! This provider as a relying party of an upstream OpenID provider, on the `openidconnect`
//! crate: the discovery document and keys read once per step with the bounded outbound client
//! (issuer checked, OIDC Discovery §4.3), the code exchanged with PKCE, the ID token verified
//! (signature by the upstream's keys, `iss`, `aud`, `exp`, `nonce`), claims from userinfo
//! added when it answers for the same `sub` (OIDC Core §5.3.2), then read through the
//! provider's claim mapping.

use openidconnect::core::{CoreClient, CoreJsonWebKeySet, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, Nonce, OAuth2TokenResponse, PkceCodeVerifier, RedirectUrl,
};
use secrecy::ExposeSecret;
use serde_json::{Map, Value};

use crate::domain::upstream::{ClaimMapping, Upstream};
use crate::manage::upstreams;
use crate::security::outbound;
use crate::services::Services;

/// The largest key set and userinfo answer read.
const MAX_DOCUMENT_BYTES: usize = 256 * 1024;

pub(super) type Rp = CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

/// The upstream, as its discovery document describes it.
pub(super) struct Configured {
    pub rp: Rp,
    /// RFC 9207: it puts `iss` in its authorization responses.
    pub sends_iss: bool,
    pub userinfo_endpoint: Option<String>,
}

/// The HTTP client of the code exchange: the outbound timeout, no redirects.
pub(super) fn http() -> Result<openidconnect::reqwest::Client, String> {
    openidconnect::reqwest::Client::builder()
        .timeout(outbound::TIMEOUT)
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())
}

/// This provider as the upstream's client: one fetch of its discovery document and one of
/// its keys (fresh at every sign-in, so a rotated key is known at once).
pub(super) async fn configure(services: &Services, upstream: &Upstream) -> Result<Configured, String> {
    let (discovered, document) = upstreams::discovery_document(upstream).await?;
    let metadata: CoreProviderMetadata =
        serde_json::from_slice(&document).map_err(|e| format!("discovery document: {e}"))?;
    let http = outbound::client().map_err(|e| e.to_string())?;
    let keys = outbound::get(
        &http,
        &discovered.jwks_uri,
        "application/json",
        MAX_DOCUMENT_BYTES,
    )
    .await
    .map_err(|e| format!("{}: {e}", discovered.jwks_uri))?;
    let keys: CoreJsonWebKeySet =
        serde_json::from_slice(&keys).map_err(|e| format!("{}: {e}", discovered.jwks_uri))?;
    let secret = upstreams::client_secret(services, upstream).map_err(|e| e.to_string())?;
    let redirect =
        RedirectUrl::new(upstreams::redirect_uri(services, &upstream.slug)).map_err(|e| e.to_string())?;
    let rp = CoreClient::from_provider_metadata(
        metadata.set_jwks(keys),
        ClientId::new(upstream.client_id.clone()),
        Some(ClientSecret::new(secret.expose_secret().to_string())),
    )
    .set_redirect_uri(redirect);
    Ok(Configured {
        rp,
        sends_iss: discovered.authorization_response_iss_parameter_supported,
        userinfo_endpoint: discovered.userinfo_endpoint,
    })
}

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
}

/// What the callback brought and the sign-in's own secrets.
pub(super) struct Answer<'a> {
    pub code: Option<&'a str>,
    pub iss: Option<&'a str>,
    pub nonce: &'a str,
    pub pkce_verifier: &'a str,
}

/// The code exchanged, the ID token verified, the user's claims read.
pub(super) async fn identify(
    services: &Services,
    upstream: &Upstream,
    answer: Answer<'_>,
) -> Result<Identity, String> {
    let Configured {
        rp,
        sends_iss,
        userinfo_endpoint,
    } = configure(services, upstream).await?;
    // RFC 9207 §2.4: the `iss` of the response is this provider's issuer, and required when
    // it says it sends one (a mix-up attack sends the code to the wrong provider).
    match (answer.iss, sends_iss) {
        (Some(iss), _) if iss != upstream.issuer => return Err(format!("iss {iss:?} is another issuer's")),
        (None, true) => return Err("the response lacks iss".into()),
        _ => {}
    }
    let code = answer.code.ok_or("no code")?;
    let http = http()?;
    let tokens = rp
        .exchange_code(AuthorizationCode::new(code.to_string()))
        .map_err(|e| e.to_string())?
        .set_pkce_verifier(PkceCodeVerifier::new(answer.pkce_verifier.to_string()))
        .request_async(&http)
        .await
        .map_err(|e| format!("code exchange failed: {e}"))?;
    let id_token = openidconnect::TokenResponse::id_token(&tokens).ok_or("no ID token")?;
    let verified = id_token
        .claims(&rp.id_token_verifier(), &Nonce::new(answer.nonce.to_string()))
        .map_err(|e| format!("ID token refused: {e}"))?;
    let issuer = verified.issuer().as_str().to_string();
    let subject = verified.subject().as_str().to_string();
    let mut claims = payload(&serde_json::to_value(id_token).unwrap_or_default())
        .ok_or("the ID token's claims cannot be read")?;
    if let Some(endpoint) = userinfo_endpoint {
        let info = userinfo(&endpoint, tokens.access_token().secret()).await;
        match info {
            // OIDC Core §5.3.2: an answer about another subject is not used.
            Some(info) if info.get("sub").and_then(Value::as_str) == Some(subject.as_str()) => {
                claims.extend(info);
            }
            Some(_) => return Err("userinfo answered for another subject".into()),
            None => {}
        }
    }
    Ok(Identity::from_claims(issuer, subject, &claims, &upstream.claims))
}

/// The claims of a compact JWT already verified.
fn payload(compact: &Value) -> Option<Map<String, Value>> {
    use base64::Engine;
    let body = compact.as_str()?.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(body)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The userinfo endpoint's JSON answer, if it gives one (a signed answer is not read).
async fn userinfo(endpoint: &str, access_token: &str) -> Option<Map<String, Value>> {
    let http = outbound::client().ok()?;
    let request = http
        .get(endpoint)
        .bearer_auth(access_token)
        .header("accept", "application/json");
    let body = outbound::send(request, MAX_DOCUMENT_BYTES).await.ok()?;
    serde_json::from_slice(&body).ok()
}

impl Identity {
    /// The identity from the upstream's claims, read through `mapping`.
    pub(super) fn from_claims(
        issuer: String,
        subject: String,
        claims: &Map<String, Value>,
        mapping: &ClaimMapping,
    ) -> Self {
        let text = |name: &str| match claims.get(name) {
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
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
            email: text(&mapping.email),
            email_verified,
            username: text(&mapping.username),
            name: text(&mapping.name),
            acr: text("acr"),
            amr,
            issuer,
            subject,
        }
    }
}
