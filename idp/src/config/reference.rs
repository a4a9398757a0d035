//! The documentation of every setting, from which `docs/configuration.md` is generated.

/// How an environment variable's text becomes a setting value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Integer,
    Bool,
    /// Text whose value is a secret: never logged, may come from `IDP_<KEY>_FILE`.
    Secret,
}

/// The documentation of one setting.
pub struct SettingDoc {
    pub key: &'static str,
    pub kind: Kind,
    pub default: &'static str,
    pub doc: &'static str,
}

impl SettingDoc {
    pub fn env_var(&self) -> String {
        format!("IDP_{}", self.key.to_ascii_uppercase())
    }
}

/// Every setting, in the order the reference lists them.
pub const SETTINGS: &[SettingDoc] = &[
    SettingDoc {
        key: "issuer",
        kind: Kind::Text,
        default: "http://127.0.0.1:8080",
        doc: "The issuer identifier (OIDC Discovery §4.3): the public base URL of the provider, exactly as relying parties see it. `http` or `https`, no query or fragment.",
    },
    SettingDoc {
        key: "listen",
        kind: Kind::Text,
        default: "127.0.0.1:8080",
        doc: "Address and port the HTTP server binds to. Use `0.0.0.0:8080` in a container; port 0 picks a free port.",
    },
    SettingDoc {
        key: "data_dir",
        kind: Kind::Text,
        default: "./data",
        doc: "Directory for the embedded default: the SQLite database and the generated master key file. Created on first start.",
    },
    SettingDoc {
        key: "database_url",
        kind: Kind::Secret,
        default: "sqlite://<data_dir>/idp.db",
        doc: "`sqlite://PATH` or `postgres://USER:PASSWORD@HOST:PORT/DB`. PostgreSQL is the production backend; it requires `master_key`. TLS (rustls) as libpq spells it: `?sslmode=verify-full&sslrootcert=/path/ca.pem` checks the server's certificate and name against that CA (without `sslrootcert`, against the Mozilla roots); `sslmode=require` encrypts without checking.",
    },
    SettingDoc {
        key: "backup_database_url",
        kind: Kind::Secret,
        default: "(database_url)",
        doc: "PostgreSQL only: whom `idp backup create` runs pg_dump as, so backups can use a role that only reads (deploy/postgres: `idp_backup`, in `pg_read_all_data`). The backup is still recorded through `database_url`.",
    },
    SettingDoc {
        key: "database_max_connections",
        kind: Kind::Integer,
        default: "10",
        doc: "Maximum connections in the database pool of each replica. On PostgreSQL each replica \
              also opens up to 2 more, for refresh-token rotations (group-committed in batches).",
    },
    SettingDoc {
        key: "database_acquire_timeout_ms",
        kind: Kind::Integer,
        default: "3000",
        doc: "How long a request waits for a database connection before it fails with 503.",
    },
    SettingDoc {
        key: "migrate_on_start",
        kind: Kind::Bool,
        default: "true",
        doc: "Apply pending migrations when `idp serve` starts. Concurrent starts are safe (PostgreSQL advisory lock). Set to false to run `idp migrate` as a separate step.",
    },
    SettingDoc {
        key: "redis_url",
        kind: Kind::Secret,
        default: "(unset)",
        doc: "`redis://HOST:PORT/DB`, or `rediss://HOST:PORT/DB` for TLS (the server's certificate checked against the system's roots, or `redis_ca_file`). When set, rate limits and the token deny-list are shared through Redis by all replicas; when unset they are in-process.",
    },
    SettingDoc {
        key: "redis_ca_file",
        kind: Kind::Text,
        default: "(the system's CA roots)",
        doc: "PEM file of the CA that signed the Redis server's certificate, for `rediss://` to a private CA (it replaces the system's roots).",
    },
    SettingDoc {
        key: "redis_key_prefix",
        kind: Kind::Text,
        default: "idp:",
        doc: "Prefix of every Redis key this deployment writes, so several deployments can share one Redis.",
    },
    SettingDoc {
        key: "log_format",
        kind: Kind::Text,
        default: "auto",
        doc: "`json` (one object per line, for log pipelines), `pretty` (for people), or `auto` (pretty on a terminal, JSON otherwise).",
    },
    SettingDoc {
        key: "log_level",
        kind: Kind::Text,
        default: "info",
        doc: "A `tracing` filter: `info`, `debug`, or per target such as `info,idp::store=debug`.",
    },
    SettingDoc {
        key: "master_key",
        kind: Kind::Secret,
        default: "(generated into <data_dir>/master.key)",
        doc: "32 random bytes, base64. Every server key is derived from it (HKDF-SHA-256): the key that encrypts signing keys at rest and the pepper of client-secret hashes. All replicas must share it; generate one with `idp keys generate-master`. Required with PostgreSQL.",
    },
    SettingDoc {
        key: "bootstrap_admin_password",
        kind: Kind::Secret,
        default: "(random, printed once)",
        doc: "Password of the `admin` user created on first start when no administrator exists. Unset: a random password is generated and printed once.",
    },
    SettingDoc {
        key: "shutdown_grace_s",
        kind: Kind::Integer,
        default: "30",
        doc: "On SIGTERM or SIGINT, stop accepting connections and give in-flight requests this long to finish.",
    },
    SettingDoc {
        key: "shutdown_drain_s",
        kind: Kind::Integer,
        default: "0",
        doc: "On SIGTERM or SIGINT, first keep serving this long while `/readyz` answers 503 `draining`, so a load balancer that polls readiness stops sending requests before the server stops accepting. 0 (the default, and right on Kubernetes, where a preStop pause does it): stop accepting at once.",
    },
    SettingDoc {
        key: "request_timeout_ms",
        kind: Kind::Integer,
        default: "10000",
        doc: "Time a client has to send the request head; slower clients get 408.",
    },
    SettingDoc {
        key: "max_body_bytes",
        kind: Kind::Integer,
        default: "65536",
        doc: "Largest request body accepted; larger ones get 413.",
    },
    SettingDoc {
        key: "password_hash_concurrency",
        kind: Kind::Integer,
        default: "(number of cores)",
        doc: "How many argon2 password hashes run at once on the blocking pool; further logins wait their turn.",
    },
    SettingDoc {
        key: "access_token_ttl_s",
        kind: Kind::Integer,
        default: "600",
        doc: "Lifetime of access tokens in seconds.",
    },
    SettingDoc {
        key: "access_token_signing_alg",
        kind: Kind::Text,
        default: "RS256",
        doc: "Algorithm of access-token signatures unless a client sets its own: `RS256`, `PS256`, `ES256` (fastest to sign) or `EdDSA`.",
    },
    SettingDoc {
        key: "id_token_ttl_s",
        kind: Kind::Integer,
        default: "3600",
        doc: "Lifetime of ID tokens in seconds.",
    },
    SettingDoc {
        key: "authorization_code_ttl_s",
        kind: Kind::Integer,
        default: "60",
        doc: "Lifetime of authorization codes in seconds (single use in any case).",
    },
    SettingDoc {
        key: "refresh_token_ttl_s",
        kind: Kind::Integer,
        default: "2592000",
        doc: "Absolute lifetime of a refresh-token family (a grant) in seconds, unless the client sets its own.",
    },
    SettingDoc {
        key: "session_ttl_s",
        kind: Kind::Integer,
        default: "43200",
        doc: "Lifetime of a login session at the provider (single sign-on) in seconds.",
    },
    SettingDoc {
        key: "key_activation_delay_s",
        kind: Kind::Integer,
        default: "3600",
        doc: "After `idp keys rotate`, the new key is published at once but signs only after this delay, so relying parties that cache the JWKS never meet an unknown `kid`.",
    },
    SettingDoc {
        key: "deny_list_unavailable",
        kind: Kind::Text,
        default: "error",
        doc: "What introspection and userinfo answer when the deny-list (Redis) cannot be reached: `error` (503, the caller retries) or `inactive` (treat every access token as revoked). Never: accept a token that may have been revoked.",
    },
    SettingDoc {
        key: "cleanup_interval_s",
        kind: Kind::Integer,
        default: "300",
        doc: "How often each replica deletes expired codes, tokens, grants, sessions and deny-list entries. 0 disables the background task (run `idp maintenance cleanup` instead).",
    },
    SettingDoc {
        key: "cleanup_batch",
        kind: Kind::Integer,
        default: "1000",
        doc: "Rows deleted per statement by cleanup, so that it never holds long locks.",
    },
    SettingDoc {
        key: "backchannel_logout_timeout_ms",
        kind: Kind::Integer,
        default: "5000",
        doc: "Timeout of each back-channel logout request to a client (three attempts with backoff).",
    },
    SettingDoc {
        key: "client_cache_ttl_ms",
        kind: Kind::Integer,
        default: "1000",
        doc: "How long a replica reuses a client's registration before reading it again (0: always read). Changes made on another replica take effect within this time.",
    },
    SettingDoc {
        key: "rate_limit_login_ip_per_minute",
        kind: Kind::Integer,
        default: "120",
        doc: "Login attempts per minute from one address (bursts of half that). 0 disables. With Redis, shared by all replicas.",
    },
    SettingDoc {
        key: "login_account_failures_before_slowdown",
        kind: Kind::Integer,
        default: "10",
        doc: "Failed logins on one account, from all sources together within 15 minutes, after which every attempt on it waits 2 s before its password is checked. Slowed, never refused: only each failing source is locked, so nobody can lock another user out. 0 disables.",
    },
    SettingDoc {
        key: "login_failures_ip_per_minute",
        kind: Kind::Integer,
        default: "10",
        doc: "Sustained *failed* logins per minute one address may make across all accounts before it is throttled (password spraying). Successful logins do not count, so a busy office NAT is not throttled. 0 disables.",
    },
    SettingDoc {
        key: "login_failures_ip_burst",
        kind: Kind::Integer,
        default: "50",
        doc: "Failed logins one address may make in a burst before `login_failures_ip_per_minute` applies.",
    },
    SettingDoc {
        key: "lockout_threshold",
        kind: Kind::Integer,
        default: "5",
        doc: "Consecutive failed logins for one account from one address that lock that pair (the two before it are slowed by 1 s and 2 s).",
    },
    SettingDoc {
        key: "lockout_initial_s",
        kind: Kind::Integer,
        default: "60",
        doc: "Length of the first lock; each further lock of the same pair doubles it.",
    },
    SettingDoc {
        key: "lockout_max_s",
        kind: Kind::Integer,
        default: "900",
        doc: "Longest lock. `idp user unlock <username>` lifts locks at once.",
    },
    SettingDoc {
        key: "rate_limit_token_per_minute",
        kind: Kind::Integer,
        default: "120000",
        doc: "Default token requests per minute per client and, separately, per address (bursts of 1/30 of that, at least 10). A client with its own limit (`idp client add/update --rate-limit-token`, admin API, portal) is held to that alone. 0 disables; load tests raise or disable it.",
    },
    SettingDoc {
        key: "rate_limit_introspect_per_minute",
        kind: Kind::Integer,
        default: "300000",
        doc: "Default introspection and revocation requests per minute per client (bursts of 1/30 of that, at least 10); a client's own limit (`--rate-limit-introspect`) replaces it. 0 disables.",
    },
    SettingDoc {
        key: "rate_limit_admin_per_minute",
        kind: Kind::Integer,
        default: "600",
        doc: "Admin API requests per minute per administrator (bursts of 1/10 of that). 0 disables.",
    },
    SettingDoc {
        key: "mfa",
        kind: Kind::Text,
        default: "optional",
        doc: "Second factors (docs/mfa.md): `off` (never asked), `optional` (asked of every user who enrolled one), `required` (every user must have one; those without enrol right after their password). A client's own `mfa` setting can raise this, never lower it.",
    },
    SettingDoc {
        key: "mfa_required_for_admins",
        kind: Kind::Bool,
        default: "true",
        doc: "Administrators must log in with a second factor: one without is walked through enrolment, and the admin API refuses an administrator's token from a login without one.",
    },
    SettingDoc {
        key: "passkey_rp_id",
        kind: Kind::Text,
        default: "(the issuer's host)",
        doc: "WebAuthn relying party id: the domain passkeys are bound to (the issuer's host or a parent domain of it). Passkeys need a domain name (`localhost` works); with an IP address as issuer host they are not offered. Changing it makes every registered passkey useless.",
    },
    SettingDoc {
        key: "passkey_origins",
        kind: Kind::Text,
        default: "(the issuer's origin)",
        doc: "Comma-separated extra origins (e.g. `https://login.example.com`) whose pages may use passkeys, besides the issuer's own; each must lie within `passkey_rp_id`.",
    },
    SettingDoc {
        key: "smtp_url",
        kind: Kind::Secret,
        default: "(none: no mail is sent)",
        doc: "SMTP server for outgoing mail (password reset, email verification, invitations; docs/account.md): `smtps://user:password@host:465` (implicit TLS), `smtp://user:password@host:587?tls=required` (STARTTLS), or `smtp://host:25` (plain, for a relay on the same host only). Without it, pages that would send mail say so and administrators hand out links with `idp user reset-link`.",
    },
    SettingDoc {
        key: "smtp_from",
        kind: Kind::Text,
        default: "(required with `smtp_url`)",
        doc: "The `From` of outgoing mail, e.g. `AImpact Identity <no-reply@example.com>`.",
    },
    SettingDoc {
        key: "smtp_ca_file",
        kind: Kind::Text,
        default: "(the system's CA roots)",
        doc: "PEM file of a CA to trust for the SMTP server's certificate, besides the system's roots (a private relay).",
    },
    SettingDoc {
        key: "smtp_timeout_ms",
        kind: Kind::Integer,
        default: "10000",
        doc: "Time allowed for each SMTP exchange (connect, each command) before the attempt fails and is retried later.",
    },
    SettingDoc {
        key: "password_reset_per_hour",
        kind: Kind::Integer,
        default: "5",
        doc: "Password-reset mails per hour per account (bursts of 2 of them). Requests above it are answered the same way and send nothing. 0 disables the limit.",
    },
    SettingDoc {
        key: "password_reset_ip_per_hour",
        kind: Kind::Integer,
        default: "30",
        doc: "Password-reset requests per hour per client address (bursts of 5 of them). 0 disables the limit.",
    },
    SettingDoc {
        key: "password_reset_link_ttl_s",
        kind: Kind::Integer,
        default: "1800",
        doc: "How long a password-reset link works, mailed or printed by `idp user reset-link` (1 second to 1 day). Short is safer: the link is as good as the password until used.",
    },
    SettingDoc {
        key: "registration",
        kind: Kind::Bool,
        default: "false",
        doc: "Let people create their own account from the sign-in page (`/register`, docs/account.md): they give an email address, and the link mailed to it leads to a form for a username and a password (the password policy applies). Needs `smtp_url`.",
    },
    SettingDoc {
        key: "registration_domains",
        kind: Kind::Text,
        default: "(any domain)",
        doc: "Comma-separated email domains self-registration is open to, e.g. `example.com,example.org` (exact domains; subdomains are not included).",
    },
    SettingDoc {
        key: "registration_per_hour",
        kind: Kind::Integer,
        default: "3",
        doc: "Registration mails per hour per email address (bursts of 2). Requests above it are answered the same way and send nothing. 0 disables the limit.",
    },
    SettingDoc {
        key: "registration_ip_per_hour",
        kind: Kind::Integer,
        default: "10",
        doc: "Registration requests per hour per client address (bursts of 3). 0 disables the limit.",
    },
    SettingDoc {
        key: "trusted_proxies",
        kind: Kind::Text,
        default: "(none)",
        doc: "Comma-separated addresses or CIDR ranges of reverse proxies (the ingress). Only when the connecting peer is one of them is the client address taken from `X-Forwarded-For`; otherwise that header is ignored.",
    },
    SettingDoc {
        key: "security_event_retention_days",
        kind: Kind::Integer,
        default: "365",
        doc: "Security events older than this are deleted by housekeeping (their log lines, shipped to a log store, follow that store's own retention). 0 keeps them forever.",
    },
    SettingDoc {
        key: "backup_interval_s",
        kind: Kind::Integer,
        default: "86400",
        doc: "SQLite only (the embedded default): the server writes a backup this often (online, consistent, verified, recorded for `IdpBackupTooOld`), so at most this much is lost with the disk (the RPO). 0: none. On PostgreSQL, backups are the database's own (docs/backup.md) and this is not used.",
    },
    SettingDoc {
        key: "backup_dir",
        kind: Kind::Text,
        default: "<data_dir>/backups",
        doc: "Where the scheduled SQLite backups are written (`idp-<time>.sqlite`). Put it on another disk, or copy it off the machine.",
    },
    SettingDoc {
        key: "backup_keep",
        kind: Kind::Integer,
        default: "7",
        doc: "How many scheduled SQLite backups are kept in `backup_dir`; older ones are deleted after each new one is verified. At least 1.",
    },
    SettingDoc {
        key: "admin_ui_dir",
        kind: Kind::Text,
        default: "(admin-ui/dist, or admin-ui beside the binary)",
        doc: "Directory of the built admin portal, served under `/admin`.",
    },
    SettingDoc {
        key: "tls_cert_file",
        kind: Kind::Text,
        default: "(unset: plain HTTP, TLS ends at the load balancer)",
        doc: "PEM certificate chain to serve HTTPS with (rustls). Re-read without restart when it or the key changes.",
    },
    SettingDoc {
        key: "tls_key_file",
        kind: Kind::Text,
        default: "(unset)",
        doc: "PEM private key (PKCS#8, PKCS#1 or SEC1) of `tls_cert_file`.",
    },
    SettingDoc {
        key: "tls_min_version",
        kind: Kind::Text,
        default: "1.2",
        doc: "`1.2` (TLS 1.2 and 1.3) or `1.3` (TLS 1.3 only). Only AEAD suites with forward secrecy either way; nothing older is spoken.",
    },
    SettingDoc {
        key: "tls_reload_interval_ms",
        kind: Kind::Integer,
        default: "10000",
        doc: "How often the certificate files are checked for changes.",
    },
    SettingDoc {
        key: "http_redirect_listen",
        kind: Kind::Text,
        default: "(unset)",
        doc: "With TLS on, an extra plain-HTTP address (e.g. `0.0.0.0:80`) that only redirects (308) to the https issuer.",
    },
    SettingDoc {
        key: "metrics_listen",
        kind: Kind::Text,
        default: "(unset)",
        doc: "An address of its own (e.g. `0.0.0.0:9090`, plain HTTP) that serves `/metrics` and nothing else; the main listener then stops serving `/metrics`. Unset: `/metrics` is on the main listener (keep it off the public ingress).",
    },
    SettingDoc {
        key: "themes_dir",
        kind: Kind::Text,
        default: "./themes",
        doc: "Directory holding login-page themes, one sub-directory per theme, read at run time.",
    },
    SettingDoc {
        key: "theme",
        kind: Kind::Text,
        default: "default",
        doc: "The theme used for login, consent and error pages unless a client names its own.",
    },
];

/// The configuration reference in Markdown, as committed in `docs/configuration.md`.
pub fn reference_markdown() -> String {
    let mut out = String::from(
        "# Configuration reference\n\n\
         <!-- Generated by `idp config docs` from idp/src/config/reference.rs; a test fails when this file is out of date. -->\n\n\
         Settings are read once at start-up, in layers: built-in defaults, then the TOML file named by \
         `--config FILE` or `IDP_CONFIG`, then environment variables. Every setting `key` can be set as \
         `key = ...` in the file, as the environment variable `IDP_KEY`, or read from a file named by \
         `IDP_KEY_FILE` (as Kubernetes mounts secrets; a trailing newline is dropped). An unknown key in the \
         file, a malformed value or an unreachable database stops start-up with exit code 2 and one line \
         naming the setting.\n\n\
         | Setting | Environment | Default | Description |\n|---|---|---|---|\n",
    );
    for s in SETTINGS {
        let secret = if s.kind == Kind::Secret { " *(secret)*" } else { "" };
        out.push_str(&format!(
            "| `{}` | `{}` | `{}` | {}{} |\n",
            s.key,
            s.env_var(),
            s.default,
            s.doc,
            secret
        ));
    }
    out
}
