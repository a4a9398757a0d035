//! Administrative operations shared by the CLI and the admin API: each validates its
//! input, writes atomically and records a security event naming the actor.

pub mod account;
pub mod backup;
pub mod backup_schedule;
pub mod bootstrap;
pub mod clients;
pub mod housekeeping;
pub mod keys;
pub mod mfa;
pub mod recovery;
pub mod resources;
pub mod sessions;
pub mod upstreams;
pub mod users;

use chrono::{DateTime, Utc};

use crate::audit::{EventType, Outcome, SecurityEvent};
use crate::domain::Invalid;
use crate::http::meta::RequestMeta;
use crate::services::Services;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    #[error("{0}")]
    Invalid(#[from] Invalid),
    #[error("{0} already exists")]
    Conflict(&'static str),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Store(StoreError),
    #[error("{0}")]
    Internal(String),
}

impl From<StoreError> for ManageError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(what) => Self::Conflict(what),
            other => Self::Store(other),
        }
    }
}

/// Who performed an administrative action.
#[derive(Debug, Clone)]
pub enum Actor {
    /// The `idp` command line, run by whoever has the server's configuration.
    Cli,
    /// The server itself (first-start bootstrap).
    System,
    /// An administrator through the admin API: their user id and where they called from.
    Admin { user_id: String, meta: RequestMeta },
    /// A user acting on their own account (the account page): their id and address.
    User { user_id: String, meta: RequestMeta },
}

impl Actor {
    pub fn id(&self) -> String {
        match self {
            Self::Cli => "cli".into(),
            Self::System => "system".into(),
            Self::Admin { user_id, .. } | Self::User { user_id, .. } => user_id.clone(),
        }
    }

    /// A new event naming this actor (and, for an administrator, their address).
    pub fn event(&self, event_type: EventType, now: DateTime<Utc>) -> SecurityEvent {
        let mut event = SecurityEvent::new(event_type, Outcome::Success, now);
        event.actor_id = Some(self.id());
        match self {
            Self::Admin { meta, .. } | Self::User { meta, .. } => meta.stamp(event),
            _ => event,
        }
    }
}

/// Stores and logs a security event. Failing to store it does not undo the action it
/// reports; the log line remains.
pub async fn record(services: &Services, event: SecurityEvent) {
    event.log();
    if let Err(e) = services.store.record_event(&event).await {
        tracing::error!(error = %e, event_type = event.event_type.as_str(), "could not store security event");
    }
}
