//! A write acknowledged with 2xx survives `kill -9` of the daemon right after.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let mut acknowledged = Vec::new();
    for round in 0..3 {
        let mut d = Daemon::start(dir.path(), &[]).await;
        for i in 0..5 {
            let uuid = format!("r{round}_{i}");
            let mut body = coupon(&uuid);
            body["promotion_codes"] = json!([{"code": format!("C{round}x{i}")}]);
            let r = client
                .post(format!("{}/v1/coupons", d.base))
                .bearer_auth(KEY)
                .json(&body)
                .send()
                .await
                .unwrap();
            if r.status() == StatusCode::CREATED {
                acknowledged.push(uuid);
            }
        }
        d.kill9();
        let _ = d.child.wait().await;
    }
    assert_eq!(acknowledged.len(), 15);
    let d = Daemon::start(dir.path(), &[]).await;
    for uuid in &acknowledged {
        let r = client
            .get(format!("{}/v1/coupons/{uuid}", d.base))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{uuid} lost after kill -9");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(
            body["data"]["promotion_codes"]["data"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }
}

/// The README's first command: `coupond --demo` starts with no config, prints a key, and a coupon
/// created with `sync.provider` stripe, shopify or woocommerce is synced to its built-in simulator.
#[tokio::test]
async fn demo_runs_without_configuration_and_syncs() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_coupond"))
        .arg("--demo")
        .env("COUPOND_SERVER__LISTEN", "127.0.0.1:0")
        .env_remove("COUPOND_CONFIG")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut base, mut key, mut classic) = (None, None, None);
    while base.is_none() || key.is_none() || classic.is_none() {
        let line = tokio::time::timeout(std::time::Duration::from_secs(30), lines.next_line())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let Some(rest) = line.strip_prefix("coupond demo is running on ") {
            base = rest.split_whitespace().next().map(str::to_owned);
        }
        if let Some(k) = line.strip_prefix("API key of program \"demo\": ") {
            key = Some(k.trim().to_owned());
        }
        if line.starts_with("API key of program \"classic\"") {
            classic = line.rsplit(": ").next().map(|k| k.trim().to_owned());
        }
    }
    let (base, key, classic) = (base.unwrap(), key.unwrap(), classic.unwrap());
    for (provider, name, key) in [
        ("stripe", "Stripe", &key),
        ("shopify", "Shopify", &key),
        ("woocommerce", "WooCommerce", &key),
        ("paddle", "Paddle", &key),
        ("paddle", "Paddle", &classic),
    ] {
        let mut c = coupon(&format!("WELCOME-{provider}"));
        c.as_object_mut().unwrap().remove("redemption_times_status");
        c.as_object_mut().unwrap().remove("redemption_times_value");
        c["coupon_duration_type"] = json!("once");
        c.as_object_mut().unwrap().remove("coupon_duration_value");
        c["promotion_codes"] = json!([{"code": format!("HELLO{}", provider.to_uppercase())}]);
        c["sync"] = json!({"provider": provider});
        let r: serde_json::Value = reqwest::Client::new()
            .post(format!("{base}/v1/coupons"))
            .bearer_auth(key)
            .json(&c)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(r["synchronization_successful"], true, "{r}");
        assert_eq!(
            r["synchronization_message"],
            format!("The coupon was successfully created in {name}.")
        );
    }
    child.start_kill().unwrap();
}
