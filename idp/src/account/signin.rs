//! How the account page knows who is there: it is an OpenID Connect client of this very
//! provider (client `account`, authorization code with PKCE, RFC 7636), so every rule of a
//! sign-in applies to it as to any relying party: the login page, MFA and its enrolment,
//! lockout, disabled accounts, `prompt=login` for a fresh sign-in. The code is redeemed by
//! the token endpoint's own code (no HTTP hop from the server to itself, which a load
//! balancer may not even allow), and the access token it gets is kept in an `HttpOnly`
//! cookie and checked on every request like any bearer token (signature, expiry,
//! deny-list), so signing out or revoking the session ends the account page at once.

use actix_web::cookie::SameSite;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use api_types::ACCOUNT_CLIENT_ID;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::domain::user::{User, UserStatus};
use crate::http::meta::RequestMeta;
use crate::login::cookies;
use crate::login::recovery::notice;
use crate::oidc::access_check::{self, AccessCheck};
use crate::oidc::authorize::error_page;
use crate::oidc::error::OAuthError;
use crate::oidc::grants::authorization_code;
use crate::oidc::params::Params;
use crate::oidc::pkce;
use crate::security::random;
use crate::startup::AppState;
use crate::store::StoreError;

/// The cookie holding the account page's access token.
pub const ACCESS: &str = "idp_account";
/// The cookie holding `state` and the PKCE verifier while a sign-in is under way.
const PENDING: &str = "idp_account_signin";
/// How long a sign-in may take before its `state` is forgotten.
const PENDING_TTL_S: i64 = 900;

/// The signed-in user of the account page, and the provider session they signed in with.
pub struct Holder {
    pub user: User,
    pub sid: Option<String>,
}

/// The account page's user, when this browser holds a valid access token of the account
/// client whose user is active; `None` sends them to sign in.
pub async fn current(state: &AppState, req: &HttpRequest) -> Result<Option<Holder>, StoreError> {
    let services = &state.services;
    let Some(cookie) = req.cookie(&cookies::name(&services.settings, ACCESS)) else {
        return Ok(None);
    };
    let claims = match access_check::check(services, cookie.value()).await {
        AccessCheck::Active(claims) => claims,
        AccessCheck::Inactive => return Ok(None),
        AccessCheck::Unknown(cause) => return Err(StoreError::Unavailable(cause)),
    };
    let claim = |name: &str| claims.get(name).and_then(|v| v.as_str());
    if claim("client_id") != Some(ACCOUNT_CLIENT_ID) {
        return Ok(None);
    }
    let Some(id) = claim("sub").and_then(|s| uuid::Uuid::parse_str(s).ok()) else {
        return Ok(None);
    };
    Ok(match services.store.find_user(id).await? {
        Some(user) if user.status == UserStatus::Active && !user.must_change_password => Some(Holder {
            user,
            sid: claim("sid").map(str::to_string),
        }),
        _ => None,
    })
}

/// Extra parameters of an authorization request: `acr_values` to enrol or prove a second
/// factor, `prompt=login` to ask for the password again.
#[derive(Default)]
pub struct Ask<'a> {
    pub acr_values: Option<&'a str>,
    pub prompt: Option<&'a str>,
    /// What to do once a second factor is proven (this client's private parameter).
    pub account_action: Option<crate::oidc::request::AccountAction>,
}

/// Starts a sign-in: a fresh `state` and PKCE verifier in a short-lived cookie, and a
/// redirect to the authorization endpoint.
pub fn begin(state: &AppState, ask: Ask<'_>) -> HttpResponse {
    let settings = &state.services.settings;
    let (Ok(csrf_state), Ok(verifier)) = (random::token::<16>(), random::token::<32>()) else {
        return error_page(state, &OAuthError::internal("the system random generator failed"));
    };
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("response_type", "code")
        .append_pair("client_id", ACCOUNT_CLIENT_ID)
        .append_pair("redirect_uri", &callback_uri(state))
        .append_pair("scope", "openid profile email")
        .append_pair("state", &csrf_state)
        .append_pair("code_challenge", &pkce::challenge_s256(&verifier))
        .append_pair("code_challenge_method", "S256");
    if let Some(acr) = ask.acr_values {
        query.append_pair("acr_values", acr);
    }
    if let Some(prompt) = ask.prompt {
        query.append_pair("prompt", prompt);
    }
    if let Some(action) = ask.account_action {
        query.append_pair("account_action", action.as_str());
    }
    // Lax, not Strict: the sign-in may begin from a link in a mail, and the redirects that
    // follow count as cross-site for a Strict cookie.
    let pending = cookies::build(
        settings,
        PENDING,
        format!("{csrf_state}.{verifier}"),
        SameSite::Lax,
        Some(PENDING_TTL_S),
    );
    HttpResponse::SeeOther()
        .insert_header(("Location", format!("/authorize?{}", query.finish())))
        .insert_header(("Cache-Control", "no-store"))
        .cookie(pending)
        .finish()
}

fn callback_uri(state: &AppState) -> String {
    format!("{}/account/callback", state.services.settings.issuer_str())
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// `GET /account/callback`: the authorization response (RFC 6749 §4.1.2).
pub async fn callback(
    req: HttpRequest,
    query: web::Query<CallbackQuery>,
    state: web::Data<AppState>,
    meta: RequestMeta,
) -> HttpResponse {
    let settings = &state.services.settings;
    let pending = req
        .cookie(&cookies::name(settings, PENDING))
        .map(|c| c.value().to_string());
    let Some((expected_state, verifier)) = pending.as_deref().and_then(|p| p.split_once('.')) else {
        return again(&state);
    };
    // RFC 6749 §10.12: the response must carry the state this browser sent.
    let same_state = query
        .state
        .as_deref()
        .is_some_and(|s| bool::from(s.as_bytes().ct_eq(expected_state.as_bytes())));
    if !same_state {
        return again(&state);
    }
    if let Some(error) = &query.error {
        tracing::info!(error = %error, "the account page's sign-in ended without a code");
        return notice(
            &state,
            StatusCode::OK,
            "Not signed in",
            "The sign-in did not complete.",
            Some(("/account", "Try again")),
        );
    }
    let Some(code) = &query.code else {
        return again(&state);
    };
    let services = &state.services;
    let client = match services.store.find_client(ACCOUNT_CLIENT_ID).await {
        Ok(Some(client)) => client,
        Ok(None) => {
            return error_page(
                &state,
                &OAuthError::internal("the account client is not registered"),
            );
        }
        Err(e) => return error_page(&state, &e.into()),
    };
    let mut params = Params::default();
    params.insert("grant_type", "authorization_code");
    params.insert("code", code);
    params.insert("redirect_uri", &callback_uri(&state));
    params.insert("code_verifier", verifier);
    let tokens = match authorization_code::exchange(services, &client, &params, &meta, None).await {
        Ok(tokens) => tokens,
        Err(e) => {
            tracing::info!(error = %e, "the account page's code was refused");
            return again(&state);
        }
    };
    let access = cookies::build(
        settings,
        ACCESS,
        tokens.access_token,
        SameSite::Lax,
        Some(tokens.expires_in),
    );
    HttpResponse::SeeOther()
        .insert_header(("Location", "/account"))
        .insert_header(("Cache-Control", "no-store"))
        .cookie(access)
        .cookie(cookies::removal(settings, PENDING))
        .finish()
}

/// A callback that cannot be trusted or used: nothing is signed in; start over.
fn again(state: &AppState) -> HttpResponse {
    notice(
        state,
        StatusCode::BAD_REQUEST,
        "Not signed in",
        "This sign-in link has expired or was not started in this browser.",
        Some(("/account", "Sign in again")),
    )
}

/// Forgets the account page's access token in this browser.
pub fn forget(state: &AppState) -> actix_web::cookie::Cookie<'static> {
    cookies::removal(&state.services.settings, ACCESS)
}
