-- Passkeys (WebAuthn) as factors (issue 16). A passkey's credential (public key, counter,
-- flags) is kept encrypted in `secret` like a TOTP secret; its credential id is kept in the
-- clear as well, to find the account a discoverable passkey signs in to.
ALTER TABLE mfa_factors DROP CONSTRAINT IF EXISTS mfa_factors_kind_check;
ALTER TABLE mfa_factors ADD CONSTRAINT mfa_factors_kind_check CHECK (kind IN ('totp', 'passkey'));
ALTER TABLE mfa_factors ADD COLUMN credential_id TEXT;
CREATE UNIQUE INDEX mfa_factors_credential ON mfa_factors (credential_id);

-- WebAuthn challenges already answered: a ceremony's state travels sealed with the page, and
-- its challenge is spent here on first use, so a captured answer cannot be replayed.
CREATE TABLE spent_challenges (
    challenge_hash TEXT PRIMARY KEY,
    expires_at     BIGINT NOT NULL
);
CREATE INDEX spent_challenges_expiry ON spent_challenges (expires_at);
