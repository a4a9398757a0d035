//! Ending a user's sessions and revoking their grants: in the store, in the deny-list (so
//! that access tokens already issued stop working everywhere at once), and at the relying
//! parties that asked for back-channel logout.

use super::{Actor, ManageError, record};
use crate::audit::EventType;
use crate::domain::user::User;
use crate::oidc::{logout, revocation};
use crate::services::Services;
use crate::store::StoreError;

/// What to end: everything of the user, one session (and the grants given in it), or one grant.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    Session(&'a str),
    Grant(&'a str),
}

/// How much was ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ended {
    pub sessions: u64,
    pub grants: u64,
}

/// Ends the user's sessions and grants (all of them, or only `target`) and records it.
pub async fn revoke_user_access(
    services: &Services,
    user: &User,
    target: Option<Target<'_>>,
    actor: &Actor,
) -> Result<Ended, ManageError> {
    let ended = end_access(services, user, target).await?;
    record_revocation(services, user, target, ended, actor).await;
    Ok(ended)
}

/// Ends the user's sessions and grants (all of them, or only `target`) without recording:
/// for callers whose own event says why (a temporary password, a disabled account).
pub async fn end_access(
    services: &Services,
    user: &User,
    target: Option<Target<'_>>,
) -> Result<Ended, ManageError> {
    let now = services.clock.now();
    let user_id = user.id.to_string();
    let mut ended = Ended::default();
    let mut grants = Vec::new();
    // The store lists live grants a page at a time; revoked ones drop out of the next page.
    loop {
        let page = services.store.grants_of_user(&user_id, now).await?;
        let chosen: Vec<_> = page
            .into_iter()
            .filter(|g| match target {
                None => true,
                Some(Target::Session(sid)) => g.session_id.as_deref() == Some(sid),
                Some(Target::Grant(id)) => g.id == id,
            })
            .collect();
        if chosen.is_empty() {
            break;
        }
        for grant in &chosen {
            let client = services.store.find_client(&grant.client_id).await?;
            revocation::revoke_grant(services, &grant.id, client.as_ref(), now)
                .await
                .map_err(|e| ManageError::Store(StoreError::Unavailable(e.to_string())))?;
            ended.grants += 1;
        }
        grants.extend(chosen);
        if target.is_some() {
            break;
        }
    }
    let sid = match target {
        None => None,
        Some(Target::Session(sid)) => Some(sid),
        Some(Target::Grant(_)) => {
            if ended.grants == 0 {
                return Err(ManageError::NotFound("grant".into()));
            }
            return Ok(ended);
        }
    };
    let sessions = services.store.sessions_of_user(&user_id, now).await?;
    for session in sessions.iter().filter(|s| sid.is_none_or(|sid| s.sid == sid)) {
        // Tell every relying party that holds this session (OIDC Back-Channel Logout §2.5).
        for grant in grants
            .iter()
            .filter(|g| g.session_id.as_deref() == Some(session.sid.as_str()))
        {
            logout::notify_back_channel(
                services.clone(),
                grant.client_id.clone(),
                user_id.clone(),
                session.sid.clone(),
                now,
            );
        }
    }
    ended.sessions = services.store.delete_sessions_of_user(&user_id, sid).await?;
    if sid.is_some() && ended.sessions == 0 {
        return Err(ManageError::NotFound("session".into()));
    }
    Ok(ended)
}

async fn record_revocation(
    services: &Services,
    user: &User,
    target: Option<Target<'_>>,
    ended: Ended,
    actor: &Actor,
) {
    let mut event = actor.event(EventType::TokenRevoked, services.clock.now());
    event.user_id = Some(user.id.to_string());
    event.username = Some(user.username.as_str().to_string());
    event.details = serde_json::json!({
        "scope": match target {
            None => "all".to_string(),
            Some(Target::Session(sid)) => format!("session {sid}"),
            Some(Target::Grant(id)) => format!("grant {id}"),
        },
        "sessions": ended.sessions,
        "grants": ended.grants,
    });
    record(services, event).await;
}
