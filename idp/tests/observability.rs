//! Metrics after a scripted flow: counters move with what happened, and every metric the
//! Grafana dashboards and Prometheus alerts query is really exposed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;

use common::browser::{Browser, form};
use common::{Backend, metric_value as value, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_follow_a_scripted_flow_and_cover_every_dashboard_and_alert() {
    let app = spawn_app(Backend::Sqlite).await;
    app.add_user("mia").await;
    let client = app.add_client(false, |c| c.first_party = true).await;
    // An administrator enrols a second factor, then signs in with it (MFA metrics).
    app.add_user_as("ada", true).await;
    app.tokens(&client, "ada", "openid").await;
    app.tokens(&client, "ada", "openid").await;
    let scrape = || app.metrics();
    // An upstream identity provider: its series exist from the first login page that offers it.
    let draft = idp::domain::upstream::UpstreamDraft {
        slug: "corp".into(),
        display_name: "Corporate login".into(),
        issuer: Some("http://127.0.0.1:9/corp".into()),
        client_id: "idp".into(),
        ..Default::default()
    };
    app.add_upstream(draft, "upstream secret").await;
    let before = scrape().await;

    // A failed login.
    let mut url = url::Url::parse(&format!("{}/authorize", app.base)).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", &client.id)
        .append_pair("redirect_uri", common::REDIRECT)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid");
    let browser = Browser::new(&app.base);
    let (_, _, html) = browser.visit(url.as_str()).await.page();
    browser
        .submit(
            &form(&html)
                .set("username", "mia")
                .set("password", "wrong-password"),
        )
        .await;
    // A login, a refresh, and a reuse.
    let tokens = app.tokens(&client, "mia", "openid offline_access").await;
    let r1 = tokens["refresh_token"].as_str().unwrap();
    app.token_request(&client, &[("grant_type", "refresh_token"), ("refresh_token", r1)])
        .await;
    app.token_request(&client, &[("grant_type", "refresh_token"), ("refresh_token", r1)])
        .await;
    app.introspect(&client, tokens["access_token"].as_str().unwrap())
        .await;
    idp::manage::housekeeping::cleanup(&app.services).await.unwrap();
    let after = scrape().await;

    let moved =
        |name: &str, labels: &[(&str, &str)]| value(&after, name, labels) - value(&before, name, labels);
    // A series at zero (not merely absent): its line, with these labels, ending in 0.
    let at_zero = |name: &str, labels: &[(&str, &str)]| {
        after.lines().any(|l| {
            l.starts_with(&format!("{name}{{"))
                && labels.iter().all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
                && l.ends_with(" 0")
        })
    };
    for outcome in ["success", "failure", "link"] {
        let labels = [("upstream", "corp"), ("outcome", outcome)];
        assert!(
            at_zero("idp_upstream_logins_total", &labels),
            "{outcome}: {after}"
        );
    }
    assert!(at_zero("idp_upstream_logouts_total", &[("upstream", "corp")]));
    assert_eq!(
        moved(
            "idp_login_attempts_total",
            &[("outcome", "failure"), ("reason", "bad_password")]
        ),
        1.0
    );
    assert_eq!(moved("idp_login_attempts_total", &[("outcome", "success")]), 1.0);
    assert_eq!(moved("idp_refresh_rotations_total", &[]), 1.0);
    assert_eq!(moved("idp_refresh_token_reuse_total", &[]), 1.0);
    assert!(
        moved(
            "idp_tokens_issued_total",
            &[("grant_type", "authorization_code"), ("token_type", "id_token")]
        ) >= 1.0
    );
    assert_eq!(
        moved("idp_introspections_total", &[("result", "inactive")]),
        1.0,
        "the reused family is revoked"
    );
    assert!(
        moved(
            "idp_http_requests_total",
            &[("route", "/token"), ("status", "200")]
        ) >= 2.0
    );
    assert!(
        value(
            &after,
            "idp_token_signing_duration_seconds_count",
            &[("alg", "RS256")]
        ) >= 1.0
    );
    assert!(
        value(
            &after,
            "idp_db_query_duration_seconds_count",
            &[("statement", "select")]
        ) >= 1.0
    );
    assert!(value(&after, "idp_db_pool_acquire_duration_seconds_count", &[]) >= 1.0);
    assert_eq!(
        value(&after, "idp_signing_keys", &[("state", "active")]),
        4.0,
        "RS256, PS256, ES256, EdDSA"
    );
    assert_eq!(value(&after, "idp_signing_keys", &[("state", "pending")]), 0.0);
    assert!(after.contains("idp_build_info{"));
    assert!(!after.contains("mia"), "no user names in labels");

    // Every metric the dashboards and alerts use exists.
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy");
    let mut sources = vec![std::fs::read_to_string(format!("{root}/prometheus/alerts.yml")).unwrap()];
    for entry in std::fs::read_dir(format!("{root}/grafana/dashboards")).unwrap() {
        sources.push(std::fs::read_to_string(entry.unwrap().path()).unwrap());
    }
    let mut referenced = BTreeSet::new();
    for text in &sources {
        for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if word.starts_with("idp_") || word.starts_with("process_") {
                let base = ["_bucket", "_count", "_sum"]
                    .iter()
                    .fold(word, |w, s| w.strip_suffix(s).unwrap_or(w));
                referenced.insert(base.to_string());
            }
        }
    }
    assert!(referenced.len() >= 15, "{referenced:?}");
    let exposed: BTreeSet<&str> = after
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.split(' ').next())
        .collect();
    // Metrics of the built-in TLS exist only when it is on: tests/tls.rs checks them.
    let tls_only = [
        "idp_tls_certificate_expiry_timestamp_seconds",
        "idp_tls_reloads_total",
    ];
    let missing: Vec<&String> = referenced
        .iter()
        .filter(|m| !exposed.contains(m.as_str()) && !tls_only.contains(&m.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "dashboards or alerts query metrics that /metrics does not expose: {missing:?}"
    );
}

/// Issue 15 (info): with `metrics_listen`, `/metrics` is served there and nowhere else, and
/// that listener serves nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_have_a_listener_of_their_own() {
    let db = common::TestDb::new(Backend::Sqlite).await;
    idp::telemetry::init(idp::config::LogFormat::Json, "off");
    let settings = common::test_settings(&db, &[("IDP_METRICS_LISTEN", "127.0.0.1:0")]);
    let services = idp::services::Services::build(settings, true).await.unwrap();
    let app = idp::startup::Application::build(services).await.unwrap();
    let main = format!("http://{}", app.address);
    let metrics = format!("http://{}", app.metrics_address.unwrap());
    tokio::spawn(app.server);
    let http = reqwest::Client::new();
    let get = |url: String| {
        let http = http.clone();
        async move { http.get(url).send().await.unwrap() }
    };
    let scraped = get(format!("{metrics}/metrics")).await;
    assert_eq!(scraped.status(), 200);
    assert!(scraped.text().await.unwrap().contains("idp_signing_keys"));
    assert_eq!(get(format!("{main}/metrics")).await.status(), 404);
    assert_eq!(get(format!("{main}/healthz")).await.status(), 200);
    for elsewhere in ["/healthz", "/.well-known/openid-configuration", "/admin/"] {
        assert_eq!(
            get(format!("{metrics}{elsewhere}")).await.status(),
            404,
            "{elsewhere}"
        );
    }
}
