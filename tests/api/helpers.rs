//! Test helpers: an in-process daemon on port 0 with a fresh SQLite per test, and the real
//! binary as a child process for crash tests.

use coupond::app::App;
use coupond::config::{Settings, Sources};
use reqwest::StatusCode;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;

pub const KEY: &str = "acme_key_0123456789abcdef";
pub const OTHER_KEY: &str = "other_key_0123456789abcdef";
pub const DISABLED_KEY: &str = "acme_disabled_0123456789";

/// Two programs: `acme` (Stripe and Shopify connected) and `other` (nothing connected).
pub fn base_config(db: &Path) -> String {
    format!(
        r#"
[store]
path = {db:?}
[log]
filter = "warn"
[programs.acme]
api_keys = ["{KEY}"]
disabled_api_keys = ["{DISABLED_KEY}"]
currency = "USD"
[programs.acme.stripe]
secret_key = "sk_test_acme_secret_value"
base_url = "http://127.0.0.1:9"
[programs.acme.shopify]
base_url = "http://127.0.0.1:9"
access_token = "shpat_acme_secret_value"
[programs.other]
api_keys = ["{OTHER_KEY}"]
"#
    )
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub engine: std::sync::Arc<coupond::sync::Engine>,
    pub store: coupond::store::Store,
    pub mirrors: std::sync::Arc<Vec<std::sync::Arc<coupond::mirror::Mirror>>>,
    /// Holds the store directory for the test's lifetime.
    pub _dir: TempDir,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with("").await
    }

    /// Starts a daemon with the base config plus `extra` TOML.
    pub async fn spawn_with(extra: &str) -> Self {
        Self::spawn_opts(extra, true).await
    }

    /// As `spawn_with`; `worker: false` leaves the sync queue to `engine.run_once()`.
    pub async fn spawn_opts(extra: &str, worker: bool) -> Self {
        Self::spawn_layers(&[extra], worker).await
    }

    /// The base config, then each of `layers` as its own configuration layer.
    pub async fn spawn_layers(layers: &[&str], worker: bool) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut overlays = vec![base_config(&dir.path().join("coupond.db"))];
        overlays.extend(layers.iter().map(|l| l.to_string()));
        let settings = Settings::load(&Sources {
            overlays,
            env: Some(BTreeMap::new()),
            file: None,
        })
        .expect("config");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let mut app = App::build(settings, Some(listener)).await.expect("build");
        if !worker {
            app = app.without_worker();
        }
        let base = format!("http://{}", app.local_addr());
        let (engine, store, mirrors) = (
            app.engine.clone(),
            app.state.store.clone(),
            app.state.mirrors.clone(),
        );
        tokio::spawn(app.run(std::future::pending()));
        Self {
            base,
            client: reqwest::Client::new(),
            engine,
            store,
            mirrors,
            _dir: dir,
        }
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        key: Option<&str>,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let text = resp.text().await.expect("body");
        let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, json)
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::POST, path, Some(KEY), Some(&body))
            .await
    }
    pub async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::PUT, path, Some(KEY), Some(&body))
            .await
    }
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::GET, path, Some(KEY), None).await
    }
    pub async fn delete(&self, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.call(reqwest::Method::DELETE, path, Some(KEY), body.as_ref())
            .await
    }

    /// Raw bytes with a content type, for malformed input.
    pub async fn raw(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Vec<u8>,
    ) -> (StatusCode, String) {
        let resp = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(KEY)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request");
        let s = resp.status();
        (s, resp.text().await.unwrap_or_default())
    }
}

/// A percent coupon body with the given `uuid_code`.
pub fn coupon(uuid: &str) -> Value {
    serde_json::json!({
        "uuid_code": uuid,
        "coupon_discount_type": "percent",
        "coupon_discount_amount": 25,
        "coupon_duration_type": "months",
        "coupon_duration_value": 11,
        "redemption_times_status": true,
        "redemption_times_value": 24
    })
}

/// The keys of a JSON object, in order.
pub fn keys(v: &Value) -> Vec<&str> {
    v.as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default()
}

/// Drops the timestamp fields (anywhere) so two bodies can be compared field by field.
pub fn without_times(v: &Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.iter()
                .filter(|(k, _)| !matches!(k.as_str(), "created_at" | "updated_at" | "redeemed_at"))
                .map(|(k, v)| (k.clone(), without_times(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(without_times).collect()),
        other => other.clone(),
    }
}

/// The real binary as a child process.
pub struct Daemon {
    pub child: tokio::process::Child,
    pub base: String,
    /// Every line the daemon wrote (stdout and stderr).
    pub lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Daemon {
    /// Starts `coupond --config <dir>/config.toml` on a free port and waits until it serves.
    pub async fn start(dir: &Path, extra_env: &[(&str, &str)]) -> Self {
        let config = dir.join("config.toml");
        if !config.exists() {
            let text = format!(
                "{}\n[server]\nlisten = \"127.0.0.1:0\"\n",
                base_config(&dir.join("coupond.db"))
            );
            std::fs::write(
                &config,
                text.replace(
                    "[log]\nfilter = \"warn\"",
                    "[log]\nfilter = \"info\"\nformat = \"json\"",
                ),
            )
            .unwrap();
        }
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_coupond"));
        cmd.arg("--config")
            .arg(&config)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn coupond");
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("stderr");
        let seen_err = seen.clone();
        tokio::spawn(async move {
            let mut l = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = l.next_line().await {
                seen_err.lock().unwrap().push(line);
            }
        });
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let seen_out = seen.clone();
        let addr = tokio::time::timeout(Duration::from_secs(30), async {
            while let Ok(Some(line)) = lines.next_line().await {
                seen_out.lock().unwrap().push(line.clone());
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && v["message"] == "coupond is serving"
                {
                    return v["addr"].as_str().map(str::to_owned);
                }
            }
            None
        })
        .await
        .expect("daemon start timed out")
        .expect("daemon exited before serving");
        // keep draining stdout so the child never blocks on a full pipe
        let seen_rest = seen.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                seen_rest.lock().unwrap().push(line);
            }
        });
        Self {
            child,
            base: format!("http://{addr}"),
            lines: seen,
        }
    }

    /// `POST /v1/coupons` as program acme; the answer's body.
    pub async fn post_coupon(&self, body: &Value) -> Value {
        reqwest::Client::new()
            .post(format!("{}/v1/coupons", self.base))
            .bearer_auth(KEY)
            .json(body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub fn kill9(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// Waits until nothing is pending; nothing may be dead.
pub async fn wait_synced(app: &TestApp, secs: u64) {
    wait_outbox_empty(&app.store, secs).await
}

/// Waits until nothing is pending in this store (of a daemon running elsewhere); nothing may be
/// dead.
pub async fn wait_outbox_empty(store: &coupond::store::Store, secs: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let stats = store.outbox_stats(chrono::Utc::now()).await.unwrap();
        if stats.depth == 0 {
            assert_eq!(stats.dead, 0, "{stats:?}");
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not synced in time: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Without a worker: drains until nothing is pending, waiting for retries that are not due yet.
pub async fn drain_until_synced(app: &TestApp, secs: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        app.engine.drain().await.expect("drain");
        let stats = app.store.outbox_stats(chrono::Utc::now()).await.unwrap();
        if stats.depth == 0 {
            assert_eq!(stats.dead, 0, "{stats:?}");
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not synced in time: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
