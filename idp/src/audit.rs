//! The closed set of security events. Flows emit them; the store keeps them; the admin
//! portal lists exactly these; each is also a structured log line on target `security`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

macro_rules! event_types {
    ($($variant:ident => $name:literal),+ $(,)?) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum EventType { $($variant),+ }

        impl EventType {
            pub const ALL: &'static [EventType] = &[$(EventType::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $(EventType::$variant => $name),+ }
            }

            pub fn parse(raw: &str) -> Option<Self> {
                match raw { $($name => Some(EventType::$variant),)+ _ => None }
            }
        }
    };
}

event_types! {
    LoginSucceeded => "login_succeeded",
    LoginFailed => "login_failed",
    AccountLocked => "account_locked",
    AccountUnlocked => "account_unlocked",
    RateLimited => "rate_limited",
    AuthorizationDenied => "authorization_denied",
    ConsentGranted => "consent_granted",
    ConsentRevoked => "consent_revoked",
    CodeReuseDetected => "code_reuse_detected",
    RefreshTokenReused => "refresh_token_reused",
    TokenRevoked => "token_revoked",
    Logout => "logout",
    ClientAuthFailed => "client_authentication_failed",
    KeyRotated => "key_rotated",
    UserCreated => "user_created",
    UserChanged => "user_changed",
    UserDeleted => "user_deleted",
    ClientCreated => "client_created",
    ClientChanged => "client_changed",
    ClientDeleted => "client_deleted",
    PasswordChanged => "password_changed",
    MfaEnrolled => "mfa_enrolled",
    MfaSucceeded => "mfa_succeeded",
    MfaFailed => "mfa_failed",
    RecoveryCodeUsed => "recovery_code_used",
    RecoveryCodesRegenerated => "recovery_codes_regenerated",
    MfaFactorRemoved => "mfa_factor_removed",
    MfaReset => "mfa_reset",
    PasswordResetRequested => "password_reset_requested",
    PasswordReset => "password_reset",
    EmailVerified => "email_verified",
    RegistrationRequested => "registration_requested",
    ResourceCreated => "resource_created",
    ResourceDeleted => "resource_deleted",
    UpstreamCreated => "upstream_created",
    UpstreamChanged => "upstream_changed",
    UpstreamDeleted => "upstream_deleted",
    IdentityUnlinked => "identity_unlinked",
    IdentityLinked => "identity_linked",
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    Failure,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "success" => Some(Self::Success),
            "failure" => Some(Self::Failure),
            _ => None,
        }
    }
}

/// One security event, as recorded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SecurityEvent {
    /// Assigned by the store; increasing, so it doubles as the pagination cursor.
    pub id: i64,
    pub occurred_at: DateTime<Utc>,
    pub event_type: EventType,
    pub outcome: Outcome,
    pub user_id: Option<String>,
    pub username: Option<String>,
    pub client_id: Option<String>,
    /// The administrator who acted, for administrative events.
    pub actor_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    /// Event-specific facts, e.g. `{"reason": "bad_password"}`. Never a secret.
    pub details: serde_json::Value,
}

impl SecurityEvent {
    pub fn new(event_type: EventType, outcome: Outcome, occurred_at: DateTime<Utc>) -> Self {
        Self {
            id: 0,
            occurred_at,
            event_type,
            outcome,
            user_id: None,
            username: None,
            client_id: None,
            actor_id: None,
            ip: None,
            user_agent: None,
            request_id: None,
            details: serde_json::Value::Object(Default::default()),
        }
    }

    /// Writes the event as a structured log line on the `security` target.
    pub fn log(&self) {
        metrics::counter!("idp_security_events_total", "type" => self.event_type.as_str(), "outcome" => self.outcome.as_str())
            .increment(1);
        tracing::info!(
            target: "security",
            event_type = self.event_type.as_str(),
            outcome = self.outcome.as_str(),
            user_id = self.user_id.as_deref(),
            username = self.username.as_deref(),
            client_id = self.client_id.as_deref(),
            actor_id = self.actor_id.as_deref(),
            ip = self.ip.as_deref(),
            request_id = self.request_id.as_deref(),
            details = %self.details,
            "security event"
        );
    }
}

/// A filter over security events, newest first, continuing below `before_id`.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub event_type: Option<EventType>,
    pub outcome: Option<Outcome>,
    pub user_id: Option<String>,
    /// The username as recorded (case-insensitive).
    pub username: Option<String>,
    pub client_id: Option<String>,
    pub ip: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub before_id: Option<i64>,
    pub limit: u32,
}

#[cfg(test)]
mod tests {
    use super::EventType;

    #[test]
    fn the_portal_knows_every_event_type() {
        let names: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
        assert_eq!(names, api_types::EVENT_TYPES);
    }
}
