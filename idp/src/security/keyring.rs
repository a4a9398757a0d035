//! The signing key ring: private keys decrypted and parsed once, then used for every
//! signature (a parsed P-256 key signs in tens of microseconds; re-parsing PKCS#8 per
//! token would cost more than the signature). Also the published JWKS and the public
//! keys that verify our own tokens.
//!
//! Rotation is staged (see `idp keys rotate`): a new key is published at once and signs
//! from its `activates_at`; the key it supersedes stays published for `retention` after
//! that, long enough for every token it signed to expire, and then disappears.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    self as sig, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, ParsedPublicKey,
    RSA_PKCS1_SHA256, RSA_PSS_SHA256,
};
use aws_lc_rs::{digest, rsa};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use secrecy::ExposeSecret;
use serde::Serialize;

use super::keys::{Alg, KeyEncryptor, KeyError};
use crate::store::{Store, StoredKey};

enum Pair {
    Rsa(rsa::KeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

struct LoadedKey {
    kid: String,
    alg: Alg,
    pair: Pair,
    activates_at: DateTime<Utc>,
    publish_until: Option<DateTime<Utc>>,
    public_jwk: serde_json::Value,
    /// The public key, parsed once: verifying with it skips a per-call parse.
    verifier: ParsedPublicKey,
}

#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("no active signing key for {0:?}")]
    NoKey(Alg),
    #[error("signing failed")]
    Crypto,
    #[error("claims could not be serialised: {0}")]
    Claims(String),
}

/// Why a token we are handed does not verify. Never shown in detail to clients.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("malformed token")]
    Malformed,
    #[error("unknown key id")]
    UnknownKey,
    #[error("invalid token: {0}")]
    Invalid(String),
}

/// An immutable snapshot of the keys; replaced as a whole on reload.
pub struct KeyRing {
    keys: Vec<LoadedKey>,
    jwks: Arc<str>,
    jwks_etag: Arc<str>,
    rng: SystemRandom,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("kids", &self.keys.iter().map(|k| &k.kid).collect::<Vec<_>>())
            .finish()
    }
}

impl KeyRing {
    /// Decrypts and parses the stored keys; `retention` is how long a superseded key stays published.
    pub fn build(
        stored: &[StoredKey],
        encryptor: &KeyEncryptor,
        now: DateTime<Utc>,
        retention: Duration,
    ) -> Result<Self, KeyError> {
        let mut keys = Vec::new();
        for key in stored {
            let alg = Alg::parse(&key.alg)?;
            let der = encryptor.decrypt(&key.kid, &key.private_key_enc)?;
            let der = der.expose_secret();
            let pair = match alg {
                Alg::RS256 | Alg::PS256 => {
                    Pair::Rsa(rsa::KeyPair::from_pkcs8(der).map_err(|_| KeyError::Decryption)?)
                }
                Alg::ES256 => Pair::Ec(
                    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
                        .map_err(|_| KeyError::Decryption)?,
                ),
                Alg::EdDSA => Pair::Ed(Ed25519KeyPair::from_pkcs8(der).map_err(|_| KeyError::Decryption)?),
            };
            let public_jwk: serde_json::Value =
                serde_json::from_str(&key.public_jwk).map_err(|_| KeyError::Decryption)?;
            let verifier = match &pair {
                Pair::Rsa(p) if alg == Alg::PS256 => {
                    ParsedPublicKey::new(&sig::RSA_PSS_2048_8192_SHA256, p.public_key().as_ref())
                }
                Pair::Rsa(p) => {
                    ParsedPublicKey::new(&sig::RSA_PKCS1_2048_8192_SHA256, p.public_key().as_ref())
                }
                Pair::Ec(p) => ParsedPublicKey::new(&sig::ECDSA_P256_SHA256_FIXED, p.public_key().as_ref()),
                Pair::Ed(p) => ParsedPublicKey::new(&sig::ED25519, p.public_key().as_ref()),
            }
            .map_err(|_| KeyError::Decryption)?;
            keys.push(LoadedKey {
                kid: key.kid.clone(),
                alg,
                pair,
                activates_at: key.activates_at,
                publish_until: None,
                public_jwk,
                verifier,
            });
        }
        keys.sort_by_key(|k| k.activates_at);
        // A key is superseded when a newer key of its algorithm has activated.
        for i in 0..keys.len() {
            let superseded_at = keys[i + 1..]
                .iter()
                .find(|k| k.alg == keys[i].alg && k.activates_at <= now)
                .map(|k| k.activates_at);
            keys[i].publish_until = superseded_at.map(|t| t + retention);
        }
        keys.retain(|k| k.publish_until.is_none_or(|until| now < until));
        let jwks =
            serde_json::json!({ "keys": keys.iter().map(|k| &k.public_jwk).collect::<Vec<_>>() }).to_string();
        let etag = format!(
            "\"{}\"",
            URL_SAFE_NO_PAD.encode(&digest::digest(&digest::SHA256, jwks.as_bytes()).as_ref()[..16])
        );
        Ok(Self {
            keys,
            jwks: jwks.into(),
            jwks_etag: etag.into(),
            rng: SystemRandom::new(),
        })
    }

    /// A ring without keys, until the store's are loaded.
    pub fn empty() -> Self {
        Self {
            keys: Vec::new(),
            jwks: "{\"keys\":[]}".into(),
            jwks_etag: "\"empty\"".into(),
            rng: SystemRandom::new(),
        }
    }

    /// The JWKS document (RFC 7517 §5) and its ETag.
    pub fn jwks(&self) -> (Arc<str>, Arc<str>) {
        (self.jwks.clone(), self.jwks_etag.clone())
    }

    /// Kids currently published.
    pub fn published_kids(&self) -> Vec<String> {
        self.keys.iter().map(|k| k.kid.clone()).collect()
    }

    /// Published keys by state at `now`: (pending: not signing yet, active: signing or
    /// could sign, retired: superseded, published only to verify what they signed).
    pub fn key_states(&self, now: DateTime<Utc>) -> (usize, usize, usize) {
        let pending = self.keys.iter().filter(|k| k.activates_at > now).count();
        let retired = self.keys.iter().filter(|k| k.publish_until.is_some()).count();
        (
            pending,
            self.keys.len().saturating_sub(pending + retired),
            retired,
        )
    }

    /// The key that signs for `alg` now: the newest activated one.
    fn signing_key(&self, alg: Alg, now: DateTime<Utc>) -> Option<&LoadedKey> {
        self.keys
            .iter()
            .rev()
            .find(|k| k.alg == alg && k.activates_at <= now)
    }

    /// A JWS compact serialisation (RFC 7515 §7.1) of `claims` with header `typ`.
    pub fn sign<C: Serialize>(
        &self,
        alg: Alg,
        typ: &str,
        claims: &C,
        now: DateTime<Utc>,
    ) -> Result<String, SignError> {
        let key = self.signing_key(alg, now).ok_or(SignError::NoKey(alg))?;
        let header = serde_json::json!({ "alg": alg.as_str(), "typ": typ, "kid": key.kid });
        let payload = serde_json::to_vec(claims).map_err(|e| SignError::Claims(e.to_string()))?;
        let mut message = String::with_capacity(512);
        URL_SAFE_NO_PAD.encode_string(header.to_string().as_bytes(), &mut message);
        message.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut message);
        let started = std::time::Instant::now();
        let signature = match &key.pair {
            Pair::Rsa(pair) => {
                // RFC 7518 §3.3 (PKCS #1 v1.5) or §3.5 (PSS with SHA-256, MGF1, 32-byte salt).
                let padding: &'static dyn aws_lc_rs::signature::RsaEncoding = if alg == Alg::PS256 {
                    &RSA_PSS_SHA256
                } else {
                    &RSA_PKCS1_SHA256
                };
                let mut sig = vec![0u8; pair.public_modulus_len()];
                pair.sign(padding, &self.rng, message.as_bytes(), &mut sig)
                    .map_err(|_| SignError::Crypto)?;
                sig
            }
            Pair::Ec(pair) => pair
                .sign(&self.rng, message.as_bytes())
                .map_err(|_| SignError::Crypto)?
                .as_ref()
                .to_vec(),
            Pair::Ed(pair) => pair.sign(message.as_bytes()).as_ref().to_vec(),
        };
        crate::metrics::observe(
            "idp_token_signing_duration_seconds",
            &[("alg", alg.as_str().to_string())],
            started.elapsed(),
        );
        message.push('.');
        URL_SAFE_NO_PAD.encode_string(&signature, &mut message);
        Ok(message)
    }

    /// Verifies a JWT we signed (RFC 7519 §7.2): three parts, a known `kid`, the algorithm
    /// of that key (never the one the token claims otherwise), the signature, `iss`, `exp`
    /// (unless `allow_expired`) and `nbf`. Returns the header `typ` and the claims.
    pub fn verify(
        &self,
        token: &str,
        issuer: &str,
        allow_expired: bool,
        now: DateTime<Utc>,
    ) -> Result<(Option<String>, HashMap<String, serde_json::Value>), VerifyError> {
        #[derive(serde::Deserialize)]
        struct Header {
            alg: String,
            kid: Option<String>,
            typ: Option<String>,
        }
        let mut parts = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(VerifyError::Malformed);
        };
        let decode = |part: &str| URL_SAFE_NO_PAD.decode(part).map_err(|_| VerifyError::Malformed);
        let header: Header =
            serde_json::from_slice(&decode(header_b64)?).map_err(|_| VerifyError::Malformed)?;
        let kid = header.kid.as_deref().ok_or(VerifyError::UnknownKey)?;
        let key = self
            .keys
            .iter()
            .find(|k| k.kid == kid)
            .ok_or(VerifyError::UnknownKey)?;
        if header.alg != key.alg.as_str() {
            return Err(VerifyError::Invalid("algorithm does not match the key".into()));
        }
        let signed = &token[..header_b64.len() + 1 + payload_b64.len()];
        key.verifier
            .verify_sig(signed.as_bytes(), &decode(signature_b64)?)
            .map_err(|_| VerifyError::Invalid("bad signature".into()))?;
        let claims: HashMap<String, serde_json::Value> =
            serde_json::from_slice(&decode(payload_b64)?).map_err(|_| VerifyError::Malformed)?;
        if claims.get("iss").and_then(|v| v.as_str()) != Some(issuer) {
            return Err(VerifyError::Invalid("wrong issuer".into()));
        }
        let now = now.timestamp();
        let exp = claims
            .get("exp")
            .and_then(|v| v.as_i64())
            .ok_or(VerifyError::Invalid("no exp".into()))?;
        if !allow_expired && exp <= now {
            return Err(VerifyError::Invalid("expired".into()));
        }
        if claims
            .get("nbf")
            .and_then(|v| v.as_i64())
            .is_some_and(|nbf| nbf > now)
        {
            return Err(VerifyError::Invalid("not yet valid".into()));
        }
        Ok((header.typ, claims))
    }
}

/// The current key ring, shared by all requests and reloaded from the store periodically
/// (so that a rotation by any replica reaches every replica).
#[derive(Clone)]
pub struct Keys {
    current: Arc<RwLock<Arc<KeyRing>>>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys")
    }
}

impl Keys {
    pub fn new(ring: KeyRing) -> Self {
        Self {
            current: Arc::new(RwLock::new(Arc::new(ring))),
        }
    }

    pub fn current(&self) -> Arc<KeyRing> {
        match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn replace(&self, ring: KeyRing) {
        match self.current.write() {
            Ok(mut guard) => *guard = Arc::new(ring),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(ring),
        }
    }

    /// Reloads from the store; on failure the previous ring stays in use.
    pub async fn reload(
        &self,
        store: &dyn Store,
        encryptor: &KeyEncryptor,
        now: DateTime<Utc>,
        retention: Duration,
    ) -> Result<(), String> {
        let stored = store.published_signing_keys().await.map_err(|e| e.to_string())?;
        let ring = KeyRing::build(&stored, encryptor, now, retention).map_err(|e| e.to_string())?;
        self.replace(ring);
        Ok(())
    }
}
