//! Load generator for client_credentials token requests by client authentication method:
//! a shared secret (HTTP Basic), `private_key_jwt` (an ES256 client assertion per request),
//! and `private_key_jwt` with a DPoP proof (a second ES256 signature, a nonce, a bound
//! token). Assertions and proofs are signed before the timed run, one per request (each has
//! its own `jti`), so the generator spends its CPU on HTTP only. Prints requests/s and
//! latency percentiles.
//!
//! Usage: token-load keygen JWKS_FILE PRIVATE_KEY_FILE
//!        token-load run BASE CLIENT_ID basic:SECRET|jwt:KEY_FILE|dpop:KEY_FILE WORKERS SECONDS
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Signed in advance, per second of the run: more than a 2-core machine serves.
const PREPARED_PER_SECOND: usize = 15_000;

fn es256_key() -> (Vec<u8>, EncodingKey, Jwk) {
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new()).unwrap();
    let private = EncodingKey::from_ec_der(pkcs8.as_ref());
    let public = Jwk::from_encoding_key(&private, Algorithm::ES256).unwrap();
    (pkcs8.as_ref().to_vec(), private, public)
}

/// One request's credentials: the form fields and the DPoP header.
type Prepared = (Vec<(&'static str, String)>, Option<String>);

async fn dpop_nonce(
    http: &reqwest::Client,
    base: &str,
    fields: &[(&'static str, String)],
    proof: String,
) -> String {
    let response = http
        .post(format!("{base}/token"))
        .header("DPoP", proof)
        .form(fields)
        .send()
        .await
        .unwrap();
    response.headers()["dpop-nonce"].to_str().unwrap().to_string()
}

async fn prepare(
    http: &reqwest::Client,
    base: &str,
    client_id: &str,
    auth: &str,
    count: usize,
) -> Vec<Prepared> {
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    let (kind, value) = auth
        .split_once(':')
        .expect("basic:SECRET, jwt:KEY_FILE or dpop:KEY_FILE");
    if kind == "basic" {
        return vec![(vec![("grant_type", "client_credentials".into())], None)];
    }
    let client_key = EncodingKey::from_ec_der(&std::fs::read(value).unwrap());
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("bench".into());
    let assertion = |n: usize| {
        let claims = json!({
            "iss": client_id, "sub": client_id, "aud": base, "jti": format!("{}-{n}", now()),
            "iat": now(), "exp": now() + 300,
        });
        jsonwebtoken::encode(&header, &claims, &client_key).unwrap()
    };
    let fields = |n: usize| {
        vec![
            ("grant_type", "client_credentials".to_string()),
            ("client_assertion_type", JWT_BEARER.to_string()),
            ("client_assertion", assertion(n)),
        ]
    };
    if kind == "jwt" {
        return (0..count).map(|n| (fields(n), None)).collect();
    }
    let (_, dpop_key, mut dpop_public) = es256_key();
    dpop_public.common.key_algorithm = None;
    let mut dpop_header = Header::new(Algorithm::ES256);
    dpop_header.typ = Some("dpop+jwt".into());
    dpop_header.jwk = Some(dpop_public);
    let url = format!("{base}/token");
    let proof = |n: usize, nonce: Option<&str>| {
        let claims = json!({ "jti": format!("p{}-{n}", now()), "htm": "POST", "htu": url, "iat": now(), "nonce": nonce });
        jsonwebtoken::encode(&dpop_header, &claims, &dpop_key).unwrap()
    };
    let nonce = dpop_nonce(http, base, &fields(count), proof(count, None)).await;
    (0..count)
        .map(|n| (fields(n), Some(proof(n, Some(&nonce)))))
        .collect()
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("keygen") && args.len() == 4 {
        let (pkcs8, _, mut public) = es256_key();
        public.common.key_id = Some("bench".into());
        std::fs::write(&args[2], json!({ "keys": [public] }).to_string()).unwrap();
        std::fs::write(&args[3], pkcs8).unwrap();
        return;
    }
    if args.get(1).map(String::as_str) != Some("run") || args.len() != 7 {
        eprintln!(
            "usage: token-load keygen JWKS_FILE KEY_FILE | run BASE CLIENT_ID basic:SECRET|jwt:KEY|dpop:KEY WORKERS SECONDS"
        );
        std::process::exit(2);
    }
    let (base, client_id, auth) = (args[2].clone(), args[3].clone(), args[4].clone());
    let workers: usize = args[5].parse().unwrap();
    let seconds: u64 = args[6].parse().unwrap();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(workers)
        .build()
        .unwrap();
    let count = PREPARED_PER_SECOND * seconds as usize;
    let prepared = Arc::new(prepare(&http, &base, &client_id, &auth, count).await);
    let basic = auth
        .strip_prefix("basic:")
        .map(|secret| (client_id.clone(), secret.to_string()));
    let next = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (http, prepared, next, basic, url) = (
            http.clone(),
            prepared.clone(),
            next.clone(),
            basic.clone(),
            format!("{base}/token"),
        );
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failures = 0usize;
            while Instant::now() < deadline {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let (fields, proof) = if basic.is_some() {
                    &prepared[0]
                } else if let Some(p) = prepared.get(n) {
                    p
                } else {
                    break;
                };
                let mut request = http.post(&url).form(fields);
                if let Some((id, secret)) = &basic {
                    request = request.basic_auth(id, Some(secret));
                }
                if let Some(proof) = proof {
                    request = request.header("DPoP", proof);
                }
                let started = Instant::now();
                let response = request.send().await.unwrap();
                let ok = response.status().is_success();
                let body: Value = response.json().await.unwrap_or_default();
                latencies.push(started.elapsed());
                if !ok || body["access_token"].is_null() {
                    failures += 1;
                }
            }
            (latencies, failures)
        }));
    }
    let started = Instant::now();
    let mut latencies = Vec::new();
    let mut failures = 0;
    for task in tasks {
        let (l, f) = task.await.unwrap();
        latencies.extend(l);
        failures += f;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "{auth_kind}: {} requests in {elapsed:.1} s = {:.0} requests/s, {failures} failed",
        latencies.len(),
        latencies.len() as f64 / elapsed,
        auth_kind = auth.split(':').next().unwrap_or_default()
    );
    println!("latency p50 {:?}  p99 {:?}", pct(0.50), pct(0.99));
}
