//! Cookie names and attributes. With an https issuer every cookie is `Secure` and uses the
//! `__Host-` prefix (bound to this host, path `/`, no `Domain`); plain http is for local
//! development only.

use actix_web::cookie::{Cookie, SameSite, time::Duration};

use crate::config::Settings;

pub const SESSION: &str = "idp_session";
pub const CSRF: &str = "idp_csrf";

pub fn name(settings: &Settings, base: &str) -> String {
    if secure(settings) {
        format!("__Host-{base}")
    } else {
        base.to_string()
    }
}

fn secure(settings: &Settings) -> bool {
    settings.issuer.scheme() == "https"
}

/// An `HttpOnly` cookie for path `/`.
pub fn build(
    settings: &Settings,
    base: &str,
    value: String,
    same_site: SameSite,
    max_age_s: Option<i64>,
) -> Cookie<'static> {
    let mut cookie = Cookie::build(name(settings, base), value)
        .path("/")
        .http_only(true)
        .secure(secure(settings))
        .same_site(same_site)
        .finish();
    if let Some(seconds) = max_age_s {
        cookie.set_max_age(Duration::seconds(seconds));
    }
    cookie
}

/// A cookie that removes `base`.
pub fn removal(settings: &Settings, base: &str) -> Cookie<'static> {
    let mut cookie = build(settings, base, String::new(), SameSite::Lax, Some(0));
    cookie.make_removal();
    cookie
}
