//! `coupond --reconcile` against the Stripe simulator, with the daemon running.

use crate::crash::stripe_daemon;
use crate::helpers::*;
use coupond::simulators::stripe::StripeSim;
use serde_json::{Value, json};

async fn reconcile(dir: &std::path::Path, args: &[&str]) -> (i32, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_coupond"))
        .arg("--config")
        .arg(dir.join("config.toml"))
        .arg("--reconcile")
        .args(["--provider", "stripe"])
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

/// Creates a coupon with these codes, synced to Stripe, through the daemon's API.
async fn post_to_stripe(d: &Daemon, uuid: &str, codes: &[String]) -> Value {
    let mut c = coupon(uuid);
    c["sync"] = json!({"provider": "stripe"});
    c["promotion_codes"] = Value::Array(codes.iter().map(|x| json!({"code": x})).collect());
    d.post_coupon(&c).await
}

fn coupon_id(sim: &StripeSim, uuid: &str) -> String {
    sim.coupons()
        .into_iter()
        .find(|c| c["metadata"]["coupond_coupon"] == uuid)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Every kind of drift injected into the simulator is reported exactly, repaired, and a second
/// dry run reports everything in sync; the foreign object is counted and never touched.
#[tokio::test]
async fn reconcile_reports_exactly_the_injected_drift_and_repairs_it() {
    let (sim, dir, d) = stripe_daemon("", &[]).await;
    let client = reqwest::Client::new();
    for (uuid, codes) in [
        ("A", vec!["A-1", "A-2"]),
        ("B", vec!["B-1"]),
        ("C", vec!["C-1"]),
    ] {
        let codes: Vec<String> = codes.into_iter().map(str::to_owned).collect();
        let r = post_to_stripe(&d, uuid, &codes).await;
        assert_eq!(r["synchronization_successful"], true, "{r}");
    }
    let (code, out) = reconcile(dir.path(), &["--dry-run"]).await;
    assert_eq!(code, 0, "in sync before any drift: {out}");

    // inject: an edited amount, an edited name, a deleted code, an extra object with our marker, a foreign one
    let a = coupon_id(&sim, "A");
    let b = coupon_id(&sim, "B");
    assert!(sim.edit(&a, |c| c["percent_off"] = json!(50.0)));
    assert!(sim.edit(&b, |c| c["name"] = json!("Edited by hand")));
    let c1 = sim
        .promotion_codes()
        .into_iter()
        .find(|c| c["code"] == "C-1")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(sim.remove(&c1));
    sim.insert_coupon(json!({"id": "cpd_acme_GHOST_0000000000", "object": "coupon", "percent_off": 5.0, "duration": "once", "name": "ghost",
                             "metadata": {"coupond": "1", "coupond_program": "acme", "coupond_coupon": "GHOST"}}));
    sim.insert_coupon(json!({"id": "MERCHANT10", "object": "coupon", "percent_off": 10.0, "duration": "once", "name": "merchant's own", "metadata": {}}));

    let (code, out) = reconcile(dir.path(), &["--dry-run", "--format", "json"]).await;
    assert_eq!(code, 1, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let conn = &v["connections"][0];
    assert_eq!(
        conn["counts"],
        json!({"in_sync": 4, "drifted": 2, "missing": 1, "orphan": 1, "foreign": 1}),
        "{out}"
    );
    let mut findings: Vec<(String, String, String, Vec<String>)> = conn["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let fields = f["fields"]
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
                .collect();
            (
                f["class"].as_str().unwrap().into(),
                f["kind"].as_str().unwrap().into(),
                f["remote_id"].as_str().unwrap().into(),
                fields,
            )
        })
        .collect();
    findings.sort();
    assert_eq!(
        findings,
        vec![
            (
                "drifted".into(),
                "coupon".into(),
                a.clone(),
                vec!["percent_off:25->50".to_owned()]
            ),
            (
                "drifted".into(),
                "coupon".into(),
                b.clone(),
                vec!["name:B->Edited by hand".to_owned()]
            ),
            ("missing".into(), "code".into(), c1.clone(), vec![]),
            (
                "orphan".into(),
                "coupon".into(),
                "cpd_acme_GHOST_0000000000".into(),
                vec![]
            ),
        ]
    );
    let (_, table) = reconcile(dir.path(), &["--dry-run"]).await;
    assert!(
        table.contains("2 drifted, 1 missing, 1 orphan, 1 foreign")
            && table.contains("drift found (dry run"),
        "{table}"
    );

    // repair, then a second dry run is clean
    let (code, out) = reconcile(dir.path(), &[]).await;
    assert_eq!(code, 0, "{out}");
    let (code, out) = reconcile(dir.path(), &["--dry-run"]).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("0 drifted, 0 missing, 0 orphan, 1 foreign") && out.contains("all in sync"),
        "{out}"
    );
    assert!(
        sim.coupons().iter().any(|c| c["id"] == "MERCHANT10"),
        "foreign objects are never touched"
    );
    assert!(
        !sim.coupons()
            .iter()
            .any(|c| c["id"] == "cpd_acme_GHOST_0000000000"),
        "the orphan was retired"
    );
    assert_eq!(
        sim.coupons()
            .iter()
            .find(|c| c["metadata"]["coupond_coupon"] == "B")
            .unwrap()["name"],
        "B"
    );
    let h: Value = client
        .get(format!("{}/v1/sync/coupons/B", d.base))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let drift = h["data"]["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["outcome"] == "drift")
        .expect("a drift entry in the history");
    assert!(
        drift["message"]
            .as_str()
            .unwrap()
            .contains("\"Edited by hand\" overwritten with \"B\""),
        "{drift}"
    );
}

/// The daemon's scheduled reconcile fires, never overlaps a slow run, is recorded honestly and
/// shows up in /status with the next run.
#[tokio::test]
async fn scheduled_reconcile_fires_without_overlap_and_shows_in_status() {
    let (sim, dir, d) = stripe_daemon("[reconcile]\nschedule = \"* * * * * *\"\n", &[]).await;
    sim.common.set_faults(coupond::simulators::Faults {
        latency: std::time::Duration::from_millis(600),
        ..Default::default()
    });
    let store = coupond::store::Store::open(
        &dir.path().join("coupond.db"),
        &coupond::store::StoreOptions::default(),
    )
    .await
    .unwrap();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    let runs = loop {
        let runs = store.reconcile_runs(10).await.unwrap();
        if runs.len() >= 2 {
            break runs;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the schedule did not fire twice: {runs:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    for pair in runs.windows(2) {
        assert!(
            pair[1].started_at >= pair[0].finished_at,
            "runs overlapped: {pair:?}"
        );
    }
    for r in &runs {
        assert_eq!(r.trigger, "schedule");
        // each run makes two slow list requests: it takes longer than the one-second tick
        assert!(r.finished_at - r.started_at >= 1_000_000, "{r:?}");
        // Shopify is configured at an address nothing answers: the run must not count as a success
        assert_eq!(r.outcome, "failed", "{r:?}");
        assert!(r.message.contains("shopify"), "{r:?}");
    }
    let st: Value = reqwest::Client::new()
        .get(format!("{}/status", d.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rec = &st["components"]["reconcile"];
    assert_eq!(rec["last"]["trigger"], "schedule", "{st}");
    assert!(rec["next"].is_string(), "{st}");
}

/// A connection larger than one Stripe page (100 objects): every page is read (the simulator
/// refuses a cursor it does not know), a code deleted on an older page is found missing, a code on
/// another page whose marker was edited away counts as foreign (its link as missing), and nothing
/// else is reported.
#[tokio::test]
async fn reconcile_reads_every_page_of_a_large_stripe_connection() {
    let (sim, dir, d) = stripe_daemon("", &[]).await;
    for uuid in ["P", "Q", "R"] {
        let codes: Vec<String> = (0..70).map(|i| format!("{uuid}-{i}")).collect();
        let r = post_to_stripe(&d, uuid, &codes).await;
        assert_eq!(r["synchronization_enabled"], true, "{r}");
    }
    // 213 objects at 500 requests/s outlast the inline push: the worker finishes them
    let store = coupond::store::Store::open(
        &dir.path().join("coupond.db"),
        &coupond::store::StoreOptions::default(),
    )
    .await
    .unwrap();
    wait_outbox_empty(&store, 20).await;
    assert_eq!(sim.promotion_codes().len(), 210);
    let id_of = |code: &str| {
        sim.promotion_codes()
            .into_iter()
            .find(|c| c["code"] == code)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    // listed newest first: P's codes are on the third page, R's on the first
    let (gone, edited) = (id_of("P-3"), id_of("R-60"));
    assert!(sim.remove(&gone));
    assert!(sim.edit(&edited, |c| c["metadata"]["coupond"] = json!("0")));
    let before = sim.common.received();
    let (code, out) = reconcile(dir.path(), &["--dry-run", "--format", "json"]).await;
    assert_eq!(code, 1, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let conn = &v["connections"][0];
    // 3 coupons and 208 codes in sync; the edited code lost our marker: it is foreign now, and
    // its link has no object of ours
    assert_eq!(
        conn["counts"],
        json!({"in_sync": 3 + 208, "drifted": 0, "missing": 2, "orphan": 0, "foreign": 1}),
        "{out}"
    );
    let mut missing: Vec<(String, String, String)> = conn["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["remote_id"].as_str().unwrap().to_owned(),
                f["uuid_code"].as_str().unwrap().to_owned(),
                f["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    missing.sort();
    let mut want = vec![
        (gone, "P".to_owned(), "P-3".to_owned()),
        (edited, "R".to_owned(), "R-60".to_owned()),
    ];
    want.sort();
    assert_eq!(missing, want);
    // one page of coupons, three of promotion codes (100 + 100 + 9)
    assert_eq!(sim.common.received() - before, 4);
}
