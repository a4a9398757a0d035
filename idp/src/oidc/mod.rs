//! OpenID Connect and OAuth 2.0 endpoints, one file each.

pub mod access_check;
pub mod authorize;
pub mod client_assertion;
pub mod client_auth;
pub mod discovery;
pub mod dpop;
pub mod error;
pub mod grants;
pub mod introspection;
pub mod jwks;
pub mod logout;
pub mod par;
pub mod params;
pub mod pkce;
pub mod request;
pub mod request_object;
pub mod resources;
pub mod revocation;
pub mod throttle;
pub mod token;
pub mod tokens;
pub mod userinfo;

use actix_web::web;

use crate::login::pages;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/.well-known/openid-configuration",
        web::get().to(discovery::metadata),
    )
    .route(
        "/.well-known/oauth-authorization-server",
        web::get().to(discovery::metadata),
    )
    .route("/jwks", web::get().to(jwks::jwks))
    .route("/authorize", web::get().to(authorize::authorize))
    .route("/authorize", web::post().to(authorize::authorize))
    .route("/token", web::post().to(token::token))
    .route("/token", web::route().to(token::method_not_allowed))
    .route("/par", web::post().to(par::push))
    .route("/par", web::route().to(par::method_not_allowed))
    .route("/revoke", web::post().to(revocation::revoke))
    .route("/introspect", web::post().to(introspection::introspect))
    .route("/logout", web::get().to(logout::end_session))
    .route("/logout", web::post().to(logout::end_session))
    .route("/logout/confirm", web::post().to(logout::confirm))
    .route("/userinfo", web::get().to(userinfo::userinfo))
    .route("/userinfo", web::post().to(userinfo::userinfo))
    .route("/login", web::get().to(pages::login_form))
    .route("/login", web::post().to(pages::login_submit))
    .route(
        "/upstream/{slug}/start",
        web::get().to(crate::login::upstream::start),
    )
    .route(
        "/upstream/{slug}/callback",
        web::get().to(crate::login::upstream::callback),
    )
    .route(
        "/upstream/{slug}/backchannel-logout",
        web::post().to(crate::login::upstream::backchannel_logout),
    )
    .route("/password", web::get().to(crate::login::password::form))
    .route("/password", web::post().to(crate::login::password::submit))
    .route("/mfa", web::get().to(crate::login::mfa::second_factor_form))
    .route("/mfa", web::post().to(crate::login::mfa::second_factor_submit))
    .route("/mfa/enrol", web::get().to(crate::login::mfa::enrol_form))
    .route("/mfa/enrol", web::post().to(crate::login::mfa::enrol_submit))
    .route("/login/passkey", web::post().to(crate::login::passkey::sign_in))
    .route(
        "/mfa/passkey",
        web::post().to(crate::login::passkey::second_factor),
    )
    .route("/mfa/enrol/passkey", web::post().to(crate::login::passkey::enrol))
    .route("/assets/passkey.js", web::get().to(crate::login::passkey::script))
    .route(
        "/mfa/recovery-codes",
        web::post().to(crate::login::mfa::recovery_codes_continue),
    )
    .route(
        "/mfa/recovery-codes/new",
        web::post().to(crate::login::mfa::recovery_codes_renew),
    )
    .route(
        "/forgot-password",
        web::get().to(crate::login::recovery::forgot_form),
    )
    .route(
        "/forgot-password",
        web::post().to(crate::login::recovery::forgot_submit),
    )
    .route(
        "/reset-password",
        web::get().to(crate::login::recovery::reset_form),
    )
    .route(
        "/reset-password",
        web::post().to(crate::login::recovery::reset_submit),
    )
    .route(
        "/accept-invitation",
        web::get().to(crate::login::recovery::invitation_form),
    )
    .route(
        "/accept-invitation",
        web::post().to(crate::login::recovery::invitation_submit),
    )
    .route(
        "/verify-email",
        web::get().to(crate::login::recovery::verify_form),
    )
    .route(
        "/verify-email",
        web::post().to(crate::login::recovery::verify_submit),
    )
    .route(
        "/login/verify-email",
        web::get().to(crate::login::verify_gate::form),
    )
    .route(
        "/login/verify-email",
        web::post().to(crate::login::verify_gate::submit),
    )
    .route("/register", web::get().to(crate::login::register::start_form))
    .route("/register", web::post().to(crate::login::register::start_submit))
    .route(
        "/register/complete",
        web::get().to(crate::login::register::complete_form),
    )
    .route(
        "/register/complete",
        web::post().to(crate::login::register::complete_submit),
    )
    .route("/consent", web::get().to(pages::consent_form))
    .route("/consent", web::post().to(pages::consent_submit))
    .route("/theme/{name}/style.css", web::get().to(pages::theme_css));
}
