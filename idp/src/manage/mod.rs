//! Administrative operations shared by the CLI and the admin API: each validates its
//! input, writes atomically and records a security event naming the actor.

pub mod bootstrap;
pub mod clients;
pub mod housekeeping;
pub mod keys;
pub mod users;

use crate::audit::SecurityEvent;
use crate::domain::Invalid;
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
    /// An administrator, by user id.
    Admin(String),
}

impl Actor {
    pub fn id(&self) -> String {
        match self {
            Self::Cli => "cli".into(),
            Self::System => "system".into(),
            Self::Admin(id) => id.clone(),
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
