//! User passwords: argon2id with OWASP parameters (m=19456 KiB, t=2, p=1) in PHC strings.
//!
//! Hashing costs tens of milliseconds of CPU, so it runs on the blocking pool, at most
//! `password_hash_concurrency` at a time: a burst of logins queues instead of starving
//! the async executor. Unknown users are checked against a dummy hash, so the time a
//! login takes does not reveal whether the user exists.

use std::sync::Arc;

use argon2::password_hash::phc::PasswordHash;
use argon2::{Algorithm, Argon2, Params, PasswordHasher as _, PasswordVerifier as _, Version};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

/// OWASP Password Storage Cheat Sheet, argon2id second configuration.
pub const OWASP_PARAMS: (u32, u32, u32) = (19_456, 2, 1);

/// Longest password accepted: longer inputs are refused before any hashing (no DoS by length).
pub const MAX_PASSWORD_BYTES: usize = 1024;
pub const MIN_PASSWORD_CHARS: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("password hashing failed: {0}")]
    Hashing(String),
    #[error("the password hashing task was cancelled")]
    Cancelled,
}

/// The result of checking a password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// Correct. `rehash` carries a new PHC string when the stored one used older parameters.
    Valid {
        rehash: Option<String>,
    },
    Invalid,
}

#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    permits: Arc<Semaphore>,
    dummy_phc: Arc<String>,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("permits", &self.permits.available_permits())
            .finish()
    }
}

/// Checks a new password against the policy; the message is shown to the person choosing it.
pub fn check_policy(password: &str) -> Result<(), String> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(format!(
            "password must be at least {MIN_PASSWORD_CHARS} characters"
        ));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(format!("password must be at most {MAX_PASSWORD_BYTES} bytes"));
    }
    Ok(())
}

impl PasswordHasher {
    pub fn new(concurrency: usize) -> Result<Self, PasswordError> {
        let (m, t, p) = OWASP_PARAMS;
        Self::with_params(concurrency, m, t, p)
    }

    /// Explicit parameters; tests use small ones to check parameter upgrades.
    pub fn with_params(concurrency: usize, m: u32, t: u32, p: u32) -> Result<Self, PasswordError> {
        let params = Params::new(m, t, p, None).map_err(|e| PasswordError::Hashing(e.to_string()))?;
        let dummy_phc = hash_blocking(&params, b"dummy password for unknown users")?;
        Ok(Self {
            params,
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            dummy_phc: Arc::new(dummy_phc),
        })
    }

    pub async fn hash(&self, password: &SecretString) -> Result<String, PasswordError> {
        let params = self.params.clone();
        let password = password.clone();
        self.run(move || hash_blocking(&params, password.expose_secret().as_bytes()))
            .await?
    }

    /// Verifies `password` against `stored`, or against a dummy hash when there is none
    /// (unknown user, or a user without a password), so both paths cost the same.
    pub async fn verify(
        &self,
        password: &SecretString,
        stored: Option<String>,
    ) -> Result<Verification, PasswordError> {
        if password.expose_secret().len() > MAX_PASSWORD_BYTES {
            return Ok(Verification::Invalid);
        }
        let known = stored.is_some();
        let phc = stored.unwrap_or_else(|| self.dummy_phc.as_ref().clone());
        let params = self.params.clone();
        let password = password.clone();
        self.run(move || {
            let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
            let ok = argon2
                .verify_password(password.expose_secret().as_bytes(), phc.as_str())
                .is_ok();
            if !(ok && known) {
                return Ok(Verification::Invalid);
            }
            let rehash = if uses_params(&phc, &params) {
                None
            } else {
                Some(hash_blocking(&params, password.expose_secret().as_bytes())?)
            };
            Ok(Verification::Valid { rehash })
        })
        .await?
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| PasswordError::Cancelled)?;
        let started = std::time::Instant::now();
        let result = tokio::task::spawn_blocking(work)
            .await
            .map_err(|_| PasswordError::Cancelled);
        crate::metrics::observe("idp_password_hash_duration_seconds", &[], started.elapsed());
        result
    }

    /// Hashes waiting for a permit or running: the queue depth, for metrics.
    pub fn available_permits(&self) -> usize {
        self.permits.available_permits()
    }
}

fn hash_blocking(params: &Params, password: &[u8]) -> Result<String, PasswordError> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password(password)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hashing(e.to_string()))
}

/// Whether a stored PHC string is argon2id with exactly the current parameters.
fn uses_params(phc: &str, current: &Params) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    if hash.algorithm.as_str() != "argon2id" {
        return false;
    }
    match Params::try_from(&hash) {
        Ok(p) => {
            p.m_cost() == current.m_cost() && p.t_cost() == current.t_cost() && p.p_cost() == current.p_cost()
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_string())
    }

    #[tokio::test]
    async fn a_hashed_password_verifies_and_a_wrong_one_does_not() {
        let hasher = PasswordHasher::new(2).unwrap();
        let phc = hasher.hash(&secret("correct horse")).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert_eq!(
            hasher
                .verify(&secret("correct horse"), Some(phc.clone()))
                .await
                .unwrap(),
            Verification::Valid { rehash: None }
        );
        assert_eq!(
            hasher.verify(&secret("wrong"), Some(phc)).await.unwrap(),
            Verification::Invalid
        );
    }

    #[tokio::test]
    async fn an_unknown_user_never_verifies_even_with_the_dummy_password() {
        let hasher = PasswordHasher::new(1).unwrap();
        let result = hasher
            .verify(&secret("dummy password for unknown users"), None)
            .await
            .unwrap();
        assert_eq!(result, Verification::Invalid);
    }

    #[tokio::test]
    async fn a_hash_with_old_parameters_is_upgraded_on_success() {
        let old = PasswordHasher::with_params(1, 8192, 1, 1).unwrap();
        let phc = old.hash(&secret("pa55word!")).await.unwrap();
        let current = PasswordHasher::new(1).unwrap();
        match current.verify(&secret("pa55word!"), Some(phc)).await.unwrap() {
            Verification::Valid { rehash: Some(new) } => assert!(new.contains("m=19456,t=2,p=1")),
            other => panic!("expected an upgrade, got {other:?}"),
        }
    }

    #[test]
    fn the_policy_refuses_short_and_huge_passwords() {
        assert!(check_policy("short").is_err());
        assert!(check_policy(&"x".repeat(2000)).is_err());
        assert!(check_policy("long enough").is_ok());
    }
}
