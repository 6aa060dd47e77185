//! Coupons: discount terms, duration, the paired expiry/limit switches, create and update rules.

use super::errors::{FieldErrors, msg};
use super::ident::{CouponCode, IdentError};
use super::input::{Fields, Tri};
use super::metadata::{Metadata, MetadataPatch};
use super::money::{Discount, DiscountError, DiscountKind};
use super::promotion_code::NewPromotionCode;
use super::provider::ProviderKind;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::{Map, Value};

pub const MAX_NAME_LEN: usize = 255;
pub const MAX_TRANSACTION_KEY_LEN: usize = 255;
pub const MAX_DURATION_VALUE: i64 = 1_000_000;
pub const MAX_COUNT: i64 = 2_147_483_647;

/// `coupon_duration_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DurationKind {
    Once,
    Hours,
    Days,
    Months,
    Years,
    Lifetime,
}

impl DurationKind {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "once" => Self::Once,
            "hours" => Self::Hours,
            "days" => Self::Days,
            "months" => Self::Months,
            "years" => Self::Years,
            "lifetime" => Self::Lifetime,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Once => "once",
            Self::Hours => "hours",
            Self::Days => "days",
            Self::Months => "months",
            Self::Years => "years",
            Self::Lifetime => "lifetime",
        }
    }
    pub fn takes_value(self) -> bool {
        matches!(self, Self::Hours | Self::Days | Self::Months | Self::Years)
    }
}

/// How long a discount applies once redeemed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Duration {
    Once,
    Lifetime,
    Hours(u32),
    Days(u32),
    Months(u32),
    Years(u32),
}

impl Duration {
    /// From the kind and its value; `None` when a value-taking kind has no valid value.
    pub fn new(kind: DurationKind, value: Option<i64>) -> Option<Self> {
        let v = || {
            value
                .filter(|v| (1..=MAX_DURATION_VALUE).contains(v))
                .map(|v| v as u32)
        };
        Some(match kind {
            DurationKind::Once => Self::Once,
            DurationKind::Lifetime => Self::Lifetime,
            DurationKind::Hours => Self::Hours(v()?),
            DurationKind::Days => Self::Days(v()?),
            DurationKind::Months => Self::Months(v()?),
            DurationKind::Years => Self::Years(v()?),
        })
    }
    pub fn kind(&self) -> DurationKind {
        match self {
            Self::Once => DurationKind::Once,
            Self::Lifetime => DurationKind::Lifetime,
            Self::Hours(_) => DurationKind::Hours,
            Self::Days(_) => DurationKind::Days,
            Self::Months(_) => DurationKind::Months,
            Self::Years(_) => DurationKind::Years,
        }
    }
    pub fn value(&self) -> Option<u32> {
        match *self {
            Self::Hours(v) | Self::Days(v) | Self::Months(v) | Self::Years(v) => Some(v),
            Self::Once | Self::Lifetime => None,
        }
    }
}

/// What a provider holds of a coupon besides its codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CouponTerms {
    pub active: bool,
    pub discount: Discount,
    pub duration: Duration,
    /// `redemption_specific_date_value`: the last moment a redemption is allowed.
    pub redeem_by: Option<DateTime<Utc>>,
    /// `redemption_times_value`.
    pub max_redemptions: Option<i64>,
}

/// The coupon fields of a request before the cross-field rules, with where each came from.
#[derive(Debug, Default)]
struct TermsDraft {
    active: Option<bool>,
    discount_type: Option<DiscountKind>,
    discount_amount: Option<Decimal>,
    duration_type: Option<DurationKind>,
    duration_value: Option<i64>,
    date_status: bool,
    date_value: Option<DateTime<Utc>>,
    date_value_sent: bool,
    times_status: bool,
    times_value: Option<i64>,
}

/// Raw coupon-term fields as sent (type errors already recorded).
#[derive(Debug, Clone, Default)]
pub struct TermsInput {
    active: Option<bool>,
    discount_type: Option<DiscountKind>,
    discount_amount: Option<Decimal>,
    duration_type: Option<DurationKind>,
    duration_value: Tri<i64>,
    date_status: Option<bool>,
    date_value: Tri<DateTime<Utc>>,
    times_status: Option<bool>,
    times_value: Tri<i64>,
}

impl TermsInput {
    fn read(f: &Fields, errors: &mut FieldErrors) -> Self {
        let discount_type = f.raw("coupon_discount_type").and_then(|v| {
            let parsed = v.as_str().and_then(DiscountKind::parse);
            if parsed.is_none() {
                errors.add("coupon_discount_type", msg::invalid("coupon_discount_type"));
            }
            parsed
        });
        let duration_type = f.raw("coupon_duration_type").and_then(|v| {
            let parsed = v.as_str().and_then(DurationKind::parse);
            if parsed.is_none() {
                errors.add("coupon_duration_type", msg::invalid("coupon_duration_type"));
            }
            parsed
        });
        Self {
            active: f.boolean("active", errors),
            discount_type,
            discount_amount: f.decimal("coupon_discount_amount", errors),
            duration_type,
            duration_value: f.integer_tri("coupon_duration_value", errors),
            date_status: f.boolean("redemption_specific_date_status", errors),
            date_value: f.date_tri("redemption_specific_date_value", errors),
            times_status: f.boolean("redemption_times_status", errors),
            times_value: f.integer_tri("redemption_times_value", errors),
        }
    }

    /// Whether any term field was sent (PUT's legacy fields).
    fn is_empty(&self) -> bool {
        self.active.is_none()
            && self.discount_type.is_none()
            && self.discount_amount.is_none()
            && self.duration_type.is_none()
            && self.duration_value.is_absent()
            && self.date_status.is_none()
            && self.date_value.is_absent()
            && self.times_status.is_none()
            && self.times_value.is_absent()
    }

    fn draft_for_create(&self) -> TermsDraft {
        TermsDraft {
            active: Some(self.active.unwrap_or(true)),
            discount_type: self.discount_type,
            discount_amount: self.discount_amount,
            duration_type: self.duration_type,
            duration_value: self.duration_value.clone().value(),
            date_status: self.date_status.unwrap_or(false),
            date_value: self.date_value.clone().value(),
            date_value_sent: !self.date_value.is_absent(),
            times_status: self.times_status.unwrap_or(false),
            times_value: self.times_value.clone().value(),
        }
    }

    /// The stored terms overlaid with what this request sent (B7).
    fn draft_over(&self, cur: &CouponTerms) -> TermsDraft {
        fn overlay<T: Clone>(sent: &Tri<T>, stored: Option<T>) -> Option<T> {
            match sent {
                Tri::Absent => stored,
                Tri::Null => None,
                Tri::Value(v) => Some(v.clone()),
            }
        }
        let discount_amount = match (self.discount_amount, self.discount_type) {
            (Some(a), _) => Some(a),
            (None, _) => Some(cur.discount.amount()),
        };
        TermsDraft {
            active: Some(self.active.unwrap_or(cur.active)),
            discount_type: Some(self.discount_type.unwrap_or(cur.discount.kind())),
            discount_amount,
            duration_type: Some(self.duration_type.unwrap_or(cur.duration.kind())),
            duration_value: overlay(&self.duration_value, cur.duration.value().map(i64::from)),
            date_status: self.date_status.unwrap_or(cur.redeem_by.is_some()),
            date_value: overlay(&self.date_value, cur.redeem_by),
            date_value_sent: matches!(self.date_value, Tri::Value(_)),
            times_status: self.times_status.unwrap_or(cur.max_redemptions.is_some()),
            times_value: overlay(&self.times_value, cur.max_redemptions),
        }
    }
}

fn positive_count(
    v: Option<i64>,
    path: &str,
    switch: &str,
    max: i64,
    errors: &mut FieldErrors,
) -> Option<i64> {
    if errors.has(path) {
        return None;
    }
    match v {
        None => {
            errors.add(path, msg::required_when(path, switch));
            None
        }
        Some(v) if v < 1 => {
            errors.add(path, msg::at_least(path, 1));
            None
        }
        Some(v) if v > max => {
            errors.add(path, msg::max_value(path, max));
            None
        }
        Some(v) => Some(v),
    }
}

/// A required-when-switched date that must lie in the future when it was sent in this request.
pub(crate) fn switched_date(
    status: bool,
    value: Option<DateTime<Utc>>,
    sent: bool,
    path: &str,
    switch: &str,
    now: DateTime<Utc>,
    errors: &mut FieldErrors,
) -> Option<DateTime<Utc>> {
    if !status || errors.has(path) {
        return None;
    }
    match value {
        None => {
            errors.add(path, msg::required_when(path, switch));
            None
        }
        Some(v) if sent && v <= now => {
            errors.add(path, msg::date_future(path));
            None
        }
        Some(v) => Some(v),
    }
}

pub(crate) fn switched_count(
    status: bool,
    value: Option<i64>,
    path: &str,
    switch: &str,
    errors: &mut FieldErrors,
) -> Option<i64> {
    if !status {
        return None;
    }
    positive_count(value, path, switch, MAX_COUNT, errors)
}

impl TermsDraft {
    fn finish(self, now: DateTime<Utc>, errors: &mut FieldErrors) -> Option<CouponTerms> {
        let discount = match (self.discount_type, self.discount_amount) {
            (Some(kind), Some(amount)) => match Discount::new(kind, amount) {
                Ok(d) => Some(d),
                Err(e) => {
                    let p = "coupon_discount_amount";
                    errors.add(
                        p,
                        match e {
                            DiscountError::NotPositive => msg::gt_zero(p),
                            DiscountError::TooManyDecimals => msg::decimals(p, 2),
                            DiscountError::PercentOver100 => msg::max_value(p, 100),
                            DiscountError::TooLarge => msg::max_value(p, "99999999.99"),
                        },
                    );
                    None
                }
            },
            (kind, amount) => {
                if kind.is_none() && !errors.has("coupon_discount_type") {
                    errors.add(
                        "coupon_discount_type",
                        msg::required("coupon_discount_type"),
                    );
                }
                if amount.is_none() && !errors.has("coupon_discount_amount") {
                    errors.add(
                        "coupon_discount_amount",
                        msg::required("coupon_discount_amount"),
                    );
                }
                None
            }
        };
        let duration = match self.duration_type {
            None => {
                if !errors.has("coupon_duration_type") {
                    errors.add(
                        "coupon_duration_type",
                        msg::required("coupon_duration_type"),
                    );
                }
                None
            }
            Some(kind) if kind.takes_value() => {
                let p = "coupon_duration_value";
                if errors.has(p) {
                    None
                } else {
                    match self.duration_value {
                        None => {
                            errors.add(
                                p,
                                format!(
                                    "The {} field is required when coupon duration type is {}.",
                                    "coupon duration value",
                                    kind.as_str()
                                ),
                            );
                            None
                        }
                        Some(v) => positive_count(
                            Some(v),
                            p,
                            "coupon_duration_type",
                            MAX_DURATION_VALUE,
                            errors,
                        )
                        .and_then(|v| Duration::new(kind, Some(v))),
                    }
                }
            }
            Some(kind) => Duration::new(kind, None),
        };
        let redeem_by = switched_date(
            self.date_status,
            self.date_value,
            self.date_value_sent,
            "redemption_specific_date_value",
            "redemption_specific_date_status",
            now,
            errors,
        );
        let max_redemptions = switched_count(
            self.times_status,
            self.times_value,
            "redemption_times_value",
            "redemption_times_status",
            errors,
        );
        if !errors.is_empty() {
            return None;
        }
        Some(CouponTerms {
            active: self.active.unwrap_or(true),
            discount: discount?,
            duration: duration?,
            redeem_by,
            max_redemptions,
        })
    }
}

/// `sync` / `sync.provider` (B21): `null` means no sync; an object needs a valid provider.
fn read_sync(f: &Fields, errors: &mut FieldErrors) -> Option<ProviderKind> {
    let sync = f.object("sync", errors)?;
    let inner = Fields::nested(sync, "sync");
    let mut e = FieldErrors::new();
    match inner.raw("provider") {
        None => {
            errors.add("sync.provider", msg::required("sync.provider"));
            None
        }
        Some(v) => match v.as_str().and_then(ProviderKind::parse) {
            Some(p) => Some(p),
            None => {
                e.add("sync.provider", msg::invalid("sync.provider"));
                errors.extend(e);
                None
            }
        },
    }
}

fn read_ident<T>(
    f: &Fields,
    key: &str,
    parse: fn(&str) -> Result<T, IdentError>,
    errors: &mut FieldErrors,
) -> Option<T> {
    let path = f.path(key);
    let s = f.non_empty_string(key, usize::MAX, errors)?;
    match parse(&s) {
        Ok(v) => Some(v),
        Err(IdentError::Charset) => {
            errors.add(&path, msg::charset(&path));
            None
        }
        Err(IdentError::TooLong(n)) => {
            errors.add(&path, msg::max_len(&path, n));
            None
        }
    }
}

pub(crate) fn read_promo_code(
    f: &Fields,
    errors: &mut FieldErrors,
) -> Option<super::ident::PromoCode> {
    read_ident(f, "code", super::ident::PromoCode::parse, errors)
}

pub(crate) fn read_coupon_code(
    f: &Fields,
    key: &str,
    errors: &mut FieldErrors,
) -> Option<CouponCode> {
    read_ident(f, key, CouponCode::parse, errors)
}

pub(crate) fn read_metadata(f: &Fields, errors: &mut FieldErrors) -> Metadata {
    f.object("metadata", errors)
        .and_then(|m| Metadata::parse(m, &f.path("metadata"), errors))
        .unwrap_or_default()
}

pub(crate) fn read_metadata_patch(f: &Fields, errors: &mut FieldErrors) -> Option<MetadataPatch> {
    f.object("metadata", errors)
        .and_then(|m| MetadataPatch::parse(m, &f.path("metadata"), errors))
}

/// `redeem` + `transaction_key` of a PUT (B11–B16).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Redeem {
    pub requested: bool,
    pub transaction_key: Option<String>,
}

pub(crate) fn read_redeem(f: &Fields, errors: &mut FieldErrors) -> Redeem {
    let requested = f.boolean("redeem", errors).unwrap_or(false);
    let transaction_key = f.non_empty_string("transaction_key", MAX_TRANSACTION_KEY_LEN, errors);
    Redeem {
        requested,
        transaction_key: if requested { transaction_key } else { None },
    }
}

/// A validated `POST /v1/coupons`.
#[derive(Debug, Clone)]
pub struct NewCoupon {
    pub uuid_code: Option<CouponCode>,
    pub name: Option<String>,
    pub terms: CouponTerms,
    pub metadata: Metadata,
    pub promotion_codes: Vec<NewPromotionCode>,
    pub sync: Option<ProviderKind>,
}

impl NewCoupon {
    pub fn parse(body: &Map<String, Value>, now: DateTime<Utc>) -> Result<Self, FieldErrors> {
        let f = Fields::new(body);
        let mut errors = FieldErrors::new();
        let name = f.non_empty_string("name", MAX_NAME_LEN, &mut errors);
        let uuid_code = read_coupon_code(&f, "uuid_code", &mut errors);
        let terms = TermsInput::read(&f, &mut errors)
            .draft_for_create()
            .finish(now, &mut errors);
        let metadata = read_metadata(&f, &mut errors);
        let mut promotion_codes = Vec::new();
        if let Some(items) = f.array("promotion_codes", &mut errors) {
            let mut seen: Vec<String> = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let prefix = format!("promotion_codes.{i}");
                let Some(obj) = item.as_object() else {
                    errors.add(&prefix, msg::object(&prefix));
                    continue;
                };
                if let Some(code) = NewPromotionCode::parse(obj, &prefix, now, &mut errors) {
                    if let Some(c) = &code.code {
                        let key = c.as_str().to_ascii_lowercase();
                        if seen.contains(&key) {
                            let p = format!("{prefix}.code");
                            errors.add(&p, msg::taken(&p));
                            continue;
                        }
                        seen.push(key);
                    }
                    promotion_codes.push(code);
                }
            }
        }
        let sync = read_sync(&f, &mut errors);
        match terms {
            Some(terms) if errors.is_empty() => Ok(Self {
                uuid_code,
                name,
                terms,
                metadata,
                promotion_codes,
                sync,
            }),
            _ => Err(errors),
        }
    }
}

/// A validated `PUT /v1/coupons`, before it meets the stored coupon.
#[derive(Debug, Clone)]
pub struct CouponPatch {
    pub uuid_code: CouponCode,
    pub name: Option<String>,
    pub metadata: Option<MetadataPatch>,
    pub redeem: Redeem,
    pub sync: Option<ProviderKind>,
    terms: TermsInput,
}

impl CouponPatch {
    pub fn parse(body: &Map<String, Value>) -> Result<Self, FieldErrors> {
        let f = Fields::new(body);
        let mut errors = FieldErrors::new();
        let uuid_code = read_coupon_code(&f, "uuid_code", &mut errors);
        if uuid_code.is_none() && !errors.has("uuid_code") {
            errors.add("uuid_code", msg::required("uuid_code"));
        }
        let name = f.non_empty_string("name", MAX_NAME_LEN, &mut errors);
        let metadata = read_metadata_patch(&f, &mut errors);
        let redeem = read_redeem(&f, &mut errors);
        let sync = read_sync(&f, &mut errors);
        let terms = TermsInput::read(&f, &mut errors);
        match uuid_code {
            Some(uuid_code) if errors.is_empty() => Ok(Self {
                uuid_code,
                name,
                metadata,
                redeem,
                sync,
                terms,
            }),
            _ => Err(errors),
        }
    }

    /// The coupon terms after this request, validated on the merged state (B7).
    pub fn apply_terms(
        &self,
        current: &CouponTerms,
        now: DateTime<Utc>,
    ) -> Result<CouponTerms, FieldErrors> {
        if self.terms.is_empty() {
            return Ok(current.clone());
        }
        let mut errors = FieldErrors::new();
        match self.terms.draft_over(current).finish(now, &mut errors) {
            Some(t) => Ok(t),
            None => Err(errors),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        "2026-01-01T00:00:00Z".parse().unwrap()
    }

    fn create(v: Value) -> Result<NewCoupon, FieldErrors> {
        NewCoupon::parse(v.as_object().unwrap(), now())
    }

    fn base() -> Value {
        json!({"coupon_discount_type": "percent", "coupon_discount_amount": 25, "coupon_duration_type": "once"})
    }

    fn with(mut v: Value, extra: Value) -> Value {
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        v
    }

    fn error_fields(r: Result<NewCoupon, FieldErrors>) -> Vec<String> {
        r.unwrap_err().fields().map(str::to_owned).collect()
    }

    #[test]
    fn minimal_create_gets_defaults() {
        let c = create(base()).unwrap();
        assert!(c.terms.active);
        assert_eq!(c.terms.duration, Duration::Once);
        assert_eq!(c.terms.redeem_by, None);
        assert!(c.promotion_codes.is_empty());
    }

    #[test]
    fn required_fields_are_named() {
        assert_eq!(
            error_fields(create(json!({}))),
            [
                "coupon_discount_type",
                "coupon_discount_amount",
                "coupon_duration_type"
            ]
        );
    }

    #[test]
    fn duration_value_rules() {
        assert_eq!(
            error_fields(create(with(
                base(),
                json!({"coupon_duration_type": "months"})
            ))),
            ["coupon_duration_value"]
        );
        assert_eq!(
            error_fields(create(with(
                base(),
                json!({"coupon_duration_type": "days", "coupon_duration_value": 0})
            ))),
            ["coupon_duration_value"]
        );
        let c = create(with(
            base(),
            json!({"coupon_duration_type": "months", "coupon_duration_value": "11"}),
        ))
        .unwrap();
        assert_eq!(c.terms.duration, Duration::Months(11));
        // once/lifetime ignore a value (B5)
        let c = create(with(
            base(),
            json!({"coupon_duration_type": "lifetime", "coupon_duration_value": 3}),
        ))
        .unwrap();
        assert_eq!(c.terms.duration, Duration::Lifetime);
    }

    #[test]
    fn paired_switches() {
        assert_eq!(
            error_fields(create(with(
                base(),
                json!({"redemption_times_status": true})
            ))),
            ["redemption_times_value"]
        );
        // switch off: value dropped (B6)
        let c = create(with(
            base(),
            json!({"redemption_times_status": "off", "redemption_times_value": 5}),
        ))
        .unwrap();
        assert_eq!(c.terms.max_redemptions, None);
        let c = create(with(
            base(),
            json!({"redemption_times_status": "on", "redemption_times_value": 5}),
        ))
        .unwrap();
        assert_eq!(c.terms.max_redemptions, Some(5));
        assert_eq!(
            error_fields(create(with(
                base(),
                json!({"redemption_specific_date_status": true, "redemption_specific_date_value": "2020-01-01"})
            ))),
            ["redemption_specific_date_value"]
        );
        let c = create(with(base(), json!({"redemption_specific_date_status": 1, "redemption_specific_date_value": "2030-01-01"}))).unwrap();
        assert_eq!(
            c.terms.redeem_by.unwrap().to_rfc3339(),
            "2030-01-01T23:59:59+00:00"
        );
    }

    #[test]
    fn enums_and_types() {
        assert_eq!(
            error_fields(create(with(
                base(),
                json!({"coupon_discount_type": "fixed"})
            ))),
            ["coupon_discount_type"]
        );
        assert_eq!(
            error_fields(create(with(
                base(),
                json!({"coupon_duration_type": "weeks"})
            ))),
            ["coupon_duration_type"]
        );
        assert_eq!(
            error_fields(create(with(base(), json!({"active": "yes"})))),
            ["active"]
        );
        assert_eq!(
            error_fields(create(with(base(), json!({"coupon_discount_amount": 150})))),
            ["coupon_discount_amount"]
        );
        assert_eq!(
            error_fields(create(with(base(), json!({"uuid_code": "bad code"})))),
            ["uuid_code"]
        );
        assert_eq!(
            error_fields(create(with(base(), json!({"name": 5})))),
            ["name"]
        );
    }

    #[test]
    fn sync_provider_rules() {
        assert_eq!(
            create(with(base(), json!({"sync": {"provider": "stripe"}})))
                .unwrap()
                .sync,
            Some(ProviderKind::Stripe)
        );
        assert_eq!(
            create(with(base(), json!({"sync": null}))).unwrap().sync,
            None
        );
        assert_eq!(
            error_fields(create(with(
                base(),
                json!({"sync": {"provider": "Stripe"}})
            ))),
            ["sync.provider"]
        );
        assert_eq!(
            error_fields(create(with(base(), json!({"sync": {}})))),
            ["sync.provider"]
        );
        assert_eq!(
            error_fields(create(with(base(), json!({"sync": "stripe"})))),
            ["sync"]
        );
    }

    #[test]
    fn nested_codes_report_indexed_paths_and_duplicates() {
        let r = create(with(
            base(),
            json!({"promotion_codes": [{"code": "A1"}, {"code": "bad code"}, {"code": "a1"}]}),
        ));
        assert_eq!(
            error_fields(r),
            ["promotion_codes.1.code", "promotion_codes.2.code"]
        );
    }

    fn stored() -> CouponTerms {
        CouponTerms {
            active: true,
            discount: Discount::new(DiscountKind::Static, Decimal::from(150)).unwrap(),
            duration: Duration::Once,
            redeem_by: Some("2020-01-01T00:00:00Z".parse().unwrap()),
            max_redemptions: None,
        }
    }

    fn patch(v: Value) -> CouponPatch {
        CouponPatch::parse(with(json!({"uuid_code": "c1"}), v).as_object().unwrap()).unwrap()
    }

    #[test]
    fn update_validates_the_merged_state() {
        let e = patch(json!({"coupon_discount_type": "percent"}))
            .apply_terms(&stored(), now())
            .unwrap_err();
        assert!(e.has("coupon_discount_amount"));
        let e = patch(json!({"coupon_duration_type": "days"}))
            .apply_terms(&stored(), now())
            .unwrap_err();
        assert!(e.has("coupon_duration_value"));
        // a stale stored expiry does not block an unrelated change (B7)
        let t = patch(json!({"active": false}))
            .apply_terms(&stored(), now())
            .unwrap();
        assert!(!t.active);
        assert_eq!(t.redeem_by, stored().redeem_by);
        // switching off clears the value
        let t = patch(json!({"redemption_specific_date_status": false}))
            .apply_terms(&stored(), now())
            .unwrap();
        assert_eq!(t.redeem_by, None);
        // explicit null with the switch on is refused
        let e = patch(json!({"redemption_specific_date_value": null}))
            .apply_terms(&stored(), now())
            .unwrap_err();
        assert!(e.has("redemption_specific_date_value"));
    }

    #[test]
    fn update_requires_uuid_code() {
        let e = CouponPatch::parse(json!({"name": "x"}).as_object().unwrap()).unwrap_err();
        assert!(e.has("uuid_code"));
    }

    #[test]
    fn transaction_key_only_counts_with_redeem() {
        let p = patch(json!({"transaction_key": "t1"}));
        assert_eq!(p.redeem, Redeem::default());
        let p = patch(json!({"redeem": "1", "transaction_key": "t1"}));
        assert_eq!(
            p.redeem,
            Redeem {
                requested: true,
                transaction_key: Some("t1".into())
            }
        );
    }
}
