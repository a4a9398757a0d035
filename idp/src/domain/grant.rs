//! Grants and what is issued from them: authorization codes and refresh tokens.
//! A grant is one authorization of a client (by a user, or by itself for
//! client_credentials); every token issued under it can be revoked through it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub id: String,
    pub client_id: String,
    pub user_id: Option<String>,
    /// The provider session (`sid`) it was granted in, if any.
    pub session_id: Option<String>,
    pub scope: String,
    /// Issued with `offline_access`: outlives the login session.
    pub offline: bool,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// When the user authenticated for this grant (user grants only).
    pub auth_time: Option<DateTime<Utc>>,
    pub amr: Vec<String>,
    /// The DPoP key (RFC 7638 thumbprint) a public client's refresh tokens are bound to.
    pub dpop_jkt: Option<String>,
    /// The resource servers it was granted for (RFC 8707); tokens from it may narrow them.
    pub resources: Vec<String>,
}

/// An authorization code as stored: only its hash, bound to everything the token
/// request must match (RFC 6749 §4.1.3, RFC 7636 §4.6, OIDC Core §3.1.3.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationCode {
    pub code_hash: String,
    pub grant_id: String,
    pub client_id: String,
    pub user_id: String,
    pub session_id: String,
    pub redirect_uri: String,
    pub scope: String,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub auth_time: DateTime<Utc>,
    pub amr: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub consumed_at: Option<DateTime<Utc>>,
}

/// What consuming a code found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeUse {
    /// First use: the code is now consumed.
    First(AuthorizationCode),
    /// The code had been used before: a replay (RFC 6749 §4.1.2).
    Replayed(AuthorizationCode),
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshState {
    Active,
    Rotated,
    Revoked,
}

impl RefreshState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Rotated => "rotated",
            Self::Revoked => "revoked",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "active" => Some(Self::Active),
            "rotated" => Some(Self::Rotated),
            "revoked" => Some(Self::Revoked),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshToken {
    pub token_hash: String,
    pub grant_id: String,
    pub client_id: String,
    pub user_id: Option<String>,
    pub generation: i64,
    pub parent_hash: Option<String>,
    pub state: RefreshState,
    pub scope: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub rotated_at: Option<DateTime<Utc>>,
    /// The encrypted token response that replaced this token, kept during the reuse window.
    pub successor_response: Option<Vec<u8>>,
}
