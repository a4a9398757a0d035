//! The `idp` command line. Its contract (commands, flags, output) is relied on by
//! operators' scripts and by independent tests: change it only compatibly.

use std::io::Read;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use secrecy::{ExposeSecret, SecretString};

use crate::config::Settings;
use crate::domain::Invalid;
use crate::domain::client::{
    ClientType, DEFAULT_SCOPES, GrantType, NewClient, RedirectUri, parse_scope_token,
};
use crate::domain::mfa::MfaPolicy;
use crate::domain::user::UserStatus;
use crate::manage::{self, Actor, ManageError};
use crate::security::keys::Alg;
use crate::security::master_key::MasterKey;
use crate::services::{Services, StartupError};
use crate::store::backup::BackupSummary;
use crate::store::{UserCursor, UserQuery};

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
pub enum UserCommand {
    /// Create a user; prints the new user's id.
    Add {
        username: String,
        #[arg(long)]
        email: Option<String>,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
        /// Read the password from standard input (required: passwords never go on the command line).
        #[arg(long, required = true)]
        password_stdin: bool,
        /// Give the user the administrator role.
        #[arg(long)]
        admin: bool,
    },
    /// Invite a user: create them without a password and mail them a link (valid 7 days) to
    /// choose one; without SMTP, print the link for you to hand over.
    Invite {
        username: String,
        #[arg(long)]
        email: String,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
        /// Give the user the administrator role.
        #[arg(long)]
        admin: bool,
    },
    /// List users.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Disable a user: they can no longer log in.
    Disable { username: String },
    /// Enable a disabled user.
    Enable { username: String },
    /// Lift every brute-force lock of a user, from every source.
    Unlock { username: String },
    /// Give a user a temporary password (read from standard input) that they must replace at
    /// their next login; ends every session and revokes every token they hold.
    SetPassword {
        username: String,
        /// Read the password from standard input (required: passwords never go on the command line).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Print a single-use link (valid `password_reset_link_ttl_s`, 30 minutes by default) with which the user chooses a new password,
    /// for an administrator to hand over when no mail can be sent. Older reset links stop
    /// working. A user with a second factor still needs a code from it, or a recovery code
    /// (after `idp user mfa reset` when they have lost both).
    ResetLink { username: String },
    /// A user's second factors.
    Mfa {
        #[command(subcommand)]
        command: MfaCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum MfaCommand {
    /// List a user's second factors and how many recovery codes remain.
    List {
        username: String,
        #[arg(long)]
        json: bool,
    },
    /// Remove every second factor and recovery code of a user (for one who lost their
    /// device); ends every session and revokes every token they hold.
    Reset {
        username: String,
        /// Make them enrol a new factor at their next login.
        #[arg(long)]
        require_enrolment: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a client; prints its id and, for confidential clients, its secret (shown only once).
    Add(ClientAddArgs),
    /// List clients.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Change a client's own rate limits (requests per minute; 0: none; `default`: the
    /// deployment's). Other settings are changed in the portal or the admin API.
    Update {
        #[arg(allow_hyphen_values = true)]
        client_id: String,
        #[arg(long, value_name = "PER_MINUTE|default")]
        rate_limit_token: Option<String>,
        #[arg(long, value_name = "PER_MINUTE|default")]
        rate_limit_introspect: Option<String>,
        /// The client's MFA policy (it can only raise the deployment's).
        #[arg(long, value_name = "off|optional|required|default")]
        mfa: Option<String>,
        /// Whether users must have a verified email address to log in to this client.
        #[arg(long, value_name = "true|false")]
        require_verified_email: Option<bool>,
    },
    /// Remove a client with its grants and tokens.
    Remove {
        /// Generated ids may begin with `-`: taken as the id, not as a flag.
        #[arg(allow_hyphen_values = true)]
        client_id: String,
    },
}

#[derive(Debug, Args)]
pub struct ClientAddArgs {
    #[arg(long)]
    name: String,
    /// Allowed redirect URI, matched exactly (repeatable).
    #[arg(long = "redirect-uri", value_name = "URI")]
    redirect_uris: Vec<String>,
    /// Allowed post-logout redirect URI (repeatable).
    #[arg(long = "post-logout-redirect-uri", value_name = "URI")]
    post_logout_redirect_uris: Vec<String>,
    /// A public client (single-page or native app): no secret, PKCE required.
    #[arg(long)]
    public: bool,
    /// Allowed grant type (repeatable); default authorization_code and refresh_token.
    #[arg(long = "grant-type", value_name = "TYPE")]
    grant_types: Vec<String>,
    /// Allowed scope (repeatable); default openid profile email offline_access.
    #[arg(long = "scope", value_name = "SCOPE")]
    scopes: Vec<String>,
    /// A first-party client: users are not asked for consent.
    #[arg(long)]
    first_party: bool,
    /// Seconds during which a just-rotated refresh token may be presented again and get the same answer.
    #[arg(long, default_value_t = 0)]
    refresh_reuse_window: i64,
    /// Require PKCE (S256) even though the client is confidential.
    #[arg(long)]
    require_pkce: bool,
    /// Seconds a refresh token may go unused before it lapses (default: only the absolute lifetime).
    #[arg(long, value_name = "SECONDS")]
    refresh_idle_timeout: Option<i64>,
    /// Where logout tokens are POSTed when the user logs out (Back-Channel Logout).
    #[arg(long)]
    backchannel_logout_uri: Option<String>,
    /// Algorithm of this client's ID tokens: RS256 (default), ES256 or EdDSA.
    #[arg(long, default_value = "RS256")]
    id_token_signing_alg: String,
    /// Algorithm of this client's access tokens; default: the deployment's access_token_signing_alg.
    #[arg(long)]
    access_token_signing_alg: Option<String>,
    /// This client's token requests per minute (0: none); default: rate_limit_token_per_minute.
    #[arg(long, value_name = "PER_MINUTE")]
    rate_limit_token: Option<i64>,
    /// This client's introspection and revocation requests per minute (0: none); default:
    /// rate_limit_introspect_per_minute.
    #[arg(long, value_name = "PER_MINUTE")]
    rate_limit_introspect: Option<i64>,
    /// This client's MFA policy: off, optional or required; default: the deployment's `mfa`.
    /// It can only raise the deployment's.
    #[arg(long, value_name = "off|optional|required")]
    mfa: Option<String>,
    /// Users with an unverified email address must verify it before logging in here.
    #[arg(long)]
    require_verified_email: bool,
    #[arg(long)]
    json: bool,
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
        /// Only this algorithm (RS256, ES256 or EdDSA); default all three.
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
            user(cmd, &Services::build(settings, migrate).await?).await
        }
        Command::Client(cmd) => {
            let migrate = settings.migrate_on_start;
            client(cmd, &Services::build(settings, migrate).await?).await
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

async fn user(cmd: UserCommand, services: &Services) -> Result<String, Failure> {
    match cmd {
        UserCommand::Add {
            username,
            email,
            name,
            password_stdin: _,
            admin,
        } => {
            let password = read_password_from_stdin()?;
            let request = manage::users::AddUser {
                username,
                email,
                name,
                password,
                admin,
            };
            let user = manage::users::add_user(services, request, Actor::Cli).await?;
            Ok(format!("{}\n", user.id))
        }
        UserCommand::Invite {
            username,
            email,
            name,
            admin,
        } => {
            let request = manage::users::Invite {
                username,
                email,
                name,
                admin,
            };
            let (user, link) = manage::users::invite(services, request, Actor::Cli).await?;
            Ok(match link {
                Some(link) => format!("{link}\n"),
                None => format!(
                    "invitation mailed to {}\n",
                    user.email.map(|e| e.as_str().to_string()).unwrap_or_default()
                ),
            })
        }
        UserCommand::List { json } => {
            let mut all = Vec::new();
            let mut query = UserQuery {
                limit: 1000,
                ..UserQuery::default()
            };
            loop {
                let page = services.store.list_users(&query).await?;
                let done = page.len() < 1000;
                query.after = page.last().map(UserCursor::of);
                all.extend(page);
                if done {
                    break;
                }
            }
            if json {
                return serde_json::to_string(&all)
                    .map(|s| s + "\n")
                    .map_err(|e| Failure {
                        message: e.to_string(),
                        code: 1,
                    });
            }
            Ok(all
                .iter()
                .map(|u| {
                    format!(
                        "{}\t{}\t{}\t{}\t{}\n",
                        u.id,
                        u.username.as_str(),
                        u.email.as_ref().map_or("-", |e| e.as_str()),
                        u.status.as_str(),
                        if u.roles.is_empty() {
                            "-".to_string()
                        } else {
                            u.roles.join(",")
                        }
                    )
                })
                .collect())
        }
        UserCommand::Disable { username } => {
            manage::users::set_status(services, &username, UserStatus::Disabled, Actor::Cli).await?;
            Ok(format!("user {username} disabled\n"))
        }
        UserCommand::ResetLink { username } => {
            let link = manage::recovery::reset_link_for(services, &username, &Actor::Cli).await?;
            Ok(format!("{link}\n"))
        }
        UserCommand::Unlock { username } => {
            let lifted = manage::users::unlock(services, &username, Actor::Cli).await?;
            Ok(format!("user {username} unlocked ({lifted} source(s) cleared)\n"))
        }
        UserCommand::SetPassword {
            username,
            password_stdin: _,
        } => {
            let password = read_password_from_stdin()?;
            manage::users::set_temporary_password_of(services, &username, &password, Actor::Cli).await?;
            Ok(format!(
                "temporary password set for {username}; their sessions and tokens are revoked\n"
            ))
        }
        UserCommand::Enable { username } => {
            manage::users::set_status(services, &username, UserStatus::Active, Actor::Cli).await?;
            Ok(format!("user {username} enabled\n"))
        }
        UserCommand::Mfa {
            command: MfaCommand::List { username, json },
        } => {
            let summary = manage::mfa::summary_by_username(services, &username).await?;
            let factors: Vec<serde_json::Value> = summary
                .factors
                .iter()
                .map(|f| {
                    serde_json::json!({
                        "id": f.id, "kind": f.kind.as_str(), "name": f.name,
                        "created_at": f.created_at, "last_used_at": f.last_used_at,
                    })
                })
                .collect();
            if json {
                let out = serde_json::json!({
                    "username": summary.user.username.as_str(),
                    "factors": factors,
                    "recovery_codes_left": summary.recovery_codes_left,
                    "enrolment_required": summary.user.mfa_enrolment_required,
                });
                return Ok(format!("{out}\n"));
            }
            let mut out = String::new();
            for f in &summary.factors {
                let last = f.last_used_at.map_or("never".to_string(), |t| t.to_rfc3339());
                out.push_str(&format!(
                    "{}\t{}\t{}\tcreated {}\tlast used {last}\n",
                    f.id,
                    f.kind.as_str(),
                    f.name,
                    f.created_at.to_rfc3339()
                ));
            }
            out.push_str(&format!(
                "{username}: {} factor(s), {} recovery code(s) left{}\n",
                summary.factors.len(),
                summary.recovery_codes_left,
                if summary.user.mfa_enrolment_required {
                    ", must enrol at next login"
                } else {
                    ""
                }
            ));
            Ok(out)
        }
        UserCommand::Mfa {
            command:
                MfaCommand::Reset {
                    username,
                    require_enrolment,
                },
        } => {
            let (_, ended) =
                manage::mfa::reset_by_username(services, &username, require_enrolment, Actor::Cli).await?;
            Ok(format!(
                "second factors of {username} removed; {} session(s) ended, {} grant(s) revoked{}\n",
                ended.sessions,
                ended.grants,
                if require_enrolment {
                    "; they must enrol at their next login"
                } else {
                    ""
                }
            ))
        }
    }
}

async fn client(cmd: ClientCommand, services: &Services) -> Result<String, Failure> {
    match cmd {
        ClientCommand::Add(args) => {
            let json = args.json;
            let new = new_client(args)?;
            let registered = manage::clients::register(services, new, Actor::Cli).await?;
            let id = &registered.client.id;
            Ok(match (json, &registered.secret) {
                (true, Some(secret)) => {
                    format!(
                        "{}\n",
                        serde_json::json!({ "client_id": id, "client_secret": secret.expose_secret() })
                    )
                }
                (true, None) => format!("{}\n", serde_json::json!({ "client_id": id })),
                (false, Some(secret)) => format!(
                    "client_id: {id}\nclient_secret: {}\n(the secret is shown only this once)\n",
                    secret.expose_secret()
                ),
                (false, None) => format!("client_id: {id}\n"),
            })
        }
        ClientCommand::List { json } => {
            let clients = services.store.list_clients().await?;
            if json {
                return serde_json::to_string(&clients)
                    .map(|s| s + "\n")
                    .map_err(|e| Failure {
                        message: e.to_string(),
                        code: 1,
                    });
            }
            Ok(clients
                .iter()
                .map(|c| {
                    let uris: Vec<&str> = c.redirect_uris.iter().map(RedirectUri::as_str).collect();
                    format!(
                        "{}\t{}\t{}\t{}\n",
                        c.id,
                        c.name,
                        c.client_type.as_str(),
                        uris.join(" ")
                    )
                })
                .collect())
        }
        ClientCommand::Update {
            client_id,
            rate_limit_token,
            rate_limit_introspect,
            mfa,
            require_verified_email,
        } => {
            let mut settings = manage::clients::get(services, &client_id).await?.settings();
            if let Some(value) = rate_limit_token {
                settings.rate_limit_token_per_minute = per_minute_or_default(&value)?;
            }
            if let Some(value) = rate_limit_introspect {
                settings.rate_limit_introspect_per_minute = per_minute_or_default(&value)?;
            }
            if let Some(value) = mfa {
                settings.mfa = match value.as_str() {
                    "default" => None,
                    other => Some(MfaPolicy::parse(other)?),
                };
            }
            if let Some(value) = require_verified_email {
                settings.require_verified_email = value;
            }
            let client = manage::clients::update(services, &client_id, settings, Actor::Cli).await?;
            let show = |limit: Option<i64>| limit.map_or("default".to_string(), |l| l.to_string());
            Ok(format!(
                "client {client_id} updated: token rate limit {}, introspection rate limit {}, mfa {}, \
                 verified email required {}\n",
                show(client.rate_limit_token_per_minute),
                show(client.rate_limit_introspect_per_minute),
                client.mfa.map_or("default", |m| m.as_str()),
                client.require_verified_email
            ))
        }
        ClientCommand::Remove { client_id } => {
            manage::clients::remove(services, &client_id, Actor::Cli).await?;
            Ok(format!("client {client_id} removed\n"))
        }
    }
}

/// A per-minute limit as typed: a number, or `default` for the deployment's.
fn per_minute_or_default(value: &str) -> Result<Option<i64>, Invalid> {
    if value == "default" {
        return Ok(None);
    }
    value.parse::<i64>().map(Some).map_err(|_| {
        Invalid::new(format!(
            "{value:?} is not a number of requests per minute or `default`"
        ))
    })
}

fn new_client(args: ClientAddArgs) -> Result<NewClient, Invalid> {
    let client_type = if args.public {
        ClientType::Public
    } else {
        ClientType::Confidential
    };
    let parse_uris = |uris: &[String]| -> Result<Vec<RedirectUri>, Invalid> {
        uris.iter().map(|u| RedirectUri::parse(u, client_type)).collect()
    };
    let mut grant_types = args
        .grant_types
        .iter()
        .map(|g| GrantType::parse(g))
        .collect::<Result<Vec<_>, _>>()?;
    if grant_types.is_empty() {
        grant_types = vec![GrantType::AuthorizationCode, GrantType::RefreshToken];
    }
    grant_types.dedup();
    let mut scopes = args
        .scopes
        .iter()
        .map(|s| parse_scope_token(s))
        .collect::<Result<Vec<_>, _>>()?;
    if scopes.is_empty() {
        scopes = DEFAULT_SCOPES.iter().map(|s| s.to_string()).collect();
    }
    Ok(NewClient {
        name: args.name,
        client_type,
        redirect_uris: parse_uris(&args.redirect_uris)?,
        post_logout_redirect_uris: parse_uris(&args.post_logout_redirect_uris)?,
        grant_types,
        scopes,
        first_party: args.first_party,
        refresh_reuse_window_s: args.refresh_reuse_window,
        id_token_signed_response_alg: args.id_token_signing_alg,
        access_token_signing_alg: args.access_token_signing_alg,
        backchannel_logout_uri: args.backchannel_logout_uri,
        require_pkce: args.require_pkce,
        refresh_idle_ttl_s: args.refresh_idle_timeout,
        token_endpoint_auth_method: None,
        access_token_ttl_s: None,
        refresh_token_ttl_s: None,
        rate_limit_token_per_minute: args.rate_limit_token,
        rate_limit_introspect_per_minute: args.rate_limit_introspect,
        mfa: args.mfa.as_deref().map(MfaPolicy::parse).transpose()?,
        require_verified_email: args.require_verified_email,
    })
}

/// The whole of standard input, less one trailing line break.
fn read_password_from_stdin() -> Result<SecretString, Failure> {
    let mut text = String::new();
    std::io::stdin()
        .take(4096)
        .read_to_string(&mut text)
        .map_err(|e| Failure::usage(format!("cannot read the password from standard input: {e}")))?;
    let password = text
        .strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(&text);
    if password.is_empty() {
        return Err(Failure::usage("no password on standard input"));
    }
    Ok(SecretString::from(password.to_string()))
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
