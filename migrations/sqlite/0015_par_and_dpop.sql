-- Pushed authorization requests (RFC 9126): the parameters a client pushed, kept until the
-- browser brings their reference to /authorize (once) or they expire (60 s). The reference
-- itself is not stored, only its keyed hash.
CREATE TABLE pushed_requests (
    reference_hash TEXT PRIMARY KEY,
    client_id      TEXT NOT NULL,
    params         TEXT NOT NULL,          -- the validated parameters, as a JSON object
    expires_at     BIGINT NOT NULL
);
CREATE INDEX pushed_requests_expiry ON pushed_requests (expires_at);
-- A client may require that its authorization requests be pushed (RFC 9126 §6), and that
-- its access tokens be bound to a DPoP key (RFC 9449 §5.2).
ALTER TABLE clients ADD COLUMN require_par BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE clients ADD COLUMN dpop_bound_access_tokens BOOLEAN NOT NULL DEFAULT FALSE;
-- A public client's grant is bound to the DPoP key of its first token request: its refresh
-- tokens work only with proofs by that key (RFC 9449 §5).
ALTER TABLE grants ADD COLUMN dpop_jkt TEXT;
