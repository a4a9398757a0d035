//! Backups of the whole database: a consistent snapshot written while the server runs
//! (SQLite `VACUUM INTO`; PostgreSQL `pg_dump --format=custom`), checked and restored
//! offline. Completed backups are recorded in the database so every replica can report the
//! age of the newest one.

use std::path::Path;
use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::ConnectOptions as _;
use sqlx::sqlite::SqliteConnectOptions;

use super::{StoreError, StoreResult};

/// A completed backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupRecord {
    pub finished_at: DateTime<Utc>,
    pub backend: String,
    pub location: String,
    pub bytes: i64,
    pub sha256: String,
}

#[async_trait]
pub trait BackupStore: Send + Sync {
    /// `sqlite` or `postgres`: names the format of [`write_backup`](Self::write_backup).
    fn backend(&self) -> &'static str;
    /// Writes a consistent snapshot of the whole database to `path` (which must not exist).
    async fn write_backup(&self, path: &Path) -> StoreResult<()>;
    async fn record_backup(&self, backup: &BackupRecord) -> StoreResult<()>;
    async fn last_backup(&self) -> StoreResult<Option<BackupRecord>>;
}

/// The two formats, told apart by their first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackupFormat {
    Sqlite,
    PgDump,
}

impl BackupFormat {
    pub fn of_file(path: &Path) -> StoreResult<Self> {
        use std::io::Read;
        let mut head = [0u8; 16];
        let mut file = std::fs::File::open(path).map_err(|e| io("cannot open the backup", path, &e))?;
        let n = file
            .read(&mut head)
            .map_err(|e| io("cannot read the backup", path, &e))?;
        match &head[..n] {
            h if h.starts_with(b"SQLite format 3\0") => Ok(Self::Sqlite),
            h if h.starts_with(b"PGDMP") => Ok(Self::PgDump),
            _ => Err(StoreError::Other(format!(
                "{} is neither a SQLite database nor a pg_dump archive",
                path.display()
            ))),
        }
    }
}

/// What a backup file holds, as far as can be checked without restoring it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupSummary {
    pub format: BackupFormat,
    /// The newest migration it contains.
    pub schema_version: i64,
    pub users: i64,
}

/// Checks a backup file: complete and readable (SQLite `integrity_check`; pg_restore reads
/// the archive), a database of this product, and what it holds.
pub async fn verify(path: &Path) -> StoreResult<BackupSummary> {
    match BackupFormat::of_file(path)? {
        BackupFormat::Sqlite => {
            let mut conn = SqliteConnectOptions::new()
                .filename(path)
                .read_only(true)
                .connect()
                .await
                .map_err(super::map_sqlx)?;
            let check: String = sqlx::query_scalar("PRAGMA integrity_check")
                .fetch_one(&mut conn)
                .await
                .map_err(super::map_sqlx)?;
            if check != "ok" {
                return Err(StoreError::Corrupt(format!("integrity check: {check}")));
            }
            let schema_version: i64 = sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations")
                .fetch_one(&mut conn)
                .await
                .map_err(super::map_sqlx)?;
            let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
                .fetch_one(&mut conn)
                .await
                .map_err(super::map_sqlx)?;
            Ok(BackupSummary {
                format: BackupFormat::Sqlite,
                schema_version,
                users,
            })
        }
        BackupFormat::PgDump => {
            // Reading the table of contents and two tables' data walks the archive.
            let listing = run("pg_restore", &["--list".as_ref(), path.as_os_str()], None).await?;
            let has_table = |name: &str| {
                listing
                    .lines()
                    .any(|l| l.contains(&format!("TABLE public {name} ")))
            };
            if !(has_table("users") && has_table("_sqlx_migrations")) {
                return Err(StoreError::Corrupt("the archive holds no IdP database".into()));
            }
            let rows = |table: &'static str| async move {
                let sql = run(
                    "pg_restore",
                    &[
                        "--data-only".as_ref(),
                        "--file=-".as_ref(),
                        format!("--table={table}").as_ref(),
                        path.as_os_str(),
                    ],
                    None,
                )
                .await?;
                Ok::<_, StoreError>(copy_rows(&sql))
            };
            let migrations = rows("_sqlx_migrations").await?;
            let schema_version = migrations
                .iter()
                .filter_map(|row| row.split('\t').next()?.parse::<i64>().ok())
                .max()
                .unwrap_or_default();
            let users = i64::try_from(rows("users").await?.len()).unwrap_or(i64::MAX);
            Ok(BackupSummary {
                format: BackupFormat::PgDump,
                schema_version,
                users,
            })
        }
    }
}

/// The data lines of the `COPY … FROM stdin;` blocks in plain pg_restore output.
fn copy_rows(sql: &str) -> Vec<String> {
    let mut rows = Vec::new();
    let mut inside = false;
    for line in sql.lines() {
        if inside {
            if line == "\\." {
                inside = false;
            } else {
                rows.push(line.to_string());
            }
        } else if line.starts_with("COPY ") && line.ends_with("FROM stdin;") {
            inside = true;
        }
    }
    rows
}

/// Replaces the database `url` names with the backup at `path`. Run with the server stopped:
/// SQLite's file is replaced; PostgreSQL's objects are dropped and restored in one
/// transaction (`pg_restore --clean --single-transaction`), so a failure changes nothing.
pub async fn restore(url: &str, path: &Path) -> StoreResult<()> {
    let format = BackupFormat::of_file(path)?;
    if url.starts_with("sqlite:") {
        if format != BackupFormat::Sqlite {
            return Err(StoreError::Other(
                "a pg_dump archive cannot be restored into SQLite".into(),
            ));
        }
        verify(path).await?;
        let options = SqliteConnectOptions::from_str(url).map_err(super::map_sqlx)?;
        let target = options.get_filename().to_path_buf();
        let staged = target.with_extension("restoring");
        std::fs::copy(path, &staged).map_err(|e| io("cannot copy the backup", &staged, &e))?;
        for suffix in ["-wal", "-shm"] {
            let mut side = target.clone().into_os_string();
            side.push(suffix);
            match std::fs::remove_file(&side) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(io("cannot remove", Path::new(&side), &e));
                }
                _ => {}
            }
        }
        std::fs::rename(&staged, &target).map_err(|e| io("cannot replace the database", &target, &e))
    } else {
        if format != BackupFormat::PgDump {
            return Err(StoreError::Other(
                "a SQLite backup cannot be restored into PostgreSQL".into(),
            ));
        }
        let args = [
            "--clean",
            "--if-exists",
            "--no-owner",
            "--no-privileges",
            "--single-transaction",
            "--exit-on-error",
        ];
        let mut all: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
        all.push(path.as_os_str());
        run("pg_restore", &all, Some(url)).await.map(|_| ())
    }
}

/// Runs a PostgreSQL client tool against `url` (passed as `--dbname`, its password through
/// `PGPASSWORD` so it never shows in the process list); returns its standard output.
pub(crate) async fn run(tool: &str, args: &[&std::ffi::OsStr], url: Option<&str>) -> StoreResult<String> {
    let mut command = tokio::process::Command::new(tool);
    command.args(args).kill_on_drop(true);
    if let Some(url) = url {
        let mut parsed = url::Url::parse(url).map_err(|e| StoreError::Other(format!("database URL: {e}")))?;
        if let Some(password) = parsed.password() {
            let password = percent_decode(password);
            command.env("PGPASSWORD", password);
            let _ = parsed.set_password(None);
        }
        command.arg("--dbname").arg(parsed.as_str());
    }
    let out = command.output().await.map_err(|e| {
        StoreError::Other(format!(
            "{tool} could not be run (is the PostgreSQL client installed?): {e}"
        ))
    })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(StoreError::Other(format!("{tool} failed: {}", stderr.trim())));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("p={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

fn io(what: &str, path: &Path, e: &std::io::Error) -> StoreError {
    StoreError::Other(format!("{what} {}: {e}", path.display()))
}
