//! `GET /jwks`: the public signing keys (RFC 7517 §5), each with `kid`, `use` and `alg`.

use actix_web::{HttpRequest, HttpResponse, web};

use super::discovery::cached_json;
use crate::startup::AppState;

pub async fn jwks(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let (body, etag) = state.services.keys.current().jwks();
    // Short cache: a staged key must reach relying parties well before it signs.
    cached_json(&req, web::Bytes::copy_from_slice(body.as_bytes()), &etag, 300)
}
