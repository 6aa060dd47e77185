-- Redemption counts read from the providers by reconcile (times_redeemed, usage_count,
-- asyncUsageCount, times_used), one row per coupon, provider and code ('' for a coupon-level count).
CREATE TABLE provider_redemptions (
    coupon_id   INTEGER NOT NULL REFERENCES coupons (id),
    provider    TEXT    NOT NULL,
    code        TEXT    NOT NULL COLLATE NOCASE,
    count       INTEGER NOT NULL,
    read_at     INTEGER NOT NULL,
    PRIMARY KEY (coupon_id, provider, code)
);
