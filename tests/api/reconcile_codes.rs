//! `coupond --reconcile` against the Shopify, WooCommerce, Paddle Billing and Paddle Classic
//! simulators, with the daemon running: every kind of drift injected is reported exactly (and
//! nothing else), repaired, and a second dry run is clean. Redemption counts are read back, and a
//! reconcile killed with -9 finishes when run again.

use crate::crash::write_config;
use crate::helpers::*;
use serde_json::{Value, json};
use std::path::Path;

async fn reconcile(dir: &Path, provider: &str, args: &[&str]) -> (i32, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_coupond"))
        .arg("--config")
        .arg(dir.join("config.toml"))
        .arg("--reconcile")
        .args(["--provider", provider])
        .args(args)
        .output()
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// A daemon on `provider_config` (which replaces the base config's Shopify section).
async fn daemon(provider_config: &str) -> (tempfile::TempDir, Daemon) {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), "http://127.0.0.1:9", "");
    let cfg = dir.path().join("config.toml");
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "[programs.acme.shopify]\nbase_url = \"http://127.0.0.1:9\"\naccess_token = \"shpat_acme_secret_value\"",
        provider_config.trim_end(),
    );
    std::fs::write(&cfg, text).unwrap();
    let d = Daemon::start(dir.path(), &[]).await;
    (dir, d)
}

async fn create(d: &Daemon, provider: &str, uuid: &str, codes: &[&str]) {
    let mut c = coupon(uuid);
    c["coupon_duration_type"] = json!("once");
    c.as_object_mut().unwrap().remove("coupon_duration_value");
    c["sync"] = json!({"provider": provider});
    c["promotion_codes"] = Value::Array(codes.iter().map(|x| json!({"code": x})).collect());
    let r = d.post_coupon(&c).await;
    assert_eq!(r["synchronization_successful"], true, "{r}");
}

/// (class, remote id, "field:ours->theirs"...) of a JSON report, sorted.
fn findings(out: &str) -> (Value, Vec<(String, String, Vec<String>)>) {
    let v: Value = serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let conn = v["connections"][0].clone();
    let mut f: Vec<(String, String, Vec<String>)> = conn["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["class"].as_str().unwrap().into(),
                f["remote_id"].as_str().unwrap().into(),
                f["fields"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| {
                        format!(
                            "{}:{}->{}",
                            x["field"].as_str().unwrap(),
                            x["ours"].as_str().unwrap(),
                            x["theirs"].as_str().unwrap()
                        )
                    })
                    .collect(),
            )
        })
        .collect();
    f.sort();
    (conn["counts"].clone(), f)
}

/// Nothing to report before any drift.
async fn clean(dir: &Path, provider: &str) {
    let (code, out) = reconcile(dir, provider, &["--dry-run"]).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("0 drifted, 0 missing, 0 orphan") && out.contains("all in sync"),
        "{out}"
    );
}

/// After injecting: the dry run reports exactly `want` (exit 1), repair gives exit 0, and a second
/// dry run is clean.
async fn exact_then_repaired(
    dir: &Path,
    provider: &str,
    counts: Value,
    want: Vec<(&str, String, Vec<&str>)>,
) {
    let (code, out) = reconcile(dir, provider, &["--dry-run", "--format", "json"]).await;
    assert_eq!(code, 1, "{out}");
    let (got_counts, got) = findings(&out);
    assert_eq!(got_counts, counts, "{out}");
    let mut want: Vec<(String, String, Vec<String>)> = want
        .into_iter()
        .map(|(c, id, f)| (c.to_owned(), id, f.into_iter().map(str::to_owned).collect()))
        .collect();
    want.sort();
    assert_eq!(got, want, "{out}");
    let (code, out) = reconcile(dir, provider, &[]).await;
    assert_eq!(code, 0, "repair: {out}");
    clean(dir, provider).await;
}

async fn redemptions(d: &Daemon, uuid: &str) -> Value {
    let h: Value = reqwest::Client::new()
        .get(format!("{}/v1/sync/coupons/{uuid}", d.base))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    h["data"]["provider_redemptions"].clone()
}

const NO_SHOPIFY: &str = "[programs.acme.shopify]\nbase_url = \"http://127.0.0.1:9\"\naccess_token = \"shpat_acme_secret_value\"";

#[tokio::test]
async fn woocommerce_drift_is_reported_exactly_and_repaired() {
    use crate::woo_env::*;
    let sim = coupond::simulators::woocommerce::WooSim::new(WOO_KEY, WOO_SECRET);
    let url = format!(
        "http://{}",
        coupond::simulators::serve(sim.router(), 0).await.unwrap()
    );
    let (dir, d) = daemon(&format!("{}\n{NO_SHOPIFY}", woo_config(&url))).await;
    create(&d, "woocommerce", "A", &["A-1", "A-2"]).await;
    create(&d, "woocommerce", "B", &["B-1"]).await;
    create(&d, "woocommerce", "C", &["C-1"]).await;
    let id = |code: &str| {
        sim.coupons()
            .into_iter()
            .find(|c| c["code"] == code)
            .unwrap()["id"]
            .as_i64()
            .unwrap()
    };
    let (a1, a2, b1, c1) = (id("a-1"), id("a-2"), id("b-1"), id("c-1"));
    clean(dir.path(), "woocommerce").await;
    sim.set_usage_count(a2, 3);
    assert!(sim.edit(a1, |c| c["amount"] = json!("50.00")));
    assert!(sim.edit(b1, |c| c["description"] = json!("Edited by hand")));
    assert!(sim.remove(c1));
    let ghost = sim.insert(json!({"code": "ghost-1", "amount": "5", "discount_type": "percent",
        "meta_data": [{"key": "_coupond", "value": "1"}, {"key": "_coupond_program", "value": "acme"},
                      {"key": "_coupond_coupon", "value": "GHOST"}]}));
    let foreign =
        sim.insert(json!({"code": "merchant10", "amount": "10", "discount_type": "percent"}));
    exact_then_repaired(
        dir.path(),
        "woocommerce",
        json!({"in_sync": 1, "drifted": 2, "missing": 1, "orphan": 1, "foreign": 1}),
        vec![
            ("drifted", a1.to_string(), vec!["amount:25->50"]),
            (
                "drifted",
                b1.to_string(),
                vec!["description:B->Edited by hand"],
            ),
            ("missing", c1.to_string(), vec![]),
            ("orphan", ghost.to_string(), vec![]),
        ],
    )
    .await;
    assert_eq!(sim.get(a1).unwrap()["amount"], "25.00");
    assert_eq!(
        sim.get(ghost).unwrap()["status"],
        "trash",
        "the orphan is retired"
    );
    assert_eq!(
        sim.get(foreign).unwrap()["status"],
        "publish",
        "foreign objects are never touched"
    );
    // the objects a run read are recorded in the store for that run only
    let db = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        dir.path().join("coupond.db").display()
    ))
    .await
    .unwrap();
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM reconcile_seen")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(left, 0, "a run's record of what it read ends with the run");
    let r = redemptions(&d, "A").await;
    let counts: Vec<(String, i64)> = r
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["code"].as_str().unwrap().to_owned(),
                x["count"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        counts,
        vec![("A-1".to_owned(), 0), ("A-2".to_owned(), 3)],
        "{r}"
    );
}

#[tokio::test]
async fn shopify_drift_is_reported_exactly_and_repaired() {
    use crate::shopify_env::*;
    let sim = coupond::simulators::shopify::ShopifySim::new(SHOPIFY_TOKEN);
    let url = format!(
        "http://{}",
        coupond::simulators::serve(sim.router(), 0).await.unwrap()
    );
    let (dir, d) = daemon(&format!(
        "[programs.acme.shopify]\naccess_token = \"{SHOPIFY_TOKEN}\"\nbase_url = \"{url}\"\nrate_per_second = 500"
    ))
    .await;
    create(&d, "shopify", "A", &["A-1", "A-2"]).await;
    create(&d, "shopify", "B", &["B-1"]).await;
    create(&d, "shopify", "C", &["C-1"]).await;
    let id = |code: &str| {
        sim.by_code(code).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (a1, b1, c1) = (id("A-1"), id("B-1"), id("C-1"));
    clean(dir.path(), "shopify").await;
    sim.set_usage("A-2", 4);
    assert!(sim.edit(
        &a1,
        |n| n["codeDiscount"]["customerGets"]["value"]["percentage"] = json!(0.5)
    ));
    assert!(sim.edit(&b1, |n| n["codeDiscount"]["title"] =
        json!("Edited by hand")));
    assert!(sim.remove(&c1));
    let ghost = sim.insert(json!({"codeDiscount": {"__typename": "DiscountCodeBasic", "title": "ghost",
        "tags": ["coupond", "coupond-program:acme", "coupond-coupon:GHOST"], "codes": {"nodes": [{"code": "GHOST-1"}]}}}));
    let foreign = sim.insert(
        json!({"codeDiscount": {"__typename": "DiscountCodeBasic", "title": "merchant",
        "tags": [], "codes": {"nodes": [{"code": "MERCHANT10"}]}}}),
    );
    exact_then_repaired(
        dir.path(),
        "shopify",
        json!({"in_sync": 1, "drifted": 2, "missing": 1, "orphan": 1, "foreign": 1}),
        vec![
            (
                "drifted",
                a1.clone(),
                vec!["customerGets.value:Percent(2500)->Percent(5000)"],
            ),
            ("drifted", b1.clone(), vec!["title:B->Edited by hand"]),
            ("missing", c1.clone(), vec![]),
            (
                "orphan",
                ghost.replace("DiscountNode", "DiscountCodeNode"),
                vec![],
            ),
        ],
    )
    .await;
    assert_eq!(
        sim.by_code("A-1").unwrap()["codeDiscount"]["customerGets"]["value"]["percentage"],
        0.25
    );
    assert!(sim.by_code("GHOST-1").is_none(), "the orphan is deleted");
    assert!(
        sim.discounts().iter().any(|n| n["id"] == foreign.as_str()),
        "foreign untouched"
    );
    let r = redemptions(&d, "A").await;
    assert!(
        r.as_array()
            .unwrap()
            .iter()
            .any(|x| x["code"] == "A-2" && x["count"] == 4),
        "{r}"
    );
}

#[tokio::test]
async fn paddle_billing_drift_is_reported_exactly_and_repaired() {
    use crate::paddle_env::*;
    let sim = coupond::simulators::paddle_billing::PaddleBillingSim::new(PADDLE_KEY);
    let url = format!(
        "http://{}",
        coupond::simulators::serve(sim.router(), 0).await.unwrap()
    );
    let (dir, d) = daemon(&format!("{}\n{NO_SHOPIFY}", billing_config(&url))).await;
    create(&d, "paddle", "A", &["A1", "A2"]).await;
    create(&d, "paddle", "B", &["B1"]).await;
    create(&d, "paddle", "C", &["C1"]).await;
    let id = |code: &str| {
        sim.by_code(code).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (a1, a2, b1, c1) = (id("A1"), id("A2"), id("B1"), id("C1"));
    clean(dir.path(), "paddle").await;
    sim.set_times_used(&a2, 2);
    assert!(sim.edit(&a1, |x| x["amount"] = json!("50")));
    assert!(sim.edit(&b1, |x| x["description"] = json!("Edited by hand")));
    assert!(sim.remove(&c1));
    let ghost = sim.insert(
        json!({"code": "GHOST1", "description": "ghost", "type": "percentage", "amount": "5",
        "custom_data": {"coupond": "1", "program": "acme", "coupon": "GHOST", "code": "GHOST1"}}),
    );
    let foreign = sim.insert(json!({"code": "MERCHANT10", "description": "merchant", "type": "percentage", "amount": "10"}));
    exact_then_repaired(
        dir.path(),
        "paddle",
        json!({"in_sync": 1, "drifted": 2, "missing": 1, "orphan": 1, "foreign": 1}),
        vec![
            ("drifted", a1.clone(), vec!["amount:\"25\"->\"50\""]),
            (
                "drifted",
                b1.clone(),
                vec!["description:\"B\"->\"Edited by hand\""],
            ),
            ("missing", c1.clone(), vec![]),
            ("orphan", ghost.clone(), vec![]),
        ],
    )
    .await;
    assert_eq!(sim.get(&a1).unwrap()["amount"], "25");
    assert_eq!(
        sim.get(&ghost).unwrap()["status"],
        "archived",
        "the orphan is archived"
    );
    assert_eq!(
        sim.get(&foreign).unwrap()["status"],
        "active",
        "foreign untouched"
    );
    let r = redemptions(&d, "A").await;
    assert!(
        r.as_array()
            .unwrap()
            .iter()
            .any(|x| x["code"] == "A2" && x["count"] == 2),
        "{r}"
    );
}

#[tokio::test]
async fn paddle_classic_drift_is_reported_exactly_and_repaired() {
    use crate::paddle_env::*;
    let sim = coupond::simulators::paddle_classic::PaddleClassicSim::new(VENDOR_ID, VENDOR_AUTH);
    let url = format!(
        "http://{}",
        coupond::simulators::serve(sim.router(), 0).await.unwrap()
    );
    let (dir, d) = daemon(&format!("{}\n{NO_SHOPIFY}", classic_config(&url))).await;
    create(&d, "paddle", "A", &["ACODE1", "ACODE2"]).await;
    create(&d, "paddle", "B", &["BCODE1"]).await;
    create(&d, "paddle", "C", &["CCODE1"]).await;
    clean(dir.path(), "paddle").await;
    sim.set_times_used("ACODE2", 5);
    assert!(sim.edit("ACODE1", |x| x["discount_amount"] = json!("50")));
    assert!(sim.edit("BCODE1", |x| x["allowed_uses"] = json!(7)));
    assert!(sim.remove("CCODE1"));
    sim.insert(json!({"coupon_code": "GHOSTCODE", "description": "coupond:acme:GHOST", "discount_type": "percentage",
        "discount_amount": "5", "coupon_type": "checkout"}));
    sim.insert(json!({"coupon_code": "MERCHANT10", "description": "merchant", "discount_type": "percentage",
        "discount_amount": "10", "coupon_type": "checkout"}));
    exact_then_repaired(
        dir.path(),
        "paddle",
        json!({"in_sync": 1, "drifted": 2, "missing": 1, "orphan": 1, "foreign": 1}),
        vec![
            ("drifted", "ACODE1".into(), vec!["discount_amount:25->50"]),
            ("drifted", "BCODE1".into(), vec!["allowed_uses:24->7"]),
            ("missing", "CCODE1".into(), vec![]),
            ("orphan", "GHOSTCODE".into(), vec![]),
        ],
    )
    .await;
    assert_eq!(sim.get("ACODE1").unwrap()["discount_amount"], "25");
    assert!(sim.get("CCODE1").is_some(), "created again");
    assert!(sim.get("GHOSTCODE").is_none(), "the orphan is deleted");
    assert!(sim.get("MERCHANT10").is_some(), "foreign untouched");
    let r = redemptions(&d, "A").await;
    assert!(
        r.as_array()
            .unwrap()
            .iter()
            .any(|x| x["code"] == "ACODE2" && x["count"] == 5),
        "{r}"
    );
}

/// A reconcile killed with -9 in the middle of its repairs finishes when run again.
#[tokio::test]
async fn a_reconcile_killed_mid_repair_finishes_when_run_again() {
    use crate::woo_env::*;
    let sim = coupond::simulators::woocommerce::WooSim::new(WOO_KEY, WOO_SECRET);
    let url = format!(
        "http://{}",
        coupond::simulators::serve(sim.router(), 0).await.unwrap()
    );
    let (dir, d) = daemon(&format!("{}\n{NO_SHOPIFY}", woo_config(&url))).await;
    for i in 0..30 {
        create(&d, "woocommerce", &format!("K{i}"), &[&format!("K-{i}")]).await;
    }
    for c in sim.coupons() {
        let id = c["id"].as_i64().unwrap();
        sim.edit(id, |c| c["amount"] = json!("1.00"));
    }
    // slow answers: each coupon's repair is its own push, so the kill lands part-way
    sim.common.set_faults(coupond::simulators::Faults {
        latency: std::time::Duration::from_millis(150),
        ..Default::default()
    });
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_coupond"))
        .arg("--config")
        .arg(dir.path().join("config.toml"))
        .args(["--reconcile", "--provider", "woocommerce"])
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while sim.coupons().iter().all(|c| c["amount"] != "25.00") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the repair never started"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    child.start_kill().unwrap();
    let _ = child.wait().await;
    let repaired = sim
        .coupons()
        .iter()
        .filter(|c| c["amount"] == "25.00")
        .count();
    eprintln!("repaired before the kill: {repaired} of 30");
    assert!(repaired < 30, "the kill came after the repair: {repaired}");
    sim.common.set_faults(Default::default());
    let (code, out) = reconcile(dir.path(), "woocommerce", &[]).await;
    assert_eq!(code, 0, "{out}");
    clean(dir.path(), "woocommerce").await;
    assert!(sim.coupons().iter().all(|c| c["amount"] == "25.00"));
    assert_eq!(sim.coupons().len(), 30, "no duplicates");
}
