//! Command line.

use clap::{Parser, ValueEnum};
use std::path::PathBuf;

/// Output format of the one-shot commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

/// coupond keeps an affiliate program's coupons and promotion codes in step with
/// Stripe, Shopify, WooCommerce and Paddle.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    /// TOML config file (layered over the embedded defaults; COUPOND_* env overrides both).
    #[arg(long, env = "COUPOND_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Run on embedded defaults with a throw-away store, a generated API key and a built-in
    /// Stripe simulator.
    #[arg(long, conflicts_with_all = ["check_config", "dead", "retry_dead", "history", "reconcile"])]
    pub demo: bool,

    /// Load and validate the configuration, print it with secrets redacted, and exit.
    #[arg(long)]
    pub check_config: bool,

    /// Compare every managed provider object with the store, print a drift report, and repair
    /// (unless --dry-run). Exit 0 in sync, 1 drift left, 2 errors. Works while the daemon runs.
    #[arg(long, conflicts_with_all = ["dead", "retry_dead", "history"])]
    pub reconcile: bool,

    /// With --reconcile: report only.
    #[arg(long, requires = "reconcile")]
    pub dry_run: bool,

    /// With --reconcile: only this provider (stripe, shopify, woocommerce, paddle).
    #[arg(long, value_name = "PROVIDER", requires = "reconcile")]
    pub provider: Option<String>,

    /// List dead syncs (exit 1 when there are any). Works while the daemon runs.
    #[arg(long, conflicts_with_all = ["retry_dead", "history"])]
    pub dead: bool,

    /// Put dead syncs back in the queue (all, or one coupon's with --coupon).
    #[arg(long, conflicts_with = "history")]
    pub retry_dead: bool,

    /// Show a coupon's sync state and attempt history.
    #[arg(long, value_name = "UUID_CODE")]
    pub history: Option<String>,

    /// Limit --reconcile, --dead, --retry-dead and --history to one program.
    #[arg(long, value_name = "PROGRAM")]
    pub program: Option<String>,

    /// With --retry-dead: only this coupon.
    #[arg(long, value_name = "UUID_CODE", requires = "retry_dead")]
    pub coupon: Option<String>,

    /// Output of --reconcile, --dead, --retry-dead and --history.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

impl Cli {
    /// Whether a one-shot admin command was asked for.
    pub fn admin(&self) -> bool {
        self.dead || self.retry_dead || self.history.is_some()
    }
}
