//! This provider as a relying party of an upstream OpenID provider, on the `openidconnect`
//! crate: the discovery document read with the bounded outbound client at each step (issuer
//! checked, OIDC Discovery §4.3), the keys only at the callback; the code exchanged with PKCE,
//! the ID token verified (signature by the upstream's keys, `iss`, `aud`, `exp`, `nonce`),
//! claims from userinfo added when it answers for the same `sub` (OIDC Core §5.3.2), then read
//! through the provider's claim mapping.

use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreJsonWebKeySet, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope,
};
use secrecy::ExposeSecret;
use serde_json::{Map, Value};

use super::identity::{Answer, Identity, MAX_DOCUMENT_BYTES, Started, check_iss, fetch_json, http};
use crate::domain::upstream::Upstream;
use crate::manage::upstreams::{self, Discovered};
use crate::security::outbound;
use crate::services::Services;

type Rp = CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

/// This provider as the upstream's client, from its discovery document (read fresh at every
/// step, so a changed configuration or rotated key is known at once) and, to verify ID
/// tokens, its keys.
async fn configure(
    services: &Services,
    upstream: &Upstream,
    with_keys: bool,
) -> Result<(Rp, Discovered), String> {
    let (discovered, document) = upstreams::discovery_document(upstream).await?;
    let mut metadata: CoreProviderMetadata =
        serde_json::from_slice(&document).map_err(|e| format!("discovery document: {e}"))?;
    if with_keys {
        let http = outbound::client().map_err(|e| e.to_string())?;
        let uri = &discovered.jwks_uri;
        let keys = outbound::get(&http, uri, "application/json", MAX_DOCUMENT_BYTES)
            .await
            .map_err(|e| format!("{uri}: {e}"))?;
        let keys: CoreJsonWebKeySet = serde_json::from_slice(&keys).map_err(|e| format!("{uri}: {e}"))?;
        metadata = metadata.set_jwks(keys);
    }
    let secret = upstreams::client_secret(services, upstream).map_err(|e| e.to_string())?;
    let redirect =
        RedirectUrl::new(upstreams::redirect_uri(services, &upstream.slug)).map_err(|e| e.to_string())?;
    let rp = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(upstream.client_id.clone()),
        Some(ClientSecret::new(secret.expose_secret().to_string())),
    )
    .set_redirect_uri(redirect);
    Ok((rp, discovered))
}

/// The authorization request: code flow, PKCE S256, `state`, `nonce`, the provider's scopes.
pub(super) async fn authorization(services: &Services, upstream: &Upstream) -> Result<Started, String> {
    let (rp, _) = configure(services, upstream, false).await?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = rp
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(challenge);
    for scope in upstream.scopes.iter().filter(|s| *s != "openid") {
        request = request.add_scope(Scope::new(scope.clone()));
    }
    let (url, state, nonce) = request.url();
    Ok(Started {
        url,
        state: state.secret().clone(),
        nonce: nonce.secret().clone(),
        pkce_verifier: verifier.secret().clone(),
    })
}

/// The code exchanged, the ID token verified, the user's claims read.
pub(super) async fn identify(
    services: &Services,
    upstream: &Upstream,
    answer: Answer<'_>,
) -> Result<Identity, String> {
    let (rp, discovered) = configure(services, upstream, true).await?;
    check_iss(
        answer.iss,
        &upstream.issuer,
        discovered.authorization_response_iss_parameter_supported,
    )?;
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
    // Only the signed ID token says which session it is.
    let sid = claims.get("sid").and_then(Value::as_str).map(str::to_string);
    if let Some(endpoint) = discovered.userinfo_endpoint {
        // A provider whose userinfo fails still signed the user in: the ID token suffices.
        if let Ok(Value::Object(info)) = fetch_json(&endpoint, tokens.access_token().secret()).await {
            // OIDC Core §5.3.2: an answer about another subject is not used.
            if info.get("sub").and_then(Value::as_str) != Some(subject.as_str()) {
                return Err("userinfo answered for another subject".into());
            }
            claims.extend(info);
        }
    }
    Ok(Identity {
        sid,
        ..Identity::from_claims(issuer, subject, &claims, &upstream.claims)
    })
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
