//! The pure mapping of a promotion code (with its coupon's terms) to a Shopify `DiscountCodeBasic`
//! (providers/shopify.md §4, §7). Everything Shopify cannot hold is a named refusal.

use crate::config::BillingInterval;
use crate::domain::{Coupon, DiscountKind, PromotionCode};
use crate::providers::terms::{self, refuse as refuse_for};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;

const PROVIDER: &str = "Shopify";
/// Every discount we manage carries this tag (searchable: `tag:coupond`) and two owner tags.
pub const TAG: &str = "coupond";
pub const METAFIELD_NAMESPACE: &str = "coupond";
pub const METAFIELD_KEY: &str = "owner";
pub const TITLE_MAX: usize = 255;
pub const CODE_MAX: usize = 255;
pub const TAG_MAX: usize = 255;
const CUSTOMER_GID: &str = "gid://shopify/Customer/";

fn refuse(field: &str, value: impl std::fmt::Display, limit: &str) -> String {
    refuse_for(PROVIDER, field, value, limit)
}

/// The owner tags of a code's discount.
pub fn owner_tags(program: &str, uuid: &str) -> Vec<String> {
    vec![
        TAG.to_owned(),
        format!("{TAG}-program:{program}"),
        format!("{TAG}-coupon:{uuid}"),
    ]
}

/// The value a customer gets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GetsValue {
    /// Hundredths of a percent (Shopify holds a 0–1 float).
    Percent(i64),
    /// A decimal amount in the shop's currency.
    Amount(String),
}

/// A `DiscountCodeBasic` as we want it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShopifySpec {
    pub title: String,
    pub code: String,
    pub starts_at: String,
    pub ends_at: Option<String>,
    pub usage_limit: Option<i64>,
    pub value: GetsValue,
    /// Billing cycles of a subscription it applies to: 0 = every cycle.
    pub recurring_cycle_limit: u32,
    /// Shopify customer gids (empty = every buyer).
    pub customers: Vec<String>,
    /// Minimum subtotal, decimal.
    pub minimum_subtotal: Option<String>,
    pub tags: Vec<String>,
    pub active: bool,
    /// The metafield `coupond.owner` (JSON): owner, partners and metadata.
    pub owner: String,
}

/// A DateTime as Shopify takes it: UTC to the second, `Z`.
fn format_ts(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn money(d: Decimal) -> String {
    d.normalize().to_string()
}

impl ShopifySpec {
    /// `DiscountCodeBasicInput`. `previous` (what we pushed before) turns the customer list into
    /// the add/remove delta Shopify expects, and marks an update (which never resends the code).
    pub fn input(&self, previous: Option<&ShopifySpec>) -> Value {
        let value = match &self.value {
            GetsValue::Percent(h) => json!({"percentage": *h as f64 / 10_000.0}),
            GetsValue::Amount(a) => {
                json!({"discountAmount": {"amount": a, "appliesOnEachItem": false}})
            }
        };
        let context = if self.customers.is_empty() {
            json!({"all": "ALL"})
        } else {
            let before: &[String] = previous.map(|p| p.customers.as_slice()).unwrap_or(&[]);
            let add: Vec<&String> = self
                .customers
                .iter()
                .filter(|c| !before.contains(c))
                .collect();
            let remove: Vec<&String> = before
                .iter()
                .filter(|c| !self.customers.contains(c))
                .collect();
            json!({"customers": {"add": add, "remove": remove}})
        };
        let mut input = json!({
            "title": self.title,
            "startsAt": self.starts_at,
            "endsAt": self.ends_at,
            "usageLimit": self.usage_limit,
            "appliesOncePerCustomer": false,
            "customerGets": {
                "value": value,
                "items": {"all": true},
                "appliesOnOneTimePurchase": true,
                "appliesOnSubscription": true,
            },
            "recurringCycleLimit": self.recurring_cycle_limit,
            "context": context,
            "minimumRequirement": match &self.minimum_subtotal {
                Some(m) => json!({"subtotal": {"greaterThanOrEqualToSubtotal": m}}),
                None => Value::Null,
            },
            "tags": self.tags,
        });
        if previous.is_none() {
            input["code"] = json!(self.code);
        }
        input
    }

    /// Our view of a `DiscountCodeBasic` as Shopify returns it (with the selection of
    /// `documents::BASIC_FIELDS`), to compare with what we want. `owner` is not readable back.
    pub fn from_remote(code: &str, basic: &Value, owner: &str) -> ShopifySpec {
        let v = &basic["customerGets"]["value"];
        let value = match v["__typename"].as_str() {
            Some("DiscountPercentage") => GetsValue::Percent(
                (v["percentage"].as_f64().unwrap_or(0.0) * 10_000.0).round() as i64,
            ),
            _ => GetsValue::Amount(amount(&v["amount"]["amount"])),
        };
        let customers = basic["context"]["customers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["id"].as_str().map(str::to_owned))
            .collect();
        let minimum_subtotal =
            (basic["minimumRequirement"]["__typename"] == "DiscountMinimumSubtotal").then(|| {
                amount(&basic["minimumRequirement"]["greaterThanOrEqualToSubtotal"]["amount"])
            });
        ShopifySpec {
            title: basic["title"].as_str().unwrap_or_default().to_owned(),
            code: code.to_owned(),
            starts_at: timestamp(&basic["startsAt"]).unwrap_or_default(),
            ends_at: timestamp(&basic["endsAt"]),
            usage_limit: basic["usageLimit"].as_i64(),
            value,
            recurring_cycle_limit: basic["recurringCycleLimit"].as_u64().unwrap_or(0) as u32,
            customers,
            minimum_subtotal,
            tags: basic["tags"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect(),
            active: basic["status"] != "EXPIRED",
            owner: owner.to_owned(),
        }
    }

    /// The fields where `theirs` differs (ends_at is ignored while inactive: deactivating sets it).
    pub fn drift(&self, theirs: &ShopifySpec) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        let mut cmp = |f: &str, a: String, b: String| {
            if a != b {
                out.push((f.to_owned(), a, b));
            }
        };
        let opt = |o: &Option<String>| o.clone().unwrap_or_default();
        cmp("title", self.title.clone(), theirs.title.clone());
        cmp("code", self.code.to_lowercase(), theirs.code.to_lowercase());
        cmp("startsAt", self.starts_at.clone(), theirs.starts_at.clone());
        if self.active {
            cmp("endsAt", opt(&self.ends_at), opt(&theirs.ends_at));
        }
        cmp(
            "usageLimit",
            format!("{:?}", self.usage_limit),
            format!("{:?}", theirs.usage_limit),
        );
        cmp(
            "customerGets.value",
            format!("{:?}", self.value),
            format!("{:?}", theirs.value),
        );
        cmp(
            "recurringCycleLimit",
            self.recurring_cycle_limit.to_string(),
            theirs.recurring_cycle_limit.to_string(),
        );
        let mut a = self.customers.clone();
        let mut b = theirs.customers.clone();
        a.sort();
        b.sort();
        cmp("context.customers", a.join(","), b.join(","));
        cmp(
            "minimumRequirement",
            opt(&self.minimum_subtotal),
            opt(&theirs.minimum_subtotal),
        );
        let mut a = self.tags.clone();
        let mut b = theirs.tags.clone();
        a.sort();
        b.sort();
        cmp("tags", a.join(","), b.join(","));
        cmp(
            "status",
            if self.active { "ACTIVE" } else { "EXPIRED" }.into(),
            if theirs.active { "ACTIVE" } else { "EXPIRED" }.into(),
        );
        out
    }
}

fn amount(v: &Value) -> String {
    let s = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    };
    s.parse::<Decimal>().map(money).unwrap_or(s)
}

/// A DateTime as we send it (UTC, seconds, `Z`), whatever form Shopify answers in.
fn timestamp(v: &Value) -> Option<String> {
    let s = v.as_str()?;
    Some(
        DateTime::parse_from_rfc3339(s)
            .map(|t| format_ts(&t.with_timezone(&Utc)))
            .unwrap_or_else(|_| s.to_owned()),
    )
}

/// Does a discount's tag list say it is ours, for this program and coupon?
pub fn owned_by(tags: &[String], program: &str, uuid: &str) -> bool {
    let want = owner_tags(program, uuid);
    want.iter()
        .all(|w| tags.iter().any(|t| t.eq_ignore_ascii_case(w)))
}

/// Checks what every discount of the coupon would carry: its title and its duration.
pub fn check_coupon(interval: BillingInterval, c: &Coupon) -> Result<u32, String> {
    if c.name.chars().count() > TITLE_MAX {
        return Err(refuse(
            "name",
            format!("of {} characters", c.name.chars().count()),
            "a discount title holds at most 255",
        ));
    }
    terms::cycles(PROVIDER, c.terms.duration, interval)
}

/// The Shopify discount for one promotion code of a coupon.
pub fn map_code(
    program: &str,
    interval: BillingInterval,
    c: &Coupon,
    code: &PromotionCode,
) -> Result<ShopifySpec, String> {
    let field = |f: &str| format!("promotion code '{}' {f}", code.code);
    let t = &c.terms;
    let r = &code.restrictions;
    let recurring_cycle_limit = check_coupon(interval, c)?;
    if code.code.chars().count() > CODE_MAX {
        return Err(refuse(
            &field("code"),
            format!("of {} characters", code.code.chars().count()),
            "at most 255",
        ));
    }
    if r.first_time_order {
        return Err(refuse(
            &field("first_time_order"),
            "true",
            "Shopify has no first-order rule (a customer segment or once-per-customer is a different rule)",
        ));
    }
    if r.subscribers.is_some() {
        return Err(refuse(
            &field("limit_to_specific_subscriber"),
            "true",
            "Shopify cannot restrict a discount to subscribers",
        ));
    }
    let customers = match &r.customers {
        None => Vec::new(),
        Some(list) => list
            .iter()
            .map(|p| match p.id.as_str() {
                Some(s)
                    if s.strip_prefix(CUSTOMER_GID).is_some_and(|n| {
                        !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
                    }) =>
                {
                    Ok(s.to_owned())
                }
                _ => Err(refuse(
                    &field("coupon_specific_customers"),
                    &p.id,
                    "Shopify restricts a discount to Shopify customers (gid://shopify/Customer/…)",
                )),
            })
            .collect::<Result<Vec<_>, _>>()?,
    };
    let value = match t.discount.kind() {
        DiscountKind::Percent => GetsValue::Percent(t.discount.hundredths()),
        DiscountKind::Static => GetsValue::Amount(money(t.discount.amount())),
    };
    let starts = c.created_at;
    let ends = terms::expiry(c, code).map(|e| e.max(starts));
    let mut tags = owner_tags(program, &c.uuid_code);
    if let Some(t) = tags.iter().find(|t| t.chars().count() > TAG_MAX) {
        return Err(refuse(
            "uuid_code",
            format!("(tag of {} characters)", t.chars().count()),
            "Shopify tags hold at most 255 characters",
        ));
    }
    tags.sort();
    let mut owner = BTreeMap::new();
    owner.insert("program", json!(program));
    owner.insert("coupon", json!(c.uuid_code));
    owner.insert("code", json!(code.code));
    if let Some(p) = terms::partner_ids(code) {
        owner.insert("partners", json!(p));
    }
    owner.insert("metadata", json!(terms::merged_metadata(c, code)));
    Ok(ShopifySpec {
        title: c.name.clone(),
        code: code.code.clone(),
        starts_at: format_ts(&starts),
        ends_at: ends.map(|e| format_ts(&e)),
        usage_limit: terms::max_redemptions(c, code),
        value,
        recurring_cycle_limit,
        customers,
        minimum_subtotal: r.minimum_order.filter(|m| *m > 0).map(|m| m.to_string()),
        tags,
        active: t.active,
        owner: serde_json::to_string(&owner).unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Duration, Party};
    use crate::providers::terms::fixtures::{code, coupon};

    const M: BillingInterval = BillingInterval::Month;

    #[test]
    fn fields_map_per_the_table() {
        let mut c = coupon(DiscountKind::Percent, "12.5", Duration::Months(3));
        c.terms.max_redemptions = Some(7);
        c.terms.redeem_by = Some("2026-07-01T12:00:00Z".parse().unwrap());
        let mut p = code("SUMMER-1");
        p.restrictions.minimum_order = Some(50);
        p.restrictions.customers = Some(vec![Party {
            id: "gid://shopify/Customer/42".into(),
            name: None,
        }]);
        let s = map_code("acme", M, &c, &p).unwrap();
        let input = s.input(None);
        assert_eq!(input["customerGets"]["value"]["percentage"], 0.125);
        assert_eq!(input["recurringCycleLimit"], 3);
        assert_eq!(input["usageLimit"], 7);
        assert_eq!(input["endsAt"], "2026-07-01T12:00:00Z");
        assert_eq!(input["startsAt"], "2026-01-01T00:00:00Z");
        assert_eq!(
            input["minimumRequirement"]["subtotal"]["greaterThanOrEqualToSubtotal"],
            "50"
        );
        assert_eq!(
            input["context"],
            json!({"customers": {"add": ["gid://shopify/Customer/42"], "remove": []}})
        );
        assert_eq!(input["code"], "SUMMER-1");
        assert!(
            input["tags"]
                .as_array()
                .unwrap()
                .contains(&json!("coupond-coupon:SUMMER"))
        );
        let s = map_code(
            "acme",
            M,
            &coupon(DiscountKind::Static, "19.99", Duration::Lifetime),
            &code("X"),
        )
        .unwrap();
        let input = s.input(None);
        assert_eq!(
            input["customerGets"]["value"],
            json!({"discountAmount": {"amount": "19.99", "appliesOnEachItem": false}})
        );
        assert_eq!(input["recurringCycleLimit"], 0);
        assert_eq!(input["context"], json!({"all": "ALL"}));
        assert!(input["endsAt"].is_null() && input["minimumRequirement"].is_null());
    }

    #[test]
    fn customer_changes_are_deltas_and_updates_omit_the_code() {
        let c = coupon(DiscountKind::Percent, "10", Duration::Once);
        let with = |ids: &[&str]| {
            let mut p = code("A");
            p.restrictions.customers = Some(
                ids.iter()
                    .map(|i| Party {
                        id: format!("gid://shopify/Customer/{i}").into(),
                        name: None,
                    })
                    .collect(),
            );
            map_code("acme", M, &c, &p).unwrap()
        };
        let before = with(&["1", "2"]);
        let after = with(&["2", "3"]);
        let input = after.input(Some(&before));
        assert_eq!(
            input["context"]["customers"],
            json!({"add": ["gid://shopify/Customer/3"], "remove": ["gid://shopify/Customer/1"]})
        );
        assert!(input.get("code").is_none());
    }

    #[test]
    fn refusals_name_field_value_and_limit() {
        let e = map_code(
            "acme",
            M,
            &coupon(DiscountKind::Percent, "10", Duration::Hours(4)),
            &code("A"),
        )
        .unwrap_err();
        assert!(
            e.starts_with("Shopify cannot hold coupon_duration_type 'hours' (4)"),
            "{e}"
        );
        let e = map_code(
            "acme",
            BillingInterval::Year,
            &coupon(DiscountKind::Percent, "10", Duration::Months(5)),
            &code("A"),
        )
        .unwrap_err();
        assert!(e.contains("5 months"), "{e}");
        let c = coupon(DiscountKind::Percent, "10", Duration::Once);
        let mut p = code("A");
        p.restrictions.first_time_order = true;
        assert!(
            map_code("acme", M, &c, &p)
                .unwrap_err()
                .contains("first_time_order")
        );
        let mut p = code("A");
        p.restrictions.customers = Some(vec![Party {
            id: "ann@example.com".into(),
            name: None,
        }]);
        let e = map_code("acme", M, &c, &p).unwrap_err();
        assert!(
            e.contains("ann@example.com") && e.contains("gid://shopify/Customer/"),
            "{e}"
        );
        let mut p = code("A");
        p.restrictions.subscribers = Some(vec![Party {
            id: 1.into(),
            name: None,
        }]);
        assert!(
            map_code("acme", M, &c, &p)
                .unwrap_err()
                .contains("subscribers")
        );
        let mut long = c.clone();
        long.name = "n".repeat(256);
        assert!(
            map_code("acme", M, &long, &code("A"))
                .unwrap_err()
                .contains("at most 255")
        );
    }

    #[test]
    fn remote_discounts_read_back_like_for_like() {
        let mut c = coupon(DiscountKind::Static, "10", Duration::Once);
        c.terms.redeem_by = Some("2026-07-01T12:00:00Z".parse().unwrap());
        let want = map_code("acme", M, &c, &code("TEN")).unwrap();
        let remote = json!({
            "title": "Summer", "status": "ACTIVE",
            "startsAt": "2026-01-01T00:00:00+00:00", "endsAt": "2026-07-01T12:00:00Z",
            "usageLimit": null, "recurringCycleLimit": 1, "tags": want.tags,
            "customerGets": {"value": {"__typename": "DiscountAmount", "amount": {"amount": "10.0"}}},
            "minimumRequirement": null,
            "context": {"__typename": "DiscountBuyerSelectionAll"},
        });
        let theirs = ShopifySpec::from_remote("ten", &remote, &want.owner);
        assert_eq!(want.drift(&theirs), vec![]);
        assert!(owned_by(&theirs.tags, "acme", "summer"));
        assert!(!owned_by(&theirs.tags, "other", "SUMMER"));
        let mut edited = remote.clone();
        edited["customerGets"]["value"]["amount"]["amount"] = json!("12.5");
        let d = want.drift(&ShopifySpec::from_remote("ten", &edited, &want.owner));
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].0, "customerGets.value");
    }
}
