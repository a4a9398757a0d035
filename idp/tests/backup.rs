//! Backups as an operator runs them: `idp backup create` against a live server, the metric
//! the backup alert watches, `verify` on good and broken files, and a restore after which a
//! deleted user logs in again.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{Backend, TestApp, TestDb, spawn_app_with};
use serde_json::Value;

/// The real `idp` binary with this test's database and master key, nothing else from outside.
fn idp(app: &TestApp, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_idp"));
    for (key, _) in std::env::vars() {
        if key.starts_with("IDP_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("IDP_DATABASE_URL", &app.db.url)
        .env("IDP_DATA_DIR", app.db.dir.path())
        .env("IDP_MASTER_KEY", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
        .args(args)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

async fn scrape(app: &TestApp, name: &str) -> f64 {
    app.metrics()
        .await
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} "))?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} not exposed"))
}

async fn backup_restore_brings_a_deleted_user_back(backend: Backend) {
    let app = spawn_app_with(TestDb::new(backend).await, &[]).await;
    let mia = app.add_user("mia").await;
    let client = app.add_client(false, |c| c.first_party = true).await;
    assert_eq!(
        scrape(&app, "idp_backup_last_success_timestamp_seconds").await,
        0.0,
        "no backup yet"
    );

    // Online, while the server serves.
    let dir = tempfile::tempdir().unwrap();
    let out = idp(
        &app,
        &["backup", "create", dir.path().to_str().unwrap(), "--json"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let file = report["location"].as_str().unwrap().to_string();
    assert!(
        Path::new(&file).is_file() && Path::new(&file).starts_with(dir.path()),
        "{report}"
    );
    assert_eq!(
        std::fs::metadata(&file).unwrap().len(),
        report["bytes"].as_u64().unwrap()
    );
    assert_eq!(report["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(
        report["users"], 2,
        "the bootstrap administrator and mia: {report}"
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "no partial file left behind");
    let recorded = scrape(&app, "idp_backup_last_success_timestamp_seconds").await;
    let now = chrono::Utc::now().timestamp() as f64;
    assert!((now - recorded).abs() < 120.0, "recorded {recorded}, now {now}");
    assert!(scrape(&app, "idp_backup_last_size_bytes").await > 0.0);

    // The same target again is refused, not overwritten.
    let again = idp(&app, &["backup", "create", &file]);
    assert_eq!(again.status.code(), Some(1));
    assert!(text(&again.stderr).contains("already exists"));

    let verified = idp(&app, &["backup", "verify", &file]);
    assert!(verified.status.success(), "{}", text(&verified.stderr));
    let line = text(&verified.stdout);
    assert!(
        line.starts_with("ok\t")
            && line.contains(report["sha256"].as_str().unwrap())
            && line.contains("2 users"),
        "{line}"
    );

    // Broken files fail verification with a reason.
    let truncated = dir.path().join("truncated");
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let foreign = dir.path().join("foreign");
    std::fs::write(&foreign, b"not a database at all").unwrap();
    for broken in [&truncated, &foreign] {
        let out = idp(&app, &["backup", "verify", broken.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
        assert!(
            text(&out.stderr).contains("is not a usable backup"),
            "{}",
            text(&out.stderr)
        );
    }

    // After the backup: mia is deleted.
    idp::manage::users::delete(&app.services, mia.id, idp::manage::Actor::Cli)
        .await
        .unwrap();
    assert!(app.services.store.find_user(mia.id).await.unwrap().is_none());

    // Restore is refused without --yes, then done with every server stopped.
    let refused = idp(&app, &["backup", "restore", &file]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(text(&refused.stderr).contains("--yes"));
    app.services.store.close().await;
    let restored = idp(&app, &["backup", "restore", &file, "--yes"]);
    assert!(restored.status.success(), "{}", text(&restored.stderr));

    // A new server on the restored database: mia logs in with her password again.
    let after = spawn_app_with(TestDb::new_shared(&app.db), &[]).await;
    assert!(after.services.store.find_user(mia.id).await.unwrap().is_some());
    let tokens = after.tokens(&client, "mia", "openid").await;
    assert!(tokens["id_token"].is_string());
}

on_both_backends!(backup_restore_brings_a_deleted_user_back);
