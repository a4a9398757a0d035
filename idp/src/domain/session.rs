//! Provider sessions: a logged-in browser. The cookie holds a random value; the store
//! keeps only its hash, so a database leak does not hand out sessions.

use chrono::{DateTime, Utc};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id_hash: String,
    /// Public session id: the ID token's `sid` (OIDC Front/Back-Channel Logout).
    pub sid: String,
    pub user_id: String,
    pub auth_time: DateTime<Utc>,
    pub amr: Vec<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// The upstream OpenID provider whose sign-in started it, and its `sid` there, if it gave
    /// one: its back-channel logout ends this session.
    pub upstream: Option<UpstreamSession>,
}

/// Where a federated session came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UpstreamSession {
    pub issuer: String,
    pub sid: Option<String>,
}
