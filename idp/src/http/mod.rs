//! HTTP: routes, middleware and the mapping of errors to responses.

pub mod cors;
pub mod error;
pub mod health;
pub mod html;
pub mod meta;
pub mod portal;
pub mod request_id;
pub mod tls;
pub mod trace_context;

use actix_web::web;

/// Every route of the server.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(health::liveness))
        .route("/readyz", web::get().to(health::readiness))
        .route("/metrics", web::get().to(health::metrics))
        .configure(crate::oidc::routes)
        .configure(crate::account::routes)
        .configure(crate::admin::routes);
}
