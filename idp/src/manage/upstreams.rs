//! Registering and removing upstream identity providers (federation).

use secrecy::{ExposeSecret, SecretBox, SecretString};

use super::{Actor, ManageError, record};
use crate::audit::EventType;
use crate::domain::Invalid;
use crate::domain::upstream::{ClaimMapping, NewUpstream, OAuth2Endpoints, Protocol, TokenAuth, Upstream};
use crate::services::Services;

/// The path of an upstream's callback here; its URL is what to register at the upstream.
pub fn redirect_uri(services: &Services, slug: &str) -> String {
    format!("{}/upstream/{slug}/callback", services.settings.issuer_str())
}

/// Where an upstream OpenID provider sends its logout tokens (OpenID Connect Back-Channel
/// Logout 1.0): the `backchannel_logout_uri` to register there, if it supports it.
pub fn backchannel_logout_uri(services: &Services, slug: &str) -> String {
    format!(
        "{}/upstream/{slug}/backchannel-logout",
        services.settings.issuer_str()
    )
}

pub async fn register(
    services: &Services,
    new: NewUpstream,
    client_secret: &SecretString,
    actor: Actor,
) -> Result<Upstream, ManageError> {
    let new = new.validated()?;
    if client_secret.expose_secret().is_empty() && new.token_auth == TokenAuth::ClientSecretBasic {
        return Err(Invalid::new("the client secret is empty").into());
    }
    // The slug is the associated data: a sealed secret copied to another provider's row
    // does not open there.
    let plaintext = SecretBox::new(Box::new(client_secret.expose_secret().as_bytes().to_vec()));
    let sealed = services
        .upstream_secret_key
        .encrypt(&new.slug, &plaintext)
        .map_err(|e| ManageError::Internal(e.to_string()))?;
    let now = services.clock.now();
    let upstream = Upstream {
        slug: new.slug,
        display_name: new.display_name,
        icon: new.icon,
        issuer: new.issuer,
        protocol: new.protocol,
        client_id: new.client_id,
        token_auth: new.token_auth,
        client_secret_sealed: sealed,
        scopes: new.scopes,
        jit: new.jit,
        trust_email: new.trust_email,
        claims: new.claims,
        allowed_domains: new.allowed_domains,
        auto_link_domains: new.auto_link_domains,
        allowed_clients: new.allowed_clients,
        enabled: true,
        created_at: now,
        updated_at: now,
    };
    services.store.create_upstream(&upstream).await?;
    let mut event = actor.event(EventType::UpstreamCreated, now);
    event.details = serde_json::json!({
        "slug": upstream.slug, "issuer": upstream.issuer, "kind": upstream.protocol.kind(), "jit": upstream.jit, "trust_email": upstream.trust_email,
        "auto_link_domains": upstream.auto_link_domains,
    });
    record(services, event).await;
    Ok(upstream)
}

pub async fn remove(services: &Services, slug: &str, actor: Actor) -> Result<(), ManageError> {
    if !services.store.delete_upstream(slug).await? {
        return Err(ManageError::NotFound(format!("upstream provider {slug:?}")));
    }
    let mut event = actor.event(EventType::UpstreamDeleted, services.clock.now());
    event.details = serde_json::json!({ "slug": slug });
    record(services, event).await;
    Ok(())
}

/// The client secret to present at the upstream.
pub fn client_secret(services: &Services, upstream: &Upstream) -> Result<SecretString, ManageError> {
    let opened = services
        .upstream_secret_key
        .decrypt(&upstream.slug, &upstream.client_secret_sealed)
        .map_err(|e| ManageError::Internal(e.to_string()))?;
    let text = String::from_utf8(opened.expose_secret().clone())
        .map_err(|_| ManageError::Internal("the upstream's sealed secret is not text".into()))?;
    Ok(SecretString::from(text))
}

/// What an administrator changes of a provider; `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct UpstreamChange {
    pub display_name: Option<String>,
    /// `Some(None)` removes the icon.
    pub icon: Option<Option<String>>,
    pub client_id: Option<String>,
    pub client_secret: Option<SecretString>,
    pub token_auth: Option<TokenAuth>,
    /// A plain OAuth 2.0 provider's endpoints (an OpenID provider's come from its discovery
    /// document).
    pub endpoints: EndpointsChange,
    pub scopes: Option<Vec<String>>,
    pub jit: Option<bool>,
    pub trust_email: Option<bool>,
    pub claims: ClaimsChange,
    pub allowed_domains: Option<Vec<String>>,
    pub auto_link_domains: Option<Vec<String>>,
    pub allowed_clients: Option<Vec<String>>,
    pub enabled: Option<bool>,
}

/// A plain OAuth 2.0 provider's endpoints to change; `None` keeps the current one.
#[derive(Debug, Clone, Default)]
pub struct EndpointsChange {
    pub authorization_endpoint: Option<String>,
    pub token_endpoint: Option<String>,
    pub userinfo_endpoint: Option<String>,
    pub emails_endpoint: Option<String>,
}

impl EndpointsChange {
    fn is_empty(&self) -> bool {
        self.authorization_endpoint.is_none()
            && self.token_endpoint.is_none()
            && self.userinfo_endpoint.is_none()
            && self.emails_endpoint.is_none()
    }

    /// `current` with these changes; the kind of a provider does not change.
    fn applied_to(self, current: Protocol) -> Result<Protocol, Invalid> {
        match current {
            Protocol::OAuth2(endpoints) => Ok(Protocol::OAuth2(OAuth2Endpoints {
                authorization_endpoint: self
                    .authorization_endpoint
                    .unwrap_or(endpoints.authorization_endpoint),
                token_endpoint: self.token_endpoint.unwrap_or(endpoints.token_endpoint),
                userinfo_endpoint: self.userinfo_endpoint.unwrap_or(endpoints.userinfo_endpoint),
                emails_endpoint: self.emails_endpoint.or(endpoints.emails_endpoint),
            })),
            Protocol::Oidc if self.is_empty() => Ok(Protocol::Oidc),
            Protocol::Oidc => Err(Invalid::new(
                "an OpenID provider's endpoints come from its discovery document",
            )),
        }
    }
}

/// Which claims to read the user from; `None` keeps the current mapping.
#[derive(Debug, Clone, Default)]
pub struct ClaimsChange {
    pub subject: Option<String>,
    pub username: Option<String>,
    pub email: Option<String>,
    pub name: Option<String>,
}

impl ClaimsChange {
    fn applied_to(self, current: ClaimMapping) -> ClaimMapping {
        ClaimMapping {
            subject: self.subject.unwrap_or(current.subject),
            username: self.username.unwrap_or(current.username),
            email: self.email.unwrap_or(current.email),
            name: self.name.unwrap_or(current.name),
        }
    }
}

pub async fn get(services: &Services, slug: &str) -> Result<Upstream, ManageError> {
    services
        .store
        .find_upstream(slug)
        .await?
        .ok_or_else(|| ManageError::NotFound(format!("upstream provider {slug:?}")))
}

/// Applies `change` (checked as at registration) and records it.
pub async fn update(
    services: &Services,
    slug: &str,
    change: UpstreamChange,
    actor: Actor,
) -> Result<Upstream, ManageError> {
    let current = get(services, slug).await?;
    let protocol = change.endpoints.applied_to(current.protocol.clone())?;
    let checked = NewUpstream {
        slug: current.slug.clone(),
        display_name: change.display_name.unwrap_or(current.display_name.clone()),
        icon: change.icon.unwrap_or(current.icon.clone()),
        issuer: current.issuer.clone(),
        protocol,
        client_id: change.client_id.unwrap_or(current.client_id.clone()),
        token_auth: change.token_auth.unwrap_or(current.token_auth),
        scopes: change.scopes.unwrap_or(current.scopes.clone()),
        jit: change.jit.unwrap_or(current.jit),
        trust_email: change.trust_email.unwrap_or(current.trust_email),
        claims: change.claims.applied_to(current.claims.clone()),
        allowed_domains: change.allowed_domains.unwrap_or(current.allowed_domains.clone()),
        auto_link_domains: change
            .auto_link_domains
            .unwrap_or(current.auto_link_domains.clone()),
        allowed_clients: change.allowed_clients.unwrap_or(current.allowed_clients.clone()),
    }
    .validated()?;
    let client_secret_sealed = match &change.client_secret {
        Some(secret) if secret.expose_secret().is_empty() => {
            return Err(Invalid::new("the client secret is empty").into());
        }
        Some(secret) => services
            .upstream_secret_key
            .encrypt(
                slug,
                &SecretBox::new(Box::new(secret.expose_secret().as_bytes().to_vec())),
            )
            .map_err(|e| ManageError::Internal(e.to_string()))?,
        None => current.client_secret_sealed.clone(),
    };
    let now = services.clock.now();
    let upstream = Upstream {
        display_name: checked.display_name,
        icon: checked.icon,
        protocol: checked.protocol,
        client_id: checked.client_id,
        token_auth: checked.token_auth,
        client_secret_sealed,
        scopes: checked.scopes,
        jit: checked.jit,
        trust_email: checked.trust_email,
        claims: checked.claims,
        allowed_domains: checked.allowed_domains,
        auto_link_domains: checked.auto_link_domains,
        allowed_clients: checked.allowed_clients,
        enabled: change.enabled.unwrap_or(current.enabled),
        updated_at: now,
        ..current
    };
    if !services.store.update_upstream(&upstream).await? {
        return Err(ManageError::NotFound(format!("upstream provider {slug:?}")));
    }
    let mut event = actor.event(EventType::UpstreamChanged, now);
    event.details = serde_json::json!({
        "slug": slug, "enabled": upstream.enabled, "secret_changed": change.client_secret.is_some(),
        "trust_email": upstream.trust_email, "auto_link_domains": upstream.auto_link_domains,
    });
    record(services, event).await;
    Ok(upstream)
}

/// What a provider's discovery document says (OIDC Discovery §3), as far as signing in needs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Discovered {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
    /// RFC 9207: the provider puts `iss` in its authorization responses (mix-up defence).
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
    /// What it verifies `private_key_jwt` assertions with (OIDC Discovery §3).
    #[serde(default)]
    pub token_endpoint_auth_signing_alg_values_supported: Vec<String>,
}

/// What "test connection" found of a provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    /// An OpenID provider's keys.
    pub jwks_uri: Option<String>,
    pub iss_parameter_supported: bool,
}

/// "Test connection": an OpenID provider's discovery document read and naming the configured
/// issuer; a plain OAuth 2.0 provider's user API answering at all (without a token it refuses,
/// which is the expected answer). The error is for the administrator.
pub async fn test_connection(upstream: &Upstream) -> Result<Connection, String> {
    match &upstream.protocol {
        Protocol::Oidc => discovery_document(upstream).await.map(|(found, _)| Connection {
            authorization_endpoint: found.authorization_endpoint,
            token_endpoint: found.token_endpoint,
            jwks_uri: Some(found.jwks_uri),
            iss_parameter_supported: found.authorization_response_iss_parameter_supported,
        }),
        Protocol::OAuth2(endpoints) => {
            use crate::security::outbound;
            let http = outbound::client().map_err(|e| e.to_string())?;
            let url = &endpoints.userinfo_endpoint;
            match outbound::get(&http, url, "application/json", MAX_DISCOVERY_BYTES).await {
                Ok(_) | Err(outbound::FetchError::Status(_)) => Ok(Connection {
                    authorization_endpoint: endpoints.authorization_endpoint.clone(),
                    token_endpoint: endpoints.token_endpoint.clone(),
                    jwks_uri: None,
                    iss_parameter_supported: false,
                }),
                Err(e) => Err(format!("{url}: {e}")),
            }
        }
    }
}

/// The largest discovery document read.
const MAX_DISCOVERY_BYTES: usize = 256 * 1024;

/// The provider's discovery document, checked to name the configured issuer exactly (OIDC
/// Discovery §4.3), and its raw bytes.
pub async fn discovery_document(upstream: &Upstream) -> Result<(Discovered, Vec<u8>), String> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        upstream.issuer.trim_end_matches('/')
    );
    let http = crate::security::outbound::client().map_err(|e| e.to_string())?;
    let body = crate::security::outbound::get(&http, &url, "application/json", MAX_DISCOVERY_BYTES)
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let discovered: Discovered =
        serde_json::from_slice(&body).map_err(|e| format!("{url} is not a discovery document: {e}"))?;
    if discovered.issuer != upstream.issuer {
        return Err(format!(
            "the provider calls itself {:?}, not {:?} (OIDC Discovery §4.3)",
            discovered.issuer, upstream.issuer
        ));
    }
    Ok((discovered, body))
}

/// Unlinks an upstream identity from an account, unless it is the account's only way to sign
/// in (no password, no passkey, no other linked identity).
pub async fn unlink(
    services: &Services,
    user_id: uuid::Uuid,
    issuer: &str,
    subject: &str,
    actor: Actor,
) -> Result<(), ManageError> {
    let identities = services.store.identities_of_user(user_id).await?;
    if !identities
        .iter()
        .any(|i| i.issuer == issuer && i.subject == subject)
    {
        return Err(ManageError::NotFound("linked identity".into()));
    }
    let has_password = services.store.password_phc(user_id).await?.is_some();
    let has_passkey = services
        .store
        .factors_of(user_id)
        .await?
        .iter()
        .any(|f| f.confirmed() && f.kind == crate::domain::mfa::FactorKind::Passkey);
    if !has_password && !has_passkey && identities.len() < 2 {
        return Err(
            Invalid::new("this identity is the account's only way to sign in: set a password first").into(),
        );
    }
    if !services.store.unlink_identity(user_id, issuer, subject).await? {
        return Err(ManageError::NotFound("linked identity".into()));
    }
    let mut event = actor.event(EventType::IdentityUnlinked, services.clock.now());
    event.user_id = Some(user_id.to_string());
    event.details = serde_json::json!({ "issuer": issuer, "subject": subject });
    record(services, event).await;
    Ok(())
}
