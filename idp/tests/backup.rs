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

/// `backup_database_url`: pg_dump runs as a role that only reads (deploy/postgres's
/// `idp_backup`, in `pg_read_all_data`), and the backup is recorded through the server's own
/// connection, so the backup role needs no write privilege at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_dump_runs_as_the_read_only_backup_role() {
    let app = spawn_app_with(TestDb::new(Backend::Postgres).await, &[]).await;
    app.add_user("mia").await;
    let admin = sqlx::PgPool::connect(&app.db.url).await.unwrap();
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let (reader, stranger) = (format!("backup_{suffix}"), format!("stranger_{suffix}"));
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE ROLE {reader} LOGIN IN ROLE pg_read_all_data"
    )))
    .execute(&admin)
    .await
    .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE ROLE {stranger} LOGIN")))
        .execute(&admin)
        .await
        .unwrap();
    let as_role = |role: &str| {
        let (_, rest) = app.db.url.split_once("://").unwrap();
        let (_, host_and_db) = rest.split_once('@').unwrap();
        format!("postgres://{role}@{host_and_db}")
    };
    let backup = |backup_url: &str, database_url: &str| {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_idp"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("IDP_DATABASE_URL", database_url)
            .env("IDP_BACKUP_DATABASE_URL", backup_url)
            .env("IDP_MASTER_KEY", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
            .args(["backup", "create", dir.path().to_str().unwrap(), "--json"])
            .output()
            .unwrap();
        (out, dir)
    };

    let (out, _dir) = backup(&as_role(&reader), &app.db.url);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["users"], 2, "the admin and mia: {report}");
    assert!(scrape(&app, "idp_backup_last_success_timestamp_seconds").await > 0.0);

    // The dump really is the backup role's: a role that may not read the tables gets nothing.
    let (out, _dir) = backup(&as_role(&stranger), &app.db.url);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("permission denied"),
        "{}",
        text(&out.stderr)
    );
    // And the backup role writes nothing, not even the record of its own backup.
    let (out, _dir) = backup(&as_role(&reader), &as_role(&reader));
    assert!(!out.status.success(), "the record needs the server's role");

    for role in [reader, stranger] {
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP ROLE {role}")))
            .execute(&admin)
            .await
            .unwrap();
    }
}

/// The embedded default backs itself up: every `backup_interval_s` a verified backup lands in
/// `backup_dir`, is recorded (the metric the backup alerts watch), and only the newest
/// `backup_keep` stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_backs_itself_up_on_schedule_and_keeps_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let backups = dir.path().join("backups");
    let app = spawn_app_with(
        TestDb::new(Backend::Sqlite).await,
        &[
            ("IDP_BACKUP_INTERVAL_S", "1"),
            ("IDP_BACKUP_DIR", backups.to_str().unwrap()),
            ("IDP_BACKUP_KEEP", "2"),
        ],
    )
    .await;
    app.add_user("mia").await;
    let mut seen = std::collections::BTreeSet::new();
    let started = std::time::Instant::now();
    while seen.len() < 4 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "backups written: {seen:?}"
        );
        if let Ok(entries) = std::fs::read_dir(&backups) {
            let names: Vec<String> = entries
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .filter(|n| n.ends_with(".sqlite"))
                .collect();
            // A new backup is written and verified before the oldest is deleted (never fewer
            // than backup_keep good ones), so for a moment there is one more: seeing four
            // different ones while never more than three proves the pruning.
            assert!(
                names.len() <= 3,
                "only backup_keep (+1 being written) are kept: {names:?}"
            );
            seen.extend(names);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&backups).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the backups are the owner's alone");
    }
    assert!(scrape(&app, "idp_backup_last_success_timestamp_seconds").await > 0.0);
    let newest = std::fs::read_dir(&backups)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "sqlite"))
        .max()
        .unwrap();
    let out = idp(&app, &["backup", "verify", newest.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("ok\t"), "{}", text(&out.stdout));
}
