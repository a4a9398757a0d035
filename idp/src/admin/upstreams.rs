//! `/admin/api/v1/upstreams`: the identity providers users may sign in with (federation).

use actix_web::{HttpResponse, web};
use api_types::{
    IdentityKey, IdentityView, UpstreamChange, UpstreamInput, UpstreamList, UpstreamTest, UpstreamView,
};
use secrecy::SecretString;

use super::auth::Admin;
use super::problem::ApiError;
use crate::domain::upstream::{FederatedIdentity, Protocol, TokenAuth, Upstream, UpstreamDraft};
use crate::manage::upstreams;
use crate::services::Services;
use crate::startup::AppState;

fn view(services: &Services, u: &Upstream) -> UpstreamView {
    let endpoints = match &u.protocol {
        Protocol::Oidc => None,
        Protocol::OAuth2(endpoints) => Some(endpoints.clone()),
    };
    UpstreamView {
        slug: u.slug.clone(),
        display_name: u.display_name.clone(),
        icon: u.icon.clone(),
        kind: u.protocol.kind().to_string(),
        issuer: u.issuer.clone(),
        authorization_endpoint: endpoints.as_ref().map(|e| e.authorization_endpoint.clone()),
        token_endpoint: endpoints.as_ref().map(|e| e.token_endpoint.clone()),
        userinfo_endpoint: endpoints.as_ref().map(|e| e.userinfo_endpoint.clone()),
        emails_endpoint: endpoints.and_then(|e| e.emails_endpoint),
        client_id: u.client_id.clone(),
        token_endpoint_auth_method: u.token_auth.as_str().to_string(),
        scopes: u.scopes.clone(),
        jit: u.jit,
        trust_email: u.trust_email,
        claim_subject: u.claims.subject.clone(),
        claim_username: u.claims.username.clone(),
        claim_email: u.claims.email.clone(),
        claim_name: u.claims.name.clone(),
        allowed_domains: u.allowed_domains.clone(),
        auto_link_domains: u.auto_link_domains.clone(),
        allowed_clients: u.allowed_clients.clone(),
        enabled: u.enabled,
        redirect_uri: upstreams::redirect_uri(services, &u.slug),
        backchannel_logout_uri: (u.protocol == Protocol::Oidc)
            .then(|| upstreams::backchannel_logout_uri(services, &u.slug)),
        created_at: u.created_at,
        updated_at: u.updated_at,
    }
}

#[utoipa::path(get, path = "/admin/api/v1/upstreams", tag = "upstreams",
    responses((status = 200, description = "Every upstream provider", body = UpstreamList)))]
pub async fn list(_admin: Admin, state: web::Data<AppState>) -> Result<web::Json<UpstreamList>, ApiError> {
    let services = &state.services;
    let all = services.store.list_upstreams().await?;
    Ok(web::Json(UpstreamList {
        items: all.iter().map(|u| view(services, u)).collect(),
    }))
}

#[utoipa::path(post, path = "/admin/api/v1/upstreams", tag = "upstreams", request_body = UpstreamInput,
    responses((status = 201, description = "Registered", body = UpstreamView),
        (status = 409, description = "The slug is taken", body = api_types::Problem, content_type = "application/problem+json")))]
pub async fn create(
    admin: Admin,
    state: web::Data<AppState>,
    body: web::Json<UpstreamInput>,
) -> Result<HttpResponse, ApiError> {
    let input = body.into_inner();
    let secret = SecretString::from(input.client_secret);
    let new = UpstreamDraft {
        kind: input.kind,
        slug: input.slug,
        display_name: input.display_name,
        icon: input.icon,
        issuer: input.issuer,
        client_id: input.client_id,
        token_endpoint_auth_method: input.token_endpoint_auth_method,
        scopes: input.scopes,
        jit: input.jit,
        trust_email: input.trust_email,
        claim_subject: input.claim_subject,
        claim_username: input.claim_username,
        claim_email: input.claim_email,
        claim_name: input.claim_name,
        authorization_endpoint: input.authorization_endpoint,
        token_endpoint: input.token_endpoint,
        userinfo_endpoint: input.userinfo_endpoint,
        emails_endpoint: input.emails_endpoint,
        allowed_domains: input.allowed_domains,
        auto_link_domains: input.auto_link_domains,
        allowed_clients: input.allowed_clients,
    }
    .resolve()?;
    let upstream = upstreams::register(&state.services, new, &secret, admin.actor()).await?;
    Ok(HttpResponse::Created().json(view(&state.services, &upstream)))
}

#[utoipa::path(patch, path = "/admin/api/v1/upstreams/{slug}", tag = "upstreams", params(("slug" = String, Path)),
    request_body = UpstreamChange,
    responses((status = 200, description = "Changed", body = UpstreamView),
        (status = 404, description = "No such provider", body = api_types::Problem, content_type = "application/problem+json")))]
pub async fn update(
    admin: Admin,
    state: web::Data<AppState>,
    slug: web::Path<String>,
    body: web::Json<UpstreamChange>,
) -> Result<web::Json<UpstreamView>, ApiError> {
    let input = body.into_inner();
    let change = upstreams::UpstreamChange {
        display_name: input.display_name,
        icon: input.icon.map(|icon| Some(icon).filter(|i| !i.is_empty())),
        client_id: input.client_id,
        client_secret: input.client_secret.map(SecretString::from),
        token_auth: input
            .token_endpoint_auth_method
            .as_deref()
            .map(TokenAuth::parse)
            .transpose()?,
        endpoints: upstreams::EndpointsChange {
            authorization_endpoint: input.authorization_endpoint,
            token_endpoint: input.token_endpoint,
            userinfo_endpoint: input.userinfo_endpoint,
            emails_endpoint: input.emails_endpoint,
        },
        scopes: input.scopes,
        jit: input.jit,
        trust_email: input.trust_email,
        claims: upstreams::ClaimsChange {
            subject: input.claim_subject,
            username: input.claim_username,
            email: input.claim_email,
            name: input.claim_name,
        },
        allowed_domains: input.allowed_domains,
        auto_link_domains: input.auto_link_domains,
        allowed_clients: input.allowed_clients,
        enabled: input.enabled,
    };
    let upstream = upstreams::update(&state.services, &slug, change, admin.actor()).await?;
    Ok(web::Json(view(&state.services, &upstream)))
}

#[utoipa::path(delete, path = "/admin/api/v1/upstreams/{slug}", tag = "upstreams", params(("slug" = String, Path)),
    responses((status = 204, description = "Removed"),
        (status = 404, description = "No such provider", body = api_types::Problem, content_type = "application/problem+json")))]
pub async fn delete(
    admin: Admin,
    state: web::Data<AppState>,
    slug: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    upstreams::remove(&state.services, &slug, admin.actor()).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(post, path = "/admin/api/v1/upstreams/{slug}/test", tag = "upstreams", params(("slug" = String, Path)),
    responses((status = 200, description = "Whether the provider's discovery document could be read and names its issuer (a plain OAuth 2.0 provider: whether its user API answers)", body = UpstreamTest),
        (status = 404, description = "No such provider", body = api_types::Problem, content_type = "application/problem+json")))]
pub async fn test_connection(
    _admin: Admin,
    state: web::Data<AppState>,
    slug: web::Path<String>,
) -> Result<web::Json<UpstreamTest>, ApiError> {
    let upstream = upstreams::get(&state.services, &slug).await?;
    Ok(web::Json(match upstreams::test_connection(&upstream).await {
        Ok(found) => UpstreamTest {
            ok: true,
            error: None,
            authorization_endpoint: Some(found.authorization_endpoint),
            token_endpoint: Some(found.token_endpoint),
            jwks_uri: found.jwks_uri,
            iss_parameter_supported: found.iss_parameter_supported,
        },
        Err(error) => UpstreamTest {
            ok: false,
            error: Some(error),
            authorization_endpoint: None,
            token_endpoint: None,
            jwks_uri: None,
            iss_parameter_supported: false,
        },
    }))
}

pub fn identity_view(i: &FederatedIdentity) -> IdentityView {
    IdentityView {
        issuer: i.issuer.clone(),
        subject: i.subject.clone(),
        upstream: i.upstream.clone(),
        email: i.email.clone(),
        created_at: i.created_at,
        last_login_at: i.last_login_at,
    }
}

#[utoipa::path(delete, path = "/admin/api/v1/users/{id}/identities", tag = "users", params(("id" = String, Path), IdentityKey),
    responses((status = 204, description = "Unlinked"),
        (status = 404, description = "No such user or linked identity", body = api_types::Problem, content_type = "application/problem+json")))]
pub async fn unlink(
    admin: Admin,
    state: web::Data<AppState>,
    id: web::Path<String>,
    key: web::Query<IdentityKey>,
) -> Result<HttpResponse, ApiError> {
    let user_id = uuid::Uuid::parse_str(&id).map_err(|_| ApiError::NotFound("user not found".into()))?;
    upstreams::unlink(&state.services, user_id, &key.issuer, &key.subject, admin.actor()).await?;
    Ok(HttpResponse::NoContent().finish())
}
