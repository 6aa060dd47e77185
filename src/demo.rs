//! `--demo`: embedded defaults, a throw-away store, one program with a generated key.

use rand::Rng;
use std::path::PathBuf;

/// The demo's extra configuration, the key it generated, and its provider simulators.
pub struct Demo {
    pub overlay: String,
    pub api_key: String,
    pub store_dir: PathBuf,
    pub stripe_url: String,
    pub shopify_url: String,
    pub woocommerce_url: String,
    pub paddle_url: String,
    pub paddle_classic_url: String,
    /// The key of program `classic` (Paddle Classic; a program has one Paddle flavour).
    pub classic_key: String,
}

const DEMO_STRIPE_KEY: &str = "sk_test_demo_simulator";
const DEMO_SHOPIFY_TOKEN: &str = "shpat_demo_simulator";
const DEMO_WOO_KEY: &str = "ck_demo_simulator";
const DEMO_WOO_SECRET: &str = "cs_demo_simulator";
const DEMO_PADDLE_KEY: &str = "pdl_sdbx_apikey_demo_simulator";
const DEMO_VENDOR_ID: u64 = 1234;
const DEMO_VENDOR_AUTH: &str = "0123456789abcdef";

impl Demo {
    /// Starts the provider simulators (on loopback) and prepares the configuration.
    pub async fn prepare() -> std::io::Result<Self> {
        let stripe = crate::simulators::stripe::StripeSim::new(DEMO_STRIPE_KEY);
        let stripe_url = format!(
            "http://{}",
            crate::simulators::serve(stripe.router(), 0).await?
        );
        let shopify = crate::simulators::shopify::ShopifySim::new(DEMO_SHOPIFY_TOKEN);
        let shopify_url = format!(
            "http://{}",
            crate::simulators::serve(shopify.router(), 0).await?
        );
        let woo = crate::simulators::woocommerce::WooSim::new(DEMO_WOO_KEY, DEMO_WOO_SECRET);
        let woocommerce_url = format!(
            "http://{}",
            crate::simulators::serve(woo.router(), 0).await?
        );
        let paddle = crate::simulators::paddle_billing::PaddleBillingSim::new(DEMO_PADDLE_KEY);
        let paddle_url = format!(
            "http://{}",
            crate::simulators::serve(paddle.router(), 0).await?
        );
        let classic = crate::simulators::paddle_classic::PaddleClassicSim::new(
            DEMO_VENDOR_ID,
            DEMO_VENDOR_AUTH,
        );
        let paddle_classic_url = format!(
            "http://{}",
            crate::simulators::serve(classic.router(), 0).await?
        );
        let mut rng = rand::rng();
        let mut key = |prefix: &str| {
            let k: String = (0..32)
                .map(|_| {
                    char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[rng.random_range(0..36)])
                })
                .collect();
            format!("{prefix}_{k}")
        };
        let api_key = key("demo");
        let classic_key = key("classic");
        let store_dir = std::env::temp_dir().join(format!("coupond-demo-{}", std::process::id()));
        std::fs::create_dir_all(&store_dir)?;
        let overlay = format!(
            "[store]\npath = {:?}\n\n[programs.demo]\napi_keys = [{api_key:?}]\ncurrency = \"USD\"\n\n\
             [programs.demo.stripe]\nsecret_key = {DEMO_STRIPE_KEY:?}\nbase_url = {stripe_url:?}\n\n\
             [programs.demo.shopify]\naccess_token = {DEMO_SHOPIFY_TOKEN:?}\nbase_url = {shopify_url:?}\n\n\
             [programs.demo.woocommerce]\nconsumer_key = {DEMO_WOO_KEY:?}\nconsumer_secret = {DEMO_WOO_SECRET:?}\nbase_url = {woocommerce_url:?}\n\n\
             [programs.demo.paddle]\nflavour = \"billing\"\napi_key = {DEMO_PADDLE_KEY:?}\nbase_url = {paddle_url:?}\n\n\
             [programs.classic]\napi_keys = [{classic_key:?}]\ncurrency = \"USD\"\n\n\
             [programs.classic.paddle]\nflavour = \"classic\"\nvendor_id = {DEMO_VENDOR_ID}\nvendor_auth_code = {DEMO_VENDOR_AUTH:?}\nbase_url = {paddle_classic_url:?}\nlookup_product_id = 1001\n",
            store_dir.join("coupond.db")
        );
        Ok(Self {
            overlay,
            api_key,
            store_dir,
            stripe_url,
            shopify_url,
            woocommerce_url,
            paddle_url,
            paddle_classic_url,
            classic_key,
        })
    }

    /// What the demo prints once it listens.
    pub fn banner(&self, addr: std::net::SocketAddr) -> String {
        let base = format!("http://{addr}");
        let k = &self.api_key;
        format!(
            "\ncoupond demo is running on {base} (store: {store})\n\
             API key of program \"demo\": {k}\n\n\
             Built-in simulators (no account needed) are connected:\n  \
             stripe       {stripe}\n  \
             shopify      {shopify}\n  \
             woocommerce  {woo}\n  \
             paddle       {paddle} (Paddle Billing)\n\
             Pick one with \"sync\":{{\"provider\":\"stripe\"}} (or \"shopify\", \"woocommerce\", \"paddle\").\n\
             API key of program \"classic\" (\"paddle\" is Paddle Classic at {classic}): {ck}\n\n\
             Try:\n\
             curl -s -X POST {base}/v1/coupons -H 'Authorization: Bearer {k}' -H 'Content-Type: application/json' \\\n  \
             -d '{{\"uuid_code\":\"WELCOME\",\"coupon_discount_type\":\"percent\",\"coupon_discount_amount\":25,\"coupon_duration_type\":\"once\",\"promotion_codes\":[{{\"code\":\"WELCOME25\"}}],\"sync\":{{\"provider\":\"stripe\"}}}}'\n\
             curl -s {stripe}/_sim/state            # what the simulated Stripe now holds (also {shopify}/_sim/state, {woo}/_sim/state)\n\
             curl -s {base}/v1/sync/coupons/WELCOME -H 'Authorization: Bearer {k}'\n\
             curl -s {base}/v1/coupons/WELCOME -H 'Authorization: Bearer {k}'\n\
             curl -s {base}/v1/promotion-codes -H 'Authorization: Bearer {k}'\n\
             curl -s {base}/openapi.json\n\n\
             Stop with Ctrl-C; the store is thrown away with {dir}.\n",
            store = self.store_dir.join("coupond.db").display(),
            stripe = self.stripe_url,
            shopify = self.shopify_url,
            woo = self.woocommerce_url,
            paddle = self.paddle_url,
            classic = self.paddle_classic_url,
            ck = self.classic_key,
            dir = self.store_dir.display(),
        )
    }
}
