-- The in-process deny-list (embedded default, no Redis) kept in the database as well, so
-- that a revocation survives a restart and one made by the `idp` command line reaches the
-- running server (which loads new rows every second). Unused with Redis.
CREATE TABLE denials (
    id       BIGSERIAL PRIMARY KEY,
    key      TEXT NOT NULL,          -- jti:…, gid:… or cid:…
    until_at BIGINT NOT NULL         -- the denied tokens have expired by then
);
CREATE INDEX denials_until ON denials (until_at);
