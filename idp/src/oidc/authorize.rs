//! The authorization endpoint (RFC 6749 §4.1.1–4.1.2, OIDC Core §3.1.2): validate the
//! request, establish who the user is (session, `prompt`, `max_age`), obtain consent,
//! then issue a code bound to everything the token request must match.

use actix_web::http::StatusCode;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};

use super::error::OAuthError;
use super::params::Params;
use super::request::{self, AuthRequest, AuthorizeError, ResponseMode, Target};
use super::tokens::opaque_token;
use crate::domain::client::Client;
use crate::domain::clock;
use crate::domain::grant::{AuthorizationCode, Grant};
use crate::domain::session::Session;
use crate::domain::user::User;
use crate::http::html;
use crate::http::request_id::record_client_id;
use crate::login::interaction::{Interaction, Step};
use crate::login::{flow, session};
use crate::security::random;
use crate::services::Services;
use crate::startup::AppState;

/// What happens next with a validated request.
pub enum Next {
    /// The user must interact: the page of the interaction's step.
    Interact(Box<Interaction>),
    /// The user asked to create an account (`prompt=create`): the registration page, with
    /// the way back to this sign-in.
    Register(Box<Interaction>),
    /// Answer the client: a code, or an error.
    Respond {
        target: Target,
        params: Vec<(&'static str, String)>,
    },
}

impl Next {
    pub fn interact(interaction: Interaction) -> Self {
        Self::Interact(Box::new(interaction))
    }
}

/// GET and POST /authorize (OIDC Core §3.1.2.1: both must be supported).
pub async fn authorize(req: HttpRequest, body: web::Bytes, state: web::Data<AppState>) -> HttpResponse {
    let raw: &[u8] = if req.method() == actix_web::http::Method::POST {
        let form = req
            .content_type()
            .starts_with("application/x-www-form-urlencoded");
        if !form {
            return error_page(
                &state,
                &OAuthError::invalid_request("the request must be application/x-www-form-urlencoded"),
            );
        }
        &body
    } else {
        req.query_string().as_bytes()
    };
    let params = match Params::parse(raw) {
        Ok(params) => params,
        Err(e) => return error_page(&state, &OAuthError::invalid_request(e.to_string())),
    };
    match start(&state.services, &params, &req).await {
        Ok(next) => render(&state, next),
        Err(AuthorizeError::Page(error)) => error_page(&state, &error),
        Err(AuthorizeError::Redirect { error, target }) => render(&state, error_response(target, &error)),
    }
}

async fn start(services: &Services, params: &Params, req: &HttpRequest) -> Result<Next, AuthorizeError> {
    let client_id = request::client_id(params)?;
    let client = services
        .store
        .find_client(client_id)
        .await
        .map_err(|e| AuthorizeError::Page(e.into()))?
        .ok_or_else(|| AuthorizeError::Page(OAuthError::invalid_request("unknown client_id")))?;
    record_client_id(&client.id);
    // RFC 9126 §4: a pushed request's parameters replace all but client_id. (Any other
    // request_uri is refused by validation, back to the client.)
    let from_par = params
        .get("request_uri")
        .is_some_and(|uri| uri.starts_with(super::par::REQUEST_URI_PREFIX));
    let pushed = match params
        .get("request_uri")
        .filter(|uri| uri.starts_with(super::par::REQUEST_URI_PREFIX))
    {
        Some(reference) => Some(
            super::par::take(services, &client, reference)
                .await
                .map_err(AuthorizeError::Page)?,
        ),
        None => None,
    };
    let params = match pushed {
        // A pushed request's object was verified when it was pushed.
        Some(pushed) => pushed,
        None => super::request_object::resolve(services, &client, params)
            .await
            .map_err(|error| match request::outer_target(params, &client) {
                Some(target) => AuthorizeError::Redirect { error, target },
                None => AuthorizeError::Page(error),
            })?,
    };
    let mut request = request::validate(&params, &client)?;
    if !from_par && client.require_par {
        // RFC 9126 §6: this client's requests must be pushed.
        return Err(AuthorizeError::Redirect {
            error: OAuthError::invalid_request(
                "this client must push its authorization requests to the PAR endpoint",
            ),
            target: Target::of(&request),
        });
    }
    let now = services.clock.now();
    if request.prompts("create") {
        // Initiating User Registration via OpenID Connect 1.0 §3: the registration page; a
        // value the provider does not offer (registration off) is `invalid_request`.
        if !services.settings.registration {
            return Err(AuthorizeError::Redirect {
                error: OAuthError::invalid_request(
                    "prompt=create: this provider does not offer registration",
                ),
                target: Target::of(&request),
            });
        }
        // Back at the sign-in, the request goes on as if `create` had not been asked.
        request.prompt.retain(|p| p != "create");
        return Ok(Next::Register(Box::new(Interaction {
            request,
            login_sid: None,
            issued_at: now.timestamp(),
            step: Step::Authenticate,
            link: None,
            upstream: None,
        })));
    }
    let current = session::current(services, req, now).await;
    let target = Target::of(&request);
    let current = current.map_err(|e| AuthorizeError::Redirect {
        error: e.into(),
        target: target.clone(),
    })?;
    let interaction = Interaction {
        request,
        login_sid: None,
        issued_at: now.timestamp(),
        step: Step::Authenticate,
        link: None,
        upstream: None,
    };
    proceed(services, interaction, current, now)
        .await
        .map_err(|error| AuthorizeError::Redirect { error, target })
}

/// Decides the next step for an interaction, given the browser's session.
pub async fn proceed(
    services: &Services,
    interaction: Interaction,
    current: Option<(Session, User)>,
    now: DateTime<Utc>,
) -> Result<Next, OAuthError> {
    let request = &interaction.request;
    let Some((session, user)) =
        current.filter(|(s, _)| !needs_login(request, s, interaction.login_sid.as_deref(), now))
    else {
        if request.prompts("none") {
            return Ok(error_response(
                Target::of(request),
                &OAuthError::login_required("the user is not logged in"),
            ));
        }
        return Ok(Next::interact(interaction.at(Step::Authenticate)));
    };
    if user.must_change_password {
        // Sessions never belong to such a user (`session::current` drops them); should one
        // appear, it does not count: only a login with the temporary password continues.
        if request.prompts("none") {
            // OIDC Core §3.1.2.6: the user must interact before anything is issued.
            return Ok(error_response(
                Target::of(request),
                &OAuthError::interaction_required("the user must choose a new password"),
            ));
        }
        return Ok(Next::interact(interaction.at(Step::Authenticate)));
    }
    let client = interaction_client(services, request).await?;
    record_client_id(&client.id);
    if let Some(step) = flow::step_up(&services.settings, &client, &user, &session, request) {
        if request.prompts("none") {
            // OIDC Core §3.1.2.6: a second factor needs the user.
            return Ok(error_response(
                Target::of(request),
                &OAuthError::interaction_required("a second factor is required"),
            ));
        }
        return Ok(Next::interact(interaction.at(step)));
    }
    if client.require_verified_email && !user.email_verified {
        if request.prompts("none") {
            // OIDC Core §3.1.2.6: only the user can verify their address.
            return Ok(error_response(
                Target::of(request),
                &OAuthError::interaction_required("the user must verify their email address"),
            ));
        }
        return Ok(Next::interact(
            Interaction {
                login_sid: Some(session.sid.clone()),
                ..interaction
            }
            .at(Step::VerifyEmail),
        ));
    }
    let consented = services
        .store
        .find_consent(&user.id.to_string(), &client.id)
        .await?
        .unwrap_or_default();
    let covered = request.scopes().iter().all(|s| consented.iter().any(|c| c == s));
    let needs_consent = !client.first_party && (!covered || request.prompts("consent"));
    if needs_consent {
        if request.prompts("none") {
            return Ok(error_response(
                Target::of(request),
                &OAuthError::consent_required("the user has not consented"),
            ));
        }
        return Ok(Next::interact(
            Interaction {
                login_sid: Some(session.sid.clone()),
                ..interaction
            }
            .at(Step::Consent),
        ));
    }
    issue_code(services, &client, request, &session, &user, now).await
}

/// The client of a validated request: it may have been removed since.
pub async fn interaction_client(services: &Services, request: &AuthRequest) -> Result<Client, OAuthError> {
    services
        .store
        .find_client(&request.client_id)
        .await?
        .ok_or_else(|| OAuthError::invalid_request("the client no longer exists"))
}

/// OIDC Core §3.1.2.1: `prompt=login` and an exceeded `max_age` demand a fresh login,
/// unless that login happened within this interaction.
fn needs_login(
    request: &AuthRequest,
    session: &Session,
    login_sid: Option<&str>,
    now: DateTime<Utc>,
) -> bool {
    if login_sid == Some(session.sid.as_str()) {
        return false;
    }
    let too_old = request
        .max_age
        .is_some_and(|max| (now - session.auth_time).num_seconds() > max);
    request.prompts("login") || too_old
}

/// Issues the code (RFC 6749 §4.1.2): ≥256 random bits, stored only as a hash, single use,
/// short-lived, bound to client, redirect URI, PKCE challenge, nonce, scope and session.
pub async fn issue_code(
    services: &Services,
    client: &Client,
    request: &AuthRequest,
    session: &Session,
    user: &User,
    now: DateTime<Utc>,
) -> Result<Next, OAuthError> {
    // Whatever page or endpoint got here: nothing is issued until the password is the user's own.
    if user.must_change_password {
        return Err(OAuthError::interaction_required(
            "the user must choose a new password",
        ));
    }
    let grant = Grant {
        id: random::token::<16>().map_err(OAuthError::internal)?,
        client_id: request.client_id.clone(),
        user_id: Some(user.id.to_string()),
        session_id: Some(session.sid.clone()),
        scope: request.scope.clone(),
        offline: request.scopes().contains("offline_access"),
        created_at: now,
        expires_at: clock::after(now, refresh_lifetime_s(services, client)),
        revoked_at: None,
        auth_time: Some(session.auth_time),
        amr: session.amr.clone(),
        // RFC 9449 §10: the code (and so the grant) is bound to this DPoP key.
        dpop_jkt: request.dpop_jkt.clone(),
        resources: request.resources.clone(),
    };
    services.store.create_grant(&grant).await?;
    let (code, code_hash) = opaque_token(services)?;
    services
        .store
        .insert_code(&AuthorizationCode {
            code_hash,
            grant_id: grant.id,
            client_id: request.client_id.clone(),
            user_id: user.id.to_string(),
            session_id: session.sid.clone(),
            // Empty when the request named none: the token request may then omit it.
            redirect_uri: if request.redirect_uri_omitted {
                String::new()
            } else {
                request.redirect_uri.clone()
            },
            scope: request.scope.clone(),
            nonce: request.nonce.clone(),
            code_challenge: request.code_challenge.clone(),
            code_challenge_method: request.code_challenge.as_ref().map(|_| "S256".to_string()),
            auth_time: session.auth_time,
            amr: session.amr.clone(),
            created_at: now,
            expires_at: clock::after(now, code_lifetime_s(services, client)),
            consumed_at: None,
        })
        .await?;
    let issuer = services.settings.issuer_str().to_string();
    let mut params = vec![("code", code)];
    if let Some(state) = &request.state {
        params.push(("state", state.clone()));
    }
    // RFC 9207: the issuer in every authorization response.
    params.push(("iss", issuer));
    Ok(Next::Respond {
        target: Target::of(request),
        params,
    })
}

/// How long the grant (and so every refresh token of it) lives: the client's own refresh-token
/// lifetime, or the deployment's.
/// The deployment's code lifetime; at most 60 s for a FAPI 2.0 client (FAPI 2.0 §5.3.2.1).
fn code_lifetime_s(services: &Services, client: &Client) -> i64 {
    let configured = clock::secs(services.settings.authorization_code_ttl_s);
    match client.profile {
        Some(crate::domain::client::Profile::Fapi2) => configured.min(60),
        None => configured,
    }
}

fn refresh_lifetime_s(services: &Services, client: &Client) -> i64 {
    client
        .refresh_token_ttl_s
        .unwrap_or_else(|| clock::secs(services.settings.refresh_token_ttl_s))
}

/// An error for the client, with `state` (RFC 6749 §4.1.2.1). `iss` is added by `render`.
pub fn error_response(target: Target, error: &OAuthError) -> Next {
    let mut params = vec![
        ("error", error.code.to_string()),
        ("error_description", error.description.clone()),
    ];
    if let Some(state) = &target.state {
        params.push(("state", state.clone()));
    }
    Next::Respond { target, params }
}

/// Turns a decision into the HTTP answer.
pub fn render(state: &AppState, next: Next) -> HttpResponse {
    match next {
        Next::Interact(interaction) => see_other(&format!(
            "{}?interaction={}",
            page_of(&interaction.step),
            state.interactions.seal(&interaction)
        )),
        Next::Register(interaction) => see_other(&format!(
            "/register?interaction={}",
            state.interactions.seal(&interaction)
        )),
        Next::Respond { target, mut params } => {
            if !params.iter().any(|(k, _)| *k == "iss") {
                params.push(("iss", state.services.settings.issuer_str().to_string()));
            }
            respond_to_client(state, &target, &params)
        }
    }
}

/// The page that handles a step.
fn page_of(step: &Step) -> &'static str {
    match step {
        Step::Authenticate => "/login",
        Step::SecondFactor(_) => "/mfa",
        Step::ChangePassword(_) => "/password",
        Step::Enrol { .. } => "/mfa/enrol",
        Step::RecoveryCodes(_) => "/mfa/recovery-codes",
        Step::VerifyEmail => "/login/verify-email",
        Step::Consent => "/consent",
    }
}

fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header(("Location", location))
        .insert_header(("Cache-Control", "no-store"))
        .finish()
}

fn respond_to_client(state: &AppState, target: &Target, params: &[(&'static str, String)]) -> HttpResponse {
    match target.response_mode {
        ResponseMode::Query => {
            let mut location = target.redirect_uri.clone();
            let encoded: String = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(params.iter().map(|(k, v)| (*k, v.as_str())))
                .finish();
            location.push(if location.contains('?') { '&' } else { '?' });
            location.push_str(&encoded);
            HttpResponse::Found()
                .insert_header(("Location", location))
                .insert_header(("Cache-Control", "no-store"))
                .finish()
        }
        // OAuth 2.0 Form Post Response Mode §2: an auto-submitting form, so the code never
        // appears in a URL.
        ResponseMode::FormPost => {
            let nonce = random::token::<16>().unwrap_or_default();
            let (_, theme) = state.themes.get(None);
            let context =
                minijinja::context! { action => target.redirect_uri, params => params, nonce => nonce };
            match theme.render("form_post.html", context) {
                Ok(body) => html::page(
                    StatusCode::OK,
                    body,
                    Some(&html::csp_source(&target.redirect_uri)),
                    Some(&nonce),
                ),
                Err(e) => error_page(state, &OAuthError::internal(e)),
            }
        }
    }
}

/// An error shown at the provider (never redirected: the client cannot be trusted).
pub fn error_page(state: &AppState, error: &OAuthError) -> HttpResponse {
    let (theme_name, theme) = state.themes.get(None);
    let context = minijinja::context! {
        product => "AImpact Identity",
        css_url => format!("/theme/{theme_name}/style.css"),
        error => error.code,
        description => error.description,
    };
    let status = if error.status.is_server_error() {
        error.status
    } else {
        StatusCode::BAD_REQUEST
    };
    match theme.render("error.html", context) {
        Ok(body) => html::page(status, body, None, None),
        Err(e) => {
            tracing::error!(error = %e, "error template failed");
            HttpResponse::build(status)
                .content_type("text/plain; charset=utf-8")
                .body(format!("{}: {}", error.code, error.description))
        }
    }
}
