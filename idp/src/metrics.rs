//! Prometheus metrics: one recorder for the process, rendered at `GET /metrics`.
//! Names follow Prometheus conventions: `idp_` prefix, base units, `_total` counters, and
//! bounded label values (route templates, never raw paths or user names). Every metric is
//! listed in `docs/observability.md`; a test checks that dashboards and alerts use only these.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::services::Services;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Latency buckets in seconds: sub-millisecond to seconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// Refresh rotations per PostgreSQL statement (`store/rotation_batch.rs`), up to its 64.
const ROTATION_BATCH: &str = "idp_refresh_rotation_batch_size";
const ROTATION_BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0];

/// Installs the process-wide recorder (once; later calls return the same handle).
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_duration_seconds".into()), LATENCY_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Full(ROTATION_BATCH.into()), ROTATION_BATCH_BUCKETS)
                })
                .unwrap_or_else(|_| PrometheusBuilder::new());
            match builder.install_recorder() {
                Ok(handle) => {
                    describe();
                    register_zeroes();
                    metrics::gauge!("idp_build_info", "version" => env!("CARGO_PKG_VERSION"), "commit" => option_env!("IDP_COMMIT").unwrap_or("unknown")).set(1.0);
                    handle
                }
                // Another recorder is installed (tests embedding the library): render nothing.
                Err(_) => PrometheusBuilder::new().build_recorder().handle(),
            }
        })
        .clone()
}

/// The text exposition, refreshing the gauges that are sampled rather than counted.
pub async fn render(services: &Services) -> String {
    sample(services);
    sample_backups(services).await;
    metrics_process::Collector::default().collect();
    install().render()
}

fn sample(services: &Services) {
    let (size, idle) = services.store.pool_status();
    metrics::gauge!("idp_db_pool_connections", "state" => "idle").set(f64::from(idle));
    metrics::gauge!("idp_db_pool_connections", "state" => "in_use").set(f64::from(size.saturating_sub(idle)));
    metrics::gauge!("idp_db_pool_max_connections").set(f64::from(services.settings.database_max_connections));
    metrics::gauge!("idp_password_hashes_in_progress").set(services.passwords.in_progress() as f64);
    let ring = services.keys.current();
    metrics::gauge!("idp_signing_keys", "state" => "published").set(ring.published_kids().len() as f64);
    let (pending, active, retired) = ring.key_states(services.clock.now());
    metrics::gauge!("idp_signing_keys", "state" => "pending").set(pending as f64);
    metrics::gauge!("idp_signing_keys", "state" => "active").set(active as f64);
    metrics::gauge!("idp_signing_keys", "state" => "retired").set(retired as f64);
}

/// The newest recorded backup (a database read per scrape, bounded so a slow database does
/// not stall the scrape: the gauges then keep their last values).
async fn sample_backups(services: &Services) {
    let read = tokio::time::timeout(Duration::from_secs(1), services.store.last_backup()).await;
    match read {
        Ok(Ok(last)) => {
            let (at, bytes) = last.map_or((0.0, 0.0), |b| (b.finished_at.timestamp() as f64, b.bytes as f64));
            metrics::gauge!("idp_backup_last_success_timestamp_seconds").set(at);
            metrics::gauge!("idp_backup_last_size_bytes").set(bytes);
        }
        Ok(Err(e)) => tracing::warn!(error = %e, "could not read the last backup"),
        Err(_) => tracing::warn!("reading the last backup timed out"),
    }
    // MFA adoption, for the authentication dashboard (one indexed count per scrape).
    match tokio::time::timeout(Duration::from_secs(1), services.store.users_with_mfa()).await {
        Ok(Ok(users)) => metrics::gauge!("idp_mfa_users").set(users as f64),
        Ok(Err(e)) => tracing::warn!(error = %e, "could not count users with MFA"),
        Err(_) => tracing::warn!("counting users with MFA timed out"),
    }
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "idp_http_requests_total",
        "HTTP requests by route template, method and status"
    );
    describe_histogram!(
        "idp_http_request_duration_seconds",
        metrics::Unit::Seconds,
        "HTTP request latency by route template"
    );
    describe_counter!(
        "idp_login_attempts_total",
        "Password logins by outcome and reason"
    );
    describe_counter!(
        "idp_tokens_issued_total",
        "Tokens issued by grant type and token type"
    );
    describe_counter!("idp_refresh_rotations_total", "Refresh tokens rotated");
    describe_histogram!(
        ROTATION_BATCH,
        "Strict refresh rotations per PostgreSQL statement (group commit)"
    );
    describe_counter!(
        "idp_refresh_token_reuse_total",
        "Retired refresh tokens presented again (family revoked)"
    );
    describe_counter!(
        "idp_code_reuse_total",
        "Authorization codes presented twice (grant revoked)"
    );
    describe_counter!(
        "idp_token_revocations_total",
        "Tokens revoked through /revoke by token type"
    );
    describe_counter!("idp_introspections_total", "Introspection requests by result");
    describe_histogram!(
        "idp_token_signing_duration_seconds",
        metrics::Unit::Seconds,
        "Time to sign a JWT by algorithm"
    );
    describe_histogram!(
        "idp_password_hash_duration_seconds",
        metrics::Unit::Seconds,
        "Time to hash or verify a password"
    );
    describe_gauge!(
        "idp_password_hashes_in_progress",
        "Password hashes running or waiting for a permit"
    );
    describe_gauge!("idp_db_pool_connections", "Database pool connections by state");
    describe_histogram!(
        "idp_db_query_duration_seconds",
        metrics::Unit::Seconds,
        "Database statement latency, from sending to the last row, by statement verb"
    );
    describe_histogram!(
        "idp_db_pool_acquire_duration_seconds",
        metrics::Unit::Seconds,
        "Time a database operation waited for a pooled connection"
    );
    describe_histogram!(
        "idp_redis_command_duration_seconds",
        metrics::Unit::Seconds,
        "Redis round trips by command (deny-list writes and reads, rate-limit script)"
    );
    describe_counter!("idp_redis_errors_total", "Redis commands that failed, by command");
    describe_gauge!(
        "idp_tls_certificate_expiry_timestamp_seconds",
        "When the served TLS certificate expires (Unix seconds); only with built-in TLS"
    );
    describe_counter!("idp_tls_reloads_total", "Certificate reloads by outcome");
    describe_gauge!("idp_db_pool_max_connections", "Configured database pool size");
    describe_gauge!(
        "idp_backup_last_success_timestamp_seconds",
        "When the newest recorded backup finished (Unix seconds; 0 when none was ever made)"
    );
    describe_gauge!("idp_backup_last_size_bytes", "Size of the newest recorded backup");
    describe_counter!(
        "idp_backup_failures_total",
        "Scheduled backups (SQLite, backup_interval_s) that failed"
    );
    describe_gauge!(
        "idp_ratelimit_fallback",
        "1 while Redis cannot be reached and rate limits are in-process on this replica"
    );
    describe_counter!(
        "idp_database_unavailable_total",
        "Database operations that failed because it could not be reached (connection lost, pool timed out, server shutting down)"
    );
    describe_counter!(
        "idp_denylist_errors_total",
        "Deny-list (Redis) operations that failed"
    );
    describe_counter!(
        "idp_cleanup_rows_deleted_total",
        "Rows deleted by housekeeping by kind"
    );
    describe_counter!(
        "idp_security_events_total",
        "Security events recorded by type and outcome"
    );
    describe_gauge!("idp_signing_keys", "Signing keys by state");
    describe_gauge!("idp_build_info", "Build version and commit");
    describe_gauge!("idp_mfa_users", "Users with at least one confirmed second factor");
    describe_counter!(
        "idp_mfa_verifications_total",
        "Second-factor checks at login by factor (totp, recovery_code) and outcome"
    );
    describe_counter!("idp_mfa_enrolments_total", "Second factors enrolled, by factor");
    describe_counter!(
        "idp_upstream_logins_total",
        "Sign-ins through upstream identity providers by provider and outcome (success, failure, link)"
    );
    describe_counter!(
        "idp_upstream_logouts_total",
        "Back-channel logouts from upstream identity providers accepted, by provider"
    );
}

/// Series that alerts compare against exist from the start, at zero, rather than appearing
/// with the first event (an absent series makes `rate()` and ratios silently empty).
fn register_zeroes() {
    for name in [
        "idp_refresh_rotations_total",
        "idp_refresh_token_reuse_total",
        "idp_code_reuse_total",
        "idp_token_revocations_total",
        "idp_denylist_errors_total",
        "idp_database_unavailable_total",
        "idp_backup_failures_total",
    ] {
        metrics::counter!(name).increment(0);
    }
    // Without Redis there is nothing to fall back from: 0 until a Redis call fails.
    metrics::gauge!("idp_ratelimit_fallback").set(0.0);
    for (outcome, reason) in [
        ("success", "none"),
        ("failure", "unknown_user"),
        ("failure", "bad_password"),
        ("failure", "disabled"),
    ] {
        metrics::counter!("idp_login_attempts_total", "outcome" => outcome, "reason" => reason).increment(0);
    }
}

/// An upstream identity provider's series, at zero until its first sign-in or logout on this
/// replica (as [`register_zeroes`], for the per-provider alert's `increase()`).
pub fn register_upstream(slug: &str) {
    for outcome in ["success", "failure", "link"] {
        metrics::counter!("idp_upstream_logins_total", "upstream" => slug.to_string(), "outcome" => outcome)
            .increment(0);
    }
    metrics::counter!("idp_upstream_logouts_total", "upstream" => slug.to_string()).increment(0);
}

/// Observes a duration into a histogram.
pub fn observe(name: &'static str, labels: &[(&'static str, String)], elapsed: Duration) {
    let labels: Vec<metrics::Label> = labels
        .iter()
        .map(|(k, v)| metrics::Label::new(*k, v.clone()))
        .collect();
    metrics::histogram!(name, labels).record(elapsed.as_secs_f64());
}

/// Runs a Redis command, timing it and counting its failure.
pub async fn timed_redis<T>(
    command: &'static str,
    call: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> redis::RedisResult<T> {
    let started = std::time::Instant::now();
    let result = call.await;
    metrics::histogram!("idp_redis_command_duration_seconds", "command" => command)
        .record(started.elapsed().as_secs_f64());
    if result.is_err() {
        metrics::counter!("idp_redis_errors_total", "command" => command).increment(1);
    }
    result
}
