//! Push throughput: N coupons with 5 codes each through every provider's simulator, each limited
//! to R (requests per second, or cost points per second for Shopify).

use crate::common::{API_KEY, app};
use coupond::simulators::{
    Common, paddle_billing::PaddleBillingSim, paddle_classic::PaddleClassicSim,
    shopify::ShopifySim, stripe::StripeSim, woocommerce::WooSim,
};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

const CODES_PER_COUPON: usize = 5;

/// One provider under test: its simulator, the configuration that connects it, and what it is
/// limited to.
struct Target {
    label: &'static str,
    /// `sync.provider` of the coupons.
    provider: &'static str,
    /// `[programs.bench.<…>]` table connecting the simulator at `{url}`.
    connection: String,
    /// R: requests per second, or cost points per second (Shopify).
    rate: f64,
    unit: &'static str,
    sim: Sim,
}

enum Sim {
    Stripe(Arc<StripeSim>),
    Shopify(Arc<ShopifySim>),
    Woo(Arc<WooSim>),
    Billing(Arc<PaddleBillingSim>),
    Classic(Arc<PaddleClassicSim>),
}

impl Sim {
    fn common(&self) -> &Common {
        match self {
            Sim::Stripe(s) => &s.common,
            Sim::Shopify(s) => &s.common,
            Sim::Woo(s) => &s.common,
            Sim::Billing(s) => &s.common,
            Sim::Classic(s) => &s.common,
        }
    }

    fn router(&self) -> axum::Router {
        match self {
            Sim::Stripe(s) => s.router(),
            Sim::Shopify(s) => s.router(),
            Sim::Woo(s) => s.router(),
            Sim::Billing(s) => s.router(),
            Sim::Classic(s) => s.router(),
        }
    }

    /// (provider objects that hold a code, codes they hold).
    fn held(&self) -> (usize, usize) {
        match self {
            Sim::Stripe(s) => (s.promotion_codes().len(), s.promotion_codes().len()),
            Sim::Shopify(s) => {
                let nodes = s.discounts();
                let codes = nodes
                    .iter()
                    .map(|n| {
                        n["codeDiscount"]["codes"]["nodes"]
                            .as_array()
                            .map_or(0, Vec::len)
                    })
                    .sum();
                (nodes.len(), codes)
            }
            Sim::Woo(s) => (s.coupons().len(), s.coupons().len()),
            Sim::Billing(s) => (s.discounts().len(), s.discounts().len()),
            Sim::Classic(s) => (s.coupons().len(), s.coupons().len()),
        }
    }
}

/// R per provider. Far above the providers' real limits (Stripe 100 req/s live, Paddle Billing
/// 240/min, Shopify 100–2,000 points/s restore) so that 10,000 coupons take minutes, not hours.
/// WooCommerce pushes in batches of up to 100 codes, so its R is in (much larger) requests.
const RATE: f64 = 500.0;
const WOO_RATE: f64 = 100.0;
const SHOPIFY_POINTS: f64 = 4_000.0;

fn targets() -> Vec<Target> {
    let (rate, shopify_points) = (RATE, SHOPIFY_POINTS);
    let stripe = StripeSim::new("sk_test_bench_push_0123");
    let shopify = ShopifySim::new("shpat_bench_push_0123");
    let woo = WooSim::new("ck_bench_push_0123", "cs_bench_push_0123");
    let billing = PaddleBillingSim::new("pdl_sdbx_apikey_bench_push_0123");
    let classic = PaddleClassicSim::new(4321, "bench0123456789abcdef");
    let r = rate as u32;
    vec![
        Target {
            label: "Stripe",
            provider: "stripe",
            connection: format!(
                "[programs.bench.stripe]\nsecret_key = \"sk_test_bench_push_0123\"\nbase_url = \"{{url}}\"\nrate_per_second = {r}\n"
            ),
            rate,
            unit: "req/s",
            sim: Sim::Stripe(stripe),
        },
        Target {
            label: "Shopify",
            provider: "shopify",
            // the cost bucket is the limit: the request rate is left unbounded
            connection: "[programs.bench.shopify]\naccess_token = \"shpat_bench_push_0123\"\nbase_url = \"{url}\"\nrate_per_second = 100000\n".into(),
            rate: shopify_points,
            unit: "points/s",
            sim: Sim::Shopify(shopify),
        },
        Target {
            label: "WooCommerce",
            provider: "woocommerce",
            connection: format!(
                "[programs.bench.woocommerce]\nconsumer_key = \"ck_bench_push_0123\"\nconsumer_secret = \"cs_bench_push_0123\"\nbase_url = \"{{url}}\"\nrate_per_second = {}\n",
                WOO_RATE as u32
            ),
            rate: WOO_RATE,
            unit: "req/s",
            sim: Sim::Woo(woo),
        },
        Target {
            label: "Paddle Billing",
            provider: "paddle",
            connection: format!(
                "[programs.bench.paddle]\nflavour = \"billing\"\napi_key = \"pdl_sdbx_apikey_bench_push_0123\"\nbase_url = \"{{url}}\"\nrate_per_minute = {}\n",
                r * 60
            ),
            rate,
            unit: "req/s",
            sim: Sim::Billing(billing),
        },
        Target {
            label: "Paddle Classic",
            provider: "paddle",
            connection: format!(
                "[programs.bench.paddle]\nflavour = \"classic\"\nvendor_id = 4321\nvendor_auth_code = \"bench0123456789abcdef\"\nbase_url = \"{{url}}\"\nrate_per_minute = {}\n",
                r * 60
            ),
            rate,
            unit: "req/s",
            sim: Sim::Classic(classic),
        },
    ]
}

struct Outcome {
    row: String,
    ratio: f64,
    throttled: u64,
}

async fn push(t: Target, n: usize) -> Outcome {
    // the limit R, enforced by the simulator: 429 (THROTTLED for Shopify) above it
    match &t.sim {
        // Shopify's bucket: `maximum` points at once, refilled at R points per second
        Sim::Shopify(s) => s.set_bucket(t.rate * 2.0, t.rate),
        // R per second, with a burst of 20 ms worth of requests: arrivals that scheduling on a
        // loaded 2-core machine bunches together are not a rate above R
        other => other
            .common()
            .enforce_rate(t.rate, (t.rate / 50.0).max(2.0)),
    }
    let url = format!(
        "http://{}",
        coupond::simulators::serve(t.sim.router(), 0).await.unwrap()
    );
    let dir = tempfile::tempdir().unwrap();
    let overlay = format!(
        "[store]\npath = {:?}\n[log]\nfilter = \"error\"\n[sync]\nworkers = 16\n[programs.bench]\napi_keys = [\"{API_KEY}\"]\n{}",
        dir.path().join("coupond.db"),
        t.connection.replace("{url}", &url)
    );
    let a = app(overlay).await;
    let (engine, store) = (a.engine.clone(), a.state.store.clone());
    // queue the coupons straight into the store (as API writes would), then let the worker drain them
    let now = chrono::Utc::now();
    let seeders: Vec<_> = (0..32)
        .map(|s| {
            let store = store.clone();
            let provider = t.provider;
            tokio::spawn(async move {
                for i in (s..n).step_by(32) {
                    let codes: Vec<_> = (0..CODES_PER_COUPON)
                        .map(|j| json!({"code": format!("P{i:05}C{j}")}))
                        .collect();
                    let body = json!({"uuid_code": format!("P{i:05}"), "coupon_discount_type": "percent",
                                      "coupon_discount_amount": 10, "coupon_duration_type": "once",
                                      "promotion_codes": codes, "sync": {"provider": provider}});
                    let c = coupond::domain::NewCoupon::parse(body.as_object().unwrap(), now)
                        .unwrap();
                    store.create_coupon("bench", &c, now).await.unwrap();
                }
            })
        })
        .collect();
    for s in seeders {
        s.await.unwrap();
    }
    let token = tokio_util::sync::CancellationToken::new();
    let wake = Arc::new(tokio::sync::Notify::new());
    let started = Instant::now();
    let worker = tokio::spawn(engine.clone().run(token.clone(), wake));
    let mut last = (Instant::now(), 0usize);
    let stats = loop {
        if last.0.elapsed() >= Duration::from_secs(10) {
            let sent = t.sim.common().log.lock().unwrap().len();
            println!(
                "  {}: {:.0} req/s over the last {:.0} s ({sent} requests so far)",
                t.label,
                (sent - last.1) as f64 / last.0.elapsed().as_secs_f64(),
                last.0.elapsed().as_secs_f64()
            );
            last = (Instant::now(), sent);
        }
        let s = store.outbox_stats(chrono::Utc::now()).await.unwrap();
        if s.depth == 0 {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let secs = started.elapsed().as_secs_f64();
    token.cancel();
    let _ = worker.await;
    assert_eq!(stats.dead, 0, "{}: no coupon may fail", t.label);
    let (requests, refused) = {
        let log = t.sim.common().log.lock().unwrap();
        let refused = log.iter().filter(|r| r.status == 429).count() as u64;
        (log.len() as u64, refused)
    };
    let (throttled, achieved) = match &t.sim {
        Sim::Shopify(s) => {
            let spent = s.spent();
            // the budget over the run is the full bucket plus R per second
            (s.throttled(), (spent - t.rate * 2.0).max(0.0) / secs)
        }
        _ => (refused, (requests - refused) as f64 / secs),
    };
    let ratio = achieved / t.rate;
    let (objects, codes) = t.sim.held();
    assert_eq!(
        codes,
        n * CODES_PER_COUPON,
        "{}: every code reached the simulator",
        t.label
    );
    let row = format!(
        "| {} | R = {} {} | {requests} | {objects} objects, {codes} codes | {secs:.1} s | {achieved:.1} {} | **{ratio:.3}** | {throttled} |",
        t.label, t.rate, t.unit, t.unit
    );
    println!("{row}");
    store.close().await;
    Outcome {
        row,
        ratio,
        throttled,
    }
}

pub async fn section(n: usize) -> crate::doc::Section {
    let mut body = String::new();
    body.push_str("## Push throughput\n\n");
    body.push_str(&crate::common::stamp());
    body.push_str(&format!(
        "\n\n{n} coupons with {CODES_PER_COUPON} promotion codes each are queued in the store (as API writes \
         leave them), then the worker (16 pushes in flight) drains them into one provider simulator at a \
         time. Each simulator enforces its limit R and refuses above it: a token bucket of R requests per \
         second with a burst of R/50, i.e. 20 ms of arrivals (429), or for Shopify the calculated-cost bucket ({} points, refilled at R \
         points per second; `THROTTLED`). coupond's connection is configured with the same R \
         (`rate_per_second`, or `rate_per_minute` = 60·R for Paddle); for Shopify it paces itself by the \
         bucket the answers report. Achieved is successful requests per second (Shopify: cost points \
         charged beyond the initial bucket, per second). Goal: achieved ÷ R ≥ 0.95 and no refusal.\n\n",
        SHOPIFY_POINTS * 2.0
    ));
    body.push_str(
        "| provider | limit | requests | held by the simulator | wall time | achieved | achieved ÷ R | 429 / THROTTLED |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    let mut worst: f64 = f64::MAX;
    let mut refusals = 0;
    // PUSH_PROVIDERS=stripe,shopify narrows a quick look to some providers
    let only = std::env::var("PUSH_PROVIDERS")
        .unwrap_or_default()
        .to_lowercase();
    for t in targets() {
        if !only.is_empty()
            && !only
                .split(',')
                .any(|p| t.label.to_lowercase().starts_with(p.trim()))
        {
            continue;
        }
        let o = push(t, n).await;
        worst = worst.min(o.ratio);
        refusals += o.throttled;
        body.push_str(&o.row);
        body.push('\n');
    }
    body.push_str(&format!(
        "\nLowest achieved ÷ R: **{worst:.3}**; refusals in all runs: **{refusals}** (goal ≥ 0.95 and 0).\n"
    ));
    body.push_str(
        "\nWhere the time goes: coupond's limiter gives each request the next free slot, 1/R apart \
         (Shopify: waits until the bucket it last saw holds the mutation's cost), so the wall time is the \
         requests ÷ R. The requests per coupon are the provider's: for Stripe one coupon plus one promotion \
         code per code; for Paddle Billing one discount group plus one discount per code; for Paddle Classic \
         one coupon per code; for Shopify one discount per code, created and then its metafields set (two \
         mutations); WooCommerce takes a coupon's codes in one batch request (up to 100), so its R is set \
         lower to be the binding limit. Each push also costs a few SQLite write transactions (the claim, the links it records, the \
         completion), shared by group commit and well below 1/R at these rates.\n",
    );
    crate::doc::Section { name: "push", body }
}
