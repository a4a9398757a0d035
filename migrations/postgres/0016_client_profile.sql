-- A security profile a client is held to: 'fapi2' (FAPI 2.0 Security Profile: pushed
-- requests, PKCE, private_key_jwt, DPoP-bound tokens, no RS256, codes for at most 60 s).
ALTER TABLE clients ADD COLUMN profile TEXT;
