//! Stored coupon and promotion-code state, and the pure decisions a PUT makes on it
//! (redeem no-ops and limits B14–B19, sync assignment B23, provider relevance B20/B25/B26).

use super::coupon::{CouponPatch, CouponTerms};
use super::errors::FieldErrors;
use super::metadata::Metadata;
use super::promotion_code::{CodeRestrictions, PromotionCodePatch};
use super::provider::ProviderKind;
use chrono::{DateTime, Utc};

pub const PROVIDER_ALREADY_SET: &str =
    "sync.provider is already set on this coupon and cannot be changed.";

/// A coupon as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Coupon {
    pub uuid_code: String,
    pub name: String,
    pub terms: CouponTerms,
    pub metadata: Metadata,
    pub times_redeemed: i64,
    pub sync_provider: Option<ProviderKind>,
    /// Bumped on every change a provider should hold.
    pub revision: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A promotion code as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct PromotionCode {
    pub code: String,
    pub restrictions: CodeRestrictions,
    pub metadata: Metadata,
    pub times_redeemed: i64,
}

/// What the store knows about a redeem's `transaction_key` (B14, B15).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyCheck {
    /// An undeleted transaction of the program has this key.
    pub known: bool,
    /// This target's log already holds the key.
    pub already_logged: bool,
}

/// The outcome of applying a PUT to stored state.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision<T> {
    /// Nothing is written; the answer shows the current state (B16, B26).
    NoOp,
    Apply(T),
}

/// The writes of a coupon PUT.
#[derive(Debug, Clone, PartialEq)]
pub struct CouponChange {
    pub name: String,
    pub terms: CouponTerms,
    pub metadata: Metadata,
    /// `Some(key)` records one redemption.
    pub redemption: Option<Option<String>>,
    /// A provider newly assigned by this request.
    pub assigned: Option<ProviderKind>,
    /// The provider must be told (revision bump + outbox mark).
    pub provider_relevant: bool,
}

/// Shared redeem gate: unknown or repeated key ⇒ no-op; else the refusals of B18.
fn redeem_gate(key: &Option<String>, check: Option<KeyCheck>) -> bool {
    match (key, check) {
        (Some(_), Some(c)) => c.known && !c.already_logged,
        (Some(_), None) => false,
        (None, _) => true,
    }
}

fn refuse(msg: &str) -> FieldErrors {
    FieldErrors::single("redeem", msg)
}

impl CouponPatch {
    /// Decides what this PUT does to `current`. `check` answers for `redeem.transaction_key`.
    pub fn plan(
        &self,
        current: &Coupon,
        check: Option<KeyCheck>,
        now: DateTime<Utc>,
    ) -> Result<Decision<CouponChange>, FieldErrors> {
        let terms = self.apply_terms(&current.terms, now)?;
        if let (Some(want), Some(have)) = (self.sync, current.sync_provider)
            && want != have
        {
            return Err(FieldErrors::single("sync.provider", PROVIDER_ALREADY_SET));
        }
        let mut redemption = None;
        if self.redeem.requested {
            if !redeem_gate(&self.redeem.transaction_key, check) {
                return Ok(Decision::NoOp);
            }
            if !current.terms.active {
                return Err(refuse("The coupon is not active."));
            }
            if current.terms.redeem_by.is_some_and(|t| now > t) {
                return Err(refuse("The coupon has expired."));
            }
            if current
                .terms
                .max_redemptions
                .is_some_and(|m| current.times_redeemed >= m)
            {
                return Err(refuse("The coupon has reached its redemption limit."));
            }
            redemption = Some(self.redeem.transaction_key.clone());
        }
        let name = self.name.clone().unwrap_or_else(|| current.name.clone());
        let metadata = match &self.metadata {
            Some(p) => current.metadata.merged(p, "metadata")?,
            None => current.metadata.clone(),
        };
        let assigned = self.sync.filter(|_| current.sync_provider.is_none());
        let content_changed =
            name != current.name || terms != current.terms || metadata != current.metadata;
        if !content_changed && redemption.is_none() && assigned.is_none() {
            return Ok(Decision::NoOp);
        }
        let has_provider = current.sync_provider.is_some() || assigned.is_some();
        Ok(Decision::Apply(CouponChange {
            name,
            terms,
            metadata,
            redemption,
            assigned,
            provider_relevant: has_provider && (content_changed || assigned.is_some()),
        }))
    }
}

/// The writes of a promotion-code PUT.
#[derive(Debug, Clone, PartialEq)]
pub struct CodeChange {
    pub restrictions: CodeRestrictions,
    pub metadata: Metadata,
    pub redemption: Option<Option<String>>,
    /// Whether what a provider holds of the code changed.
    pub content_changed: bool,
}

impl PromotionCodePatch {
    /// Decides what this PUT does to `code` of `coupon`.
    pub fn plan(
        &self,
        code: &PromotionCode,
        coupon: &Coupon,
        check: Option<KeyCheck>,
        now: DateTime<Utc>,
    ) -> Result<Decision<CodeChange>, FieldErrors> {
        let partners = self.apply_partners(code.restrictions.partners.as_ref())?;
        let mut redemption = None;
        if self.redeem.requested {
            if !redeem_gate(&self.redeem.transaction_key, check) {
                return Ok(Decision::NoOp);
            }
            if !coupon.terms.active {
                return Err(refuse("The coupon is not active."));
            }
            if coupon.terms.redeem_by.is_some_and(|t| now > t) {
                return Err(refuse("The coupon has expired."));
            }
            if code.restrictions.expires_at.is_some_and(|t| now > t) {
                return Err(refuse("The promotion code has expired."));
            }
            if code
                .restrictions
                .max_redemptions
                .is_some_and(|m| code.times_redeemed >= m)
            {
                return Err(refuse(
                    "The promotion code has reached its redemption limit.",
                ));
            }
            redemption = Some(self.redeem.transaction_key.clone());
        }
        let metadata = match &self.metadata {
            Some(p) => code.metadata.merged(p, "metadata")?,
            None => code.metadata.clone(),
        };
        let restrictions = CodeRestrictions {
            partners,
            ..code.restrictions.clone()
        };
        let content_changed = restrictions != code.restrictions || metadata != code.metadata;
        if !content_changed && redemption.is_none() {
            return Ok(Decision::NoOp);
        }
        Ok(Decision::Apply(CodeChange {
            restrictions,
            metadata,
            redemption,
            content_changed,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Discount, DiscountKind, Duration};
    use rust_decimal::Decimal;
    use serde_json::{Value, json};

    fn now() -> DateTime<Utc> {
        "2026-01-01T00:00:00Z".parse().unwrap()
    }

    fn coupon() -> Coupon {
        Coupon {
            uuid_code: "c1".into(),
            name: "C1".into(),
            terms: CouponTerms {
                active: true,
                discount: Discount::new(DiscountKind::Percent, Decimal::from(25)).unwrap(),
                duration: Duration::Once,
                redeem_by: None,
                max_redemptions: Some(2),
            },
            metadata: Metadata::default(),
            times_redeemed: 0,
            sync_provider: None,
            revision: 1,
            created_at: now(),
            updated_at: now(),
        }
    }

    fn patch(v: Value) -> CouponPatch {
        let mut body = json!({"uuid_code": "c1"});
        for (k, x) in v.as_object().unwrap() {
            body[k] = x.clone();
        }
        CouponPatch::parse(body.as_object().unwrap()).unwrap()
    }

    const FRESH: KeyCheck = KeyCheck {
        known: true,
        already_logged: false,
    };

    #[test]
    fn redeem_dedupe_and_unknown_key_are_silent_noops() {
        let p = patch(json!({"redeem": true, "transaction_key": "t", "name": "other"}));
        assert_eq!(
            p.plan(
                &coupon(),
                Some(KeyCheck {
                    known: false,
                    already_logged: false
                }),
                now()
            )
            .unwrap(),
            Decision::NoOp
        );
        assert_eq!(
            p.plan(
                &coupon(),
                Some(KeyCheck {
                    known: true,
                    already_logged: true
                }),
                now()
            )
            .unwrap(),
            Decision::NoOp
        );
        let Decision::Apply(c) = p.plan(&coupon(), Some(FRESH), now()).unwrap() else {
            panic!()
        };
        assert_eq!(c.redemption, Some(Some("t".into())));
        assert_eq!(c.name, "other");
    }

    #[test]
    fn redeem_refusals() {
        let p = patch(json!({"redeem": true}));
        let mut c = coupon();
        c.times_redeemed = 2;
        assert!(p.plan(&c, None, now()).unwrap_err().has("redeem"));
        let mut c = coupon();
        c.terms.active = false;
        assert!(p.plan(&c, None, now()).unwrap_err().has("redeem"));
        let mut c = coupon();
        c.terms.redeem_by = Some("2025-01-01T00:00:00Z".parse().unwrap());
        assert!(p.plan(&c, None, now()).unwrap_err().has("redeem"));
        // the retry of the redemption that reached the limit is a no-op, not a 422 (B18)
        let p = patch(json!({"redeem": true, "transaction_key": "t"}));
        let mut c = coupon();
        c.times_redeemed = 2;
        assert_eq!(
            p.plan(
                &c,
                Some(KeyCheck {
                    known: true,
                    already_logged: true
                }),
                now()
            )
            .unwrap(),
            Decision::NoOp
        );
    }

    #[test]
    fn provider_assignment_rules() {
        let mut c = coupon();
        c.sync_provider = Some(ProviderKind::Stripe);
        let e = patch(json!({"sync": {"provider": "shopify"}}))
            .plan(&c, None, now())
            .unwrap_err();
        assert_eq!(e.to_json()["sync.provider"][0], PROVIDER_ALREADY_SET);
        assert_eq!(
            patch(json!({"sync": {"provider": "stripe"}}))
                .plan(&c, None, now())
                .unwrap(),
            Decision::NoOp
        );
        let Decision::Apply(ch) = patch(json!({"sync": {"provider": "shopify"}}))
            .plan(&coupon(), None, now())
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(ch.assigned, Some(ProviderKind::Shopify));
        assert!(ch.provider_relevant);
    }

    #[test]
    fn only_provider_held_changes_are_relevant() {
        let mut c = coupon();
        c.sync_provider = Some(ProviderKind::Stripe);
        let Decision::Apply(ch) = patch(json!({"redeem": true}))
            .plan(&c, None, now())
            .unwrap()
        else {
            panic!()
        };
        assert!(!ch.provider_relevant);
        let Decision::Apply(ch) = patch(json!({"coupon_discount_amount": 30}))
            .plan(&c, None, now())
            .unwrap()
        else {
            panic!()
        };
        assert!(ch.provider_relevant);
        assert_eq!(
            patch(json!({"name": "C1", "coupon_discount_amount": 25}))
                .plan(&c, None, now())
                .unwrap(),
            Decision::NoOp
        );
    }

    #[test]
    fn code_redeem_checks_coupon_and_code() {
        let code = PromotionCode {
            code: "P".into(),
            restrictions: CodeRestrictions {
                max_redemptions: Some(1),
                ..Default::default()
            },
            metadata: Metadata::default(),
            times_redeemed: 1,
        };
        let p =
            PromotionCodePatch::parse(json!({"code": "P", "redeem": true}).as_object().unwrap())
                .unwrap();
        assert!(
            p.plan(&code, &coupon(), None, now())
                .unwrap_err()
                .has("redeem")
        );
        let code = PromotionCode {
            times_redeemed: 0,
            ..code
        };
        let mut c = coupon();
        c.terms.active = false;
        assert!(p.plan(&code, &c, None, now()).unwrap_err().has("redeem"));
        // the coupon's own limit does not apply to a code redeem (B18 c)
        let mut c = coupon();
        c.times_redeemed = 5;
        assert!(matches!(
            p.plan(&code, &c, None, now()).unwrap(),
            Decision::Apply(_)
        ));
    }
}
