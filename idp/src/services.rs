//! The dependencies every flow needs, built once from the settings and passed explicitly.

use std::sync::Arc;

use crate::config::Settings;
use crate::domain::clock::{Clock, SystemClock};
use crate::security::client_secret::SecretHasher;
use crate::security::denylist::{DenyList, RedisDenyList, StoreDenyList};
use crate::security::keyring::{KeyRing, Keys};
use crate::security::keys::{KeyEncryptor, KeyError};
use crate::security::master_key::{self, MasterKey, MasterKeyError};
use crate::security::password::{PasswordError, PasswordHasher};
use crate::security::redis_connections::RedisConnections;
use crate::store::{self, ConnectOptions, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// A setting is unusable: exit code 2, one line naming it.
    #[error("invalid configuration: {setting}: {problem}")]
    Config { setting: &'static str, problem: String },
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error(transparent)]
    Keys(#[from] KeyError),
}

impl StartupError {
    fn config(setting: &'static str, problem: impl std::fmt::Display) -> Self {
        Self::Config {
            setting,
            problem: problem.to_string(),
        }
    }
}

#[derive(Clone)]
pub struct Services {
    pub settings: Arc<Settings>,
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub passwords: PasswordHasher,
    pub secrets: Arc<SecretHasher>,
    /// Hashes opaque tokens (codes, refresh tokens, session cookies) for storage.
    pub tokens: Arc<SecretHasher>,
    pub key_encryptor: Arc<KeyEncryptor>,
    pub keys: Keys,
    /// The key of the DPoP nonces (an HMAC of the minute: every replica knows them).
    pub dpop_nonce_key: Arc<crate::security::master_key::DerivedKey>,
    /// The key that signs interactions and CSRF tokens.
    pub interaction_key: Arc<crate::security::master_key::DerivedKey>,
    /// The key that encrypts saved token responses (refresh reuse window).
    pub response_key: Arc<KeyEncryptor>,
    /// The key that encrypts second-factor secrets (TOTP keys) at rest.
    pub mfa_key: Arc<KeyEncryptor>,
    /// The key that encrypts queued mail (it may carry a reset link) at rest.
    pub mail_key: Arc<KeyEncryptor>,
    /// The key that encrypts the secrets of `client_secret_jwt` clients at rest.
    pub client_secret_key: Arc<KeyEncryptor>,
    /// The key that encrypts this provider's client secrets at upstream providers.
    pub upstream_secret_key: Arc<KeyEncryptor>,
    /// The SMTP server; `None` when none is configured (the embedded default).
    pub mailer: Option<crate::mail::SharedMailer>,
    /// The login-page themes, which also hold the mail templates.
    pub themes: Arc<crate::login::themes::Themes>,
    /// The WebAuthn relying party; `None` when the issuer has no domain name to bind
    /// passkeys to (an IP address).
    pub passkeys: Option<Arc<crate::security::passkeys::Passkeys>>,
    pub redis: Option<RedisConnections>,
    pub deny_list: Arc<dyn DenyList>,
    /// One-time use of client-assertion and DPoP-proof identifiers.
    pub replay: Arc<dyn crate::security::replay::ReplayCache>,
    /// The public keys of clients that publish them at a `jwks_uri`, fetched and cached.
    pub client_keys: Arc<crate::security::client_keys::ClientKeys>,
    pub clients: Arc<crate::store::ClientCache>,
    pub rate_limiter: Arc<dyn crate::security::ratelimit::RateLimiter>,
    pub trusted_proxies: Arc<crate::http::meta::TrustedProxies>,
    /// Origins allowed to call the CORS endpoints (those of registered redirect URIs).
    pub cors_origins: Arc<crate::http::cors::AllowedOrigins>,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl Services {
    /// Opens the database (creating the data directory for SQLite), migrates it when
    /// `migrate` is set, and loads or creates the master key.
    pub async fn build(settings: Settings, migrate: bool) -> Result<Self, StartupError> {
        // Several dependencies bring rustls; its crypto is aws-lc-rs, like ours.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        if settings.uses_sqlite() {
            prepare_data_dir(&settings)?;
        }
        let master = load_master_key(&settings)?;
        let store = store::connect(&ConnectOptions {
            url: settings.database_url(),
            backup_url: settings
                .backup_database_url
                .as_ref()
                .map(|url| secrecy::ExposeSecret::expose_secret(url).to_string()),
            max_connections: settings.database_max_connections,
            acquire_timeout: std::time::Duration::from_millis(settings.database_acquire_timeout_ms),
        })
        .await
        .map_err(|e| StartupError::config("database_url", describe_store_error(&e)))?;
        if migrate {
            store
                .migrate()
                .await
                .map_err(|e| StartupError::config("database_url", e))?;
        } else {
            store
                .ping()
                .await
                .map_err(|e| StartupError::config("database_url", describe_store_error(&e)))?;
        }
        let redis = match &settings.redis_url {
            Some(url) => Some(
                RedisConnections::connect(
                    secrecy::ExposeSecret::expose_secret(url),
                    settings.redis_ca_file.as_deref(),
                    std::time::Duration::from_secs(5),
                )
                .await
                .map_err(|e| StartupError::config("redis_url", format!("cannot reach Redis ({e})")))?,
            ),
            None => None,
        };
        let deny_list: Arc<dyn DenyList> = match &redis {
            Some(redis) => Arc::new(RedisDenyList::new(redis.clone(), &settings.redis_key_prefix)),
            None => Arc::new(StoreDenyList::new(store.clone())),
        };
        let rate_limiter: Arc<dyn crate::security::ratelimit::RateLimiter> = match &redis {
            Some(redis) => Arc::new(crate::security::ratelimit::RedisRateLimiter::new(
                redis.clone(),
                &settings.redis_key_prefix,
            )),
            None => Arc::new(crate::security::ratelimit::MemoryRateLimiter::default()),
        };
        let replay: Arc<dyn crate::security::replay::ReplayCache> = match &redis {
            Some(redis) => Arc::new(crate::security::replay::RedisReplayCache::new(
                redis.clone(),
                &settings.redis_key_prefix,
            )),
            None => Arc::new(crate::security::replay::MemoryReplayCache::default()),
        };
        Ok(Self {
            replay,
            client_keys: Arc::new(crate::security::client_keys::ClientKeys::new()),
            response_key: Arc::new(KeyEncryptor::new(
                &master.derive(master_key::SAVED_RESPONSE_ENCRYPTION),
            )?),
            mfa_key: Arc::new(KeyEncryptor::new(
                &master.derive(master_key::MFA_SECRET_ENCRYPTION),
            )?),
            themes: Arc::new(
                crate::login::themes::Themes::load(&settings.themes_dir, &settings.theme)
                    .map_err(|e| StartupError::config("theme", e))?,
            ),
            mail_key: Arc::new(KeyEncryptor::new(&master.derive(master_key::MAIL_ENCRYPTION))?),
            client_secret_key: Arc::new(KeyEncryptor::new(
                &master.derive(master_key::CLIENT_SECRET_ENCRYPTION),
            )?),
            upstream_secret_key: Arc::new(KeyEncryptor::new(
                &master.derive(master_key::UPSTREAM_SECRET_ENCRYPTION),
            )?),
            mailer: crate::mail::Mailer::from_settings(&settings)
                .map_err(|(setting, problem)| StartupError::config(setting, problem))?
                .map(Arc::new),
            passkeys: crate::security::passkeys::Passkeys::from_settings(&settings, "AImpact Identity")
                .map_err(|e| StartupError::config("passkey_rp_id", e))?
                .map(Arc::new),
            redis,
            deny_list,
            rate_limiter,
            cors_origins: Arc::new(crate::http::cors::AllowedOrigins::new(
                std::time::Duration::from_secs(5),
            )),
            trusted_proxies: Arc::new(
                crate::http::meta::TrustedProxies::parse(&settings.trusted_proxies)
                    .map_err(|e| StartupError::config("trusted_proxies", e))?,
            ),
            clients: Arc::new(crate::store::ClientCache::new(std::time::Duration::from_millis(
                settings.client_cache_ttl_ms,
            ))),
            passwords: PasswordHasher::new(settings.password_hash_concurrency)?,
            secrets: Arc::new(SecretHasher::new(
                &master.derive(master_key::CLIENT_SECRET_PEPPER),
            )),
            tokens: Arc::new(SecretHasher::new(&master.derive(master_key::TOKEN_HASH_PEPPER))),
            keys: Keys::new(KeyRing::empty()),
            interaction_key: Arc::new(master.derive(master_key::CSRF_KEY)),
            dpop_nonce_key: Arc::new(master.derive(master_key::DPOP_NONCE_KEY)),
            key_encryptor: Arc::new(KeyEncryptor::new(
                &master.derive(master_key::SIGNING_KEY_ENCRYPTION),
            )?),
            settings: Arc::new(settings),
            store,
            clock: Arc::new(SystemClock),
        })
    }
}

impl Services {
    /// How long a superseded signing key stays published: until every token it signed has expired.
    pub fn key_retention(&self) -> chrono::Duration {
        let longest = self.settings.access_token_ttl_s.max(self.settings.id_token_ttl_s);
        crate::domain::clock::seconds(crate::domain::clock::secs(longest).saturating_add(300))
    }

    /// Reloads the signing keys from the store.
    pub async fn reload_keys(&self) -> Result<(), String> {
        self.keys
            .reload(
                self.store.as_ref(),
                &self.key_encryptor,
                self.clock.now(),
                self.key_retention(),
            )
            .await
    }
}

fn describe_store_error(e: &StoreError) -> String {
    match e {
        StoreError::Unavailable(cause) => format!("cannot reach the database ({cause})"),
        other => other.to_string(),
    }
}

fn prepare_data_dir(settings: &Settings) -> Result<(), StartupError> {
    let dir = &settings.data_dir;
    std::fs::create_dir_all(dir)
        .map_err(|e| StartupError::config("data_dir", format!("{}: {e}", dir.display())))?;
    // Fail now, with the setting's name, rather than on the first write.
    let probe = dir.join(".write-test");
    std::fs::write(&probe, b"")
        .and_then(|()| std::fs::remove_file(&probe))
        .map_err(|e| StartupError::config("data_dir", format!("{} is not writable: {e}", dir.display())))
}

fn load_master_key(settings: &Settings) -> Result<MasterKey, StartupError> {
    let as_config = |e: MasterKeyError| StartupError::config("master_key", e);
    match &settings.master_key {
        Some(encoded) => MasterKey::parse(encoded).map_err(as_config),
        None if settings.uses_sqlite() => {
            MasterKey::load_or_create_file(&settings.data_dir.join("master.key")).map_err(as_config)
        }
        None => Err(StartupError::config(
            "master_key",
            "required with PostgreSQL so that every replica shares it; generate one with `idp keys generate-master`",
        )),
    }
}
