//! No secret ever reaches a log line: the server runs a whole flow with debug logging,
//! and its log is searched for every secret the flow used.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::process::Command;

use e2e::{Server, idp_binary};
use serde_json::Value;

const PASSWORD: &str = "log-test-admin-password-7Qx";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const REDIRECT: &str = "http://127.0.0.1:9/cb";

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_SPAN: &str = "00f067aa0ba902b7";

fn is_hex(value: &Value, len: usize) -> bool {
    value
        .as_str()
        .is_some_and(|s| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Every line is one JSON object; each request's completion line carries its request id,
/// route, status, latency, client id and W3C trace/span ids (the caller's trace continued).
fn request_lines_are_structured(text: &str, client_id: &str) {
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not one JSON object ({e}): {l}")))
        .collect();
    for line in &lines {
        for field in ["timestamp", "level", "target"] {
            assert!(line.get(field).is_some(), "no {field}: {line}");
        }
    }
    let completed: Vec<&Value> = lines
        .iter()
        .filter(|l| l["message"] == "request completed")
        .collect();
    assert!(completed.len() > 5, "request completion lines: {completed:?}");
    for line in &completed {
        let span = &line["span"];
        assert!(
            span["request_id"].is_string() && span["route"].is_string(),
            "{line}"
        );
        assert!(
            is_hex(&span["trace_id"], 32) && is_hex(&span["span_id"], 16),
            "{line}"
        );
        assert!(line["status"].is_u64() && line["latency_ms"].is_f64(), "{line}");
    }
    let refresh = completed
        .iter()
        .find(|l| l["span"]["request_id"] == "refresh-request-1")
        .expect("the refresh request's completion line");
    assert_eq!(
        refresh["span"]["trace_id"], TRACE_ID,
        "the caller's trace is continued"
    );
    assert_ne!(refresh["span"]["span_id"], PARENT_SPAN, "with a span of its own");
    assert_eq!(refresh["span"]["client_id"], client_id);
    assert_eq!(refresh["span"]["route"], "/token");
    assert_eq!(refresh["status"], 200);
    // Without a traceparent, each request starts its own trace.
    let others: BTreeSet<&str> = completed
        .iter()
        .filter_map(|l| l["span"]["trace_id"].as_str())
        .filter(|t| *t != TRACE_ID)
        .collect();
    assert!(others.len() > 5, "fresh trace ids: {others:?}");
    // Security events are on their own target, for their own index.
    assert!(
        lines
            .iter()
            .any(|l| l["target"] == "security" && l["event_type"] == "refresh_token_reused"),
        "the reuse event on target security"
    );
}

fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + marker.len();
    html[start..].split('"').next().unwrap().to_string()
}

fn query(location: &str, name: &str) -> String {
    url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .unwrap()
        .1
        .into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_never_contain_passwords_secrets_codes_or_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("idp.log");
    let master_key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
    let server = Server::start_with_log(
        &[
            ("IDP_BOOTSTRAP_ADMIN_PASSWORD", PASSWORD),
            ("IDP_LOG_LEVEL", "debug"),
            ("IDP_MASTER_KEY", master_key),
            // The administrator logs in with the password alone here (see browser_login.rs).
            ("IDP_MFA_REQUIRED_FOR_ADMINS", "false"),
        ],
        Some(&log),
    );
    let out = Command::new(idp_binary())
        .current_dir(server.dir.path())
        .env("IDP_MASTER_KEY", master_key)
        .args([
            "client",
            "add",
            "--name",
            "log test",
            "--redirect-uri",
            REDIRECT,
            "--first-party",
            "--json",
        ])
        .output()
        .unwrap();
    let client: Value = serde_json::from_slice(&out.stdout).unwrap();
    let (id, secret) = (
        client["client_id"].as_str().unwrap(),
        client["client_secret"].as_str().unwrap(),
    );

    let http = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let authorize = format!(
        "{}/authorize?client_id={id}&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb&response_type=code&scope=openid%20offline_access&state=s1&code_challenge={CHALLENGE}&code_challenge_method=S256",
        server.base
    );
    let to_login = http.get(&authorize).send().await.unwrap();
    let login_url = format!(
        "{}{}",
        server.base,
        to_login.headers()["location"].to_str().unwrap()
    );
    let html = http.get(&login_url).send().await.unwrap().text().await.unwrap();
    // A failed attempt first, then the real one.
    for password in ["wrong-password-in-logs?", PASSWORD] {
        let form = [
            ("csrf", hidden(&html, "csrf")),
            ("interaction", hidden(&html, "interaction")),
            ("username", "admin".into()),
            ("password", password.into()),
        ];
        let answer = http
            .post(format!("{}/login", server.base))
            .form(&form)
            .send()
            .await
            .unwrap();
        if password == PASSWORD {
            let code = query(answer.headers()["location"].to_str().unwrap(), "code");
            let cookies: Vec<String> = answer
                .headers()
                .get_all("set-cookie")
                .iter()
                .map(|c| c.to_str().unwrap().to_string())
                .collect();
            let session = cookies
                .iter()
                .find(|c| c.starts_with("idp_session="))
                .unwrap()
                .split(';')
                .next()
                .unwrap()["idp_session=".len()..]
                .to_string();
            let tokens: Value = http
                .post(format!("{}/token", server.base))
                .basic_auth(id, Some(secret))
                .form(&[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", REDIRECT),
                    ("code_verifier", VERIFIER),
                ])
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
            let refreshed: Value = http
                .post(format!("{}/token", server.base))
                .basic_auth(id, Some(secret))
                .header("traceparent", format!("00-{TRACE_ID}-{PARENT_SPAN}-01"))
                .header("x-request-id", "refresh-request-1")
                .form(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)])
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            // A replay (reuse detection logs an event), introspection and revocation.
            http.post(format!("{}/token", server.base))
                .basic_auth(id, Some(secret))
                .form(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)])
                .send()
                .await
                .unwrap();
            let access = refreshed["access_token"].as_str().unwrap().to_string();
            http.post(format!("{}/introspect", server.base))
                .basic_auth(id, Some(secret))
                .form(&[("token", &access)])
                .send()
                .await
                .unwrap();
            http.post(format!("{}/revoke", server.base))
                .basic_auth(id, Some(secret))
                .form(&[("token", &access)])
                .send()
                .await
                .unwrap();
            http.post(format!("{}/token", server.base))
                .basic_auth(id, Some("wrong-client-secret-in-logs"))
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await
                .unwrap();

            drop(server);
            let text = std::fs::read_to_string(&log).unwrap();
            assert!(text.lines().count() > 20, "the log should show the flow: {text}");
            let secrets = [
                ("admin password", PASSWORD.to_string()),
                ("wrong password", "wrong-password-in-logs?".into()),
                ("client secret", secret.to_string()),
                ("wrong client secret", "wrong-client-secret-in-logs".into()),
                ("master key", master_key.into()),
                ("authorization code", code.clone()),
                ("session cookie", session.clone()),
                (
                    "access token",
                    tokens["access_token"].as_str().unwrap().to_string(),
                ),
                ("ID token", tokens["id_token"].as_str().unwrap().to_string()),
                ("refresh token", refresh.clone()),
                (
                    "rotated refresh token",
                    refreshed["refresh_token"].as_str().unwrap().to_string(),
                ),
                ("PKCE verifier", VERIFIER.into()),
            ];
            for (what, value) in secrets {
                assert!(!text.contains(&value), "the {what} appears in the log");
            }
            request_lines_are_structured(&text, id);
            return;
        }
    }
    panic!("the login did not succeed");
}
