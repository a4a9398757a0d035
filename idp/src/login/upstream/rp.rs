//! This provider as a relying party of an upstream OpenID provider, on the `openidconnect`
//! crate: the discovery document read with the bounded outbound client at each step (issuer
//! checked, OIDC Discovery §4.3), the keys (cached, [`keys`]) at the callback; the code
//! exchanged with PKCE, the ID token verified (signature by the upstream's keys, `iss`, `aud`,
//! `exp`, `nonce`), claims from userinfo added when it answers for the same `sub` (OIDC Core
//! §5.3.2), then read through the provider's claim mapping.

use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreJsonWebKeySet, CoreProviderMetadata};
use openidconnect::{
    AuthType, AuthorizationCode, ClientId, ClientSecret, CsrfToken, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
};
use secrecy::ExposeSecret;
use serde_json::{Map, Value};

use super::identity::{Answer, Identity, Started, check_iss, fetch_json, http};
use super::keys;
use crate::domain::upstream::{TokenAuth, Upstream};
use crate::manage::upstreams::{self, Discovered};
use crate::security::keys::Alg;
use crate::services::Services;

type Rp = CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

/// The upstream's discovery document, read fresh at every step (so a changed configuration is
/// known at once).
async fn discover(upstream: &Upstream) -> Result<(CoreProviderMetadata, Discovered), String> {
    let (discovered, document) = upstreams::discovery_document(upstream).await?;
    let metadata: CoreProviderMetadata =
        serde_json::from_slice(&document).map_err(|e| format!("discovery document: {e}"))?;
    Ok((metadata, discovered))
}

/// The client secret this provider authenticates with at the upstream's token endpoint (opened
/// from its sealed form once per step), or none when it signs assertions with its own key.
fn secret(services: &Services, upstream: &Upstream) -> Result<Option<ClientSecret>, String> {
    match upstream.token_auth {
        TokenAuth::ClientSecretBasic => {
            let secret = upstreams::client_secret(services, upstream).map_err(|e| e.to_string())?;
            Ok(Some(ClientSecret::new(secret.expose_secret().to_string())))
        }
        TokenAuth::PrivateKeyJwt => Ok(None),
    }
}

/// This provider as the upstream's client, as `metadata` describes the upstream (with its keys,
/// to verify ID tokens).
fn client(
    services: &Services,
    upstream: &Upstream,
    metadata: CoreProviderMetadata,
    secret: Option<ClientSecret>,
) -> Result<Rp, String> {
    let redirect =
        RedirectUrl::new(upstreams::redirect_uri(services, &upstream.slug)).map_err(|e| e.to_string())?;
    let client_id = ClientId::new(upstream.client_id.clone());
    let rp = match secret {
        Some(secret) => CoreClient::from_provider_metadata(metadata, client_id, Some(secret)),
        // The client id goes in the body beside the assertion (RFC 7523 §2.2).
        None => {
            CoreClient::from_provider_metadata(metadata, client_id, None).set_auth_type(AuthType::RequestBody)
        }
    };
    Ok(rp.set_redirect_uri(redirect))
}

/// The authorization request: code flow, PKCE S256, `state`, `nonce`, the provider's scopes.
pub(super) async fn authorization(services: &Services, upstream: &Upstream) -> Result<Started, String> {
    let rp = client(services, upstream, discover(upstream).await?.0, None)?;
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
    let (metadata, discovered) = discover(upstream).await?;
    let secret = secret(services, upstream)?;
    let rp = client(services, upstream, metadata.clone(), secret.clone())?;
    check_iss(
        answer.iss,
        &upstream.issuer,
        discovered.authorization_response_iss_parameter_supported,
    )?;
    let code = answer.code.ok_or("no code")?;
    let http = http()?;
    let mut exchange = rp
        .exchange_code(AuthorizationCode::new(code.to_string()))
        .map_err(|e| e.to_string())?
        .set_pkce_verifier(PkceCodeVerifier::new(answer.pkce_verifier.to_string()));
    if upstream.token_auth == TokenAuth::PrivateKeyJwt {
        exchange = exchange
            .add_extra_param("client_assertion_type", CLIENT_ASSERTION_TYPE)
            .add_extra_param(
                "client_assertion",
                client_assertion(services, upstream, &discovered)?,
            );
    }
    let tokens = exchange
        .request_async(&http)
        .await
        .map_err(|e| format!("code exchange failed: {e}"))?;
    let id_token = openidconnect::TokenResponse::id_token(&tokens).ok_or("no ID token")?;
    let compact = serde_json::to_value(id_token).unwrap_or_default();
    // The keys (cached; read again for a key the cached set lacks), then the ID token checked.
    let kid = compact
        .as_str()
        .and_then(|jwt| jsonwebtoken::decode_header(jwt).ok())
        .and_then(|header| header.kid);
    let keys = keys::key_set(&discovered.jwks_uri, kid.as_deref()).await?;
    let keys: CoreJsonWebKeySet =
        serde_json::from_slice(&keys).map_err(|e| format!("{}: {e}", discovered.jwks_uri))?;
    let verifier_rp = client(services, upstream, metadata.set_jwks(keys), secret)?;
    let verified = id_token
        .claims(
            &verifier_rp.id_token_verifier(),
            &Nonce::new(answer.nonce.to_string()),
        )
        .map_err(|e| format!("ID token refused: {e}"))?;
    let issuer = verified.issuer().as_str().to_string();
    let subject = verified.subject().as_str().to_string();
    let mut claims = payload(&compact).ok_or("the ID token's claims cannot be read")?;
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

/// RFC 7523 §2.2.
const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A `private_key_jwt` client assertion (OIDC Core §9, RFC 7523 §3): this provider's client
/// id as `iss` and `sub`, the upstream's token endpoint as `aud`, one minute, a fresh `jti`,
/// signed with this provider's own current key (published at `<issuer>/jwks`) in the first of
/// the algorithms the upstream accepts that this provider has.
fn client_assertion(
    services: &Services,
    upstream: &Upstream,
    discovered: &Discovered,
) -> Result<String, String> {
    let accepted = &discovered.token_endpoint_auth_signing_alg_values_supported;
    let alg = [Alg::ES256, Alg::PS256, Alg::RS256, Alg::EdDSA]
        .into_iter()
        .find(|alg| accepted.is_empty() || accepted.iter().any(|a| a == alg.as_str()))
        .ok_or("the provider accepts none of this provider's signing algorithms")?;
    let now = services.clock.now();
    let claims = serde_json::json!({
        "iss": upstream.client_id, "sub": upstream.client_id, "aud": discovered.token_endpoint,
        "iat": now.timestamp(), "exp": now.timestamp() + 60,
        "jti": crate::security::random::token::<16>().map_err(|e| e.to_string())?,
    });
    services
        .keys
        .current()
        .sign(alg, "JWT", &claims, now)
        .map_err(|e| e.to_string())
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
