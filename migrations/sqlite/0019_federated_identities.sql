-- Identities at upstream providers linked to local accounts (federation). An identity is its
-- issuer and subject (never an email address) and is linked to at most one account.
CREATE TABLE federated_identities (
    issuer        TEXT NOT NULL,
    subject       TEXT NOT NULL,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    upstream      TEXT NOT NULL,                 -- the provider's slug when it was linked
    email         TEXT,                          -- as the provider gave it then, for display
    created_at    BIGINT NOT NULL,
    last_login_at BIGINT,
    PRIMARY KEY (issuer, subject)
);
CREATE INDEX federated_identities_user ON federated_identities (user_id);
