-- Only tokens with a saved answer (reuse window) are looked up by age; index just those (the
-- same index as on PostgreSQL, where it lets rotations of strict clients be HOT updates).
DROP INDEX refresh_tokens_rotated_at;
CREATE INDEX refresh_tokens_saved_response ON refresh_tokens (token_hash)
    WHERE successor_response_enc IS NOT NULL;
