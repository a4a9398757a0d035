//! `idp upstream ...`: the identity providers users may sign in with (federation).

use clap::{Args, Subcommand};

use super::{Failure, read_secret_from_stdin};
use crate::domain::Invalid;
use crate::domain::upstream::{Protocol, Upstream, UpstreamDraft};
use crate::manage::{self, Actor};
use crate::services::Services;

#[derive(Debug, Subcommand)]
pub enum UpstreamCommand {
    /// Register an OpenID provider, a plain OAuth 2.0 provider or GitHub; prints the redirect
    /// URI to register there.
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
    /// An image for its login button (PNG, SVG, WebP, JPEG or GIF, at most 12 KiB), kept as a
    /// data: URI; default: the display name's initial.
    #[arg(long, value_name = "PATH")]
    icon_file: Option<std::path::PathBuf>,
    /// `oidc`: an OpenID provider, found by discovery; `oauth2`: a plain OAuth 2.0 provider
    /// with a user API (give its endpoints); `github`: GitHub (its endpoints, claims and
    /// scopes are filled in).
    #[arg(long, value_name = "KIND", default_value = "oidc")]
    kind: String,
    /// The provider's issuer: an OpenID provider's discovery document is found from it; it
    /// names a plain OAuth 2.0 provider's identities (default for github: https://github.com).
    #[arg(long, value_name = "URL")]
    issuer: Option<String>,
    /// A plain OAuth 2.0 provider's authorization endpoint.
    #[arg(long, value_name = "URL")]
    authorization_endpoint: Option<String>,
    /// A plain OAuth 2.0 provider's token endpoint.
    #[arg(long, value_name = "URL")]
    token_endpoint: Option<String>,
    /// A plain OAuth 2.0 provider's user API (a JSON object about the user).
    #[arg(long, value_name = "URL")]
    userinfo_endpoint: Option<String>,
    /// A plain OAuth 2.0 provider's list of the user's addresses with `primary` and
    /// `verified` flags (GitHub's /user/emails).
    #[arg(long, value_name = "URL")]
    emails_endpoint: Option<String>,
    /// This provider's client id there.
    #[arg(long, value_name = "ID")]
    client_id: String,
    /// Read the client secret from standard input (never from the command line); required
    /// but with private_key_jwt.
    #[arg(long)]
    client_secret_stdin: bool,
    /// How this provider authenticates at the provider's token endpoint: client_secret_basic
    /// (default) or private_key_jwt (its own signing keys, published at <issuer>/jwks: register
    /// that as the jwks_uri there; no secret).
    #[arg(long, value_name = "METHOD")]
    token_endpoint_auth_method: Option<String>,
    /// A scope to ask of it, besides openid for an OpenID provider (repeatable).
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
    /// Only logins for this client offer it (repeatable); default every client.
    #[arg(long = "allowed-client", value_name = "CLIENT_ID")]
    allowed_clients: Vec<String>,
    /// The claim of a plain OAuth 2.0 provider's user API that is the user there: stable and
    /// never reassigned (default `id`; an OpenID provider's is always `sub`).
    #[arg(long, value_name = "CLAIM")]
    claim_subject: Option<String>,
    /// The claim that gives the local username (default `preferred_username`; github: `login`).
    #[arg(long, value_name = "CLAIM")]
    claim_username: Option<String>,
    /// The claim that gives the email address (default `email`).
    #[arg(long, value_name = "CLAIM")]
    claim_email: Option<String>,
    /// The claim that gives the name (default `name`).
    #[arg(long, value_name = "CLAIM")]
    claim_name: Option<String>,
    #[arg(long)]
    json: bool,
}

pub(super) async fn run(cmd: UpstreamCommand, services: &Services) -> Result<String, Failure> {
    match cmd {
        UpstreamCommand::Add(args) => {
            let args = *args;
            let secret = if args.client_secret_stdin {
                read_secret_from_stdin("client secret")?
            } else if args.token_endpoint_auth_method.as_deref() == Some("private_key_jwt") {
                secrecy::SecretString::from(String::new())
            } else {
                return Err(Invalid::new(
                    "give the client secret on standard input with --client-secret-stdin",
                )
                .into());
            };
            let icon = args.icon_file.as_deref().map(icon_data_uri).transpose()?;
            let new = UpstreamDraft {
                kind: Some(args.kind),
                slug: args.slug,
                display_name: args.display_name,
                icon,
                issuer: args.issuer,
                client_id: args.client_id,
                token_endpoint_auth_method: args.token_endpoint_auth_method,
                scopes: args.scopes,
                jit: args.jit,
                trust_email: args.trust_email,
                claim_subject: args.claim_subject,
                claim_username: args.claim_username,
                claim_email: args.claim_email,
                claim_name: args.claim_name,
                authorization_endpoint: args.authorization_endpoint,
                token_endpoint: args.token_endpoint,
                userinfo_endpoint: args.userinfo_endpoint,
                emails_endpoint: args.emails_endpoint,
                allowed_domains: args.allowed_domains,
                auto_link_domains: args.auto_link_domains,
                allowed_clients: args.allowed_clients,
            }
            .resolve()?;
            let upstream = manage::upstreams::register(services, new, &secret, Actor::Cli).await?;
            let redirect_uri = manage::upstreams::redirect_uri(services, &upstream.slug);
            let logout_uri = (upstream.protocol == Protocol::Oidc)
                .then(|| manage::upstreams::backchannel_logout_uri(services, &upstream.slug));
            if args.json {
                let mut view = view(&upstream);
                view["redirect_uri"] = redirect_uri.into();
                view["backchannel_logout_uri"] = logout_uri.into();
                return Ok(format!("{view}\n"));
            }
            let mut out = format!(
                "upstream {} added\nredirect URI to register at the provider: {redirect_uri}\n",
                upstream.slug
            );
            if let Some(uri) = logout_uri {
                out.push_str(&format!(
                    "back-channel logout URI (if the provider supports it): {uri}\n"
                ));
            }
            Ok(out)
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
                        "{}\t{}\t{}\t{}\t{}\n",
                        u.slug,
                        u.display_name,
                        u.protocol.kind(),
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

/// The image file as a `data:` URI, its type from its extension (checked again as any icon is).
fn icon_data_uri(path: &std::path::Path) -> Result<String, Failure> {
    use base64::Engine;
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let media_type = match extension.as_deref() {
        Some("png") => "image/png",
        Some("svg") => "image/svg+xml",
        Some("webp") => "image/webp",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        _ => {
            return Err(Invalid::new(format!(
                "{}: the icon must be a .png, .svg, .webp, .jpg or .gif file",
                path.display()
            ))
            .into());
        }
    };
    let bytes = std::fs::read(path).map_err(|e| Invalid::new(format!("{}: {e}", path.display())))?;
    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
    Ok(format!("data:{media_type};base64,{encoded}"))
}

/// What is shown of a provider: everything but its sealed secret.
fn view(u: &Upstream) -> serde_json::Value {
    serde_json::to_value(u).unwrap_or_default()
}
