//! What every benchmark shares: the machine line, an in-process daemon, /proc readings.

use coupond::app::App;
use coupond::config::{Settings, Sources};
use std::collections::BTreeMap;
use std::time::Duration;

pub const API_KEY: &str = "bench_key_0123456789abcdef";
pub const STRIPE_KEY: &str = "sk_test_bench_0123456789";

pub fn machine() -> String {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let mem_gib = proc_field("/proc/meminfo", "MemTotal:").unwrap_or(0) / 1024 / 1024;
    format!("{cpus} cores ({model}), {mem_gib} GiB RAM, release build")
}

/// When and from which commit a section was measured (sections of one file may come from
/// different runs; every ratio is taken within one section's run).
pub fn stamp() -> String {
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    format!(
        "Measured {} at commit `{commit}` on {}.",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        machine()
    )
}

/// A daemon in this process, built from a configuration overlay, without its background worker.
pub async fn app(overlay: String) -> App {
    let settings = Settings::load(&Sources {
        overlays: vec![overlay],
        env: Some(BTreeMap::new()),
        file: None,
    })
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    App::build(settings, Some(listener))
        .await
        .unwrap()
        .without_worker()
}

/// A `KiB` field of a /proc status-like file (`VmRSS:`, `VmHWM:`, `MemTotal:`).
fn proc_field(path: &str, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(path).ok()?;
    s.lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Peak resident set (VmHWM, KiB) of a running process.
pub fn vm_hwm(pid: u32) -> Option<u64> {
    proc_field(&format!("/proc/{pid}/status"), "VmHWM:")
}

/// The resident set now split by kind (KiB): anonymous memory (the heap), and mapped files plus
/// shared memory (SQLite's `-shm` index, the binary).
pub fn rss_parts(pid: u32) -> Option<(u64, u64)> {
    let path = format!("/proc/{pid}/status");
    let anon = proc_field(&path, "RssAnon:")?;
    let mapped = proc_field(&path, "RssFile:")? + proc_field(&path, "RssShmem:")?;
    Some((anon, mapped))
}

/// Resident set now (VmRSS, KiB) of a running process.
pub fn vm_rss(pid: u32) -> Option<u64> {
    proc_field(&format!("/proc/{pid}/status"), "VmRSS:")
}

/// CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat.
pub fn cpu_secs(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // the fields after the command, which is in parentheses and may contain spaces
    let rest = s.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

pub fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}
