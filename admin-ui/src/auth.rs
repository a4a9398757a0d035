//! The portal logs in like any OIDC client of this provider: authorization code with PKCE
//! (RFC 7636) as the public client `admin-portal`, tokens kept in session storage (gone
//! when the tab closes), silent refresh with the rotating refresh token, and logout
//! through the end-session endpoint.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gloo_net::http::Request;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

const TOKENS: &str = "aimpact.admin.tokens";
const PENDING: &str = "aimpact.admin.login";
const CLIENT_ID: &str = api_types::PORTAL_CLIENT_ID;
const SCOPE: &str = "openid profile offline_access";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub id_token: Option<String>,
    /// Milliseconds since the epoch.
    pub expires_at: f64,
}

#[derive(Serialize, Deserialize)]
struct Pending {
    state: String,
    verifier: String,
    return_to: String,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: f64,
    refresh_token: Option<String>,
    id_token: Option<String>,
}

#[derive(Deserialize)]
struct TokenError {
    error: String,
    error_description: Option<String>,
}

fn window() -> Result<web_sys::Window, String> {
    web_sys::window().ok_or_else(|| "no window".to_string())
}

fn storage() -> Result<web_sys::Storage, String> {
    window()?
        .session_storage()
        .ok()
        .flatten()
        .ok_or_else(|| "session storage is unavailable".to_string())
}

pub fn origin() -> String {
    window()
        .ok()
        .and_then(|w| w.location().origin().ok())
        .unwrap_or_default()
}

fn redirect_uri() -> String {
    format!("{}/admin/callback", origin())
}

fn now_ms() -> f64 {
    js_sys::Date::now()
}

fn random(bytes: usize) -> Result<String, String> {
    let mut buf = vec![0u8; bytes];
    window()?
        .crypto()
        .and_then(|c| c.get_random_values_with_u8_array(&mut buf))
        .map_err(|_| "the browser has no secure random source".to_string())?;
    Ok(URL_SAFE_NO_PAD.encode(buf))
}

fn read<T: for<'de> Deserialize<'de>>(key: &str) -> Option<T> {
    let text = storage().ok()?.get_item(key).ok()??;
    serde_json::from_str(&text).ok()
}

fn write<T: Serialize>(key: &str, value: &T) {
    if let (Ok(s), Ok(text)) = (storage(), serde_json::to_string(value)) {
        let _ = s.set_item(key, &text);
    }
}

fn remove(key: &str) {
    if let Ok(s) = storage() {
        let _ = s.remove_item(key);
    }
}

pub fn tokens() -> Option<Tokens> {
    read(TOKENS)
}

/// Sends the browser to the provider's login, remembering where to come back to.
pub fn begin_login() -> Result<(), String> {
    let verifier = random(32)?;
    let state = random(16)?;
    let location = window()?.location();
    let here = location.pathname().unwrap_or_default() + &location.search().unwrap_or_default();
    let return_to = if here.starts_with("/admin/callback") {
        "/admin/".to_string()
    } else {
        here
    };
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    write(
        PENDING,
        &Pending {
            state: state.clone(),
            verifier,
            return_to,
        },
    );
    let query = [
        ("response_type", "code"),
        ("client_id", CLIENT_ID),
        ("redirect_uri", &redirect_uri()),
        ("scope", SCOPE),
        ("state", &state),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ];
    location
        .assign(&format!("/authorize?{}", encode(&query)))
        .map_err(|_| "could not leave the page".to_string())
}

/// Finishes the login on `/admin/callback`: checks `state`, redeems the code. Returns the
/// path to go back to.
pub async fn complete_login() -> Result<String, String> {
    let location = window()?.location();
    let search = location.search().unwrap_or_default();
    let params: Vec<(String, String)> = search
        .trim_start_matches('?')
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect();
    let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    if let Some(error) = param("error") {
        return Err(param("error_description").unwrap_or(error));
    }
    let pending: Pending = read(PENDING).ok_or("this login was not started here; try again")?;
    remove(PENDING);
    // RFC 6749 §10.12: the state ties the answer to the request this tab made.
    if param("state").as_deref() != Some(pending.state.as_str()) {
        return Err("the login answer does not match the request; try again".into());
    }
    let code = param("code").ok_or("the provider sent no code")?;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", &redirect_uri()),
        ("client_id", CLIENT_ID),
        ("code_verifier", pending.verifier.as_str()),
    ];
    token_request(&form).await?;
    Ok(pending.return_to)
}

/// Uses the refresh token for fresh tokens. Err when there is none or it no longer works.
pub async fn refresh() -> Result<(), String> {
    let current = tokens().ok_or("not logged in")?;
    let refresh_token = current.refresh_token.clone().ok_or("no refresh token")?;
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token.as_str()),
        ("client_id", CLIENT_ID),
    ];
    token_request(&form).await.inspect_err(|_| remove(TOKENS))
}

async fn token_request(form: &[(&str, &str)]) -> Result<(), String> {
    let response = Request::post("/token")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(encode(form))
        .map_err(|e| e.to_string())?
        .send()
        .await
        .map_err(|e| format!("the provider did not answer: {e}"))?;
    if !response.ok() {
        let error: Option<TokenError> = response.json().await.ok();
        return Err(error
            .map(|e| e.error_description.unwrap_or(e.error))
            .unwrap_or_else(|| "the token request failed".into()));
    }
    let answer: TokenResponse = response.json().await.map_err(|e| e.to_string())?;
    let previous = tokens();
    write(
        TOKENS,
        &Tokens {
            access_token: answer.access_token,
            // A refresh answer may omit what did not change (RFC 6749 §6).
            refresh_token: answer
                .refresh_token
                .or_else(|| previous.as_ref().and_then(|p| p.refresh_token.clone())),
            id_token: answer.id_token.or_else(|| previous.and_then(|p| p.id_token)),
            expires_at: now_ms() + answer.expires_in * 1000.0,
        },
    );
    Ok(())
}

/// A valid access token, refreshed first when it is about to expire.
pub async fn access_token() -> Result<String, String> {
    let current = tokens().ok_or("not logged in")?;
    if current.expires_at - now_ms() > 30_000.0 {
        return Ok(current.access_token);
    }
    refresh().await?;
    tokens()
        .map(|t| t.access_token)
        .ok_or_else(|| "not logged in".into())
}

/// Forgets the tokens and ends the provider session (RP-Initiated Logout 1.0 §2).
pub fn logout() {
    let id_token = tokens().and_then(|t| t.id_token);
    remove(TOKENS);
    let post_logout = format!("{}/admin/", origin());
    let mut query = vec![
        ("client_id", CLIENT_ID),
        ("post_logout_redirect_uri", post_logout.as_str()),
    ];
    if let Some(hint) = id_token.as_deref() {
        query.push(("id_token_hint", hint));
    }
    if let Ok(w) = window() {
        let _ = w.location().assign(&format!("/logout?{}", encode(&query)));
    }
}

pub fn encode(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                js_sys::encode_uri_component(k),
                js_sys::encode_uri_component(v)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn decode(raw: &str) -> String {
    js_sys::decode_uri_component(&raw.replace('+', " "))
        .map(String::from)
        .unwrap_or_default()
}
