-- Sessions started by a sign-in at an upstream OpenID provider keep its issuer and its
-- session id (the upstream ID token's `sid`), so that its back-channel logout token
-- (OpenID Connect Back-Channel Logout 1.0) ends exactly those sessions here.
ALTER TABLE sessions ADD COLUMN upstream_issuer TEXT;
ALTER TABLE sessions ADD COLUMN upstream_sid TEXT;
CREATE INDEX sessions_upstream ON sessions (upstream_issuer, upstream_sid);
