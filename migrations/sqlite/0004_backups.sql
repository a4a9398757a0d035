-- Completed backups (`idp backup create`), so the server can expose the age of the newest one
-- (`idp_backup_last_success_timestamp_seconds`) and an alert fires when it is too old.
CREATE TABLE backups (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    finished_at INTEGER NOT NULL,
    backend     TEXT NOT NULL,   -- sqlite | postgres
    location    TEXT NOT NULL,   -- where the file was written, as given
    bytes       INTEGER NOT NULL,
    sha256      TEXT NOT NULL    -- of the file, hex
);
CREATE INDEX backups_finished_at ON backups (finished_at);
