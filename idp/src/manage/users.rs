//! Creating and managing users.

use secrecy::{ExposeSecret, SecretString};

use super::{Actor, ManageError, record};
use crate::audit::{EventType, Outcome, SecurityEvent};
use crate::domain::Invalid;
use crate::domain::user::{ADMIN_ROLE, Email, NewUser, User, UserStatus, Username};
use crate::security::password;
use crate::services::Services;

pub struct AddUser {
    pub username: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub password: SecretString,
    pub admin: bool,
}

pub async fn add_user(services: &Services, request: AddUser, actor: Actor) -> Result<User, ManageError> {
    let new = NewUser {
        username: Username::parse(&request.username)?,
        email: request.email.as_deref().map(Email::parse).transpose()?,
        name: request
            .name
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty()),
        roles: if request.admin {
            vec![ADMIN_ROLE.to_string()]
        } else {
            Vec::new()
        },
    };
    password::check_policy(request.password.expose_secret()).map_err(Invalid::new)?;
    // Refuse a duplicate before paying for a hash; the unique index still decides races.
    if services
        .store
        .find_user_by_username(&new.username.key())
        .await?
        .is_some()
    {
        return Err(ManageError::Conflict("a user with this username"));
    }
    let phc = services
        .passwords
        .hash(&request.password)
        .await
        .map_err(|e| ManageError::Internal(e.to_string()))?;
    let now = services.clock.now();
    let user = services.store.create_user(&new, Some(&phc), now).await?;
    let mut event = SecurityEvent::new(EventType::UserCreated, Outcome::Success, now);
    event.user_id = Some(user.id.to_string());
    event.username = Some(user.username.as_str().to_string());
    event.actor_id = Some(actor.id());
    event.details = serde_json::json!({ "roles": user.roles });
    record(services, event).await;
    Ok(user)
}

pub async fn set_status(
    services: &Services,
    username: &str,
    status: UserStatus,
    actor: Actor,
) -> Result<User, ManageError> {
    let key = Username::parse(username)?.key();
    let user = services
        .store
        .find_user_by_username(&key)
        .await?
        .ok_or_else(|| ManageError::NotFound(format!("user {username:?}")))?;
    let now = services.clock.now();
    services.store.set_user_status(user.id, status, now).await?;
    let mut event = SecurityEvent::new(EventType::UserChanged, Outcome::Success, now);
    event.user_id = Some(user.id.to_string());
    event.username = Some(user.username.as_str().to_string());
    event.actor_id = Some(actor.id());
    event.details = serde_json::json!({ "status": status.as_str() });
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
    let mut event = SecurityEvent::new(EventType::AccountUnlocked, Outcome::Success, services.clock.now());
    event.user_id = user.map(|u| u.id.to_string());
    event.username = Some(key);
    event.actor_id = Some(actor.id());
    event.details = serde_json::json!({ "sources_cleared": lifted });
    record(services, event).await;
    Ok(lifted)
}
