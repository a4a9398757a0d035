//! The authorization code grant's token request (RFC 6749 §4.1.3, RFC 7636 §4.5–4.6,
//! OIDC Core §3.1.3.2).

use super::{Authentication, active_user, issues_refresh_token, new_refresh_token, user_tokens};
use crate::audit::{EventType, Outcome, SecurityEvent};
use crate::domain::client::{Client, ClientType};
use crate::domain::grant::{AuthorizationCode, CodeUse};
use crate::domain::scope::Scopes;
use crate::http::meta::RequestMeta;
use crate::manage::record;
use crate::oidc::dpop::Proof;
use crate::oidc::error::OAuthError;
use crate::oidc::params::Params;
use crate::oidc::pkce;
use crate::oidc::resources;
use crate::oidc::token::TokenResponse;
use crate::services::Services;

pub async fn exchange(
    services: &Services,
    client: &Client,
    params: &Params,
    meta: &RequestMeta,
    dpop: Option<&Proof>,
) -> Result<TokenResponse, OAuthError> {
    let code = params
        .get("code")
        .ok_or_else(|| OAuthError::invalid_request("the code parameter is missing"))?;
    let now = services.clock.now();
    let code_hash = services.tokens.hash(code);
    // Everything the request must match is checked before the code is touched: a code sent
    // by the wrong client, with the wrong redirect URI or without its PKCE verifier is
    // refused with no side effect (neither burned nor counted as a replay).
    let code = services
        .store
        .find_code(&code_hash)
        .await?
        .ok_or_else(|| OAuthError::invalid_grant("the code is invalid"))?;
    check_binding(client, &code, params)?;
    if code.consumed_at.is_some() {
        return Err(replayed(services, client, &code, meta).await);
    }
    if code.expires_at <= now {
        return Err(OAuthError::invalid_grant("the code has expired"));
    }
    active_user(services, &code.user_id).await?;
    // The grant as it stands before the code is consumed: a concurrent replay revokes it
    // after this request has won, and the tokens issued here die with it (deny-list,
    // revoked family), as RFC 6749 §4.1.2 asks.
    let grant = services
        .store
        .find_grant(&code.grant_id)
        .await?
        .filter(|g| g.revoked_at.is_none())
        .ok_or_else(|| OAuthError::invalid_grant("the grant has been revoked"))?;
    let dpop_jkt = dpop.map(|p| p.jkt.as_str());
    // RFC 9449 §10: a code requested with dpop_jkt is redeemed only with a proof by that key.
    if grant
        .dpop_jkt
        .as_deref()
        .is_some_and(|bound| dpop_jkt != Some(bound))
    {
        return Err(OAuthError::invalid_grant(
            "the code is bound to a DPoP key this request does not prove",
        ));
    }
    // RFC 8707 §2.2: the token is for the granted resources, or those of them asked for.
    let scope = Scopes::parse(&code.scope).unwrap_or_default();
    let resources = resources::narrowed(params, client, &grant.resources)?;
    let target = resources::target(services, client, resources, &scope).await?;
    // One conditional update decides which of concurrent redemptions wins.
    let code = match services.store.consume_code(&code_hash, now).await? {
        CodeUse::First(code) => code,
        CodeUse::Unknown => return Err(OAuthError::invalid_grant("the code is invalid")),
        CodeUse::Replayed(code) => return Err(replayed(services, client, &code, meta).await),
    };
    // RFC 9449 §5: a public client's refresh tokens are bound to the key of its first proof.
    if let Some(jkt) = dpop_jkt
        && grant.dpop_jkt.is_none()
        && client.client_type == ClientType::Public
    {
        services.store.bind_grant_dpop_key(&grant.id, jkt).await?;
    }
    let refresh = if issues_refresh_token(client, &scope) {
        let (token, record) = new_refresh_token(services, &grant, &scope, 1, None, now)?;
        services.store.insert_refresh_token(&record).await?;
        Some(token)
    } else {
        None
    };
    let auth = Authentication {
        user_id: &code.user_id,
        sid: Some(&code.session_id),
        auth_time: code.auth_time,
        amr: &code.amr,
        nonce: code.nonce.as_deref(),
        dpop_jkt,
    };
    user_tokens(services, client, &grant, &scope, &target, &auth, refresh, now)
}

/// RFC 6749 §4.1.3 and RFC 7636 §4.6: the code's client, redirect URI and PKCE verifier.
fn check_binding(client: &Client, code: &AuthorizationCode, params: &Params) -> Result<(), OAuthError> {
    if code.client_id != client.id {
        return Err(OAuthError::invalid_grant("the code was issued to another client"));
    }
    // §4.1.3: redirect_uri is REQUIRED when the authorization request included one (the
    // code then holds it; it holds "" when the request named none) and must be identical.
    match params.get("redirect_uri") {
        Some(uri) if uri == code.redirect_uri => {}
        Some(uri)
            if code.redirect_uri.is_empty() && client.redirect_uris.iter().any(|r| r.as_str() == uri) => {}
        None if code.redirect_uri.is_empty() => {}
        None => {
            return Err(OAuthError::invalid_request(
                "redirect_uri is required: the authorization request carried one",
            ));
        }
        Some(_) => {
            return Err(OAuthError::invalid_grant(
                "redirect_uri does not match the authorization request",
            ));
        }
    }
    match (&code.code_challenge, params.get("code_verifier")) {
        (Some(challenge), Some(verifier)) if pkce::verify_s256(verifier, challenge) => Ok(()),
        (Some(_), _) => Err(OAuthError::invalid_grant("PKCE verification failed")),
        // RFC 9700 §2.1.1: a verifier without a challenge signals a downgrade attempt.
        (None, Some(_)) => Err(OAuthError::invalid_grant(
            "no code_challenge was sent with the authorization request",
        )),
        (None, None) => Ok(()),
    }
}

/// RFC 6749 §4.1.2: a code used twice, by its own client with its own binding, revokes
/// everything issued from it.
async fn replayed(
    services: &Services,
    client: &Client,
    code: &AuthorizationCode,
    meta: &RequestMeta,
) -> OAuthError {
    let now = services.clock.now();
    metrics::counter!("idp_code_reuse_total").increment(1);
    let revoked =
        match crate::oidc::revocation::revoke_grant(services, &code.grant_id, Some(client), now).await {
            Ok(revoked) => revoked,
            Err(e) => return e,
        };
    let mut event = SecurityEvent::new(EventType::CodeReuseDetected, Outcome::Failure, now);
    event.client_id = Some(client.id.clone());
    event.user_id = Some(code.user_id.clone());
    event.details = serde_json::json!({ "grant_id": code.grant_id, "tokens_revoked": revoked });
    record(services, meta.stamp(event)).await;
    OAuthError::invalid_grant("the code has already been used")
}
