//! Housekeeping: expired codes, refresh tokens, grants, sessions and deny-list entries
//! are deleted in bounded batches, so tables do not grow without limit under sustained
//! traffic. Runs in the background on every replica (deletes are idempotent) and as
//! `idp maintenance cleanup`.

use std::time::Duration;

use super::ManageError;
use crate::services::Services;

/// Deletes what has expired; returns the rows removed per kind.
pub async fn cleanup(services: &Services) -> Result<Vec<(&'static str, u64)>, ManageError> {
    let now = services.clock.now();
    let mut counts = services
        .store
        .delete_expired(now, services.settings.cleanup_batch)
        .await?;
    counts.push(("deny_list", services.deny_list.prune(now).await as u64));
    let retention = services.settings.security_event_retention_days;
    if retention > 0 {
        let before = now - chrono::Duration::days(i64::from(retention));
        counts.push((
            "security_events",
            services
                .store
                .prune_events(before, services.settings.cleanup_batch)
                .await?,
        ));
    }
    for (kind, n) in &counts {
        metrics::counter!("idp_cleanup_rows_deleted_total", "kind" => *kind).increment(*n);
    }
    Ok(counts)
}

/// Runs [`cleanup`] every `cleanup_interval_s` seconds (never when it is 0).
pub fn spawn(services: Services) {
    let interval = services.settings.cleanup_interval_s;
    if interval == 0 {
        return;
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(interval));
        loop {
            tick.tick().await;
            match cleanup(&services).await {
                Ok(counts) => {
                    let total: u64 = counts.iter().map(|(_, n)| n).sum();
                    if total > 0 {
                        tracing::info!(?counts, "deleted expired rows");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cleanup failed; will retry"),
            }
        }
    });
}
