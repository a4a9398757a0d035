//! Types shared by the server and the admin portal, so the two cannot drift: the admin
//! API (`/admin/api/v1`) serialises exactly these, and the portal deserialises them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
#[cfg(feature = "openapi")]
use utoipa::{IntoParams, ToSchema};

/// Derives the OpenAPI schema only where the server asks for it.
macro_rules! api_type {
    ($(#[$meta:meta])* $vis:vis struct $name:ident $($rest:tt)*) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(ToSchema))]
        $vis struct $name $($rest)*
    };
}

/// The portal's OAuth client id, registered by the server at start-up.
pub const PORTAL_CLIENT_ID: &str = "admin-portal";
/// The account page's OAuth client id, registered by the server at start-up.
pub const ACCOUNT_CLIENT_ID: &str = "account";
/// Every security event type the server records (the server's tests keep this in step).
pub const EVENT_TYPES: &[&str] = &[
    "login_succeeded",
    "login_failed",
    "account_locked",
    "account_unlocked",
    "rate_limited",
    "authorization_denied",
    "consent_granted",
    "consent_revoked",
    "code_reuse_detected",
    "refresh_token_reused",
    "token_revoked",
    "logout",
    "client_authentication_failed",
    "key_rotated",
    "user_created",
    "user_changed",
    "user_deleted",
    "client_created",
    "client_changed",
    "client_deleted",
    "password_changed",
    "mfa_enrolled",
    "mfa_succeeded",
    "mfa_failed",
    "recovery_code_used",
    "recovery_codes_regenerated",
    "mfa_factor_removed",
    "mfa_reset",
    "password_reset_requested",
    "password_reset",
    "email_verified",
    "registration_requested",
    "resource_created",
    "resource_deleted",
    "upstream_created",
    "upstream_changed",
    "upstream_deleted",
    "identity_unlinked",
    "identity_linked",
];
/// The role that lets a user into the admin API and portal.
pub const ADMIN_ROLE: &str = "admin";

mod integrations;
pub use integrations::*;

api_type! {
    /// An error (RFC 9457 problem details), served as `application/problem+json`.
    pub struct Problem {
        /// A URI naming the kind of problem.
        #[serde(rename = "type")]
        pub kind: String,
        pub title: String,
        pub status: u16,
        /// What went wrong with this request, safe to show to the administrator.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub detail: Option<String>,
    }
}

api_type! {
    /// A user as listed.
    pub struct UserSummary {
        pub id: String,
        pub username: String,
        pub email: Option<String>,
        pub name: Option<String>,
        /// `active` or `disabled`.
        pub status: String,
        pub roles: Vec<String>,
        pub created_at: DateTime<Utc>,
        pub last_login_at: Option<DateTime<Utc>>,
    }
}

api_type! {
    pub struct UserPage {
        pub items: Vec<UserSummary>,
        /// Pass as `cursor` for the next page; absent on the last page.
        pub next_cursor: Option<String>,
    }
}

api_type! {
    /// Everything about one user an administrator reviews.
    pub struct UserDetail {
        #[serde(flatten)]
        pub user: UserSummary,
        pub email_verified: bool,
        pub must_change_password: bool,
        pub updated_at: DateTime<Utc>,
        /// Consecutive failed logins, summed over every source.
        pub failed_login_count: i64,
        /// Set while some source is locked out of this account.
        pub locked_until: Option<DateTime<Utc>>,
        pub sessions: Vec<SessionView>,
        pub grants: Vec<GrantView>,
        pub consents: Vec<ConsentView>,
        pub recent_events: Vec<EventView>,
        pub mfa: MfaView,
        /// Identities at upstream providers (federation) linked to the account.
        #[serde(default)]
        pub identities: Vec<IdentityView>,
    }
}

api_type! {
    /// A second factor of a user. Its secret is never shown.
    pub struct FactorView {
        pub id: String,
        /// `totp` (an authenticator app) or `passkey` (WebAuthn).
        pub kind: String,
        pub name: String,
        pub created_at: DateTime<Utc>,
        pub last_used_at: Option<DateTime<Utc>>,
    }
}

api_type! {
    /// A user's second factors.
    pub struct MfaView {
        pub factors: Vec<FactorView>,
        /// Unused recovery codes.
        pub recovery_codes_left: i64,
        /// The user must enrol a second factor at their next login.
        pub enrolment_required: bool,
    }
}

api_type! {
    /// Resetting a user's second factors.
    pub struct MfaReset {
        /// Also make the user enrol again at their next login.
        #[serde(default)]
        pub require_enrolment: bool,
    }
}

api_type! {
    pub struct MfaEnrolmentRequirement {
        pub required: bool,
    }
}

api_type! {
    pub struct CreateUser {
        pub username: String,
        #[serde(default)]
        pub email: Option<String>,
        #[serde(default)]
        pub name: Option<String>,
        pub password: String,
        #[serde(default)]
        pub roles: Vec<String>,
        /// The user must choose a new password at the next login.
        #[serde(default)]
        pub must_change_password: bool,
    }
}

api_type! {
    /// A partial update: absent fields stay as they are; `null` clears email or name.
    pub struct UpdateUser {
        #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
        pub email: Option<Option<String>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub email_verified: Option<bool>,
        #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
        pub name: Option<Option<String>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub roles: Option<Vec<String>>,
    }
}

api_type! {
    /// A temporary password: the user must replace it at the next login.
    pub struct SetPassword {
        pub password: String,
    }
}

api_type! {
    /// A logged-in browser.
    pub struct SessionView {
        pub sid: String,
        pub ip: Option<String>,
        pub user_agent: Option<String>,
        pub auth_time: DateTime<Utc>,
        pub last_seen_at: DateTime<Utc>,
        pub expires_at: DateTime<Utc>,
    }
}

api_type! {
    /// A live grant: one client's authorization, with its refresh-token family.
    pub struct GrantView {
        pub id: String,
        pub client_id: String,
        pub scope: String,
        pub offline: bool,
        pub created_at: DateTime<Utc>,
        pub expires_at: DateTime<Utc>,
        /// When a token was last issued from it (the latest refresh).
        pub last_used_at: DateTime<Utc>,
        /// How many times its refresh token has been rotated.
        pub generation: i64,
        /// Where the login it came from was made.
        pub ip: Option<String>,
    }
}

api_type! {
    pub struct ConsentView {
        pub client_id: String,
        pub scopes: Vec<String>,
        pub updated_at: DateTime<Utc>,
    }
}

api_type! {
    /// What a revocation did.
    pub struct Revoked {
        pub sessions: u64,
        pub grants: u64,
    }
}

api_type! {
    /// A security event.
    pub struct EventView {
        pub id: i64,
        pub occurred_at: DateTime<Utc>,
        pub event_type: String,
        /// `success` or `failure`.
        pub outcome: String,
        pub user_id: Option<String>,
        pub username: Option<String>,
        pub client_id: Option<String>,
        /// The administrator who acted, for administrative events.
        pub actor_id: Option<String>,
        pub ip: Option<String>,
        pub user_agent: Option<String>,
        pub request_id: Option<String>,
        #[cfg_attr(feature = "openapi", schema(value_type = Object))]
        pub details: serde_json::Value,
    }
}

api_type! {
    pub struct EventPage {
        pub items: Vec<EventView>,
        pub next_cursor: Option<String>,
    }
}

api_type! {
    /// How many events of one type and outcome happened in one time bucket.
    pub struct EventBucket {
        pub bucket: DateTime<Utc>,
        pub event_type: String,
        pub outcome: String,
        pub count: i64,
    }
}

api_type! {
    pub struct SourceCount {
        pub ip: String,
        pub count: i64,
    }
}

api_type! {
    /// Aggregates for charts.
    pub struct EventStats {
        pub from: DateTime<Utc>,
        pub until: DateTime<Utc>,
        /// `hour` or `day`.
        pub interval: String,
        pub buckets: Vec<EventBucket>,
        /// Source addresses with the most failures in the range.
        pub top_failure_ips: Vec<SourceCount>,
    }
}

api_type! {
    /// A signing key. Only public facts: the private key never leaves the server.
    pub struct KeyView {
        pub kid: String,
        pub alg: String,
        /// `pending` (published, not yet signing), `active`, `retired` or `removed`.
        pub state: String,
        pub created_at: DateTime<Utc>,
        pub activates_at: DateTime<Utc>,
        pub retired_at: Option<DateTime<Utc>>,
        pub removed_at: Option<DateTime<Utc>>,
    }
}

api_type! {
    pub struct KeyList {
        pub items: Vec<KeyView>,
    }
}

api_type! {
    pub struct RotateKeys {
        /// Algorithms to rotate; all when absent.
        #[serde(default)]
        pub algs: Option<Vec<String>>,
    }
}

api_type! {
    /// The dashboard's figures.
    pub struct Overview {
        pub users: i64,
        pub clients: i64,
        pub active_sessions: i64,
        pub logins_24h: i64,
        pub login_failures_24h: i64,
        /// Logins and failures per hour over the last 24 hours.
        pub hourly: Vec<EventBucket>,
        /// Outgoing mail (password reset, email verification).
        pub mail: MailStatus,
    }
}

api_type! {
    /// The outgoing-mail outbox.
    pub struct MailStatus {
        /// Whether an SMTP server is configured; without one no mail is sent.
        pub configured: bool,
        /// Messages waiting for their first or next attempt.
        pub pending: i64,
        /// Messages given up after their last attempt (kept a week).
        pub failed: i64,
        /// Messages sent (kept a week).
        pub sent: i64,
        /// The error of the latest failed attempt of a message not yet sent.
        pub last_error: Option<String>,
    }
}

/// Which linked identity: `DELETE /admin/api/v1/users/{id}/identities`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct IdentityKey {
    /// The upstream provider's issuer.
    pub issuer: String,
    /// The user's subject there.
    pub subject: String,
}

/// Query of `GET /admin/api/v1/users`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct UserListQuery {
    /// Substring of username, email or name, case-insensitive.
    pub q: Option<String>,
    /// `active` or `disabled`.
    pub status: Option<String>,
    pub role: Option<String>,
    /// `created` (default), `-created`, `username` or `-username`.
    pub sort: Option<String>,
    pub cursor: Option<String>,
    /// 1 to 200; default 50.
    pub limit: Option<u32>,
}

/// Query of `GET /admin/api/v1/events` and its exports.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct EventListQuery {
    #[serde(rename = "type")]
    pub event_type: Option<String>,
    /// `success` or `failure`.
    pub outcome: Option<String>,
    /// A user id or username.
    pub user: Option<String>,
    pub client_id: Option<String>,
    pub ip: Option<String>,
    /// RFC 3339 time; inclusive.
    pub from: Option<DateTime<Utc>>,
    /// RFC 3339 time; exclusive.
    pub until: Option<DateTime<Utc>>,
    pub cursor: Option<String>,
    /// 1 to 500; default 50.
    pub limit: Option<u32>,
}

/// Query of `GET /admin/api/v1/events/stats`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct EventStatsQuery {
    /// Default: 24 hours before `until`.
    pub from: Option<DateTime<Utc>>,
    /// Default: now.
    pub until: Option<DateTime<Utc>>,
    /// `hour` (default) or `day`.
    pub interval: Option<String>,
}

/// Tells a field that is present, even as `null`, from one that is absent.
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_null_field_clears_and_an_absent_one_keeps() {
        let update: UpdateUser = serde_json::from_str(r#"{"email": null}"#).unwrap();
        assert_eq!(update.email, Some(None));
        assert_eq!(update.name, None);
    }
}
