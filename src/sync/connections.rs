//! The connected providers of every program, with their health and rate limiters.

use crate::config::{PaddleFlavour, PaddleSettings, Settings};
use crate::domain::ProviderKind;
use crate::providers::Adapter;
use crate::providers::http::{CallStats, Limiter, Transport};
use crate::providers::paddle_billing::PaddleBillingClient;
use crate::providers::paddle_classic::PaddleClassicClient;
use crate::providers::shopify::ShopifyClient;
use crate::providers::stripe::StripeClient;
use crate::providers::woocommerce::{WooClient, WooOptions};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Whether the provider accepts our credentials.
#[derive(Debug, Clone, Default)]
pub struct Health {
    /// `Some(reason)` after a 401/403, until a call succeeds again.
    pub credentials_rejected: Option<String>,
    pub next_probe: Option<Instant>,
    /// A probe is in flight: no other work of the connection is claimed meanwhile.
    pub probing: bool,
}

/// One provider connection of one program.
pub struct Connection {
    pub program: String,
    pub provider: ProviderKind,
    pub currency: String,
    pub adapter: Adapter,
    health: Mutex<Health>,
}

impl Connection {
    pub fn health(&self) -> Health {
        self.health
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn mark_rejected(&self, reason: String, probe_after: Duration) {
        let mut h = self.health.lock().unwrap_or_else(|e| e.into_inner());
        if h.credentials_rejected.is_none() {
            tracing::warn!(program = %self.program, provider = %self.provider, %reason, "provider rejected the credentials; parking its work");
        }
        h.credentials_rejected = Some(reason);
        h.next_probe = Some(Instant::now() + probe_after);
        h.probing = false;
    }

    /// Frees the probe slot (whatever the probe's outcome).
    pub fn end_probe(&self) {
        self.health
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .probing = false;
    }

    /// Takes the probe slot of an unhealthy connection; `false` when one is already out.
    pub fn start_probe(&self) -> bool {
        let mut h = self.health.lock().unwrap_or_else(|e| e.into_inner());
        !std::mem::replace(&mut h.probing, true)
    }

    pub fn mark_ok(&self) {
        let mut h = self.health.lock().unwrap_or_else(|e| e.into_inner());
        if h.credentials_rejected.take().is_some() {
            tracing::info!(program = %self.program, provider = %self.provider, "provider accepts the credentials again; resuming");
        }
        h.next_probe = None;
        h.probing = false;
    }

    /// Unhealthy and not yet due for a probe, or paused by a `Retry-After`: its work is not claimed.
    pub fn parked(&self) -> bool {
        if self.transport().and_then(Transport::paused_for).is_some() {
            return true;
        }
        let h = self.health.lock().unwrap_or_else(|e| e.into_inner());
        h.credentials_rejected.is_some()
            && (h.probing || h.next_probe.is_none_or(|t| Instant::now() < t))
    }

    pub fn transport(&self) -> Option<&Transport> {
        self.adapter.transport()
    }

    pub fn stats(&self) -> CallStats {
        self.transport().map(Transport::stats).unwrap_or_default()
    }
}

/// All connections, keyed by (program, provider).
#[derive(Default)]
pub struct Connections {
    map: HashMap<(String, ProviderKind), Arc<Connection>>,
}

impl Connections {
    pub fn from_settings(s: &Settings) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(s.sync.request_timeout_ms))
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("coupond/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let max_pause = Duration::from_secs(s.sync.max_retry_after_secs);
        let mut map = HashMap::new();
        // Paddle limits per IP: one bucket per base URL, shared by the programs using it.
        let mut paddle_buckets: HashMap<String, Arc<Limiter>> = HashMap::new();
        for (name, p) in &s.programs {
            let mut add = |provider: ProviderKind, adapter: Adapter| {
                let c = Connection {
                    program: name.clone(),
                    provider,
                    currency: p.currency.clone(),
                    adapter,
                    health: Mutex::new(Health::default()),
                };
                map.insert((name.clone(), provider), Arc::new(c));
            };
            if let Some(st) = p.stripe.as_ref().filter(|x| x.enabled) {
                let limiter = Arc::new(Limiter::new(st.rate_per_second, Duration::from_secs(1)));
                let t = Transport::new("Stripe", client.clone(), limiter, max_pause);
                let key = st.secret_key.clone().expect("validated");
                add(
                    ProviderKind::Stripe,
                    Adapter::Stripe(Box::new(StripeClient::new(&st.base_url, key, t))),
                );
            }
            if let Some(sh) = p.shopify.as_ref().filter(|x| x.enabled) {
                // a safety net under the cost bucket the adapter reads from Shopify's answers
                let limiter = Arc::new(Limiter::new(sh.rate_per_second, Duration::from_secs(1)));
                let t = Transport::new("Shopify", client.clone(), limiter, max_pause);
                let token = sh.access_token.clone().expect("validated");
                add(
                    ProviderKind::Shopify,
                    Adapter::Shopify(Box::new(ShopifyClient::new(
                        &sh.base_url,
                        &sh.api_version,
                        token,
                        sh.billing_interval,
                        t,
                    ))),
                );
            }
            if let Some(w) = p.woocommerce.as_ref().filter(|x| x.enabled) {
                let limiter = Arc::new(Limiter::new(w.rate_per_second, Duration::from_secs(1)));
                let t = Transport::new("WooCommerce", client.clone(), limiter, max_pause);
                add(
                    ProviderKind::WooCommerce,
                    Adapter::WooCommerce(Box::new(WooClient::new(
                        &w.base_url,
                        w.consumer_key.clone().expect("validated"),
                        w.consumer_secret.clone().expect("validated"),
                        WooOptions {
                            auth: w.auth,
                            delete_mode: w.delete_mode,
                            subscriptions: w.subscriptions,
                            billing_interval: w.billing_interval,
                        },
                        t,
                    ))),
                );
            }
            if let Some(pd) = p.paddle.as_ref().filter(|x| x.enabled) {
                let bucket = paddle_bucket(&mut paddle_buckets, pd);
                let adapter = match pd.flavour {
                    PaddleFlavour::Billing => {
                        let t = Transport::new("Paddle Billing", client.clone(), bucket, max_pause);
                        Adapter::PaddleBilling(Box::new(PaddleBillingClient::new(
                            pd.url(),
                            pd.api_key.clone().expect("validated"),
                            pd.billing_interval,
                            t,
                        )))
                    }
                    PaddleFlavour::Classic => {
                        let t = Transport::new("Paddle Classic", client.clone(), bucket, max_pause);
                        Adapter::PaddleClassic(Box::new(PaddleClassicClient::new(
                            pd.url(),
                            pd.vendor_id.expect("validated"),
                            pd.vendor_auth_code.clone().expect("validated"),
                            pd.lookup_product_id,
                            t,
                        )))
                    }
                };
                add(ProviderKind::Paddle, adapter);
            }
        }
        Ok(Self { map })
    }

    pub fn get(&self, program: &str, provider: ProviderKind) -> Option<Arc<Connection>> {
        self.map.get(&(program.to_owned(), provider)).cloned()
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<Connection>> {
        self.map.values()
    }
}

fn paddle_bucket(buckets: &mut HashMap<String, Arc<Limiter>>, pd: &PaddleSettings) -> Arc<Limiter> {
    buckets
        .entry(pd.url().trim_end_matches('/').to_owned())
        .or_insert_with(|| Arc::new(Limiter::new(pd.rate_per_minute, Duration::from_secs(60))))
        .clone()
}
