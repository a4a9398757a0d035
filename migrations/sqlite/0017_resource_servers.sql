-- Resource servers (RFC 8707 resource indicators): the APIs a client may ask a token for.
-- An access token asked for with `resource` is audience-restricted to it. `scopes` (a JSON
-- array) are the scopes the resource accepts: its tokens carry only those (none listed: any
-- granted scope). `client_id` is the client the resource server introspects with; tokens
-- for other audiences are inactive to it.
CREATE TABLE resource_servers (
    identifier TEXT PRIMARY KEY,
    scopes     TEXT NOT NULL DEFAULT '[]',
    client_id  TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX resource_servers_client ON resource_servers (client_id);
-- The resources a client may ask for (a JSON array of identifiers), and those a grant was
-- given at authorization (its later token requests may narrow them, never widen: §2.2).
ALTER TABLE clients ADD COLUMN resources TEXT NOT NULL DEFAULT '[]';
ALTER TABLE grants ADD COLUMN resources TEXT NOT NULL DEFAULT '[]';
