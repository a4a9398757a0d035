//! Fills the configured store (SQLite or PostgreSQL, from the same configuration as `idp
//! serve`) with representative data for the load tests in `loadtest/`: users with one
//! argon2 hash computed once and shared, a share of them with a confirmed TOTP factor,
//! victims for the attackers, a browser client, a service client and filler clients, live
//! refresh tokens and a history of security events. Everything goes through the store, as
//! the server writes it. Prints what the load test needs as JSON on standard output
//! (passwords, client secrets and TOTP keys: a test fixture, never a production secret).
//!
//! `cargo test -p idp -p e2e --no-run` builds it (target/debug/examples/loadtest_data).

use std::time::Instant;

use chrono::{Duration, Utc};
use clap::Parser;
use futures_util::{StreamExt, TryStreamExt, stream};
use idp::audit::{EventType, Outcome, SecurityEvent};
use idp::config::Settings;
use idp::domain::client::{ClientType, GrantType, NewClient, RedirectUri};
use idp::domain::grant::{Grant, RefreshState, RefreshToken};
use idp::domain::mfa::{Factor, FactorKind};
use idp::domain::user::{NewUser, Username};
use idp::manage::{Actor, clients};
use idp::security::random;
use idp::security::totp::TotpSecret;
use idp::services::Services;
use secrecy::SecretString;
use uuid::Uuid;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Writes in flight at once: enough to keep a PostgreSQL pool busy.
const CONCURRENCY: usize = 32;
const REDIRECT_URI: &str = "http://127.0.0.1:9/callback";
const POST_LOGOUT_URI: &str = "http://127.0.0.1:9/signed-out";

#[derive(Debug, Parser)]
struct Args {
    /// Users named `<prefix>-user-<n>`, all with --password.
    #[arg(long, default_value_t = 1000)]
    users: usize,
    /// Every n-th user (from 0) has a confirmed TOTP factor; 0: none.
    #[arg(long, default_value_t = 10)]
    totp_every: usize,
    /// Accounts the attackers guess passwords of (`<prefix>-victim-<n>`).
    #[arg(long, default_value_t = 50)]
    victims: usize,
    /// Clients in all, the browser and service clients included.
    #[arg(long, default_value_t = 20)]
    clients: usize,
    /// Live refresh tokens (each with its grant) spread over the users.
    #[arg(long, default_value_t = 2000)]
    refresh_tokens: usize,
    /// Security events spread over the last 30 days.
    #[arg(long, default_value_t = 10_000)]
    events: usize,
    #[arg(long, default_value = "lt")]
    prefix: String,
    #[arg(long, default_value = "load-test-password")]
    password: String,
}

#[tokio::main]
async fn main() {
    if let Err(e) = run(Args::parse()).await {
        eprintln!("loadtest_data: {e}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), Error> {
    let services = Services::build(Settings::load(None)?, true).await?;
    let phc = services
        .passwords
        .hash(&SecretString::from(args.password.clone()))
        .await?;

    let started = Instant::now();
    let user_ids: Vec<Uuid> = stream::iter(0..args.users)
        .map(|n| create_user(&services, format!("{}-user-{n}", args.prefix), &phc))
        .buffered(CONCURRENCY)
        .try_collect()
        .await?;
    progress("users", args.users, started);

    let started = Instant::now();
    let totp_users: Vec<(usize, Uuid)> = match args.totp_every {
        0 => Vec::new(),
        every => user_ids.iter().copied().enumerate().step_by(every).collect(),
    };
    let totp_keys: serde_json::Map<String, serde_json::Value> = stream::iter(totp_users)
        .map(|(n, id)| {
            let services = &services;
            async move { Ok::<_, Error>((n.to_string(), add_totp(services, id).await?.into())) }
        })
        .buffered(CONCURRENCY)
        .try_collect()
        .await?;
    progress("TOTP factors", totp_keys.len(), started);

    stream::iter(0..args.victims)
        .map(|n| create_user(&services, format!("{}-victim-{n}", args.prefix), &phc))
        .buffered(CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?;

    let started = Instant::now();
    let browser = clients::register(&services, browser_client()?, Actor::Cli).await?;
    let service = clients::register(&services, service_client()?, Actor::Cli).await?;
    let mut client_ids = vec![browser.client.id.clone()];
    for n in 2..args.clients.max(2) {
        let filler = NewClient {
            name: format!("{}-app-{n}", args.prefix),
            ..browser_client()?
        };
        client_ids.push(clients::register(&services, filler, Actor::Cli).await?.client.id);
    }
    progress("clients", args.clients.max(2), started);

    let started = Instant::now();
    let (users, apps) = (&user_ids, &client_ids);
    stream::iter(0..args.refresh_tokens)
        .map(|n| add_refresh_token(&services, users[n % users.len().max(1)], &apps[n % apps.len()]))
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?;
    progress("refresh tokens", args.refresh_tokens, started);

    let started = Instant::now();
    stream::iter(0..args.events)
        .map(|n| add_event(&services, n, args.events, users, apps))
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?;
    progress("security events", args.events, started);

    let secret = |r: &clients::Registered| {
        r.secret
            .as_ref()
            .map(|s| secrecy::ExposeSecret::expose_secret(s).to_string())
    };
    let fixture = serde_json::json!({
        "password": args.password,
        "user_prefix": format!("{}-user-", args.prefix),
        "users": args.users,
        "victim_prefix": format!("{}-victim-", args.prefix),
        "victims": args.victims,
        "totp_keys": totp_keys,
        "browser_client": {
            "client_id": browser.client.id,
            "client_secret": secret(&browser),
            "redirect_uri": REDIRECT_URI,
            "post_logout_redirect_uri": POST_LOGOUT_URI,
        },
        "service_client": { "client_id": service.client.id, "client_secret": secret(&service) },
    });
    println!("{fixture}");
    services.store.close().await;
    Ok(())
}

fn progress(what: &str, count: usize, started: Instant) {
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "{count} {what} in {seconds:.1} s ({:.0}/s)",
        count as f64 / seconds.max(0.001)
    );
}

async fn create_user(services: &Services, username: String, phc: &str) -> Result<Uuid, Error> {
    let user = NewUser {
        username: Username::parse(&username)?,
        email: None,
        name: Some(username.clone()),
        roles: Vec::new(),
    };
    Ok(services.store.create_user(&user, Some(phc), Utc::now()).await?.id)
}

/// A confirmed TOTP factor, as an enrolment leaves it; returns its key (base32).
async fn add_totp(services: &Services, user_id: Uuid) -> Result<String, Error> {
    let (id, secret, now) = (Uuid::new_v4(), TotpSecret::generate()?, Utc::now());
    let factor = Factor {
        id,
        user_id,
        kind: FactorKind::Totp,
        name: "Authenticator app".into(),
        secret: secret.encrypt(&services.mfa_key, id)?,
        credential_id: None,
        created_at: now,
        confirmed_at: Some(now),
        last_used_at: None,
        last_used_step: None,
    };
    services.store.insert_factor(&factor).await?;
    Ok(secret.manual_key().replace(' ', ""))
}

/// A refresh token as a login with `offline_access` leaves it (the token itself is
/// discarded: only its hash is stored, and the load test logs in for its own).
async fn add_refresh_token(services: &Services, user_id: Uuid, client_id: &str) -> Result<(), Error> {
    let now = Utc::now();
    let grant = Grant {
        id: random::token::<18>()?,
        client_id: client_id.to_string(),
        user_id: Some(user_id.to_string()),
        session_id: None,
        scope: "openid offline_access".into(),
        offline: true,
        created_at: now,
        expires_at: now + Duration::days(30),
        revoked_at: None,
        auth_time: Some(now),
        amr: vec!["pwd".into()],
        dpop_jkt: None,
        resources: vec![],
    };
    services.store.create_grant(&grant).await?;
    let token = RefreshToken {
        token_hash: services.tokens.hash(&random::token::<32>()?),
        grant_id: grant.id.clone(),
        client_id: grant.client_id.clone(),
        user_id: grant.user_id.clone(),
        generation: 0,
        parent_hash: None,
        state: RefreshState::Active,
        scope: grant.scope.clone(),
        created_at: now,
        expires_at: grant.expires_at,
        last_used_at: None,
        rotated_at: None,
        successor_response: None,
    };
    Ok(services.store.insert_refresh_token(&token).await?)
}

/// The kinds of events a live deployment records most, in roughly their proportions.
const EVENT_MIX: [(EventType, Outcome); 8] = [
    (EventType::LoginSucceeded, Outcome::Success),
    (EventType::LoginSucceeded, Outcome::Success),
    (EventType::LoginSucceeded, Outcome::Success),
    (EventType::LoginSucceeded, Outcome::Success),
    (EventType::LoginFailed, Outcome::Failure),
    (EventType::ConsentGranted, Outcome::Success),
    (EventType::Logout, Outcome::Success),
    (EventType::TokenRevoked, Outcome::Success),
];

async fn add_event(
    services: &Services,
    n: usize,
    total: usize,
    users: &[Uuid],
    apps: &[String],
) -> Result<i64, Error> {
    let (event_type, outcome) = EVENT_MIX[n % EVENT_MIX.len()];
    // Spread over 30 days, oldest first, as a deployment's history grows.
    let age = Duration::seconds((30 * 86_400 * (total - n) / total.max(1)) as i64);
    let mut event = SecurityEvent::new(event_type, outcome, Utc::now() - age);
    event.user_id = users.get(n % users.len().max(1)).map(Uuid::to_string);
    event.client_id = Some(apps[n % apps.len()].clone());
    event.ip = Some(format!(
        "10.{}.{}.{}",
        n % 250,
        (n / 250) % 250,
        (n / 62_500) % 250
    ));
    event.user_agent = Some("Mozilla/5.0 (load test)".into());
    Ok(services.store.record_event(&event).await?)
}

fn browser_client() -> Result<NewClient, Error> {
    let uri = |raw: &str| RedirectUri::parse(raw, ClientType::Confidential);
    Ok(NewClient {
        name: "load-test web app".into(),
        client_type: ClientType::Confidential,
        redirect_uris: vec![uri(REDIRECT_URI)?],
        post_logout_redirect_uris: vec![uri(POST_LOGOUT_URI)?],
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        scopes: ["openid", "profile", "email", "offline_access"]
            .map(String::from)
            .to_vec(),
        first_party: true,
        refresh_reuse_window_s: 0,
        require_pkce: true,
        refresh_idle_ttl_s: None,
        id_token_signed_response_alg: "RS256".into(),
        access_token_signing_alg: None,
        backchannel_logout_uri: None,
        token_endpoint_auth_method: None,
        jwks: None,
        jwks_uri: None,
        require_par: false,
        dpop_bound_access_tokens: false,
        profile: None,
        resources: vec![],
        access_token_ttl_s: None,
        refresh_token_ttl_s: None,
        rate_limit_token_per_minute: None,
        rate_limit_introspect_per_minute: None,
        mfa: None,
        require_verified_email: false,
    })
}

/// A resource server: client_credentials only, otherwise the browser client's settings.
fn service_client() -> Result<NewClient, Error> {
    Ok(NewClient {
        name: "load-test resource server".into(),
        redirect_uris: Vec::new(),
        post_logout_redirect_uris: Vec::new(),
        grant_types: vec![GrantType::ClientCredentials],
        scopes: vec!["api".into()],
        first_party: false,
        require_pkce: false,
        ..browser_client()?
    })
}
