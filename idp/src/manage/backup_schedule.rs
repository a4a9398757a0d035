//! Scheduled backups of the embedded default (SQLite): every `backup_interval_s` the server
//! writes a backup into `backup_dir` the way `idp backup create` does (online, consistent,
//! verified, recorded for the `IdpBackupTooOld` alert), then keeps only the newest
//! `backup_keep`. A replica set on PostgreSQL has backups of the database's own instead
//! (docs/backup.md): this never runs there.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::ManageError;
use crate::services::Services;
use crate::store::BackupRecord;

/// Starts the schedule when the store is SQLite and `backup_interval_s` is not 0. The first
/// backup is one interval after start: a restarting server does not write one each time.
pub fn spawn(services: Services) {
    let interval = services.settings.backup_interval_s;
    if interval == 0 || services.store.backend() != "sqlite" {
        return;
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(interval));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            match run_once(&services).await {
                Ok(record) => {
                    tracing::info!(location = %record.location, bytes = record.bytes, "scheduled backup written")
                }
                Err(e) => {
                    metrics::counter!("idp_backup_failures_total").increment(1);
                    tracing::error!(error = %e, "scheduled backup failed; the next is due in one interval");
                }
            }
        }
    });
}

/// One scheduled backup, then the retention.
pub async fn run_once(services: &Services) -> Result<BackupRecord, ManageError> {
    let dir = services.settings.backup_dir();
    create_private_dir(&dir)?;
    let (record, _) = super::backup::create(services, &dir).await?;
    let removed = prune(&dir, services.settings.backup_keep as usize)?;
    if !removed.is_empty() {
        tracing::info!(?removed, "deleted backups beyond backup_keep");
    }
    Ok(record)
}

/// The backups hold personal data: the directory is the owner's alone.
fn create_private_dir(dir: &Path) -> Result<(), ManageError> {
    let failed = |e: std::io::Error| ManageError::Internal(format!("backup_dir {}: {e}", dir.display()));
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(failed)
}

/// Deletes all but the newest `keep` scheduled backups (`idp-<UTC time>.sqlite`: their
/// names sort by time). Other files in the directory are left alone.
fn prune(dir: &Path, keep: usize) -> Result<Vec<PathBuf>, ManageError> {
    let failed = |e: std::io::Error| ManageError::Internal(format!("backup_dir {}: {e}", dir.display()));
    let mut backups: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(failed)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("idp-") && n.ends_with(".sqlite"))
        })
        .collect();
    backups.sort();
    let excess = backups.len().saturating_sub(keep);
    let removed: Vec<PathBuf> = backups.into_iter().take(excess).collect();
    for path in &removed {
        std::fs::remove_file(path).map_err(failed)?;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn prune_keeps_the_newest_and_nothing_else_is_touched() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "idp-20261201T000000Z.sqlite",
            "idp-20261202T000000Z.sqlite",
            "idp-20261203T000000Z.sqlite",
            "idp-20261204T000000Z.sqlite.partial",
            "notes.txt",
        ] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        let removed = prune(dir.path(), 2).unwrap();
        assert_eq!(removed, vec![dir.path().join("idp-20261201T000000Z.sqlite")]);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "idp-20261202T000000Z.sqlite",
                "idp-20261203T000000Z.sqlite",
                "idp-20261204T000000Z.sqlite.partial",
                "notes.txt"
            ]
        );
    }
}
