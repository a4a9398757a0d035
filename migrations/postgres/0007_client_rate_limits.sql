-- Each client may carry its own rate limits (requests per minute): NULL uses the deployment's
-- default (rate_limit_token_per_minute, rate_limit_introspect_per_minute), 0 means no limit.
ALTER TABLE clients ADD COLUMN rate_limit_token_per_minute BIGINT;
ALTER TABLE clients ADD COLUMN rate_limit_introspect_per_minute BIGINT;
