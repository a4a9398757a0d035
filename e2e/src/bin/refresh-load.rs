//! Load generator for refresh-token rotation: each worker logs a user in once (the
//! provider's own login form), then refreshes in a chain for the given time, always with
//! the newest token. Prints requests/s and latency percentiles. With SECONDS 0 it only logs
//! in and prints the WORKERS first refresh tokens, one per line, for `wrk` to carry on
//! (scripts/bench/refresh_chain.lua), which costs the machine less than this client does.
//! Usage: refresh-load BASE CLIENT_ID CLIENT_SECRET USERNAME PASSWORD WORKERS SECONDS REDIRECT_URI
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use serde_json::Value;

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

struct Target {
    base: String,
    client_id: String,
    client_secret: String,
    username: String,
    password: String,
    redirect: String,
}

fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).expect("form field") + marker.len();
    html[start..].split('"').next().unwrap_or_default().to_string()
}

async fn first_refresh_token(t: &Target) -> String {
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut url = url::Url::parse(&format!("{}/authorize", t.base)).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", &t.client_id)
        .append_pair("redirect_uri", &t.redirect)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid offline_access")
        .append_pair("code_challenge", CHALLENGE)
        .append_pair("code_challenge_method", "S256");
    let to_login = http.get(url.as_str()).send().await.unwrap();
    let login = format!("{}{}", t.base, to_login.headers()["location"].to_str().unwrap());
    let html = http.get(login).send().await.unwrap().text().await.unwrap();
    let form = [
        ("csrf", hidden(&html, "csrf")),
        ("interaction", hidden(&html, "interaction")),
        ("username", t.username.clone()),
        ("password", t.password.clone()),
    ];
    let back = http
        .post(format!("{}/login", t.base))
        .form(&form)
        .send()
        .await
        .unwrap();
    let location = url::Url::parse(back.headers()["location"].to_str().unwrap()).unwrap();
    let code = location
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let tokens: Value = http
        .post(format!("{}/token", t.base))
        .basic_auth(&t.client_id, Some(&t.client_secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &t.redirect),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    tokens["refresh_token"]
        .as_str()
        .expect("a refresh token")
        .to_string()
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 9 {
        eprintln!(
            "usage: refresh-load BASE CLIENT_ID CLIENT_SECRET USERNAME PASSWORD WORKERS SECONDS REDIRECT_URI"
        );
        std::process::exit(2);
    }
    let target = std::sync::Arc::new(Target {
        base: args[1].clone(),
        client_id: args[2].clone(),
        client_secret: args[3].clone(),
        username: args[4].clone(),
        password: args[5].clone(),
        redirect: args[8].clone(),
    });
    let workers: usize = args[6].parse().expect("WORKERS");
    let seconds: u64 = args[7].parse().expect("SECONDS");
    let mut starts = Vec::new();
    for _ in 0..workers {
        starts.push(first_refresh_token(&target).await);
    }
    if seconds == 0 {
        println!("{}", starts.join("\n"));
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    // Spawn every worker before awaiting any (a lazy iterator would run them one by one).
    let tasks: Vec<_> = starts
        .into_iter()
        .map(|mut token| {
            let target = target.clone();
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                let (mut latencies, mut failures) = (Vec::new(), 0u64);
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    let response = http
                        .post(format!("{}/token", target.base))
                        .basic_auth(&target.client_id, Some(&target.client_secret))
                        .form(&[("grant_type", "refresh_token"), ("refresh_token", token.as_str())])
                        .send()
                        .await;
                    match response {
                        Ok(r) if r.status().is_success() => {
                            let body: Value = r.json().await.unwrap_or_default();
                            latencies.push(sent.elapsed());
                            match body["refresh_token"].as_str() {
                                Some(next) => token = next.to_string(),
                                None => failures += 1,
                            }
                        }
                        _ => failures += 1,
                    }
                }
                (latencies, failures)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut failures = 0;
    for task in tasks {
        let (latencies, failed) = task.await.unwrap();
        all.extend(latencies);
        failures += failed;
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    println!(
        "rotations: {} in {elapsed:.1} s = {:.0}/s, failures: {failures}",
        all.len(),
        all.len() as f64 / elapsed
    );
    println!("latency p50 {:?}  p99 {:?}", pct(0.50), pct(0.99));
}
