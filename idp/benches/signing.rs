//! What one token costs: signing an access token with each algorithm through the key
//! ring (keys parsed once), and verifying one. Run with `cargo bench -p idp --bench signing`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{Duration, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use idp::security::keyring::KeyRing;
use idp::security::keys::{Alg, KeyEncryptor, generate};
use idp::security::master_key::MasterKey;
use idp::store::StoredKey;

fn ring() -> KeyRing {
    let encryptor = KeyEncryptor::new(&MasterKey::generate().unwrap().derive("bench")).unwrap();
    let now = Utc::now() - Duration::seconds(1);
    let stored: Vec<StoredKey> = Alg::ALL
        .iter()
        .map(|&alg| {
            let key = generate(alg).unwrap();
            StoredKey {
                private_key_enc: encryptor.encrypt(&key.kid, &key.pkcs8).unwrap(),
                kid: key.kid,
                alg: alg.as_str().into(),
                public_jwk: key.public_jwk.to_string(),
                created_at: now,
                activates_at: now,
                retired_at: None,
                removed_at: None,
            }
        })
        .collect();
    KeyRing::build(&stored, &encryptor, Utc::now(), Duration::hours(1)).unwrap()
}

fn claims() -> serde_json::Value {
    let now = Utc::now().timestamp();
    serde_json::json!({
        "iss": "https://idp.example.com", "sub": "7b0c4c1e-8f9a-4c1b-9d5e-2f6a1b3c4d5e", "aud": "client-abc",
        "client_id": "client-abc", "scope": "openid profile email", "jti": "c2b1f0e0a9d8c7b6a5f4e3d2",
        "iat": now, "exp": now + 600, "gid": "g-123", "sid": "s-456",
    })
}

fn signing(c: &mut Criterion) {
    let ring = ring();
    let claims = claims();
    let mut group = c.benchmark_group("sign_access_token");
    for alg in Alg::ALL {
        group.bench_function(alg.as_str(), |b| {
            b.iter(|| ring.sign(alg, "at+jwt", &claims, Utc::now()).unwrap())
        });
    }
    group.finish();
    let mut group = c.benchmark_group("verify_access_token");
    for alg in Alg::ALL {
        let token = ring.sign(alg, "at+jwt", &claims, Utc::now()).unwrap();
        group.bench_function(alg.as_str(), |b| {
            b.iter(|| {
                ring.verify(&token, "https://idp.example.com", false, Utc::now())
                    .unwrap()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, signing);
criterion_main!(benches);
