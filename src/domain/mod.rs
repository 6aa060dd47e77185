//! Pure domain types and rules: no I/O, no async.

pub mod coupon;
pub mod errors;
pub mod ident;
pub mod input;
pub mod metadata;
pub mod money;
pub mod promotion_code;
pub mod provider;
pub mod state;
pub mod time;
pub mod transaction;

pub use coupon::{CouponPatch, CouponTerms, Duration, DurationKind, NewCoupon, Redeem};
pub use errors::FieldErrors;
pub use ident::{CouponCode, PromoCode};
pub use metadata::{Metadata, MetadataPatch};
pub use money::{Discount, DiscountKind};
pub use promotion_code::{
    CodeRestrictions, CreatePromotionCode, NewPromotionCode, Party, PartyKind, PromotionCodePatch,
};
pub use provider::ProviderKind;
pub use state::{CodeChange, Coupon, CouponChange, Decision, KeyCheck, PromotionCode};
pub use transaction::NewTransaction;
