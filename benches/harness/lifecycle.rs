//! The daemon as systemd runs it: time to `READY=1` and from SIGTERM to exit, and its resident
//! memory after start, with a large store, after paging it all out and after many outbox marks.

use crate::common::{API_KEY, app, mib, vm_hwm, vm_rss};
use coupond::simulators::stripe::StripeSim;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

const STRIPE_KEY: &str = "sk_test_bench_life_0123";

/// The daemon process, started as systemd would (`NOTIFY_SOCKET` set).
struct Daemon {
    child: tokio::process::Child,
    pid: u32,
    base: String,
    /// Spawn to `READY=1`.
    ready: Duration,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn config(dir: &Path, store: &Path, port: u16, stripe_url: &str) -> PathBuf {
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\n[store]\npath = {store:?}\ndurability = \"normal\"\n[log]\nfilter = \"error\"\n\
         [sync]\nworkers = 16\ninline_deadline_ms = 0\n[reconcile]\nschedule = \"\"\n[programs.bench]\napi_keys = [\"{API_KEY}\"]\n\
         [programs.bench.stripe]\nsecret_key = \"{STRIPE_KEY}\"\nbase_url = \"{stripe_url}\"\nrate_per_second = 100000\n"
    );
    let path = dir.join(format!("config-{port}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

impl Daemon {
    async fn start(config: &Path, dir: &Path) -> Self {
        let socket_path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&socket_path);
        let socket = tokio::net::UnixDatagram::bind(&socket_path).unwrap();
        let text = std::fs::read_to_string(config).unwrap();
        let port = text
            .split("127.0.0.1:")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap()
            .to_owned();
        let started = Instant::now();
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_coupond"))
            .arg("--config")
            .arg(config)
            .env("NOTIFY_SOCKET", &socket_path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let pid = child.id().unwrap();
        let mut buf = vec![0u8; 4096];
        let ready = loop {
            let n = tokio::time::timeout(Duration::from_secs(120), socket.recv(&mut buf))
                .await
                .expect("READY=1 within 120 s")
                .unwrap();
            if String::from_utf8_lossy(&buf[..n])
                .lines()
                .any(|l| l == "READY=1")
            {
                break started.elapsed();
            }
        };
        Daemon {
            child,
            pid,
            base: format!("http://127.0.0.1:{port}"),
            ready,
        }
    }

    fn rss(&self) -> u64 {
        vm_rss(self.pid).unwrap_or(0)
    }

    /// SIGTERM, then the time until the process has exited.
    async fn stop(mut self) -> Duration {
        let started = Instant::now();
        let ok = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -TERM");
        let status = self.child.wait().await.unwrap();
        let took = started.elapsed();
        assert!(status.success(), "daemon exited with {status}");
        took
    }

    async fn outbox_depth(&self, client: &reqwest::Client) -> i64 {
        let v = get_json(client, &format!("{}/status", self.base)).await;
        v["components"]["outbox"]["depth"].as_i64().unwrap_or(-1)
    }

    async fn drain(&self, client: &reqwest::Client) {
        while self.outbox_depth(client).await != 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn get_json(client: &reqwest::Client, url: &str) -> serde_json::Value {
    client
        .get(url)
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// A name change of one coupon through the API: one outbox mark, acknowledged once committed.
async fn rename(client: &reqwest::Client, base: &str, uuid_code: String, name: String) {
    let r = client
        .put(format!("{base}/v1/coupons"))
        .bearer_auth(API_KEY)
        .json(&json!({"uuid_code": uuid_code, "name": name}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
}

/// Fills the store in this process (the daemon is not running): `coupons` coupons with
/// `codes_per` codes and no provider, plus `pool` coupons synced with Stripe and no codes.
async fn seed(store_path: &Path, coupons: usize, codes_per: usize, pool: usize) {
    let a = app(format!(
        "[store]\npath = {store_path:?}\ndurability = \"normal\"\n[log]\nfilter = \"error\"\n[programs.bench]\napi_keys = [\"{API_KEY}\"]\n\
         [programs.bench.stripe]\nsecret_key = \"{STRIPE_KEY}\"\nbase_url = \"http://127.0.0.1:9\"\n"
    ))
    .await;
    let store = a.state.store.clone();
    let now = chrono::Utc::now();
    let tasks: Vec<_> = (0..32)
        .map(|s| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in (s..coupons + pool).step_by(32) {
                    let body = if i < coupons {
                        let codes: Vec<_> = (0..codes_per)
                            .map(|j| json!({"code": format!("S{i:06}C{j}")}))
                            .collect();
                        json!({"uuid_code": format!("S{i:06}"), "coupon_discount_type": "percent",
                               "coupon_discount_amount": 10, "coupon_duration_type": "once",
                               "promotion_codes": codes})
                    } else {
                        json!({"uuid_code": format!("L{:05}", i - coupons), "coupon_discount_type": "percent",
                               "coupon_discount_amount": 10, "coupon_duration_type": "once",
                               "sync": {"provider": "stripe"}})
                    };
                    let c = coupond::domain::NewCoupon::parse(body.as_object().unwrap(), now)
                        .unwrap();
                    store.create_coupon("bench", &c, now).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    store.close().await;
}

/// Counts and drops the simulator's request log every 200 ms, so a million requests do not
/// pile up in the harness.
fn count_requests(sim: Arc<StripeSim>) -> Arc<AtomicU64> {
    let total = Arc::new(AtomicU64::new(0));
    let t = total.clone();
    tokio::spawn(async move {
        loop {
            let n = {
                let mut log = sim.common.log.lock().unwrap();
                let n = log.len();
                log.clear();
                n
            };
            t.fetch_add(n as u64, Relaxed);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    total
}

pub async fn section(coupons: usize, codes_per: usize, marks: usize) -> crate::doc::Section {
    const POOL: usize = 1_000;
    const CLIENTS: usize = 32;
    let sim = StripeSim::new(STRIPE_KEY);
    let sim_url = format!(
        "http://{}",
        coupond::simulators::serve(sim.router(), 0).await.unwrap()
    );
    let requests = count_requests(sim.clone());
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    let mut rows: Vec<String> = Vec::new();
    let mut row = |what: &str, figure: String| {
        let line = format!("| {what} | {figure} |");
        println!("{line}");
        rows.push(line);
    };

    // 1. an empty store
    let empty = dir.path().join("empty.db");
    let cfg = config(dir.path(), &empty, free_port(), &sim_url);
    let d = Daemon::start(&cfg, dir.path()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    row(
        "start, empty store: spawn → `READY=1`",
        format!("{:.0} ms", d.ready.as_secs_f64() * 1000.0),
    );
    let rss_start = d.rss();
    row("RSS after start, empty store", mib(rss_start));
    let idle_stop = d.stop().await;
    row(
        "SIGTERM → exit, idle",
        format!("{:.0} ms", idle_stop.as_secs_f64() * 1000.0),
    );

    // 2. a large store
    let big = dir.path().join("big.db");
    let seeded = Instant::now();
    seed(&big, coupons, codes_per, POOL).await;
    println!(
        "seeded {coupons} coupons, {} codes in {:.1} s",
        coupons * codes_per,
        seeded.elapsed().as_secs_f64()
    );
    let db_bytes: u64 = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("big.db"))
        .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
        .sum();
    let cfg = config(dir.path(), &big, free_port(), &sim_url);
    let d = Daemon::start(&cfg, dir.path()).await;
    row(
        &format!(
            "start, {coupons} coupons + {} codes ({:.0} MiB store): spawn → `READY=1`",
            coupons * codes_per,
            db_bytes as f64 / 1024.0 / 1024.0
        ),
        format!("{:.0} ms", d.ready.as_secs_f64() * 1000.0),
    );
    // the pool's first push (one Stripe coupon each) happens now
    d.drain(&client).await;
    let rss_big = d.rss();
    row(
        &format!(
            "RSS after start, {coupons} coupons + {} codes",
            coupons * codes_per
        ),
        mib(rss_big),
    );
    // read every coupon through the API
    let paged = Instant::now();
    let mut page = 1;
    let mut seen = 0;
    loop {
        let v = get_json(
            &client,
            &format!("{}/v1/coupons?limit=250&page={page}", d.base),
        )
        .await;
        let n = v["data"].as_array().map_or(0, Vec::len);
        seen += n;
        if n < 250 {
            break;
        }
        page += 1;
    }
    assert_eq!(seen, coupons + POOL, "every coupon paged out");
    let paged = paged.elapsed();
    row(
        &format!(
            "RSS after paging all {seen} coupons out (`GET /v1/coupons?limit=250`, {page} pages, {:.1} s)",
            paged.as_secs_f64()
        ),
        mib(d.rss()),
    );

    // 3. outbox marks: name changes of the pool's coupons, each acknowledged with its mark, while
    //    the worker pushes them
    let rss_before_marks = d.rss();
    let before = requests.load(Relaxed);
    let done = Arc::new(AtomicU64::new(0));
    let marking = Instant::now();
    let writers: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (client, base, done) = (client.clone(), d.base.clone(), done.clone());
            tokio::spawn(async move {
                for i in (c..marks).step_by(CLIENTS) {
                    rename(
                        &client,
                        &base,
                        format!("L{:05}", i % POOL),
                        format!("mark {i}"),
                    )
                    .await;
                    done.fetch_add(1, Relaxed);
                }
            })
        })
        .collect();
    let mut checkpoints = Vec::new();
    let step = (marks / 4).max(1) as u64;
    let mut next = step;
    while next <= marks as u64 {
        if done.load(Relaxed) >= next {
            checkpoints.push(format!("{} after {next}", mib(d.rss())));
            println!("marks: {next}, RSS {}", mib(d.rss()));
            next += step;
        } else {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    for w in writers {
        w.await.unwrap();
    }
    let written = marking.elapsed();
    d.drain(&client).await;
    let processed = marking.elapsed();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pushes = requests.load(Relaxed) - before;
    row(
        &format!(
            "RSS while {marks} outbox marks are made (`PUT /v1/coupons` name changes on {POOL} Stripe-synced coupons, {CLIENTS} clients)"
        ),
        checkpoints.join(", "),
    );
    row(
        &format!(
            "RSS after {marks} outbox marks processed ({:.0} marks/s written, all pushed after {:.1} s, {pushes} Stripe requests)",
            marks as f64 / written.as_secs_f64(),
            processed.as_secs_f64()
        ),
        format!(
            "{} (peak {})",
            mib(d.rss()),
            mib(vm_hwm(d.pid).unwrap_or(0))
        ),
    );
    let rss_marks = d.rss();

    // 4. SIGTERM with a backlog: the provider answers after 500 ms, marks pile up, then SIGTERM
    //    while pushes are in flight
    sim.common.set_faults(coupond::simulators::Faults {
        latency: Duration::from_millis(500),
        ..Default::default()
    });
    for i in 0..POOL {
        rename(&client, &d.base, format!("L{i:05}"), format!("backlog {i}")).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let backlog = d.outbox_depth(&client).await;
    let busy_stop = d.stop().await;
    row(
        &format!(
            "SIGTERM → exit, {backlog} marks queued, 16 pushes in flight (provider answers after 500 ms)"
        ),
        format!("{:.0} ms", busy_stop.as_secs_f64() * 1000.0),
    );
    // nothing lost: the marks wait in the store for the next start
    let a = app(format!(
        "[store]\npath = {big:?}\n[log]\nfilter = \"error\"\n[programs.bench]\napi_keys = [\"{API_KEY}\"]\n\
         [programs.bench.stripe]\nsecret_key = \"{STRIPE_KEY}\"\nbase_url = \"{sim_url}\"\n"
    ))
    .await;
    let left = a
        .state
        .store
        .outbox_stats(chrono::Utc::now())
        .await
        .unwrap();
    a.state.store.close().await;
    assert!(left.depth > 0 && left.dead == 0, "{left:?}");
    row(
        "marks still queued in the store after that exit (pushed on the next start)",
        left.depth.to_string(),
    );

    let mut body = String::new();
    body.push_str("## Start-up, shutdown and memory\n\n");
    body.push_str(&crate::common::stamp());
    body.push_str(&format!(
        "\n\nThe release `coupond` binary runs as its own process with `NOTIFY_SOCKET` pointing at a socket \
         of the harness, as systemd starts it (`store.durability = \"normal\"`, 16 sync workers); the Stripe \
         simulator (unlimited unless stated) runs in the harness. Start-up is timed from spawn to the \
         `READY=1` notification, shutdown from `kill -TERM` to the exit of the process. RSS is the \
         process's `VmRSS` from /proc. The large store is filled beforehand ({coupons} coupons with \
         {codes_per} codes each and no provider, plus {POOL} coupons synced with Stripe).\n\n"
    ));
    body.push_str("| measurement | figure |\n|---|---|\n");
    for r in &rows {
        body.push_str(r);
        body.push('\n');
    }
    body.push_str(&format!(
        "\nRSS with the large store ÷ RSS after start on an empty store: **{:.2}**; after {marks} marks ÷ \
         before the first mark: **{:.2}**.\n",
        rss_big as f64 / rss_start.max(1) as f64,
        rss_marks as f64 / rss_before_marks.max(1) as f64
    ));
    body.push_str(
        "\nWhere the time goes and why memory stays flat: start-up opens the store, runs the (already \
         applied) migrations and binds; nothing is loaded per coupon, so the time does not grow with the \
         store. Memory is mostly SQLite's page cache (its default, at most 2 MiB per connection: one \
         writer and `store.read_connections` readers) and the in-flight requests; lists are read one page \
         at a time, so neither grows with the store. The worker claims a bounded \
         batch of marks at a time, and marks made faster than they are pushed coalesce (a mark is a row per \
         coupon and provider holding the desired revision, so one push carries every change made before \
         it). On SIGTERM the daemon stops claiming, lets in-flight pushes finish (each waits at most for \
         its own request, bounded by `sync.shutdown_grace_secs`) and exits; queued marks stay in the store.\n",
    );
    crate::doc::Section {
        name: "lifecycle",
        body,
    }
}
