//! Pure helpers every provider mapping shares: the effective limits of a code (its own or its
//! coupon's, whichever is tighter), durations in billing cycles, and refusal messages.

use crate::config::BillingInterval;
use crate::domain::{Coupon, Duration, PromotionCode};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// `"{Provider} cannot hold {field} {value}: {limit}"`: names the field, the value and the limit.
pub fn refuse(provider: &str, field: &str, value: impl std::fmt::Display, limit: &str) -> String {
    format!("{provider} cannot hold {field} {value}: {limit}")
}

/// The earlier of the code's expiry and the coupon's `redeem_by`.
pub fn expiry(c: &Coupon, code: &PromotionCode) -> Option<DateTime<Utc>> {
    match (code.restrictions.expires_at, c.terms.redeem_by) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The smaller of the code's and the coupon's redemption limits.
pub fn max_redemptions(c: &Coupon, code: &PromotionCode) -> Option<i64> {
    match (code.restrictions.max_redemptions, c.terms.max_redemptions) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The coupon's metadata overlaid with the code's, as strings (what a provider stores).
pub fn merged_metadata(c: &Coupon, code: &PromotionCode) -> BTreeMap<String, serde_json::Value> {
    let mut m: BTreeMap<String, serde_json::Value> = c
        .metadata
        .as_map()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (k, v) in code.metadata.as_map() {
        m.insert(k.clone(), v.clone());
    }
    m
}

/// The partner ids a code is restricted to, as text.
pub fn partner_ids(code: &PromotionCode) -> Option<String> {
    code.restrictions.partners.as_ref().map(|p| {
        p.iter()
            .map(|x| {
                x.id.as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| x.id.to_string())
            })
            .collect::<Vec<_>>()
            .join(",")
    })
}

/// How many billing cycles a duration lasts: `Some(0)` = every cycle, `Some(n)` = n cycles,
/// `Err` when it is not a whole number of cycles (hours, days, months on yearly billing).
pub fn cycles(provider: &str, d: Duration, interval: BillingInterval) -> Result<u32, String> {
    let per_year = match interval {
        BillingInterval::Month => 12,
        BillingInterval::Year => 1,
    };
    match d {
        Duration::Once => Ok(1),
        Duration::Lifetime => Ok(0),
        Duration::Years(n) => n
            .checked_mul(per_year)
            .ok_or_else(|| refuse(provider, "coupon_duration_value", n, "too many years")),
        Duration::Months(n) => match interval {
            BillingInterval::Month => Ok(n),
            BillingInterval::Year if n % 12 == 0 => Ok(n / 12),
            BillingInterval::Year => Err(refuse(
                provider,
                "coupon_duration_value",
                format!("{n} months"),
                "subscriptions bill yearly (billing_interval = \"year\"), so a discount lasts whole years",
            )),
        },
        Duration::Hours(n) | Duration::Days(n) => Err(refuse(
            provider,
            "coupon_duration_type",
            format!("'{}' ({n})", d.kind().as_str()),
            "a discount lasts a number of orders or billing cycles, not a span of time per customer",
        )),
    }
}

/// Coupons and codes for the mapping tests of every provider.
#[cfg(test)]
pub(crate) mod fixtures {
    use crate::domain::{
        CodeRestrictions, Coupon, CouponTerms, Discount, DiscountKind, Duration, Metadata,
        PromotionCode,
    };
    use chrono::{DateTime, Utc};

    pub fn now() -> DateTime<Utc> {
        "2026-01-01T00:00:00Z".parse().unwrap()
    }

    /// Coupon `SUMMER` ("Summer"), active, created at [`now`].
    pub fn coupon(kind: DiscountKind, amount: &str, duration: Duration) -> Coupon {
        Coupon {
            uuid_code: "SUMMER".into(),
            name: "Summer".into(),
            terms: CouponTerms {
                active: true,
                discount: Discount::new(kind, amount.parse().unwrap()).unwrap(),
                duration,
                redeem_by: None,
                max_redemptions: None,
            },
            metadata: Metadata::default(),
            times_redeemed: 0,
            sync_provider: None,
            revision: 1,
            created_at: now(),
            updated_at: now(),
        }
    }

    /// A code without restrictions.
    pub fn code(s: &str) -> PromotionCode {
        PromotionCode {
            code: s.into(),
            restrictions: CodeRestrictions::default(),
            metadata: Metadata::default(),
            times_redeemed: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_become_whole_cycles_or_a_refusal() {
        let m = BillingInterval::Month;
        let y = BillingInterval::Year;
        assert_eq!(cycles("X", Duration::Once, m), Ok(1));
        assert_eq!(cycles("X", Duration::Lifetime, y), Ok(0));
        assert_eq!(cycles("X", Duration::Months(3), m), Ok(3));
        assert_eq!(cycles("X", Duration::Years(2), m), Ok(24));
        assert_eq!(cycles("X", Duration::Years(2), y), Ok(2));
        assert_eq!(cycles("X", Duration::Months(24), y), Ok(2));
        let e = cycles("X", Duration::Months(5), y).unwrap_err();
        assert!(e.contains("5 months") && e.contains("yearly"), "{e}");
        let e = cycles("X", Duration::Days(7), m).unwrap_err();
        assert!(
            e.starts_with("X cannot hold coupon_duration_type 'days' (7)"),
            "{e}"
        );
    }
}
