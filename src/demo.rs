//! `--demo`: embedded defaults, a throw-away store, one program with a generated key.

use rand::Rng;
use std::path::PathBuf;

/// The demo's extra configuration, the key it generated, and its provider simulators.
pub struct Demo {
    pub overlay: String,
    pub api_key: String,
    pub store_dir: PathBuf,
    pub stripe_url: String,
}

const DEMO_STRIPE_KEY: &str = "sk_test_demo_simulator";

impl Demo {
    /// Starts the provider simulators (on loopback) and prepares the configuration.
    pub async fn prepare() -> std::io::Result<Self> {
        let stripe = crate::simulators::stripe::StripeSim::new(DEMO_STRIPE_KEY);
        let stripe_url = format!(
            "http://{}",
            crate::simulators::serve(stripe.router(), 0).await?
        );
        let mut rng = rand::rng();
        let api_key: String = (0..32)
            .map(|_| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[rng.random_range(0..36)]))
            .collect();
        let api_key = format!("demo_{api_key}");
        let store_dir = std::env::temp_dir().join(format!("coupond-demo-{}", std::process::id()));
        std::fs::create_dir_all(&store_dir)?;
        let overlay = format!(
            "[store]\npath = {:?}\n\n[programs.demo]\napi_keys = [{api_key:?}]\ncurrency = \"USD\"\n\n\
             [programs.demo.stripe]\nsecret_key = {DEMO_STRIPE_KEY:?}\nbase_url = {stripe_url:?}\n",
            store_dir.join("coupond.db")
        );
        Ok(Self {
            overlay,
            api_key,
            store_dir,
            stripe_url,
        })
    }

    /// What the demo prints once it listens.
    pub fn banner(&self, addr: std::net::SocketAddr) -> String {
        let base = format!("http://{addr}");
        let k = &self.api_key;
        format!(
            "\ncoupond demo is running on {base} (store: {store})\n\
             API key of program \"demo\": {k}\n\n\
             Stripe is connected to a built-in Stripe simulator at {stripe} (no account needed).\n\n\
             Try:\n\
             curl -s -X POST {base}/v1/coupons -H 'Authorization: Bearer {k}' -H 'Content-Type: application/json' \\\n  \
             -d '{{\"uuid_code\":\"WELCOME\",\"coupon_discount_type\":\"percent\",\"coupon_discount_amount\":25,\"coupon_duration_type\":\"once\",\"promotion_codes\":[{{\"code\":\"WELCOME25\"}}],\"sync\":{{\"provider\":\"stripe\"}}}}'\n\
             curl -s {stripe}/_sim/state            # what the simulated Stripe now holds\n\
             curl -s {base}/v1/sync/coupons/WELCOME -H 'Authorization: Bearer {k}'\n\
             curl -s {base}/v1/coupons/WELCOME -H 'Authorization: Bearer {k}'\n\
             curl -s {base}/v1/promotion-codes -H 'Authorization: Bearer {k}'\n\
             curl -s {base}/openapi.json\n\n\
             Stop with Ctrl-C; the store is thrown away with {dir}.\n",
            store = self.store_dir.join("coupond.db").display(),
            stripe = self.stripe_url,
            dir = self.store_dir.display(),
        )
    }
}
