-- Client authentication with JWTs (RFC 7523, OIDC Core §9): the client's public keys,
-- inline as a JWK set or published at a URL, for private_key_jwt; and for client_secret_jwt
-- the secret itself, AES-256-GCM under a key derived from the master key (an HMAC cannot be
-- checked against a hash). Other clients keep only the secret's keyed hash.
ALTER TABLE clients ADD COLUMN jwks TEXT;
ALTER TABLE clients ADD COLUMN jwks_uri TEXT;
ALTER TABLE clients ADD COLUMN secret_sealed BLOB;
