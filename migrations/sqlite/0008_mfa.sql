-- Second factors (issue 16). A factor is confirmed once the user proved it works (a first
-- TOTP code); an unconfirmed one is an enrolment in progress and never counts.
CREATE TABLE mfa_factors (
    id             TEXT PRIMARY KEY,
    user_id        TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind           TEXT NOT NULL CHECK (kind IN ('totp')),
    name           TEXT NOT NULL,
    secret         BLOB NOT NULL,          -- AES-256-GCM under a key derived from the master key
    created_at     BIGINT NOT NULL,
    confirmed_at   BIGINT,
    last_used_at   BIGINT,
    last_used_step BIGINT                   -- the TOTP time step last accepted: never accepted again
);
CREATE INDEX mfa_factors_user ON mfa_factors (user_id);

-- Single-use recovery codes, stored as keyed hashes.
CREATE TABLE recovery_codes (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    used_at    BIGINT,
    PRIMARY KEY (user_id, code_hash)
);

-- An administrator may require a user to enrol a second factor at their next login.
ALTER TABLE users ADD COLUMN mfa_enrolment_required BOOLEAN NOT NULL DEFAULT FALSE;
-- Per-client MFA policy: NULL follows the deployment's; 'off', 'optional' or 'required'.
ALTER TABLE clients ADD COLUMN mfa TEXT CHECK (mfa IN ('off', 'optional', 'required'));
