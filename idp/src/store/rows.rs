//! Database rows and their conversion to domain types, shared by both backends.
//! Times are stored as Unix milliseconds, lists as JSON text.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{RefreshFamily, StoreError, StoreResult, StoredKey};
use crate::audit::{EventType, Outcome, SecurityEvent};
use crate::domain::client::{Client, ClientType, GrantType, RedirectUri, TokenEndpointAuthMethod};
use crate::domain::grant::{AuthorizationCode, Grant, RefreshState, RefreshToken};
use crate::domain::session::Session;
use crate::domain::user::{Email, User, UserStatus, Username};

pub(crate) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn time(ms: i64) -> StoreResult<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms).ok_or_else(|| corrupt("timestamp", ms))
}

pub(crate) fn uuid(raw: &str) -> StoreResult<uuid::Uuid> {
    uuid::Uuid::parse_str(raw).map_err(|e| corrupt("id", e))
}

fn opt_time(ms: Option<i64>) -> StoreResult<Option<DateTime<Utc>>> {
    ms.map(time).transpose()
}

fn corrupt(what: &str, value: impl std::fmt::Debug) -> StoreError {
    StoreError::Corrupt(format!("{what}: {value:?}"))
}

pub(crate) fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

pub(crate) fn from_json<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|e| corrupt(what, e))
}

#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    id: String,
    username: String,
    email: Option<String>,
    email_verified: bool,
    name: Option<String>,
    status: String,
    roles: String,
    failed_login_count: i64,
    locked_until: Option<i64>,
    must_change_password: bool,
    mfa_enrolment_required: bool,
    created_at: i64,
    updated_at: i64,
    last_login_at: Option<i64>,
}

macro_rules! user_columns {
    () => {
        "id, username, email, email_verified, name, status, roles, \
    failed_login_count, locked_until, must_change_password, mfa_enrolment_required, created_at, updated_at, last_login_at"
    };
}
pub(crate) use user_columns;

impl TryFrom<UserRow> for User {
    type Error = StoreError;

    fn try_from(r: UserRow) -> StoreResult<Self> {
        Ok(User {
            id: Uuid::parse_str(&r.id).map_err(|e| corrupt("user id", e))?,
            username: Username::parse(&r.username).map_err(|e| corrupt("username", e))?,
            email: r
                .email
                .as_deref()
                .map(Email::parse)
                .transpose()
                .map_err(|e| corrupt("email", e))?,
            email_verified: r.email_verified,
            name: r.name,
            status: UserStatus::parse(&r.status).ok_or_else(|| corrupt("user status", &r.status))?,
            roles: from_json("roles", &r.roles)?,
            failed_login_count: r.failed_login_count,
            locked_until: opt_time(r.locked_until)?,
            must_change_password: r.must_change_password,
            mfa_enrolment_required: r.mfa_enrolment_required,
            created_at: time(r.created_at)?,
            updated_at: time(r.updated_at)?,
            last_login_at: opt_time(r.last_login_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ClientRow {
    id: String,
    name: String,
    client_type: String,
    secret_hash: Option<String>,
    redirect_uris: String,
    post_logout_redirect_uris: String,
    backchannel_logout_uri: Option<String>,
    grant_types: String,
    scopes: String,
    token_endpoint_auth_method: String,
    id_token_signed_response_alg: String,
    access_token_signing_alg: Option<String>,
    first_party: bool,
    require_pkce: bool,
    access_token_ttl_s: Option<i64>,
    refresh_token_ttl_s: Option<i64>,
    refresh_idle_ttl_s: Option<i64>,
    refresh_reuse_window_s: i64,
    theme: Option<String>,
    created_at: i64,
    updated_at: i64,
    rate_limit_token_per_minute: Option<i64>,
    rate_limit_introspect_per_minute: Option<i64>,
    mfa: Option<String>,
    require_verified_email: bool,
    jwks: Option<String>,
    jwks_uri: Option<String>,
    secret_sealed: Option<Vec<u8>>,
    require_par: bool,
    dpop_bound_access_tokens: bool,
    profile: Option<String>,
    resources: String,
}

macro_rules! client_columns {
    () => {
        "id, name, client_type, secret_hash, redirect_uris, \
    post_logout_redirect_uris, backchannel_logout_uri, grant_types, scopes, token_endpoint_auth_method, \
    id_token_signed_response_alg, access_token_signing_alg, first_party, require_pkce, access_token_ttl_s, \
    refresh_token_ttl_s, refresh_idle_ttl_s, refresh_reuse_window_s, theme, created_at, updated_at, \
    rate_limit_token_per_minute, rate_limit_introspect_per_minute, mfa, require_verified_email, \
    jwks, jwks_uri, secret_sealed, require_par, dpop_bound_access_tokens, profile, resources"
    };
}
pub(crate) use client_columns;

impl TryFrom<ClientRow> for Client {
    type Error = StoreError;

    fn try_from(r: ClientRow) -> StoreResult<Self> {
        Ok(Client {
            client_type: ClientType::parse(&r.client_type)
                .ok_or_else(|| corrupt("client type", &r.client_type))?,
            redirect_uris: from_json::<Vec<RedirectUri>>("redirect_uris", &r.redirect_uris)?,
            post_logout_redirect_uris: from_json("post_logout_redirect_uris", &r.post_logout_redirect_uris)?,
            grant_types: from_json::<Vec<GrantType>>("grant_types", &r.grant_types)?,
            scopes: from_json("scopes", &r.scopes)?,
            token_endpoint_auth_method: TokenEndpointAuthMethod::parse(&r.token_endpoint_auth_method)
                .ok_or_else(|| corrupt("token_endpoint_auth_method", &r.token_endpoint_auth_method))?,
            id: r.id,
            name: r.name,
            secret_hash: r.secret_hash,
            backchannel_logout_uri: r.backchannel_logout_uri,
            id_token_signed_response_alg: r.id_token_signed_response_alg,
            access_token_signing_alg: r.access_token_signing_alg,
            first_party: r.first_party,
            require_pkce: r.require_pkce,
            access_token_ttl_s: r.access_token_ttl_s,
            refresh_token_ttl_s: r.refresh_token_ttl_s,
            refresh_idle_ttl_s: r.refresh_idle_ttl_s,
            refresh_reuse_window_s: r.refresh_reuse_window_s,
            rate_limit_token_per_minute: r.rate_limit_token_per_minute,
            rate_limit_introspect_per_minute: r.rate_limit_introspect_per_minute,
            mfa: r
                .mfa
                .as_deref()
                .map(crate::domain::mfa::MfaPolicy::parse)
                .transpose()
                .map_err(|e| corrupt("client mfa", e))?,
            require_verified_email: r.require_verified_email,
            jwks: r.jwks.as_deref().map(|j| from_json("jwks", j)).transpose()?,
            jwks_uri: r.jwks_uri,
            secret_sealed: r.secret_sealed,
            require_par: r.require_par,
            dpop_bound_access_tokens: r.dpop_bound_access_tokens,
            profile: r
                .profile
                .as_deref()
                .map(crate::domain::client::Profile::parse)
                .transpose()
                .map_err(|e| corrupt("client profile", e))?,
            resources: from_json("client resources", &r.resources)?,
            theme: r.theme,
            created_at: time(r.created_at)?,
            updated_at: time(r.updated_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct KeyRow {
    kid: String,
    alg: String,
    private_key_enc: Vec<u8>,
    public_jwk: String,
    created_at: i64,
    activates_at: i64,
    retired_at: Option<i64>,
    removed_at: Option<i64>,
}

macro_rules! key_columns {
    () => {
        "kid, alg, private_key_enc, public_jwk, created_at, activates_at, retired_at, removed_at"
    };
}
pub(crate) use key_columns;

impl TryFrom<KeyRow> for StoredKey {
    type Error = StoreError;

    fn try_from(r: KeyRow) -> StoreResult<Self> {
        Ok(StoredKey {
            kid: r.kid,
            alg: r.alg,
            private_key_enc: r.private_key_enc,
            public_jwk: r.public_jwk,
            created_at: time(r.created_at)?,
            activates_at: time(r.activates_at)?,
            retired_at: opt_time(r.retired_at)?,
            removed_at: opt_time(r.removed_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct EventRow {
    id: i64,
    occurred_at: i64,
    event_type: String,
    outcome: String,
    user_id: Option<String>,
    username: Option<String>,
    client_id: Option<String>,
    actor_id: Option<String>,
    ip: Option<String>,
    user_agent: Option<String>,
    request_id: Option<String>,
    details: String,
}

macro_rules! event_columns {
    () => {
        "id, occurred_at, event_type, outcome, user_id, username, \
    client_id, actor_id, ip, user_agent, request_id, details"
    };
}
pub(crate) use event_columns;

impl TryFrom<EventRow> for SecurityEvent {
    type Error = StoreError;

    fn try_from(r: EventRow) -> StoreResult<Self> {
        Ok(SecurityEvent {
            id: r.id,
            occurred_at: time(r.occurred_at)?,
            event_type: EventType::parse(&r.event_type)
                .ok_or_else(|| corrupt("event type", &r.event_type))?,
            outcome: Outcome::parse(&r.outcome).ok_or_else(|| corrupt("outcome", &r.outcome))?,
            user_id: r.user_id,
            username: r.username,
            client_id: r.client_id,
            actor_id: r.actor_id,
            ip: r.ip,
            user_agent: r.user_agent,
            request_id: r.request_id,
            details: from_json("details", &r.details)?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct SessionRow {
    id_hash: String,
    sid: String,
    user_id: String,
    auth_time: i64,
    amr: String,
    ip: Option<String>,
    user_agent: Option<String>,
    created_at: i64,
    last_seen_at: i64,
    expires_at: i64,
    upstream_issuer: Option<String>,
    upstream_sid: Option<String>,
}

macro_rules! session_columns {
    () => {
        "id_hash, sid, user_id, auth_time, amr, ip, user_agent, created_at, last_seen_at, expires_at, \
         upstream_issuer, upstream_sid"
    };
}
pub(crate) use session_columns;

impl TryFrom<SessionRow> for Session {
    type Error = StoreError;

    fn try_from(r: SessionRow) -> StoreResult<Self> {
        Ok(Session {
            id_hash: r.id_hash,
            sid: r.sid,
            user_id: r.user_id,
            auth_time: time(r.auth_time)?,
            amr: from_json("amr", &r.amr)?,
            ip: r.ip,
            user_agent: r.user_agent,
            created_at: time(r.created_at)?,
            last_seen_at: time(r.last_seen_at)?,
            expires_at: time(r.expires_at)?,
            upstream: r
                .upstream_issuer
                .map(|issuer| crate::domain::session::UpstreamSession {
                    issuer,
                    sid: r.upstream_sid,
                }),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct GrantRow {
    id: String,
    client_id: String,
    user_id: Option<String>,
    session_id: Option<String>,
    scope: String,
    offline: bool,
    created_at: i64,
    expires_at: i64,
    revoked_at: Option<i64>,
    auth_time: Option<i64>,
    amr: String,
    dpop_jkt: Option<String>,
    resources: String,
}

macro_rules! grant_columns {
    () => {
        "id, client_id, user_id, session_id, scope, offline, created_at, expires_at, revoked_at, auth_time, amr, \
         dpop_jkt, resources"
    };
}
pub(crate) use grant_columns;

impl TryFrom<GrantRow> for Grant {
    type Error = StoreError;

    fn try_from(r: GrantRow) -> StoreResult<Self> {
        Ok(Grant {
            id: r.id,
            client_id: r.client_id,
            user_id: r.user_id,
            session_id: r.session_id,
            scope: r.scope,
            offline: r.offline,
            created_at: time(r.created_at)?,
            expires_at: time(r.expires_at)?,
            revoked_at: opt_time(r.revoked_at)?,
            auth_time: opt_time(r.auth_time)?,
            amr: from_json("amr", &r.amr)?,
            dpop_jkt: r.dpop_jkt,
            resources: from_json("grant resources", &r.resources)?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct CodeRow {
    code_hash: String,
    grant_id: String,
    client_id: String,
    user_id: String,
    session_id: String,
    redirect_uri: String,
    scope: String,
    nonce: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    auth_time: i64,
    amr: String,
    created_at: i64,
    expires_at: i64,
    consumed_at: Option<i64>,
}

macro_rules! code_columns {
    () => {
        "code_hash, grant_id, client_id, user_id, session_id, redirect_uri, scope, nonce, code_challenge, \
         code_challenge_method, auth_time, amr, created_at, expires_at, consumed_at"
    };
}
pub(crate) use code_columns;

impl TryFrom<CodeRow> for AuthorizationCode {
    type Error = StoreError;

    fn try_from(r: CodeRow) -> StoreResult<Self> {
        Ok(AuthorizationCode {
            code_hash: r.code_hash,
            grant_id: r.grant_id,
            client_id: r.client_id,
            user_id: r.user_id,
            session_id: r.session_id,
            redirect_uri: r.redirect_uri,
            scope: r.scope,
            nonce: r.nonce,
            code_challenge: r.code_challenge,
            code_challenge_method: r.code_challenge_method,
            auth_time: time(r.auth_time)?,
            amr: from_json("amr", &r.amr)?,
            created_at: time(r.created_at)?,
            expires_at: time(r.expires_at)?,
            consumed_at: opt_time(r.consumed_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct RefreshRow {
    token_hash: String,
    grant_id: String,
    client_id: String,
    user_id: Option<String>,
    generation: i64,
    parent_hash: Option<String>,
    state: String,
    scope: String,
    created_at: i64,
    expires_at: i64,
    last_used_at: Option<i64>,
    rotated_at: Option<i64>,
    successor_response_enc: Option<Vec<u8>>,
}

macro_rules! refresh_columns {
    () => {
        "token_hash, grant_id, client_id, user_id, generation, parent_hash, state, scope, created_at, \
         expires_at, last_used_at, rotated_at, successor_response_enc"
    };
}
pub(crate) use refresh_columns;

/// A refresh token joined with its grant and the grant's user's status: the refresh grant's
/// whole read in one round trip.
#[derive(sqlx::FromRow)]
pub(crate) struct RefreshFamilyRow {
    #[sqlx(flatten)]
    token: RefreshRow,
    g_id: String,
    g_client_id: String,
    g_user_id: Option<String>,
    g_session_id: Option<String>,
    g_scope: String,
    g_offline: bool,
    g_created_at: i64,
    g_expires_at: i64,
    g_revoked_at: Option<i64>,
    g_auth_time: Option<i64>,
    g_amr: String,
    g_dpop_jkt: Option<String>,
    g_resources: String,
    user_status: Option<String>,
}

impl RefreshFamilyRow {
    pub(crate) fn token_hash(&self) -> &str {
        &self.token.token_hash
    }
}

macro_rules! refresh_family_columns {
    () => {
        "t.token_hash, t.grant_id, t.client_id, t.user_id, t.generation, t.parent_hash, t.state, \
         t.scope, t.created_at, t.expires_at, t.last_used_at, t.rotated_at, t.successor_response_enc, \
         g.id AS g_id, g.client_id AS g_client_id, g.user_id AS g_user_id, g.session_id AS g_session_id, \
         g.scope AS g_scope, g.offline AS g_offline, g.created_at AS g_created_at, \
         g.expires_at AS g_expires_at, g.revoked_at AS g_revoked_at, g.auth_time AS g_auth_time, \
         g.amr AS g_amr, g.dpop_jkt AS g_dpop_jkt, g.resources AS g_resources, u.status AS user_status"
    };
}
pub(crate) use refresh_family_columns;

macro_rules! refresh_family_select {
    () => {
        concat!(
            "SELECT ",
            $crate::store::rows::refresh_family_columns!(),
            " FROM refresh_tokens t JOIN grants g ON g.id = t.grant_id LEFT JOIN users u ON u.id = g.user_id"
        )
    };
}
pub(crate) use refresh_family_select;

/// What a strict rotation requires of the token `t` in an `UPDATE refresh_tokens AS t`, given
/// the SQL for the presenting client, the time and the idle cutoff: still active, issued to
/// that client, not expired, issued at or after the idle cutoff, of an unrevoked grant whose
/// user is active. `$fence` (PostgreSQL: `" OFFSET 0"`) keeps the user check a subquery run
/// per token, never a join the planner could reorder (`rotate_refresh_tokens`). The refresh
/// grant checks the same rules in Rust (to say which one failed); the store contract tests
/// hold both to them.
macro_rules! rotation_conditions {
    ($client:literal, $now:literal, $cutoff:literal, $fence:literal) => {
        concat!(
            "t.state = 'active' AND t.client_id = ",
            $client,
            " AND t.expires_at > ",
            $now,
            " AND t.created_at >= ",
            $cutoff,
            " AND (SELECT g.revoked_at IS NULL AND EXISTS (SELECT 1 FROM users AS u \
             WHERE u.id = g.user_id AND u.status = 'active'",
            $fence,
            ") \
             FROM grants AS g WHERE g.id = t.grant_id)"
        )
    };
}
pub(crate) use rotation_conditions;

/// A strict rotation's answer on PostgreSQL: the family as read before, and whether it rotated.
#[derive(sqlx::FromRow)]
pub(crate) struct RotationRow {
    #[sqlx(flatten)]
    pub family: RefreshFamilyRow,
    pub rotated: bool,
}

impl TryFrom<RefreshFamilyRow> for RefreshFamily {
    type Error = StoreError;

    fn try_from(r: RefreshFamilyRow) -> StoreResult<Self> {
        let grant = GrantRow {
            id: r.g_id,
            client_id: r.g_client_id,
            user_id: r.g_user_id,
            session_id: r.g_session_id,
            scope: r.g_scope,
            offline: r.g_offline,
            created_at: r.g_created_at,
            expires_at: r.g_expires_at,
            revoked_at: r.g_revoked_at,
            auth_time: r.g_auth_time,
            amr: r.g_amr,
            dpop_jkt: r.g_dpop_jkt,
            resources: r.g_resources,
        };
        Ok(RefreshFamily {
            token: r.token.try_into()?,
            grant: grant.try_into()?,
            user_active: r.user_status.as_deref() == Some(UserStatus::Active.as_str()),
        })
    }
}

impl TryFrom<RefreshRow> for RefreshToken {
    type Error = StoreError;

    fn try_from(r: RefreshRow) -> StoreResult<Self> {
        Ok(RefreshToken {
            state: RefreshState::parse(&r.state).ok_or_else(|| corrupt("refresh token state", &r.state))?,
            token_hash: r.token_hash,
            grant_id: r.grant_id,
            client_id: r.client_id,
            user_id: r.user_id,
            generation: r.generation,
            parent_hash: r.parent_hash,
            scope: r.scope,
            created_at: time(r.created_at)?,
            expires_at: time(r.expires_at)?,
            last_used_at: opt_time(r.last_used_at)?,
            rotated_at: opt_time(r.rotated_at)?,
            successor_response: r.successor_response_enc,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct FactorRow {
    id: String,
    user_id: String,
    kind: String,
    name: String,
    secret: Vec<u8>,
    created_at: i64,
    confirmed_at: Option<i64>,
    last_used_at: Option<i64>,
    last_used_step: Option<i64>,
    credential_id: Option<String>,
}

impl TryFrom<FactorRow> for crate::domain::mfa::Factor {
    type Error = StoreError;

    fn try_from(r: FactorRow) -> StoreResult<Self> {
        Ok(Self {
            id: Uuid::parse_str(&r.id).map_err(|e| corrupt("factor id", e))?,
            user_id: Uuid::parse_str(&r.user_id).map_err(|e| corrupt("factor user id", e))?,
            kind: crate::domain::mfa::FactorKind::parse(&r.kind)
                .ok_or_else(|| corrupt("factor kind", &r.kind))?,
            name: r.name,
            secret: r.secret,
            credential_id: r.credential_id,
            created_at: time(r.created_at)?,
            confirmed_at: opt_time(r.confirmed_at)?,
            last_used_at: opt_time(r.last_used_at)?,
            last_used_step: r.last_used_step,
        })
    }
}
