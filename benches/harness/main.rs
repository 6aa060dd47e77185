//! Benchmark harness (not a test): `cargo bench --bench harness [-- <section>…]`.
//! Prints its figures and rewrites the measured sections of `docs/BENCHMARKS.md`.
//!
//! Sections: `api`, `push`, `lifecycle`, `reconcile`, `mirror` (all when none is named).
//! `PUSH_COUPONS`, `LIFECYCLE_COUPONS` and `LIFECYCLE_MARKS` shrink the largest workloads for a
//! quick look (the documented figures use the defaults).

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
        ran.push(reconcile::section(&[10_000, 100_000, 300_000]).await);
    }
    if only("mirror") {
        ran.push(mirror::section(10_000).await);
    }
    doc::write(&ran);
}
