//! First start: make sure an administrator and signing keys exist.

use secrecy::{ExposeSecret, SecretString};

use api_types::{ACCOUNT_CLIENT_ID, PORTAL_CLIENT_ID};

use super::users::{AddUser, add_user};
use super::{Actor, ManageError, clients};
use crate::domain::client::{ClientType, GrantType, NewClient, RedirectUri};
use crate::security::random;
use crate::services::Services;

pub const BOOTSTRAP_ADMIN: &str = "admin";

/// Creates the `admin` user when no active administrator exists. The password comes from
/// `bootstrap_admin_password`, or is random and printed once on standard error.
pub async fn ensure_admin(services: &Services) -> Result<(), ManageError> {
    if services.store.admin_exists().await? {
        return Ok(());
    }
    let (password, generated) = match &services.settings.bootstrap_admin_password {
        Some(p) => (p.clone(), false),
        None => {
            let p = random::token::<18>().map_err(|e| ManageError::Internal(e.to_string()))?;
            (SecretString::from(p), true)
        }
    };
    let request = AddUser {
        username: BOOTSTRAP_ADMIN.into(),
        email: None,
        name: Some("Administrator".into()),
        password: password.clone(),
        admin: true,
    };
    match add_user(services, request, Actor::System).await {
        Ok(user) => {
            tracing::warn!(user_id = %user.id, "no administrator existed: created user `admin`");
            if generated {
                // Printed once, to the operator's terminal or container log, never stored anywhere.
                eprintln!(
                    "\n==== First start: administrator created ====\n  username: admin\n  password: {}\n  Change it after logging in. This password is not shown again.\n============================================\n",
                    password.expose_secret()
                );
            }
            Ok(())
        }
        // Another replica created it first.
        Err(ManageError::Conflict(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Registers the server's own OIDC clients, or brings their URIs in line with the issuer:
/// the admin portal (public, authorization code with PKCE, redirecting to `/admin/callback`)
/// and the account page (the same, redirecting to `/account/callback`).
pub async fn ensure_builtin_clients(services: &Services) -> Result<(), ManageError> {
    ensure_client(services, PORTAL_CLIENT_ID, portal_client(services)?).await?;
    ensure_client(services, ACCOUNT_CLIENT_ID, account_client(services)?).await
}

async fn ensure_client(services: &Services, id: &str, new: NewClient) -> Result<(), ManageError> {
    match services.store.find_client(id).await? {
        Some(current)
            if current.redirect_uris == new.redirect_uris
                && current.post_logout_redirect_uris == new.post_logout_redirect_uris =>
        {
            Ok(())
        }
        Some(_) => clients::update(services, id, new, Actor::System)
            .await
            .map(|_| ()),
        None => match clients::register_as(services, id.into(), new, Actor::System).await {
            // Another replica registered it first.
            Ok(_) | Err(ManageError::Conflict(_)) => Ok(()),
            Err(e) => Err(e),
        },
    }
}

/// The account page: a server-side public client that asks only for the user's identity
/// and keeps no refresh token (the browser's login session renews its access silently).
fn account_client(services: &Services) -> Result<NewClient, ManageError> {
    let issuer = services.settings.issuer_str();
    let uri = |path: &str| RedirectUri::parse(&format!("{issuer}{path}"), ClientType::Public);
    Ok(NewClient {
        name: "Your account".into(),
        redirect_uris: vec![uri("/account/callback")?],
        post_logout_redirect_uris: vec![uri("/account")?],
        grant_types: vec![GrantType::AuthorizationCode],
        scopes: ["openid", "profile", "email"].map(String::from).to_vec(),
        refresh_idle_ttl_s: None,
        refresh_token_ttl_s: None,
        // Short: every change of role or status is re-checked at the next sign-in anyway.
        access_token_ttl_s: Some(600),
        ..portal_client(services)?
    })
}

fn portal_client(services: &Services) -> Result<NewClient, ManageError> {
    let issuer = services.settings.issuer_str();
    let uri = |path: &str| RedirectUri::parse(&format!("{issuer}{path}"), ClientType::Public);
    Ok(NewClient {
        name: "Admin portal".into(),
        client_type: ClientType::Public,
        redirect_uris: vec![uri("/admin/callback")?],
        post_logout_redirect_uris: vec![uri("/admin/")?],
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        // offline_access: the portal gets the rotating refresh tokens docs/admin.md describes.
        scopes: ["openid", "profile", "email", "offline_access"]
            .map(String::from)
            .to_vec(),
        first_party: true,
        refresh_reuse_window_s: 10,
        require_pkce: true,
        refresh_idle_ttl_s: Some(3600),
        id_token_signed_response_alg: "ES256".into(),
        access_token_signing_alg: None,
        backchannel_logout_uri: None,
        token_endpoint_auth_method: None,
        jwks: None,
        jwks_uri: None,
        require_par: false,
        dpop_bound_access_tokens: false,
        profile: None,
        resources: vec![],
        access_token_ttl_s: None,
        refresh_token_ttl_s: Some(8 * 3600),
        rate_limit_token_per_minute: None,
        rate_limit_introspect_per_minute: None,
        mfa: None,
        require_verified_email: false,
    })
}
