//! HTML responses: every page gets a strict Content-Security-Policy, no framing, no
//! caching, no referrer.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;

/// `form_action` lists where the page's forms may post besides this origin; `script_nonce`
/// allows the one inline script of the form_post page.
pub fn page(
    status: StatusCode,
    body: String,
    form_action: Option<&str>,
    script_nonce: Option<&str>,
) -> HttpResponse {
    let script = script_nonce.map_or("".to_string(), |n| format!(" script-src 'nonce-{n}';"));
    let form_action = form_action.map_or("'self'".to_string(), |target| format!("'self' {target}"));
    let csp = format!(
        "default-src 'none'; style-src 'self'; img-src 'self' data:;{script} form-action {form_action}; \
         frame-ancestors 'none'; base-uri 'none'"
    );
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header(("Content-Security-Policy", csp))
        .insert_header(("X-Frame-Options", "DENY"))
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("Pragma", "no-cache"))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .body(body)
}
