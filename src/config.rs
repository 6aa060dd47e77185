//! Settings: embedded defaults → optional TOML file → `COUPOND_*` env (`__` nests),
//! validated once at start-up with errors that name the key.

use crate::store::{Durability, StoreOptions};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const DEFAULTS: &str = include_str!("../config/default.toml");

/// A secret: deserialized from a string, printed and serialized as `[REDACTED]`.
#[derive(Clone, Debug)]
pub struct Secret(SecretString);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(SecretString::from(s.into()))
    }
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret::new)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("[REDACTED]")
    }
}

/// A list that may also be given as one comma-separated string (handy from env).
fn string_or_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Secret>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(Secret::new)
            .collect(),
        OneOrMany::Many(v) => v.into_iter().map(Secret::new).collect(),
    })
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub store: StoreSettings,
    pub log: LogSettings,
    pub sync: SyncSettings,
    pub status: StatusThresholds,
    pub reconcile: ReconcileSettings,
    #[serde(default)]
    pub programs: BTreeMap<String, ProgramSettings>,
}

/// What `--reconcile` does with objects that carry our marker but belong to nothing here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OrphanPolicy {
    /// Retire them the strongest way the provider allows (Stripe: delete coupons, deactivate codes).
    Retire,
    /// Only list them.
    Report,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReconcileSettings {
    pub orphans: OrphanPolicy,
    /// Cron expression (with seconds, UTC) for the daemon's own runs; empty disables.
    pub schedule: String,
}

/// Thresholds beyond which `/status` answers 503.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StatusThresholds {
    /// Dead syncs tolerated before the outbox counts as failing.
    pub max_dead: i64,
    /// Age of the oldest waiting sync, in seconds.
    pub max_oldest_pending_secs: i64,
    /// Marks waiting to be synced.
    pub max_outbox_depth: i64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub listen: SocketAddr,
    /// Absolute base URL for pagination links; taken from the `Host` header when unset.
    #[serde(default)]
    pub public_url: Option<String>,
    pub body_limit_bytes: usize,
    pub request_timeout_ms: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSettings {
    pub path: PathBuf,
    pub durability: Durability,
    pub busy_timeout_ms: u64,
    pub read_connections: u32,
}

impl StoreSettings {
    pub fn options(&self) -> StoreOptions {
        StoreOptions {
            durability: self.durability,
            busy_timeout: Duration::from_millis(self.busy_timeout_ms),
            read_connections: self.read_connections,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// JSON when stdout is not a terminal (journald), pretty on a terminal.
    Auto,
    Json,
    Pretty,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    pub filter: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SyncSettings {
    pub workers: usize,
    pub inline_deadline_ms: u64,
    pub lease_secs: u64,
    pub poll_interval_ms: u64,
    pub retry_schedule: Vec<String>,
    pub jitter_percent: u32,
    pub min_throttle_delay_secs: u64,
    pub max_retry_after_secs: u64,
    pub request_timeout_ms: u64,
    pub credentials_probe_secs: u64,
    pub shutdown_grace_secs: u64,
}

impl SyncSettings {
    /// The retry schedule as durations (validated at load).
    pub fn schedule(&self) -> Vec<Duration> {
        self.retry_schedule
            .iter()
            .filter_map(|s| parse_duration(s))
            .collect()
    }
}

/// `250ms`, `5s`, `2m`, `1h`, `1d`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().ok()?;
    Some(match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        "d" => Duration::from_secs(n * 86400),
        _ => return None,
    })
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProgramSettings {
    #[serde(default, deserialize_with = "string_or_list")]
    pub api_keys: Vec<Secret>,
    /// A file with one key per line (relative paths resolve in `$CREDENTIALS_DIRECTORY`).
    #[serde(default)]
    pub api_keys_file: Option<PathBuf>,
    /// Keys that are known but disabled: they get 403.
    #[serde(default, deserialize_with = "string_or_list")]
    pub disabled_api_keys: Vec<Secret>,
    #[serde(default = "default_currency")]
    pub currency: String,
    /// Requests per minute per key; unset = no limit.
    #[serde(default)]
    pub rate_limit_per_minute: Option<u32>,
    #[serde(default)]
    pub stripe: Option<StripeSettings>,
    #[serde(default)]
    pub shopify: Option<ShopifySettings>,
    #[serde(default)]
    pub woocommerce: Option<WooCommerceSettings>,
    #[serde(default)]
    pub paddle: Option<PaddleSettings>,
    /// Mirror mode: follow this upstream; the local API is read-only for coupon data.
    #[serde(default)]
    pub upstream: Option<UpstreamSettings>,
}

/// An upstream Partnero-compatible API this program mirrors.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamSettings {
    pub base_url: String,
    #[serde(default)]
    pub api_key: Option<Secret>,
    #[serde(default)]
    pub api_key_file: Option<PathBuf>,
    /// Time between the end of one pass and the start of the next.
    #[serde(default = "poll_interval")]
    pub poll_interval_ms: u64,
    /// The provider upstream coupons sync to when the upstream does not say.
    #[serde(default)]
    pub provider: Option<String>,
    /// Coupons per page (1–250).
    #[serde(default = "page_limit")]
    pub page_limit: u32,
    /// Requests per second to the upstream.
    #[serde(default = "upstream_rate")]
    pub rate_per_second: u32,
}
fn poll_interval() -> u64 {
    60_000
}
fn page_limit() -> u32 {
    250
}
fn upstream_rate() -> u32 {
    5
}

fn default_currency() -> String {
    "USD".to_owned()
}
fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StripeSettings {
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub secret_key: Option<Secret>,
    #[serde(default)]
    pub secret_key_file: Option<PathBuf>,
    #[serde(default = "stripe_url")]
    pub base_url: String,
    /// Requests per second this connection may send.
    #[serde(default = "stripe_rate")]
    pub rate_per_second: u32,
}
fn stripe_url() -> String {
    "https://api.stripe.com".into()
}
fn stripe_rate() -> u32 {
    20
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ShopifySettings {
    #[serde(default = "yes")]
    pub enabled: bool,
    pub base_url: String,
    #[serde(default)]
    pub access_token: Option<Secret>,
    #[serde(default)]
    pub access_token_file: Option<PathBuf>,
    #[serde(default = "shopify_version")]
    pub api_version: String,
    #[serde(default = "shopify_rate")]
    pub rate_per_second: u32,
    /// How often the shop's subscriptions bill: turns month/year durations into billing cycles.
    #[serde(default)]
    pub billing_interval: BillingInterval,
}
fn shopify_version() -> String {
    "2026-10".into()
}
fn shopify_rate() -> u32 {
    10
}

/// The billing period of a shop's subscriptions (providers count durations in billing cycles).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BillingInterval {
    #[default]
    Month,
    Year,
}

/// How coupond authenticates to WooCommerce.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WooAuth {
    /// Basic over https, OAuth 1.0a over plain http (what WooCommerce accepts on each).
    #[default]
    Auto,
    /// HTTP Basic with the consumer key and secret (https only).
    Basic,
    /// OAuth 1.0a one-legged signing (HMAC-SHA1).
    Oauth1,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WooDeleteMode {
    Trash,
    Force,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WooCommerceSettings {
    #[serde(default = "yes")]
    pub enabled: bool,
    pub base_url: String,
    #[serde(default)]
    pub consumer_key: Option<Secret>,
    #[serde(default)]
    pub consumer_key_file: Option<PathBuf>,
    #[serde(default)]
    pub consumer_secret: Option<Secret>,
    #[serde(default)]
    pub consumer_secret_file: Option<PathBuf>,
    #[serde(default = "woo_delete")]
    pub delete_mode: WooDeleteMode,
    #[serde(default = "woo_rate")]
    pub rate_per_second: u32,
    #[serde(default)]
    pub auth: WooAuth,
    /// WooCommerce Subscriptions is installed: month/year/lifetime durations become recurring
    /// coupons limited to a number of payments.
    #[serde(default)]
    pub subscriptions: bool,
    #[serde(default)]
    pub billing_interval: BillingInterval,
}
fn woo_delete() -> WooDeleteMode {
    WooDeleteMode::Trash
}
fn woo_rate() -> u32 {
    10
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PaddleFlavour {
    Billing,
    Classic,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PaddleSettings {
    #[serde(default = "yes")]
    pub enabled: bool,
    pub flavour: PaddleFlavour,
    /// Defaults to the flavour's production URL.
    #[serde(default)]
    pub base_url: Option<String>,
    #[serde(default)]
    pub api_key: Option<Secret>,
    #[serde(default)]
    pub api_key_file: Option<PathBuf>,
    #[serde(default)]
    pub vendor_id: Option<u64>,
    #[serde(default)]
    pub vendor_auth_code: Option<Secret>,
    #[serde(default)]
    pub vendor_auth_code_file: Option<PathBuf>,
    /// Requests per minute (Paddle Billing allows 240/min per IP).
    #[serde(default = "paddle_rate")]
    pub rate_per_minute: u32,
    /// How subscriptions bill: turns month/year durations into billing periods (Billing).
    #[serde(default)]
    pub billing_interval: BillingInterval,
    /// Classic: a product id whose coupon list is asked to find checkout coupons by code
    /// (Classic lists coupons per product only).
    #[serde(default)]
    pub lookup_product_id: Option<u64>,
}
fn paddle_rate() -> u32 {
    240
}

impl PaddleSettings {
    pub fn url(&self) -> &str {
        self.base_url.as_deref().unwrap_or(match self.flavour {
            PaddleFlavour::Billing => "https://api.paddle.com",
            PaddleFlavour::Classic => "https://vendors.paddle.com/api",
        })
    }
}

/// Everything wrong with a configuration, one line per key.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  {}", .0.join("\n  "))]
pub struct ConfigError(pub Vec<String>);

/// Where settings come from besides the embedded defaults.
#[derive(Debug, Default, Clone)]
pub struct Sources {
    pub file: Option<PathBuf>,
    /// Extra TOML layers after the file, in order (used by `--demo` and tests).
    pub overlays: Vec<String>,
    /// `COUPOND_*` variables; `None` reads the process environment.
    pub env: Option<BTreeMap<String, String>>,
}

impl Settings {
    /// Loads, layers and validates. Secrets given as `*_file` are read here.
    pub fn load(sources: &Sources) -> Result<Self, ConfigError> {
        use config::{Config, Environment, File, FileFormat};
        let mut b = Config::builder().add_source(File::from_str(DEFAULTS, FileFormat::Toml));
        if let Some(path) = &sources.file {
            if !path.exists() {
                return Err(ConfigError(vec![format!(
                    "config file {} does not exist",
                    path.display()
                )]));
            }
            b = b.add_source(File::from(path.as_path()).format(FileFormat::Toml));
        }
        for overlay in &sources.overlays {
            b = b.add_source(File::from_str(overlay, FileFormat::Toml));
        }
        let env: config::Map<String, String> = match &sources.env {
            Some(m) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            None => std::env::vars().collect(),
        };
        let env = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("COUPOND_") && k != "COUPOND_CONFIG")
            .collect();
        b = b.add_source(
            Environment::with_prefix("COUPOND")
                .prefix_separator("_")
                .separator("__")
                .source(Some(env)),
        );
        let raw = b.build().map_err(|e| ConfigError(vec![e.to_string()]))?;
        let mut s: Settings = raw
            .try_deserialize()
            .map_err(|e| ConfigError(vec![e.to_string()]))?;
        s.resolve_and_validate()?;
        Ok(s)
    }

    fn resolve_and_validate(&mut self) -> Result<(), ConfigError> {
        let mut errs = Vec::new();
        if self.sync.retry_schedule.is_empty() {
            errs.push("sync.retry_schedule: must list at least one delay".into());
        }
        for (i, d) in self.sync.retry_schedule.iter().enumerate() {
            if parse_duration(d).is_none() {
                errs.push(format!(
                    "sync.retry_schedule[{i}]: {d:?} is not a duration like 250ms, 5s, 2m, 1h or 1d"
                ));
            }
        }
        if self.sync.workers == 0 {
            errs.push("sync.workers: must be at least 1".into());
        }
        if self.sync.jitter_percent > 100 {
            errs.push("sync.jitter_percent: must be between 0 and 100".into());
        }
        if self.server.body_limit_bytes < 1024 {
            errs.push("server.body_limit_bytes: must be at least 1024".into());
        }
        let mut seen_keys: Vec<(String, String)> = Vec::new();
        for (name, p) in self.programs.iter_mut() {
            let at = format!("programs.{name}");
            if !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                errs.push(format!(
                    "{at}: program names use letters, digits, '-' and '_'"
                ));
            }
            if let Some(file) = &p.api_keys_file {
                match read_secret_file(file) {
                    Ok(text) => p.api_keys.extend(
                        text.lines()
                            .map(str::trim)
                            .filter(|l| !l.is_empty())
                            .map(Secret::new),
                    ),
                    Err(e) => errs.push(format!("{at}.api_keys_file: {e}")),
                }
            }
            if p.api_keys.is_empty() {
                errs.push(format!(
                    "{at}.api_keys: at least one key is required (or api_keys_file)"
                ));
            }
            for k in p.api_keys.iter().chain(&p.disabled_api_keys) {
                if k.expose().len() < 16 {
                    errs.push(format!(
                        "{at}.api_keys: every key must be at least 16 characters"
                    ));
                }
                if let Some((other, _)) = seen_keys.iter().find(|(_, x)| x == k.expose()) {
                    errs.push(format!(
                        "{at}.api_keys: a key is also used by programs.{other}"
                    ));
                }
                seen_keys.push((name.clone(), k.expose().to_owned()));
            }
            if crate::domain::money::currency_exponent(&p.currency).is_none() {
                errs.push(format!(
                    "{at}.currency: {:?} is not an ISO 4217 code like USD",
                    p.currency
                ));
            }
            if p.rate_limit_per_minute == Some(0) {
                errs.push(format!(
                    "{at}.rate_limit_per_minute: must be at least 1 (omit it for no limit)"
                ));
            }
            if let Some(s) = &mut p.stripe {
                require_secret(
                    &mut s.secret_key,
                    &s.secret_key_file,
                    &format!("{at}.stripe.secret_key"),
                    &mut errs,
                );
                check_url(&s.base_url, &format!("{at}.stripe.base_url"), &mut errs);
                check_rate(
                    s.rate_per_second,
                    &format!("{at}.stripe.rate_per_second"),
                    &mut errs,
                );
            }
            if let Some(s) = &mut p.shopify {
                require_secret(
                    &mut s.access_token,
                    &s.access_token_file,
                    &format!("{at}.shopify.access_token"),
                    &mut errs,
                );
                check_url(&s.base_url, &format!("{at}.shopify.base_url"), &mut errs);
                check_rate(
                    s.rate_per_second,
                    &format!("{at}.shopify.rate_per_second"),
                    &mut errs,
                );
            }
            if let Some(s) = &mut p.woocommerce {
                require_secret(
                    &mut s.consumer_key,
                    &s.consumer_key_file,
                    &format!("{at}.woocommerce.consumer_key"),
                    &mut errs,
                );
                require_secret(
                    &mut s.consumer_secret,
                    &s.consumer_secret_file,
                    &format!("{at}.woocommerce.consumer_secret"),
                    &mut errs,
                );
                check_url(
                    &s.base_url,
                    &format!("{at}.woocommerce.base_url"),
                    &mut errs,
                );
                if s.auth == WooAuth::Basic && !s.base_url.starts_with("https://") {
                    errs.push(format!(
                        "{at}.woocommerce.auth: \"basic\" sends the consumer secret in clear over {}; WooCommerce ignores it on plain http (use \"oauth1\" or an https base_url)",
                        s.base_url
                    ));
                }
                check_rate(
                    s.rate_per_second,
                    &format!("{at}.woocommerce.rate_per_second"),
                    &mut errs,
                );
            }
            if let Some(u) = &mut p.upstream {
                require_secret(
                    &mut u.api_key,
                    &u.api_key_file,
                    &format!("{at}.upstream.api_key"),
                    &mut errs,
                );
                check_url(&u.base_url, &format!("{at}.upstream.base_url"), &mut errs);
                check_rate(
                    u.rate_per_second,
                    &format!("{at}.upstream.rate_per_second"),
                    &mut errs,
                );
                if !(1..=250).contains(&u.page_limit) {
                    errs.push(format!(
                        "{at}.upstream.page_limit: must be between 1 and 250"
                    ));
                }
                if u.poll_interval_ms == 0 {
                    errs.push(format!(
                        "{at}.upstream.poll_interval_ms: must be at least 1"
                    ));
                }
                if let Some(prov) = &u.provider {
                    let connected = match prov.as_str() {
                        "stripe" => p.stripe.is_some(),
                        "shopify" => p.shopify.is_some(),
                        "woocommerce" => p.woocommerce.is_some(),
                        "paddle" => p.paddle.is_some(),
                        other => {
                            errs.push(format!("{at}.upstream.provider: {other:?} is not stripe, shopify, woocommerce or paddle"));
                            true
                        }
                    };
                    if !connected {
                        errs.push(format!(
                            "{at}.upstream.provider: {prov} is not connected for this program"
                        ));
                    }
                }
            }
            if let Some(s) = &mut p.paddle {
                match s.flavour {
                    PaddleFlavour::Billing => require_secret(
                        &mut s.api_key,
                        &s.api_key_file,
                        &format!("{at}.paddle.api_key"),
                        &mut errs,
                    ),
                    PaddleFlavour::Classic => {
                        if s.vendor_id.is_none() {
                            errs.push(format!(
                                "{at}.paddle.vendor_id: required for flavour = \"classic\""
                            ));
                        }
                        require_secret(
                            &mut s.vendor_auth_code,
                            &s.vendor_auth_code_file,
                            &format!("{at}.paddle.vendor_auth_code"),
                            &mut errs,
                        );
                    }
                }
                if let Some(u) = &s.base_url {
                    check_url(u, &format!("{at}.paddle.base_url"), &mut errs);
                }
                check_rate(
                    s.rate_per_minute,
                    &format!("{at}.paddle.rate_per_minute"),
                    &mut errs,
                );
            }
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(ConfigError(errs))
        }
    }

    /// The effective configuration as TOML, secrets redacted.
    pub fn redacted_toml(&self) -> String {
        toml::to_string(self).unwrap_or_else(|e| format!("# cannot render: {e}"))
    }
}

fn check_url(u: &str, key: &str, errs: &mut Vec<String>) {
    if !(u.starts_with("http://") || u.starts_with("https://")) {
        errs.push(format!("{key}: {u:?} must start with http:// or https://"));
    }
}

fn check_rate(r: u32, key: &str, errs: &mut Vec<String>) {
    if r == 0 {
        errs.push(format!("{key}: must be at least 1"));
    }
}

/// Relative paths resolve in `$CREDENTIALS_DIRECTORY` (systemd `LoadCredential`) when set.
fn read_secret_file(path: &Path) -> Result<String, String> {
    let full = match std::env::var_os("CREDENTIALS_DIRECTORY") {
        Some(dir) if path.is_relative() => PathBuf::from(dir).join(path),
        _ => path.to_path_buf(),
    };
    std::fs::read_to_string(&full).map_err(|e| format!("cannot read {}: {e}", full.display()))
}

fn require_secret(
    value: &mut Option<Secret>,
    file: &Option<PathBuf>,
    key: &str,
    errs: &mut Vec<String>,
) {
    if let Some(f) = file {
        match read_secret_file(f) {
            Ok(s) => *value = Some(Secret::new(s.trim())),
            Err(e) => {
                errs.push(format!("{key}_file: {e}"));
                return;
            }
        }
    }
    match value {
        Some(v) if !v.expose().is_empty() => {}
        _ => errs.push(format!("{key}: required (or {key}_file)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Option<BTreeMap<String, String>> {
        Some(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn defaults_load_and_validate() {
        let s = Settings::load(&Sources {
            env: env(&[]),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(s.server.listen.port(), 8080);
        assert_eq!(s.sync.schedule().len(), 12);
        assert_eq!(s.sync.schedule()[2], Duration::from_secs(120));
    }

    #[test]
    fn env_overrides_nested_keys_and_lists() {
        let s = Settings::load(&Sources {
            env: env(&[
                ("COUPOND_SERVER__LISTEN", "0.0.0.0:9000"),
                (
                    "COUPOND_PROGRAMS__ACME__API_KEYS",
                    "aaaaaaaaaaaaaaaa1,aaaaaaaaaaaaaaaa2",
                ),
                ("COUPOND_PROGRAMS__ACME__STRIPE__SECRET_KEY", "sk_test_123"),
                ("COUPOND_CONFIG", "/ignored.toml"),
            ]),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(s.server.listen.port(), 9000);
        let p = &s.programs["acme"];
        assert_eq!(p.api_keys.len(), 2);
        assert_eq!(
            p.stripe
                .as_ref()
                .unwrap()
                .secret_key
                .as_ref()
                .unwrap()
                .expose(),
            "sk_test_123"
        );
    }

    #[test]
    fn errors_name_the_key() {
        let e = Settings::load(&Sources {
            overlays: vec![
                r#"
                [sync]
                retry_schedule = ["5s", "soon"]
                [programs.acme]
                api_keys = ["short"]
                currency = "dollars"
                [programs.acme.stripe]
                base_url = "ftp://x"
                [programs.acme.paddle]
                flavour = "classic"
                [programs.acme.woocommerce]
                base_url = "http://shop.example"
                consumer_key = "ck_x"
                consumer_secret = "cs_x"
                auth = "basic"
                "#
                .into(),
            ],
            env: env(&[]),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(
            e.contains(
                "programs.acme.woocommerce.auth: \"basic\" sends the consumer secret in clear"
            ),
            "{e}"
        );
        for key in [
            "sync.retry_schedule[1]",
            "programs.acme.api_keys",
            "programs.acme.currency",
            "programs.acme.stripe.secret_key",
            "programs.acme.stripe.base_url",
            "programs.acme.paddle.vendor_id",
            "programs.acme.paddle.vendor_auth_code",
        ] {
            assert!(e.contains(key), "{key} missing from: {e}");
        }
    }

    #[test]
    fn upstream_settings_are_validated() {
        let e = Settings::load(&Sources {
            overlays: vec![
                "[programs.m]\napi_keys = [\"mmmmmmmmmmmmmmmmmm\"]\n[programs.m.upstream]\nbase_url = \"upstream.example\"\npage_limit = 500\nprovider = \"stripe\"\n".into(),
            ],
            env: env(&[]),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        for key in [
            "programs.m.upstream.api_key",
            "programs.m.upstream.base_url",
            "programs.m.upstream.page_limit",
            "programs.m.upstream.provider",
        ] {
            assert!(e.contains(key), "{key} missing from: {e}");
        }
    }

    #[test]
    fn unknown_keys_are_refused() {
        let e = Settings::load(&Sources {
            overlays: vec!["[server]\nlisen = \"x\"".into()],
            env: env(&[]),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("lisen"), "{e}");
    }

    #[test]
    fn secrets_come_from_files_and_are_redacted() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("stripe"), "sk_from_file\n").unwrap();
        std::fs::write(
            dir.path().join("keys"),
            "kkkkkkkkkkkkkkkkkkkk\n\nzzzzzzzzzzzzzzzzzzzz\n",
        )
        .unwrap();
        let overlay = format!(
            "[programs.acme]\napi_keys_file = {:?}\n[programs.acme.stripe]\nsecret_key_file = {:?}\n",
            dir.path().join("keys"),
            dir.path().join("stripe")
        );
        let s = Settings::load(&Sources {
            overlays: vec![overlay],
            env: env(&[]),
            ..Default::default()
        })
        .unwrap();
        let p = &s.programs["acme"];
        assert_eq!(p.api_keys.len(), 2);
        assert_eq!(
            p.stripe
                .as_ref()
                .unwrap()
                .secret_key
                .as_ref()
                .unwrap()
                .expose(),
            "sk_from_file"
        );
        let printed = s.redacted_toml();
        assert!(
            !printed.contains("sk_from_file") && !printed.contains("kkkkkkkk"),
            "{printed}"
        );
        assert!(printed.contains("[REDACTED]"));
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("1d"), Some(Duration::from_secs(86400)));
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration("x5s"), None);
    }
}
