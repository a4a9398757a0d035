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
    let script = script_nonce.map(|n| format!("'nonce-{n}'"));
    page_with_scripts(status, body, form_action, script.as_deref())
}

/// A page that loads this server's own scripts (`/assets/…`: the passkey pages), and no
/// other.
pub fn page_with_own_scripts(status: StatusCode, body: String, form_action: Option<&str>) -> HttpResponse {
    page_with_scripts(status, body, form_action, Some("'self'"))
}

fn page_with_scripts(
    status: StatusCode,
    body: String,
    form_action: Option<&str>,
    script_src: Option<&str>,
) -> HttpResponse {
    let script = script_src.map_or("".to_string(), |s| format!(" script-src {s};"));
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

/// The CSP source expression that lets a form lead to `uri`: its origin, or its scheme for a
/// private-use scheme (CSP3 source lists carry no query). Browsers apply `form-action` to
/// the redirects that follow a form submission too (CSP3 §6.3.1), so the login and consent
/// pages, whose answers may redirect to the client, must allow the client's redirect URI.
pub fn csp_source(uri: &str) -> String {
    match url::Url::parse(uri) {
        Ok(url) if url.origin().is_tuple() => url.origin().ascii_serialization(),
        Ok(url) => format!("{}:", url.scheme()),
        Err(_) => "'none'".into(),
    }
}
