//! The one integration-test binary.

mod helpers;

mod auth;
mod coupons;
mod durability;
mod openapi;
mod promotion_codes;
mod robustness;
mod seeds;
mod transactions;
