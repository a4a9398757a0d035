-- A link that moves an account to a new address once that address proves it receives mail
-- (the address a user enters on the account page takes effect only then).
ALTER TABLE action_links DROP CONSTRAINT action_links_purpose_check;
ALTER TABLE action_links ADD CONSTRAINT action_links_purpose_check
    CHECK (purpose IN ('password_reset', 'verify_email', 'invitation', 'change_email'));
