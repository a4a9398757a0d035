//! A client's signing key for tests: the private half signs (client assertions, request
//! objects), the public half is what the client registers.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::Value;

/// A client's key pair: the private half signs, the public half is registered.
pub struct ClientKey {
    pub alg: Algorithm,
    pub kid: String,
    pub private: EncodingKey,
    pub public: Jwk,
}

impl ClientKey {
    pub fn es256(kid: &str) -> Self {
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new()).unwrap();
        Self::from_der(Algorithm::ES256, kid, EncodingKey::from_ec_der(pkcs8.as_ref()))
    }

    pub fn ed25519(kid: &str) -> Self {
        // jsonwebtoken reads PKCS#8 v1 Ed25519 keys.
        let pkcs8 = Ed25519KeyPair::generate_pkcs8v1(&SystemRandom::new()).unwrap();
        Self::from_der(Algorithm::EdDSA, kid, EncodingKey::from_ed_der(pkcs8.as_ref()))
    }

    fn from_der(alg: Algorithm, kid: &str, private: EncodingKey) -> Self {
        let mut public = Jwk::from_encoding_key(&private, alg).unwrap();
        public.common.key_id = Some(kid.into());
        Self {
            alg,
            kid: kid.into(),
            private,
            public,
        }
    }

    pub fn jwks(keys: &[&ClientKey]) -> JwkSet {
        JwkSet {
            keys: keys.iter().map(|k| k.public.clone()).collect(),
        }
    }

    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.private).unwrap()
    }
}
