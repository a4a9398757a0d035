-- A refresh token or authorization code belongs to its grant, and the grant to its client
-- and user (each ON DELETE CASCADE), so the token's own client_id and user_id references
-- added nothing: deleting a client or user already deletes its grants and, through them,
-- their tokens and codes. They cost a lot under load: every insert ran a
-- `SELECT ... FOR KEY SHARE` on the client's and the user's row, and concurrent rotations
-- for one client (the normal case) all locked the same row, so PostgreSQL built a
-- MultiXact for it on every rotation. The grant_id reference (one row per login) stays.
ALTER TABLE refresh_tokens
    DROP CONSTRAINT refresh_tokens_client_id_fkey,
    DROP CONSTRAINT refresh_tokens_user_id_fkey;
ALTER TABLE authorization_codes
    DROP CONSTRAINT authorization_codes_client_id_fkey,
    DROP CONSTRAINT authorization_codes_user_id_fkey;
