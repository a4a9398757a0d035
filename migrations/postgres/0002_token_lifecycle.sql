-- Token lifecycle: the answer given for a rotated refresh token (so that a retry within the
-- client's reuse window gets the very same tokens), and the authentication facts of a grant
-- (so that ID tokens issued on refresh carry the original auth_time and amr).

-- AES-256-GCM(nonce || ciphertext) of the token response that replaced this token; cleared
-- by housekeeping once the client's reuse window has passed.
ALTER TABLE refresh_tokens ADD COLUMN successor_response_enc BYTEA;
ALTER TABLE grants ADD COLUMN auth_time BIGINT;
ALTER TABLE grants ADD COLUMN amr TEXT NOT NULL DEFAULT '[]';
CREATE INDEX refresh_tokens_rotated_at ON refresh_tokens (rotated_at);
