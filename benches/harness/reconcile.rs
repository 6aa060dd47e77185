//! Reconcile of many promotion codes: wall time, requests, CPU and peak RSS.

use crate::common::{API_KEY, app, cpu_secs, vm_hwm};
use serde_json::json;
use std::time::{Duration, Instant};

/// Reconcile of N promotion codes (100 per coupon) against the WooCommerce simulator: the codes
/// are pushed by the worker, then `coupond --reconcile --dry-run` runs as its own process and its
/// peak RSS is sampled from /proc. Returns the table row and the peak RSS in KiB.
async fn reconcile(n: usize) -> (String, u64) {
    use coupond::simulators::woocommerce::WooSim;
    const CK: &str = "ck_bench_0123456789";
    const CS: &str = "cs_bench_0123456789";
    let sim = WooSim::new(CK, CS);
    let url = format!(
        "http://{}",
        coupond::simulators::serve(sim.router(), 0).await.unwrap()
    );
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[store]\npath = {:?}\ndurability = \"normal\"\n[log]\nfilter = \"error\"\n[server]\nlisten = \"127.0.0.1:0\"\n\
         [sync]\nworkers = 8\ninline_deadline_ms = 0\n[reconcile]\nschedule = \"\"\n[programs.bench]\napi_keys = [\"{API_KEY}\"]\n\
         [programs.bench.woocommerce]\nconsumer_key = \"{CK}\"\nconsumer_secret = \"{CS}\"\nbase_url = \"{url}\"\nrate_per_second = 5000\n",
        dir.path().join("coupond.db")
    );
    let config_path = dir.path().join("config.toml");
    std::fs::write(&config_path, &config).unwrap();
    let app = app(config.clone()).await;
    let (engine, store) = (app.engine.clone(), app.state.store.clone());
    let now = chrono::Utc::now();
    for i in 0..n / 100 {
        let codes: Vec<serde_json::Value> = (0..100)
            .map(|j| json!({"code": format!("R{i}X{j}")}))
            .collect();
        let body = json!({"uuid_code": format!("R{i}"), "coupon_discount_type": "percent", "coupon_discount_amount": 10,
                          "coupon_duration_type": "once", "promotion_codes": codes, "sync": {"provider": "woocommerce"}});
        let c = coupond::domain::NewCoupon::parse(body.as_object().unwrap(), now).unwrap();
        store.create_coupon("bench", &c, now).await.unwrap();
    }
    // seed the simulator and the links as the push would (the simulator's own create checks
    // every code for duplicates, which at 100,000 codes takes far longer than the benchmark)
    let _ = engine;
    let shop = coupond::providers::woocommerce::mapping::Shop {
        subscriptions: false,
        billing_interval: coupond::config::BillingInterval::Month,
        gmt_offset: 0.0,
    };
    loop {
        let claims = store
            .claim_due(chrono::Utc::now(), Duration::from_secs(600), 200, &[], &[])
            .await
            .unwrap();
        if claims.is_empty() {
            break;
        }
        for claim in claims {
            let (desired, revision) = store.desired_state(claim.coupon_id).await.unwrap();
            let mut links = Vec::new();
            for code in &desired.codes {
                let spec = coupond::providers::woocommerce::mapping::map_code(
                    "bench",
                    &shop,
                    &desired.coupon,
                    code,
                )
                .unwrap();
                let id = sim.insert(spec.body(None));
                links.push(coupond::store::outbox::Link {
                    kind: "code".into(),
                    local_key: code.code.clone(),
                    remote_id: id.to_string(),
                    fingerprint: String::new(),
                    remote: coupond::providers::woocommerce::link_remote(&spec),
                });
            }
            let t = chrono::Utc::now();
            store
                .complete(
                    &claim,
                    revision,
                    Some(&links),
                    &coupond::store::outbox::Completion::Synced {
                        message: "seeded".into(),
                    },
                    t,
                    t,
                )
                .await
                .unwrap();
        }
    }
    assert_eq!(sim.coupons().len(), n, "every code reached the simulator");
    let before = sim.common.requests().len();
    let started = Instant::now();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_coupond"))
        .arg("--config")
        .arg(&config_path)
        .args([
            "--reconcile",
            "--dry-run",
            "--provider",
            "woocommerce",
            "--format",
            "json",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    let mut peak = 0;
    let mut cpu = 0.0f64;
    let out = loop {
        if let Some(k) = vm_hwm(pid) {
            peak = peak.max(k);
        }
        if let Some(c) = cpu_secs(pid) {
            cpu = cpu.max(c);
        }
        if let Some(_status) = child.try_wait().unwrap() {
            break child.wait_with_output().await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let elapsed = started.elapsed();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let conn = &report["connections"][0];
    assert_eq!(conn["counts"]["in_sync"], n as u64, "{}", conn["counts"]);
    let requests = sim.common.requests().len() - before;
    let line = format!(
        "| reconcile (dry run), WooCommerce simulator | {n} codes in sync (100 per coupon) | {requests} | {:.1} s | {cpu:.1} s | {:.0} codes/s | {:.1} MiB |",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64(),
        peak as f64 / 1024.0
    );
    println!("{line}");
    store.close().await;
    (line, peak)
}

pub async fn section(sizes: &[usize]) -> crate::doc::Section {
    let mut runs = Vec::new();
    for &n in sizes {
        runs.push((n, reconcile(n).await));
    }
    let mut body = String::new();
    body.push_str("## Reconcile\n\n");
    body.push_str(&crate::common::stamp());
    body.push_str(
        "\n\n`coupond --reconcile --dry-run --provider woocommerce` as its own process against a store whose codes \
         were seeded into the WooCommerce simulator and the store's links as a push leaves them (100 codes per \
         coupon, one WooCommerce coupon per code; seeding through the push would only measure the push again); \
         every code is in sync, so the run reads every object and compares it through the sync's mapping. \
         Peak RSS is the process's VmHWM, sampled from /proc every 5 ms.\n\n",
    );
    body.push_str("| benchmark | workload | requests | wall time | reconcile CPU | rate | peak RSS |\n|---|---|---|---|---|---|---|\n");
    for (_, (row, _)) in &runs {
        body.push_str(row);
        body.push('\n');
    }
    body.push('\n');
    for pair in runs.windows(2) {
        let ((a, (_, pa)), (b, (_, pb))) = (&pair[0], &pair[1]);
        body.push_str(&format!(
            "From {a} to {b} codes: peak RSS {:.2}× ({pa} KiB → {pb} KiB), {:.0} bytes per added code.\n",
            *pb as f64 / (*pa).max(1) as f64,
            (pb.saturating_sub(*pa) * 1024) as f64 / (b - a).max(1) as f64,
        ));
    }
    body.push_str(
        "\nWhere the time goes and why memory stays flat: objects are read one page (100) at a time, the links \
         of that page only are looked up in SQLite (`json_each`), desired states are cached for the page, and \
         the ids of each page read are recorded in SQLite for the run (`reconcile_seen`), and links whose \
         object was not read are found a page of links at a time with one query. \"reconcile CPU\" is the CPU time of the reconcile process itself (from /proc); the rest \
         of the wall time is the simulator's (in the harness process) and the loopback round trips.\n",
    );
    crate::doc::Section {
        name: "reconcile",
        body,
    }
}
