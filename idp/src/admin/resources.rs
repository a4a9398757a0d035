//! `/admin/api/v1/resources`: the resource servers (RFC 8707) clients may ask tokens for.

use actix_web::{HttpResponse, web};
use api_types::{ResourceInput, ResourceList, ResourceView};

use super::auth::Admin;
use super::problem::ApiError;
use crate::domain::resource::{NewResourceServer, ResourceServer};
use crate::manage::resources;
use crate::startup::AppState;

fn view(r: &ResourceServer) -> ResourceView {
    ResourceView {
        identifier: r.identifier.clone(),
        scopes: r.scopes.clone(),
        client_id: r.client_id.clone(),
        created_at: r.created_at,
    }
}

#[utoipa::path(get, path = "/admin/api/v1/resources", tag = "resources",
    responses((status = 200, description = "Every resource server", body = ResourceList)))]
pub async fn list(_admin: Admin, state: web::Data<AppState>) -> Result<web::Json<ResourceList>, ApiError> {
    let all = state.services.store.list_resource_servers().await?;
    Ok(web::Json(ResourceList {
        items: all.iter().map(view).collect(),
    }))
}

#[utoipa::path(post, path = "/admin/api/v1/resources", tag = "resources", request_body = ResourceInput,
    responses((status = 201, description = "Registered", body = ResourceView),
        (status = 404, description = "The named client does not exist", body = api_types::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already registered", body = api_types::Problem, content_type = "application/problem+json")))]
pub async fn create(
    admin: Admin,
    state: web::Data<AppState>,
    body: web::Json<ResourceInput>,
) -> Result<HttpResponse, ApiError> {
    let input = body.into_inner();
    let new = NewResourceServer::parse(&input.identifier, &input.scopes, input.client_id)
        .map_err(|e| ApiError::Invalid(e.to_string()))?;
    let resource = resources::register(&state.services, new, admin.actor()).await?;
    Ok(HttpResponse::Created().json(view(&resource)))
}

#[utoipa::path(delete, path = "/admin/api/v1/resources/{identifier}", tag = "resources",
    params(("identifier" = String, Path, description = "The resource indicator, percent-encoded as one path segment")),
    responses((status = 204, description = "Removed, and from every client that could ask for it"),
        (status = 404, description = "No such resource server", body = api_types::Problem, content_type = "application/problem+json")))]
pub async fn delete(
    admin: Admin,
    state: web::Data<AppState>,
    identifier: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    resources::remove(&state.services, &identifier, admin.actor()).await?;
    Ok(HttpResponse::NoContent().finish())
}
