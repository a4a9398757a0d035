//! Structured logging through `tracing` on standard error: one JSON object per line in production,
//! human-readable on a terminal. Also turns sqlx's per-statement and per-acquisition events
//! into the `idp_db_query_duration_seconds` and `idp_db_pool_acquire_duration_seconds`
//! histograms, whatever the log level.

use std::io::IsTerminal;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, fmt};

use crate::config::LogFormat;

/// Installs the global subscriber. Safe to call more than once (later calls do nothing).
pub fn init(format: LogFormat, level: &str) {
    let filter = EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let logs = if json {
        fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_target(true)
            .with_writer(std::io::stderr)
            .with_filter(filter)
            .boxed()
    } else {
        fmt::layer()
            .compact()
            .with_target(true)
            .with_writer(std::io::stderr)
            .with_filter(filter)
            .boxed()
    };
    // Its own filter: statement events are wanted for timing even when logs show only warnings.
    let queries = DbQueryMetrics.with_filter(
        Targets::new()
            .with_target(QUERY_TARGET, LevelFilter::DEBUG)
            .with_target(ACQUIRE_TARGET, LevelFilter::DEBUG),
    );
    let _ = tracing_subscriber::registry().with(logs).with(queries).try_init();
}

const QUERY_TARGET: &str = "sqlx::query";
const ACQUIRE_TARGET: &str = "sqlx::pool::acquire";

/// Records each statement sqlx reports (its `summary` and `elapsed_secs` fields) and each
/// wait for a pooled connection (`acquired_after_secs`).
struct DbQueryMetrics;

impl<S: Subscriber> Layer<S> for DbQueryMetrics {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut fields = SqlxFields::default();
        event.record(&mut fields);
        match (event.metadata().target(), fields.seconds) {
            (QUERY_TARGET, Some(seconds)) => {
                metrics::histogram!("idp_db_query_duration_seconds", "statement" => fields.kind)
                    .record(seconds);
            }
            (ACQUIRE_TARGET, Some(seconds)) => {
                metrics::histogram!("idp_db_pool_acquire_duration_seconds").record(seconds);
            }
            _ => {}
        }
    }
}

#[derive(Default)]
struct SqlxFields {
    kind: &'static str,
    seconds: Option<f64>,
}

impl Visit for SqlxFields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        if matches!(field.name(), "elapsed_secs" | "acquired_after_secs") {
            self.seconds = Some(value);
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "summary" {
            self.kind = statement_kind(value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "summary" {
            self.kind = statement_kind(&format!("{value:?}"));
        }
    }
}

/// A bounded label: the statement's verb.
fn statement_kind(summary: &str) -> &'static str {
    let verb = summary
        .trim_start_matches(['"', ' '])
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    match verb.as_str() {
        "select" => "select",
        "insert" => "insert",
        "update" => "update",
        "delete" => "delete",
        "with" => "with",
        "begin" => "begin",
        "commit" => "commit",
        "rollback" => "rollback",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::statement_kind;

    #[test]
    fn statements_are_labelled_by_their_verb_only() {
        assert_eq!(statement_kind("SELECT id, username FROM users …"), "select");
        assert_eq!(statement_kind("\"update users set …"), "update");
        assert_eq!(statement_kind("PRAGMA foreign_keys = ON"), "other");
    }
}
