//! This provider as the client of a plain OAuth 2.0 provider (GitHub-style), on the `oauth2`
//! crate: the code flow with `state` and PKCE S256 (RFC 6749 §4.1, RFC 7636; a provider
//! without PKCE ignores it), the code exchanged at its token endpoint, and the user read from
//! its user API with the access token. There is no ID token: the identity is the provider's
//! configured issuer and the answer's subject claim (GitHub: the numeric `id`, never reused).
//! The address is the primary one of its address list when it has one (GitHub's
//! `/user/emails`, whose `verified` flag is the only proof of the address), and otherwise the
//! user API's, unverified unless it says `email_verified`. Mix-up defence: each provider has its
//! own redirect URI and the callback only continues a flow started for that provider
//! (RFC 9700 §4.4.2); `iss`, if the provider sends it, is checked as well (RFC 9207).

use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, PkceCodeChallenge, PkceCodeVerifier,
    RedirectUrl, Scope, TokenResponse, TokenUrl,
};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::Value;

use super::identity::{Answer, Identity, Started, check_iss, fetch_json, http, text};
use crate::domain::upstream::{OAuth2Endpoints, Upstream};
use crate::manage::upstreams;
use crate::services::Services;

type Client = BasicClient<
    oauth2::EndpointSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointSet,
>;

fn client(services: &Services, upstream: &Upstream, endpoints: &OAuth2Endpoints) -> Result<Client, String> {
    let secret = upstreams::client_secret(services, upstream).map_err(|e| e.to_string())?;
    let redirect =
        RedirectUrl::new(upstreams::redirect_uri(services, &upstream.slug)).map_err(|e| e.to_string())?;
    Ok(BasicClient::new(ClientId::new(upstream.client_id.clone()))
        .set_client_secret(ClientSecret::new(secret.expose_secret().to_string()))
        .set_auth_uri(AuthUrl::new(endpoints.authorization_endpoint.clone()).map_err(|e| e.to_string())?)
        .set_token_uri(TokenUrl::new(endpoints.token_endpoint.clone()).map_err(|e| e.to_string())?)
        .set_redirect_uri(redirect))
}

/// The authorization request: code flow, PKCE S256, `state`, the provider's scopes.
pub(super) fn authorization(
    services: &Services,
    upstream: &Upstream,
    endpoints: &OAuth2Endpoints,
) -> Result<Started, String> {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let client = client(services, upstream, endpoints)?;
    let mut request = client
        .authorize_url(CsrfToken::new_random)
        .set_pkce_challenge(challenge);
    for scope in &upstream.scopes {
        request = request.add_scope(Scope::new(scope.clone()));
    }
    let (url, state) = request.url();
    Ok(Started {
        url,
        state: state.secret().clone(),
        nonce: String::new(),
        pkce_verifier: verifier.secret().clone(),
    })
}

/// One of the user's addresses in an address list (GitHub's `/user/emails`).
#[derive(Deserialize)]
struct ListedEmail {
    email: String,
    #[serde(default)]
    primary: bool,
    #[serde(default)]
    verified: bool,
}

/// The code exchanged, the user read from the provider's user API.
pub(super) async fn identify(
    services: &Services,
    upstream: &Upstream,
    endpoints: &OAuth2Endpoints,
    answer: Answer<'_>,
) -> Result<Identity, String> {
    check_iss(answer.iss, &upstream.issuer, false)?;
    let code = answer.code.ok_or("no code")?;
    let tokens = client(services, upstream, endpoints)?
        .exchange_code(AuthorizationCode::new(code.to_string()))
        .set_pkce_verifier(PkceCodeVerifier::new(answer.pkce_verifier.to_string()))
        .request_async(&http()?)
        .await
        .map_err(|e| format!("code exchange failed: {e}"))?;
    let access_token = tokens.access_token().secret();
    let Value::Object(mut claims) = fetch_json(&endpoints.userinfo_endpoint, access_token).await? else {
        return Err("the user API's answer is not a JSON object".into());
    };
    let mapping = &upstream.claims;
    let subject = text(&claims, &mapping.subject)
        .ok_or_else(|| format!("the user API's answer has no {:?}", mapping.subject))?;
    if let Some(endpoint) = &endpoints.emails_endpoint {
        let listed: Vec<ListedEmail> = serde_json::from_value(fetch_json(endpoint, access_token).await?)
            .map_err(|e| format!("{endpoint}: {e}"))?;
        // The primary address, verified or not as the list says; none: no address.
        claims.remove(&mapping.email);
        claims.remove("email_verified");
        if let Some(primary) = listed.into_iter().find(|e| e.primary) {
            claims.insert(mapping.email.clone(), Value::String(primary.email));
            claims.insert("email_verified".into(), Value::Bool(primary.verified));
        }
    }
    let mut identity = Identity::from_claims(upstream.issuer.clone(), subject, &claims, mapping);
    // How the user signed in there is only known from an ID token; an API's say-so is not taken.
    identity.amr.clear();
    identity.acr = None;
    Ok(identity)
}
