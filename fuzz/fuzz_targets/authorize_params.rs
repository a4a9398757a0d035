//! Authorization (and token) request parameters: form/query parsing, then the full
//! validation of an authorization request against a registered client.
#![no_main]

use idp::domain::client::{Client, ClientType, GrantType, RedirectUri, TokenEndpointAuthMethod};
use idp::oidc::params::Params;
use idp::oidc::request;
use libfuzzer_sys::fuzz_target;

fn client() -> Client {
    let now = chrono::DateTime::UNIX_EPOCH;
    Client {
        id: "app".into(),
        name: "App".into(),
        client_type: ClientType::Public,
        secret_hash: None,
        redirect_uris: vec![RedirectUri::parse("https://app.example.com/cb", ClientType::Public).unwrap()],
        post_logout_redirect_uris: vec![],
        backchannel_logout_uri: None,
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        scopes: vec!["openid".into(), "profile".into(), "offline_access".into()],
        token_endpoint_auth_method: TokenEndpointAuthMethod::None,
        id_token_signed_response_alg: "RS256".into(),
        access_token_signing_alg: None,
        first_party: false,
        require_pkce: true,
        access_token_ttl_s: None,
        refresh_token_ttl_s: None,
        refresh_idle_ttl_s: None,
        refresh_reuse_window_s: 0,
        rate_limit_token_per_minute: None,
        rate_limit_introspect_per_minute: None,
        mfa: None,
        require_verified_email: false,
        secret_sealed: None,
        jwks: None,
        jwks_uri: None,
        require_par: false,
        dpop_bound_access_tokens: false,
        profile: None,
        resources: vec!["https://api.example.com/".into()],
        theme: None,
        created_at: now,
        updated_at: now,
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(params) = Params::parse(data) {
        let _ = request::client_id(&params);
        let _ = request::validate(&params, &client());
    }
});
