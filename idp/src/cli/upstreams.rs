//! `idp upstream ...`: the identity providers users may sign in with (federation).

use clap::{Args, Subcommand};

use super::{Failure, read_secret_from_stdin};
use crate::domain::upstream::{ClaimMapping, NewUpstream, Upstream};
use crate::manage::{self, Actor};
use crate::services::Services;

#[derive(Debug, Subcommand)]
pub enum UpstreamCommand {
    /// Register an OpenID provider; prints the redirect URI to register there.
    Add(Box<UpstreamAddArgs>),
    /// List upstream providers (never their secrets).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Remove an upstream provider.
    Remove { slug: String },
}

#[derive(Debug, Args)]
pub struct UpstreamAddArgs {
    /// Its name in URLs: lower-case letters, digits and dashes.
    #[arg(long = "name", value_name = "SLUG")]
    slug: String,
    /// The login page's button says "Continue with <display name>".
    #[arg(long, value_name = "TEXT")]
    display_name: String,
    /// The provider's issuer; its discovery document is found from it.
    #[arg(long, value_name = "URL")]
    issuer: String,
    /// This provider's client id there.
    #[arg(long, value_name = "ID")]
    client_id: String,
    /// Read the client secret from standard input (never from the command line).
    #[arg(long, required = true)]
    client_secret_stdin: bool,
    /// A scope to ask of it besides openid (repeatable).
    #[arg(long = "scope", value_name = "SCOPE")]
    scopes: Vec<String>,
    /// Create a local account at the first sign-in of an unknown identity.
    #[arg(long)]
    jit: bool,
    /// Take its `email_verified` as true of the local account.
    #[arg(long)]
    trust_email: bool,
    /// Only users with an email address in this domain (repeatable); default any.
    #[arg(long = "allowed-domain", value_name = "DOMAIN")]
    allowed_domains: Vec<String>,
    /// Link a verified address in this domain to the local account that has it, without
    /// asking the user to prove that account (repeatable; needs --trust-email). Only for a
    /// provider that owns the domain (the organisation's own tenant).
    #[arg(long = "auto-link-domain", value_name = "DOMAIN")]
    auto_link_domains: Vec<String>,
    /// The claim that gives the local username.
    #[arg(long, value_name = "CLAIM", default_value = "preferred_username")]
    claim_username: String,
    /// The claim that gives the email address.
    #[arg(long, value_name = "CLAIM", default_value = "email")]
    claim_email: String,
    /// The claim that gives the name.
    #[arg(long, value_name = "CLAIM", default_value = "name")]
    claim_name: String,
    #[arg(long)]
    json: bool,
}

pub(super) async fn run(cmd: UpstreamCommand, services: &Services) -> Result<String, Failure> {
    match cmd {
        UpstreamCommand::Add(args) => {
            let args = *args;
            let secret = read_secret_from_stdin("client secret")?;
            let new = NewUpstream {
                slug: args.slug,
                display_name: args.display_name,
                issuer: args.issuer,
                client_id: args.client_id,
                scopes: args.scopes,
                jit: args.jit,
                trust_email: args.trust_email,
                claims: ClaimMapping {
                    username: args.claim_username,
                    email: args.claim_email,
                    name: args.claim_name,
                },
                allowed_domains: args.allowed_domains,
                auto_link_domains: args.auto_link_domains,
                allowed_clients: vec![],
            };
            let upstream = manage::upstreams::register(services, new, &secret, Actor::Cli).await?;
            let redirect_uri = manage::upstreams::redirect_uri(services, &upstream.slug);
            if args.json {
                let mut view = view(&upstream);
                view["redirect_uri"] = redirect_uri.into();
                return Ok(format!("{view}\n"));
            }
            Ok(format!(
                "upstream {} added\nredirect URI to register at the provider: {redirect_uri}\n",
                upstream.slug
            ))
        }
        UpstreamCommand::List { json } => {
            let all = services.store.list_upstreams().await?;
            if json {
                let list: Vec<serde_json::Value> = all.iter().map(view).collect();
                return Ok(format!("{}\n", serde_json::Value::Array(list)));
            }
            Ok(all
                .iter()
                .map(|u| {
                    format!(
                        "{}\t{}\t{}\t{}\n",
                        u.slug,
                        u.display_name,
                        u.issuer,
                        if u.enabled { "enabled" } else { "disabled" }
                    )
                })
                .collect())
        }
        UpstreamCommand::Remove { slug } => {
            manage::upstreams::remove(services, &slug, Actor::Cli).await?;
            Ok(format!("upstream {slug} removed\n"))
        }
    }
}

/// What is shown of a provider: everything but its sealed secret.
fn view(u: &Upstream) -> serde_json::Value {
    serde_json::to_value(u).unwrap_or_default()
}
