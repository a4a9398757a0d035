//! Self-service records: the outgoing-mail outbox and single-use links sent to users.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::StoreResult;

/// A message to send, already rendered and encrypted.
#[derive(Debug, Clone)]
pub struct OutgoingMail {
    pub id: Uuid,
    pub recipient: String,
    /// Which message it is (`password_reset`, …): for metrics and the portal, never content.
    pub template: String,
    pub message_enc: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A message claimed by a worker for sending.
#[derive(Debug, Clone)]
pub struct QueuedMail {
    pub id: Uuid,
    pub recipient: String,
    pub template: String,
    pub message_enc: Vec<u8>,
    /// Attempts so far, this one included.
    pub attempts: i64,
}

/// How the outbox stands, for metrics and the portal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboxStatus {
    pub pending: i64,
    pub failed: i64,
    pub sent: i64,
    /// The error of the most recent failed attempt of a message not yet sent, if any.
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkPurpose {
    PasswordReset,
    VerifyEmail,
    Invitation,
    /// Moves the account to the address the link was sent to.
    ChangeEmail,
}

impl LinkPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PasswordReset => "password_reset",
            Self::VerifyEmail => "verify_email",
            Self::Invitation => "invitation",
            Self::ChangeEmail => "change_email",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "password_reset" => Some(Self::PasswordReset),
            "verify_email" => Some(Self::VerifyEmail),
            "invitation" => Some(Self::Invitation),
            "change_email" => Some(Self::ChangeEmail),
            _ => None,
        }
    }
}

/// A link sent to a user, as stored: the token only as its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionLink {
    pub token_hash: String,
    pub user_id: Uuid,
    pub purpose: LinkPurpose,
    /// Keyed hash of the password credential when the link was issued ('' for none).
    pub password_fingerprint: String,
    /// The address a verification link proves.
    pub email: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
}

#[async_trait]
pub trait AccountStore: Send + Sync {
    async fn enqueue_mail(&self, mail: &OutgoingMail) -> StoreResult<()>;
    /// Claims up to `limit` messages due at `now` for one worker: their next attempt moves to
    /// `lease_until` and their attempt count up by one, atomically, so that concurrent
    /// workers on other replicas never claim the same message.
    async fn claim_mail(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<QueuedMail>>;
    /// The message was accepted by the SMTP server: its content is dropped.
    async fn mail_sent(&self, id: Uuid, now: DateTime<Utc>) -> StoreResult<()>;
    /// An attempt failed: try again at `retry_at`, or never (`None`: given up at `now`).
    async fn mail_failed(
        &self,
        id: Uuid,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
    async fn outbox_status(&self) -> StoreResult<OutboxStatus>;

    async fn insert_action_link(&self, link: &ActionLink) -> StoreResult<()>;
    /// The link with this token hash, used or not.
    async fn find_action_link(&self, token_hash: &str) -> StoreResult<Option<ActionLink>>;
    /// Marks the link used, only if it is unused and unexpired at `now` (atomic: of
    /// concurrent uses exactly one succeeds).
    async fn use_action_link(&self, token_hash: &str, now: DateTime<Utc>) -> StoreResult<bool>;
    /// Marks every unused link of `purpose` of the user used (a newer one replaces them).
    async fn retire_action_links(
        &self,
        user_id: Uuid,
        purpose: LinkPurpose,
        now: DateTime<Utc>,
    ) -> StoreResult<u64>;
    /// Marks the user's email verified, only while it still is `email` (a verification
    /// link for an address changed since proves nothing).
    async fn mark_email_verified(&self, user_id: Uuid, email: &str, now: DateTime<Utc>) -> StoreResult<bool>;
}
