//! The pure mapping of a promotion code (with its coupon's terms) to a Paddle Classic coupon
//! (providers/paddle.md §1, §3; seed 004). Everything Classic cannot hold is a named refusal.

use crate::domain::{Coupon, DiscountKind, Duration, PromotionCode};
use crate::providers::terms::{self, refuse as refuse_for};
use chrono::{DateTime, NaiveTime, Timelike, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

const PROVIDER: &str = "Paddle Classic";
pub const CODE_MIN: usize = 5;
pub const CODE_MAX: usize = 300;
pub const DESCRIPTION_MAX: usize = 300;
/// Classic's default `allowed_uses`: what "unlimited" is sent as.
pub const UNLIMITED_USES: i64 = 999_999;
/// Currencies a Classic flat coupon may use (the account's balance currency among them).
pub const CURRENCIES: &[&str] = &["USD", "GBP", "EUR"];
/// Coupon metadata key with the numeric product/plan ids a coupon is restricted to.
pub const PRODUCTS_KEY: &str = "paddle_products";
/// Prefix of our description: `coupond:{program}:{uuid_code}`.
pub const MARKER: &str = "coupond:";

fn refuse(field: &str, value: impl std::fmt::Display, limit: &str) -> String {
    refuse_for(PROVIDER, field, value, limit)
}

/// The coupon group of a coupon: short (≤ 50) and deterministic.
pub fn group_name(program: &str, uuid: &str) -> String {
    let h = Sha256::digest(format!("{program}\u{0}{}", uuid.to_lowercase()).as_bytes());
    format!("cpd-{}", &hex::encode(h)[..12])
}

/// The description every coupon of ours carries (Classic cannot change it after the create).
pub fn description(program: &str, uuid: &str) -> String {
    format!("{MARKER}{program}:{uuid}")
}

/// Does a description say the coupon was created by coupond for this program?
pub fn owned_by_program(description: &str, program: &str) -> bool {
    description.starts_with(&format!("{MARKER}{program}:"))
}

/// A Classic coupon as we want it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassicSpec {
    pub coupon_code: String,
    pub group: String,
    pub description: String,
    /// `product` (with `product_ids`) or `checkout`.
    pub coupon_type: String,
    pub product_ids: Vec<u64>,
    /// `percentage` (whole percent as a decimal, < 100) or `flat` (major units).
    pub discount_type: String,
    pub discount_amount: String,
    pub currency: Option<String>,
    pub allowed_uses: i64,
    /// The first day it no longer works (`YYYY-MM-DD`, ends at 00:00 UTC).
    pub expires: Option<String>,
    pub recurring: bool,
    pub minimum_threshold: Option<String>,
}

impl ClassicSpec {
    /// What cannot be updated (a change means delete and create again).
    pub fn immutable(&self) -> (&str, &str) {
        (&self.discount_type, &self.coupon_type)
    }

    /// `product_ids` as Classic takes them: one comma-separated string.
    pub fn product_list(&self) -> String {
        self.product_ids
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The create parameters.
    pub fn create_params(&self) -> Vec<(&'static str, String)> {
        let mut p = vec![
            ("coupon_code", self.coupon_code.clone()),
            ("coupon_type", self.coupon_type.clone()),
            ("discount_type", self.discount_type.clone()),
            ("discount_amount", self.discount_amount.clone()),
            ("allowed_uses", self.allowed_uses.to_string()),
            ("recurring", u8::from(self.recurring).to_string()),
            ("group", self.group.clone()),
            ("description", self.description.clone()),
        ];
        if self.coupon_type == "product" {
            p.push(("product_ids", self.product_list()));
        }
        if let Some(c) = &self.currency {
            p.push(("currency", c.clone()));
        }
        if let Some(e) = &self.expires {
            p.push(("expires", e.clone()));
        }
        if let Some(m) = &self.minimum_threshold {
            p.push(("minimum_threshold", m.clone()));
        }
        p
    }

    /// The update parameters that bring `from` to this (blank means clear: only changed fields
    /// are sent, an expiry removed is sent as `""`).
    pub fn update_params(&self, from: &ClassicSpec) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        if self.discount_amount != from.discount_amount || self.currency != from.currency {
            p.push(("discount_amount", self.discount_amount.clone()));
            if let Some(c) = &self.currency {
                p.push(("currency", c.clone()));
            }
        }
        if self.recurring != from.recurring {
            p.push(("recurring", u8::from(self.recurring).to_string()));
        }
        if self.product_ids != from.product_ids {
            p.push(("product_ids", self.product_list()));
        }
        if self.expires != from.expires {
            p.push(("expires", self.expires.clone().unwrap_or_default()));
        }
        if self.allowed_uses != from.allowed_uses {
            p.push(("allowed_uses", self.allowed_uses.to_string()));
        }
        if self.minimum_threshold != from.minimum_threshold {
            // blank means clear
            p.push((
                "minimum_threshold",
                self.minimum_threshold.clone().unwrap_or_default(),
            ));
        }
        if self.group != from.group {
            p.push(("new_group", self.group.clone()));
        }
        p
    }
}

/// An instant as Classic's exclusive expiry date: a day boundary → that day; the last second of a
/// day (what a date-only expiry means here) → the next day. Anything else is refused.
pub fn expiry_date(t: DateTime<Utc>) -> Result<String, String> {
    let time = t.time();
    let day = if time == NaiveTime::MIN {
        t.date_naive()
    } else if time.hour() == 23 && time.minute() == 59 && time.second() == 59 {
        t.date_naive() + chrono::Days::new(1)
    } else {
        return Err(refuse(
            "expiration_date_value",
            t.to_rfc3339(),
            "Paddle Classic coupons expire at the start of a day (00:00 UTC); send an end-of-day or a midnight expiry",
        ));
    };
    Ok(day.format("%Y-%m-%d").to_string())
}

/// The product ids of a coupon (`metadata.paddle_products`), checked.
pub fn products(c: &Coupon) -> Result<Vec<u64>, String> {
    let Some(v) = c.metadata.as_map().get(PRODUCTS_KEY) else {
        return Ok(Vec::new());
    };
    let text = match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => n.to_string(),
        other => other.to_string(),
    };
    let ids: Result<Vec<u64>, _> = text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<u64>()
                .map_err(|_| ())
                .and_then(|n| if n >= 1 { Ok(n) } else { Err(()) })
        })
        .collect();
    match ids {
        Ok(mut ids) if !ids.is_empty() => {
            ids.sort_unstable();
            ids.dedup();
            Ok(ids)
        }
        _ => Err(refuse(
            &format!("metadata.{PRODUCTS_KEY}"),
            v,
            "a comma-separated list of numeric Paddle product or plan ids",
        )),
    }
}

/// What every coupon of a group shares: (discount_type, amount, currency, recurring).
pub fn coupon_terms(
    currency: &str,
    c: &Coupon,
) -> Result<(String, String, Option<String>, bool), String> {
    let t = &c.terms;
    let recurring = match t.duration {
        Duration::Once => false,
        Duration::Lifetime => true,
        d => {
            return Err(refuse(
                "coupon_duration_type",
                match d.value() {
                    Some(v) => format!("'{}' ({v})", d.kind().as_str()),
                    None => format!("'{}'", d.kind().as_str()),
                },
                "a Paddle Classic coupon applies to the first payment only or to every payment",
            ));
        }
    };
    let amount = t.discount.amount();
    let (kind, amount, cur) = match t.discount.kind() {
        DiscountKind::Percent => {
            if amount >= Decimal::ONE_HUNDRED {
                return Err(refuse(
                    "coupon_discount_amount",
                    format!("{amount}%"),
                    "percentages must be below 100",
                ));
            }
            ("percentage", amount.normalize().to_string(), None)
        }
        DiscountKind::Static => {
            let cur = currency.to_ascii_uppercase();
            if !CURRENCIES.contains(&cur.as_str()) {
                return Err(refuse(
                    "currency",
                    &cur,
                    "flat coupons are in the account's balance currency (USD, GBP or EUR)",
                ));
            }
            ("flat", format!("{:.2}", amount), Some(cur))
        }
    };
    Ok((kind.into(), amount, cur, recurring))
}

/// The Classic coupon for one promotion code; `None` when the code has expired (Classic refuses
/// a past expiry: such a code is deleted there instead).
pub fn map_code(
    program: &str,
    currency: &str,
    c: &Coupon,
    code: &PromotionCode,
    now: DateTime<Utc>,
) -> Result<Option<ClassicSpec>, String> {
    let field = |f: &str| format!("promotion code '{}' {f}", code.code);
    let (discount_type, discount_amount, currency, recurring) = coupon_terms(currency, c)?;
    let n = code.code.chars().count();
    if !(CODE_MIN..=CODE_MAX).contains(&n) {
        return Err(refuse(
            "code",
            format!("'{}' ({n} characters)", code.code),
            "Paddle Classic codes have 5 to 300 characters",
        ));
    }
    let r = &code.restrictions;
    if r.first_time_order {
        return Err(refuse(
            &field("first_time_order"),
            "true",
            "Paddle has no first-order rule",
        ));
    }
    if r.customers.is_some() {
        return Err(refuse(
            &field("coupon_specific_customers"),
            "(restricted)",
            "Paddle Classic coupons cannot be restricted to customers",
        ));
    }
    if r.subscribers.is_some() {
        return Err(refuse(
            &field("limit_to_specific_subscriber"),
            "true",
            "Paddle Classic coupons cannot be restricted to subscribers",
        ));
    }
    let description = description(program, &c.uuid_code);
    if description.chars().count() > DESCRIPTION_MAX {
        return Err(refuse(
            "uuid_code",
            format!(
                "(description of {} characters)",
                description.chars().count()
            ),
            "a Classic description holds at most 300 characters",
        ));
    }
    let expires = match terms::expiry(c, code) {
        Some(t) if t <= now => return Ok(None),
        Some(t) => Some(expiry_date(t)?),
        None => None,
    };
    let product_ids = products(c)?;
    Ok(Some(ClassicSpec {
        coupon_code: code.code.clone(),
        group: group_name(program, &c.uuid_code),
        description,
        coupon_type: if product_ids.is_empty() {
            "checkout"
        } else {
            "product"
        }
        .into(),
        product_ids,
        discount_type,
        discount_amount,
        currency,
        allowed_uses: terms::max_redemptions(c, code).unwrap_or(UNLIMITED_USES),
        expires,
        recurring,
        minimum_threshold: r.minimum_order.filter(|m| *m > 0).map(|m| m.to_string()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Metadata;
    use crate::providers::terms::fixtures::{code, coupon, now};
    use serde_json::json;

    #[test]
    fn fields_map_per_the_table() {
        let mut c = coupon(DiscountKind::Percent, "12.5", Duration::Lifetime);
        c.terms.redeem_by = Some("2026-06-30T23:59:59Z".parse().unwrap());
        c.metadata = Metadata::from_stored(
            [(PRODUCTS_KEY.to_owned(), json!("1002, 1001"))]
                .into_iter()
                .collect(),
        );
        let mut p = code("SUMMER25");
        p.restrictions.max_redemptions = Some(10);
        p.restrictions.minimum_order = Some(30);
        let s = map_code("acme", "USD", &c, &p, now()).unwrap().unwrap();
        assert_eq!(s.discount_type, "percentage");
        assert_eq!(s.discount_amount, "12.5");
        assert!(s.recurring);
        assert_eq!(
            s.expires.as_deref(),
            Some("2026-07-01"),
            "valid through June 30 → D+1"
        );
        assert_eq!(
            (s.coupon_type.as_str(), s.product_list()),
            ("product", "1001,1002".to_owned())
        );
        assert_eq!(s.allowed_uses, 10);
        assert_eq!(s.minimum_threshold.as_deref(), Some("30"));
        assert_eq!(s.description, "coupond:acme:SUMMER");
        assert!(s.group.starts_with("cpd-") && s.group.len() <= 50);
        let s = map_code(
            "acme",
            "eur",
            &coupon(DiscountKind::Static, "10", Duration::Once),
            &code("FLAT10"),
            now(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (
                s.discount_type.as_str(),
                s.discount_amount.as_str(),
                s.currency.as_deref(),
                s.recurring,
                s.allowed_uses
            ),
            ("flat", "10.00", Some("EUR"), false, UNLIMITED_USES)
        );
        assert_eq!(s.coupon_type, "checkout");
        // midnight is that day; an expired code is not held at all
        assert_eq!(
            expiry_date("2026-03-01T00:00:00Z".parse().unwrap()).unwrap(),
            "2026-03-01"
        );
        let mut old = coupon(DiscountKind::Percent, "5", Duration::Once);
        old.terms.redeem_by = Some("2025-12-31T23:59:59Z".parse().unwrap());
        assert_eq!(
            map_code("acme", "USD", &old, &code("OLDIE"), now()).unwrap(),
            None
        );
    }

    #[test]
    fn updates_send_only_what_changed() {
        let c = coupon(DiscountKind::Percent, "10", Duration::Once);
        let a = map_code("acme", "USD", &c, &code("AAAAA"), now())
            .unwrap()
            .unwrap();
        let mut b = a.clone();
        b.expires = None;
        let mut a2 = a.clone();
        a2.expires = Some("2027-01-01".into());
        assert_eq!(
            b.update_params(&a2),
            vec![("expires", String::new())],
            "blank clears"
        );
        b.discount_amount = "15".into();
        b.allowed_uses = 3;
        assert_eq!(
            b.update_params(&a),
            vec![
                ("discount_amount", "15".into()),
                ("allowed_uses", "3".into())
            ]
        );
        assert!(a.update_params(&a).is_empty());
    }

    #[test]
    fn refusals_name_field_value_and_limit() {
        let c = coupon(DiscountKind::Percent, "10", Duration::Once);
        let e = map_code("acme", "USD", &c, &code("AB"), now()).unwrap_err();
        assert_eq!(
            e,
            "Paddle Classic cannot hold code 'AB' (2 characters): Paddle Classic codes have 5 to 300 characters"
        );
        let e = map_code(
            "acme",
            "USD",
            &coupon(DiscountKind::Percent, "100", Duration::Once),
            &code("FULL1"),
            now(),
        )
        .unwrap_err();
        assert!(e.contains("100%") && e.contains("below 100"), "{e}");
        let e = map_code(
            "acme",
            "USD",
            &coupon(DiscountKind::Percent, "10", Duration::Months(3)),
            &code("MONTH"),
            now(),
        )
        .unwrap_err();
        assert!(e.contains("'months' (3)"), "{e}");
        let e = map_code(
            "acme",
            "JPY",
            &coupon(DiscountKind::Static, "10", Duration::Once),
            &code("YEN10"),
            now(),
        )
        .unwrap_err();
        assert!(e.contains("currency JPY"), "{e}");
        let mut odd = c.clone();
        odd.terms.redeem_by = Some("2026-06-30T12:00:00Z".parse().unwrap());
        assert!(
            map_code("acme", "USD", &odd, &code("NOONY"), now())
                .unwrap_err()
                .contains("start of a day")
        );
        let mut bad = c.clone();
        bad.metadata = Metadata::from_stored(
            [(PRODUCTS_KEY.to_owned(), json!("pro_1"))]
                .into_iter()
                .collect(),
        );
        assert!(
            map_code("acme", "USD", &bad, &code("PRODS"), now())
                .unwrap_err()
                .contains("numeric")
        );
        let mut p = code("FIRST");
        p.restrictions.first_time_order = true;
        assert!(
            map_code("acme", "USD", &c, &p, now())
                .unwrap_err()
                .contains("first_time_order")
        );
    }
}
