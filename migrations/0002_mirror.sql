-- Mirror mode: the pass that last saw a coupon upstream, and the poller's state per program.
ALTER TABLE coupons ADD COLUMN mirror_pass INTEGER;

CREATE TABLE mirror_state (
    program                  TEXT PRIMARY KEY,
    -- id of the pass in progress (or of the last one)
    pass                     INTEGER NOT NULL DEFAULT 0,
    pass_started_at          INTEGER,
    last_complete_started_at INTEGER,
    last_complete_at         INTEGER,
    complete_passes          INTEGER NOT NULL DEFAULT 0,
    last_pages               INTEGER,
    last_seen                INTEGER,
    last_changed             INTEGER,
    last_deleted             INTEGER,
    last_error               TEXT,
    last_error_at            INTEGER
);
