//! Command line.

use clap::Parser;
use std::path::PathBuf;

/// coupond keeps an affiliate program's coupons and promotion codes in step with
/// Stripe, Shopify, WooCommerce and Paddle.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    /// TOML config file (layered over the embedded defaults; COUPOND_* env overrides both).
    #[arg(long, env = "COUPOND_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Run on embedded defaults with a throw-away store and a generated API key.
    #[arg(long, conflicts_with_all = ["check_config"])]
    pub demo: bool,

    /// Load and validate the configuration, print it with secrets redacted, and exit.
    #[arg(long)]
    pub check_config: bool,
}
