//! The pure mapping of a promotion code (with its coupon's terms) to a Paddle Billing discount
//! (providers/paddle.md §2, §3). Everything Paddle Billing cannot hold is a named refusal.

use crate::config::BillingInterval;
use crate::domain::money::currency_exponent;
use crate::domain::{Coupon, DiscountKind, Duration, PromotionCode};
use crate::providers::terms::{self, refuse as refuse_for};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

const PROVIDER: &str = "Paddle Billing";
pub const CODE_MAX: usize = 32;
pub const DESCRIPTION_MAX: usize = 500;
pub const MAX_INTERVALS: u32 = 999;
/// Our marker in `custom_data`, with the owner.
pub const MARKER: &str = "coupond";
/// Coupon metadata key holding the product/price ids a coupon is restricted to (comma-separated).
pub const PRODUCTS_KEY: &str = "paddle_products";
/// The currencies Paddle Billing supports (reference spec `currency_code` enum).
pub const CURRENCIES: &[&str] = &[
    "USD", "EUR", "GBP", "JPY", "AUD", "CAD", "CHF", "HKD", "SGD", "SEK", "ARS", "BRL", "CNY",
    "COP", "CZK", "DKK", "HUF", "ILS", "INR", "KRW", "MXN", "NOK", "NZD", "PLN", "RUB", "THB",
    "TRY", "TWD", "UAH", "VND", "ZAR",
];

fn refuse(field: &str, value: impl std::fmt::Display, limit: &str) -> String {
    refuse_for(PROVIDER, field, value, limit)
}

/// The discount group of a coupon: its name (unique in the account).
pub fn group_name(program: &str, uuid: &str) -> String {
    format!("coupond {program}/{uuid}")
}

/// A Paddle Billing discount as we want it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscountSpec {
    pub description: String,
    pub code: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub amount: String,
    pub currency_code: Option<String>,
    pub recur: bool,
    pub maximum_recurring_intervals: Option<u32>,
    pub usage_limit: Option<i64>,
    pub restrict_to: Option<Vec<String>>,
    pub expires_at: Option<String>,
    pub custom_data: Map<String, Value>,
    pub active: bool,
}

impl DiscountSpec {
    /// The create body (status is not settable on create; `group` is the discount group id).
    pub fn create_body(&self, group: &str) -> Value {
        let mut b = self.patch_body(group);
        b.as_object_mut().map(|o| o.remove("status"));
        b["code"] = json!(self.code);
        b["mode"] = json!("standard");
        b
    }

    /// A PATCH body with every field we manage (PATCH is partial; we always send them all).
    pub fn patch_body(&self, group: &str) -> Value {
        json!({
            "description": self.description,
            "enabled_for_checkout": true,
            "type": self.kind,
            "amount": self.amount,
            "currency_code": self.currency_code,
            "recur": self.recur,
            "maximum_recurring_intervals": self.maximum_recurring_intervals,
            "usage_limit": self.usage_limit,
            "restrict_to": self.restrict_to,
            "expires_at": self.expires_at,
            "custom_data": self.custom_data,
            "discount_group_id": group,
            "status": if self.active { "active" } else { "archived" },
        })
    }

    /// Our view of a discount as Paddle returns it, to compare with what we want.
    pub fn from_remote(v: &Value) -> DiscountSpec {
        let status = v["status"].as_str().unwrap_or("");
        DiscountSpec {
            description: v["description"].as_str().unwrap_or_default().to_owned(),
            code: v["code"].as_str().unwrap_or_default().to_owned(),
            kind: v["type"].as_str().unwrap_or_default().to_owned(),
            amount: normalise(v["amount"].as_str().unwrap_or_default()),
            currency_code: v["currency_code"].as_str().map(str::to_owned),
            recur: v["recur"].as_bool().unwrap_or(false),
            maximum_recurring_intervals: v["maximum_recurring_intervals"]
                .as_u64()
                .map(|n| n as u32),
            usage_limit: v["usage_limit"].as_i64(),
            restrict_to: v["restrict_to"].as_array().map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect()
            }),
            expires_at: v["expires_at"].as_str().map(|s| {
                DateTime::parse_from_rfc3339(s)
                    .map(|t| iso(t.with_timezone(&Utc)))
                    .unwrap_or_else(|_| s.to_owned())
            }),
            custom_data: v["custom_data"].as_object().cloned().unwrap_or_default(),
            // expired and used are read states of an active discount
            active: status != "archived",
        }
    }

    /// The fields where `theirs` differs (codes compare ignoring case).
    pub fn drift(&self, theirs: &DiscountSpec) -> Vec<(String, String, String)> {
        let a = serde_json::to_value(self).unwrap_or_default();
        let b = serde_json::to_value(theirs).unwrap_or_default();
        let mut out = Vec::new();
        for (k, va) in a.as_object().into_iter().flatten() {
            let vb = &b[k];
            let same = if k == "code" {
                va.as_str().map(str::to_ascii_lowercase) == vb.as_str().map(str::to_ascii_lowercase)
            } else {
                va == vb
            };
            if !same {
                out.push((k.clone(), va.to_string(), vb.to_string()));
            }
        }
        out
    }
}

/// `"10.00"` and `"10"` are the same amount.
fn normalise(s: &str) -> String {
    s.parse::<rust_decimal::Decimal>()
        .map(|d| d.normalize().to_string())
        .unwrap_or_else(|_| s.to_owned())
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Is this discount ours, for this program and coupon?
pub fn owned_by(v: &Value, program: &str, uuid: &str) -> bool {
    let c = &v["custom_data"];
    c[MARKER] == "1"
        && c["program"] == program
        && c["coupon"]
            .as_str()
            .is_some_and(|x| x.eq_ignore_ascii_case(uuid))
}

/// The product/price restriction of a coupon (`metadata.paddle_products`), checked.
pub fn restrict_to(c: &Coupon) -> Result<Option<Vec<String>>, String> {
    let Some(v) = c.metadata.as_map().get(PRODUCTS_KEY) else {
        return Ok(None);
    };
    let ids: Vec<String> = v
        .as_str()
        .unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    if ids.is_empty()
        || ids.iter().any(|i| {
            !(i.starts_with("pro_") || i.starts_with("pri_"))
                || !i[4..].bytes().all(|b| b.is_ascii_alphanumeric())
        })
    {
        return Err(refuse(
            &format!("metadata.{PRODUCTS_KEY}"),
            v,
            "a comma-separated list of Paddle product (pro_…) or price (pri_…) ids",
        ));
    }
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    Ok(Some(unique))
}

/// Checks what every discount of the coupon carries; returns (type, amount, currency, recur, max).
#[allow(clippy::type_complexity)]
pub fn coupon_terms(
    currency: &str,
    interval: BillingInterval,
    c: &Coupon,
) -> Result<(String, String, Option<String>, bool, Option<u32>), String> {
    let t = &c.terms;
    if c.name.is_empty() || c.name.chars().count() > DESCRIPTION_MAX {
        return Err(refuse(
            "name",
            format!("of {} characters", c.name.chars().count()),
            "a discount description holds 1 to 500",
        ));
    }
    let (kind, amount, cur) = match t.discount.kind() {
        DiscountKind::Percent => (
            "percentage",
            t.discount.amount().normalize().to_string(),
            None,
        ),
        DiscountKind::Static => {
            let cur = currency.to_ascii_uppercase();
            if !CURRENCIES.contains(&cur.as_str()) {
                return Err(refuse(
                    "currency",
                    &cur,
                    "not one of the currencies Paddle Billing supports",
                ));
            }
            let exp = currency_exponent(&cur).unwrap_or(2);
            let minor = t.discount.minor_units(exp).ok_or_else(|| {
                refuse(
                    "coupon_discount_amount",
                    t.discount.amount(),
                    &format!("{cur} has {exp} decimal places"),
                )
            })?;
            ("flat", minor.to_string(), Some(cur))
        }
    };
    let (recur, max) = match t.duration {
        Duration::Once => (false, None),
        Duration::Lifetime => (true, None),
        d => {
            let n = terms::cycles(PROVIDER, d, interval)?;
            if n > MAX_INTERVALS {
                return Err(refuse(
                    "coupon_duration_value",
                    format!("{n} billing periods"),
                    "a discount recurs for at most 999",
                ));
            }
            (true, Some(n))
        }
    };
    Ok((kind.into(), amount, cur, recur, max))
}

/// The Paddle Billing discount for one promotion code of a coupon.
pub fn map_code(
    program: &str,
    currency: &str,
    interval: BillingInterval,
    c: &Coupon,
    code: &PromotionCode,
) -> Result<DiscountSpec, String> {
    let field = |f: &str| format!("promotion code '{}' {f}", code.code);
    let (kind, amount, currency_code, recur, maximum_recurring_intervals) =
        coupon_terms(currency, interval, c)?;
    if code.code.is_empty()
        || code.code.len() > CODE_MAX
        || !code.code.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return Err(refuse(
            "code",
            format!("'{}'", code.code),
            "letters and digits only, at most 32",
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
    if r.minimum_order.is_some() {
        return Err(refuse(
            &field("minimum_order_value"),
            r.minimum_order.unwrap_or_default(),
            "Paddle Billing discounts have no minimum order",
        ));
    }
    if r.customers.is_some() {
        return Err(refuse(
            &field("coupon_specific_customers"),
            "(restricted)",
            "Paddle Billing discounts cannot be restricted to customers",
        ));
    }
    if r.subscribers.is_some() {
        return Err(refuse(
            &field("limit_to_specific_subscriber"),
            "true",
            "Paddle Billing discounts cannot be restricted to subscribers",
        ));
    }
    let mut custom = Map::new();
    custom.insert(MARKER.into(), json!("1"));
    custom.insert("program".into(), json!(program));
    custom.insert("coupon".into(), json!(c.uuid_code));
    custom.insert("code".into(), json!(code.code));
    if let Some(p) = terms::partner_ids(code) {
        custom.insert("partners".into(), json!(p));
    }
    let md = terms::merged_metadata(c, code);
    if !md.is_empty() {
        custom.insert("metadata".into(), json!(md));
    }
    Ok(DiscountSpec {
        description: c.name.clone(),
        code: code.code.clone(),
        kind,
        amount,
        currency_code,
        recur,
        maximum_recurring_intervals,
        usage_limit: terms::max_redemptions(c, code),
        restrict_to: restrict_to(c)?,
        expires_at: terms::expiry(c, code).map(iso),
        custom_data: custom,
        active: c.terms.active,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Metadata;
    use crate::providers::terms::fixtures::{code, coupon};

    const M: BillingInterval = BillingInterval::Month;

    #[test]
    fn fields_map_per_the_table() {
        let mut c = coupon(DiscountKind::Percent, "12.5", Duration::Months(3));
        c.terms.redeem_by = Some("2026-07-01T12:00:00Z".parse().unwrap());
        c.terms.max_redemptions = Some(9);
        let s = map_code("acme", "USD", M, &c, &code("SUMMER1")).unwrap();
        let b = s.create_body("dsg_1");
        assert_eq!(
            (
                &b["type"],
                &b["amount"],
                &b["recur"],
                &b["maximum_recurring_intervals"]
            ),
            (
                &json!("percentage"),
                &json!("12.5"),
                &json!(true),
                &json!(3)
            )
        );
        assert_eq!(b["expires_at"], "2026-07-01T12:00:00Z");
        assert_eq!(b["usage_limit"], 9);
        assert_eq!(b["code"], "SUMMER1");
        assert!(b.get("status").is_none(), "not settable on create");
        assert_eq!(b["custom_data"]["coupon"], "SUMMER");
        let s = map_code(
            "acme",
            "JPY",
            M,
            &coupon(DiscountKind::Static, "500", Duration::Lifetime),
            &code("YEN500"),
        )
        .unwrap();
        assert_eq!(
            (
                s.kind.as_str(),
                s.amount.as_str(),
                s.currency_code.as_deref(),
                s.recur,
                s.maximum_recurring_intervals
            ),
            ("flat", "500", Some("JPY"), true, None)
        );
        let s = map_code(
            "acme",
            "usd",
            M,
            &coupon(DiscountKind::Static, "19.99", Duration::Once),
            &code("X1"),
        )
        .unwrap();
        assert_eq!((s.amount.as_str(), s.recur), ("1999", false));
    }

    #[test]
    fn refusals_name_field_value_and_limit() {
        let c = coupon(DiscountKind::Percent, "10", Duration::Once);
        let e = map_code("acme", "USD", M, &c, &code("SAVE-10")).unwrap_err();
        assert_eq!(
            e,
            "Paddle Billing cannot hold code 'SAVE-10': letters and digits only, at most 32"
        );
        assert!(map_code("acme", "USD", M, &c, &code(&"A".repeat(33))).is_err());
        let e = map_code(
            "acme",
            "USD",
            M,
            &coupon(DiscountKind::Percent, "10", Duration::Days(2)),
            &code("A1"),
        )
        .unwrap_err();
        assert!(e.contains("'days' (2)"), "{e}");
        let e = map_code(
            "acme",
            "USD",
            M,
            &coupon(DiscountKind::Percent, "10", Duration::Years(100)),
            &code("A1"),
        )
        .unwrap_err();
        assert!(
            e.contains("1200 billing periods") && e.contains("999"),
            "{e}"
        );
        let e = map_code(
            "acme",
            "XOF",
            M,
            &coupon(DiscountKind::Static, "10", Duration::Once),
            &code("A1"),
        )
        .unwrap_err();
        assert!(e.contains("currency XOF"), "{e}");
        let mut p = code("A1");
        p.restrictions.first_time_order = true;
        assert!(
            map_code("acme", "USD", M, &c, &p)
                .unwrap_err()
                .contains("first_time_order")
        );
        let mut p = code("A1");
        p.restrictions.minimum_order = Some(5);
        assert!(
            map_code("acme", "USD", M, &c, &p)
                .unwrap_err()
                .contains("minimum_order_value")
        );
        let mut bad = c.clone();
        bad.metadata = Metadata::from_stored(
            [("paddle_products".to_owned(), json!("123"))]
                .into_iter()
                .collect(),
        );
        assert!(
            map_code("acme", "USD", M, &bad, &code("A1"))
                .unwrap_err()
                .contains("pro_")
        );
    }

    #[test]
    fn remote_discounts_read_back_like_for_like() {
        let mut c = coupon(DiscountKind::Static, "10", Duration::Months(2));
        c.metadata = Metadata::from_stored(
            [("paddle_products".to_owned(), json!("pro_b, pro_a"))]
                .into_iter()
                .collect(),
        );
        let want = map_code("acme", "USD", M, &c, &code("TEN")).unwrap();
        let mut remote = want.create_body("dsg_1");
        remote["status"] = json!("active");
        remote["amount"] = json!("1000");
        remote["code"] = json!("ten");
        assert_eq!(want.drift(&DiscountSpec::from_remote(&remote)), vec![]);
        assert!(owned_by(&remote, "acme", "summer"));
        remote["amount"] = json!("1200");
        remote["status"] = json!("archived");
        let d: Vec<String> = want
            .drift(&DiscountSpec::from_remote(&remote))
            .into_iter()
            .map(|x| x.0)
            .collect();
        assert_eq!(d, vec!["amount", "active"]);
    }
}
