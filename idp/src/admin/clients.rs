//! `/admin/api/v1/clients`: register, review, change and remove relying parties.

use actix_web::{HttpResponse, web};
use api_types::{ACCOUNT_CLIENT_ID, ClientInput, ClientList, ClientView, ClientWithSecret, PORTAL_CLIENT_ID};
use secrecy::ExposeSecret;

use super::auth::Admin;
use super::problem::ApiError;
use super::views;
use crate::domain::Invalid;
use crate::domain::client::{
    ClientType, DEFAULT_SCOPES, GrantType, NewClient, RedirectUri, TokenEndpointAuthMethod,
    parse_public_jwks, parse_scope_token,
};
use crate::manage::clients;
use crate::startup::AppState;

#[utoipa::path(get, path = "/admin/api/v1/clients", tag = "clients",
    responses((status = 200, description = "Every client", body = ClientList)))]
pub async fn list(_admin: Admin, state: web::Data<AppState>) -> Result<web::Json<ClientList>, ApiError> {
    let all = state.services.store.list_clients().await?;
    Ok(web::Json(ClientList {
        items: all.iter().map(views::client).collect(),
    }))
}

#[utoipa::path(post, path = "/admin/api/v1/clients", tag = "clients", request_body = ClientInput,
    responses((status = 201, description = "Registered; a confidential client's secret is shown this once", body = ClientWithSecret)))]
pub async fn create(
    admin: Admin,
    state: web::Data<AppState>,
    body: web::Json<ClientInput>,
) -> Result<HttpResponse, ApiError> {
    let new = new_client(body.into_inner())?;
    let registered = clients::register(&state.services, new, admin.actor()).await?;
    Ok(HttpResponse::Created()
        .insert_header((
            "Location",
            format!("/admin/api/v1/clients/{}", registered.client.id),
        ))
        .insert_header(("Cache-Control", "no-store"))
        .json(ClientWithSecret {
            client: views::client(&registered.client),
            client_secret: registered.secret.map(|s| s.expose_secret().to_string()),
        }))
}

#[utoipa::path(get, path = "/admin/api/v1/clients/{client_id}", tag = "clients", params(("client_id" = String, Path)),
    responses((status = 200, description = "The client", body = ClientView), (status = 404, description = "No such client", body = api_types::Problem, content_type = "application/problem+json")))]
pub async fn get(
    _admin: Admin,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<web::Json<ClientView>, ApiError> {
    let client = clients::get(&state.services, &id).await?;
    Ok(web::Json(views::client(&client)))
}

#[utoipa::path(put, path = "/admin/api/v1/clients/{client_id}", tag = "clients", params(("client_id" = String, Path)), request_body = ClientInput,
    responses((status = 200, description = "Replaced", body = ClientView), (status = 404, description = "No such client", body = api_types::Problem, content_type = "application/problem+json")))]
pub async fn replace(
    admin: Admin,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<ClientInput>,
) -> Result<web::Json<ClientView>, ApiError> {
    refuse_portal(&id)?;
    let new = new_client(body.into_inner())?;
    let client = clients::update(&state.services, &id, new, admin.actor()).await?;
    Ok(web::Json(views::client(&client)))
}

#[utoipa::path(post, path = "/admin/api/v1/clients/{client_id}/secret", tag = "clients", params(("client_id" = String, Path)),
    responses((status = 200, description = "A new secret, shown this once; the old one no longer works", body = ClientWithSecret), (status = 404, description = "No such client", body = api_types::Problem, content_type = "application/problem+json")))]
pub async fn rotate_secret(
    admin: Admin,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (client, secret) = clients::rotate_secret(&state.services, &id, admin.actor()).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(ClientWithSecret {
            client: views::client(&client),
            client_secret: Some(secret.expose_secret().to_string()),
        }))
}

#[utoipa::path(delete, path = "/admin/api/v1/clients/{client_id}", tag = "clients", params(("client_id" = String, Path)),
    responses((status = 204, description = "Removed with its grants and tokens"), (status = 404, description = "No such client", body = api_types::Problem, content_type = "application/problem+json")))]
pub async fn delete(
    admin: Admin,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    refuse_portal(&id)?;
    clients::remove(&state.services, &id, admin.actor()).await?;
    Ok(HttpResponse::NoContent().finish())
}

fn refuse_portal(id: &str) -> Result<(), ApiError> {
    if id == PORTAL_CLIENT_ID || id == ACCOUNT_CLIENT_ID {
        return Err(ApiError::Invalid(
            "the admin portal's and the account page's clients are managed by the server itself".into(),
        ));
    }
    Ok(())
}

/// Parses the API's client settings into the domain's, applying the defaults.
fn new_client(input: ClientInput) -> Result<NewClient, ApiError> {
    let invalid = |e: Invalid| ApiError::Invalid(e.to_string());
    let raw_type = input.client_type.as_deref().unwrap_or("confidential");
    let client_type = ClientType::parse(raw_type)
        .ok_or_else(|| ApiError::Invalid(format!("unknown client type {raw_type:?}")))?;
    let uris = |list: &[String]| -> Result<Vec<RedirectUri>, ApiError> {
        list.iter()
            .map(|u| RedirectUri::parse(u, client_type).map_err(invalid))
            .collect()
    };
    let mut grant_types = match &input.grant_types {
        Some(list) => list
            .iter()
            .map(|g| GrantType::parse(g))
            .collect::<Result<Vec<_>, _>>()
            .map_err(invalid)?,
        None => vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
    };
    grant_types.sort_by_key(|g| g.as_str());
    grant_types.dedup();
    let mut scopes = match &input.scopes {
        Some(list) => list
            .iter()
            .map(|s| parse_scope_token(s))
            .collect::<Result<Vec<_>, _>>()
            .map_err(invalid)?,
        None => DEFAULT_SCOPES.iter().map(|s| s.to_string()).collect(),
    };
    scopes.dedup();
    let auth_method = match input.token_endpoint_auth_method.as_deref() {
        Some(raw) => Some(
            TokenEndpointAuthMethod::parse(raw)
                .ok_or_else(|| ApiError::Invalid(format!("unknown token endpoint auth method {raw:?}")))?,
        ),
        None => None,
    };
    Ok(NewClient {
        name: input.name,
        client_type,
        redirect_uris: uris(&input.redirect_uris)?,
        post_logout_redirect_uris: uris(&input.post_logout_redirect_uris)?,
        grant_types,
        scopes,
        first_party: input.first_party,
        refresh_reuse_window_s: input.refresh_reuse_window_s,
        require_pkce: input.require_pkce,
        refresh_idle_ttl_s: input.refresh_idle_ttl_s,
        id_token_signed_response_alg: input
            .id_token_signed_response_alg
            .unwrap_or_else(|| "RS256".into()),
        access_token_signing_alg: input.access_token_signing_alg.filter(|a| !a.is_empty()),
        backchannel_logout_uri: input.backchannel_logout_uri.filter(|u| !u.trim().is_empty()),
        token_endpoint_auth_method: auth_method,
        access_token_ttl_s: input.access_token_ttl_s,
        refresh_token_ttl_s: input.refresh_token_ttl_s,
        rate_limit_token_per_minute: input.rate_limit_token_per_minute,
        rate_limit_introspect_per_minute: input.rate_limit_introspect_per_minute,
        mfa: input
            .mfa
            .as_deref()
            .filter(|m| !m.is_empty())
            .map(crate::domain::mfa::MfaPolicy::parse)
            .transpose()
            .map_err(|e| ApiError::Invalid(e.0))?,
        require_verified_email: input.require_verified_email,
        jwks: input
            .jwks
            .filter(|j| !j.is_null())
            .map(|j| parse_public_jwks(j.to_string().as_bytes()))
            .transpose()
            .map_err(invalid)?,
        jwks_uri: input.jwks_uri.filter(|u| !u.trim().is_empty()),
        require_par: input.require_par,
        dpop_bound_access_tokens: input.dpop_bound_access_tokens,
        profile: input
            .profile
            .as_deref()
            .filter(|p| !p.is_empty())
            .map(crate::domain::client::Profile::parse)
            .transpose()
            .map_err(invalid)?,
        resources: input.resources,
    })
}
