//! coupond: a self-hosted, Partnero-compatible coupon API that keeps providers in step.

pub mod admin;
pub mod api;
pub mod app;
pub mod cli;
pub mod config;
pub mod demo;
pub mod domain;
pub mod mirror;
pub mod providers;
pub mod reconcile;
pub mod simulators;
pub mod store;
pub mod sync;
pub mod telemetry;
