//! The account page (`/account`), where users look after their own account.
//!
//! Server-rendered from the login-page themes rather than a second WebAssembly app: it is
//! a handful of forms, it then works without JavaScript, shares the themes operators
//! already brand, keeps the strict no-script Content-Security-Policy of the login pages,
//! and costs no second download. It signs in like any relying party (see [`signin`]).

pub mod identities;
pub mod pages;
pub mod signin;

use actix_web::web;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/account", web::get().to(pages::page))
        .route("/account/callback", web::get().to(signin::callback))
        .route("/account/profile", web::post().to(pages::update_profile))
        .route("/account/password", web::post().to(pages::change_password))
        .route("/account/sessions/end", web::post().to(pages::end_session))
        .route(
            "/account/sessions/end-others",
            web::post().to(pages::end_other_sessions),
        )
        .route("/account/apps/disconnect", web::post().to(pages::disconnect_app))
        .route("/account/mfa/remove", web::post().to(pages::remove_factor))
        .route("/account/identities/unlink", web::post().to(identities::unlink))
        .route("/account/mfa/setup", web::get().to(pages::setup_mfa))
        .route(
            "/account/mfa/recovery-codes",
            web::get().to(pages::new_recovery_codes),
        )
        .route("/account/signout", web::post().to(pages::sign_out));
}
