//! The authorization request (RFC 6749 §4.1.1, OIDC Core §3.1.2.1), validated by small
//! named checks in the order the specifications give. Errors before the client and its
//! redirect URI are established are shown at the provider and never redirected
//! (RFC 6749 §4.1.2.1); every later error goes back to the client.

use serde::{Deserialize, Serialize};

use super::error::OAuthError;
use super::params::Params;
use super::pkce;
use crate::domain::client::{Client, GrantType};
use crate::domain::mfa;
use crate::domain::scope::Scopes;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseMode {
    Query,
    FormPost,
}

/// What the provider's own account page (client `account`) asks a sign-in to do once the
/// user has proven a second factor: set up another factor, or replace the recovery codes.
/// Asked by the private parameter `account_action`, which no other client can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountAction {
    AddFactor,
    NewRecoveryCodes,
}

impl AccountAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AddFactor => "add_factor",
            Self::NewRecoveryCodes => "new_recovery_codes",
        }
    }
}

/// A validated authorization request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub response_mode: ResponseMode,
    pub scope: String,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub prompt: Vec<String>,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    /// The request named no redirect URI (allowed for a pure OAuth request of a client with
    /// one): the token request may then omit it too (RFC 6749 §4.1.3).
    #[serde(default)]
    pub redirect_uri_omitted: bool,
    /// The authentication class this request needs (from `acr_values` or an essential `acr`
    /// claim), when it is stronger than a password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    /// Only for the built-in account page, and only until done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_action: Option<AccountAction>,
    /// The DPoP key the code is bound to (RFC 9449 §10 `dpop_jkt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_jkt: Option<String>,
    /// The resource servers the tokens are for (RFC 8707 `resource`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    /// `idp_hint`: the upstream provider (its slug) to sign in with, skipping the login page
    /// (as Keycloak's `kc_idp_hint`; not a standard parameter, ignored when not a usable slug).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idp_hint: Option<String>,
}

impl AuthRequest {
    pub fn scopes(&self) -> Scopes {
        Scopes::parse(&self.scope).unwrap_or_default()
    }

    pub fn is_openid(&self) -> bool {
        self.scopes().contains("openid")
    }

    pub fn prompts(&self, value: &str) -> bool {
        self.prompt.iter().any(|p| p == value)
    }

    /// Whether the login must include a second factor for this request.
    pub fn asks_second_factor(&self) -> bool {
        self.acr.is_some()
    }
}

/// Where an error about a request goes.
#[derive(Debug)]
pub enum AuthorizeError {
    /// Shown on a page at the provider: the client or redirect URI cannot be trusted.
    Page(OAuthError),
    /// Sent back to the client's redirect URI.
    Redirect { error: OAuthError, target: Target },
}

/// Where and how to answer a client.
#[derive(Debug, Clone)]
pub struct Target {
    pub redirect_uri: String,
    pub response_mode: ResponseMode,
    pub state: Option<String>,
}

impl Target {
    pub fn of(request: &AuthRequest) -> Self {
        Self {
            redirect_uri: request.redirect_uri.clone(),
            response_mode: request.response_mode,
            state: request.state.clone(),
        }
    }
}

/// Step 1 (RFC 6749 §4.1.2.1): the client must be given and known. Returns its id.
pub fn client_id(params: &Params) -> Result<&str, AuthorizeError> {
    params.get("client_id").ok_or_else(|| {
        AuthorizeError::Page(OAuthError::invalid_request("the client_id parameter is missing"))
    })
}

/// Step 2 (RFC 6749 §3.1.2.3, OIDC Core §3.1.2.1): the redirect URI must exactly equal a
/// registered one: simple string comparison, no normalisation, no prefix or wildcard.
fn redirect_uri(params: &Params, client: &Client) -> Result<String, AuthorizeError> {
    let registered: Vec<&str> = client.redirect_uris.iter().map(|u| u.as_str()).collect();
    match params.get("redirect_uri") {
        Some(given) if registered.contains(&given) => Ok(given.to_string()),
        Some(_) => Err(AuthorizeError::Page(OAuthError::invalid_request(
            "the redirect_uri is not registered for this client",
        ))),
        // OAuth 2.0 lets a client with exactly one URI omit it; OpenID requests must send it.
        None if registered.len() == 1
            && !params
                .get("scope")
                .unwrap_or_default()
                .split(' ')
                .any(|s| s == "openid") =>
        {
            Ok(registered[0].to_string())
        }
        None => Err(AuthorizeError::Page(OAuthError::invalid_request(
            "the redirect_uri parameter is missing",
        ))),
    }
}

/// Where to report a request object that fails verification: the registered redirect URI
/// given beside it, if any (never one from inside an object that did not verify).
pub fn outer_target(params: &Params, client: &Client) -> Option<Target> {
    let redirect_uri = redirect_uri(params, client).ok()?;
    Some(Target {
        redirect_uri,
        response_mode: response_mode(params).unwrap_or(ResponseMode::Query),
        state: params.get("state").map(str::to_string),
    })
}

/// Step 3: how to answer (OAuth 2.0 Multiple Response Types §2.1, Form Post Response Mode).
/// An unknown mode is reported through the default mode, `query`.
fn response_mode(params: &Params) -> Result<ResponseMode, OAuthError> {
    match params.get("response_mode") {
        None | Some("query") => Ok(ResponseMode::Query),
        Some("form_post") => Ok(ResponseMode::FormPost),
        Some(_) => Err(OAuthError::invalid_request("unsupported response_mode")),
    }
}

/// Step 4 (OIDC Core §6): a request object or a pushed request's `request_uri` was replaced
/// by its parameters before validation; a `request_uri` to fetch from elsewhere is refused.
fn no_request_objects(params: &Params) -> Result<(), OAuthError> {
    if params.contains("request_uri") {
        return Err(OAuthError::request_uri_not_supported(
            "request_uri is supported only from the pushed authorization request endpoint",
        ));
    }
    Ok(())
}

/// Step 5 (RFC 6749 §3.1.1): only the code flow.
fn response_type(params: &Params, client: &Client) -> Result<(), OAuthError> {
    match params.get("response_type") {
        None => Err(OAuthError::invalid_request(
            "the response_type parameter is missing",
        )),
        Some("code") if client.allows_grant(GrantType::AuthorizationCode) => Ok(()),
        Some("code") => Err(OAuthError::unauthorized_client(
            "this client may not use the authorization code flow",
        )),
        Some(_) => Err(OAuthError::unsupported_response_type(
            "only response_type=code is supported",
        )),
    }
}

/// Step 6 (RFC 6749 §3.3): scopes must be well-formed; those the client may not have are
/// dropped (the grant is narrower, as §3.3 allows), but an empty result is an error.
fn scope(params: &Params, client: &Client) -> Result<Scopes, OAuthError> {
    let requested = Scopes::parse(params.get("scope").unwrap_or_default())
        .ok_or_else(|| OAuthError::invalid_scope("the scope parameter is malformed"))?;
    let granted = requested.intersect(&client.scopes);
    if granted.is_empty() {
        return Err(OAuthError::invalid_scope(
            "none of the requested scopes is allowed for this client",
        ));
    }
    Ok(granted)
}

/// Step 7 (RFC 7636 §4.3, RFC 9700 §2.1.1): PKCE with S256 only; required of public
/// clients and of clients configured to require it.
fn pkce_challenge(params: &Params, client: &Client) -> Result<Option<String>, OAuthError> {
    let challenge = params.get("code_challenge");
    match (challenge, params.get("code_challenge_method")) {
        (Some(c), Some("S256")) if pkce::is_valid_verifier_or_challenge(c) => Ok(Some(c.to_string())),
        (Some(_), Some("S256")) => Err(OAuthError::invalid_request("the code_challenge is malformed")),
        (Some(_), None) | (Some(_), Some("plain")) => Err(OAuthError::invalid_request(
            "code_challenge_method must be S256; plain is not allowed",
        )),
        (_, Some(_)) => Err(OAuthError::invalid_request("unsupported code_challenge_method")),
        (None, None) if client.require_pkce => {
            Err(OAuthError::invalid_request("this client must use PKCE (S256)"))
        }
        (None, None) => Ok(None),
    }
}

/// Step 8 (OIDC Core §3.1.2.1): `prompt` values; `none` must stand alone.
fn prompt(params: &Params) -> Result<Vec<String>, OAuthError> {
    let values: Vec<String> = params
        .get("prompt")
        .unwrap_or_default()
        .split(' ')
        .filter(|p| !p.is_empty())
        .map(String::from)
        .collect();
    if values.iter().any(|p| {
        !matches!(
            p.as_str(),
            "none" | "login" | "consent" | "select_account" | "create"
        )
    }) {
        return Err(OAuthError::invalid_request("unsupported prompt value"));
    }
    if values.iter().any(|p| p == "none") && values.len() > 1 {
        return Err(OAuthError::invalid_request(
            "prompt=none cannot be combined with other values",
        ));
    }
    Ok(values)
}

/// Step 9: `max_age` is a non-negative number of seconds.
fn max_age(params: &Params) -> Result<Option<i64>, OAuthError> {
    params
        .get("max_age")
        .map(|raw| {
            raw.parse::<i64>()
                .ok()
                .filter(|v| *v >= 0)
                .ok_or_else(|| OAuthError::invalid_request("max_age must be a non-negative integer"))
        })
        .transpose()
}

/// The account page's action: ignored from any other client, like any unknown parameter.
fn account_action(params: &Params, client: &Client) -> Option<AccountAction> {
    if client.id != api_types::ACCOUNT_CLIENT_ID {
        return None;
    }
    [AccountAction::AddFactor, AccountAction::NewRecoveryCodes]
        .into_iter()
        .find(|action| params.get("account_action") == Some(action.as_str()))
}

/// Step 10 (OIDC Core §3.1.2.1 `acr_values`, §5.5.1.1 the `acr` claim): the class the login
/// must reach. Voluntary values name acceptable classes, so the weakest one we know is
/// needed and unknown ones are ignored; an essential `acr` claim none of whose values we can
/// reach is refused (OpenID Connect Core Unmet Authentication Requirements 1.0 §3), never
/// answered with a weaker login.
fn required_acr(params: &Params) -> Result<Option<String>, OAuthError> {
    let weakest = |values: &[String]| {
        values
            .iter()
            .filter_map(|v| mfa::acr_level(v).map(|level| (level, v.clone())))
            .min()
            .map(|(_, v)| v)
    };
    let mut wanted = None;
    if let Some(raw) = params.get("claims") {
        let claims: serde_json::Value = serde_json::from_str(raw)
            .map_err(|_| OAuthError::invalid_request("the claims parameter is not a JSON object"))?;
        if !claims.is_object() {
            return Err(OAuthError::invalid_request(
                "the claims parameter is not a JSON object",
            ));
        }
        let acr = &claims["id_token"]["acr"];
        if acr["essential"] == true {
            let values: Vec<String> = match (&acr["value"], &acr["values"]) {
                (serde_json::Value::String(v), _) => vec![v.clone()],
                (_, serde_json::Value::Array(vs)) => {
                    vs.iter().filter_map(|v| v.as_str().map(String::from)).collect()
                }
                _ => mfa::ACR_VALUES_SUPPORTED.map(String::from).to_vec(),
            };
            wanted = Some(weakest(&values).ok_or_else(|| {
                OAuthError::unmet_authentication_requirements(
                    "none of the essential acr values can be met by this provider",
                )
            })?);
        }
    }
    if wanted.is_none()
        && let Some(raw) = params.get("acr_values")
    {
        let values: Vec<String> = raw
            .split(' ')
            .filter(|v| !v.is_empty())
            .map(String::from)
            .collect();
        wanted = weakest(&values);
    }
    Ok(wanted.filter(|acr| mfa::acr_level(acr) > mfa::acr_level(mfa::ACR_PASSWORD)))
}

/// Step 11 (RFC 9449 §10): `dpop_jkt` is a base64url SHA-256 thumbprint (43 characters).
fn dpop_jkt(params: &Params) -> Result<Option<String>, OAuthError> {
    match params.get("dpop_jkt") {
        None => Ok(None),
        Some(jkt)
            if jkt.len() == 43
                && jkt
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            Ok(Some(jkt.to_string()))
        }
        Some(_) => Err(OAuthError::invalid_request(
            "dpop_jkt must be the base64url SHA-256 thumbprint of a key",
        )),
    }
}

/// Validates everything after the client was found. `client` must be the one `params` names.
pub fn validate(params: &Params, client: &Client) -> Result<AuthRequest, AuthorizeError> {
    let redirect_uri = redirect_uri(params, client)?;
    let state = params.get("state").map(str::to_string);
    let mode_result = response_mode(params);
    let target = Target {
        redirect_uri: redirect_uri.clone(),
        response_mode: *mode_result.as_ref().unwrap_or(&ResponseMode::Query),
        state: state.clone(),
    };
    let to_client = |error: OAuthError| AuthorizeError::Redirect {
        error,
        target: target.clone(),
    };
    let response_mode = mode_result.map_err(to_client)?;
    no_request_objects(params).map_err(to_client)?;
    response_type(params, client).map_err(to_client)?;
    let scope = scope(params, client).map_err(to_client)?;
    let code_challenge = pkce_challenge(params, client).map_err(to_client)?;
    let prompt = prompt(params).map_err(to_client)?;
    let max_age = max_age(params).map_err(to_client)?;
    let acr = required_acr(params).map_err(to_client)?;
    let dpop_jkt = dpop_jkt(params).map_err(to_client)?;
    // Step 12 (RFC 8707 §2): resources the client may ask for, or `invalid_target`.
    let resources = super::resources::requested(params, client).map_err(to_client)?;
    Ok(AuthRequest {
        client_id: client.id.clone(),
        redirect_uri,
        response_mode,
        scope: scope.to_string(),
        state,
        nonce: params.get("nonce").map(str::to_string),
        code_challenge,
        prompt,
        max_age,
        login_hint: params.get("login_hint").map(|h| h.chars().take(256).collect()),
        redirect_uri_omitted: params.get("redirect_uri").is_none(),
        acr,
        account_action: account_action(params, client),
        dpop_jkt,
        resources,
        idp_hint: params
            .get("idp_hint")
            .filter(|h| crate::domain::upstream::parse_slug(h).is_ok())
            .map(str::to_string),
    })
}
