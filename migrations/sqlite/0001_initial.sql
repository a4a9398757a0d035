-- Initial schema. Kept in step with ../postgres/0001_initial.sql: same tables, same columns,
-- same indexes; only the dialect differs. Times are Unix milliseconds (BIGINT) so that
-- both backends compare and order them identically and sub-second ordering is kept.

CREATE TABLE users (
    id                   TEXT PRIMARY KEY,
    username             TEXT NOT NULL,
    username_key         TEXT NOT NULL,          -- lower-cased username: case-insensitive uniqueness
    email                TEXT,
    email_key            TEXT,                   -- lower-cased email
    email_verified       BOOLEAN NOT NULL DEFAULT FALSE,
    name                 TEXT,
    status               TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
    roles                TEXT NOT NULL DEFAULT '[]',   -- JSON array of role names
    failed_login_count   BIGINT NOT NULL DEFAULT 0,
    locked_until         BIGINT,
    must_change_password BOOLEAN NOT NULL DEFAULT FALSE,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL,
    last_login_at        BIGINT
);
CREATE UNIQUE INDEX users_username_key ON users (username_key);
CREATE UNIQUE INDEX users_email_key ON users (email_key);
CREATE INDEX users_created_at ON users (created_at, id);

CREATE TABLE password_credentials (
    user_id    TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    phc        TEXT NOT NULL,                    -- argon2id PHC string
    updated_at BIGINT NOT NULL
);

CREATE TABLE clients (
    id                           TEXT PRIMARY KEY,
    name                         TEXT NOT NULL,
    client_type                  TEXT NOT NULL CHECK (client_type IN ('public', 'confidential')),
    secret_hash                  TEXT,           -- keyed HMAC-SHA-256 of the secret; NULL for public clients
    redirect_uris                TEXT NOT NULL,  -- JSON arrays from here on
    post_logout_redirect_uris    TEXT NOT NULL DEFAULT '[]',
    backchannel_logout_uri       TEXT,
    grant_types                  TEXT NOT NULL,
    scopes                       TEXT NOT NULL,
    token_endpoint_auth_method   TEXT NOT NULL,
    id_token_signed_response_alg TEXT NOT NULL DEFAULT 'RS256',
    access_token_signing_alg     TEXT,
    first_party                  BOOLEAN NOT NULL DEFAULT FALSE,
    require_pkce                 BOOLEAN NOT NULL DEFAULT FALSE,
    access_token_ttl_s           BIGINT,
    refresh_token_ttl_s          BIGINT,
    refresh_idle_ttl_s           BIGINT,
    refresh_reuse_window_s       BIGINT NOT NULL DEFAULT 0,
    theme                        TEXT,
    created_at                   BIGINT NOT NULL,
    updated_at                   BIGINT NOT NULL
);
CREATE INDEX clients_created_at ON clients (created_at, id);

CREATE TABLE sessions (
    id_hash       TEXT PRIMARY KEY,              -- SHA-256 of the cookie value; the cookie itself is never stored
    sid           TEXT NOT NULL,                 -- public session id (ID token `sid`, back-channel logout)
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    auth_time     BIGINT NOT NULL,
    amr           TEXT NOT NULL DEFAULT '[]',
    ip            TEXT,
    user_agent    TEXT,
    created_at    BIGINT NOT NULL,
    last_seen_at  BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL
);
CREATE UNIQUE INDEX sessions_sid ON sessions (sid);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE consents (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    scopes     TEXT NOT NULL,                    -- JSON array, sorted
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_id)
);
CREATE INDEX consents_client ON consents (client_id);

-- A grant is one authorization of a client by a user (or by itself, for client_credentials):
-- the family that every code, refresh token and access token issued from it belongs to.
CREATE TABLE grants (
    id         TEXT PRIMARY KEY,
    client_id  TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    user_id    TEXT REFERENCES users (id) ON DELETE CASCADE,
    session_id TEXT,                             -- sessions.sid; survives the session
    scope      TEXT NOT NULL,
    offline    BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX grants_user ON grants (user_id);
CREATE INDEX grants_client ON grants (client_id);
CREATE INDEX grants_session ON grants (session_id);
CREATE INDEX grants_expires_at ON grants (expires_at);

CREATE TABLE authorization_codes (
    code_hash             TEXT PRIMARY KEY,
    grant_id              TEXT NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    client_id             TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    user_id               TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    session_id            TEXT NOT NULL,
    redirect_uri          TEXT NOT NULL,
    scope                 TEXT NOT NULL,
    nonce                 TEXT,
    code_challenge        TEXT,
    code_challenge_method TEXT,
    auth_time             BIGINT NOT NULL,
    amr                   TEXT NOT NULL DEFAULT '[]',
    created_at            BIGINT NOT NULL,
    expires_at            BIGINT NOT NULL,
    consumed_at           BIGINT
);
CREATE INDEX authorization_codes_grant ON authorization_codes (grant_id);
CREATE INDEX authorization_codes_expires_at ON authorization_codes (expires_at);

CREATE TABLE refresh_tokens (
    token_hash    TEXT PRIMARY KEY,
    grant_id      TEXT NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    client_id     TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    user_id       TEXT REFERENCES users (id) ON DELETE CASCADE,
    generation    BIGINT NOT NULL,
    parent_hash   TEXT,
    state         TEXT NOT NULL CHECK (state IN ('active', 'rotated', 'revoked')),
    scope         TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    last_used_at  BIGINT,
    rotated_at    BIGINT
);
CREATE INDEX refresh_tokens_grant ON refresh_tokens (grant_id, generation);
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);

CREATE TABLE signing_keys (
    kid             TEXT PRIMARY KEY,
    alg             TEXT NOT NULL,
    private_key_enc BLOB NOT NULL,              -- AES-256-GCM(nonce || ciphertext) under the key-encryption key
    public_jwk      TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    activates_at    BIGINT NOT NULL,             -- publish first, sign from here on
    retired_at      BIGINT,                      -- stops signing (a newer key took over)
    removed_at      BIGINT                       -- unpublished from the JWKS
);
CREATE INDEX signing_keys_alg ON signing_keys (alg, activates_at);

CREATE TABLE security_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    occurred_at BIGINT NOT NULL,
    event_type  TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    user_id     TEXT,
    username    TEXT,
    client_id   TEXT,
    actor_id    TEXT,
    ip          TEXT,
    user_agent  TEXT,
    request_id  TEXT,
    details     TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX security_events_occurred_at ON security_events (occurred_at, id);
CREATE INDEX security_events_type ON security_events (event_type, id);
CREATE INDEX security_events_user ON security_events (user_id, id);
CREATE INDEX security_events_client ON security_events (client_id, id);
CREATE INDEX security_events_ip ON security_events (ip, id);
