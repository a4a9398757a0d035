//! Second factors and recovery codes.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::StoreResult;
use crate::domain::mfa::Factor;

#[async_trait]
pub trait MfaStore: Send + Sync {
    /// Adds an unconfirmed factor, replacing the user's other unfinished enrolments.
    async fn insert_factor(&self, factor: &Factor) -> StoreResult<()>;
    /// Every factor of the user, confirmed or not, oldest first.
    async fn factors_of(&self, user_id: Uuid) -> StoreResult<Vec<Factor>>;
    /// The confirmed passkey with this WebAuthn credential id, whoever it belongs to.
    async fn find_passkey(&self, credential_id: &str) -> StoreResult<Option<Factor>>;
    /// Records that a passkey signed in, with its updated credential (signature counter,
    /// backup state) when that changed.
    async fn record_passkey_use(
        &self,
        id: Uuid,
        secret: Option<&[u8]>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Spends a WebAuthn challenge: true the first time, false ever after (until it expired
    /// and housekeeping dropped it, when the ceremony that carried it is refused anyway).
    async fn spend_challenge(&self, challenge_hash: &str, expires_at: DateTime<Utc>) -> StoreResult<bool>;
    /// Marks an enrolment finished with the first code's `step`; false if it is gone.
    async fn confirm_factor(&self, id: Uuid, step: i64, now: DateTime<Utc>) -> StoreResult<bool>;
    /// Accepts TOTP `step` for a confirmed factor only if it is later than every step accepted
    /// before (atomic: one code, one login, across every replica).
    async fn use_totp_step(&self, id: Uuid, step: i64, now: DateTime<Utc>) -> StoreResult<bool>;
    /// Removes one factor of the user; false if there was none.
    async fn delete_factor(&self, user_id: Uuid, id: Uuid) -> StoreResult<bool>;
    /// Replaces every recovery code of the user with these hashes, in one transaction.
    async fn replace_recovery_codes(
        &self,
        user_id: Uuid,
        hashes: &[String],
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Uses up a recovery code (atomic); false if it is unknown or used.
    async fn use_recovery_code(&self, user_id: Uuid, hash: &str, now: DateTime<Utc>) -> StoreResult<bool>;
    async fn recovery_codes_left(&self, user_id: Uuid) -> StoreResult<i64>;
    /// Removes every factor and recovery code of the user: (factors, codes) removed.
    async fn reset_mfa(&self, user_id: Uuid) -> StoreResult<(u64, u64)>;
    async fn set_mfa_enrolment_required(
        &self,
        user_id: Uuid,
        required: bool,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Users with at least one confirmed factor, for the adoption gauge.
    async fn users_with_mfa(&self) -> StoreResult<i64>;
}
