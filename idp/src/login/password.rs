//! The password-change step: a user whose password an administrator set must choose their
//! own before anything is issued. Reached only from a login that used the temporary
//! password (the interaction is then at [`Step::ChangePassword`], bound to this browser);
//! the page asks for the temporary password again, and guesses there pass the same
//! brute-force gate as the login form. No session exists until the change is made.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::SecretString;
use serde::Deserialize;

use super::flow;
use super::interaction::{Interaction, Proven, Step};
use super::pages::{
    InteractionQuery, PRODUCT, csrf_cookie, open_interaction, pass_gate, submitted_interaction,
    too_many_attempts, wrong_step,
};
use super::protection;
use crate::audit::{EventType, Outcome, SecurityEvent};
use crate::domain::user::{User, UserStatus};
use crate::http::html;
use crate::http::meta::RequestMeta;
use crate::manage::{record, sessions};
use crate::oidc::authorize::{self, error_page, render};
use crate::oidc::error::OAuthError;
use crate::security::password::{self, Verification};
use crate::startup::AppState;

#[derive(Deserialize)]
pub struct PasswordForm {
    csrf: String,
    interaction: String,
    #[serde(default)]
    current_password: String,
    new_password: String,
    confirm_password: String,
}

/// The user this password-change step is for and what they proved, or the page to answer
/// instead: the login page when there is nothing (left) to change, an error page for an
/// interaction at another step or begun in another browser.
async fn changing(
    state: &AppState,
    req: &HttpRequest,
    interaction: &Interaction,
) -> Result<(User, Proven), HttpResponse> {
    let Step::ChangePassword(_) = interaction.step else {
        return Err(wrong_step(state));
    };
    let proven = flow::proven_step(state, req, interaction).await?;
    match state.services.store.find_user(proven.user_id).await {
        Ok(Some(user)) if user.status == UserStatus::Active && user.must_change_password => {
            Ok((user, proven))
        }
        Ok(_) => Err(render(
            state,
            authorize::Next::interact(interaction.clone().at(Step::Authenticate)),
        )),
        Err(e) => Err(error_page(state, &e.into())),
    }
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
    match changing(&state, &req, &interaction).await {
        Ok((user, _)) => page(&state, &req, &interaction, &user, None),
        Err(page) => page,
    }
}

pub async fn submit(
    req: HttpRequest,
    form: web::Form<PasswordForm>,
    state: web::Data<AppState>,
    meta: RequestMeta,
) -> HttpResponse {
    let form = form.into_inner();
    let interaction = match submitted_interaction(&state, &req, &form.interaction, &form.csrf) {
        Ok(i) => i,
        Err(page) => return page,
    };
    let (user, proven) = match changing(&state, &req, &interaction).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let services = &state.services;
    let account_key = user.username.key();
    let username = user.username.as_str().to_string();
    match pass_gate(&state, &account_key, &username, &interaction, &meta).await {
        Ok(None) => {}
        Ok(Some((message, retry_after_s))) => {
            return too_many_attempts(
                page(&state, &req, &interaction, &user, Some(&message)),
                retry_after_s,
            );
        }
        Err(e) => return error_page(&state, &e.into()),
    }
    let stored = match services.store.password_phc(user.id).await {
        Ok(phc) => phc,
        Err(e) => return error_page(&state, &e.into()),
    };
    let current = SecretString::from(form.current_password);
    match services.passwords.verify(&current, stored).await {
        Ok(Verification::Valid { .. }) => {}
        Ok(Verification::Invalid) => {
            let now = services.clock.now();
            if let Err(e) =
                protection::after_failure(services, &account_key, Some(user.id.to_string()), &meta, now).await
            {
                return error_page(&state, &e.into());
            }
            return page(
                &state,
                &req,
                &interaction,
                &user,
                Some("The temporary password is incorrect."),
            );
        }
        Err(e) => return error_page(&state, &OAuthError::internal(e)),
    }
    if form.new_password != form.confirm_password {
        return page(
            &state,
            &req,
            &interaction,
            &user,
            Some("The two passwords differ."),
        );
    }
    if let Err(problem) = password::check_policy(&form.new_password, &password::Owner::of(&user)) {
        return page(&state, &req, &interaction, &user, Some(&problem));
    }
    if secrecy::ExposeSecret::expose_secret(&current) == form.new_password {
        return page(
            &state,
            &req,
            &interaction,
            &user,
            Some("Choose a password different from the temporary one."),
        );
    }
    let secret = SecretString::from(form.new_password);
    let phc = match services.passwords.hash(&secret).await {
        Ok(phc) => phc,
        Err(e) => return error_page(&state, &OAuthError::internal(e)),
    };
    let now = services.clock.now();
    if let Err(e) = services.store.replace_password(user.id, &phc, false, now).await {
        return error_page(&state, &e.into());
    }
    // A changed password ends whatever else holds the account (none should exist: setting
    // the temporary password already ended them).
    let ended = match sessions::end_access(services, &user, None).await {
        Ok(ended) => ended,
        Err(e) => return error_page(&state, &OAuthError::internal(e)),
    };
    let mut event = SecurityEvent::new(EventType::PasswordChanged, Outcome::Success, now);
    event.user_id = Some(user.id.to_string());
    event.username = Some(username);
    event.actor_id = Some(user.id.to_string());
    event.details = serde_json::json!({
        "temporary": false,
        "forced": true,
        "sessions_ended": ended.sessions,
        "grants_revoked": ended.grants,
    });
    record(services, meta.stamp(event)).await;
    flow::next(&state, &req, interaction, proven, &meta).await
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
        min_length => password::min_chars(&password::Owner::of(user)),
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
