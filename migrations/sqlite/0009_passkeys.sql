-- Passkeys (WebAuthn) as factors (issue 16). A passkey's credential (public key, counter,
-- flags) is kept encrypted in `secret` like a TOTP secret; its credential id is kept in the
-- clear as well, to find the account a discoverable passkey signs in to.
-- SQLite cannot alter a CHECK constraint: the table is rebuilt (nothing references it).
CREATE TABLE mfa_factors_new (
    id             TEXT PRIMARY KEY,
    user_id        TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind           TEXT NOT NULL CHECK (kind IN ('totp', 'passkey')),
    name           TEXT NOT NULL,
    secret         BLOB NOT NULL,
    created_at     BIGINT NOT NULL,
    confirmed_at   BIGINT,
    last_used_at   BIGINT,
    last_used_step BIGINT,
    credential_id  TEXT
);
INSERT INTO mfa_factors_new (id, user_id, kind, name, secret, created_at, confirmed_at, last_used_at, last_used_step)
    SELECT id, user_id, kind, name, secret, created_at, confirmed_at, last_used_at, last_used_step FROM mfa_factors;
DROP TABLE mfa_factors;
ALTER TABLE mfa_factors_new RENAME TO mfa_factors;
CREATE INDEX mfa_factors_user ON mfa_factors (user_id);
CREATE UNIQUE INDEX mfa_factors_credential ON mfa_factors (credential_id);

-- WebAuthn challenges already answered: a ceremony's state travels sealed with the page, and
-- its challenge is spent here on first use, so a captured answer cannot be replayed.
CREATE TABLE spent_challenges (
    challenge_hash TEXT PRIMARY KEY,
    expires_at     BIGINT NOT NULL
);
CREATE INDEX spent_challenges_expiry ON spent_challenges (expires_at);
