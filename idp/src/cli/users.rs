//! `idp user ...`: users, their passwords and second factors.

use clap::Subcommand;

use super::{Failure, read_secret_from_stdin};
use crate::domain::user::UserStatus;
use crate::manage::{self, Actor};
use crate::services::Services;
use crate::store::{UserCursor, UserQuery};

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

pub(super) async fn run(cmd: UserCommand, services: &Services) -> Result<String, Failure> {
    match cmd {
        UserCommand::Add {
            username,
            email,
            name,
            password_stdin: _,
            admin,
        } => {
            let password = read_secret_from_stdin("password")?;
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
            let password = read_secret_from_stdin("password")?;
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
