//! A WooCommerce simulator wired to a test daemon (plain http: every request OAuth 1.0a-signed).

use crate::helpers::*;
use crate::stripe_env::FAST_SYNC;
use coupond::simulators::woocommerce::WooSim;
use serde_json::Value;
use std::sync::Arc;

pub const WOO_KEY: &str = "ck_0123456789abcdef0123456789abcdef01234567";
pub const WOO_SECRET: &str = "cs_76543210fedcba9876543210fedcba9876543210";

pub struct WooEnv {
    pub sim: Arc<WooSim>,
    pub app: TestApp,
}

/// The config of program `acme`'s WooCommerce connection to a simulator at `url`.
pub fn woo_config(url: &str) -> String {
    format!(
        "[programs.acme.woocommerce]\nconsumer_key = \"{WOO_KEY}\"\nconsumer_secret = \"{WOO_SECRET}\"\nbase_url = \"{url}\"\nrate_per_second = 500\n"
    )
}

impl WooEnv {
    /// A simulator at UTC-5 and a daemon (`worker`: run the background worker) with `extra` config.
    pub async fn start(extra: &str, worker: bool) -> Self {
        let sim = WooSim::new(WOO_KEY, WOO_SECRET);
        sim.set_gmt_offset(-5.0);
        let addr = coupond::simulators::serve(sim.router(), 0)
            .await
            .expect("sim");
        let cfg = format!("{FAST_SYNC}\n{}", woo_config(&format!("http://{addr}")));
        let app = TestApp::spawn_layers(&[&cfg, extra], worker).await;
        Self { sim, app }
    }

    fn meta(c: &Value, key: &str) -> Option<String> {
        c["meta_data"]
            .as_array()?
            .iter()
            .find(|m| m["key"] == key)
            .and_then(|m| m["value"].as_str().map(str::to_owned))
    }

    /// Published WooCommerce coupons carrying our marker for `uuid`.
    pub fn live_of(&self, uuid: &str) -> Vec<Value> {
        self.of(uuid, "publish")
    }

    /// WooCommerce coupons of `uuid` with this status (`publish` or `trash`).
    pub fn of(&self, uuid: &str, status: &str) -> Vec<Value> {
        self.sim
            .coupons()
            .into_iter()
            .filter(|c| {
                c["status"] == status && Self::meta(c, "_coupond_coupon").as_deref() == Some(uuid)
            })
            .collect()
    }

    pub fn meta_of(c: &Value, key: &str) -> Option<String> {
        Self::meta(c, key)
    }

    pub async fn drain(&self) {
        self.app.engine.drain().await.expect("drain");
    }
}
