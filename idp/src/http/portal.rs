//! Headers of the admin portal's files: a Content-Security-Policy that allows only this
//! origin's scripts (plus the exact inline loader Trunk writes, by hash, and WebAssembly
//! compilation), and caching: Trunk's content-hashed assets for a year, `index.html` never
//! without revalidation (it names the current hashes).

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, web};
use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::startup::AppState;

/// The policy for a portal whose `index.html` is `index`.
pub fn content_security_policy(index: &str) -> String {
    let hashes: String = inline_scripts(index)
        .map(|script| {
            let digest = digest::digest(&digest::SHA256, script.as_bytes());
            format!(" 'sha256-{}'", STANDARD.encode(digest.as_ref()))
        })
        .collect();
    format!(
        "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'{hashes}; style-src 'self'; \
         img-src 'self' data:; connect-src 'self'; font-src 'self'; manifest-src 'self'; \
         base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

/// The bodies of `<script>` elements without `src`.
fn inline_scripts(html: &str) -> impl Iterator<Item = &str> {
    html.split("<script").skip(1).filter_map(|rest| {
        let (attributes, after) = rest.split_once('>')?;
        let (body, _) = after.split_once("</script>")?;
        (!attributes.contains("src=")).then_some(body)
    })
}

/// Trunk names built assets `name-<16 hex>.ext` (and `..._bg.wasm`).
fn is_hashed_asset(path: &str) -> bool {
    let file = path.rsplit('/').next().unwrap_or_default();
    let stem = file.split('.').next().unwrap_or_default().trim_end_matches("_bg");
    stem.rsplit_once('-')
        .is_some_and(|(_, hash)| hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
}

pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let path = req.path().to_string();
    let csp = req
        .app_data::<web::Data<AppState>>()
        .and_then(|s| s.portal_csp.clone());
    let mut response = next.call(req).await?;
    let portal = path.starts_with("/admin") && !path.starts_with("/admin/api");
    if portal && response.status().is_success() {
        let headers = response.headers_mut();
        let cache = if is_hashed_asset(&path) {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        };
        headers.insert(CACHE_CONTROL, HeaderValue::from_static(cache));
        if let Some(value) = csp.and_then(|c| HeaderValue::from_str(&c).ok()) {
            headers.insert(CONTENT_SECURITY_POLICY, value);
        }
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_loader_scripts_are_allowed_by_hash_only() {
        let html =
            r#"<script type="module">import init from '/admin/a.js';</script><script src="/x.js"></script>"#;
        let csp = content_security_policy(html);
        assert_eq!(csp.matches("'sha256-").count(), 1, "{csp}");
        assert!(!csp.contains("unsafe-inline"));
    }

    #[test]
    fn only_content_hashed_files_are_cached_for_long() {
        assert!(is_hashed_asset("/admin/admin-ui-0123456789abcdef_bg.wasm"));
        assert!(is_hashed_asset("/admin/portal-0123456789abcdef.css"));
        assert!(!is_hashed_asset("/admin/index.html"));
        assert!(!is_hashed_asset("/admin/users/some-user"));
    }
}
