-- PostgreSQL's migration 0006 drops the redundant client and user references of
-- refresh_tokens and authorization_codes (their grant already carries both, with ON DELETE
-- CASCADE), because each one locked a shared parent row on every insert. SQLite checks a
-- reference with a plain index lookup and no row lock, and dropping one would mean
-- rebuilding the table, so it keeps them; this entry keeps the two schema versions in step.
SELECT 1;
