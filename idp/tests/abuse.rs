//! Abuse resistance from the outside: brute-force locks keyed by account and source, unlock,
//! trusted-proxy handling, rate limits on the token endpoint (per replica and shared through
//! Redis), and the in-process fallback when Redis is down.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::browser::form;
use common::{Backend, PASSWORD, REDIRECT, TestDb, spawn_app_with};
use idp::audit::{EventQuery, EventType};
use serde_json::Value;

/// A browser-like client whose requests say they come from `ip` (through a trusted proxy).
fn client_from(ip: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("x-forwarded-for", ip.parse().unwrap());
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .build()
        .unwrap()
}

/// A server with `settings`, the user vic and a first-party client.
async fn vic_and_app(backend: Backend, settings: &[(&str, &str)]) -> (common::TestApp, common::Registered) {
    let app = spawn_app_with(TestDb::new(backend).await, settings).await;
    app.add_user("vic").await;
    let client = app.add_client(false, |c| c.first_party = true).await;
    (app, client)
}

/// Opens the login page for `client_id` and submits `password`; returns the status.
async fn attempt(http: &reqwest::Client, base: &str, client_id: &str, password: &str) -> reqwest::Response {
    let mut url = url::Url::parse(&format!("{base}/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid");
    let to_login = http.get(url.as_str()).send().await.unwrap();
    let login_url = format!("{base}{}", to_login.headers()["location"].to_str().unwrap());
    let html = http.get(login_url).send().await.unwrap().text().await.unwrap();
    let fields = form(&html).set("username", "vic").set("password", password);
    http.post(format!("{base}/login"))
        .form(&fields.fields)
        .send()
        .await
        .unwrap()
}

async fn a_locked_out_attacker_does_not_lock_out_the_user(backend: Backend) {
    let (app, client) = vic_and_app(backend, &[("IDP_TRUSTED_PROXIES", "127.0.0.1")]).await;
    let attacker = client_from("198.51.100.66");
    for _ in 0..5 {
        assert_eq!(
            attempt(&attacker, &app.base, &client.id, "guess-guess")
                .await
                .status(),
            401
        );
    }
    // Locked: even the right password is refused from the attacker's address, without a check.
    let locked = attempt(&attacker, &app.base, &client.id, PASSWORD).await;
    assert_eq!(locked.status(), 429);
    let retry: u64 = locked.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let page = locked.text().await.unwrap();
    assert!(
        page.contains("Too many attempts") && !page.contains("locked"),
        "nothing says the account exists or is locked"
    );

    // The real user, from their own address, logs in.
    let user = client_from("203.0.113.10");
    let ok = attempt(&user, &app.base, &client.id, PASSWORD).await;
    assert_eq!(ok.status(), 302, "the user is not locked out from elsewhere");
    assert!(ok.headers()["location"].to_str().unwrap().contains("code="));

    let locks = app
        .services
        .store
        .query_events(&EventQuery {
            event_type: Some(EventType::AccountLocked),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(locks.len(), 1);
    assert_eq!(locks[0].ip.as_deref(), Some("198.51.100.66"));

    // An administrator lifts the lock.
    idp::manage::users::unlock(&app.services, "vic", idp::manage::Actor::Cli)
        .await
        .unwrap();
    assert_eq!(
        attempt(&attacker, &app.base, &client.id, PASSWORD).await.status(),
        302
    );
    let unlocked = app
        .services
        .store
        .query_events(&EventQuery {
            event_type: Some(EventType::AccountUnlocked),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(unlocked.len(), 1);
}

async fn a_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored(backend: Backend) {
    // No trusted proxies: X-Forwarded-For must not let an attacker rotate "addresses".
    let (app, client) = vic_and_app(backend, &[]).await;
    for i in 0..5 {
        let spoofing = client_from(&format!("198.51.100.{i}"));
        assert_eq!(
            attempt(&spoofing, &app.base, &client.id, "guess-guess")
                .await
                .status(),
            401
        );
    }
    let next = client_from("198.51.100.99");
    assert_eq!(
        attempt(&next, &app.base, &client.id, PASSWORD).await.status(),
        429,
        "all attempts came from 127.0.0.1"
    );
    let events = app
        .services
        .store
        .query_events(&EventQuery {
            event_type: Some(EventType::LoginFailed),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(events.iter().all(|e| e.ip.as_deref() == Some("127.0.0.1")));
}

async fn token_requests_beyond_the_limit_get_429_with_retry_after(backend: Backend) {
    let app = spawn_app_with(
        TestDb::new(backend).await,
        &[("IDP_RATE_LIMIT_TOKEN_PER_MINUTE", "60")],
    )
    .await;
    let client = app.add_service_client(&["api"]).await;
    let mut statuses = Vec::new();
    for _ in 0..15 {
        let response = app
            .token_request(&client, &[("grant_type", "client_credentials")])
            .await;
        if response.status() == 429 {
            assert!(response.headers().get("retry-after").is_some());
            let body: Value = response.json().await.unwrap();
            assert!(body["error"].is_string() && body["error_description"].is_string());
            statuses.push(429);
        } else {
            statuses.push(response.status().as_u16());
        }
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        10,
        "a burst of 10, then limited: {statuses:?}"
    );
    assert!(statuses[10..].iter().all(|s| *s == 429));
}

/// Issue 15 #3: failures from other sources never make the right password from a clean
/// source get refused (the account-wide budget counts only failures and slows, it does not
/// refuse), and `unlock` resets every limiter of the account.
async fn other_sources_failures_never_refuse_the_right_password(backend: Backend) {
    let (app, client) = vic_and_app(backend, &[("IDP_TRUSTED_PROXIES", "127.0.0.1")]).await;
    for attacker in ["198.51.100.66", "198.51.100.67"] {
        let http = client_from(attacker);
        for _ in 0..16 {
            let status = attempt(&http, &app.base, &client.id, "guess-guess")
                .await
                .status();
            assert!(status == 401 || status == 429, "{status}");
        }
    }
    let now = app.services.clock.now();
    let seen = app
        .services
        .store
        .login_failure_state("vic", "203.0.113.10", now)
        .await
        .unwrap();
    assert_eq!(
        seen.account_failures, 10,
        "five failures from each attacker before its lock; refused attempts are not failures"
    );
    // The victim, from an address with no failures, logs in (slowed, not refused).
    let user = client_from("203.0.113.10");
    let ok = attempt(&user, &app.base, &client.id, PASSWORD).await;
    assert_eq!(ok.status(), 302);
    assert!(ok.headers()["location"].to_str().unwrap().contains("code="));
    assert!(app.metrics().await.contains("idp_login_slowed_total"));

    // Unlock resets every limiter of the account: the locks and the account-wide count.
    idp::manage::users::unlock(&app.services, "vic", idp::manage::Actor::Cli)
        .await
        .unwrap();
    let after = app
        .services
        .store
        .login_failure_state("vic", "198.51.100.66", now)
        .await
        .unwrap();
    assert_eq!(
        (after.account_failures, after.failures, after.locked_until),
        (0, 0, None)
    );
    assert_eq!(
        attempt(&client_from("198.51.100.66"), &app.base, &client.id, PASSWORD)
            .await
            .status(),
        302
    );
}

/// Issue 15 #3: an IPv6 attacker cannot escape its lock by moving inside its /64, and does
/// not lock out a neighbour in another /64.
async fn ipv6_sources_are_locked_by_their_64_bit_prefix(backend: Backend) {
    let (app, client) = vic_and_app(backend, &[("IDP_TRUSTED_PROXIES", "127.0.0.1")]).await;
    for host in 1..=5 {
        let hopping = client_from(&format!("2001:db8:1:2::{host}"));
        assert_eq!(
            attempt(&hopping, &app.base, &client.id, "guess-guess")
                .await
                .status(),
            401
        );
    }
    let same_prefix = client_from("2001:db8:1:2:ffff::99");
    assert_eq!(
        attempt(&same_prefix, &app.base, &client.id, PASSWORD)
            .await
            .status(),
        429,
        "one /64 is one source"
    );
    let neighbour = client_from("2001:db8:1:3::1");
    assert_eq!(
        attempt(&neighbour, &app.base, &client.id, PASSWORD)
            .await
            .status(),
        302
    );
}

/// Issue 15 #13: each client may carry its own limits. A busy service granted more is not
/// throttled at the deployment's default, a client without one is, the 429 says which limit
/// was hit, a limit of 0 means none, and refusals are counted per limit.
async fn a_client_carries_its_own_rate_limits(backend: Backend) {
    let app = spawn_app_with(
        TestDb::new(backend).await,
        &[
            ("IDP_RATE_LIMIT_TOKEN_PER_MINUTE", "60"),
            ("IDP_RATE_LIMIT_INTROSPECT_PER_MINUTE", "60"),
        ],
    )
    .await;
    let with_limits = |token: i64, introspect: i64| {
        move |c: &mut idp::domain::client::NewClient| {
            c.grant_types = vec![idp::domain::client::GrantType::ClientCredentials];
            c.redirect_uris.clear();
            c.scopes = vec!["api".into()];
            c.rate_limit_token_per_minute = Some(token);
            c.rate_limit_introspect_per_minute = Some(introspect);
        }
    };
    let busy = app.add_client(false, with_limits(6000, 6000)).await;
    let unlimited = app.add_client(false, with_limits(0, 0)).await;
    let plain = app.add_service_client(&["api"]).await;
    let grant = [("grant_type", "client_credentials")];
    let mut token = String::new();
    for client in [&busy, &unlimited] {
        for _ in 0..30 {
            let response = app.token_request(client, &grant).await;
            assert_eq!(response.status(), 200, "above the default, within its own limit");
            token = response.json::<Value>().await.unwrap()["access_token"]
                .as_str()
                .unwrap()
                .to_string();
        }
        for _ in 0..30 {
            assert_eq!(app.introspect(client, &token).await["active"], true);
        }
    }
    let mut statuses = Vec::new();
    let mut refusal = Value::Null;
    for _ in 0..15 {
        let response = app.token_request(&plain, &grant).await;
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            refusal = response.json().await.unwrap();
        }
    }
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 10, "{statuses:?}");
    let described = refusal["error_description"].as_str().unwrap();
    assert!(
        described.contains(&format!("token requests of client {}", plain.id))
            && described.contains("limited to 60 per minute"),
        "{described}"
    );
    let mut last = None;
    for _ in 0..15 {
        last = Some(app.post_as(&plain, "/introspect", &[("token", &token)]).await);
    }
    let last = last.unwrap();
    assert_eq!(last.status(), 429);
    let described: Value = last.json().await.unwrap();
    assert!(
        described["error_description"]
            .as_str()
            .unwrap()
            .contains("introspection and revocation requests of client"),
        "{described}"
    );
    let metrics = app.metrics().await;
    for limiter in ["token-client", "introspect-client"] {
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with(&format!("idp_rate_limited_total{{limiter=\"{limiter}\"}}"))),
            "{limiter}: {metrics}"
        );
    }
}

on_both_backends!(
    a_client_carries_its_own_rate_limits,
    other_sources_failures_never_refuse_the_right_password,
    ipv6_sources_are_locked_by_their_64_bit_prefix,
    a_locked_out_attacker_does_not_lock_out_the_user,
    a_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored,
    token_requests_beyond_the_limit_get_429_with_retry_after,
);

/// Two replicas sharing Redis share one budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_one_redis_rate_limit_budget() {
    let db = TestDb::new(Backend::Postgres).await;
    let first = spawn_app_with(
        TestDb::new_shared(&db),
        &[("IDP_RATE_LIMIT_TOKEN_PER_MINUTE", "60")],
    )
    .await;
    let second = spawn_app_with(db, &[("IDP_RATE_LIMIT_TOKEN_PER_MINUTE", "60")]).await;
    let client = first.add_service_client(&["api"]).await;
    let mut ok = 0;
    for i in 0..14 {
        let app = if i % 2 == 0 { &first } else { &second };
        if app
            .token_request(&client, &[("grant_type", "client_credentials")])
            .await
            .status()
            == 200
        {
            ok += 1;
        }
    }
    assert_eq!(ok, 10, "one burst of 10 across both replicas, not 10 each");
    let metrics = first.metrics().await;
    let timed = metrics
        .lines()
        .find(|l| l.starts_with("idp_redis_command_duration_seconds_count{command=\"ratelimit\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok());
    assert!(
        timed.is_some_and(|n| n >= 7.0),
        "each replica timed its Redis calls: {timed:?}"
    );
}

/// Issue 15 #13: a client's own limit is one budget across replicas sharing Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clients_own_limit_is_shared_by_two_instances() {
    let db = TestDb::new(Backend::Postgres).await;
    let first = spawn_app_with(TestDb::new_shared(&db), &[]).await;
    let second = spawn_app_with(db, &[]).await;
    let client = first
        .add_client(false, |c| {
            c.grant_types = vec![idp::domain::client::GrantType::ClientCredentials];
            c.redirect_uris.clear();
            c.scopes = vec!["api".into()];
            c.rate_limit_token_per_minute = Some(60);
        })
        .await;
    let mut ok = 0;
    for i in 0..14 {
        let app = if i % 2 == 0 { &first } else { &second };
        if app
            .token_request(&client, &[("grant_type", "client_credentials")])
            .await
            .status()
            == 200
        {
            ok += 1;
        }
    }
    assert_eq!(
        ok, 10,
        "one burst of 10 across both replicas, under the client's own limit"
    );
}

/// With Redis down, limits fall back to in-process ones: requests are still served (and
/// still limited), and the fallback is visible in the metrics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_fall_back_to_in_process_when_redis_is_down() {
    let proxy = common::proxy::Proxy::start("127.0.0.1:6379".parse().unwrap()).await;
    let via_proxy = format!("redis://{}", proxy.address);
    let app = spawn_app_with(
        TestDb::new(Backend::Postgres).await,
        &[
            ("IDP_REDIS_URL", &via_proxy),
            ("IDP_RATE_LIMIT_TOKEN_PER_MINUTE", "600"),
        ],
    )
    .await;
    let client = app.add_service_client(&["api"]).await;
    assert_eq!(
        app.token_request(&client, &[("grant_type", "client_credentials")])
            .await
            .status(),
        200
    );
    proxy.cut();
    let during = app
        .token_request(&client, &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(
        during.status(),
        200,
        "limits fall back in-process instead of refusing everything"
    );
    let metrics = app.metrics().await;
    assert!(
        metrics.lines().any(|l| l == "idp_ratelimit_fallback 1"),
        "{metrics}"
    );
}
