//! Which local account an upstream identity signs in to. An identity (`iss` + `sub`, never an
//! email address) is linked to at most one account. An unlinked identity is linked only:
//! - after the user proves the local account here (password and every factor it has), in the
//!   same browser that signed in upstream (the login page in "link" mode, then
//!   [`complete_link`]);
//! - or automatically, when the provider is trusted for the domain of a verified address
//!   (`auto_link_domains`, with `trust_email`): explicit configuration for a provider that
//!   owns that domain, such as the organisation's own tenant.
//!
//! Otherwise, with just-in-time provisioning, an identity whose verified address no account
//! has gets a new account. An unverified address is never matched against accounts (it could
//! be anyone's, and matching it would tell who has an account).

use chrono::{DateTime, Utc};

use super::identity::Identity;
use crate::audit::{EventType, Outcome, SecurityEvent};
use crate::domain::mfa::amr;
use crate::domain::upstream::{FederatedIdentity, Upstream};
use crate::domain::user::{Email, NewUser, User, UserStatus, Username};
use crate::http::meta::RequestMeta;
use crate::login::interaction::PendingLink;
use crate::manage::record;
use crate::services::Services;
use crate::store::StoreError;

/// Where an upstream sign-in leads.
pub(super) enum Account {
    /// The account to sign in to.
    Ready(User),
    /// No account is linked: the user may prove one here to link it.
    Prove,
}

const UNAVAILABLE: &str = "Signing in is not possible right now; try again.";

pub(super) async fn account_for(
    services: &Services,
    upstream: &Upstream,
    identity: &Identity,
    meta: &RequestMeta,
    now: DateTime<Utc>,
) -> Result<Account, String> {
    let store = &services.store;
    if let Some(linked) = store
        .find_identity(&identity.issuer, &identity.subject)
        .await
        .map_err(|_| UNAVAILABLE)?
    {
        let user = store
            .find_user(linked.user_id)
            .await
            .map_err(|_| UNAVAILABLE)?
            .filter(|u| u.status == UserStatus::Active)
            .ok_or("This account is disabled.")?;
        let _ = store
            .touch_identity(&identity.issuer, &identity.subject, now)
            .await;
        return Ok(Account::Ready(user));
    }
    let email = identity
        .email
        .as_deref()
        .map(Email::parse)
        .transpose()
        .map_err(|_| "The provider gave no usable email address.".to_string())?;
    let domain = email
        .as_ref()
        .and_then(|e| e.as_str().rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase()));
    if !upstream.allowed_domains.is_empty()
        && !domain
            .as_ref()
            .is_some_and(|d| upstream.allowed_domains.contains(d))
    {
        return Err("Your email domain may not sign in here.".into());
    }
    let holder = match &email {
        Some(email) => store
            .find_user_by_email(&email.key())
            .await
            .map_err(|_| UNAVAILABLE)?,
        None => None,
    };
    if identity.email_verified
        && let Some(holder) = holder.as_ref()
    {
        let trusted_domain = upstream.trust_email
            && domain
                .as_ref()
                .is_some_and(|d| upstream.auto_link_domains.contains(d));
        // The local address must be verified too: an account that merely claims it (created
        // with it, never confirmed) would otherwise receive its owner's identity.
        if trusted_domain && holder.email_verified && holder.status == UserStatus::Active {
            let linked = federated(&upstream.slug, identity.clone(), holder, now);
            link(services, linked, holder, "verified_email", meta).await?;
            return Ok(Account::Ready(holder.clone()));
        }
        // Never linked silently: the account's owner proves it first.
        return Ok(Account::Prove);
    }
    if !upstream.jit {
        return Ok(Account::Prove);
    }
    // An unverified address another account has stays off the new account.
    let email = if holder.is_some() { None } else { email };
    create_account(services, upstream, identity, email, meta, now)
        .await
        .map(Account::Ready)
}

/// Links the pending identity to `user`, who has just proven the account here, if that proof
/// is local (not another upstream sign-in) and made in the browser that signed in upstream.
pub(in crate::login) async fn complete_link(
    services: &Services,
    user: &User,
    pending: &PendingLink,
    binding: &str,
    methods: &[String],
    meta: &RequestMeta,
) -> Result<(), String> {
    let refused = "Your identity could not be linked; start again.";
    if binding != pending.binding || methods.iter().any(|m| m == amr::FED) {
        return Err(refused.into());
    }
    let linked = services
        .store
        .identities_of_user(user.id)
        .await
        .map_err(|_| UNAVAILABLE)?;
    if linked.iter().any(|i| i.issuer == pending.issuer) {
        return Err(format!(
            "Your account is already linked to another {} identity.",
            pending.display_name
        ));
    }
    let now = services.clock.now();
    let identity = FederatedIdentity {
        issuer: pending.issuer.clone(),
        subject: pending.subject.clone(),
        user_id: user.id,
        upstream: pending.upstream.clone(),
        email: pending.email.clone(),
        created_at: now,
        last_login_at: Some(now),
    };
    link(services, identity, user, "proof", meta).await
}

/// The link of `identity`, signed in through `upstream`, to `user`.
fn federated(upstream: &str, identity: Identity, user: &User, now: DateTime<Utc>) -> FederatedIdentity {
    FederatedIdentity {
        issuer: identity.issuer,
        subject: identity.subject,
        user_id: user.id,
        upstream: upstream.to_string(),
        email: identity.email,
        created_at: now,
        last_login_at: Some(now),
    }
}

/// Links `identity` to `user` and records it.
async fn link(
    services: &Services,
    identity: FederatedIdentity,
    user: &User,
    how: &str,
    meta: &RequestMeta,
) -> Result<(), String> {
    let now = identity.created_at;
    match services.store.link_identity(&identity).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
            return Err("This identity is already linked to another account.".into());
        }
        Err(_) => return Err(UNAVAILABLE.into()),
    }
    let mut event = SecurityEvent::new(EventType::IdentityLinked, Outcome::Success, now);
    event.user_id = Some(user.id.to_string());
    event.username = Some(user.username.as_str().to_string());
    event.details = serde_json::json!({
        "upstream": identity.upstream, "issuer": identity.issuer, "subject": identity.subject, "by": how,
    });
    record(services, meta.stamp(event)).await;
    Ok(())
}

async fn create_account(
    services: &Services,
    upstream: &Upstream,
    identity: &Identity,
    email: Option<Email>,
    meta: &RequestMeta,
    now: DateTime<Utc>,
) -> Result<User, String> {
    let failed = |_| "Your account could not be created; try again.".to_string();
    let wanted = identity
        .username
        .clone()
        .or_else(|| {
            email
                .as_ref()
                .and_then(|e| e.as_str().split('@').next().map(str::to_string))
        })
        .unwrap_or_else(|| upstream.slug.clone());
    let suffix = crate::security::random::token::<4>().map_err(|_| "no randomness".to_string())?;
    let mut user = None;
    for candidate in [wanted.clone(), format!("{wanted}-{}", suffix.to_lowercase())] {
        let Ok(username) = Username::parse(&candidate) else {
            continue;
        };
        let new = NewUser {
            username,
            email: email.clone(),
            name: identity.name.clone(),
            roles: vec![],
        };
        match services.store.create_user(&new, None, now).await {
            Ok(created) => {
                user = Some(created);
                break;
            }
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(failed(e)),
        }
    }
    let mut user = user.ok_or("No username could be chosen for your account.")?;
    if upstream.trust_email
        && identity.email_verified
        && let Some(email) = &email
        && services
            .store
            .mark_email_verified(user.id, email.as_str(), now)
            .await
            .map_err(failed)?
    {
        user.email_verified = true;
    }
    let identity = Identity {
        email: email.map(|e| e.as_str().to_string()),
        ..identity.clone()
    };
    services
        .store
        .link_identity(&federated(&upstream.slug, identity, &user, now))
        .await
        .map_err(failed)?;
    let mut event = SecurityEvent::new(EventType::UserCreated, Outcome::Success, now);
    event.user_id = Some(user.id.to_string());
    event.username = Some(user.username.as_str().to_string());
    event.details = serde_json::json!({ "upstream": upstream.slug, "jit": true });
    record(services, meta.stamp(event)).await;
    Ok(user)
}
