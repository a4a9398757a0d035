//! The one typed configuration, loaded once at start-up and passed explicitly.
//!
//! Layers, later ones winning: built-in defaults, then an optional TOML file
//! (`--config FILE` or `IDP_CONFIG`), then environment variables `IDP_<KEY>`.
//! Any setting can also be read from a file named by `IDP_<KEY>_FILE`, the way
//! Kubernetes mounts secrets. Every setting is documented in [`SETTINGS`], from
//! which `docs/configuration.md` is generated (`idp config docs`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use secrecy::SecretString;

mod reference;
pub use reference::{Kind, SETTINGS, SettingDoc, reference_markdown};
use serde::Deserialize;
use url::Url;

/// The longest duration any setting may have.
const TEN_YEARS_S: u64 = 10 * 365 * 24 * 3600;

/// A configuration problem: names the setting and what is wrong with it.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {setting}: {problem}")]
pub struct ConfigError {
    pub setting: String,
    pub problem: String,
}

impl ConfigError {
    pub fn new(setting: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            setting: setting.into(),
            problem: problem.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// JSON when standard error is not a terminal, pretty otherwise.
    Auto,
    Json,
    Pretty,
}

/// All settings of the server. Field documentation lives in [`SETTINGS`].
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub issuer: Url,
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: Option<SecretString>,
    pub backup_database_url: Option<SecretString>,
    pub database_max_connections: u32,
    pub database_acquire_timeout_ms: u64,
    pub migrate_on_start: bool,
    pub redis_url: Option<SecretString>,
    pub redis_key_prefix: String,
    pub redis_ca_file: Option<PathBuf>,
    pub log_format: LogFormat,
    pub log_level: String,
    pub master_key: Option<SecretString>,
    pub bootstrap_admin_password: Option<SecretString>,
    pub shutdown_grace_s: u64,
    pub shutdown_drain_s: u64,
    pub request_timeout_ms: u64,
    pub max_body_bytes: usize,
    pub password_hash_concurrency: usize,
    pub access_token_ttl_s: u64,
    pub access_token_signing_alg: String,
    pub id_token_ttl_s: u64,
    pub authorization_code_ttl_s: u64,
    pub refresh_token_ttl_s: u64,
    pub session_ttl_s: u64,
    pub key_activation_delay_s: u64,
    pub deny_list_unavailable: String,
    pub cleanup_interval_s: u64,
    pub cleanup_batch: u32,
    pub backchannel_logout_timeout_ms: u64,
    pub client_cache_ttl_ms: u64,
    pub rate_limit_login_ip_per_minute: u32,
    pub login_account_failures_before_slowdown: u32,
    pub login_failures_ip_per_minute: u32,
    pub login_failures_ip_burst: u32,
    pub lockout_threshold: u32,
    pub lockout_initial_s: u64,
    pub lockout_max_s: u64,
    pub rate_limit_token_per_minute: u32,
    pub rate_limit_introspect_per_minute: u32,
    pub rate_limit_admin_per_minute: u32,
    pub mfa: crate::domain::mfa::MfaPolicy,
    pub mfa_required_for_admins: bool,
    pub passkey_rp_id: Option<String>,
    pub passkey_origins: String,
    pub smtp_url: Option<SecretString>,
    pub smtp_from: Option<String>,
    pub smtp_ca_file: Option<PathBuf>,
    pub smtp_timeout_ms: u64,
    pub password_reset_per_hour: u32,
    pub password_reset_ip_per_hour: u32,
    pub password_reset_link_ttl_s: u64,
    pub registration: bool,
    pub registration_domains: String,
    pub registration_per_hour: u32,
    pub registration_ip_per_hour: u32,
    pub trusted_proxies: String,
    pub security_event_retention_days: u32,
    pub admin_ui_dir: Option<PathBuf>,
    pub backup_interval_s: u64,
    pub backup_dir: Option<PathBuf>,
    pub backup_keep: u32,
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    pub tls_min_version: String,
    pub tls_reload_interval_ms: u64,
    pub http_redirect_listen: Option<SocketAddr>,
    pub metrics_listen: Option<SocketAddr>,
    pub themes_dir: PathBuf,
    pub theme: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            issuer: Url::parse("http://127.0.0.1:8080").unwrap_or_else(|_| unreachable!()),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./data"),
            database_url: None,
            backup_database_url: None,
            database_max_connections: 10,
            database_acquire_timeout_ms: 3000,
            migrate_on_start: true,
            redis_url: None,
            redis_key_prefix: "idp:".into(),
            redis_ca_file: None,
            log_format: LogFormat::Auto,
            log_level: "info".into(),
            master_key: None,
            bootstrap_admin_password: None,
            shutdown_grace_s: 30,
            shutdown_drain_s: 0,
            request_timeout_ms: 10_000,
            max_body_bytes: 64 * 1024,
            password_hash_concurrency: std::thread::available_parallelism().map_or(2, |n| n.get()),
            access_token_ttl_s: 600,
            access_token_signing_alg: "RS256".into(),
            id_token_ttl_s: 3600,
            authorization_code_ttl_s: 60,
            refresh_token_ttl_s: 30 * 24 * 3600,
            session_ttl_s: 12 * 3600,
            key_activation_delay_s: 3600,
            deny_list_unavailable: "error".into(),
            cleanup_interval_s: 300,
            cleanup_batch: 1000,
            backchannel_logout_timeout_ms: 5000,
            client_cache_ttl_ms: 1000,
            rate_limit_login_ip_per_minute: 120,
            login_account_failures_before_slowdown: 10,
            login_failures_ip_per_minute: 10,
            login_failures_ip_burst: 50,
            lockout_threshold: 5,
            lockout_initial_s: 60,
            lockout_max_s: 900,
            rate_limit_token_per_minute: 120_000,
            rate_limit_introspect_per_minute: 300_000,
            rate_limit_admin_per_minute: 600,
            mfa: crate::domain::mfa::MfaPolicy::Optional,
            mfa_required_for_admins: true,
            passkey_rp_id: None,
            passkey_origins: String::new(),
            smtp_url: None,
            smtp_from: None,
            smtp_ca_file: None,
            smtp_timeout_ms: 10_000,
            password_reset_per_hour: 5,
            password_reset_ip_per_hour: 30,
            password_reset_link_ttl_s: 1800,
            registration: false,
            registration_domains: String::new(),
            registration_per_hour: 3,
            registration_ip_per_hour: 10,
            trusted_proxies: String::new(),
            security_event_retention_days: 365,
            admin_ui_dir: None,
            backup_interval_s: 86_400,
            backup_dir: None,
            backup_keep: 7,
            tls_cert_file: None,
            tls_key_file: None,
            tls_min_version: "1.2".into(),
            tls_reload_interval_ms: 10_000,
            http_redirect_listen: None,
            metrics_listen: None,
            themes_dir: PathBuf::from("./themes"),
            theme: "default".into(),
        }
    }
}

impl Settings {
    /// Loads defaults, then `file` (if any), then the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_from(file, |name| std::env::var(name).ok())
    }

    /// Like [`Settings::load`] with an explicit environment, for tests.
    pub fn load_from(file: Option<&Path>, env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut table = match file {
            Some(path) => read_toml(path)?,
            None => toml::Table::new(),
        };
        for setting in SETTINGS {
            if let Some(value) = env_value(setting, &env)? {
                table.insert(setting.key.to_string(), value);
            }
        }
        let settings: Settings = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| deserialize_error(&e))?;
        settings.validate()?;
        Ok(settings)
    }

    /// The email domains self-registration is open to, lower-cased (empty: any).
    pub fn registration_domain_list(&self) -> Result<Vec<String>, String> {
        let mut domains = Vec::new();
        for part in self.registration_domains.split(',').map(str::trim) {
            if part.is_empty() {
                continue;
            }
            let domain = part.to_ascii_lowercase();
            let valid = domain.len() <= 253
                && domain.split('.').count() >= 2
                && domain.split('.').all(|label| {
                    !label.is_empty()
                        && label.len() <= 63
                        && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                });
            if !valid {
                return Err(format!("{part:?} is not a domain name like example.com"));
            }
            domains.push(domain);
        }
        Ok(domains)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        // OIDC Discovery §3: the issuer is an https URL without query or fragment;
        // plain http is allowed for local development.
        let issuer = &self.issuer;
        if !matches!(issuer.scheme(), "http" | "https") {
            return Err(ConfigError::new("issuer", "must be an http or https URL"));
        }
        if issuer.query().is_some() || issuer.fragment().is_some() {
            return Err(ConfigError::new("issuer", "must not have a query or fragment"));
        }
        if issuer.host_str().is_none() || issuer.cannot_be_a_base() {
            return Err(ConfigError::new("issuer", "must have a host"));
        }
        if !matches!(
            self.log_format,
            LogFormat::Auto | LogFormat::Json | LogFormat::Pretty
        ) {
            return Err(ConfigError::new("log_format", "must be json, pretty or auto"));
        }
        tracing_subscriber::EnvFilter::try_new(&self.log_level)
            .map_err(|e| ConfigError::new("log_level", e.to_string()))?;
        if self.database_max_connections == 0 {
            return Err(ConfigError::new("database_max_connections", "must be at least 1"));
        }
        if self.password_hash_concurrency == 0 {
            return Err(ConfigError::new(
                "password_hash_concurrency",
                "must be at least 1",
            ));
        }
        for (name, value) in [
            ("access_token_ttl_s", self.access_token_ttl_s),
            ("id_token_ttl_s", self.id_token_ttl_s),
            ("authorization_code_ttl_s", self.authorization_code_ttl_s),
            ("refresh_token_ttl_s", self.refresh_token_ttl_s),
            ("session_ttl_s", self.session_ttl_s),
        ] {
            if value == 0 || value > TEN_YEARS_S {
                return Err(ConfigError::new(name, "must be between 1 second and 10 years"));
            }
        }
        // Every other duration is bounded too: time arithmetic on them cannot overflow.
        for (name, value) in [
            ("key_activation_delay_s", self.key_activation_delay_s),
            ("lockout_initial_s", self.lockout_initial_s),
            ("lockout_max_s", self.lockout_max_s),
            ("cleanup_interval_s", self.cleanup_interval_s),
            ("backup_interval_s", self.backup_interval_s),
            ("shutdown_grace_s", self.shutdown_grace_s),
            ("shutdown_drain_s", self.shutdown_drain_s),
            ("request_timeout_ms", self.request_timeout_ms / 1000),
            (
                "backchannel_logout_timeout_ms",
                self.backchannel_logout_timeout_ms / 1000,
            ),
            ("client_cache_ttl_ms", self.client_cache_ttl_ms / 1000),
            (
                "database_acquire_timeout_ms",
                self.database_acquire_timeout_ms / 1000,
            ),
            ("tls_reload_interval_ms", self.tls_reload_interval_ms / 1000),
            ("smtp_timeout_ms", self.smtp_timeout_ms / 1000),
        ] {
            if value > TEN_YEARS_S {
                return Err(ConfigError::new(name, "must be at most 10 years"));
            }
        }
        if !matches!(
            self.access_token_signing_alg.as_str(),
            "RS256" | "PS256" | "ES256" | "EdDSA"
        ) {
            return Err(ConfigError::new(
                "access_token_signing_alg",
                "must be RS256, PS256, ES256 or EdDSA",
            ));
        }
        if !matches!(self.deny_list_unavailable.as_str(), "error" | "inactive") {
            return Err(ConfigError::new(
                "deny_list_unavailable",
                "must be error or inactive",
            ));
        }
        if self.cleanup_batch == 0 {
            return Err(ConfigError::new("cleanup_batch", "must be at least 1"));
        }
        if self.backup_keep == 0 {
            return Err(ConfigError::new("backup_keep", "must be at least 1"));
        }
        if self.lockout_threshold == 0 {
            return Err(ConfigError::new("lockout_threshold", "must be at least 1"));
        }
        if !(1..=86_400).contains(&self.password_reset_link_ttl_s) {
            return Err(ConfigError::new(
                "password_reset_link_ttl_s",
                "must be between 1 second and 1 day",
            ));
        }
        if self.registration && self.smtp_url.is_none() {
            // Self-registration proves the address by a mailed link (docs/account.md).
            return Err(ConfigError::new(
                "registration",
                "needs outgoing mail: set smtp_url and smtp_from too",
            ));
        }
        self.registration_domain_list()
            .map_err(|e| ConfigError::new("registration_domains", e))?;
        crate::http::meta::TrustedProxies::parse(&self.trusted_proxies)
            .map_err(|e| ConfigError::new("trusted_proxies", e))?;
        if self.tls_cert_file.is_some() != self.tls_key_file.is_some() {
            return Err(ConfigError::new(
                "tls_cert_file",
                "tls_cert_file and tls_key_file go together",
            ));
        }
        if self.tls_cert_file.is_some() && self.issuer.scheme() != "https" {
            return Err(ConfigError::new(
                "issuer",
                "must be an https URL when the server terminates TLS itself",
            ));
        }
        if !matches!(self.tls_min_version.as_str(), "1.2" | "1.3") {
            return Err(ConfigError::new("tls_min_version", "must be 1.2 or 1.3"));
        }
        if self.http_redirect_listen.is_some() && self.tls_cert_file.is_none() {
            return Err(ConfigError::new(
                "http_redirect_listen",
                "redirects to https, so it needs tls_cert_file and tls_key_file",
            ));
        }
        if let Some(metrics) = self.metrics_listen
            && metrics.port() != 0
            && (metrics.port() == self.listen.port()
                || self
                    .http_redirect_listen
                    .is_some_and(|r| r.port() == metrics.port()))
        {
            return Err(ConfigError::new(
                "metrics_listen",
                "must be a port of its own, not the listen or redirect port",
            ));
        }
        if self.tls_reload_interval_ms < 100 {
            return Err(ConfigError::new("tls_reload_interval_ms", "must be at least 100"));
        }
        let url = self.database_url();
        if !(url.starts_with("sqlite:") || url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            return Err(ConfigError::new(
                "database_url",
                "must start with sqlite:, postgres:// or postgresql://",
            ));
        }
        if let Some(redis) = &self.redis_url {
            let redis = secrecy::ExposeSecret::expose_secret(redis);
            if !(redis.starts_with("redis://") || redis.starts_with("rediss://")) {
                return Err(ConfigError::new(
                    "redis_url",
                    "must start with redis:// or rediss://",
                ));
            }
        }
        Ok(())
    }

    /// The database URL, defaulting to a SQLite file in the data directory.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => secrecy::ExposeSecret::expose_secret(url).to_string(),
            None => format!("sqlite://{}", self.data_dir.join("idp.db").display()),
        }
    }

    /// Where the embedded default's scheduled backups go.
    pub fn backup_dir(&self) -> PathBuf {
        self.backup_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("backups"))
    }

    pub fn uses_sqlite(&self) -> bool {
        self.database_url().starts_with("sqlite:")
    }

    /// The issuer without a trailing slash, the base of every endpoint URL.
    pub fn issuer_str(&self) -> &str {
        self.issuer.as_str().trim_end_matches('/')
    }
}

fn read_toml(path: &Path) -> Result<toml::Table, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new("config file", format!("{}: {e}", path.display())))?;
    text.parse::<toml::Table>()
        .map_err(|e| deserialize_error_in(path, &e))
}

fn deserialize_error(e: &toml::de::Error) -> ConfigError {
    // toml reports "unknown field `x`, expected one of ..." or "invalid type ..." with the key path.
    let message = e.message().lines().next().unwrap_or("invalid value").to_string();
    let setting = message
        .split('`')
        .nth(1)
        .filter(|_| message.starts_with("unknown field"))
        .map(str::to_string)
        .unwrap_or_else(|| "settings".into());
    ConfigError::new(setting, message)
}

fn deserialize_error_in(path: &Path, e: &toml::de::Error) -> ConfigError {
    let first_line = e.message().lines().next().unwrap_or("malformed TOML");
    let position = e
        .span()
        .map(|span| format!(" (at byte {})", span.start))
        .unwrap_or_default();
    ConfigError::new(
        format!("config file {}", path.display()),
        format!("{first_line}{position}"),
    )
}

/// Reads `IDP_<KEY>` or `IDP_<KEY>_FILE` and converts the text to the setting's kind.
fn env_value(
    setting: &SettingDoc,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Option<toml::Value>, ConfigError> {
    let name = setting.env_var();
    let file_name = format!("{name}_FILE");
    let text = match (env(&name), env(&file_name)) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::new(
                name,
                format!("set both it and {file_name}; choose one"),
            ));
        }
        (Some(text), None) => text,
        (None, Some(path)) => std::fs::read_to_string(&path)
            .map(|t| t.trim_end_matches(['\n', '\r']).to_string())
            .map_err(|e| ConfigError::new(&file_name, format!("{path}: {e}")))?,
        (None, None) => return Ok(None),
    };
    let value = match setting.kind {
        Kind::Text | Kind::Secret => toml::Value::String(text),
        Kind::Integer => text
            .trim()
            .parse::<i64>()
            .map(toml::Value::Integer)
            .map_err(|_| ConfigError::new(&name, format!("expected a whole number, got {text:?}")))?,
        Kind::Bool => match text.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => toml::Value::Boolean(true),
            "false" | "0" | "no" | "off" => toml::Value::Boolean(false),
            _ => {
                return Err(ConfigError::new(
                    &name,
                    format!("expected true or false, got {text:?}"),
                ));
            }
        },
    };
    Ok(Some(value))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::collections::HashMap;

    fn load(env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let env: HashMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::load_from(None, |k| env.get(k).cloned())
    }

    #[test]
    fn defaults_need_no_configuration() {
        let s = load(&[]).unwrap();
        assert_eq!(s.issuer_str(), "http://127.0.0.1:8080");
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert!(s.uses_sqlite());
        assert!(s.database_url().ends_with("data/idp.db"));
        assert!(s.redis_url.is_none());
    }

    #[test]
    fn environment_overrides_with_typed_values() {
        let s = load(&[
            ("IDP_LISTEN", "0.0.0.0:9000"),
            ("IDP_MIGRATE_ON_START", "false"),
            ("IDP_ACCESS_TOKEN_TTL_S", "60"),
        ])
        .unwrap();
        assert_eq!(s.listen.port(), 9000);
        assert!(!s.migrate_on_start);
        assert_eq!(s.access_token_ttl_s, 60);
    }

    #[test]
    fn an_issuer_with_a_query_is_refused_naming_the_setting() {
        let e = load(&[("IDP_ISSUER", "https://idp.example.com/?a=b")]).unwrap_err();
        assert_eq!(e.setting, "issuer");
        assert!(e.to_string().contains("query"));
    }

    #[test]
    fn registration_needs_mail_and_takes_only_domain_names() {
        let e = load(&[("IDP_REGISTRATION", "true")]).unwrap_err();
        assert_eq!(e.setting, "registration");
        let mail = [
            ("IDP_REGISTRATION", "true"),
            ("IDP_SMTP_URL", "smtp://127.0.0.1:2525"),
            ("IDP_SMTP_FROM", "no-reply@example.com"),
        ];
        let s = load(&mail).unwrap();
        assert!(s.registration_domain_list().unwrap().is_empty(), "any domain");
        let with = |domains: &'static str| {
            let mut env = mail.to_vec();
            env.push(("IDP_REGISTRATION_DOMAINS", domains));
            load(&env)
        };
        let s = with(" Example.COM, example.org ").unwrap();
        assert_eq!(
            s.registration_domain_list().unwrap(),
            ["example.com", "example.org"]
        );
        for bad in ["@example.com", "example", "exa mple.com", "*.example.com"] {
            let e = with(bad).unwrap_err();
            assert_eq!(e.setting, "registration_domains", "{bad}");
        }
    }

    #[test]
    fn a_malformed_number_names_the_variable() {
        let e = load(&[("IDP_SHUTDOWN_GRACE_S", "soon")]).unwrap_err();
        assert_eq!(e.setting, "IDP_SHUTDOWN_GRACE_S");
    }

    #[test]
    fn an_unknown_key_in_the_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("idp.toml");
        std::fs::write(
            &path,
            "issuer = \"https://idp.example.com\"\nlisten_adress = \"x\"\n",
        )
        .unwrap();
        let e = Settings::load_from(Some(&path), |_| None).unwrap_err();
        assert_eq!(e.setting, "listen_adress");
    }

    #[test]
    fn secrets_can_come_from_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        std::fs::write(&path, "postgres://u:p@localhost/db\n").unwrap();
        let s = load(&[("IDP_DATABASE_URL_FILE", path.to_str().unwrap())]).unwrap();
        assert_eq!(s.database_url(), "postgres://u:p@localhost/db");
        assert!(
            !format!("{s:?}").contains("u:p@"),
            "secrets must not appear in Debug output"
        );
    }

    #[test]
    fn every_field_of_settings_is_documented() {
        // serde lists every accepted field when it meets an unknown one.
        let err = toml::from_str::<Settings>("not_a_setting = 1")
            .unwrap_err()
            .to_string();
        let expected = err.split("expected one of").nth(1).unwrap();
        let mut fields: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
        let mut documented: Vec<&str> = SETTINGS.iter().map(|s| s.key).collect();
        fields.sort();
        documented.sort();
        assert_eq!(fields, documented);
    }

    #[test]
    fn every_documented_setting_is_accepted_by_settings() {
        for s in SETTINGS {
            let value = match s.kind {
                Kind::Integer => "1".to_string(),
                Kind::Bool => "true".to_string(),
                _ if s.key == "issuer" => "\"https://idp.example.com\"".into(),
                _ if s.key == "listen" || s.key == "http_redirect_listen" => "\"127.0.0.1:1\"".into(),
                _ if s.key == "metrics_listen" => "\"127.0.0.1:2\"".into(),
                _ if s.key == "database_url" => "\"sqlite://x.db\"".into(),
                _ if s.key == "redis_url" => "\"redis://127.0.0.1\"".into(),
                _ if s.key == "log_format" => "\"json\"".into(),
                _ if s.key == "log_level" => "\"info\"".into(),
                _ if s.key == "mfa" => "\"required\"".into(),
                _ => "\"x\"".into(),
            };
            let parsed: Result<Settings, _> = toml::from_str(&format!("{} = {value}\n", s.key));
            assert!(parsed.is_ok(), "{} rejected: {:?}", s.key, parsed.err());
        }
    }

    #[test]
    fn the_committed_reference_is_up_to_date() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/configuration.md");
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        if std::env::var_os("UPDATE_DOCS").is_some() {
            std::fs::write(path, reference_markdown()).unwrap();
            return;
        }
        assert_eq!(
            committed,
            reference_markdown(),
            "run `UPDATE_DOCS=1 cargo test -p idp config` to regenerate docs/configuration.md"
        );
    }
}
