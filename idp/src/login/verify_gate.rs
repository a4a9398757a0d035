//! `/login/verify-email`: the step a login stops at when its client requires a verified
//! email address (`require_verified_email`) and the user's is not. The user is logged in
//! (the session exists, as for consent); nothing is issued to the client until the address
//! is verified through the usual mailed link, or the user cancels (`access_denied`).
//! Sending is a button, not a side effect of showing the page, so a reload sends nothing.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::interaction::{Interaction, Step};
use super::pages::{
    InteractionQuery, PRODUCT, at_session_step, client_name, csrf_cookie, open_interaction,
    submitted_interaction,
};
use crate::domain::session::Session;
use crate::domain::user::User;
use crate::http::html;
use crate::mail;
use crate::manage::recovery;
use crate::oidc::authorize::{self, error_page, render};
use crate::oidc::error::OAuthError;
use crate::oidc::request::Target;
use crate::startup::AppState;

#[derive(Deserialize)]
pub struct GateForm {
    csrf: String,
    interaction: String,
    #[serde(default)]
    decision: String,
}

/// What the page says besides its explanation.
#[derive(Default)]
struct Said<'a> {
    sent: bool,
    error: Option<&'a str>,
}

async fn waiting(
    state: &AppState,
    req: &HttpRequest,
    interaction: &Interaction,
) -> Result<(Session, User), HttpResponse> {
    at_session_step(state, req, interaction, &Step::VerifyEmail).await
}

/// `GET /login/verify-email?interaction=…`.
pub async fn form(
    req: HttpRequest,
    query: web::Query<InteractionQuery>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let interaction = match open_interaction(&state, query.interaction.as_deref()) {
        Ok(i) => i,
        Err(page) => return page,
    };
    match waiting(&state, &req, &interaction).await {
        Ok((_, user)) => page(&state, &req, &interaction, &user, StatusCode::OK, Said::default()).await,
        Err(page) => page,
    }
}

/// `POST /login/verify-email`: `decision` is `send` (mail a link), `continue` (go on once
/// verified) or `cancel`.
pub async fn submit(req: HttpRequest, form: web::Form<GateForm>, state: web::Data<AppState>) -> HttpResponse {
    let interaction = match submitted_interaction(&state, &req, &form.interaction, &form.csrf) {
        Ok(i) => i,
        Err(page) => return page,
    };
    let (session, user) = match waiting(&state, &req, &interaction).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let services = &state.services;
    let target = Target::of(&interaction.request);
    match form.decision.as_str() {
        "cancel" => render(
            &state,
            authorize::error_response(
                target,
                &OAuthError::access_denied("the user's email address is not verified"),
            ),
        ),
        "send" if !user.email_verified => match recovery::send_verification(services, &user).await {
            Ok(sent) => {
                let said = Said {
                    sent,
                    ..Said::default()
                };
                page(&state, &req, &interaction, &user, StatusCode::OK, said).await
            }
            Err(e) => error_page(&state, &OAuthError::internal(e)),
        },
        _ if user.email_verified => {
            // Verified meanwhile: the login goes on where it stopped (consent, then the code).
            let now = services.clock.now();
            let next = authorize::proceed(services, interaction, Some((session, user)), now)
                .await
                .unwrap_or_else(|error| authorize::error_response(target, &error));
            render(&state, next)
        }
        _ => {
            let said = Said {
                error: Some(
                    "Your address is not verified yet. Open the link we mailed you, then press Continue.",
                ),
                ..Said::default()
            };
            page(&state, &req, &interaction, &user, StatusCode::BAD_REQUEST, said).await
        }
    }
}

async fn page(
    state: &AppState,
    req: &HttpRequest,
    interaction: &Interaction,
    user: &User,
    status: StatusCode,
    said: Said<'_>,
) -> HttpResponse {
    let (csrf_value, new_cookie) = csrf_cookie(state, req);
    let (client_name, client_theme) = client_name(state, &interaction.request.client_id).await;
    let (theme_name, theme) = state.themes.get(client_theme.as_deref());
    let context = minijinja::context! {
        product => PRODUCT,
        css_url => format!("/theme/{theme_name}/style.css"),
        action => "/login/verify-email",
        client_name => client_name,
        username => user.username.as_str(),
        email => user.email.as_ref().map(|e| e.as_str()),
        can_send => user.email.is_some() && mail::configured(&state.services),
        sent => said.sent,
        error => said.error,
        csrf => state.interactions.tag("csrf", &csrf_value),
        interaction => state.interactions.seal(interaction),
    };
    let mut response = match theme.render("verify_required.html", context) {
        // The form may end in a redirect to the client (cancel, continue): CSP allows it.
        Ok(body) => html::page(
            status,
            body,
            Some(&html::csp_source(&interaction.request.redirect_uri)),
            None,
        ),
        Err(e) => return error_page(state, &OAuthError::internal(e)),
    };
    if let Some(cookie) = new_cookie {
        let _ = response.add_cookie(&cookie);
    }
    response
}
