//! User passwords: argon2id with OWASP parameters (m=19456 KiB, t=2, p=1) in PHC strings.
//!
//! Hashing costs tens of milliseconds of CPU and 19 MiB of memory, so it runs on a fixed
//! set of `password_hash_concurrency` threads, each reusing one memory buffer: a burst of
//! logins queues instead of starving the async executor or growing the heap. Unknown users are checked against a dummy hash, so the time a
//! login takes does not reveal whether the user exists.

use std::sync::Arc;

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use secrecy::{ExposeSecret, SecretString};

/// OWASP Password Storage Cheat Sheet, argon2id second configuration.
pub const OWASP_PARAMS: (u32, u32, u32) = (19_456, 2, 1);

/// Longest password checked at login: longer inputs are refused before any hashing (no DoS
/// by length). New passwords are held to [`MAX_PASSWORD_CHARS`].
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// NIST SP 800-63B §3.1.1.2: at least 8 characters chosen by the user, at least 64 allowed.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Administrators hold every account in their hands: a longer minimum.
pub const MIN_ADMIN_PASSWORD_CHARS: usize = 12;
pub const MAX_PASSWORD_CHARS: usize = 128;
/// The zxcvbn score (0–4) every new password must reach: 2 is about 10^6 guesses or more,
/// far beyond online guessing behind our rate limits.
pub const MIN_STRENGTH: u8 = 2;
/// Below this score, a password zxcvbn recognises as a pattern (a common or breached
/// password or a variant of one, a keyboard walk, a sequence, a date, a name) is refused
/// too; a random 8-character password (no pattern) passes.
pub const PATTERN_FREE_BELOW: u8 = 3;

/// Whose password it is: the policy refuses passwords derived from these.
#[derive(Debug, Clone, Copy, Default)]
pub struct Owner<'a> {
    pub username: &'a str,
    pub email: Option<&'a str>,
    pub name: Option<&'a str>,
    pub admin: bool,
}

impl<'a> Owner<'a> {
    pub fn of(user: &'a crate::domain::user::User) -> Self {
        Self {
            username: user.username.as_str(),
            email: user.email.as_ref().map(|e| e.as_str()),
            name: user.name.as_deref(),
            admin: user.is_admin(),
        }
    }
}

/// The shortest password the policy accepts for `owner`.
pub fn min_chars(owner: &Owner<'_>) -> usize {
    if owner.admin {
        MIN_ADMIN_PASSWORD_CHARS
    } else {
        MIN_PASSWORD_CHARS
    }
}

/// Checks a new password against the policy (NIST SP 800-63B §5.1.1.2): length 8 (12 for
/// administrators) to 128 characters, any Unicode character, no composition rules, and not
/// common, breached or derived from the owner's username, email or name (zxcvbn, offline).
/// The message is shown to the person choosing it and says why.
pub fn check_policy(password: &str, owner: &Owner<'_>) -> Result<(), String> {
    let chars = password.chars().count();
    let min = min_chars(owner);
    if chars < min {
        let whose = if owner.admin { " for an administrator" } else { "" };
        return Err(format!("password must be at least {min} characters{whose}"));
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(format!(
            "password must be at most {MAX_PASSWORD_CHARS} characters"
        ));
    }
    let lowered = password.to_lowercase();
    let mut personal: Vec<String> = vec![owner.username.to_lowercase()];
    if let Some(email) = owner.email {
        let email = email.to_lowercase();
        if let Some((local, _)) = email.split_once('@') {
            personal.push(local.to_string());
        }
        personal.push(email);
    }
    if let Some(name) = owner.name {
        personal.extend(name.to_lowercase().split_whitespace().map(str::to_string));
    }
    personal.retain(|p| p.chars().count() >= 3);
    // Longest first, so a whole address is removed before its parts.
    personal.sort_by_key(|p| std::cmp::Reverse(p.len()));
    // A password that is the username, address or name with fewer than 6 characters of its
    // own around it is refused outright, with the reason.
    let own = personal
        .iter()
        .fold(lowered.clone(), |rest, p| rest.replace(p.as_str(), ""));
    if own.chars().count() < lowered.chars().count() && own.chars().count() < 6 {
        return Err("password must not be based on your username, email address or name".into());
    }
    let inputs: Vec<&str> = personal.iter().map(String::as_str).collect();
    // The estimator is third-party code run on any Unicode input: a panic in it must not take
    // the request (or a worker) down; such a password is refused instead.
    let estimate = std::panic::catch_unwind(|| zxcvbn::zxcvbn(password, &inputs))
        .map_err(|_| "this password could not be checked; choose another".to_string())?;
    let score = u8::from(estimate.score());
    let warning = estimate.feedback().and_then(|f| f.warning());
    if score < MIN_STRENGTH || (score < PATTERN_FREE_BELOW && warning.is_some()) {
        let why = warning.map(|w| format!(" ({w})")).unwrap_or_default();
        return Err(format!(
            "password is too easy to guess{why}; use a longer phrase of unrelated words"
        ));
    }
    Ok(())
}

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

/// Work for a hashing worker: runs with the worker's own argon2 memory.
type Job = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

/// A fixed set of `password_hash_concurrency` threads, each reusing one argon2 memory
/// buffer (19 MiB with the OWASP parameters) for every hash it computes. Memory is bounded
/// by design: idle + workers × buffer. Hashing on whatever blocking-pool thread was free
/// instead left a 19 MiB allocation in each of many allocator arenas (670 MiB after a
/// login surge, issue 15 #12).
struct Workers {
    jobs: std::sync::mpsc::Sender<Job>,
    count: usize,
    /// Hashes running or queued.
    busy: AtomicUsize,
}

#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    workers: Arc<Workers>,
    dummy_phc: Arc<String>,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("workers", &self.workers.count)
            .finish()
    }
}

impl PasswordHasher {
    pub fn new(concurrency: usize) -> Result<Self, PasswordError> {
        let (m, t, p) = OWASP_PARAMS;
        Self::with_params(concurrency, m, t, p)
    }

    /// Explicit parameters; tests use small ones to check parameter upgrades.
    pub fn with_params(concurrency: usize, m: u32, t: u32, p: u32) -> Result<Self, PasswordError> {
        let params = Params::new(m, t, p, None).map_err(|e| PasswordError::Hashing(e.to_string()))?;
        let mut memory = Vec::new();
        let dummy_phc = hash_with(&params, b"dummy password for unknown users", &mut memory)?;
        drop(memory);
        let count = concurrency.max(1);
        let (sender, receiver) = std::sync::mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        for n in 0..count {
            let receiver = receiver.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{n}"))
                .spawn(move || {
                    // Allocated on first use, then reused for every hash of this thread.
                    let mut memory: Vec<Block> = Vec::new();
                    loop {
                        let job = match receiver.lock() {
                            Ok(jobs) => jobs.recv(),
                            Err(poisoned) => poisoned.into_inner().recv(),
                        };
                        match job {
                            Ok(job) => job(&mut memory),
                            Err(_) => return, // every hasher dropped
                        }
                    }
                })
                .map_err(|e| PasswordError::Hashing(format!("cannot start a hashing thread: {e}")))?;
        }
        Ok(Self {
            params,
            workers: Arc::new(Workers {
                jobs: sender,
                count,
                busy: AtomicUsize::new(0),
            }),
            dummy_phc: Arc::new(dummy_phc),
        })
    }

    pub async fn hash(&self, password: &SecretString) -> Result<String, PasswordError> {
        let params = self.params.clone();
        let password = password.clone();
        self.run(move |memory| hash_with(&params, password.expose_secret().as_bytes(), memory))
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
        self.run(move |memory| {
            let ok = verify_with(password.expose_secret().as_bytes(), &phc, memory);
            if !(ok && known) {
                return Ok(Verification::Invalid);
            }
            let rehash = if uses_params(&phc, &params) {
                None
            } else {
                Some(hash_with(&params, password.expose_secret().as_bytes(), memory)?)
            };
            Ok(Verification::Valid { rehash })
        })
        .await?
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        let (done, result) = tokio::sync::oneshot::channel();
        let started = std::time::Instant::now();
        let workers = &self.workers;
        // Counted until this future ends, also when the request is dropped while waiting.
        struct Busy<'a>(&'a AtomicUsize);
        impl Drop for Busy<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::Relaxed);
            }
        }
        workers.busy.fetch_add(1, Ordering::Relaxed);
        let _busy = Busy(&workers.busy);
        let job: Job = Box::new(move |memory| {
            let _ = done.send(work(memory));
        });
        let result = match workers.jobs.send(job) {
            Ok(()) => result.await.map_err(|_| PasswordError::Cancelled),
            Err(_) => Err(PasswordError::Cancelled),
        };
        crate::metrics::observe("idp_password_hash_duration_seconds", &[], started.elapsed());
        result
    }

    /// Hashes running or queued for a worker, for metrics.
    pub fn in_progress(&self) -> usize {
        self.workers.busy.load(Ordering::Relaxed)
    }
}

/// `memory` holding at least the blocks `params` needs (grown once, then reused).
fn blocks_for<'m>(params: &Params, memory: &'m mut Vec<Block>) -> &'m mut [Block] {
    let needed = params.block_count();
    if memory.len() < needed {
        memory.resize(needed, Block::default());
    }
    &mut memory[..needed]
}

/// argon2id of `password` under a fresh 16-byte salt from the OS CSPRNG, as a PHC string,
/// computed in `memory`.
fn hash_with(params: &Params, password: &[u8], memory: &mut Vec<Block>) -> Result<String, PasswordError> {
    let failed = |e: &dyn std::fmt::Display| PasswordError::Hashing(e.to_string());
    let mut salt_bytes = [0u8; 16];
    getrandom::fill(&mut salt_bytes).map_err(|e| failed(&e))?;
    let salt = Salt::new(&salt_bytes).map_err(|e| failed(&e))?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(password, &salt_bytes, &mut out, blocks_for(params, memory))
        .map_err(|e| failed(&e))?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).map_err(|e| failed(&e))?,
        salt: Some(salt),
        hash: Some(Output::new(&out).map_err(|e| failed(&e))?),
    };
    Ok(hash.to_string())
}

/// Whether `password` matches the PHC string `phc` (any argon2 variant and parameters),
/// computed in `memory`; the comparison is constant-time.
fn verify_with(password: &[u8], phc: &str, memory: &mut Vec<Block>) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    let (Ok(algorithm), Ok(params), Some(salt), Some(expected)) = (
        Algorithm::try_from(hash.algorithm.as_str()),
        Params::try_from(&hash),
        hash.salt,
        hash.hash,
    ) else {
        return false;
    };
    let version = hash
        .version
        .map_or(Ok(Version::V0x13), Version::try_from)
        .unwrap_or(Version::V0x13);
    let mut out = vec![0u8; expected.len()];
    let argon2 = Argon2::new(algorithm, version, params.clone());
    if argon2
        .hash_password_into_with_memory(password, salt.as_ref(), &mut out, blocks_for(&params, memory))
        .is_err()
    {
        return false;
    }
    Output::new(&out).is_ok_and(|computed| computed == expected)
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
    async fn hashes_made_by_the_argon2_crate_itself_still_verify() {
        use argon2::PasswordHasher as _;
        let params = Params::new(8192, 1, 1, None).unwrap();
        let phc = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_with_salt(b"stored before", b"0123456789abcdef")
            .unwrap()
            .to_string();
        let hasher = PasswordHasher::new(1).unwrap();
        assert!(matches!(
            hasher
                .verify(&secret("stored before"), Some(phc.clone()))
                .await
                .unwrap(),
            Verification::Valid { rehash: Some(_) }
        ));
        assert_eq!(
            hasher.verify(&secret("stored befor"), Some(phc)).await.unwrap(),
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

    fn owner(admin: bool) -> Owner<'static> {
        Owner {
            username: "maria",
            email: Some("maria.lopez@example.com"),
            name: Some("Maria Lopez"),
            admin,
        }
    }

    #[test]
    fn the_policy_refuses_short_and_huge_passwords() {
        assert!(check_policy("short", &owner(false)).is_err());
        assert!(check_policy(&"x".repeat(129), &owner(false)).is_err());
        let long = "correct horse battery ".repeat(6);
        assert!(check_policy(&long[..128], &owner(false)).is_ok());
        // 8 suffices for a user, not for an administrator.
        assert!(check_policy("tq8#Vz!p", &owner(false)).is_ok());
        let refused = check_policy("tq8#Vz!pK", &owner(true)).unwrap_err();
        assert!(
            refused.contains("12 characters for an administrator"),
            "{refused}"
        );
    }

    #[test]
    fn the_policy_refuses_common_and_personal_passwords_and_says_why() {
        for common in [
            "password1",
            "qwertyuiop",
            "iloveyou123",
            "Password123!",
            "1q2w3e4r5t",
            "password-one",
        ] {
            let refused = check_policy(common, &owner(false)).unwrap_err();
            assert!(refused.contains("too easy to guess"), "{common}: {refused}");
        }
        for personal in ["maria12345", "maria.lopez@example.com", "MariaLopez!!"] {
            let refused = check_policy(personal, &owner(false)).unwrap_err();
            assert!(
                refused.contains("username, email address or name") || refused.contains("too easy"),
                "{personal}: {refused}"
            );
        }
    }

    #[test]
    fn the_policy_allows_any_unicode_and_needs_no_composition() {
        assert!(check_policy("всё будет хорошо завтра", &owner(false)).is_ok());
        assert!(check_policy("granite lantern orbit", &owner(false)).is_ok());
        assert!(check_policy("🦀 rust crabs sing 🎶", &owner(false)).is_ok());
    }
}
