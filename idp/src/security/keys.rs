//! Signing keys: generation, public JWKs (RFC 7517/7518, RFC 8037 for Ed25519) and
//! encryption of the private parts at rest (AES-256-GCM under a key derived from the
//! master key, with the key id as associated data so a ciphertext cannot be moved to
//! another key's row).

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{self, KeyPair};
use aws_lc_rs::{digest, rsa};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretBox};
use serde::{Deserialize, Serialize};

use super::master_key::DerivedKey;
use super::random;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key generation failed")]
    Generation,
    #[error("a signing key could not be decrypted: wrong master key, or the row was altered")]
    Decryption,
    #[error("unknown signing algorithm {0:?}")]
    UnknownAlg(String),
    #[error(transparent)]
    Random(#[from] random::RandomError),
}

/// JWS algorithms we sign with (RFC 7518 §3.1, RFC 8037 §3.1). PS256 (RSASSA-PSS) has its
/// own RSA key: a JWK names one algorithm (RFC 7517 §4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Alg {
    RS256,
    PS256,
    ES256,
    EdDSA,
}

impl Alg {
    pub const ALL: [Alg; 4] = [Alg::RS256, Alg::PS256, Alg::ES256, Alg::EdDSA];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::RS256 => "RS256",
            Self::PS256 => "PS256",
            Self::ES256 => "ES256",
            Self::EdDSA => "EdDSA",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, KeyError> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str() == raw)
            .ok_or_else(|| KeyError::UnknownAlg(raw.into()))
    }
}

/// A freshly generated key pair: its PKCS#8 private key and its public JWK.
pub struct GeneratedKey {
    pub kid: String,
    pub alg: Alg,
    pub pkcs8: SecretBox<Vec<u8>>,
    pub public_jwk: serde_json::Value,
}

pub fn generate(alg: Alg) -> Result<GeneratedKey, KeyError> {
    let (pkcs8, mut jwk) = match alg {
        Alg::RS256 | Alg::PS256 => {
            let pair = rsa::KeyPair::generate(rsa::KeySize::Rsa2048).map_err(|_| KeyError::Generation)?;
            let der =
                AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair).map_err(|_| KeyError::Generation)?;
            let public = pair.public_key();
            let jwk = serde_json::json!({
                "kty": "RSA",
                "n": b64(public.modulus().big_endian_without_leading_zero()),
                "e": b64(public.exponent().big_endian_without_leading_zero()),
            });
            (der.as_ref().to_vec(), jwk)
        }
        Alg::ES256 => {
            let pair = signature::EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING)
                .map_err(|_| KeyError::Generation)?;
            let der = pair.to_pkcs8v1().map_err(|_| KeyError::Generation)?;
            // Uncompressed SEC1 point: 0x04 || X (32 bytes) || Y (32 bytes).
            let point = pair.public_key().as_ref();
            if point.len() != 65 {
                return Err(KeyError::Generation);
            }
            let jwk = serde_json::json!({
                "kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..65]),
            });
            (der.as_ref().to_vec(), jwk)
        }
        Alg::EdDSA => {
            let pair = signature::Ed25519KeyPair::generate().map_err(|_| KeyError::Generation)?;
            let der = pair.to_pkcs8v1().map_err(|_| KeyError::Generation)?;
            let jwk =
                serde_json::json!({ "kty": "OKP", "crv": "Ed25519", "x": b64(pair.public_key().as_ref()) });
            (der.as_ref().to_vec(), jwk)
        }
    };
    let kid = thumbprint(&jwk);
    if let Some(map) = jwk.as_object_mut() {
        map.insert("kid".into(), kid.clone().into());
        map.insert("use".into(), "sig".into());
        map.insert("alg".into(), alg.as_str().into());
    }
    Ok(GeneratedKey {
        kid,
        alg,
        pkcs8: SecretBox::new(Box::new(pkcs8)),
        public_jwk: jwk,
    })
}

/// RFC 7638 JWK thumbprint: SHA-256 over the required members in lexicographic order.
fn thumbprint(jwk: &serde_json::Value) -> String {
    let s = |k: &str| {
        jwk.get(k)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string()
    };
    let canonical = match s("kty").as_str() {
        "RSA" => format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, s("e"), s("n")),
        "EC" => format!(
            r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
            s("crv"),
            s("x"),
            s("y")
        ),
        _ => format!(r#"{{"crv":"{}","kty":"OKP","x":"{}"}}"#, s("crv"), s("x")),
    };
    b64(digest::digest(&digest::SHA256, canonical.as_bytes()).as_ref())
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Encrypts and decrypts private keys at rest.
pub struct KeyEncryptor {
    key: LessSafeKey,
}

impl std::fmt::Debug for KeyEncryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyEncryptor")
    }
}

impl KeyEncryptor {
    pub fn new(key: &DerivedKey) -> Result<Self, KeyError> {
        let unbound = UnboundKey::new(&AES_256_GCM, key.expose()).map_err(|_| KeyError::Generation)?;
        Ok(Self {
            key: LessSafeKey::new(unbound),
        })
    }

    /// `nonce || ciphertext || tag`, with a fresh random nonce.
    pub fn encrypt(&self, kid: &str, plaintext: &SecretBox<Vec<u8>>) -> Result<Vec<u8>, KeyError> {
        let nonce_bytes = random::bytes::<NONCE_LEN>()?;
        let mut buffer = plaintext.expose_secret().clone();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(kid.as_bytes()),
                &mut buffer,
            )
            .map_err(|_| KeyError::Generation)?;
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&buffer);
        Ok(out)
    }

    pub fn decrypt(&self, kid: &str, sealed: &[u8]) -> Result<SecretBox<Vec<u8>>, KeyError> {
        if sealed.len() < NONCE_LEN {
            return Err(KeyError::Decryption);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| KeyError::Decryption)?;
        let mut buffer = ciphertext.to_vec();
        let plaintext = self
            .key
            .open_in_place(nonce, Aad::from(kid.as_bytes()), &mut buffer)
            .map_err(|_| KeyError::Decryption)?;
        Ok(SecretBox::new(Box::new(plaintext.to_vec())))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::security::master_key::MasterKey;

    #[test]
    fn every_algorithm_generates_a_public_jwk_without_private_parts() {
        for alg in Alg::ALL {
            let key = generate(alg).unwrap();
            let jwk = key.public_jwk.as_object().unwrap();
            assert_eq!(jwk["alg"], alg.as_str());
            assert_eq!(jwk["use"], "sig");
            assert_eq!(jwk["kid"], key.kid.as_str());
            assert!(!jwk.contains_key("d"), "{alg:?} JWK leaks the private key");
        }
    }

    #[test]
    fn the_rsa_thumbprint_matches_rfc_7638_example() {
        // RFC 7638 §3.1: the example key's thumbprint.
        let jwk = serde_json::json!({"kty":"RSA","e":"AQAB","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"});
        assert_eq!(thumbprint(&jwk), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    }

    #[test]
    fn a_private_key_round_trips_and_is_bound_to_its_kid() {
        let encryptor = KeyEncryptor::new(&MasterKey::generate().unwrap().derive("k")).unwrap();
        let key = generate(Alg::ES256).unwrap();
        let sealed = encryptor.encrypt(&key.kid, &key.pkcs8).unwrap();
        assert!(
            !sealed
                .windows(16)
                .any(|w| key.pkcs8.expose_secret().windows(16).any(|p| p == w))
        );
        let opened = encryptor.decrypt(&key.kid, &sealed).unwrap();
        assert_eq!(opened.expose_secret(), key.pkcs8.expose_secret());
        assert!(encryptor.decrypt("another-kid", &sealed).is_err());
    }

    #[test]
    fn another_master_key_cannot_decrypt() {
        let a = KeyEncryptor::new(&MasterKey::generate().unwrap().derive("k")).unwrap();
        let b = KeyEncryptor::new(&MasterKey::generate().unwrap().derive("k")).unwrap();
        let key = generate(Alg::EdDSA).unwrap();
        let sealed = a.encrypt(&key.kid, &key.pkcs8).unwrap();
        assert!(b.decrypt(&key.kid, &sealed).is_err());
    }
}
