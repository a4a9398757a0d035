-- A link that moves an account to a new address once that address proves it receives mail
-- (the address a user enters on the account page takes effect only then). SQLite cannot
-- alter a CHECK constraint: the table is rebuilt with the new one.
CREATE TABLE action_links_new (
    token_hash           TEXT PRIMARY KEY,
    user_id              TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose              TEXT NOT NULL
                         CHECK (purpose IN ('password_reset', 'verify_email', 'invitation', 'change_email')),
    password_fingerprint TEXT NOT NULL,     -- keyed hash of the password credential at issue ('' for none)
    email                TEXT,              -- the address a verification or change link proves
    created_at           BIGINT NOT NULL,
    expires_at           BIGINT NOT NULL,
    used_at              BIGINT
);
INSERT INTO action_links_new
    SELECT token_hash, user_id, purpose, password_fingerprint, email, created_at, expires_at, used_at
    FROM action_links;
DROP TABLE action_links;
ALTER TABLE action_links_new RENAME TO action_links;
CREATE INDEX action_links_user ON action_links (user_id);
CREATE INDEX action_links_expiry ON action_links (expires_at);
