//! `idp backup create`: a consistent snapshot of the live database, written under a
//! temporary name and renamed only once complete (a backup with its final name is never
//! half-written), then checked, hashed and recorded, so the `IdpBackupTooOld` alert knows
//! when the last one succeeded.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::ManageError;
use crate::services::Services;
use crate::store::BackupRecord;
use crate::store::backup::{self, BackupSummary};

/// Writes a backup to `target` (a file that must not exist, or a directory to create a
/// time-stamped file in), verifies it and records it.
pub async fn create(
    services: &Services,
    target: &Path,
) -> Result<(BackupRecord, BackupSummary), ManageError> {
    let store = &services.store;
    let now = services.clock.now();
    let path = if target.is_dir() {
        let extension = if store.backend() == "sqlite" {
            "sqlite"
        } else {
            "pgdump"
        };
        target.join(format!("idp-{}.{extension}", now.format("%Y%m%dT%H%M%SZ")))
    } else {
        target.to_path_buf()
    };
    if path.exists() {
        return Err(ManageError::Internal(format!(
            "{} already exists",
            path.display()
        )));
    }
    let partial = partial_name(&path);
    let _ = std::fs::remove_file(&partial);
    let written = async {
        store.write_backup(&partial).await?;
        backup::verify(&partial).await
    }
    .await;
    let summary = match written {
        Ok(summary) => summary,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e.into());
        }
    };
    std::fs::rename(&partial, &path)
        .map_err(|e| ManageError::Internal(format!("{}: {e}", path.display())))?;
    let (bytes, sha256) = tokio::task::spawn_blocking({
        let path = path.clone();
        move || digest(&path)
    })
    .await
    .map_err(|e| ManageError::Internal(e.to_string()))??;
    let record = BackupRecord {
        finished_at: services.clock.now(),
        backend: store.backend().to_string(),
        location: path.display().to_string(),
        bytes,
        sha256,
    };
    store.record_backup(&record).await?;
    Ok((record, summary))
}

fn partial_name(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(".partial");
    PathBuf::from(name)
}

/// Size and SHA-256 (hex) of a file, read in blocks.
pub fn digest(path: &Path) -> Result<(i64, String), ManageError> {
    let failed = |e: std::io::Error| ManageError::Internal(format!("{}: {e}", path.display()));
    let mut file = std::fs::File::open(path).map_err(failed)?;
    let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    let mut buf = vec![0u8; 1 << 16];
    let mut total: i64 = 0;
    loop {
        let n = file.read(&mut buf).map_err(failed)?;
        if n == 0 {
            break;
        }
        context.update(&buf[..n]);
        total += i64::try_from(n).unwrap_or(i64::MAX);
    }
    let hex = context
        .finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok((total, hex))
}
