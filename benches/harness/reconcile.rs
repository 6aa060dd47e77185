//! Reconcile of many promotion codes: wall time, requests, CPU and peak RSS, for the two shapes
//! of reconcile: WooCommerce (one provider object per code, `reconcile/codes.rs`) and Stripe (a
//! coupon object with its promotion codes, `reconcile/mod.rs`).

use crate::common::{API_KEY, app, cpu_secs, rss_parts, vm_hwm};
use coupond::simulators::{stripe::StripeSim, woocommerce::WooSim};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

const CK: &str = "ck_bench_0123456789";
const CS: &str = "cs_bench_0123456789";
const SK: &str = "sk_test_bench_reconcile_0123";

/// The provider a run reconciles.
#[derive(Clone, Copy, PartialEq)]
pub enum Provider {
    WooCommerce,
    Stripe,
}

impl Provider {
    fn name(self) -> &'static str {
        match self {
            Provider::WooCommerce => "woocommerce",
            Provider::Stripe => "stripe",
        }
    }
}

enum Sim {
    WooCommerce(Arc<WooSim>),
    Stripe(Arc<StripeSim>),
}

impl Sim {
    fn received(&self) -> u64 {
        match self {
            Sim::WooCommerce(s) => s.common.received(),
            Sim::Stripe(s) => s.common.received(),
        }
    }
}

/// Reconcile of N promotion codes (100 per coupon): the store's coupons are brought to the
/// simulator as a push leaves them, then `coupond --reconcile --dry-run` runs as its own process
/// and its peak RSS is sampled from /proc. Returns the table row and the peak RSS in KiB.
async fn reconcile(provider: Provider, n: usize) -> (String, u64) {
    let (sim, router) = match provider {
        Provider::WooCommerce => {
            let s = WooSim::new(CK, CS);
            (Sim::WooCommerce(s.clone()), s.router())
        }
        Provider::Stripe => {
            let s = StripeSim::new(SK);
            // 300,000 logged requests would be the harness's memory, not the daemon's
            s.common.count_only();
            (Sim::Stripe(s.clone()), s.router())
        }
    };
    let url = format!(
        "http://{}",
        coupond::simulators::serve(router, 0).await.unwrap()
    );
    let connection = match provider {
        Provider::WooCommerce => format!(
            "[programs.bench.woocommerce]\nconsumer_key = \"{CK}\"\nconsumer_secret = \"{CS}\"\nbase_url = \"{url}\"\nrate_per_second = 5000\n"
        ),
        Provider::Stripe => format!(
            "[programs.bench.stripe]\nsecret_key = \"{SK}\"\nbase_url = \"{url}\"\nrate_per_second = 100000\n"
        ),
    };
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[store]\npath = {:?}\ndurability = \"normal\"\n[log]\nfilter = \"error\"\n[server]\nlisten = \"127.0.0.1:0\"\n\
         [sync]\nworkers = 16\ninline_deadline_ms = 0\n[reconcile]\nschedule = \"\"\n[programs.bench]\napi_keys = [\"{API_KEY}\"]\n{connection}",
        dir.path().join("coupond.db")
    );
    let config_path = dir.path().join("config.toml");
    std::fs::write(&config_path, &config).unwrap();
    let app = app(config.clone()).await;
    let store = app.state.store.clone();
    let now = chrono::Utc::now();
    for i in 0..n / 100 {
        let codes: Vec<serde_json::Value> = (0..100)
            .map(|j| json!({"code": format!("R{i}X{j}")}))
            .collect();
        let body = json!({"uuid_code": format!("R{i}"), "coupon_discount_type": "percent", "coupon_discount_amount": 10,
                          "coupon_duration_type": "once", "promotion_codes": codes, "sync": {"provider": provider.name()}});
        let c = coupond::domain::NewCoupon::parse(body.as_object().unwrap(), now).unwrap();
        store.create_coupon("bench", &c, now).await.unwrap();
    }
    let objects = match &sim {
        Sim::WooCommerce(woo) => {
            seed_woo(woo, &store).await;
            woo.coupons().len()
        }
        Sim::Stripe(stripe) => {
            // Stripe's simulator finds duplicates through its indexes: the real push seeds it
            app.engine.drain().await.unwrap();
            stripe.coupons().len() + stripe.promotion_codes().len()
        }
    };
    // WooCommerce holds one object per code; Stripe a coupon object besides its codes
    let expected = match provider {
        Provider::WooCommerce => n,
        Provider::Stripe => n + n / 100,
    };
    assert_eq!(objects, expected, "every object reached the simulator");
    let before = sim.received();
    let started = Instant::now();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_coupond"))
        .arg("--config")
        .arg(&config_path)
        .args([
            "--reconcile",
            "--dry-run",
            "--provider",
            provider.name(),
            "--format",
            "json",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    let mut peak = 0;
    let (mut anon, mut mapped) = (0, 0);
    let mut cpu = 0.0f64;
    let out = loop {
        if let Some(k) = vm_hwm(pid) {
            peak = peak.max(k);
        }
        if let Some((a, m)) = rss_parts(pid) {
            anon = anon.max(a);
            mapped = mapped.max(m);
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
    assert_eq!(
        conn["counts"]["in_sync"], expected as u64,
        "{}",
        conn["counts"]
    );
    let requests = sim.received() - before;
    let (label, workload) = match provider {
        Provider::WooCommerce => ("WooCommerce", format!("{n} codes in sync (100 per coupon)")),
        Provider::Stripe => ("Stripe", format!("{n} codes + {} coupons in sync", n / 100)),
    };
    let line = format!(
        "| reconcile (dry run), {label} simulator | {workload} | {requests} | {:.1} s | {cpu:.1} s | {:.0} objects/s | {:.1} MiB | {:.1} / {:.1} MiB |",
        elapsed.as_secs_f64(),
        expected as f64 / elapsed.as_secs_f64(),
        peak as f64 / 1024.0,
        anon as f64 / 1024.0,
        mapped as f64 / 1024.0,
    );
    println!("{line}");
    store.close().await;
    (line, peak)
}

/// Seeds the WooCommerce simulator and the store's links as the push would (the simulator's own
/// create checks every code for duplicates, which at 100,000 codes takes far longer than the
/// benchmark).
async fn seed_woo(sim: &WooSim, store: &coupond::store::Store) {
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
}

pub async fn section(providers: &[Provider], sizes: &[usize]) -> crate::doc::Section {
    let mut runs = Vec::new();
    for &provider in providers {
        let mut per = Vec::new();
        for &n in sizes {
            per.push((n, reconcile(provider, n).await));
        }
        runs.push((provider, per));
    }
    let mut body = String::new();
    body.push_str("## Reconcile\n\n");
    body.push_str(&crate::common::stamp());
    body.push_str(
        "\n\n`coupond --reconcile --dry-run --provider <p>` as its own process against a store of coupons with \
         100 codes each, after the provider's simulator holds them as a push leaves them: for WooCommerce (one \
         coupon object per code) the simulator and the store's links are seeded directly, since the \
         simulator's own create checks every code for duplicates; for Stripe (a coupon object and its \
         promotion codes) the daemon's worker pushes them. Every object is in sync, so the run reads every \
         object and compares it through the sync's mapping. Peak RSS is the process's VmHWM, sampled from \
         /proc every 5 ms, with the peaks of its two parts beside it: anonymous memory (the heap) and mapped \
         files and shared memory (the binary, SQLite's `-shm` WAL index).\n\n",
    );
    body.push_str("| benchmark | workload | requests | wall time | reconcile CPU | rate | peak RSS | peak anonymous / mapped |\n|---|---|---|---|---|---|---|---|\n");
    for (_, per) in &runs {
        for (_, (row, _)) in per {
            body.push_str(row);
            body.push('\n');
        }
    }
    body.push('\n');
    for (provider, per) in &runs {
        for pair in per.windows(2) {
            let ((a, (_, pa)), (b, (_, pb))) = (&pair[0], &pair[1]);
            body.push_str(&format!(
                "{}: from {a} to {b} codes, peak RSS {:.2}× ({pa} KiB → {pb} KiB), {:.0} bytes per added code.\n",
                provider.name(),
                *pb as f64 / (*pa).max(1) as f64,
                (pb.saturating_sub(*pa) * 1024) as f64 / (b - a).max(1) as f64,
            ));
        }
    }
    body.push_str(
        "\nWhere the time goes and why memory stays flat: both shapes read one page (100 objects) at a time, \
         look up the links of that page only in SQLite (`json_each`), keep the desired states of the coupons \
         the last two pages met, and \
         record the ids of each page read in SQLite for the run (`reconcile_seen`); links whose object was not \
         read are then found a page of links at a time with one query. \"reconcile CPU\" is the CPU time of the \
         reconcile process itself (from /proc); the rest of the wall time is the simulator's (in the harness \
         process) and the loopback round trips.\n",
    );
    crate::doc::Section {
        name: "reconcile",
        body,
    }
}
