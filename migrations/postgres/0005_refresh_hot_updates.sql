-- Rotation retires a token by setting state, rotated_at and last_used_at. With rotated_at
-- indexed, every rotation was a non-HOT update: a new entry in each of the table's indexes.
-- Only tokens with a saved answer (reuse window) are looked up by age, and there are few of
-- them (housekeeping clears answers after 300 s): a partial index keyed by the never-changing
-- hash finds them. For strict clients (the default) no indexed value then changes, and with
-- room left on each page the rotation's update is HOT.
DROP INDEX refresh_tokens_rotated_at;
CREATE INDEX refresh_tokens_saved_response ON refresh_tokens (token_hash)
    WHERE successor_response_enc IS NOT NULL;
ALTER TABLE refresh_tokens SET (fillfactor = 80);
