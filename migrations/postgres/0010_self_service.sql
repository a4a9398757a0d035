-- Self-service (issue 17): outgoing mail and single-use links.

-- Mail waits here until the background worker has handed it to the SMTP server, so a
-- request never waits on SMTP and a crash loses nothing. The message (which may carry a
-- reset link) is encrypted under a key derived from the master key, and dropped once sent.
CREATE TABLE mail_outbox (
    id              TEXT PRIMARY KEY,
    recipient       TEXT NOT NULL,
    template        TEXT NOT NULL,           -- which message (password_reset, ...), for metrics and the portal
    message         BYTEA,                    -- AES-256-GCM of the rendered message; NULL once sent
    created_at      BIGINT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,         -- also the lease of the worker sending it
    sent_at         BIGINT,
    failed_at       BIGINT,                  -- given up after the last retry
    last_error      TEXT,
    expires_at      BIGINT NOT NULL          -- housekeeping deletes the row after this
);
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at) WHERE sent_at IS NULL AND failed_at IS NULL;
CREATE INDEX mail_outbox_expiry ON mail_outbox (expires_at);

-- Links sent to users (password reset, email verification, invitation): the token is kept
-- only as a keyed hash; a link is used at most once, and a reset link only while the
-- password it was issued against is still the account's password.
CREATE TABLE action_links (
    token_hash           TEXT PRIMARY KEY,
    user_id              TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose              TEXT NOT NULL CHECK (purpose IN ('password_reset', 'verify_email', 'invitation')),
    password_fingerprint TEXT NOT NULL,     -- keyed hash of the password credential at issue ('' for none)
    email                TEXT,              -- the address a verification link proves
    created_at           BIGINT NOT NULL,
    expires_at           BIGINT NOT NULL,
    used_at              BIGINT
);
CREATE INDEX action_links_user ON action_links (user_id);
CREATE INDEX action_links_expiry ON action_links (expires_at);
