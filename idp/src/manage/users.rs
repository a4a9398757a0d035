//! Creating and managing users.

use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use super::{Actor, ManageError, record, sessions};
use crate::audit::EventType;
use crate::domain::Invalid;
use crate::domain::user::{ADMIN_ROLE, Email, NewUser, User, UserStatus, Username, parse_role};
use crate::security::password;
use crate::services::Services;
use crate::store::UserProfile;

pub struct AddUser {
    pub username: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub password: SecretString,
    pub admin: bool,
}

pub async fn add_user(services: &Services, request: AddUser, actor: Actor) -> Result<User, ManageError> {
    let roles = if request.admin {
        vec![ADMIN_ROLE.to_string()]
    } else {
        Vec::new()
    };
    create(services, request, roles, false, actor).await
}

/// Creates a user with `roles`; with `must_change_password` the password is temporary.
pub async fn create(
    services: &Services,
    request: AddUser,
    roles: Vec<String>,
    must_change_password: bool,
    actor: Actor,
) -> Result<User, ManageError> {
    let (new, phc) = checked(services, request, &roles).await?;
    let now = services.clock.now();
    let mut user = services.store.create_user(&new, Some(&phc), now).await?;
    if must_change_password && services.store.replace_password(user.id, &phc, true, now).await? {
        user.must_change_password = true;
    }
    let mut event = actor.event(EventType::UserCreated, now);
    event.user_id = Some(user.id.to_string());
    event.username = Some(user.username.as_str().to_string());
    event.details = serde_json::json!({ "roles": user.roles });
    record(services, event).await;
    super::recovery::send_verification_quietly(services, &user).await;
    Ok(user)
}

/// The new user `request` describes, once valid, policy-abiding and not a duplicate, with
/// the hash of its password.
async fn checked(
    services: &Services,
    request: AddUser,
    roles: &[String],
) -> Result<(NewUser, String), ManageError> {
    let new = NewUser {
        username: Username::parse(&request.username)?,
        email: request.email.as_deref().map(Email::parse).transpose()?,
        name: clean_name(request.name),
        roles: parse_roles(roles)?,
    };
    let owner = password::Owner {
        username: new.username.as_str(),
        email: new.email.as_ref().map(|e| e.as_str()),
        name: new.name.as_deref(),
        admin: new.roles.iter().any(|r| r == ADMIN_ROLE),
    };
    password::check_policy(request.password.expose_secret(), &owner).map_err(Invalid::new)?;
    // Refuse a duplicate before paying for a hash; the unique indexes still decide races.
    if services
        .store
        .find_user_by_username(&new.username.key())
        .await?
        .is_some()
    {
        return Err(ManageError::Conflict("a user with this username"));
    }
    if let Some(email) = &new.email
        && services.store.find_user_by_email(&email.key()).await?.is_some()
    {
        return Err(ManageError::Conflict("a user with this email address"));
    }
    let phc = hash(services, &request.password).await?;
    Ok((new, phc))
}

/// Someone creating their own account (self-registration): `request.email` was proven by
/// the link mailed to it, so the account starts with it verified. No roles.
pub async fn register(
    services: &Services,
    request: AddUser,
    meta: &crate::http::meta::RequestMeta,
) -> Result<User, ManageError> {
    let (new, phc) = checked(services, request, &[]).await?;
    let now = services.clock.now();
    let mut user = services.store.create_user(&new, Some(&phc), now).await?;
    if let Some(email) = &user.email
        && services
            .store
            .mark_email_verified(user.id, email.as_str(), now)
            .await?
    {
        user.email_verified = true;
    }
    let actor = Actor::User {
        user_id: user.id.to_string(),
        meta: meta.clone(),
    };
    let mut event = actor.event(EventType::UserCreated, now);
    event.user_id = Some(user.id.to_string());
    event.username = Some(user.username.as_str().to_string());
    event.details = serde_json::json!({ "roles": user.roles, "registered": true });
    record(services, event).await;
    Ok(user)
}

/// Who to invite: a user created without a password, who chooses one through a link.
pub struct Invite {
    pub username: String,
    pub email: String,
    pub name: Option<String>,
    pub admin: bool,
}

/// Creates the user without a password and sends them an invitation link (valid 7 days) to
/// choose one. Returns the user, and the link itself when no mail can be sent (for the
/// administrator to hand over).
pub async fn invite(
    services: &Services,
    request: Invite,
    actor: Actor,
) -> Result<(User, Option<String>), ManageError> {
    let roles = if request.admin {
        vec![ADMIN_ROLE.to_string()]
    } else {
        Vec::new()
    };
    let new = NewUser {
        username: Username::parse(&request.username)?,
        email: Some(Email::parse(&request.email)?),
        name: clean_name(request.name),
        roles: parse_roles(&roles)?,
    };
    let now = services.clock.now();
    let user = services.store.create_user(&new, None, now).await?;
    let mut event = actor.event(EventType::UserCreated, now);
    event.user_id = Some(user.id.to_string());
    event.username = Some(user.username.as_str().to_string());
    event.details = serde_json::json!({ "roles": user.roles, "invited": true });
    record(services, event).await;
    let link = super::recovery::send_invitation(services, &user).await?;
    Ok((user, link))
}

/// The user with this id, or `NotFound`.
pub async fn get(services: &Services, id: Uuid) -> Result<User, ManageError> {
    services
        .store
        .find_user(id)
        .await?
        .ok_or_else(|| ManageError::NotFound(format!("user {id}")))
}

pub async fn by_username(services: &Services, username: &str) -> Result<User, ManageError> {
    let key = Username::parse(username)?.key();
    services
        .store
        .find_user_by_username(&key)
        .await?
        .ok_or_else(|| ManageError::NotFound(format!("user {username:?}")))
}

/// What an administrator may change of a user; `None` keeps the current value.
#[derive(Debug, Default)]
pub struct ProfileChange {
    pub email: Option<Option<String>>,
    pub email_verified: Option<bool>,
    pub name: Option<Option<String>>,
    pub roles: Option<Vec<String>>,
}

pub async fn update_profile(
    services: &Services,
    id: Uuid,
    change: ProfileChange,
    actor: Actor,
) -> Result<User, ManageError> {
    let user = get(services, id).await?;
    let email = match change.email {
        Some(new) => new
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(Email::parse)
            .transpose()?,
        None => user.email.clone(),
    };
    // A changed address is no longer verified unless the administrator says it is.
    let email_changed = email.as_ref().map(Email::key) != user.email.as_ref().map(Email::key);
    let profile = UserProfile {
        email_verified: change
            .email_verified
            .unwrap_or(user.email_verified && !email_changed),
        email,
        name: change.name.map_or_else(|| user.name.clone(), clean_name),
        roles: change
            .roles
            .as_deref()
            .map(parse_roles)
            .transpose()?
            .unwrap_or_else(|| user.roles.clone()),
    };
    if user.is_admin() && !profile.roles.iter().any(|r| r == ADMIN_ROLE) && actor.id() == user.id.to_string()
    {
        return Err(Invalid::new("you cannot remove your own administrator role").into());
    }
    let now = services.clock.now();
    if !services.store.update_user_profile(id, &profile, now).await? {
        return Err(ManageError::NotFound(format!("user {id}")));
    }
    let mut event = actor.event(EventType::UserChanged, now);
    event.user_id = Some(id.to_string());
    event.username = Some(user.username.as_str().to_string());
    event.details = serde_json::json!({
        "email_changed": email_changed,
        "roles": profile.roles,
    });
    record(services, event).await;
    let updated = get(services, id).await?;
    if email_changed {
        // An address set by an administrator overrides a change the user asked for.
        services
            .store
            .retire_action_links(id, crate::store::account::LinkPurpose::ChangeEmail, now)
            .await?;
        super::recovery::send_verification_quietly(services, &updated).await;
        if let Some(old) = &user.email {
            super::recovery::notify_old_address(services, &updated, old.as_str()).await;
        }
    }
    Ok(updated)
}

/// What became of an address a user entered for themselves.
#[derive(Debug)]
pub enum EmailChange {
    /// The same address as before.
    Unchanged,
    /// A link went to the new address; the account keeps the old one until it is opened.
    Pending,
    /// No mail can be sent (the embedded default): the address is the account's now,
    /// unverified, as an administrator's change would be.
    Applied,
}

/// A user's own change of address (the account page). With mail, it takes effect only
/// when the new address proves it receives mail, and the old address is told then.
pub async fn request_email_change(
    services: &Services,
    user: &User,
    new_email: &str,
    actor: Actor,
) -> Result<EmailChange, ManageError> {
    let new_email = new_email.trim();
    if new_email.is_empty() {
        return match user.email {
            Some(_) => Err(Invalid::new("enter an email address: it is how you recover your account").into()),
            None => Ok(EmailChange::Unchanged),
        };
    }
    let new = Email::parse(new_email)?;
    if user.email.as_ref().map(Email::key) == Some(new.key()) {
        return Ok(EmailChange::Unchanged);
    }
    if !crate::mail::configured(services) {
        let change = ProfileChange {
            email: Some(Some(new.as_str().to_string())),
            ..ProfileChange::default()
        };
        update_profile(services, user.id, change, actor).await?;
        return Ok(EmailChange::Applied);
    }
    // Whether another account has the address is not said here (that would tell anyone
    // signed in which addresses are registered); the link fails with it instead.
    super::recovery::send_email_change(services, user, new.as_str()).await?;
    let mut event = actor.event(EventType::UserChanged, services.clock.now());
    event.user_id = Some(user.id.to_string());
    event.username = Some(user.username.as_str().to_string());
    event.details = serde_json::json!({ "email_change": "link sent to the new address" });
    record(services, event).await;
    Ok(EmailChange::Pending)
}

pub async fn set_status(
    services: &Services,
    username: &str,
    status: UserStatus,
    actor: Actor,
) -> Result<User, ManageError> {
    let user = by_username(services, username).await?;
    set_status_of(services, user.id, status, actor).await
}

/// Enables or disables a user. Disabling also ends their sessions and revokes their tokens.
pub async fn set_status_of(
    services: &Services,
    id: Uuid,
    status: UserStatus,
    actor: Actor,
) -> Result<User, ManageError> {
    let user = get(services, id).await?;
    if status == UserStatus::Disabled && actor.id() == user.id.to_string() {
        return Err(Invalid::new("you cannot disable your own account").into());
    }
    let now = services.clock.now();
    services.store.set_user_status(user.id, status, now).await?;
    let ended = if status == UserStatus::Disabled {
        sessions::end_access(services, &user, None).await?
    } else {
        sessions::Ended::default()
    };
    let mut event = actor.event(EventType::UserChanged, now);
    event.user_id = Some(user.id.to_string());
    event.username = Some(user.username.as_str().to_string());
    event.details = serde_json::json!({
        "status": status.as_str(),
        "sessions_ended": ended.sessions,
        "grants_revoked": ended.grants,
    });
    record(services, event).await;
    Ok(User {
        status,
        updated_at: now,
        ..user
    })
}

/// Lifts the brute-force locks of `username` from every source. Works for any typed name,
/// so it also clears locks on names that do not exist.
pub async fn unlock(services: &Services, username: &str, actor: Actor) -> Result<u64, ManageError> {
    let key: String = username.trim().to_lowercase();
    let lifted = services.store.unlock_account(&key).await?;
    let user = services.store.find_user_by_username(&key).await?;
    let mut event = actor.event(EventType::AccountUnlocked, services.clock.now());
    event.user_id = user.map(|u| u.id.to_string());
    event.username = Some(key);
    event.details = serde_json::json!({ "sources_cleared": lifted });
    record(services, event).await;
    Ok(lifted)
}

/// Gives the user a password they must replace at their next login. Whoever holds one of
/// their sessions or tokens now (perhaps the reason for the reset) loses it: every session,
/// grant, refresh token and, through the deny-list, access token of the user ends.
pub async fn set_temporary_password(
    services: &Services,
    id: Uuid,
    password: &SecretString,
    actor: Actor,
) -> Result<(), ManageError> {
    let user = get(services, id).await?;
    // It would end the administrator's own session and lock them out of the portal.
    if actor.id() == user.id.to_string() {
        return Err(Invalid::new("you cannot set a temporary password on your own account").into());
    }
    password::check_policy(password.expose_secret(), &password::Owner::of(&user)).map_err(Invalid::new)?;
    let phc = hash(services, password).await?;
    let now = services.clock.now();
    if !services.store.replace_password(id, &phc, true, now).await? {
        return Err(ManageError::NotFound(format!("user {id}")));
    }
    let ended = sessions::end_access(services, &user, None).await?;
    let mut event = actor.event(EventType::PasswordChanged, now);
    event.user_id = Some(id.to_string());
    event.username = Some(user.username.as_str().to_string());
    event.details = serde_json::json!({
        "temporary": true,
        "sessions_ended": ended.sessions,
        "grants_revoked": ended.grants,
    });
    record(services, event).await;
    Ok(())
}

/// Sets a temporary password by username (the CLI's `user set-password`).
pub async fn set_temporary_password_of(
    services: &Services,
    username: &str,
    password: &SecretString,
    actor: Actor,
) -> Result<User, ManageError> {
    let user = by_username(services, username).await?;
    set_temporary_password(services, user.id, password, actor).await?;
    Ok(user)
}

/// Deletes the user with their sessions, tokens and consents. Their security events stay.
pub async fn delete(services: &Services, id: Uuid, actor: Actor) -> Result<(), ManageError> {
    let user = get(services, id).await?;
    if actor.id() == user.id.to_string() {
        return Err(Invalid::new("you cannot delete your own account").into());
    }
    // Deny the access tokens already out before the grants disappear with the user.
    sessions::revoke_user_access(services, &user, None, &actor).await?;
    if !services.store.delete_user(id).await? {
        return Err(ManageError::NotFound(format!("user {id}")));
    }
    let mut event = actor.event(EventType::UserDeleted, services.clock.now());
    event.user_id = Some(id.to_string());
    event.username = Some(user.username.as_str().to_string());
    record(services, event).await;
    Ok(())
}

async fn hash(services: &Services, password: &SecretString) -> Result<String, ManageError> {
    services
        .passwords
        .hash(password)
        .await
        .map_err(|e| ManageError::Internal(e.to_string()))
}

fn clean_name(name: Option<String>) -> Option<String> {
    name.map(|n| n.trim().to_string()).filter(|n| !n.is_empty())
}

fn parse_roles(roles: &[String]) -> Result<Vec<String>, Invalid> {
    let mut parsed = roles
        .iter()
        .map(|r| parse_role(r))
        .collect::<Result<Vec<_>, _>>()?;
    parsed.sort();
    parsed.dedup();
    Ok(parsed)
}
