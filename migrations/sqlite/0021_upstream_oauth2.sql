-- Plain OAuth 2.0 upstreams (GitHub-style, `kind` = 'oauth2'): their endpoints as a JSON
-- object (authorization, token, userinfo, emails), NULL for an OpenID provider, which is
-- found by discovery. `claim_subject` names the user in the userinfo answer (`sub` for
-- OpenID providers, whose users are the ID token's `sub`).
ALTER TABLE upstream_providers ADD COLUMN oauth2_endpoints TEXT;
ALTER TABLE upstream_providers ADD COLUMN claim_subject TEXT NOT NULL DEFAULT 'sub';
