//! Crash safety with the real binary: `kill -9` at random points during bursts of coupon changes,
//! restart, 20 times; at the end every coupon is synced at its latest revision and the Stripe
//! simulator holds no duplicate objects.

use crate::helpers::*;
use crate::stripe_env::STRIPE_KEY;
use coupond::simulators::stripe::StripeSim;
use coupond::store::{Store, StoreOptions};
use rand::Rng;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

pub fn write_config(dir: &Path, sim_url: &str, extra: &str) {
    let base = base_config(&dir.join("coupond.db"))
        .replace(
            "secret_key = \"sk_test_acme_secret_value\"\nbase_url = \"http://127.0.0.1:9\"",
            &format!(
                "secret_key = \"{STRIPE_KEY}\"\nbase_url = \"{sim_url}\"\nrate_per_second = 500"
            ),
        )
        .replace(
            "[log]\nfilter = \"warn\"",
            "[log]\nfilter = \"info\"\nformat = \"json\"",
        );
    let text = format!(
        "{base}\n[server]\nlisten = \"127.0.0.1:0\"\n[sync]\nretry_schedule = [\"10ms\", \"20ms\", \"40ms\", \"80ms\", \"100ms\", \"100ms\", \"100ms\", \"100ms\", \"100ms\", \"100ms\"]\nmin_throttle_delay_secs = 0\npoll_interval_ms = 20\nlease_secs = 2\ninline_deadline_ms = 300\n{extra}"
    );
    std::fs::write(dir.join("config.toml"), text).unwrap();
}

/// A Stripe simulator, a config pointing at it (plus `extra`), and the real daemon started on it.
pub async fn stripe_daemon(
    extra: &str,
    env: &[(&str, &str)],
) -> (std::sync::Arc<StripeSim>, tempfile::TempDir, Daemon) {
    let sim = StripeSim::new(STRIPE_KEY);
    let sim_url = format!(
        "http://{}",
        coupond::simulators::serve(sim.router(), 0).await.unwrap()
    );
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &sim_url, extra);
    let d = Daemon::start(dir.path(), env).await;
    (sim, dir, d)
}

/// One random change; returns whether the daemon acknowledged it.
async fn change(
    client: &reqwest::Client,
    base: &str,
    n: usize,
    rng_seed: u64,
    provider: &str,
) -> bool {
    let mut rng = rand::rngs::StdRng::seed_from_u64(rng_seed);
    let uuid = format!("K{}", rng.random_range(0..12));
    let req = match rng.random_range(0..5) {
        0 | 1 => {
            let mut c = coupon(&uuid);
            c["sync"] = json!({"provider": provider.trim_end_matches("_classic").trim_end_matches("_billing")});
            if provider != "stripe" {
                c["coupon_duration_type"] = json!("once");
                c.as_object_mut().unwrap().remove("coupon_duration_value");
            }
            // Paddle codes: letters and digits (Billing), at least 5 characters (Classic)
            c["promotion_codes"] = if provider.starts_with("paddle") {
                json!([{"code": format!("{uuid}CODEA")}, {"code": format!("{uuid}CODEB")}])
            } else {
                json!([{"code": format!("{uuid}-A")}, {"code": format!("{uuid}-B")}])
            };
            client.post(format!("{base}/v1/coupons")).json(&c)
        }
        2 => client
            .put(format!("{base}/v1/coupons"))
            .json(&json!({"uuid_code": uuid, "coupon_discount_amount": rng.random_range(1..90)})),
        3 => client
            .put(format!("{base}/v1/coupons"))
            .json(&json!({"uuid_code": uuid, "name": format!("n{n}")})),
        _ => client.post(format!("{base}/v1/promotion-codes")).json(
            &json!({"coupon_uuid": uuid, "code": if provider.starts_with("paddle") {
                format!("{uuid}X{n}CODE")
            } else {
                format!("{uuid}-X{n}")
            }}),
        ),
    };
    matches!(req.bearer_auth(KEY).timeout(Duration::from_secs(5)).send().await, Ok(r) if r.status().is_success())
}

use rand::SeedableRng;

/// `rounds` times: start the daemon, send 10 random changes for `provider`, `kill -9` it at a
/// random moment. Returns how many changes were sent.
pub async fn bursts(dir: &Path, rounds: usize, provider: &str) -> usize {
    let client = reqwest::Client::new();
    let mut rng = rand::rng();
    let mut n = 0usize;
    let mut acknowledged = 0;
    for _round in 0..rounds {
        let mut d = Daemon::start(dir, &[]).await;
        let mut tasks = Vec::new();
        for _ in 0..10 {
            n += 1;
            let (c, b, seed) = (client.clone(), d.base.clone(), rng.random::<u64>());
            let p = provider.to_owned();
            tasks.push(tokio::spawn(
                async move { change(&c, &b, n, seed, &p).await },
            ));
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..250))).await;
        d.kill9();
        let _ = d.child.wait().await;
        for t in tasks {
            acknowledged += usize::from(t.await.unwrap_or(false));
        }
    }
    eprintln!("acknowledged {acknowledged} of {n}");
    assert!(acknowledged > 0);
    n
}

/// Restarts the daemon and waits until nothing is pending (nothing may be dead); returns the
/// daemon and every coupon as the API lists it.
pub async fn converge(dir: &Path) -> (Daemon, Vec<Value>) {
    let client = reqwest::Client::new();
    let d = Daemon::start(dir, &[]).await;
    let store = Store::open(&dir.join("coupond.db"), &StoreOptions::default())
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let s = store.outbox_stats(chrono::Utc::now()).await.unwrap();
        if s.depth == 0 {
            if s.dead > 0 {
                let dead = client
                    .get(format!("{}/v1/sync/failed?status=dead", d.base))
                    .bearer_auth(KEY)
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap();
                panic!("nothing may die: {s:?}: {dead}");
            }
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "did not converge: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let list: Value = client
        .get(format!("{}/v1/coupons?limit=250", d.base))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let coupons = list["data"].as_array().unwrap().clone();
    assert!(!coupons.is_empty());
    (d, coupons)
}

/// Every coupon is synced at its latest revision.
pub async fn assert_latest(d: &Daemon, uuid: &str) {
    let r = reqwest::Client::new()
        .get(format!("{}/v1/sync/coupons/{uuid}", d.base))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let h: Value = r.json().await.unwrap();
    let s = &h["data"]["syncs"][0];
    assert_eq!(
        s["synced_revision"], s["desired_revision"],
        "{uuid}: synced at the latest revision"
    );
}

#[tokio::test]
async fn kill_9_during_bursts_converges_without_duplicates() {
    let sim = StripeSim::new(STRIPE_KEY);
    sim.common.set_faults(coupond::simulators::Faults {
        latency: Duration::from_millis(3),
        ..Default::default()
    });
    let sim_url = format!(
        "http://{}",
        coupond::simulators::serve(sim.router(), 0).await.unwrap()
    );
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &sim_url, "");
    let n = bursts(dir.path(), 20, "stripe").await;
    assert_eq!(n, 200);
    let (d, coupons) = converge(dir.path()).await;
    let coupons = &coupons;

    // every coupon: exactly one live Stripe coupon with its latest terms; one active code per code
    let live = sim.coupons();
    assert_eq!(
        live.len(),
        coupons.len(),
        "one live Stripe coupon per coupon, no orphans"
    );
    let codes = sim.promotion_codes();
    let mut active: HashMap<String, usize> = HashMap::new();
    for c in codes.iter().filter(|c| c["active"] == true) {
        *active
            .entry(c["code"].as_str().unwrap().to_ascii_lowercase())
            .or_default() += 1;
    }
    for c in coupons {
        let uuid = c["uuid_code"].as_str().unwrap();
        let theirs: Vec<&Value> = live
            .iter()
            .filter(|x| x["metadata"]["coupond_coupon"] == uuid)
            .collect();
        assert_eq!(theirs.len(), 1, "{uuid}");
        assert_eq!(
            theirs[0]["percent_off"].as_f64(),
            c["coupon_discount_amount"].as_f64(),
            "{uuid}: latest terms"
        );
        assert_eq!(theirs[0]["name"], c["name"], "{uuid}: latest name");
        assert_latest(&d, uuid).await;
        for code in c["promotion_codes"]["data"].as_array().unwrap() {
            let key = code["code"].as_str().unwrap().to_ascii_lowercase();
            assert_eq!(
                active.get(&key).copied(),
                Some(1),
                "{uuid}: exactly one active promotion code {key}"
            );
            let on: Vec<&Value> = codes
                .iter()
                .filter(|x| {
                    x["active"] == true && x["code"].as_str().unwrap().eq_ignore_ascii_case(&key)
                })
                .collect();
            assert_eq!(
                on[0]["promotion"]["coupon"], theirs[0]["id"],
                "{key} is on the current coupon"
            );
        }
    }
    let store_codes: usize = coupons
        .iter()
        .map(|c| c["promotion_codes"]["data"].as_array().unwrap().len())
        .sum();
    assert_eq!(
        active.values().sum::<usize>(),
        store_codes,
        "no extra active codes"
    );
}

/// The same bursts against WooCommerce: every code exactly one published coupon with the latest
/// terms, and nothing else published.
#[tokio::test]
async fn kill_9_converges_on_woocommerce() {
    use crate::woo_env::*;
    let sim = coupond::simulators::woocommerce::WooSim::new(WOO_KEY, WOO_SECRET);
    let url = format!(
        "http://{}",
        coupond::simulators::serve(sim.router(), 0).await.unwrap()
    );
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), "http://127.0.0.1:9", &woo_config(&url));
    bursts(dir.path(), 8, "woocommerce").await;
    let (d, coupons) = converge(dir.path()).await;
    let published: Vec<Value> = sim
        .coupons()
        .into_iter()
        .filter(|c| c["status"] == "publish")
        .collect();
    let mut want = 0;
    for c in &coupons {
        let uuid = c["uuid_code"].as_str().unwrap();
        assert_latest(&d, uuid).await;
        for code in c["promotion_codes"]["data"].as_array().unwrap() {
            want += 1;
            let key = code["code"].as_str().unwrap().to_lowercase();
            let on: Vec<&Value> = published
                .iter()
                .filter(|x| x["code"] == key.as_str())
                .collect();
            assert_eq!(
                on.len(),
                1,
                "{uuid}: exactly one published coupon for {key}"
            );
            assert_eq!(
                on[0]["amount"].as_str().unwrap().parse::<f64>().unwrap(),
                c["coupon_discount_amount"].as_f64().unwrap(),
                "{key}: latest terms"
            );
            assert_eq!(on[0]["description"], c["name"], "{key}: latest name");
        }
    }
    assert_eq!(published.len(), want, "nothing else published");
}

/// The same bursts against Shopify: every code exactly one discount with the latest terms.
#[tokio::test]
async fn kill_9_converges_on_shopify() {
    use crate::shopify_env::*;
    let sim = coupond::simulators::shopify::ShopifySim::new(SHOPIFY_TOKEN);
    let url = format!(
        "http://{}",
        coupond::simulators::serve(sim.router(), 0).await.unwrap()
    );
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), "http://127.0.0.1:9", "");
    let cfg = dir.path().join("config.toml");
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "[programs.acme.shopify]\nbase_url = \"http://127.0.0.1:9\"\naccess_token = \"shpat_acme_secret_value\"",
        &format!("[programs.acme.shopify]\naccess_token = \"{SHOPIFY_TOKEN}\"\nbase_url = \"{url}\"\nrate_per_second = 500"),
    );
    assert!(text.contains(&url));
    std::fs::write(&cfg, text).unwrap();
    bursts(dir.path(), 8, "shopify").await;
    let (d, coupons) = converge(dir.path()).await;
    let mut want = 0;
    for c in &coupons {
        let uuid = c["uuid_code"].as_str().unwrap();
        assert_latest(&d, uuid).await;
        for code in c["promotion_codes"]["data"].as_array().unwrap() {
            want += 1;
            let key = code["code"].as_str().unwrap();
            let node = sim
                .by_code(key)
                .unwrap_or_else(|| panic!("{uuid}: no discount for {key}"));
            let b = &node["codeDiscount"];
            assert_eq!(
                (b["customerGets"]["value"]["percentage"].as_f64().unwrap() * 100.0).round(),
                c["coupon_discount_amount"].as_f64().unwrap(),
                "{key}: latest terms"
            );
            assert_eq!(b["title"], c["name"], "{key}: latest name");
        }
    }
    assert_eq!(sim.discounts().len(), want, "no duplicates, no orphans");
}

/// The same bursts against Paddle Billing: every code exactly one active discount with the latest
/// terms, one group per coupon, nothing else active.
#[tokio::test]
async fn kill_9_converges_on_paddle_billing() {
    use crate::paddle_env::*;
    let sim = coupond::simulators::paddle_billing::PaddleBillingSim::new(PADDLE_KEY);
    let url = format!(
        "http://{}",
        coupond::simulators::serve(sim.router(), 0).await.unwrap()
    );
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), "http://127.0.0.1:9", &billing_config(&url));
    bursts(dir.path(), 8, "paddle_billing").await;
    let (d, coupons) = converge(dir.path()).await;
    let active: Vec<Value> = sim
        .discounts()
        .into_iter()
        .filter(|x| x["status"] == "active")
        .collect();
    let mut want = 0;
    for c in &coupons {
        let uuid = c["uuid_code"].as_str().unwrap();
        assert_latest(&d, uuid).await;
        for code in c["promotion_codes"]["data"].as_array().unwrap() {
            want += 1;
            let key = code["code"].as_str().unwrap();
            let on: Vec<&Value> = active
                .iter()
                .filter(|x| x["code"].as_str().unwrap().eq_ignore_ascii_case(key))
                .collect();
            assert_eq!(on.len(), 1, "{uuid}: one active discount for {key}");
            assert_eq!(
                on[0]["amount"].as_str().unwrap().parse::<f64>().unwrap(),
                c["coupon_discount_amount"].as_f64().unwrap(),
                "{key}: latest terms"
            );
        }
    }
    assert_eq!(active.len(), want, "nothing else active");
    let names: Vec<String> = sim
        .groups()
        .iter()
        .map(|g| g["name"].as_str().unwrap().to_owned())
        .collect();
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), names.len(), "one group per coupon: {names:?}");
}

/// The same bursts against Paddle Classic: every code exactly one Classic coupon with the latest
/// terms in its coupon's group, nothing else.
#[tokio::test]
async fn kill_9_converges_on_paddle_classic() {
    use crate::paddle_env::*;
    let sim = coupond::simulators::paddle_classic::PaddleClassicSim::new(VENDOR_ID, VENDOR_AUTH);
    let url = format!(
        "http://{}",
        coupond::simulators::serve(sim.router(), 0).await.unwrap()
    );
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), "http://127.0.0.1:9", &classic_config(&url));
    bursts(dir.path(), 8, "paddle_classic").await;
    let (d, coupons) = converge(dir.path()).await;
    let held = sim.coupons();
    let mut want = 0;
    for c in &coupons {
        let uuid = c["uuid_code"].as_str().unwrap();
        assert_latest(&d, uuid).await;
        let group = coupond::providers::paddle_classic::mapping::group_name("acme", uuid);
        for code in c["promotion_codes"]["data"].as_array().unwrap() {
            want += 1;
            let key = code["code"].as_str().unwrap();
            let on: Vec<&Value> = held
                .iter()
                .filter(|x| x["coupon_code"].as_str().unwrap().eq_ignore_ascii_case(key))
                .collect();
            assert_eq!(on.len(), 1, "{uuid}: one Classic coupon for {key}");
            assert_eq!(
                on[0]["group"],
                group.as_str(),
                "{key}: in its coupon's group"
            );
            assert_eq!(
                on[0]["discount_amount"]
                    .as_str()
                    .unwrap()
                    .parse::<f64>()
                    .unwrap(),
                c["coupon_discount_amount"].as_f64().unwrap(),
                "{key}: latest terms"
            );
        }
    }
    assert_eq!(held.len(), want, "nothing else held");
}
