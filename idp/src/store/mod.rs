//! Storage: per-aggregate traits with operations named for what they do atomically, and
//! two implementations on sqlx, SQLite (embedded default) and PostgreSQL (production).
//! All SQL lives below this module; no sqlx type crosses its boundary.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::audit::{EventQuery, SecurityEvent};
use crate::domain::client::Client;
use crate::domain::grant::{AuthorizationCode, CodeUse, Grant, RefreshToken};
use crate::domain::resource::ResourceServer;
use crate::domain::session::Session;
use crate::domain::upstream::{FederatedIdentity, Upstream};
use crate::domain::user::{NewUser, User, UserStatus};

pub mod account;
mod admin;
pub mod backup;
mod client_cache;
pub mod mfa;
mod postgres;
mod rotation_batch;
mod rows;
mod sql;
mod sqlite;

pub use admin::{AdminStore, ConsentRecord, EventCount, GrantFamily, UserProfile};
pub use backup::{BackupRecord, BackupStore};
pub use client_cache::ClientCache;
pub use postgres::PgStore;
pub use sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or has no free connection: callers answer 503.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A uniqueness rule was broken; names what already exists.
    #[error("{0} already exists")]
    Conflict(&'static str),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Other(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// How a user listing is ordered; ties broken by id.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UserSort {
    #[default]
    CreatedAsc,
    CreatedDesc,
    UsernameAsc,
    UsernameDesc,
}

/// Where the previous page of a user listing ended: the sort keys of its last user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserCursor {
    pub created_at: DateTime<Utc>,
    pub username_key: String,
    pub id: Uuid,
}

impl UserCursor {
    pub fn of(user: &User) -> Self {
        Self {
            created_at: user.created_at,
            username_key: user.username.key(),
            id: user.id,
        }
    }
}

/// A page of users matching the filters, continuing after `after` in `sort` order.
#[derive(Debug, Clone, Default)]
pub struct UserQuery {
    /// Substring of username, email or name, case-insensitive.
    pub search: Option<String>,
    pub status: Option<UserStatus>,
    pub role: Option<String>,
    pub sort: UserSort,
    pub after: Option<UserCursor>,
    pub limit: u32,
}

/// sqlx reports each pool acquisition's wait (`acquired_after_secs`, target
/// `sqlx::pool::acquire`) at this level; telemetry turns it into
/// `idp_db_pool_acquire_duration_seconds`.
const ACQUIRE_EVENT_LEVEL: log::LevelFilter = log::LevelFilter::Debug;

/// A connection idle longer than this is pinged before use (a server restart or a proxy's
/// idle timeout may have closed it); one used more recently is trusted, as HikariCP does
/// with its 500 ms `aliveBypassWindowMs`. Under load every connection is reused within
/// milliseconds, so the hot paths skip the ping.
const PING_IDLE_AFTER: std::time::Duration = std::time::Duration::from_millis(500);

/// Pool settings shared by both backends.
///
/// sqlx pings every connection when it goes back to the pool, and by default again when it
/// is taken out: three round trips per statement. The ping on acquire is kept only for
/// connections that sat idle past `PING_IDLE_AFTER`.
pub(crate) fn pool_options<DB: sqlx::Database>(options: &ConnectOptions) -> sqlx::pool::PoolOptions<DB> {
    sqlx::pool::PoolOptions::<DB>::new()
        .max_connections(options.max_connections)
        .acquire_timeout(options.acquire_timeout)
        .acquire_time_level(ACQUIRE_EVENT_LEVEL)
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for > PING_IDLE_AFTER {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
}

#[async_trait]
pub trait UserStore: Send + Sync {
    /// Creates the user and, when given, their password credential, in one transaction.
    async fn create_user(
        &self,
        user: &NewUser,
        password_phc: Option<&str>,
        now: DateTime<Utc>,
    ) -> StoreResult<User>;
    async fn find_user(&self, id: Uuid) -> StoreResult<Option<User>>;
    async fn find_user_by_username(&self, username_key: &str) -> StoreResult<Option<User>>;
    /// The user whose email is `email_key` (lower-cased; emails are unique).
    async fn find_user_by_email(&self, email_key: &str) -> StoreResult<Option<User>>;
    async fn list_users(&self, query: &UserQuery) -> StoreResult<Vec<User>>;
    /// Returns false when no such user exists.
    async fn set_user_status(&self, id: Uuid, status: UserStatus, now: DateTime<Utc>) -> StoreResult<bool>;
    async fn password_phc(&self, user_id: Uuid) -> StoreResult<Option<String>>;
    async fn set_password_phc(&self, user_id: Uuid, phc: &str, now: DateTime<Utc>) -> StoreResult<()>;
    async fn admin_exists(&self) -> StoreResult<bool>;
    /// Notes a successful login.
    async fn record_login(&self, id: Uuid, now: DateTime<Utc>) -> StoreResult<()>;
}

#[async_trait]
pub trait ClientStore: Send + Sync {
    async fn create_client(&self, client: &Client) -> StoreResult<()>;
    async fn find_client(&self, id: &str) -> StoreResult<Option<Client>>;
    async fn list_clients(&self) -> StoreResult<Vec<Client>>;
    /// Deletes the client with its codes, grants and tokens. False when it did not exist.
    async fn delete_client(&self, id: &str) -> StoreResult<bool>;
}

/// A signing key as stored: the private part encrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub kid: String,
    pub alg: String,
    pub private_key_enc: Vec<u8>,
    pub public_jwk: String,
    pub created_at: DateTime<Utc>,
    pub activates_at: DateTime<Utc>,
    pub retired_at: Option<DateTime<Utc>>,
    pub removed_at: Option<DateTime<Utc>>,
}

#[async_trait]
pub trait KeyStore: Send + Sync {
    async fn insert_signing_key(&self, key: &StoredKey) -> StoreResult<()>;
    /// Every key not yet removed from the JWKS, oldest first.
    async fn published_signing_keys(&self) -> StoreResult<Vec<StoredKey>>;
}

/// The deny-list's durable copy, for the in-process deny-list (no Redis): revocations
/// survive a restart and reach the server from the command line.
#[async_trait]
pub trait DenialStore: Send + Sync {
    async fn insert_denial(&self, key: &str, until: DateTime<Utc>) -> StoreResult<()>;
    /// Denials recorded after `after_id` that still matter at `now`, in order.
    async fn denials_after(
        &self,
        after_id: i64,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<(i64, String, DateTime<Utc>)>>;
}

/// Resource servers (RFC 8707).
#[async_trait]
pub trait ResourceStore: Send + Sync {
    async fn create_resource_server(&self, resource: &ResourceServer) -> StoreResult<()>;
    async fn find_resource_server(&self, identifier: &str) -> StoreResult<Option<ResourceServer>>;
    async fn list_resource_servers(&self) -> StoreResult<Vec<ResourceServer>>;
    /// The identifiers of the resource servers that introspect as `client_id`.
    async fn resources_of_client(&self, client_id: &str) -> StoreResult<Vec<String>>;
    /// Deletes it; false when it did not exist.
    async fn delete_resource_server(&self, identifier: &str) -> StoreResult<bool>;
}

/// Upstream identity providers (federation).
#[async_trait]
pub trait UpstreamStore: Send + Sync {
    async fn create_upstream(&self, upstream: &Upstream) -> StoreResult<()>;
    async fn find_upstream(&self, slug: &str) -> StoreResult<Option<Upstream>>;
    async fn list_upstreams(&self) -> StoreResult<Vec<Upstream>>;
    /// Replaces its settings (not its slug, issuer or creation); false when it did not exist.
    async fn update_upstream(&self, upstream: &Upstream) -> StoreResult<bool>;
    /// Deletes it; false when it did not exist.
    async fn delete_upstream(&self, slug: &str) -> StoreResult<bool>;
    /// Links an upstream identity to its account; a conflict when it is linked already.
    async fn link_identity(&self, identity: &FederatedIdentity) -> StoreResult<()>;
    async fn find_identity(&self, issuer: &str, subject: &str) -> StoreResult<Option<FederatedIdentity>>;
    async fn identities_of_user(&self, user_id: Uuid) -> StoreResult<Vec<FederatedIdentity>>;
    /// Records a sign-in with the identity.
    async fn touch_identity(&self, issuer: &str, subject: &str, now: DateTime<Utc>) -> StoreResult<()>;
    /// Unlinks it from `user_id`; false when it was not linked to that account.
    async fn unlink_identity(&self, user_id: Uuid, issuer: &str, subject: &str) -> StoreResult<bool>;
}

/// Pushed authorization requests (RFC 9126): stored by `/par`, taken once by `/authorize`.
#[async_trait]
pub trait PushedRequestStore: Send + Sync {
    async fn insert_pushed_request(
        &self,
        reference_hash: &str,
        client_id: &str,
        params: &str,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Removes the request and returns its client id and parameters, unless it has expired.
    async fn take_pushed_request(
        &self,
        reference_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<(String, String)>>;
}

#[async_trait]
pub trait EventStore: Send + Sync {
    /// Records the event and returns its id.
    async fn record_event(&self, event: &SecurityEvent) -> StoreResult<i64>;
    /// Events matching the query, newest first.
    async fn query_events(&self, query: &EventQuery) -> StoreResult<Vec<SecurityEvent>>;
    /// Deletes events older than `before`, `batch` rows per statement; returns how many.
    async fn prune_events(&self, before: DateTime<Utc>, batch: u32) -> StoreResult<u64>;
}

#[async_trait]
pub trait SessionStore: Send + Sync {
    async fn create_session(&self, session: &Session) -> StoreResult<()>;
    /// The session with this cookie hash, if it exists and has not expired at `now`.
    async fn find_session(&self, id_hash: &str, now: DateTime<Utc>) -> StoreResult<Option<Session>>;
    async fn delete_session(&self, id_hash: &str) -> StoreResult<()>;
    /// Records a step-up: the session's methods become `amr` and its `auth_time` `now`.
    async fn upgrade_session(&self, id_hash: &str, amr: &[String], now: DateTime<Utc>) -> StoreResult<bool>;
    /// The live sessions a sign-in at the upstream `issuer` started: with that upstream `sid`
    /// and of that user, where given.
    async fn sessions_from_upstream(
        &self,
        issuer: &str,
        upstream_sid: Option<&str>,
        user_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Session>>;
}

#[async_trait]
pub trait ConsentStore: Send + Sync {
    /// The scopes the user has granted the client, if any.
    async fn find_consent(&self, user_id: &str, client_id: &str) -> StoreResult<Option<Vec<String>>>;
    /// Records (or widens) the user's consent for the client.
    async fn save_consent(
        &self,
        user_id: &str,
        client_id: &str,
        scopes: &[String],
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
}

/// A refresh token, the grant (family) it belongs to, and whether that grant's user exists
/// and is active.
#[derive(Debug, Clone)]
pub struct RefreshFamily {
    pub token: RefreshToken,
    pub grant: Grant,
    pub user_active: bool,
}

/// A strict rotation, decided by the database in one step: retire `token_hash` and store
/// `successor_hash` after it (same grant, client, user, scope and absolute expiry, the next
/// generation), only if the token is active, was issued to `client_id`, has not expired, was
/// issued at or after `idle_cutoff` (the client's idle timeout), and its grant is unrevoked
/// with an active user.
#[derive(Debug, Clone)]
pub struct RefreshRotation<'a> {
    pub token_hash: &'a str,
    pub successor_hash: &'a str,
    pub client_id: &'a str,
    pub now: DateTime<Utc>,
    pub idle_cutoff: Option<DateTime<Utc>>,
}

/// The outcome of a [`RefreshRotation`]: the family as it was before, and whether it rotated.
#[derive(Debug, Clone)]
pub struct RotationAttempt {
    pub family: RefreshFamily,
    pub rotated: bool,
}

#[async_trait]
pub trait GrantStore: Send + Sync {
    async fn create_grant(&self, grant: &Grant) -> StoreResult<()>;
    async fn find_grant(&self, id: &str) -> StoreResult<Option<Grant>>;
    /// Marks the grant and every refresh token under it revoked. False when it already was.
    async fn revoke_grant(&self, id: &str, now: DateTime<Utc>) -> StoreResult<bool>;
    /// Binds a grant without a DPoP key to `jkt` (RFC 9449 §5); a bound grant keeps its key.
    async fn bind_grant_dpop_key(&self, id: &str, jkt: &str) -> StoreResult<()>;
    async fn insert_code(&self, code: &AuthorizationCode) -> StoreResult<()>;
    /// Consumes the code atomically: of concurrent callers exactly one sees `First`.
    /// The code, used or not, without changing it.
    async fn find_code(&self, code_hash: &str) -> StoreResult<Option<AuthorizationCode>>;
    async fn consume_code(&self, code_hash: &str, now: DateTime<Utc>) -> StoreResult<CodeUse>;
    async fn insert_refresh_token(&self, token: &RefreshToken) -> StoreResult<()>;
    async fn find_refresh_token(&self, token_hash: &str) -> StoreResult<Option<RefreshToken>>;
    /// The refresh token with its grant and its user's status, in one read.
    async fn find_refresh_family(&self, token_hash: &str) -> StoreResult<Option<RefreshFamily>>;
    /// Retires `old_hash` (only if still active: a compare-and-set), keeping `response_enc`
    /// (the encrypted answer that replaced it) on it, and stores `successor`, in one
    /// transaction. False when `old_hash` was no longer active.
    async fn rotate_refresh_token(
        &self,
        old_hash: &str,
        successor: &RefreshToken,
        response_enc: Option<&[u8]>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Checks and performs `rotation` in one step (on PostgreSQL one statement, one round
    /// trip); of concurrent attempts on one token at most one rotates. `None` when no such
    /// token exists.
    async fn rotate_refresh_token_if_valid(
        &self,
        rotation: &RefreshRotation<'_>,
    ) -> StoreResult<Option<RotationAttempt>>;
    /// The grants given in the provider session `sid`.
    async fn grants_of_session(&self, sid: &str) -> StoreResult<Vec<Grant>>;
    /// Deletes expired codes, refresh tokens, grants and sessions, at most `batch` rows per
    /// statement, until none is left. Returns the number of rows deleted per kind.
    async fn delete_expired(&self, now: DateTime<Utc>, batch: u32) -> StoreResult<Vec<(&'static str, u64)>>;
}

/// The brute-force state of one (account, source) pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FailureState {
    /// Consecutive failures of this (account, source) pair since its last lock or success.
    pub failures: i64,
    pub lockouts: i64,
    pub locked_until: Option<DateTime<Utc>>,
    /// Failures on the account from every source, in the window that ends with the latest.
    pub account_failures: i64,
}

/// The account-wide failure count covers failures no further apart than this: it starts
/// again after this long without one.
pub const ACCOUNT_FAILURE_WINDOW_S: i64 = 900;
/// The `source` of an account's row counting failures from every source.
pub const EVERY_SOURCE: &str = "*";

#[async_trait]
pub trait LoginFailureStore: Send + Sync {
    async fn login_failure_state(
        &self,
        account_key: &str,
        source: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<FailureState>;
    /// Counts one more failure of the pair and of the account atomically; returns the new state.
    async fn record_login_failure(
        &self,
        account_key: &str,
        source: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<FailureState>;
    /// Locks the pair until `until`, resetting its failure count and counting the lockout.
    async fn lock_login(
        &self,
        account_key: &str,
        source: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Forgets the pair (a successful login).
    async fn clear_login_failures(&self, account_key: &str, source: &str) -> StoreResult<()>;
    /// Forgets every source's failures and locks for the account, and its account-wide
    /// failure count (an administrator's unlock).
    async fn unlock_account(&self, account_key: &str) -> StoreResult<u64>;
}

/// Everything the server needs from its database.
#[async_trait]
pub trait Store:
    UserStore
    + ClientStore
    + KeyStore
    + EventStore
    + SessionStore
    + ConsentStore
    + GrantStore
    + LoginFailureStore
    + AdminStore
    + BackupStore
    + mfa::MfaStore
    + account::AccountStore
    + DenialStore
    + PushedRequestStore
    + ResourceStore
    + UpstreamStore
    + std::fmt::Debug
{
    /// Applies pending migrations; safe to run concurrently from several processes.
    async fn migrate(&self) -> StoreResult<()>;
    /// One round trip, for readiness checks.
    async fn ping(&self) -> StoreResult<()>;
    /// Connection-pool figures for metrics: (size, idle).
    fn pool_status(&self) -> (u32, u32);
    async fn close(&self);
}

/// Connection settings shared by both backends.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub url: String,
    /// Whom pg_dump connects as (a read-only role); `url` when None.
    pub backup_url: Option<String>,
    pub max_connections: u32,
    pub acquire_timeout: std::time::Duration,
}

/// Opens the backend the URL names. The only place that picks a concrete store.
pub async fn connect(options: &ConnectOptions) -> StoreResult<std::sync::Arc<dyn Store>> {
    if options.url.starts_with("sqlite:") {
        Ok(std::sync::Arc::new(SqliteStore::connect(options).await?))
    } else {
        Ok(std::sync::Arc::new(PgStore::connect(options).await?))
    }
}

/// Maps a sqlx error to the store's own, keeping its cause as text.
pub(crate) fn map_sqlx(err: sqlx::Error) -> StoreError {
    let mapped = classify_sqlx(err);
    if matches!(mapped, StoreError::Unavailable(_)) {
        // What `IdpDatabaseUnavailable` alerts on: an outage or a failover in progress.
        metrics::counter!("idp_database_unavailable_total").increment(1);
    }
    mapped
}

fn classify_sqlx(err: sqlx::Error) -> StoreError {
    match &err {
        // A protocol error is the connection's, not the request's: a load balancer with no
        // primary behind it (a failover) accepts and closes, and the TLS negotiation then
        // reads garbage ("unexpected response from SSLRequest"). The drill saw it as a 500.
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(err.to_string()),
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            let constraint = db.constraint().unwrap_or_default().to_string() + db.message();
            StoreError::Conflict(conflict_subject(&constraint))
        }
        sqlx::Error::Database(db) if is_unavailable_code(db.code().as_deref()) => {
            StoreError::Unavailable(err.to_string())
        }
        _ => StoreError::Other(err.to_string()),
    }
}

/// PostgreSQL SQLSTATE classes 08 (connection) and 57P (operator intervention, e.g. shutdown);
/// 25006 (read-only transaction: a standby answered, a failover is under way); SQLite's
/// SQLITE_BUSY (5) and SQLITE_CANTOPEN (14).
fn is_unavailable_code(code: Option<&str>) -> bool {
    matches!(code, Some(c) if c.starts_with("08") || c.starts_with("57P") || c == "25006" || c == "5" || c == "14")
}

fn conflict_subject(constraint: &str) -> &'static str {
    if constraint.contains("username") {
        "a user with this username"
    } else if constraint.contains("email") {
        "a user with this email"
    } else if constraint.contains("federated_identities") {
        "a link of this upstream identity"
    } else if constraint.contains("upstream_providers") {
        "an upstream provider with this slug"
    } else if constraint.contains("resource_servers") {
        "a resource server with this identifier"
    } else if constraint.contains("clients") {
        "a client with this id"
    } else if constraint.contains("signing_keys") {
        "a signing key with this kid"
    } else {
        "a record with this key"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a request meets during a failover is "unavailable" (503 + Retry-After), never
    /// an internal error.
    #[test]
    fn connection_trouble_is_unavailable() {
        for err in [
            sqlx::Error::Protocol("unexpected response from SSLRequest: 0x00".into()),
            sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset)),
            sqlx::Error::PoolTimedOut,
        ] {
            let shown = err.to_string();
            assert!(matches!(map_sqlx(err), StoreError::Unavailable(_)), "{shown}");
        }
        assert!(matches!(map_sqlx(sqlx::Error::RowNotFound), StoreError::Other(_)));
    }
}
