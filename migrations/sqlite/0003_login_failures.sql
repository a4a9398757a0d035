-- Brute-force protection: failed logins counted per account *and source*, so that a flood
-- from one address locks that address out of that account, never the real user elsewhere.
CREATE TABLE login_failures (
    account_key  TEXT NOT NULL,      -- lower-cased username as typed (existing or not: no enumeration)
    source       TEXT NOT NULL,      -- client IP
    failures     BIGINT NOT NULL,    -- consecutive failures since the last lock or success
    lockouts     BIGINT NOT NULL,    -- locks so far: each one doubles the next
    locked_until BIGINT,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (account_key, source)
);
CREATE INDEX login_failures_updated_at ON login_failures (updated_at);
