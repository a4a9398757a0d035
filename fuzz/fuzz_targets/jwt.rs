//! JWTs we are handed (access tokens at userinfo and introspection, `id_token_hint` at
//! logout): verification against a real key ring must refuse anything but our own tokens,
//! without panicking on any input.
#![no_main]

use std::sync::OnceLock;

use idp::security::keyring::KeyRing;
use idp::security::keys::{self, Alg, KeyEncryptor};
use idp::security::master_key::MasterKey;
use idp::store::StoredKey;
use libfuzzer_sys::fuzz_target;

fn ring() -> &'static KeyRing {
    static RING: OnceLock<KeyRing> = OnceLock::new();
    RING.get_or_init(|| {
        let master = MasterKey::generate().unwrap();
        let encryptor = KeyEncryptor::new(&master.derive("signing-keys")).unwrap();
        let now = chrono::Utc::now();
        let stored: Vec<StoredKey> = Alg::ALL
            .into_iter()
            .map(|alg| {
                let generated = keys::generate(alg).unwrap();
                StoredKey {
                    private_key_enc: encryptor.encrypt(&generated.kid, &generated.pkcs8).unwrap(),
                    kid: generated.kid.clone(),
                    alg: alg.as_str().into(),
                    public_jwk: generated.public_jwk.to_string(),
                    created_at: now,
                    activates_at: now,
                    retired_at: None,
                    removed_at: None,
                }
            })
            .collect();
        KeyRing::build(&stored, &encryptor, now, chrono::Duration::days(1)).unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(token) = std::str::from_utf8(data) {
        let now = chrono::Utc::now();
        assert!(
            ring()
                .verify(token, "https://idp.example.com", true, now)
                .is_err()
        );
    }
});
