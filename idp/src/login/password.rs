//! The password-change step: a user whose password an administrator set must choose their
//! own before any client gets a code. Reached from `authorize::proceed`, after login.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::SecretString;
use serde::Deserialize;

use super::interaction::Interaction;
use super::pages::{
    InteractionQuery, PRODUCT, csrf_cookie, logged_in, open_interaction, submitted_interaction,
};
use crate::audit::{EventType, Outcome, SecurityEvent};
use crate::domain::user::User;
use crate::http::html;
use crate::http::meta::RequestMeta;
use crate::manage::record;
use crate::oidc::authorize::{self, error_page, render};
use crate::oidc::error::OAuthError;
use crate::oidc::request::Target;
use crate::security::password;
use crate::startup::AppState;

#[derive(Deserialize)]
pub struct PasswordForm {
    csrf: String,
    interaction: String,
    new_password: String,
    confirm_password: String,
}

pub async fn form(
    req: HttpRequest,
    query: web::Query<InteractionQuery>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let interaction = match open_interaction(&state, query.interaction.as_deref()) {
        Ok(i) => i,
        Err(page) => return page,
    };
    match logged_in(&state, &req, &interaction).await {
        Ok((_, user)) => page(&state, &req, &interaction, &user, None),
        Err(page) => page,
    }
}

pub async fn submit(
    req: HttpRequest,
    form: web::Form<PasswordForm>,
    state: web::Data<AppState>,
    meta: RequestMeta,
) -> HttpResponse {
    let interaction = match submitted_interaction(&state, &req, &form.interaction, &form.csrf) {
        Ok(i) => i,
        Err(page) => return page,
    };
    let services = &state.services;
    let now = services.clock.now();
    let (session, user) = match logged_in(&state, &req, &interaction).await {
        Ok(current) => current,
        Err(page) => return page,
    };
    if user.must_change_password {
        if form.new_password != form.confirm_password {
            return page(
                &state,
                &req,
                &interaction,
                &user,
                Some("The two passwords differ."),
            );
        }
        if let Err(problem) = password::check_policy(&form.new_password) {
            return page(&state, &req, &interaction, &user, Some(&problem));
        }
        let secret = SecretString::from(form.new_password.clone());
        let phc = match services.passwords.hash(&secret).await {
            Ok(phc) => phc,
            Err(e) => return error_page(&state, &OAuthError::internal(e)),
        };
        if let Err(e) = services.store.replace_password(user.id, &phc, false, now).await {
            return error_page(&state, &e.into());
        }
        let mut event = SecurityEvent::new(EventType::PasswordChanged, Outcome::Success, now);
        event.user_id = Some(user.id.to_string());
        event.username = Some(user.username.as_str().to_string());
        event.actor_id = Some(user.id.to_string());
        event.details = serde_json::json!({ "temporary": false, "forced": true });
        record(services, meta.stamp(event)).await;
    }
    let user = User {
        must_change_password: false,
        ..user
    };
    let target = Target::of(&interaction.request);
    let next = authorize::proceed(services, interaction, Some((session, user)), now)
        .await
        .unwrap_or_else(|error| authorize::error_response(target, &error));
    render(&state, next)
}

fn page(
    state: &AppState,
    req: &HttpRequest,
    interaction: &Interaction,
    user: &User,
    error: Option<&str>,
) -> HttpResponse {
    let (csrf_value, new_cookie) = csrf_cookie(state, req);
    let (theme_name, theme) = state.themes.get(None);
    let context = minijinja::context! {
        product => PRODUCT,
        css_url => format!("/theme/{theme_name}/style.css"),
        action => "/password",
        username => user.username.as_str(),
        error => error,
        csrf => state.interactions.tag("csrf", &csrf_value),
        interaction => state.interactions.seal(interaction),
    };
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let mut response = match theme.render("password.html", context) {
        Ok(body) => html::page(status, body, None, None),
        Err(e) => return error_page(state, &OAuthError::internal(e)),
    };
    if let Some(cookie) = new_cookie {
        let _ = response.add_cookie(&cookie);
    }
    response
}
