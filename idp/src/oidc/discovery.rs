//! Provider metadata: OpenID Connect Discovery 1.0 §3 at `/.well-known/openid-configuration`
//! and RFC 8414 at `/.well-known/oauth-authorization-server`. Built once at start-up and
//! served from bytes with `ETag` and `Cache-Control`.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::config::Settings;
use crate::startup::AppState;

/// The serialised document and its ETag.
#[derive(Debug, Clone)]
pub struct Discovery {
    pub body: web::Bytes,
    pub etag: String,
}

/// Scopes and the claims each releases (OIDC Core §5.4).
pub const SCOPES_SUPPORTED: [&str; 4] = ["openid", "profile", "email", "offline_access"];
pub const CLAIMS_SUPPORTED: [&str; 16] = [
    "sub",
    "iss",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "acr",
    "amr",
    "azp",
    "sid",
    "at_hash",
    "name",
    "preferred_username",
    "email",
    "email_verified",
];

/// Client authentication methods (OIDC Core §9, RFC 7523); `none` last.
const AUTH_METHODS: [&str; 5] = [
    "client_secret_basic",
    "client_secret_post",
    "client_secret_jwt",
    "private_key_jwt",
    "none",
];

/// JWS algorithms of client assertions (RFC 8414 §2 `*_auth_signing_alg_values_supported`).
fn auth_signing_algs() -> Vec<&'static str> {
    let mut algs = crate::domain::client::CLIENT_SECRET_JWT_ALGS.to_vec();
    algs.extend(crate::domain::client::CLIENT_ASSERTION_ALGS);
    algs
}

/// The `prompt` values the authorization endpoint takes.
pub fn prompt_values_supported(settings: &Settings) -> Vec<&'static str> {
    let mut values = vec!["none", "login", "consent", "select_account"];
    if settings.registration {
        values.push("create");
    }
    values
}

impl Discovery {
    pub fn build(settings: &Settings) -> Self {
        let issuer = settings.issuer_str();
        let url = |path: &str| format!("{issuer}{path}");
        let document = serde_json::json!({
            "issuer": issuer,
            "authorization_endpoint": url("/authorize"),
            "token_endpoint": url("/token"),
            "userinfo_endpoint": url("/userinfo"),
            "jwks_uri": url("/jwks"),
            "revocation_endpoint": url("/revoke"),
            "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
            "revocation_endpoint_auth_signing_alg_values_supported": auth_signing_algs(),
            "introspection_endpoint": url("/introspect"),
            // Introspection is for confidential clients only.
            "introspection_endpoint_auth_methods_supported": &AUTH_METHODS[..4],
            "introspection_endpoint_auth_signing_alg_values_supported": auth_signing_algs(),
            "introspection_signing_alg_values_supported": ["RS256"],
            "end_session_endpoint": url("/logout"),
            "backchannel_logout_supported": true,
            "backchannel_logout_session_supported": true,
            "frontchannel_logout_supported": false,
            "scopes_supported": SCOPES_SUPPORTED,
            "response_types_supported": ["code"],
            "response_modes_supported": ["query", "form_post"],
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": crate::domain::client::SIGNING_ALGS,
            "token_endpoint_auth_methods_supported": AUTH_METHODS,
            "token_endpoint_auth_signing_alg_values_supported": auth_signing_algs(),
            "code_challenge_methods_supported": ["S256"],
            // RFC 9449 §5.1: proofs at the token endpoint and userinfo.
            "dpop_signing_alg_values_supported": crate::oidc::dpop::ALGS,
            "claims_supported": CLAIMS_SUPPORTED,
            "claim_types_supported": ["normal"],
            // The `claims` parameter is read for an essential `acr` (OIDC Core §5.5.1.1);
            // other requested claims follow the scopes.
            "claims_parameter_supported": true,
            "acr_values_supported": crate::domain::mfa::ACR_VALUES_SUPPORTED,
            // RFC 9126 §5; a client may require it for itself (its `require_par`).
            "pushed_authorization_request_endpoint": url("/par"),
            "require_pushed_authorization_requests": false,
            // RFC 9101: signed request objects by value (and inside pushed requests).
            "request_parameter_supported": true,
            "request_object_signing_alg_values_supported": crate::domain::client::CLIENT_ASSERTION_ALGS,
            "request_uri_parameter_supported": false,
            "require_request_uri_registration": false,
            "authorization_response_iss_parameter_supported": true,
            "ui_locales_supported": ["en"],
            // Initiating User Registration via OpenID Connect 1.0 §4: `create` only while
            // self-registration is on.
            "prompt_values_supported": prompt_values_supported(settings),
        });
        let body = web::Bytes::from(document.to_string());
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &body);
        let etag = format!(
            "\"{}\"",
            digest.as_ref()[..12]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        Self { body, etag }
    }
}

pub async fn metadata(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    cached_json(&req, state.discovery.body.clone(), &state.discovery.etag, 3600)
}

/// A cacheable JSON answer, or 304 when the client already has this version.
pub fn cached_json(req: &HttpRequest, body: web::Bytes, etag: &str, max_age: u32) -> HttpResponse {
    let cache_control = format!("public, max-age={max_age}");
    let matches = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    if matches {
        return HttpResponse::NotModified()
            .insert_header((header::ETAG, etag))
            .insert_header((header::CACHE_CONTROL, cache_control))
            .finish();
    }
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, cache_control))
        .body(body)
}
