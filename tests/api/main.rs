//! The one integration-test binary.

mod helpers;
mod paddle_env;
mod shopify_env;
mod stripe_env;
mod woo_env;

mod auth;
mod coupons;
mod crash;
mod durability;
mod mirror;
mod openapi;
mod ops;
mod promotion_codes;
mod reconcile;
mod reconcile_codes;
mod robustness;
mod seeds;
mod sync_paddle;
mod sync_shopify;
mod sync_stripe;
mod sync_woo;
mod transactions;
mod woo_samples;
