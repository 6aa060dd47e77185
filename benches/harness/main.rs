//! Benchmark harness (not a test): `cargo bench --bench harness [-- <section>…]`.
//! Prints its figures and rewrites the measured sections of `docs/BENCHMARKS.md`.
//!
//! Sections: `api`, `push`, `lifecycle`, `reconcile`, `mirror` (all when none is named).
//! `PUSH_COUPONS`, `LIFECYCLE_COUPONS`, `LIFECYCLE_MARKS`, `RECONCILE_CODES` and
//! `RECONCILE_PROVIDERS` shrink the largest workloads for a quick look (the documented figures use
//! the defaults).

mod api;
mod common;
mod doc;
mod lifecycle;
mod mirror;
mod push;
mod reconcile;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let only = |name: &str| args.is_empty() || args.iter().any(|a| a == name);
    println!("machine: {}", common::machine());
    let mut ran = Vec::new();
    if only("api") {
        ran.push(api::section(3_200).await);
    }
    if only("push") {
        ran.push(push::section(env_or("PUSH_COUPONS", 10_000)).await);
    }
    if only("lifecycle") {
        ran.push(
            lifecycle::section(
                env_or("LIFECYCLE_COUPONS", 100_000),
                5,
                env_or("LIFECYCLE_MARKS", 1_000_000),
            )
            .await,
        );
    }
    if only("reconcile") {
        // RECONCILE_PROVIDERS=stripe and RECONCILE_CODES=10000,100000 narrow a quick look
        let providers: Vec<reconcile::Provider> = match std::env::var("RECONCILE_PROVIDERS") {
            Ok(p) => p
                .split(',')
                .map(|p| match p.trim() {
                    "stripe" => reconcile::Provider::Stripe,
                    "woocommerce" => reconcile::Provider::WooCommerce,
                    other => panic!("RECONCILE_PROVIDERS: unknown provider {other:?}"),
                })
                .collect(),
            Err(_) => vec![
                reconcile::Provider::WooCommerce,
                reconcile::Provider::Stripe,
            ],
        };
        let sizes: Vec<usize> = match std::env::var("RECONCILE_CODES") {
            Ok(n) => n
                .split(',')
                .map(|n| n.trim().parse().expect("RECONCILE_CODES: numbers of codes"))
                .collect(),
            Err(_) => vec![10_000, 100_000, 300_000],
        };
        ran.push(reconcile::section(&providers, &sizes).await);
    }
    if only("mirror") {
        ran.push(mirror::section(10_000).await);
    }
    doc::write(&ran);
}
