//! Administering a user's second factors: see them, remove one, reset all (which also ends
//! the user's sessions and grants: whoever held the account may have enrolled a factor of
//! their own), and require enrolment at the next login. Shared by the CLI and the admin API.

use uuid::Uuid;

use super::{Actor, ManageError, record, sessions, users};
use crate::audit::EventType;
use crate::domain::mfa::Factor;
use crate::domain::user::User;
use crate::services::Services;

/// A user's second factors, as an administrator sees them.
pub struct MfaSummary {
    pub user: User,
    /// Confirmed factors only: an unfinished enrolment is not a factor.
    pub factors: Vec<Factor>,
    pub recovery_codes_left: i64,
}

pub async fn summary(services: &Services, id: Uuid) -> Result<MfaSummary, ManageError> {
    let user = users::get(services, id).await?;
    summary_of(services, user).await
}

pub async fn summary_by_username(services: &Services, username: &str) -> Result<MfaSummary, ManageError> {
    let user = users::by_username(services, username).await?;
    summary_of(services, user).await
}

async fn summary_of(services: &Services, user: User) -> Result<MfaSummary, ManageError> {
    let mut factors = services.store.factors_of(user.id).await?;
    factors.retain(Factor::confirmed);
    let recovery_codes_left = services.store.recovery_codes_left(user.id).await?;
    Ok(MfaSummary {
        user,
        factors,
        recovery_codes_left,
    })
}

/// Removes one factor of the user.
pub async fn remove_factor(
    services: &Services,
    id: Uuid,
    factor_id: Uuid,
    actor: Actor,
) -> Result<(), ManageError> {
    let user = users::get(services, id).await?;
    if !services.store.delete_factor(user.id, factor_id).await? {
        return Err(ManageError::NotFound(format!("factor {factor_id}")));
    }
    let mut event = actor.event(EventType::MfaFactorRemoved, services.clock.now());
    event.user_id = Some(user.id.to_string());
    event.username = Some(user.username.as_str().to_string());
    event.details = serde_json::json!({ "factor_id": factor_id });
    record(services, event).await;
    Ok(())
}

/// Removes every factor and recovery code, ends every session and grant of the user, and
/// (with `require_enrolment`) makes them enrol again at their next login.
pub async fn reset(
    services: &Services,
    id: Uuid,
    require_enrolment: bool,
    actor: Actor,
) -> Result<sessions::Ended, ManageError> {
    let user = users::get(services, id).await?;
    // It would end the administrator's own session and lock them out of the portal.
    if actor.id() == user.id.to_string() {
        return Err(crate::domain::Invalid::new("you cannot reset your own second factors").into());
    }
    reset_user(services, &user, require_enrolment, actor).await
}

pub async fn reset_by_username(
    services: &Services,
    username: &str,
    require_enrolment: bool,
    actor: Actor,
) -> Result<(User, sessions::Ended), ManageError> {
    let user = users::by_username(services, username).await?;
    let ended = reset_user(services, &user, require_enrolment, actor).await?;
    Ok((user, ended))
}

async fn reset_user(
    services: &Services,
    user: &User,
    require_enrolment: bool,
    actor: Actor,
) -> Result<sessions::Ended, ManageError> {
    let (factors, codes) = services.store.reset_mfa(user.id).await?;
    let now = services.clock.now();
    if require_enrolment {
        services
            .store
            .set_mfa_enrolment_required(user.id, true, now)
            .await?;
    }
    let ended = sessions::end_access(services, user, None).await?;
    let mut event = actor.event(EventType::MfaReset, now);
    event.user_id = Some(user.id.to_string());
    event.username = Some(user.username.as_str().to_string());
    event.details = serde_json::json!({
        "factors_removed": factors,
        "recovery_codes_removed": codes,
        "enrolment_required": require_enrolment,
        "sessions_ended": ended.sessions,
        "grants_revoked": ended.grants,
    });
    record(services, event).await;
    Ok(ended)
}

/// Makes the user enrol a second factor at their next login (or no longer).
pub async fn require_enrolment(
    services: &Services,
    id: Uuid,
    required: bool,
    actor: Actor,
) -> Result<(), ManageError> {
    let user = users::get(services, id).await?;
    let now = services.clock.now();
    if !services
        .store
        .set_mfa_enrolment_required(user.id, required, now)
        .await?
    {
        return Err(ManageError::NotFound(format!("user {id}")));
    }
    let mut event = actor.event(EventType::UserChanged, now);
    event.user_id = Some(user.id.to_string());
    event.username = Some(user.username.as_str().to_string());
    event.details = serde_json::json!({ "mfa_enrolment_required": required });
    record(services, event).await;
    Ok(())
}
