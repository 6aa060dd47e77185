//! `--demo`: embedded defaults, a throw-away store, one program with a generated key.

use rand::Rng;
use std::path::PathBuf;

/// The demo's extra configuration and the key it generated.
pub struct Demo {
    pub overlay: String,
    pub api_key: String,
    pub store_dir: PathBuf,
}

impl Demo {
    pub fn prepare() -> std::io::Result<Self> {
        let mut rng = rand::rng();
        let api_key: String = (0..32)
            .map(|_| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[rng.random_range(0..36)]))
            .collect();
        let api_key = format!("demo_{api_key}");
        let store_dir = std::env::temp_dir().join(format!("coupond-demo-{}", std::process::id()));
        std::fs::create_dir_all(&store_dir)?;
        let overlay = format!(
            "[store]\npath = {:?}\n\n[programs.demo]\napi_keys = [{api_key:?}]\ncurrency = \"USD\"\n",
            store_dir.join("coupond.db")
        );
        Ok(Self {
            overlay,
            api_key,
            store_dir,
        })
    }

    /// What the demo prints once it listens.
    pub fn banner(&self, addr: std::net::SocketAddr) -> String {
        let base = format!("http://{addr}");
        let k = &self.api_key;
        format!(
            "\ncoupond demo is running on {base} (store: {store})\n\
             API key of program \"demo\": {k}\n\n\
             Try:\n\
             curl -s -X POST {base}/v1/coupons -H 'Authorization: Bearer {k}' -H 'Content-Type: application/json' \\\n  \
             -d '{{\"uuid_code\":\"WELCOME\",\"coupon_discount_type\":\"percent\",\"coupon_discount_amount\":25,\"coupon_duration_type\":\"once\",\"promotion_codes\":[{{\"code\":\"WELCOME25\"}}]}}'\n\
             curl -s {base}/v1/coupons/WELCOME -H 'Authorization: Bearer {k}'\n\
             curl -s {base}/v1/promotion-codes -H 'Authorization: Bearer {k}'\n\
             curl -s {base}/openapi.json\n\n\
             Stop with Ctrl-C; the store is thrown away with {dir}.\n",
            store = self.store_dir.join("coupond.db").display(),
            dir = self.store_dir.display(),
        )
    }
}
