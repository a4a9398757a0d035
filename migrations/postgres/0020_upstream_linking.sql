-- Upstream providers whose verified email addresses link an identity to the local account
-- with that address without asking, for these domains only (JSON array; empty: never).
ALTER TABLE upstream_providers ADD COLUMN auto_link_domains TEXT NOT NULL DEFAULT '[]';
