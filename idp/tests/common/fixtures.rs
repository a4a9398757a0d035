//! Records for the store contract tests.

use chrono::{Duration, TimeZone, Utc};
use idp::domain::client::{Client, ClientType, GrantType, RedirectUri, TokenEndpointAuthMethod};
use idp::domain::user::{Email, NewUser, Username};

pub fn new_user(name: &str) -> NewUser {
    NewUser {
        username: Username::parse(name).unwrap(),
        email: Some(Email::parse(&format!("{name}@example.com")).unwrap()),
        name: Some(format!("{name} Example")),
        roles: vec![],
    }
}

pub fn t0() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap() + Duration::milliseconds(123)
}

pub fn client(id: &str) -> Client {
    Client {
        id: id.into(),
        name: "Example app".into(),
        client_type: ClientType::Confidential,
        secret_hash: Some("hash".into()),
        redirect_uris: vec![
            RedirectUri::parse("https://app.example.com/cb", ClientType::Confidential).unwrap(),
        ],
        post_logout_redirect_uris: vec![],
        backchannel_logout_uri: None,
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        scopes: vec!["openid".into(), "email".into()],
        token_endpoint_auth_method: TokenEndpointAuthMethod::ClientSecretBasic,
        id_token_signed_response_alg: "RS256".into(),
        access_token_signing_alg: Some("ES256".into()),
        first_party: true,
        require_pkce: false,
        access_token_ttl_s: Some(300),
        refresh_token_ttl_s: None,
        refresh_idle_ttl_s: Some(3600),
        refresh_reuse_window_s: 5,
        rate_limit_token_per_minute: Some(6000),
        rate_limit_introspect_per_minute: None,
        mfa: None,
        theme: None,
        // Not the default: the store must keep it.
        require_verified_email: true,
        secret_sealed: Some(vec![0, 1, 2, 254, 255]),
        jwks: Some(
            serde_json::from_value(serde_json::json!({ "keys": [{
                "kty": "EC", "crv": "P-256", "kid": "k1", "use": "sig", "alg": "ES256",
                "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
                "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"
            }]}))
            .unwrap(),
        ),
        jwks_uri: Some("https://app.example.com/jwks".into()),
        require_par: true,
        dpop_bound_access_tokens: true,
        profile: Some(idp::domain::client::Profile::Fapi2),
        resources: vec![
            "https://api.example.com/orders".into(),
            "urn:example:billing".into(),
        ],
        created_at: t0(),
        updated_at: t0(),
    }
}
