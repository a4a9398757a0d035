//! The admin REST API under `/admin/api/v1`: JSON in and out, RFC 9457 problems for
//! errors, a bearer token of an administrator on every call (see [`auth`]), an OpenAPI
//! 3.1 document generated from the handlers at `/admin/api/openapi.json`. Handlers parse,
//! call `manage` (which records a security event naming the administrator), and map.

pub mod auth;
mod clients;
mod events;
pub mod problem;
mod resources;
mod system;
mod upstreams;
mod users;
mod views;

use actix_web::{HttpResponse, web};
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

use problem::{ApiError, bad_input};

/// Every admin API route, and JSON/query/path parse failures answered as problems.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/api/openapi.json", web::get().to(openapi_json))
        .service(
            web::scope("/admin/api/v1")
                // Every answer is about accounts and credentials: never stored by a cache.
                .wrap(actix_web::middleware::DefaultHeaders::new().add(("Cache-Control", "no-store")))
                .app_data(
                    web::JsonConfig::default()
                        .limit(64 * 1024)
                        .error_handler(|e, _| bad_input(e)),
                )
                .app_data(web::QueryConfig::default().error_handler(|e, _| bad_input(e)))
                .app_data(web::PathConfig::default().error_handler(|e, _| bad_input(e)))
                .route("/overview", web::get().to(system::overview))
                .route("/users", web::get().to(users::list))
                .route("/users", web::post().to(users::create))
                .route("/users/{id}", web::get().to(users::get))
                .route("/users/{id}", web::patch().to(users::update))
                .route("/users/{id}", web::delete().to(users::delete))
                .route("/users/{id}/disable", web::post().to(users::disable))
                .route("/users/{id}/enable", web::post().to(users::enable))
                .route("/users/{id}/unlock", web::post().to(users::unlock))
                .route("/users/{id}/password", web::post().to(users::set_password))
                .route("/users/{id}/revoke", web::post().to(users::revoke_all))
                .route("/users/{id}/sessions/{sid}", web::delete().to(users::end_session))
                .route(
                    "/users/{id}/grants/{grant_id}",
                    web::delete().to(users::revoke_grant),
                )
                .route("/users/{id}/identities", web::delete().to(upstreams::unlink))
                .route("/users/{id}/mfa", web::get().to(users::get_mfa))
                .route(
                    "/users/{id}/mfa/factors/{factor_id}",
                    web::delete().to(users::remove_factor),
                )
                .route("/users/{id}/mfa/reset", web::post().to(users::reset_mfa))
                .route(
                    "/users/{id}/mfa/enrolment-required",
                    web::put().to(users::require_enrolment),
                )
                .route("/clients", web::get().to(clients::list))
                .route("/clients", web::post().to(clients::create))
                .route("/clients/{client_id}", web::get().to(clients::get))
                .route("/clients/{client_id}", web::put().to(clients::replace))
                .route("/clients/{client_id}", web::delete().to(clients::delete))
                .route(
                    "/clients/{client_id}/secret",
                    web::post().to(clients::rotate_secret),
                )
                .route("/resources", web::get().to(resources::list))
                .route("/resources", web::post().to(resources::create))
                .route("/resources/{identifier}", web::delete().to(resources::delete))
                .route("/upstreams", web::get().to(upstreams::list))
                .route("/upstreams", web::post().to(upstreams::create))
                .route("/upstreams/{slug}", web::patch().to(upstreams::update))
                .route("/upstreams/{slug}", web::delete().to(upstreams::delete))
                .route(
                    "/upstreams/{slug}/test",
                    web::post().to(upstreams::test_connection),
                )
                .route("/events", web::get().to(events::list))
                .route("/events/export.csv", web::get().to(events::export_csv))
                .route("/events/export.json", web::get().to(events::export_json))
                .route("/events/stats", web::get().to(events::stats))
                .route("/keys", web::get().to(system::list_keys))
                .route("/keys/rotate", web::post().to(system::rotate_keys))
                .default_service(web::to(|| async {
                    Err::<HttpResponse, _>(ApiError::NotFound("no such admin API route".into()))
                })),
        );
}

#[derive(OpenApi)]
#[openapi(
    info(title = "AImpact identity provider admin API", version = "1"),
    paths(
        system::overview,
        users::list, users::create, users::get, users::update, users::delete, users::disable, users::enable,
        users::unlock, users::set_password, users::revoke_all, users::end_session, users::revoke_grant,
        users::get_mfa, users::remove_factor, users::reset_mfa, users::require_enrolment,
        clients::list, clients::create, clients::get, clients::replace, clients::delete, clients::rotate_secret,
        resources::list, resources::create, resources::delete,
        upstreams::list, upstreams::create, upstreams::update, upstreams::delete, upstreams::test_connection,
        upstreams::unlink,
        events::list, events::export_csv, events::export_json, events::stats,
        system::list_keys, system::rotate_keys,
    ),
    components(schemas(api_types::Problem)),
    modifiers(&Security),
    security(("bearer" = [])),
)]
pub struct ApiDoc;

/// Declares the bearer scheme and the answers every route can give: 400, 401, 403, 429, 503.
struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        let problem = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/problem+json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("Problem")))
                        .build(),
                )
                .build()
        };
        let common = [
            ("400", "The request is malformed or invalid"),
            ("401", "No valid bearer token"),
            (
                "403",
                "The token's user is not an active administrator, or the token is not for this API",
            ),
            ("429", "Rate limited; see Retry-After"),
            ("503", "A dependency is unavailable; see Retry-After"),
        ];
        for item in openapi.paths.paths.values_mut() {
            for operation in [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            {
                for (code, description) in common {
                    operation
                        .responses
                        .responses
                        .entry(code.to_string())
                        .or_insert_with(|| problem(description).into());
                }
            }
        }
    }
}

async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(ApiDoc::openapi().to_json().unwrap_or_default())
}
