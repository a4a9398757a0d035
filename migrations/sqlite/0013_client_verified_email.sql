-- A client may refuse users whose email address is not verified: their login stops at a
-- page that sends a verification link, and goes on once the address is proven.
ALTER TABLE clients ADD COLUMN require_verified_email BOOLEAN NOT NULL DEFAULT FALSE;
