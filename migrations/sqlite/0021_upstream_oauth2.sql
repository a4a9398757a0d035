-- Plain OAuth 2.0 upstreams (GitHub-style, `kind` = 'oauth2'): their endpoints as a JSON
-- object (authorization, token, userinfo, emails), NULL for an OpenID provider, which is
-- found by discovery. `claim_subject` names the user in the userinfo answer (`sub` for
-- OpenID providers, whose users are the ID token's `sub`). `token_endpoint_auth_method`:
-- how this provider authenticates at the upstream's token endpoint (client_secret_basic, or
-- private_key_jwt with this provider's own published signing keys). `icon`: the login
-- page button's image, a data: URI (NULL: the display name's initial).
ALTER TABLE upstream_providers ADD COLUMN oauth2_endpoints TEXT;
ALTER TABLE upstream_providers ADD COLUMN claim_subject TEXT NOT NULL DEFAULT 'sub';
ALTER TABLE upstream_providers ADD COLUMN token_endpoint_auth_method TEXT NOT NULL DEFAULT 'client_secret_basic';
ALTER TABLE upstream_providers ADD COLUMN icon TEXT;
