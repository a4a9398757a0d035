//! The `idp` command line. Its contract (commands, flags, output) is relied on by
//! operators' scripts and by independent tests: change it only compatibly.

use std::io::Read;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use secrecy::{ExposeSecret, SecretString};

use crate::config::Settings;
use crate::domain::Invalid;
use crate::manage::{self, Actor, ManageError};
use crate::security::keys::Alg;
use crate::security::master_key::MasterKey;
use crate::services::{Services, StartupError};
use crate::store::backup::BackupSummary;

mod clients;
mod resources;
mod upstreams;
mod users;

pub use clients::{ClientAddArgs, ClientCommand};
pub use resources::ResourceCommand;
pub use upstreams::UpstreamCommand;
pub use users::{MfaCommand, UserCommand};

#[derive(Debug, Parser)]
#[command(
    name = "idp",
    version,
    about = "AImpact identity provider: OAuth 2.0 and OpenID Connect"
)]
pub struct Cli {
    /// TOML configuration file (also IDP_CONFIG).
    #[arg(long, global = true, env = "IDP_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Migrate the database if needed, then serve HTTP until SIGTERM or SIGINT.
    Serve,
    /// Apply pending database migrations (running it twice is a no-op).
    Migrate,
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage relying-party clients.
    #[command(subcommand)]
    Client(ClientCommand),
    /// Manage resource servers (RFC 8707): the APIs clients ask tokens for.
    #[command(subcommand)]
    Resource(ResourceCommand),
    /// Manage upstream identity providers users may sign in with (federation).
    #[command(subcommand)]
    Upstream(UpstreamCommand),
    /// Signing and master keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Maintenance tasks.
    #[command(subcommand)]
    Maintenance(MaintenanceCommand),
    /// Database backups: create (online), verify, restore (offline).
    #[command(subcommand)]
    Backup(BackupCommand),
}

#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Write a consistent backup of the live database, verify it and record it.
    Create {
        /// A file to create, or a directory to put a time-stamped file in.
        target: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Check that a backup file is complete and readable, and show what it holds.
    Verify { file: PathBuf },
    /// Replace the configured database with a backup. Stop every server first.
    Restore {
        file: PathBuf,
        /// Confirms that the current database is to be replaced.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum MaintenanceCommand {
    /// Delete expired codes, tokens, grants and sessions now (the server also does it periodically).
    Cleanup,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Print a new random master key (base64) for the `master_key` setting.
    GenerateMaster,
    /// List published signing keys.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Stage new signing keys: published now, signing after key_activation_delay_s.
    Rotate {
        /// Only this algorithm (RS256, PS256, ES256 or EdDSA); default all four.
        #[arg(long)]
        alg: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the configuration reference (docs/configuration.md).
    Docs,
    /// Load and validate the configuration, then exit.
    Check,
}

/// A command's failure: the one line to print, and the exit code.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub code: u8,
}

impl Failure {
    fn usage(message: impl std::fmt::Display) -> Self {
        Self {
            message: message.to_string(),
            code: 2,
        }
    }
}

impl From<ManageError> for Failure {
    fn from(e: ManageError) -> Self {
        let code = match e {
            ManageError::Store(crate::store::StoreError::Unavailable(_)) => 2,
            _ => 1,
        };
        Self {
            message: e.to_string(),
            code,
        }
    }
}

impl From<StartupError> for Failure {
    fn from(e: StartupError) -> Self {
        let code = if matches!(e, StartupError::Config { .. }) {
            2
        } else {
            1
        };
        Self {
            message: e.to_string(),
            code,
        }
    }
}

impl From<Invalid> for Failure {
    fn from(e: Invalid) -> Self {
        Self {
            message: e.to_string(),
            code: 2,
        }
    }
}

impl From<crate::store::StoreError> for Failure {
    fn from(e: crate::store::StoreError) -> Self {
        ManageError::from(e).into()
    }
}

/// Runs a command other than `serve`; returns what to print on standard output.
pub async fn run(command: Command, settings: Settings) -> Result<String, Failure> {
    match command {
        Command::Serve => Err(Failure::usage("serve is run by main")),
        Command::Config(ConfigCommand::Docs) => Ok(crate::config::reference_markdown()),
        Command::Config(ConfigCommand::Check) => Ok("configuration is valid\n".into()),
        Command::Keys(KeysCommand::GenerateMaster) => {
            let key = MasterKey::generate().map_err(|e| Failure {
                message: e.to_string(),
                code: 1,
            })?;
            Ok(format!("{}\n", key.encode().expose_secret()))
        }
        Command::Maintenance(MaintenanceCommand::Cleanup) => {
            let migrate = settings.migrate_on_start;
            let services = Services::build(settings, migrate).await?;
            let counts = manage::housekeeping::cleanup(&services).await?;
            Ok(counts
                .iter()
                .map(|(kind, n)| format!("{kind}\t{n} deleted\n"))
                .collect())
        }
        Command::Backup(cmd) => backup(cmd, settings).await,
        Command::Migrate => {
            Services::build(settings, true).await?;
            Ok("migrations applied\n".into())
        }
        Command::User(cmd) => {
            let migrate = settings.migrate_on_start;
            users::run(cmd, &Services::build(settings, migrate).await?).await
        }
        Command::Client(cmd) => {
            let migrate = settings.migrate_on_start;
            clients::run(cmd, &Services::build(settings, migrate).await?).await
        }
        Command::Resource(cmd) => {
            let migrate = settings.migrate_on_start;
            resources::run(cmd, &Services::build(settings, migrate).await?).await
        }
        Command::Upstream(cmd) => {
            let migrate = settings.migrate_on_start;
            upstreams::run(cmd, &Services::build(settings, migrate).await?).await
        }
        Command::Keys(KeysCommand::Rotate { alg }) => {
            let algs = match alg {
                Some(name) => vec![Alg::parse(&name).map_err(Failure::usage)?],
                None => Alg::ALL.to_vec(),
            };
            let migrate = settings.migrate_on_start;
            let services = Services::build(settings, migrate).await?;
            let staged = manage::keys::rotate(&services, &algs, Actor::Cli).await?;
            Ok(staged
                .iter()
                .map(|(kid, alg, at)| format!("{kid}\t{}\tsigns from {}\n", alg.as_str(), at.to_rfc3339()))
                .collect())
        }
        Command::Keys(KeysCommand::List { json }) => {
            let migrate = settings.migrate_on_start;
            let services = Services::build(settings, migrate).await?;
            let keys = services.store.published_signing_keys().await?;
            if json {
                let list: Vec<_> = keys
                    .iter()
                    .map(|k| serde_json::json!({ "kid": k.kid, "alg": k.alg, "created_at": k.created_at, "activates_at": k.activates_at, "retired_at": k.retired_at }))
                    .collect();
                return Ok(format!("{}\n", serde_json::Value::Array(list)));
            }
            Ok(keys
                .iter()
                .map(|k| {
                    format!(
                        "{}\t{}\tactivates {}\n",
                        k.kid,
                        k.alg,
                        k.activates_at.to_rfc3339()
                    )
                })
                .collect())
        }
    }
}

/// The whole of standard input, less one trailing line break: a secret (`what`) that must
/// not appear in the process list or the shell history.
fn read_secret_from_stdin(what: &str) -> Result<SecretString, Failure> {
    let mut text = String::new();
    std::io::stdin()
        .take(4096)
        .read_to_string(&mut text)
        .map_err(|e| Failure::usage(format!("cannot read the {what} from standard input: {e}")))?;
    let secret = text
        .strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(&text);
    if secret.is_empty() {
        return Err(Failure::usage(format!("no {what} on standard input")));
    }
    Ok(SecretString::from(secret.to_string()))
}

async fn backup(cmd: BackupCommand, settings: Settings) -> Result<String, Failure> {
    let summary = |s: &BackupSummary| format!("schema version {}, {} users", s.schema_version, s.users);
    match cmd {
        BackupCommand::Create { target, json } => {
            let migrate = settings.migrate_on_start;
            let services = Services::build(settings, migrate).await?;
            let (record, checked) = manage::backup::create(&services, &target).await?;
            if json {
                return Ok(format!(
                    "{}\n",
                    serde_json::json!({ "location": record.location, "bytes": record.bytes, "sha256": record.sha256, "backend": record.backend, "finished_at": record.finished_at, "schema_version": checked.schema_version, "users": checked.users })
                ));
            }
            Ok(format!(
                "{}\t{} bytes\tsha256 {}\t{}\n",
                record.location,
                record.bytes,
                record.sha256,
                summary(&checked)
            ))
        }
        BackupCommand::Verify { file } => {
            let checked = crate::store::backup::verify(&file).await.map_err(|e| Failure {
                message: format!("{} is not a usable backup: {e}", file.display()),
                code: 1,
            })?;
            let (bytes, sha256) = manage::backup::digest(&file)?;
            Ok(format!(
                "ok\t{bytes} bytes\tsha256 {sha256}\t{}\n",
                summary(&checked)
            ))
        }
        BackupCommand::Restore { file, yes } => {
            if !yes {
                return Err(Failure::usage(
                    "restore replaces the whole database: stop every server, then run again with --yes",
                ));
            }
            crate::store::backup::restore(&settings.database_url(), &file).await?;
            Ok(format!("restored {}\n", file.display()))
        }
    }
}
