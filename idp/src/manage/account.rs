//! What users do to their own account on the account page. Each operation records a
//! security event naming the user as its actor, which the user then sees in their
//! account activity.

use secrecy::{ExposeSecret, SecretString};

use super::sessions::{self, Target};
use super::{Actor, ManageError, record};
use crate::audit::EventType;
use crate::domain::user::User;
use crate::security::password::{self, Verification};
use crate::services::Services;

/// Why a password change was refused: each is shown to the user as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordRefusal {
    WrongCurrent,
    Mismatch,
    Unchanged,
    Policy(String),
}

impl PasswordRefusal {
    pub fn message(&self) -> &str {
        match self {
            Self::WrongCurrent => "The current password is incorrect.",
            Self::Mismatch => "The two new passwords differ.",
            Self::Unchanged => "Choose a password different from the current one.",
            Self::Policy(problem) => problem,
        }
    }
}

/// Changes the user's password after checking the current one (the caller has passed the
/// brute-force gate), then ends every other session and grant of the user: whoever else
/// knew the old password is signed out. The session `keep` stays.
pub async fn change_password(
    services: &Services,
    user: &User,
    current: SecretString,
    new: SecretString,
    confirm: &str,
    keep: Option<&str>,
    actor: &Actor,
) -> Result<Result<sessions::Ended, PasswordRefusal>, ManageError> {
    let stored = services.store.password_phc(user.id).await?;
    match services.passwords.verify(&current, stored).await {
        Ok(Verification::Valid { .. }) => {}
        Ok(Verification::Invalid) => return Ok(Err(PasswordRefusal::WrongCurrent)),
        Err(e) => return Err(ManageError::Internal(e.to_string())),
    }
    if new.expose_secret() != confirm {
        return Ok(Err(PasswordRefusal::Mismatch));
    }
    if let Err(problem) = password::check_policy(new.expose_secret(), &password::Owner::of(user)) {
        return Ok(Err(PasswordRefusal::Policy(problem)));
    }
    if new.expose_secret() == current.expose_secret() {
        return Ok(Err(PasswordRefusal::Unchanged));
    }
    let phc = services
        .passwords
        .hash(&new)
        .await
        .map_err(|e| ManageError::Internal(e.to_string()))?;
    let now = services.clock.now();
    services.store.replace_password(user.id, &phc, false, now).await?;
    let ended = end_other_sessions(services, user, keep).await?;
    let mut event = actor.event(EventType::PasswordChanged, now);
    event.user_id = Some(user.id.to_string());
    event.username = Some(user.username.as_str().to_string());
    event.details = serde_json::json!({
        "self_service": true,
        "sessions_ended": ended.sessions,
        "grants_revoked": ended.grants,
    });
    record(services, event).await;
    Ok(Ok(ended))
}

/// Ends every session of the user but `keep`, with the grants given in them, and every
/// grant given outside a session (refresh tokens of a session since gone).
async fn end_other_sessions(
    services: &Services,
    user: &User,
    keep: Option<&str>,
) -> Result<sessions::Ended, ManageError> {
    let now = services.clock.now();
    let user_id = user.id.to_string();
    let mut ended = sessions::Ended::default();
    for session in services.store.sessions_of_user(&user_id, now).await? {
        if Some(session.sid.as_str()) == keep {
            continue;
        }
        match sessions::end_access(services, user, Some(Target::Session(&session.sid))).await {
            Ok(done) => {
                ended.sessions += done.sessions;
                ended.grants += done.grants;
            }
            // Ended meanwhile (it expired, or another tab ended it).
            Err(ManageError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    for grant in services.store.grants_of_user(&user_id, now).await? {
        let in_kept = keep.is_some() && grant.session_id.as_deref() == keep;
        if in_kept {
            continue;
        }
        match sessions::end_access(services, user, Some(Target::Grant(&grant.id))).await {
            Ok(done) => ended.grants += done.grants,
            Err(ManageError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(ended)
}

/// Signs the user out of every other session ("sign out everywhere else").
pub async fn sign_out_others(
    services: &Services,
    user: &User,
    keep: Option<&str>,
    actor: &Actor,
) -> Result<sessions::Ended, ManageError> {
    let ended = end_other_sessions(services, user, keep).await?;
    let mut event = actor.event(EventType::TokenRevoked, services.clock.now());
    event.user_id = Some(user.id.to_string());
    event.username = Some(user.username.as_str().to_string());
    event.details = serde_json::json!({
        "scope": "other sessions",
        "sessions": ended.sessions,
        "grants": ended.grants,
    });
    record(services, event).await;
    Ok(ended)
}

/// Disconnects an application: revokes every grant the user gave it (its refresh tokens
/// stop working, its access tokens are denied) and forgets the consent, so it must ask
/// again. Not found when the application holds nothing of the user.
pub async fn disconnect_app(
    services: &Services,
    user: &User,
    client_id: &str,
    actor: &Actor,
) -> Result<u64, ManageError> {
    let now = services.clock.now();
    let user_id = user.id.to_string();
    let mut revoked = 0;
    for grant in services.store.grants_of_user(&user_id, now).await? {
        if grant.client_id != client_id {
            continue;
        }
        match sessions::end_access(services, user, Some(Target::Grant(&grant.id))).await {
            Ok(done) => revoked += done.grants,
            Err(ManageError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    let had_consent = services.store.delete_consent(&user_id, client_id).await?;
    if revoked == 0 && !had_consent {
        return Err(ManageError::NotFound(format!("application {client_id}")));
    }
    let mut event = actor.event(EventType::ConsentRevoked, now);
    event.user_id = Some(user_id);
    event.username = Some(user.username.as_str().to_string());
    event.client_id = Some(client_id.to_string());
    event.details = serde_json::json!({ "grants_revoked": revoked, "consent": had_consent });
    record(services, event).await;
    Ok(revoked)
}
