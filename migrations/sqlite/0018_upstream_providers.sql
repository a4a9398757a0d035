-- Upstream identity providers (federation): users may sign in with an OpenID provider
-- found by discovery at `issuer`. The client secret is AES-256-GCM-sealed under a key
-- derived from the master key, with the slug as associated data. Lists are JSON arrays;
-- `allowed_clients` empty means every client may offer it.
CREATE TABLE upstream_providers (
    slug                 TEXT PRIMARY KEY,
    display_name         TEXT NOT NULL,
    kind                 TEXT NOT NULL DEFAULT 'oidc',
    issuer               TEXT NOT NULL,
    client_id            TEXT NOT NULL,
    client_secret_sealed BLOB NOT NULL,
    scopes               TEXT NOT NULL DEFAULT '["openid"]',
    jit                  BOOLEAN NOT NULL DEFAULT FALSE,
    trust_email          BOOLEAN NOT NULL DEFAULT FALSE,
    claim_username       TEXT NOT NULL DEFAULT 'preferred_username',
    claim_email          TEXT NOT NULL DEFAULT 'email',
    claim_name           TEXT NOT NULL DEFAULT 'name',
    allowed_domains      TEXT NOT NULL DEFAULT '[]',
    allowed_clients      TEXT NOT NULL DEFAULT '[]',
    enabled              BOOLEAN NOT NULL DEFAULT TRUE,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL
);
