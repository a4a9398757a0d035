//! `idp client ...`: registering and managing relying parties.

use clap::{Args, Subcommand};
use secrecy::ExposeSecret;

use super::Failure;
use crate::domain::Invalid;
use crate::domain::client::{
    ClientType, DEFAULT_SCOPES, GrantType, NewClient, Profile, RedirectUri, TokenEndpointAuthMethod,
    parse_public_jwks, parse_scope_token,
};
use crate::domain::mfa::MfaPolicy;
use crate::manage::{self, Actor};
use crate::services::Services;

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a client; prints its id and, for confidential clients, its secret (shown only once).
    Add(Box<ClientAddArgs>),
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
    /// Algorithm of this client's ID tokens: RS256 (default), PS256, ES256 or EdDSA.
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
    /// How the client authenticates at the token endpoint: client_secret_basic (default of
    /// confidential clients), client_secret_post, client_secret_jwt, private_key_jwt, or none
    /// (public clients). Only the secret methods are given a secret.
    #[arg(long, value_name = "METHOD")]
    token_endpoint_auth_method: Option<String>,
    /// A JWKS JSON document of the client's public keys (private_key_jwt, request objects).
    #[arg(long, value_name = "FILE")]
    jwks: Option<std::path::PathBuf>,
    /// Where the client publishes its public keys instead (https; http only on loopback).
    #[arg(long, value_name = "URI")]
    jwks_uri: Option<String>,
    /// Accept only authorization requests pushed to /par first (RFC 9126).
    #[arg(long)]
    require_par: bool,
    /// Issue only DPoP-bound access tokens (RFC 9449): token requests need a DPoP proof.
    #[arg(long)]
    dpop_bound_access_tokens: bool,
    /// Hold the client to a security profile: fapi2 (FAPI 2.0 Security Profile). It turns on
    /// --require-par, --require-pkce and --dpop-bound-access-tokens, makes private_key_jwt and
    /// ES256 ID tokens the defaults, and refuses settings that contradict it.
    #[arg(long, value_name = "fapi2")]
    profile: Option<String>,
    /// A resource server (RFC 8707) the client may ask tokens for, registered first with
    /// `idp resource add` (repeatable).
    #[arg(long = "resource", value_name = "URI")]
    resources: Vec<String>,
    #[arg(long)]
    json: bool,
}

pub(super) async fn run(cmd: ClientCommand, services: &Services) -> Result<String, Failure> {
    match cmd {
        ClientCommand::Add(args) => {
            let json = args.json;
            let new = new_client(*args)?;
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

fn read_jwks(path: &std::path::Path) -> Result<jsonwebtoken::jwk::JwkSet, Invalid> {
    let raw = std::fs::read(path)
        .map_err(|e| Invalid::new(format!("cannot read the JWKS file {}: {e}", path.display())))?;
    parse_public_jwks(&raw).map_err(|e| Invalid::new(format!("{}: {}", path.display(), e.0)))
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
        token_endpoint_auth_method: args
            .token_endpoint_auth_method
            .as_deref()
            .map(|raw| {
                TokenEndpointAuthMethod::parse(raw).ok_or_else(|| {
                    Invalid::new(format!(
                        "unknown token endpoint auth method {raw:?}; expected client_secret_basic, \
                         client_secret_post, client_secret_jwt, private_key_jwt or none"
                    ))
                })
            })
            .transpose()?,
        jwks: args.jwks.as_deref().map(read_jwks).transpose()?,
        jwks_uri: args.jwks_uri,
        require_par: args.require_par,
        dpop_bound_access_tokens: args.dpop_bound_access_tokens,
        profile: args.profile.as_deref().map(Profile::parse).transpose()?,
        resources: args.resources,
        access_token_ttl_s: None,
        refresh_token_ttl_s: None,
        rate_limit_token_per_minute: args.rate_limit_token,
        rate_limit_introspect_per_minute: args.rate_limit_introspect,
        mfa: args.mfa.as_deref().map(MfaPolicy::parse).transpose()?,
        require_verified_email: args.require_verified_email,
    })
}
