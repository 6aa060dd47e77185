-- coupond schema. Times are INTEGER microseconds since the Unix epoch (UTC).
-- Append-only: never edit an applied migration, add a new file.

CREATE TABLE coupons (
    id                  INTEGER PRIMARY KEY,
    program             TEXT    NOT NULL,
    uuid_code           TEXT    NOT NULL COLLATE NOCASE,
    name                TEXT    NOT NULL,
    active              INTEGER NOT NULL,
    discount_type       TEXT    NOT NULL CHECK (discount_type IN ('percent', 'static')),
    discount_hundredths INTEGER NOT NULL CHECK (discount_hundredths > 0),
    duration_type       TEXT    NOT NULL,
    duration_value      INTEGER,
    redeem_by           INTEGER,
    max_redemptions     INTEGER,
    metadata            TEXT    NOT NULL DEFAULT '{}',
    times_redeemed      INTEGER NOT NULL DEFAULT 0,
    sync_provider       TEXT,
    revision            INTEGER NOT NULL DEFAULT 1,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    deleted_at          INTEGER,
    UNIQUE (program, uuid_code)
);
CREATE INDEX coupons_live ON coupons (program, id) WHERE deleted_at IS NULL;

CREATE TABLE promotion_codes (
    id              INTEGER PRIMARY KEY,
    program         TEXT    NOT NULL,
    coupon_id       INTEGER NOT NULL REFERENCES coupons (id),
    code            TEXT    NOT NULL COLLATE NOCASE,
    first_time_order INTEGER NOT NULL DEFAULT 0,
    partners        TEXT,
    customers       TEXT,
    subscribers     TEXT,
    minimum_order   INTEGER,
    expires_at      INTEGER,
    max_redemptions INTEGER,
    metadata        TEXT    NOT NULL DEFAULT '{}',
    times_redeemed  INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    UNIQUE (program, code)
);
CREATE INDEX promotion_codes_coupon ON promotion_codes (coupon_id, id);

-- The redemption log of a coupon or of a promotion code (additional_info.redemptions).
CREATE TABLE redemptions (
    id                INTEGER PRIMARY KEY,
    coupon_id         INTEGER REFERENCES coupons (id) ON DELETE CASCADE,
    promotion_code_id INTEGER REFERENCES promotion_codes (id) ON DELETE CASCADE,
    transaction_key   TEXT,
    redeemed_at       INTEGER NOT NULL,
    CHECK ((coupon_id IS NULL) <> (promotion_code_id IS NULL))
);
CREATE INDEX redemptions_coupon ON redemptions (coupon_id, id) WHERE coupon_id IS NOT NULL;
CREATE INDEX redemptions_code ON redemptions (promotion_code_id, id) WHERE promotion_code_id IS NOT NULL;
CREATE UNIQUE INDEX redemptions_coupon_key ON redemptions (coupon_id, transaction_key)
    WHERE coupon_id IS NOT NULL AND transaction_key IS NOT NULL;
CREATE UNIQUE INDEX redemptions_code_key ON redemptions (promotion_code_id, transaction_key)
    WHERE promotion_code_id IS NOT NULL AND transaction_key IS NOT NULL;

CREATE TABLE transactions (
    id           INTEGER PRIMARY KEY,
    program      TEXT    NOT NULL,
    key          TEXT,
    action       TEXT    NOT NULL,
    amount       TEXT,
    reward       TEXT,
    amount_units TEXT,
    customer     TEXT    NOT NULL,
    partner      TEXT,
    product_id   TEXT,
    product_type TEXT,
    rewarded     INTEGER NOT NULL,
    rewardable   INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    UNIQUE (program, key)
);

-- One mark per (coupon, provider): "this coupon must match this provider at desired_revision".
-- Level-triggered: a new change bumps desired_revision instead of queueing a second op.
CREATE TABLE outbox (
    coupon_id        INTEGER NOT NULL REFERENCES coupons (id),
    provider         TEXT    NOT NULL,
    program          TEXT    NOT NULL,
    desired_revision INTEGER NOT NULL,
    synced_revision  INTEGER,
    -- pending | retrying | synced | dead | parked (credentials rejected)
    status           TEXT    NOT NULL DEFAULT 'pending',
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER,
    claimed_until    INTEGER,
    claim_token      TEXT,
    last_message     TEXT    NOT NULL DEFAULT '',
    last_success     INTEGER NOT NULL DEFAULT 0,
    updated_at       INTEGER NOT NULL,
    PRIMARY KEY (coupon_id, provider)
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE status IN ('pending', 'retrying');
CREATE INDEX outbox_status ON outbox (program, status);

-- The provider objects we created for a coupon (the coupon itself: local_key = '', a code: its code).
CREATE TABLE provider_links (
    coupon_id   INTEGER NOT NULL REFERENCES coupons (id),
    provider    TEXT    NOT NULL,
    object_kind TEXT    NOT NULL,
    local_key   TEXT    NOT NULL COLLATE NOCASE,
    remote_id   TEXT    NOT NULL,
    fingerprint TEXT    NOT NULL,
    revision    INTEGER NOT NULL,
    remote      TEXT    NOT NULL DEFAULT '{}',
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (coupon_id, provider, object_kind, local_key)
);
CREATE INDEX provider_links_remote ON provider_links (provider, remote_id);

CREATE TABLE sync_attempts (
    id          INTEGER PRIMARY KEY,
    coupon_id   INTEGER NOT NULL REFERENCES coupons (id),
    provider    TEXT    NOT NULL,
    revision    INTEGER NOT NULL,
    attempt     INTEGER NOT NULL,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER NOT NULL,
    -- success | retry | dead | credentials
    outcome     TEXT    NOT NULL,
    message     TEXT    NOT NULL
);
CREATE INDEX sync_attempts_coupon ON sync_attempts (coupon_id, provider, id);
