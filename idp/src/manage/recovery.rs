//! Single-use links sent to users (password reset; later email verification and
//! invitations): issued, checked and spent here, for the pages and the CLI alike.
//!
//! A link carries 256 random bits; the store keeps only their keyed hash. A reset link is
//! bound to the password the account had when it was issued (a keyed hash of its
//! credential): any password change, a completed reset included, makes it useless, and
//! issuing a new link retires the older ones.

use chrono::{DateTime, Utc};
use secrecy::SecretString;

use super::{ManageError, record, sessions};
use crate::audit::{EventType, Outcome, SecurityEvent};
use crate::domain::user::{User, UserStatus};
use crate::http::meta::RequestMeta;
use crate::security::password;
use crate::security::random;
use crate::services::Services;
use crate::store::account::{ActionLink, LinkPurpose};

/// How long a password-reset link works (`password_reset_link_ttl_s`).
pub fn reset_link_ttl(services: &Services) -> chrono::Duration {
    chrono::Duration::seconds(i64::try_from(services.settings.password_reset_link_ttl_s).unwrap_or(1800))
}

/// [`reset_link_ttl`] in whole minutes, rounded up, for the words of pages and mails.
pub fn reset_link_minutes(services: &Services) -> i64 {
    (reset_link_ttl(services).num_seconds() + 59) / 60
}

/// Why a link cannot be used. Pages say only that it expired or was used; the reason is logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkProblem {
    Unknown,
    Used,
    Expired,
    /// The password changed since the link was issued.
    Superseded,
    /// The account is disabled or gone.
    Inactive,
}

impl LinkProblem {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Used => "used",
            Self::Expired => "expired",
            Self::Superseded => "superseded",
            Self::Inactive => "inactive",
        }
    }
}

fn link_hash(services: &Services, token: &str) -> String {
    services.tokens.hash(&format!("action-link:{token}"))
}

/// A keyed hash of the user's password credential now ('' when they have none).
async fn password_fingerprint(services: &Services, user: &User) -> Result<String, ManageError> {
    Ok(match services.store.password_phc(user.id).await? {
        Some(phc) => services.tokens.hash(&format!("password-fingerprint:{phc}")),
        None => String::new(),
    })
}

/// Issues a new link of `purpose` for the user (retiring older ones) and returns its token.
pub async fn issue(
    services: &Services,
    user: &User,
    purpose: LinkPurpose,
    ttl: chrono::Duration,
) -> Result<String, ManageError> {
    let email = user.email.as_ref().map(|e| e.as_str().to_string());
    issue_for(services, user, purpose, ttl, email).await
}

/// [`issue`] for a link that proves `email` (a change link names the new address).
async fn issue_for(
    services: &Services,
    user: &User,
    purpose: LinkPurpose,
    ttl: chrono::Duration,
    email: Option<String>,
) -> Result<String, ManageError> {
    let token = random::token::<32>().map_err(|e| ManageError::Internal(e.to_string()))?;
    let now = services.clock.now();
    services.store.retire_action_links(user.id, purpose, now).await?;
    services
        .store
        .insert_action_link(&ActionLink {
            token_hash: link_hash(services, &token),
            user_id: user.id,
            purpose,
            password_fingerprint: password_fingerprint(services, user).await?,
            email,
            created_at: now,
            expires_at: now + ttl.max(chrono::Duration::seconds(1)),
            used_at: None,
        })
        .await?;
    Ok(token)
}

/// A reset link for the user named `username`, issued by an administrator (the CLI, for
/// when no mail can be sent or the user's mailbox is lost too).
pub async fn reset_link_for(
    services: &Services,
    username: &str,
    actor: &super::Actor,
) -> Result<String, ManageError> {
    let key = crate::domain::user::Username::parse(username)?.key();
    let user = services
        .store
        .find_user_by_username(&key)
        .await?
        .ok_or_else(|| ManageError::NotFound(format!("user {username}")))?;
    if user.status != UserStatus::Active {
        return Err(ManageError::Invalid(crate::domain::Invalid::new(format!(
            "user {username} is disabled; enable them first"
        ))));
    }
    let token = issue(
        services,
        &user,
        LinkPurpose::PasswordReset,
        reset_link_ttl(services),
    )
    .await?;
    let mut event = actor.event(EventType::PasswordResetRequested, services.clock.now());
    event.user_id = Some(user.id.to_string());
    event.username = Some(user.username.as_str().to_string());
    event.details = serde_json::json!({ "sent": false, "handed_over_by": actor.id() });
    record(services, event).await;
    Ok(reset_url(services, &token))
}

/// The URL of the page that takes a reset link's token.
pub fn reset_url(services: &Services, token: &str) -> String {
    page_url(services, "reset-password", token)
}

/// The URL of the self-registration form, carrying its token.
pub fn registration_url(services: &Services, token: &str) -> String {
    page_url(services, "register/complete", token)
}

/// The URL of the forgot-password page.
pub fn forgot_password_url(services: &Services) -> String {
    let mut url = services.settings.issuer.clone();
    let path = format!("{}/forgot-password", url.path().trim_end_matches('/'));
    url.set_path(&path);
    url.to_string()
}

/// The URL of one of the issuer's pages (`page`), carrying a link's token.
fn page_url(services: &Services, page: &str, token: &str) -> String {
    let mut url = services.settings.issuer.clone();
    let path = format!("{}/{page}", url.path().trim_end_matches('/'));
    url.set_path(&path);
    url.query_pairs_mut().clear().append_pair("token", token);
    url.to_string()
}

/// The link and its user, if the token names a usable link of `purpose` at `now`.
pub async fn open(
    services: &Services,
    token: &str,
    purpose: LinkPurpose,
    now: DateTime<Utc>,
) -> Result<Result<(ActionLink, User), LinkProblem>, ManageError> {
    open_any(services, token, &[purpose], now).await
}

/// [`open`] for a token that may name a link of any of `purposes` (the verification page
/// takes both verification and change links).
pub async fn open_any(
    services: &Services,
    token: &str,
    purposes: &[LinkPurpose],
    now: DateTime<Utc>,
) -> Result<Result<(ActionLink, User), LinkProblem>, ManageError> {
    let Some(link) = services
        .store
        .find_action_link(&link_hash(services, token))
        .await?
    else {
        return Ok(Err(LinkProblem::Unknown));
    };
    if !purposes.contains(&link.purpose) {
        return Ok(Err(LinkProblem::Unknown));
    }
    if link.used_at.is_some() {
        return Ok(Err(LinkProblem::Used));
    }
    if link.expires_at <= now {
        return Ok(Err(LinkProblem::Expired));
    }
    let user = match services.store.find_user(link.user_id).await? {
        Some(user) if user.status == UserStatus::Active => user,
        _ => return Ok(Err(LinkProblem::Inactive)),
    };
    let current = match link.purpose {
        // A verification link proves one address: it is void once the address changed.
        LinkPurpose::VerifyEmail => user.email.as_ref().map(|e| e.as_str()) == link.email.as_deref(),
        // A change link dies with the password it was asked under (a reset after a takeover
        // ends the thief's pending change) and with a newer change.
        LinkPurpose::PasswordReset | LinkPurpose::Invitation | LinkPurpose::ChangeEmail => {
            password_fingerprint(services, &user).await? == link.password_fingerprint
        }
    };
    if !current {
        return Ok(Err(LinkProblem::Superseded));
    }
    Ok(Ok((link, user)))
}

/// How long an invitation link works.
pub const INVITATION_TTL_DAYS: i64 = 7;

/// Issues an invitation link for a user created without a password and mails it; returns
/// the link instead when no mail can be sent.
pub async fn send_invitation(services: &Services, user: &User) -> Result<Option<String>, ManageError> {
    let token = issue(
        services,
        user,
        LinkPurpose::Invitation,
        chrono::Duration::days(INVITATION_TTL_DAYS),
    )
    .await?;
    let link = page_url(services, "accept-invitation", &token);
    let Some(email) = user.email.as_ref().filter(|_| crate::mail::configured(services)) else {
        return Ok(Some(link));
    };
    let (_, theme) = services.themes.get(None);
    let context = minijinja::context! {
        product => crate::login::pages::PRODUCT,
        username => user.username.as_str(),
        name => user.name.as_deref(),
        link => link,
        days => INVITATION_TTL_DAYS,
    };
    let message = crate::mail::compose(theme, "invitation", context).map_err(ManageError::Internal)?;
    crate::mail::enqueue(services, email.as_str(), "invitation", &message)
        .await
        .map_err(|e| ManageError::Internal(e.to_string()))?;
    Ok(None)
}

/// How long an email-verification link works.
pub const VERIFY_LINK_TTL_H: i64 = 24;

/// Mails the user a link proving their address, when mail can be sent and the address is
/// not verified yet. True when a message was queued.
pub async fn send_verification(services: &Services, user: &User) -> Result<bool, ManageError> {
    let Some(email) = user.email.as_ref().filter(|_| !user.email_verified) else {
        return Ok(false);
    };
    if !crate::mail::configured(services) {
        return Ok(false);
    }
    mail_verification_link(services, user, LinkPurpose::VerifyEmail, email.as_str()).await?;
    Ok(true)
}

/// Mails `email` a link of `purpose` (verification or change) to the verification page.
async fn mail_verification_link(
    services: &Services,
    user: &User,
    purpose: LinkPurpose,
    email: &str,
) -> Result<(), ManageError> {
    let ttl = chrono::Duration::hours(VERIFY_LINK_TTL_H);
    let token = issue_for(services, user, purpose, ttl, Some(email.to_string())).await?;
    let (_, theme) = services.themes.get(None);
    let context = minijinja::context! {
        product => crate::login::pages::PRODUCT,
        username => user.username.as_str(),
        name => user.name.as_deref(),
        email => email,
        link => page_url(services, "verify-email", &token),
        hours => VERIFY_LINK_TTL_H,
    };
    let message = crate::mail::compose(theme, "verify_email", context).map_err(ManageError::Internal)?;
    crate::mail::enqueue(services, email, "verify_email", &message)
        .await
        .map_err(|e| ManageError::Internal(e.to_string()))?;
    Ok(())
}

/// Mails a link to `new_email` that moves the user's account there once opened. Nothing
/// changes until then, so a typo or a stolen session cannot move the account's mail away.
pub async fn send_email_change(services: &Services, user: &User, new_email: &str) -> Result<(), ManageError> {
    mail_verification_link(services, user, LinkPurpose::ChangeEmail, new_email).await
}

/// Tells the previous address of a user that their address changed (a takeover usually
/// begins by moving the mail elsewhere), when mail can be sent. Failures are logged.
pub async fn notify_old_address(services: &Services, user: &User, old_email: &str) {
    if !crate::mail::configured(services) {
        return;
    }
    let (_, theme) = services.themes.get(None);
    let context = minijinja::context! {
        product => crate::login::pages::PRODUCT,
        username => user.username.as_str(),
        name => user.name.as_deref(),
        old_email => old_email,
        new_email => user.email.as_ref().map(|e| e.as_str()).unwrap_or("no address"),
        reset_url => format!("{}/forgot-password", services.settings.issuer_str()),
    };
    let queued = match crate::mail::compose(theme, "email_changed", context) {
        Ok(message) => crate::mail::enqueue(services, old_email, "email_changed", &message)
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e),
    };
    if let Err(e) = queued {
        tracing::warn!(error = %e, user_id = %user.id, "could not queue the address-change notice");
    }
}

/// [`send_verification`] for callers whose own action succeeded whatever happens to the
/// mail (creating a user, changing an address): a failure is logged.
pub async fn send_verification_quietly(services: &Services, user: &User) {
    if let Err(e) = send_verification(services, user).await {
        tracing::warn!(error = %e, user_id = %user.id, "could not queue the email-verification mail");
    }
}

/// Spends a verification link and marks the address it was sent to verified. False when
/// the link was spent meanwhile or the address changed.
pub async fn verify_email(
    services: &Services,
    link: &ActionLink,
    user: &User,
    meta: &RequestMeta,
) -> Result<bool, ManageError> {
    let now = services.clock.now();
    let Some(email) = &link.email else {
        return Ok(false);
    };
    if link.purpose == LinkPurpose::ChangeEmail {
        return apply_email_change(services, link, user, email, meta).await;
    }
    if !services.store.use_action_link(&link.token_hash, now).await?
        || !services.store.mark_email_verified(user.id, email, now).await?
    {
        return Ok(false);
    }
    let mut event = SecurityEvent::new(EventType::EmailVerified, Outcome::Success, now);
    event.user_id = Some(user.id.to_string());
    event.username = Some(user.username.as_str().to_string());
    event.actor_id = Some(user.id.to_string());
    record(services, meta.stamp(event)).await;
    Ok(true)
}

/// Moves the user to the address a change link proved, verified, and tells the old one.
async fn apply_email_change(
    services: &Services,
    link: &ActionLink,
    user: &User,
    email: &str,
    meta: &RequestMeta,
) -> Result<bool, ManageError> {
    let now = services.clock.now();
    let new = crate::domain::user::Email::parse(email)?;
    let profile = crate::store::UserProfile {
        email: Some(new),
        email_verified: true,
        name: user.name.clone(),
        roles: user.roles.clone(),
    };
    // The address may have been taken by another account since the link was sent: the
    // store refuses it (unique address, a `Conflict`) and the link stays unspent.
    if !services.store.update_user_profile(user.id, &profile, now).await?
        || !services.store.use_action_link(&link.token_hash, now).await?
    {
        return Ok(false);
    }
    let mut event = SecurityEvent::new(EventType::EmailVerified, Outcome::Success, now);
    event.user_id = Some(user.id.to_string());
    event.username = Some(user.username.as_str().to_string());
    event.actor_id = Some(user.id.to_string());
    event.details = serde_json::json!({ "email_changed": true });
    record(services, meta.stamp(event)).await;
    if let Some(old) = &user.email {
        let moved = User {
            email: profile.email.clone(),
            ..user.clone()
        };
        notify_old_address(services, &moved, old.as_str()).await;
    }
    Ok(true)
}

/// What a completed reset ended.
#[derive(Debug, Clone, Copy)]
pub struct ResetDone {
    pub sessions_ended: u64,
    pub grants_revoked: u64,
}

/// Spends the link (a reset or an invitation) and sets the new password (already checked against the policy), then
/// ends every session and grant of the user and records the reset. `Ok(None)` when the
/// link was spent meanwhile (a second tab, a replay).
pub async fn complete_reset(
    services: &Services,
    link: &ActionLink,
    user: &User,
    new_password: SecretString,
    meta: &RequestMeta,
) -> Result<Option<ResetDone>, ManageError> {
    // Hash first (slow, off the executor), then spend the link: a failure in between
    // leaves the link usable rather than spent for nothing.
    let phc = services
        .passwords
        .hash(&new_password)
        .await
        .map_err(|e| ManageError::Internal(e.to_string()))?;
    let now = services.clock.now();
    if !services.store.use_action_link(&link.token_hash, now).await? {
        return Ok(None);
    }
    services.store.replace_password(user.id, &phc, false, now).await?;
    services.store.unlock_account(&user.username.key()).await?;
    let ended = sessions::end_access(services, user, None).await?;
    let event_type = if link.purpose == LinkPurpose::Invitation {
        // The invitation reached this mailbox: the address is proven.
        if let Some(email) = &link.email {
            services.store.mark_email_verified(user.id, email, now).await?;
        }
        EventType::PasswordChanged
    } else {
        EventType::PasswordReset
    };
    let mut event = SecurityEvent::new(event_type, Outcome::Success, now);
    event.user_id = Some(user.id.to_string());
    event.username = Some(user.username.as_str().to_string());
    event.actor_id = Some(user.id.to_string());
    event.details = serde_json::json!({
        "sessions_ended": ended.sessions,
        "grants_revoked": ended.grants,
        "link": link.purpose.as_str(),
    });
    record(services, meta.stamp(event)).await;
    metrics::counter!("idp_password_resets_total", "outcome" => "completed", "link" => link.purpose.as_str())
        .increment(1);
    Ok(Some(ResetDone {
        sessions_ended: ended.sessions,
        grants_revoked: ended.grants,
    }))
}

/// The policy problem with `new_password` for this user, if any.
pub fn policy_problem(user: &User, new_password: &str, confirm: &str) -> Option<String> {
    if new_password != confirm {
        return Some("The two passwords differ.".into());
    }
    password::check_policy(new_password, &password::Owner::of(user)).err()
}
