//! What the admin API needs beyond the flows: counts, aggregates, per-user listings and
//! edits. Kept apart from the per-aggregate traits the hot paths use.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{StoreResult, StoredKey};
use crate::domain::client::Client;
use crate::domain::session::Session;
use crate::domain::user::Email;

/// The fields of a user an administrator edits.
#[derive(Debug, Clone)]
pub struct UserProfile {
    pub email: Option<Email>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub roles: Vec<String>,
}

/// A live grant with its refresh-token family's figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantFamily {
    pub id: String,
    pub client_id: String,
    pub scope: String,
    pub offline: bool,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    pub generation: i64,
    pub ip: Option<String>,
    /// The provider session (`sid`) it was granted in.
    pub session_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentRecord {
    pub client_id: String,
    pub scopes: Vec<String>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventCount {
    pub bucket: DateTime<Utc>,
    pub event_type: String,
    pub outcome: String,
    pub count: i64,
}

#[async_trait]
pub trait AdminStore: Send + Sync {
    /// Replaces the profile fields. False when no such user exists.
    async fn update_user_profile(
        &self,
        id: Uuid,
        profile: &UserProfile,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Sets the password and whether it must be changed at the next login, in one transaction.
    async fn replace_password(
        &self,
        id: Uuid,
        phc: &str,
        must_change: bool,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Deletes the user with its credential, sessions, grants, tokens and consents.
    async fn delete_user(&self, id: Uuid) -> StoreResult<bool>;
    async fn count_users(&self) -> StoreResult<i64>;
    async fn count_clients(&self) -> StoreResult<i64>;
    async fn count_active_sessions(&self, now: DateTime<Utc>) -> StoreResult<i64>;
    /// Failed logins summed over every source, and the latest lock, of an account.
    async fn login_failures_of(&self, account_key: &str) -> StoreResult<(i64, Option<DateTime<Utc>>)>;
    /// The user's unexpired sessions, newest first.
    async fn sessions_of_user(&self, user_id: &str, now: DateTime<Utc>) -> StoreResult<Vec<Session>>;
    /// Deletes the user's sessions (all, or the one with `sid`); returns how many.
    async fn delete_sessions_of_user(&self, user_id: &str, sid: Option<&str>) -> StoreResult<u64>;
    /// The user's live (unrevoked, unexpired) grants, newest first.
    async fn grants_of_user(&self, user_id: &str, now: DateTime<Utc>) -> StoreResult<Vec<GrantFamily>>;
    async fn consents_of_user(&self, user_id: &str) -> StoreResult<Vec<ConsentRecord>>;
    /// Forgets what the user consented to for a client (asked again next time); false when
    /// there was nothing.
    async fn delete_consent(&self, user_id: &str, client_id: &str) -> StoreResult<bool>;
    /// Replaces a client's settings (not its id, type or secret hash; the sealed secret goes when
    /// the client stops using client_secret_jwt). False when it does not exist.
    async fn update_client(&self, client: &Client) -> StoreResult<bool>;
    /// Sets a client's secret: its keyed hash and, for `client_secret_jwt`, the secret sealed.
    async fn set_client_secret(
        &self,
        id: &str,
        secret_hash: &str,
        secret_sealed: Option<&[u8]>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Every signing key, removed ones included, newest first.
    async fn all_signing_keys(&self) -> StoreResult<Vec<StoredKey>>;
    /// Events per `bucket_ms` bucket, type and outcome in [from, until).
    async fn event_counts(
        &self,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
        bucket_ms: i64,
        types: &[&str],
    ) -> StoreResult<Vec<EventCount>>;
    /// Source addresses with the most failure events in [from, until).
    async fn top_failure_sources(
        &self,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<(String, i64)>>;
}
