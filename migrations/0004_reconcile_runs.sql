-- Every reconcile run (one-shot or scheduled), for /status and the operators.
CREATE TABLE reconcile_runs (
    id          INTEGER PRIMARY KEY,
    trigger     TEXT    NOT NULL, -- cli | schedule
    started_at  INTEGER NOT NULL,
    finished_at INTEGER NOT NULL,
    -- in_sync | drift_left | failed | rate_limited
    outcome     TEXT    NOT NULL,
    counts      TEXT    NOT NULL,
    message     TEXT    NOT NULL
);
