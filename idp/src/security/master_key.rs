//! The master key and the keys derived from it (HKDF-SHA-256, RFC 5869).
//!
//! One secret for operators to manage and share between replicas; each use gets its own
//! derived key, so a leak of one derived key says nothing about the others.

use std::io::Write;
use std::path::Path;

use aws_lc_rs::hkdf;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use secrecy::{ExposeSecret, SecretBox, SecretString};

use super::random;

#[derive(Debug, thiserror::Error)]
pub enum MasterKeyError {
    #[error("master_key must be 32 bytes encoded in base64 ({0})")]
    Malformed(String),
    #[error("master key file {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error(transparent)]
    Random(#[from] random::RandomError),
}

pub struct MasterKey(SecretBox<[u8; 32]>);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey([REDACTED])")
    }
}

/// 32 derived bytes for one purpose.
pub struct DerivedKey(SecretBox<[u8; 32]>);

impl DerivedKey {
    pub fn expose(&self) -> &[u8; 32] {
        self.0.expose_secret()
    }
}

struct Len32;
impl hkdf::KeyType for Len32 {
    fn len(&self) -> usize {
        32
    }
}

impl MasterKey {
    pub fn parse(encoded: &SecretString) -> Result<Self, MasterKeyError> {
        let bytes = STANDARD
            .decode(encoded.expose_secret().trim())
            .map_err(|e| MasterKeyError::Malformed(e.to_string()))?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| MasterKeyError::Malformed(format!("got {} bytes", b.len())))?;
        Ok(Self(SecretBox::new(Box::new(key))))
    }

    pub fn generate() -> Result<Self, MasterKeyError> {
        Ok(Self(SecretBox::new(Box::new(random::bytes::<32>()?))))
    }

    pub fn encode(&self) -> SecretString {
        SecretString::from(STANDARD.encode(self.0.expose_secret()))
    }

    /// Reads the key file, creating it with mode 0600 when it does not exist yet.
    pub fn load_or_create_file(path: &Path) -> Result<Self, MasterKeyError> {
        let io = |source| MasterKeyError::Io {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&SecretString::from(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate()?;
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                let mut file = options.open(path).map_err(io)?;
                file.write_all(key.encode().expose_secret().as_bytes())
                    .map_err(io)?;
                file.sync_all().map_err(io)?;
                Ok(key)
            }
            Err(e) => Err(io(e)),
        }
    }

    /// The key for one named purpose, e.g. `"signing-key-encryption v1"`.
    pub fn derive(&self, purpose: &str) -> DerivedKey {
        let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, b"aimpact-idp");
        let prk = salt.extract(self.0.expose_secret());
        let info = [purpose.as_bytes()];
        let mut out = [0u8; 32];
        // Expanding 32 bytes from SHA-256 cannot exceed HKDF's 255-block limit.
        if let Ok(okm) = prk.expand(&info, Len32) {
            let _ = okm.fill(&mut out);
        }
        DerivedKey(SecretBox::new(Box::new(out)))
    }
}

pub const SIGNING_KEY_ENCRYPTION: &str = "signing-key-encryption v1";
pub const CLIENT_SECRET_PEPPER: &str = "client-secret-pepper v1";
pub const TOKEN_HASH_PEPPER: &str = "token-hash-pepper v1";
pub const SAVED_RESPONSE_ENCRYPTION: &str = "saved-token-response v1";
pub const CSRF_KEY: &str = "interaction-and-csrf v1";
pub const MFA_SECRET_ENCRYPTION: &str = "mfa-secret-encryption v1";
pub const MAIL_ENCRYPTION: &str = "mail-outbox-encryption v1";
pub const CLIENT_SECRET_ENCRYPTION: &str = "client-secret-encryption v1";
pub const DPOP_NONCE_KEY: &str = "dpop-nonce v1";
pub const UPSTREAM_SECRET_ENCRYPTION: &str = "upstream-client-secret v1";

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn derived_keys_are_stable_and_differ_by_purpose() {
        let key = MasterKey::generate().unwrap();
        let again = MasterKey::parse(&key.encode()).unwrap();
        assert_eq!(key.derive("a").expose(), again.derive("a").expose());
        assert_ne!(key.derive("a").expose(), key.derive("b").expose());
    }

    #[test]
    fn the_key_file_is_created_once_with_owner_only_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let first = MasterKey::load_or_create_file(&path).unwrap();
        let second = MasterKey::load_or_create_file(&path).unwrap();
        assert_eq!(first.derive("x").expose(), second.derive("x").expose());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_short_key_is_refused() {
        assert!(MasterKey::parse(&SecretString::from("c2hvcnQ=")).is_err());
    }
}
