//! The pure mapping of a coupon and its codes to Stripe objects (providers/stripe.md §4).
//! Everything Stripe cannot hold is a named refusal; nothing is rounded or dropped.

use crate::domain::money::currency_exponent;
use crate::domain::{Coupon, DiscountKind, Duration, PromotionCode};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

pub const NAME_MAX: usize = 40;
pub const METADATA_MAX_KEYS: usize = 50;
pub const METADATA_VALUE_MAX: usize = 500;
pub const CODE_MAX: usize = 500;
/// Our marker: every object we manage carries `metadata[coupond] = "1"` plus its owner.
pub const MARKER: &str = "coupond";
pub const MARKER_PROGRAM: &str = "coupond_program";
pub const MARKER_COUPON: &str = "coupond_coupon";
pub const MARKER_CODE: &str = "coupond_code";
pub const MARKER_PARTNERS: &str = "coupond_partners";

/// A Stripe Coupon as we want it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CouponSpec {
    pub percent_off: Option<String>,
    pub amount_off: Option<i64>,
    pub currency: Option<String>,
    pub duration: String,
    pub duration_in_months: Option<u32>,
    pub max_redemptions: Option<i64>,
    pub name: String,
    pub metadata: BTreeMap<String, String>,
}

impl CouponSpec {
    /// The fields Stripe cannot change after creation, canonically.
    pub fn immutable(&self) -> String {
        format!(
            "percent_off={};amount_off={};currency={};duration={};months={};max={}",
            self.percent_off.as_deref().unwrap_or(""),
            self.amount_off.map(|a| a.to_string()).unwrap_or_default(),
            self.currency.as_deref().unwrap_or(""),
            self.duration,
            self.duration_in_months
                .map(|m| m.to_string())
                .unwrap_or_default(),
            self.max_redemptions
                .map(|m| m.to_string())
                .unwrap_or_default(),
        )
    }
}

/// The deterministic coupon id: the same program, coupon and terms always give the same id,
/// so a create retried after a crash finds its first attempt (`resource_already_exists`).
pub fn coupon_id(program: &str, uuid_code: &str, spec: &CouponSpec) -> String {
    let h = Sha256::digest(spec.immutable().as_bytes());
    format!("cpd_{program}_{uuid_code}_{}", &hex::encode(h)[..10])
}

/// A Stripe Promotion Code as we want it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeSpec {
    pub code: String,
    pub active: bool,
    pub expires_at: Option<i64>,
    pub max_redemptions: Option<i64>,
    pub first_time_transaction: bool,
    pub minimum_amount: Option<i64>,
    pub minimum_amount_currency: Option<String>,
    pub customer: Option<String>,
    pub metadata: BTreeMap<String, String>,
}

impl CodeSpec {
    /// What Stripe cannot change after creation (plus the coupon it points at).
    pub fn immutable(&self, coupon_id: &str) -> String {
        format!(
            "coupon={coupon_id};code={};expires_at={};max={};first={};min={}{};customer={}",
            self.code.to_ascii_lowercase(),
            self.expires_at.map(|t| t.to_string()).unwrap_or_default(),
            self.max_redemptions
                .map(|m| m.to_string())
                .unwrap_or_default(),
            self.first_time_transaction,
            self.minimum_amount
                .map(|m| m.to_string())
                .unwrap_or_default(),
            self.minimum_amount_currency.as_deref().unwrap_or(""),
            self.customer.as_deref().unwrap_or(""),
        )
    }
}

fn refuse(field: &str, value: impl std::fmt::Display, limit: &str) -> String {
    format!("Stripe cannot hold {field} {value}: {limit}")
}

/// `percent_off` as Stripe's decimal: hundredths of a percent → `12.5`.
fn percent(hundredths: i64) -> String {
    rust_decimal::Decimal::new(hundredths, 2)
        .normalize()
        .to_string()
}

fn metadata_strings(
    coupon: &Coupon,
    extra: &[(&str, String)],
    field: &str,
) -> Result<BTreeMap<String, String>, String> {
    let mut m = BTreeMap::new();
    for (k, v) in coupon.metadata.as_map() {
        if k.contains('[') || k.contains(']') {
            return Err(refuse(
                &format!("{field} key"),
                format!("'{k}'"),
                "keys cannot contain '[' or ']'",
            ));
        }
        let s = match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        m.insert(k.clone(), s);
    }
    for (k, v) in extra {
        if v.chars().count() > METADATA_VALUE_MAX {
            return Err(refuse(
                &format!("{field}.{k}"),
                format!("of {} characters", v.chars().count()),
                "metadata values hold at most 500",
            ));
        }
        m.insert((*k).to_owned(), v.clone());
    }
    if m.len() > METADATA_MAX_KEYS {
        return Err(refuse(
            field,
            format!("with {} keys", coupon.metadata.as_map().len()),
            &format!(
                "Stripe objects hold at most {METADATA_MAX_KEYS} metadata keys, {} of them coupond's",
                extra.len()
            ),
        ));
    }
    Ok(m)
}

/// The Stripe Coupon for a coupon (in the program's currency).
pub fn map_coupon(program: &str, currency: &str, c: &Coupon) -> Result<CouponSpec, String> {
    let t = &c.terms;
    let (percent_off, amount_off, cur) = match t.discount.kind() {
        DiscountKind::Percent => (Some(percent(t.discount.hundredths())), None, None),
        DiscountKind::Static => {
            let exp = currency_exponent(currency)
                .ok_or_else(|| refuse("currency", currency, "not an ISO 4217 currency"))?;
            let minor = t.discount.minor_units(exp).ok_or_else(|| {
                refuse(
                    "coupon_discount_amount",
                    t.discount.amount(),
                    &format!("{currency} has {exp} decimal places"),
                )
            })?;
            (None, Some(minor), Some(currency.to_ascii_lowercase()))
        }
    };
    let (duration, months) = match t.duration {
        Duration::Once => ("once", None),
        Duration::Lifetime => ("forever", None),
        Duration::Months(n) => ("repeating", Some(n)),
        Duration::Years(n) => (
            "repeating",
            Some(
                n.checked_mul(12)
                    .ok_or_else(|| refuse("coupon_duration_value", n, "too many years"))?,
            ),
        ),
        Duration::Hours(n) | Duration::Days(n) => {
            return Err(refuse(
                "coupon_duration_type",
                format!("'{}' ({n})", t.duration.kind().as_str()),
                "Stripe discounts last once, a number of months, or forever",
            ));
        }
    };
    if c.name.chars().count() > NAME_MAX {
        return Err(refuse(
            "name",
            format!("'{}' ({} characters)", c.name, c.name.chars().count()),
            "at most 40 characters",
        ));
    }
    let metadata = metadata_strings(
        c,
        &[
            (MARKER, "1".into()),
            (MARKER_PROGRAM, program.into()),
            (MARKER_COUPON, c.uuid_code.clone()),
        ],
        "metadata",
    )?;
    Ok(CouponSpec {
        percent_off,
        amount_off,
        currency: cur,
        duration: duration.into(),
        duration_in_months: months,
        max_redemptions: t.max_redemptions,
        name: c.name.clone(),
        metadata,
    })
}

/// The Stripe Promotion Code for one code of a coupon.
pub fn map_code(
    program: &str,
    currency: &str,
    c: &Coupon,
    code: &PromotionCode,
    now: DateTime<Utc>,
) -> Result<CodeSpec, String> {
    let field = |f: &str| format!("promotion code '{}' {f}", code.code);
    if code.code.len() > CODE_MAX {
        return Err(refuse(
            &field("code"),
            format!("of {} characters", code.code.len()),
            "at most 500",
        ));
    }
    if code.code.contains('_') {
        return Err(refuse(
            "code",
            format!("'{}'", code.code),
            "Stripe promotion codes use letters, digits and '-' only",
        ));
    }
    let r = &code.restrictions;
    if r.subscribers.is_some() {
        return Err(refuse(
            &field("limit_to_specific_subscriber"),
            "true",
            "Stripe cannot restrict a promotion code to subscribers",
        ));
    }
    let customer = match &r.customers {
        None => None,
        Some(list) => match list.as_slice() {
            [one] if one.id.as_str().is_some_and(|s| s.starts_with("cus_")) => {
                one.id.as_str().map(str::to_owned)
            }
            _ => {
                return Err(refuse(
                    &field("coupon_specific_customers"),
                    format!("({} entries)", list.len()),
                    "Stripe binds a promotion code to one Stripe customer id (cus_…)",
                ));
            }
        },
    };
    // Expiry: the earlier of the code's and the coupon's (the coupon's own redeem_by is left unset,
    // so an expiry change needs only a code swap, never a new coupon).
    let expires = match (r.expires_at, c.terms.redeem_by) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let expired = expires.is_some_and(|t| t <= now);
    let max_redemptions = match (r.max_redemptions, c.terms.max_redemptions) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, _) => a,
    };
    let (minimum_amount, minimum_amount_currency) = match r.minimum_order {
        None => (None, None),
        Some(v) => {
            let exp = currency_exponent(currency).unwrap_or(2);
            let minor = v
                .checked_mul(10i64.pow(exp))
                .ok_or_else(|| refuse(&field("minimum_order_value"), v, "too large"))?;
            (Some(minor), Some(currency.to_ascii_lowercase()))
        }
    };
    let mut extra = vec![
        (MARKER, "1".to_owned()),
        (MARKER_PROGRAM, program.to_owned()),
        (MARKER_COUPON, c.uuid_code.clone()),
        (MARKER_CODE, code.code.clone()),
    ];
    if let Some(p) = &r.partners {
        let ids: Vec<String> = p
            .iter()
            .map(|x| {
                x.id.as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| x.id.to_string())
            })
            .collect();
        extra.push((MARKER_PARTNERS, ids.join(",")));
    }
    let code_as_coupon = Coupon {
        metadata: code.metadata.clone(),
        ..c.clone()
    };
    let metadata = metadata_strings(&code_as_coupon, &extra, &field("metadata"))?;
    Ok(CodeSpec {
        code: code.code.clone(),
        active: c.terms.active && !expired,
        // an already expired code is created inactive (Stripe refuses a past expires_at)
        expires_at: if expired {
            None
        } else {
            expires.map(|t| t.timestamp())
        },
        max_redemptions,
        first_time_transaction: r.first_time_order,
        minimum_amount,
        minimum_amount_currency,
        customer,
        metadata,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Metadata, Party};
    use crate::providers::terms::fixtures::{code, coupon, now};
    use serde_json::json;

    #[test]
    fn terms_map_per_the_table() {
        let s = map_coupon(
            "acme",
            "USD",
            &coupon(DiscountKind::Percent, "12.5", Duration::Months(3)),
        )
        .unwrap();
        assert_eq!(
            (
                s.percent_off.as_deref(),
                s.duration.as_str(),
                s.duration_in_months
            ),
            (Some("12.5"), "repeating", Some(3))
        );
        assert_eq!(s.metadata[MARKER], "1");
        let s = map_coupon(
            "acme",
            "USD",
            &coupon(DiscountKind::Static, "19.99", Duration::Years(2)),
        )
        .unwrap();
        assert_eq!(
            (s.amount_off, s.currency.as_deref(), s.duration_in_months),
            (Some(1999), Some("usd"), Some(24))
        );
        let s = map_coupon(
            "acme",
            "JPY",
            &coupon(DiscountKind::Static, "500", Duration::Lifetime),
        )
        .unwrap();
        assert_eq!((s.amount_off, s.duration.as_str()), (Some(500), "forever"));
        assert_eq!(
            map_coupon(
                "acme",
                "USD",
                &coupon(DiscountKind::Percent, "100", Duration::Once)
            )
            .unwrap()
            .duration,
            "once"
        );
    }

    #[test]
    fn refusals_name_field_value_and_limit() {
        let e = map_coupon(
            "acme",
            "USD",
            &coupon(DiscountKind::Percent, "10", Duration::Days(7)),
        )
        .unwrap_err();
        assert!(
            e.contains("coupon_duration_type") && e.contains("days") && e.contains("months"),
            "{e}"
        );
        let e = map_coupon(
            "acme",
            "USD",
            &coupon(DiscountKind::Percent, "10", Duration::Hours(5)),
        )
        .unwrap_err();
        assert!(e.contains("hours"), "{e}");
        let e = map_coupon(
            "acme",
            "JPY",
            &coupon(DiscountKind::Static, "10.5", Duration::Once),
        )
        .unwrap_err();
        assert!(
            e.contains("coupon_discount_amount") && e.contains("10.5") && e.contains("JPY"),
            "{e}"
        );
        let mut c = coupon(DiscountKind::Percent, "10", Duration::Once);
        c.name = "n".repeat(41);
        assert!(
            map_coupon("acme", "USD", &c)
                .unwrap_err()
                .contains("at most 40")
        );
        let mut c = coupon(DiscountKind::Percent, "10", Duration::Once);
        c.metadata = Metadata::from_stored((0..48).map(|i| (format!("k{i}"), json!(i))).collect());
        assert!(
            map_coupon("acme", "USD", &c)
                .unwrap_err()
                .contains("at most 50 metadata keys")
        );
        let c = coupon(DiscountKind::Percent, "10", Duration::Once);
        assert!(
            map_code("acme", "USD", &c, &code("A_B"), now())
                .unwrap_err()
                .contains("letters, digits and '-'")
        );
        let mut p = code("SUB");
        p.restrictions.subscribers = Some(vec![Party {
            id: json!(1),
            name: None,
        }]);
        assert!(
            map_code("acme", "USD", &c, &p, now())
                .unwrap_err()
                .contains("subscribers")
        );
        let mut p = code("CUST");
        p.restrictions.customers = Some(vec![Party {
            id: json!(42),
            name: None,
        }]);
        assert!(
            map_code("acme", "USD", &c, &p, now())
                .unwrap_err()
                .contains("cus_")
        );
        p.restrictions.customers = Some(vec![Party {
            id: json!("cus_123"),
            name: None,
        }]);
        assert_eq!(
            map_code("acme", "USD", &c, &p, now())
                .unwrap()
                .customer
                .as_deref(),
            Some("cus_123")
        );
    }

    #[test]
    fn code_takes_the_tighter_limits_and_inactive_coupons() {
        let mut c = coupon(DiscountKind::Percent, "10", Duration::Once);
        c.terms.redeem_by = Some("2026-06-01T00:00:00Z".parse().unwrap());
        c.terms.max_redemptions = Some(5);
        let mut p = code("SPRING");
        p.restrictions.expires_at = Some("2026-09-01T00:00:00Z".parse().unwrap());
        p.restrictions.max_redemptions = Some(10);
        p.restrictions.minimum_order = Some(22);
        p.restrictions.first_time_order = true;
        let s = map_code("acme", "USD", &c, &p, now()).unwrap();
        assert_eq!(s.expires_at, Some(c.terms.redeem_by.unwrap().timestamp()));
        assert_eq!(s.max_redemptions, Some(5));
        assert_eq!(
            (s.minimum_amount, s.minimum_amount_currency.as_deref()),
            (Some(2200), Some("usd"))
        );
        assert!(s.first_time_transaction && s.active);
        c.terms.active = false;
        assert!(!map_code("acme", "USD", &c, &p, now()).unwrap().active);
        // an expired code is created inactive, without the past expiry
        let later = "2027-01-01T00:00:00Z".parse().unwrap();
        c.terms.active = true;
        let s = map_code("acme", "USD", &c, &p, later).unwrap();
        assert!(!s.active && s.expires_at.is_none());
    }

    #[test]
    fn ids_are_deterministic_per_terms() {
        let a = map_coupon(
            "acme",
            "USD",
            &coupon(DiscountKind::Percent, "10", Duration::Once),
        )
        .unwrap();
        let mut renamed = coupon(DiscountKind::Percent, "10", Duration::Once);
        renamed.name = "Other".into();
        let b = map_coupon("acme", "USD", &renamed).unwrap();
        let c = map_coupon(
            "acme",
            "USD",
            &coupon(DiscountKind::Percent, "11", Duration::Once),
        )
        .unwrap();
        assert_eq!(
            coupon_id("acme", "SUMMER", &a),
            coupon_id("acme", "SUMMER", &b),
            "name is mutable"
        );
        assert_ne!(
            coupon_id("acme", "SUMMER", &a),
            coupon_id("acme", "SUMMER", &c),
            "terms are not"
        );
        assert!(coupon_id("acme", "SUMMER", &a).starts_with("cpd_acme_SUMMER_"));
    }
}
