//! `idp resource ...`: registering the resource servers (RFC 8707) tokens may be asked for.

use clap::Subcommand;

use super::Failure;
use crate::domain::resource::{NewResourceServer, ResourceServer};
use crate::manage::{self, Actor};
use crate::services::Services;

#[derive(Debug, Subcommand)]
pub enum ResourceCommand {
    /// Register a resource server. Clients given it (`idp client add --resource`) may ask
    /// for tokens whose audience is it alone.
    Add {
        /// Its resource indicator: an absolute URI without fragment, e.g. https://api.example.com/.
        #[arg(long, value_name = "URI")]
        identifier: String,
        /// A scope it accepts (repeatable); its tokens carry only these. Default: every scope.
        #[arg(long = "scope", value_name = "SCOPE")]
        scopes: Vec<String>,
        /// The client it introspects tokens with: tokens for other audiences are inactive to it.
        #[arg(long, value_name = "CLIENT_ID", allow_hyphen_values = true)]
        client_id: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// List resource servers.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Remove a resource server; clients can no longer ask for it.
    Remove {
        #[arg(value_name = "URI")]
        identifier: String,
    },
}

pub(super) async fn run(cmd: ResourceCommand, services: &Services) -> Result<String, Failure> {
    match cmd {
        ResourceCommand::Add {
            identifier,
            scopes,
            client_id,
            json,
        } => {
            let new = NewResourceServer::parse(&identifier, &scopes, client_id)?;
            let resource = manage::resources::register(services, new, Actor::Cli).await?;
            if json {
                return Ok(format!("{}\n", view(&resource)));
            }
            Ok(format!("resource {} added\n", resource.identifier))
        }
        ResourceCommand::List { json } => {
            let all = services.store.list_resource_servers().await?;
            if json {
                let list: Vec<serde_json::Value> = all.iter().map(view).collect();
                return Ok(format!("{}\n", serde_json::Value::Array(list)));
            }
            Ok(all
                .iter()
                .map(|r| {
                    format!(
                        "{}\t{}\t{}\n",
                        r.identifier,
                        r.scopes.join(" "),
                        r.client_id.as_deref().unwrap_or("-")
                    )
                })
                .collect())
        }
        ResourceCommand::Remove { identifier } => {
            manage::resources::remove(services, &identifier, Actor::Cli).await?;
            Ok(format!("resource {identifier} removed\n"))
        }
    }
}

fn view(r: &ResourceServer) -> serde_json::Value {
    serde_json::json!({
        "identifier": r.identifier,
        "scopes": r.scopes,
        "client_id": r.client_id,
        "created_at": r.created_at,
    })
}
