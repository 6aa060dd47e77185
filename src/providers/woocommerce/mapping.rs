//! The pure mapping of a promotion code (with its coupon's terms) to a WooCommerce coupon
//! (providers/woocommerce.md §4, §6). Everything WooCommerce cannot hold is a named refusal.

use crate::config::BillingInterval;
use crate::domain::{Coupon, DiscountKind, Duration, PromotionCode};
use crate::providers::terms::{self, refuse as refuse_for};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;

const PROVIDER: &str = "WooCommerce";
/// Our marker in `meta_data`, plus the owner of the object.
pub const MARKER: &str = "_coupond";
pub const MARKER_PROGRAM: &str = "_coupond_program";
pub const MARKER_COUPON: &str = "_coupond_coupon";
pub const MARKER_CODE: &str = "_coupond_code";
pub const MARKER_PARTNERS: &str = "_coupond_partners";
/// The coupon's and the code's metadata, as one JSON object.
pub const META_METADATA: &str = "_coupond_metadata";
/// WooCommerce Subscriptions: how many payments a recurring coupon applies to (blank = all).
pub const META_PAYMENTS: &str = "_wcs_number_payments";

fn refuse(field: &str, value: impl std::fmt::Display, limit: &str) -> String {
    refuse_for(PROVIDER, field, value, limit)
}

/// What a program's shop offers.
#[derive(Debug, Clone, Copy)]
pub struct Shop {
    /// WooCommerce Subscriptions is installed.
    pub subscriptions: bool,
    pub billing_interval: BillingInterval,
    /// The site's UTC offset in hours (`gmt_offset`), for `date_expires`.
    pub gmt_offset: f64,
}

/// A WooCommerce coupon as we want it. Serialises to the request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WooSpec {
    pub code: String,
    pub description: String,
    pub discount_type: String,
    /// Decimal string (WooCommerce refuses a JSON number).
    pub amount: String,
    /// Site-local `YYYY-MM-DDTHH:MM:SS`, `""` for none (`null` would be ignored).
    pub date_expires: String,
    /// `0` is unlimited (`null` would be ignored on update).
    pub usage_limit: i64,
    /// `"0"` is no minimum.
    pub minimum_amount: String,
    pub email_restrictions: Vec<String>,
    /// Every meta key we own, with its value.
    pub meta: BTreeMap<String, String>,
}

impl WooSpec {
    /// The request body: every field, and `meta_data` entries by key. Keys we set before and
    /// no longer want are sent as `null` (which deletes them).
    pub fn body(&self, previous: Option<&WooSpec>) -> Value {
        let mut meta: Vec<Value> = self
            .meta
            .iter()
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect();
        if let Some(p) = previous {
            for k in p.meta.keys().filter(|k| !self.meta.contains_key(*k)) {
                meta.push(json!({"key": k, "value": null}));
            }
        }
        json!({
            "code": self.code,
            "description": self.description,
            "discount_type": self.discount_type,
            "amount": self.amount,
            "date_expires": self.date_expires,
            "usage_limit": self.usage_limit,
            "minimum_amount": self.minimum_amount,
            "email_restrictions": self.email_restrictions,
            "meta_data": meta,
        })
    }

    /// Our view of a coupon as WooCommerce returns it (amounts normalised, meta we own only),
    /// to compare with what we want.
    pub fn from_remote(v: &Value) -> WooSpec {
        let meta = v["meta_data"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| {
                let k = m["key"].as_str()?;
                let owned = k.starts_with("_coupond") || k == META_PAYMENTS;
                let val = match &m["value"] {
                    Value::String(s) => s.clone(),
                    Value::Null => return None,
                    other => other.to_string(),
                };
                owned.then(|| (k.to_owned(), val))
            })
            .collect();
        WooSpec {
            code: v["code"].as_str().unwrap_or_default().to_owned(),
            description: v["description"].as_str().unwrap_or_default().to_owned(),
            discount_type: v["discount_type"].as_str().unwrap_or_default().to_owned(),
            amount: normalise_amount(v["amount"].as_str().unwrap_or("0")),
            date_expires: v["date_expires"].as_str().unwrap_or_default().to_owned(),
            usage_limit: v["usage_limit"].as_i64().unwrap_or(0),
            minimum_amount: normalise_amount(v["minimum_amount"].as_str().unwrap_or("0")),
            email_restrictions: v["email_restrictions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| e.as_str().map(str::to_owned))
                .collect(),
            meta,
        }
    }

    /// The fields where `theirs` differs from this (codes compare ignoring case, amounts as numbers).
    pub fn drift(&self, theirs: &WooSpec) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        let mut cmp = |f: &str, a: &str, b: &str| {
            if a != b {
                out.push((f.to_owned(), a.to_owned(), b.to_owned()));
            }
        };
        cmp(
            "code",
            &self.code.to_lowercase(),
            &theirs.code.to_lowercase(),
        );
        cmp("description", &self.description, &theirs.description);
        cmp("discount_type", &self.discount_type, &theirs.discount_type);
        cmp("amount", &self.amount, &theirs.amount);
        cmp("date_expires", &self.date_expires, &theirs.date_expires);
        cmp(
            "usage_limit",
            &self.usage_limit.to_string(),
            &theirs.usage_limit.to_string(),
        );
        cmp(
            "minimum_amount",
            &self.minimum_amount,
            &theirs.minimum_amount,
        );
        let mut a = self.email_restrictions.clone();
        let mut b = theirs.email_restrictions.clone();
        a.iter_mut().for_each(|e| *e = e.to_lowercase());
        b.iter_mut().for_each(|e| *e = e.to_lowercase());
        a.sort();
        b.sort();
        cmp("email_restrictions", &a.join(","), &b.join(","));
        let keys: std::collections::BTreeSet<&String> =
            self.meta.keys().chain(theirs.meta.keys()).collect();
        for k in keys {
            cmp(
                &format!("meta_data.{k}"),
                self.meta.get(k).map(String::as_str).unwrap_or(""),
                theirs.meta.get(k).map(String::as_str).unwrap_or(""),
            );
        }
        out
    }
}

/// `"10.00"` and `"10"` are the same amount: the shortest decimal form.
pub fn normalise_amount(s: &str) -> String {
    s.trim()
        .parse::<Decimal>()
        .map(|d| d.normalize().to_string())
        .unwrap_or_else(|_| s.to_owned())
}

/// UTC → the site's local wall-clock time, as WooCommerce reads `date_expires`.
pub fn site_local(t: DateTime<Utc>, gmt_offset: f64) -> String {
    let secs = (gmt_offset * 3600.0).round() as i64;
    (t + chrono::Duration::seconds(secs))
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string()
}

/// Is this WooCommerce coupon ours, for this program (whichever coupon)?
pub fn owned_by_program(v: &Value, program: &str) -> bool {
    let m = WooSpec::from_remote(v).meta;
    m.get(MARKER).map(String::as_str) == Some("1")
        && m.get(MARKER_PROGRAM).map(String::as_str) == Some(program)
}

/// Is this WooCommerce coupon ours, for this program and coupon?
pub fn owned_by(v: &Value, program: &str, uuid: &str) -> bool {
    let m = WooSpec::from_remote(v).meta;
    m.get(MARKER).map(String::as_str) == Some("1")
        && m.get(MARKER_PROGRAM).map(String::as_str) == Some(program)
        && m.get(MARKER_COUPON)
            .is_some_and(|c| c.eq_ignore_ascii_case(uuid))
}

/// What every WooCommerce coupon of the coupon carries: its `discount_type`, and the number of
/// payments a recurring type applies to (`""` = all) when WooCommerce Subscriptions is used.
pub fn check_coupon(shop: &Shop, c: &Coupon) -> Result<(&'static str, Option<String>), String> {
    let t = &c.terms;
    let amount = t.discount.amount();
    let once = t.duration == Duration::Once;
    Ok(match (t.discount.kind(), once) {
        (DiscountKind::Percent, _) if amount > Decimal::ONE_HUNDRED => {
            // WooCommerce would store it as 0 without a word
            return Err(refuse(
                "coupon_discount_amount",
                format!("{amount}%"),
                "percentages are at most 100",
            ));
        }
        (DiscountKind::Percent, true) => ("percent", None),
        (DiscountKind::Static, true) => ("fixed_cart", None),
        (kind, false) => {
            if !shop.subscriptions {
                return Err(refuse(
                    "coupon_duration_type",
                    format!("'{}'", t.duration.kind().as_str()),
                    "a WooCommerce coupon applies to one order; durations over renewals need WooCommerce Subscriptions (woocommerce.subscriptions = true)",
                ));
            }
            let n = terms::cycles(PROVIDER, t.duration, shop.billing_interval)?;
            let payments = if n == 0 { String::new() } else { n.to_string() };
            match kind {
                DiscountKind::Percent => ("recurring_percent", Some(payments)),
                DiscountKind::Static => ("recurring_fee", Some(payments)),
            }
        }
    })
}

/// The WooCommerce coupon for one promotion code of a coupon.
pub fn map_code(
    program: &str,
    shop: &Shop,
    c: &Coupon,
    code: &PromotionCode,
) -> Result<WooSpec, String> {
    let field = |f: &str| format!("promotion code '{}' {f}", code.code);
    let t = &c.terms;
    let r = &code.restrictions;
    let amount = t.discount.amount();
    let (discount_type, payments) = check_coupon(shop, c)?;
    let mut meta = BTreeMap::new();
    if let Some(p) = payments {
        meta.insert(META_PAYMENTS.to_owned(), p);
    }
    if r.first_time_order {
        return Err(refuse(
            &field("first_time_order"),
            "true",
            "WooCommerce has no first-order rule (a once-per-customer limit is a different rule)",
        ));
    }
    if r.subscribers.is_some() {
        return Err(refuse(
            &field("limit_to_specific_subscriber"),
            "true",
            "WooCommerce cannot restrict a coupon to subscribers",
        ));
    }
    let email_restrictions = match &r.customers {
        None => Vec::new(),
        Some(list) => list
            .iter()
            .map(|p| match p.id.as_str() {
                Some(s) if s.contains('@') => Ok(s.to_owned()),
                _ => Err(refuse(
                    &field("coupon_specific_customers"),
                    &p.id,
                    "WooCommerce restricts a coupon by billing email, and this customer id is not an email address",
                )),
            })
            .collect::<Result<Vec<_>, _>>()?,
    };
    let minimum_amount = match r.minimum_order {
        None => "0".to_owned(),
        Some(v) if v > 0 => v.to_string(),
        Some(_) => "0".to_owned(),
    };
    meta.insert(MARKER.into(), "1".into());
    meta.insert(MARKER_PROGRAM.into(), program.into());
    meta.insert(MARKER_COUPON.into(), c.uuid_code.clone());
    meta.insert(MARKER_CODE.into(), code.code.clone());
    if let Some(p) = terms::partner_ids(code) {
        meta.insert(MARKER_PARTNERS.into(), p);
    }
    let md = terms::merged_metadata(c, code);
    if !md.is_empty() {
        meta.insert(
            META_METADATA.into(),
            serde_json::to_string(&md).unwrap_or_default(),
        );
    }
    Ok(WooSpec {
        // WooCommerce stores codes lowercased; we send them so, to compare like for like
        code: code.code.to_lowercase(),
        description: c.name.clone(),
        discount_type: discount_type.into(),
        amount: amount.normalize().to_string(),
        date_expires: terms::expiry(c, code)
            .map(|t| site_local(t, shop.gmt_offset))
            .unwrap_or_default(),
        usage_limit: terms::max_redemptions(c, code).unwrap_or(0),
        minimum_amount,
        email_restrictions,
        meta,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Party;
    use crate::providers::terms::fixtures::{code, coupon};

    const SHOP: Shop = Shop {
        subscriptions: false,
        billing_interval: BillingInterval::Month,
        gmt_offset: -5.0,
    };

    #[test]
    fn fields_map_per_the_table() {
        let mut c = coupon(DiscountKind::Percent, "12.5", Duration::Once);
        c.terms.max_redemptions = Some(50);
        c.terms.redeem_by = Some("2026-07-01T12:00:00Z".parse().unwrap());
        let mut p = code("Summer-1");
        p.restrictions.max_redemptions = Some(10);
        p.restrictions.minimum_order = Some(40);
        p.restrictions.customers = Some(vec![Party {
            id: "ann@example.com".into(),
            name: None,
        }]);
        let s = map_code("acme", &SHOP, &c, &p).unwrap();
        assert_eq!(s.code, "summer-1");
        assert_eq!(
            (s.discount_type.as_str(), s.amount.as_str()),
            ("percent", "12.5")
        );
        // 12:00 UTC is 07:00 at UTC-5
        assert_eq!(s.date_expires, "2026-07-01T07:00:00");
        assert_eq!(s.usage_limit, 10);
        assert_eq!(s.minimum_amount, "40");
        assert_eq!(s.email_restrictions, vec!["ann@example.com"]);
        assert_eq!(s.meta[MARKER_COUPON], "SUMMER");
        let body = s.body(None);
        assert!(body["amount"].is_string() && body["date_expires"].is_string());
        let s = map_code(
            "acme",
            &SHOP,
            &coupon(DiscountKind::Static, "19.99", Duration::Once),
            &code("X"),
        )
        .unwrap();
        assert_eq!(
            (
                s.discount_type.as_str(),
                s.amount.as_str(),
                s.date_expires.as_str(),
                s.usage_limit
            ),
            ("fixed_cart", "19.99", "", 0)
        );
    }

    #[test]
    fn removed_meta_keys_are_sent_as_null() {
        let c = coupon(DiscountKind::Percent, "10", Duration::Once);
        let mut p = code("A");
        p.restrictions.partners = Some(vec![Party {
            id: 7.into(),
            name: None,
        }]);
        let before = map_code("acme", &SHOP, &c, &p).unwrap();
        let after = map_code("acme", &SHOP, &c, &code("A")).unwrap();
        let body = after.body(Some(&before));
        let removed: Vec<&Value> = body["meta_data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["value"].is_null())
            .collect();
        assert_eq!(removed.len(), 1);
        assert_eq!(removed[0]["key"], MARKER_PARTNERS);
    }

    #[test]
    fn subscriptions_turn_durations_into_payments() {
        let shop = Shop {
            subscriptions: true,
            ..SHOP
        };
        let s = map_code(
            "acme",
            &shop,
            &coupon(DiscountKind::Percent, "10", Duration::Months(3)),
            &code("A"),
        )
        .unwrap();
        assert_eq!(s.discount_type, "recurring_percent");
        assert_eq!(s.meta[META_PAYMENTS], "3");
        let s = map_code(
            "acme",
            &shop,
            &coupon(DiscountKind::Static, "5", Duration::Lifetime),
            &code("A"),
        )
        .unwrap();
        assert_eq!(
            (s.discount_type.as_str(), s.meta[META_PAYMENTS].as_str()),
            ("recurring_fee", "")
        );
    }

    #[test]
    fn refusals_name_field_value_and_limit() {
        let e = map_code(
            "acme",
            &SHOP,
            &coupon(DiscountKind::Percent, "10", Duration::Months(3)),
            &code("A"),
        )
        .unwrap_err();
        assert!(
            e.contains("coupon_duration_type 'months'") && e.contains("Subscriptions"),
            "{e}"
        );
        let shop = Shop {
            subscriptions: true,
            ..SHOP
        };
        let e = map_code(
            "acme",
            &shop,
            &coupon(DiscountKind::Percent, "10", Duration::Days(3)),
            &code("A"),
        )
        .unwrap_err();
        assert!(e.contains("'days' (3)"), "{e}");
        let c = coupon(DiscountKind::Percent, "10", Duration::Once);
        let mut p = code("A");
        p.restrictions.first_time_order = true;
        assert!(
            map_code("acme", &SHOP, &c, &p)
                .unwrap_err()
                .contains("first_time_order")
        );
        let mut p = code("A");
        p.restrictions.customers = Some(vec![Party {
            id: 42.into(),
            name: None,
        }]);
        let e = map_code("acme", &SHOP, &c, &p).unwrap_err();
        assert!(
            e.contains("coupon_specific_customers 42") && e.contains("email"),
            "{e}"
        );
        let mut p = code("A");
        p.restrictions.subscribers = Some(vec![Party {
            id: 1.into(),
            name: None,
        }]);
        assert!(
            map_code("acme", &SHOP, &c, &p)
                .unwrap_err()
                .contains("subscribers")
        );
    }

    #[test]
    fn remote_coupons_read_back_like_for_like() {
        let c = coupon(DiscountKind::Static, "10", Duration::Once);
        let want = map_code("acme", &SHOP, &c, &code("Ten")).unwrap();
        let mut remote = want.body(None);
        remote["amount"] = json!("10.00");
        remote["minimum_amount"] = json!("0.00");
        remote["usage_limit"] = Value::Null;
        remote["meta_data"]
            .as_array_mut()
            .unwrap()
            .push(json!({"id": 3, "key": "other_plugin", "value": "x"}));
        assert!(want.drift(&WooSpec::from_remote(&remote)).is_empty());
        remote["amount"] = json!("12.00");
        let d = want.drift(&WooSpec::from_remote(&remote));
        assert_eq!(d, vec![("amount".into(), "10".into(), "12".into())]);
        assert!(owned_by(&remote, "acme", "summer"));
        assert!(!owned_by(&remote, "other", "SUMMER"));
    }
}
