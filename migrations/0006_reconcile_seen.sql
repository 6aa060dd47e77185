-- The provider objects a running reconcile has read, so that links to objects the provider no
-- longer has are found in SQL rather than against an in-memory set that grows with the codes.
-- Rows live for one run (`run` is its token) and are deleted when it ends; `at` lets a later run
-- clear what a crashed one left.
CREATE TABLE reconcile_seen (
    run       TEXT    NOT NULL,
    remote_id TEXT    NOT NULL,
    at        INTEGER NOT NULL,
    PRIMARY KEY (run, remote_id)
) WITHOUT ROWID;
