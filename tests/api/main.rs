//! The one integration-test binary.

mod helpers;
mod stripe_env;

mod auth;
mod coupons;
mod crash;
mod durability;
mod mirror;
mod openapi;
mod ops;
mod promotion_codes;
mod reconcile;
mod robustness;
mod seeds;
mod sync_stripe;
mod transactions;
