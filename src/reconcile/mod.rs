//! `coupond --reconcile`: compare every provider object that carries our marker with the store,
//! through the same pure mapping the sync uses; report drift; repair unless `--dry-run`.
//! Exit codes: 0 in sync (after repair), 1 drift left, 2 errors.

mod codes;

use crate::cli::{Cli, Format};
use crate::config::{OrphanPolicy, Settings};
use crate::domain::ProviderKind;
use crate::providers::Adapter;
use crate::providers::stripe::mapping::{MARKER, MARKER_PROGRAM, map_code, map_coupon};
use crate::providers::stripe::reconcile::{FieldDrift, code_drift, coupon_drift};
use crate::providers::stripe::{StripeClient, code_spec_from_remote, metadata_of};
use crate::store::Store;
use crate::store::outbox::{DesiredState, Link, LinkChange};
use crate::sync::clock::SystemClock;
use crate::sync::connections::Connections;
use crate::sync::retry::RetryPolicy;
use crate::sync::{Engine, EngineOptions};
use anyhow::Context;
use chrono::Utc;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

/// One object that is not in sync.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// `drifted`, `missing` or `orphan`.
    pub class: &'static str,
    /// `coupon` or `code`.
    pub kind: &'static str,
    pub remote_id: String,
    pub uuid_code: Option<String>,
    pub code: Option<String>,
    pub fields: Vec<FieldDrift>,
    #[serde(skip)]
    coupon_id: Option<i64>,
    #[serde(skip)]
    change: Option<LinkChange>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Counts {
    pub in_sync: u64,
    pub drifted: u64,
    pub missing: u64,
    pub orphan: u64,
    pub foreign: u64,
}

/// The report of one program × provider.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectionReport {
    pub program: String,
    pub provider: &'static str,
    pub counts: Counts,
    pub findings: Vec<Finding>,
    pub error: Option<String>,
    pub requests: u64,
}

impl ConnectionReport {
    /// Counts the findings by class.
    fn count_findings(&mut self) {
        for f in &self.findings {
            match f.class {
                "drifted" => self.counts.drifted += 1,
                "missing" => self.counts.missing += 1,
                _ => self.counts.orphan += 1,
            }
        }
    }

    fn drift_left(&self) -> bool {
        self.counts.drifted + self.counts.missing + self.counts.orphan > 0
    }
}

fn ours(v: &Value, program: &str) -> bool {
    v["metadata"][MARKER] == "1" && v["metadata"][MARKER_PROGRAM] == program
}

/// Pages through a Stripe list endpoint, one page (≤ 100 objects) at a time.
async fn each_page(
    client: &StripeClient,
    path: &str,
    requests: &mut u64,
    mut f: impl FnMut(&Value),
) -> anyhow::Result<()> {
    let mut after: Option<String> = None;
    loop {
        let q = match &after {
            Some(a) => format!("{path}?limit=100&starting_after={a}"),
            None => format!("{path}?limit=100"),
        };
        let page = client.get("reconcile_list", &q).await?;
        *requests += 1;
        let data = page["data"].as_array().cloned().unwrap_or_default();
        for o in &data {
            f(o);
        }
        if page["has_more"] != true || data.is_empty() {
            return Ok(());
        }
        after = data
            .last()
            .and_then(|o| o["id"].as_str())
            .map(str::to_owned);
    }
}

/// A coupon's desired state, read once per scan.
async fn desired_of<'a>(
    store: &Store,
    cache: &'a mut HashMap<i64, DesiredState>,
    id: i64,
) -> anyhow::Result<&'a DesiredState> {
    Ok(match cache.entry(id) {
        std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
        std::collections::hash_map::Entry::Vacant(v) => v.insert(store.desired_state(id).await?.0),
    })
}

/// Scans one Stripe connection and classifies every object.
async fn scan_stripe(
    store: &Store,
    client: &StripeClient,
    program: &str,
    currency: &str,
) -> anyhow::Result<ConnectionReport> {
    let links = store.links_of(program, ProviderKind::Stripe).await?;
    let by_remote: HashMap<String, (i64, Link)> = links
        .iter()
        .map(|(id, l)| (l.remote_id.clone(), (*id, l.clone())))
        .collect();
    let mut report = ConnectionReport {
        program: program.into(),
        provider: "stripe",
        counts: Counts::default(),
        findings: Vec::new(),
        error: None,
        requests: 0,
    };
    let now = Utc::now();
    let mut seen: HashSet<String> = HashSet::new();
    let mut desired_cache = HashMap::new();
    let mut coupons = Vec::new();
    each_page(client, "/v1/coupons", &mut report.requests, |c| {
        coupons.push(c.clone())
    })
    .await?;
    for c in &coupons {
        if !ours(c, program) {
            report.counts.foreign += 1;
            continue;
        }
        let id = c["id"].as_str().unwrap_or_default().to_owned();
        seen.insert(id.clone());
        let uuid = c["metadata"]["coupond_coupon"].as_str().map(str::to_owned);
        let linked = by_remote.get(&id).filter(|(_, l)| l.kind == "coupon");
        let Some((cid, link)) = linked else {
            report.findings.push(Finding {
                class: "orphan",
                kind: "coupon",
                remote_id: id,
                uuid_code: uuid,
                code: None,
                fields: vec![],
                coupon_id: None,
                change: None,
            });
            continue;
        };
        let desired = desired_of(store, &mut desired_cache, *cid).await?;
        if desired.deleted {
            report.findings.push(Finding {
                class: "orphan",
                kind: "coupon",
                remote_id: id,
                uuid_code: uuid,
                code: None,
                fields: vec![],
                coupon_id: None,
                change: None,
            });
            continue;
        }
        let Ok(spec) = map_coupon(program, currency, &desired.coupon) else {
            continue;
        };
        let fields = coupon_drift(&spec, c);
        if fields.is_empty() {
            report.counts.in_sync += 1;
        } else {
            let immutable = fields
                .iter()
                .any(|f| f.field != "name" && !f.field.starts_with("metadata."));
            let theirs = crate::providers::stripe::mapping::CouponSpec {
                name: c["name"].as_str().unwrap_or_default().to_owned(),
                metadata: metadata_of(c),
                ..spec.clone()
            };
            let change = LinkChange::Theirs {
                kind: "coupon".into(),
                local_key: link.local_key.clone(),
                remote: serde_json::to_value(&theirs)?,
                keep_fingerprint: !immutable,
            };
            report.findings.push(Finding {
                class: "drifted",
                kind: "coupon",
                remote_id: id,
                uuid_code: uuid,
                code: None,
                fields,
                coupon_id: Some(*cid),
                change: Some(change),
            });
        }
    }
    let mut codes = Vec::new();
    each_page(client, "/v1/promotion_codes", &mut report.requests, |c| {
        codes.push(c.clone())
    })
    .await?;
    for p in &codes {
        if !ours(p, program) {
            report.counts.foreign += 1;
            continue;
        }
        let id = p["id"].as_str().unwrap_or_default().to_owned();
        seen.insert(id.clone());
        let uuid = p["metadata"]["coupond_coupon"].as_str().map(str::to_owned);
        let code = p["code"].as_str().map(str::to_owned);
        let active = p["active"] == true;
        let Some((cid, link)) = by_remote.get(&id).filter(|(_, l)| l.kind == "code") else {
            // retired codes stay in Stripe as inactive objects: only an active one is an orphan
            if active {
                report.findings.push(Finding {
                    class: "orphan",
                    kind: "code",
                    remote_id: id,
                    uuid_code: uuid,
                    code,
                    fields: vec![],
                    coupon_id: None,
                    change: None,
                });
            }
            continue;
        };
        let desired = desired_of(store, &mut desired_cache, *cid).await?;
        let want = desired
            .codes
            .iter()
            .find(|c| c.code.eq_ignore_ascii_case(&link.local_key));
        let Some(want) = want.filter(|_| !desired.deleted) else {
            if active {
                report.findings.push(Finding {
                    class: "orphan",
                    kind: "code",
                    remote_id: id,
                    uuid_code: uuid,
                    code,
                    fields: vec![],
                    coupon_id: None,
                    change: None,
                });
            }
            continue;
        };
        let Ok(spec) = map_code(program, currency, &desired.coupon, want, now) else {
            continue;
        };
        let fields = code_drift(&spec, p);
        if fields.is_empty() {
            report.counts.in_sync += 1;
        } else {
            let immutable = fields
                .iter()
                .any(|f| f.field != "active" && !f.field.starts_with("metadata."));
            let change = LinkChange::Theirs {
                kind: "code".into(),
                local_key: link.local_key.clone(),
                remote: serde_json::to_value(code_spec_from_remote(p))?,
                keep_fingerprint: !immutable,
            };
            report.findings.push(Finding {
                class: "drifted",
                kind: "code",
                remote_id: id,
                uuid_code: uuid,
                code,
                fields,
                coupon_id: Some(*cid),
                change: Some(change),
            });
        }
    }
    // linked objects Stripe no longer has
    for (cid, l) in &links {
        if (l.kind == "coupon" || l.kind == "code") && !seen.contains(&l.remote_id) {
            let uuid = store
                .desired_state(*cid)
                .await
                .ok()
                .map(|(d, _)| d.coupon.uuid_code);
            let kind = if l.kind == "coupon" { "coupon" } else { "code" };
            let code = (kind == "code").then(|| l.local_key.clone());
            let change = LinkChange::Drop {
                kind: l.kind.clone(),
                local_key: l.local_key.clone(),
            };
            report.findings.push(Finding {
                class: "missing",
                kind,
                remote_id: l.remote_id.clone(),
                uuid_code: uuid,
                code,
                fields: vec![],
                coupon_id: Some(*cid),
                change: Some(change),
            });
        }
    }
    report.count_findings();
    Ok(report)
}

/// Repairs a report: re-marks drifted and missing objects, retires orphans (per policy).
/// Returns the coupons that were marked for sync.
async fn repair(
    store: &Store,
    client: &StripeClient,
    report: &ConnectionReport,
    orphans: OrphanPolicy,
) -> anyhow::Result<Vec<i64>> {
    let mut per_coupon: HashMap<i64, (Vec<LinkChange>, Vec<String>)> = HashMap::new();
    for f in &report.findings {
        if let (Some(cid), Some(change)) = (f.coupon_id, &f.change) {
            let e = per_coupon.entry(cid).or_default();
            e.0.push(change.clone());
            let what = match f.class {
                "missing" => format!(
                    "Stripe {} {} was missing and is created again",
                    f.kind, f.remote_id
                ),
                _ => format!(
                    "Stripe {} {} was changed by hand ({}); coupond's values are written back",
                    f.kind,
                    f.remote_id,
                    f.fields
                        .iter()
                        .map(|d| format!(
                            "{}: {:?} overwritten with {:?}",
                            d.field, d.theirs, d.ours
                        ))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            e.1.push(what);
        }
    }
    let marked: Vec<i64> = per_coupon.keys().copied().collect();
    for (cid, (changes, messages)) in per_coupon {
        // a missing coupon takes its codes with it: they are created again on the new coupon
        let mut changes = changes;
        if changes
            .iter()
            .any(|c| matches!(c, LinkChange::Drop { kind, .. } if kind == "coupon"))
        {
            for (id, l) in store
                .links_of(&report.program, ProviderKind::Stripe)
                .await?
            {
                if id == cid && l.kind == "code" {
                    changes.push(LinkChange::Drop {
                        kind: l.kind,
                        local_key: l.local_key,
                    });
                }
            }
        }
        let message = format!("Reconcile: {}.", messages.join("; "));
        store
            .reconcile_repair(
                &report.program,
                cid,
                ProviderKind::Stripe,
                &changes,
                &message,
                Utc::now(),
            )
            .await?;
    }
    if orphans == OrphanPolicy::Retire {
        for f in report.findings.iter().filter(|f| f.class == "orphan") {
            let r = match f.kind {
                "coupon" => client.delete_coupon(&f.remote_id).await,
                _ => client.deactivate_code(&f.remote_id).await,
            };
            if let Err(e) = r
                && e.status() != Some(404)
            {
                return Err(e.into());
            }
        }
    }
    Ok(marked)
}

/// Repairs a report of a one-object-per-code provider: re-marks drifted and missing codes (the
/// push writes ours back or creates them again), retires orphans (per policy).
async fn repair_codes(
    store: &Store,
    src: &codes::Source<'_>,
    report: &ConnectionReport,
    orphans: OrphanPolicy,
) -> anyhow::Result<Vec<i64>> {
    let mut per_coupon: HashMap<i64, (Vec<LinkChange>, Vec<String>)> = HashMap::new();
    for f in &report.findings {
        if let (Some(cid), Some(change)) = (f.coupon_id, &f.change) {
            let e = per_coupon.entry(cid).or_default();
            e.0.push(change.clone());
            e.1.push(codes::what(src, f));
        }
    }
    let marked: Vec<i64> = per_coupon.keys().copied().collect();
    for (cid, (changes, messages)) in per_coupon {
        let message = format!("Reconcile: {}.", messages.join("; "));
        store
            .reconcile_repair(
                &report.program,
                cid,
                src.kind(),
                &changes,
                &message,
                Utc::now(),
            )
            .await?;
    }
    if orphans == OrphanPolicy::Retire {
        for f in report.findings.iter().filter(|f| f.class == "orphan") {
            if let Err(e) = src.retire(&f.remote_id).await
                && e.status() != Some(404)
            {
                return Err(e.into());
            }
        }
    }
    Ok(marked)
}

/// Pushes the repaired coupons (with this process's engine, or the daemon's worker if it takes
/// them first) and waits until each has settled: synced, retrying or dead. Bounded.
async fn settle(
    store: &Store,
    engine: &Engine,
    provider: ProviderKind,
    coupons: &[i64],
    limit: Duration,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        engine.drain().await?;
        let mut settled = true;
        for id in coupons {
            if let Some(st) = store.claim_state(*id, provider).await? {
                settled &= !st.claimed && st.completion().is_some();
            }
        }
        if settled || tokio::time::Instant::now() >= deadline {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn table(reports: &[ConnectionReport], out: &mut String) {
    for r in reports {
        let c = &r.counts;
        let _ = writeln!(
            out,
            "{} (program {}): {} in sync, {} drifted, {} missing, {} orphan, {} foreign ({} requests)",
            r.provider, r.program, c.in_sync, c.drifted, c.missing, c.orphan, c.foreign, r.requests
        );
        if let Some(e) = &r.error {
            let _ = writeln!(out, "  error: {e}");
        }
        for f in &r.findings {
            let who = match (&f.uuid_code, &f.code) {
                (Some(u), Some(c)) => format!("{u}/{c}"),
                (Some(u), None) => u.clone(),
                (None, Some(c)) => c.clone(),
                (None, None) => "-".into(),
            };
            let _ = writeln!(
                out,
                "  {:<8} {:<6} {:<28} {}",
                f.class, f.kind, who, f.remote_id
            );
            for d in &f.fields {
                let _ = writeln!(
                    out,
                    "           {}: ours {:?}, theirs {:?}",
                    d.field, d.ours, d.theirs
                );
            }
        }
    }
}

/// What to reconcile.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub dry_run: bool,
    pub program: Option<String>,
    pub provider: Option<ProviderKind>,
}

/// Scans (and repairs unless dry-run) every connection in scope. Returns the reports and whether
/// any connection could not be reconciled.
pub async fn reconcile_all(
    store: &Store,
    connections: &Connections,
    engine: &Engine,
    settings: &Settings,
    scope: &Scope,
) -> anyhow::Result<(Vec<ConnectionReport>, bool)> {
    let mut conns: Vec<_> = connections
        .all()
        .filter(|c| scope.program.as_deref().is_none_or(|p| p == c.program))
        .filter(|c| scope.provider.is_none_or(|w| w == c.provider))
        .cloned()
        .collect();
    conns.sort_by(|a, b| (&a.program, a.provider).cmp(&(&b.program, b.provider)));
    let mut reports = Vec::new();
    let mut errors = false;
    for c in &conns {
        let src = match &c.adapter {
            Adapter::Stripe(_) => None,
            Adapter::Shopify(x) => Some(codes::Source::Shopify(x)),
            Adapter::WooCommerce(x) => Some(codes::Source::WooCommerce(x)),
            Adapter::PaddleBilling(x) => Some(codes::Source::PaddleBilling(x)),
            Adapter::PaddleClassic(x) => Some(codes::Source::PaddleClassic(x)),
            Adapter::Unsupported(_) => {
                errors = true;
                reports.push(ConnectionReport {
                    program: c.program.clone(),
                    provider: c.provider.as_str(),
                    counts: Counts::default(),
                    findings: vec![],
                    error: Some(format!(
                        "reconcile is not available for {} (no adapter)",
                        c.provider.display()
                    )),
                    requests: 0,
                });
                continue;
            }
        };
        let failed = |e: anyhow::Error| ConnectionReport {
            program: c.program.clone(),
            provider: c.provider.as_str(),
            counts: Counts::default(),
            findings: vec![],
            error: Some(format!("{e:#}")),
            requests: 0,
        };
        let r = match (&src, &c.adapter) {
            (Some(src), _) => {
                reconcile_codes(store, engine, settings, scope, src, &c.program, &c.currency).await
            }
            (None, Adapter::Stripe(client)) => {
                reconcile_stripe(
                    store,
                    engine,
                    settings,
                    scope,
                    client,
                    &c.program,
                    &c.currency,
                )
                .await
            }
            _ => unreachable!("every adapter is handled above"),
        };
        match r {
            Ok(r) => reports.push(r),
            Err(e) => {
                errors = true;
                reports.push(failed(e));
            }
        }
    }
    Ok((reports, errors))
}

async fn reconcile_stripe(
    store: &Store,
    engine: &Engine,
    settings: &Settings,
    scope: &Scope,
    client: &StripeClient,
    program: &str,
    currency: &str,
) -> anyhow::Result<ConnectionReport> {
    let mut r = scan_stripe(store, client, program, currency).await?;
    if !scope.dry_run && r.drift_left() {
        let marked = repair(store, client, &r, settings.reconcile.orphans).await?;
        // let the sync engine write our values back now, then look again
        settle(
            store,
            engine,
            ProviderKind::Stripe,
            &marked,
            Duration::from_secs(60),
        )
        .await?;
        let requests = r.requests;
        r = scan_stripe(store, client, program, currency).await?;
        r.requests += requests;
        after_repair(&mut r, settings.reconcile.orphans);
    }
    Ok(r)
}

async fn reconcile_codes(
    store: &Store,
    engine: &Engine,
    settings: &Settings,
    scope: &Scope,
    src: &codes::Source<'_>,
    program: &str,
    currency: &str,
) -> anyhow::Result<ConnectionReport> {
    let mut r = codes::scan(store, src, program, currency).await?;
    if !scope.dry_run && r.drift_left() {
        let marked = repair_codes(store, src, &r, settings.reconcile.orphans).await?;
        settle(store, engine, src.kind(), &marked, Duration::from_secs(60)).await?;
        let requests = r.requests;
        r = codes::scan(store, src, program, currency).await?;
        r.requests += requests;
        after_repair(&mut r, settings.reconcile.orphans);
    }
    Ok(r)
}

/// Reported orphans are left on purpose (`orphans = "report"`): they do not count as drift left.
fn after_repair(r: &mut ConnectionReport, orphans: OrphanPolicy) {
    if orphans == OrphanPolicy::Report {
        r.counts.orphan = 0;
        r.findings.retain(|f| f.class != "orphan");
    }
}

/// Records a run: never as a success when a connection failed or was rate-limited.
pub async fn record(
    store: &Store,
    trigger: &str,
    started: chrono::DateTime<Utc>,
    reports: &[ConnectionReport],
    errors: bool,
) -> anyhow::Result<String> {
    let drift = reports.iter().any(ConnectionReport::drift_left);
    let failures: Vec<String> = reports
        .iter()
        .filter_map(|r| {
            r.error
                .as_ref()
                .map(|e| format!("{}/{}: {e}", r.program, r.provider))
        })
        .collect();
    let outcome = if failures.iter().any(|f| f.contains("429")) {
        "rate_limited"
    } else if errors {
        "failed"
    } else if drift {
        "drift_left"
    } else {
        "in_sync"
    };
    let mut totals = Counts::default();
    for r in reports {
        totals.in_sync += r.counts.in_sync;
        totals.drifted += r.counts.drifted;
        totals.missing += r.counts.missing;
        totals.orphan += r.counts.orphan;
        totals.foreign += r.counts.foreign;
    }
    for (class, n) in [
        ("in_sync", totals.in_sync),
        ("drifted", totals.drifted),
        ("missing", totals.missing),
        ("orphan", totals.orphan),
        ("foreign", totals.foreign),
    ] {
        metrics::gauge!("coupond_reconcile_objects", "class" => class).set(n as f64);
    }
    metrics::counter!("coupond_reconcile_runs_total", "outcome" => outcome).increment(1);
    store
        .record_reconcile(&crate::store::outbox::ReconcileRun {
            trigger: trigger.into(),
            started_at: started.timestamp_micros(),
            finished_at: Utc::now().timestamp_micros(),
            outcome: outcome.into(),
            counts: serde_json::to_string(&totals)?,
            message: failures.join("; "),
        })
        .await?;
    Ok(outcome.into())
}

/// Runs `--reconcile`; returns the exit code.
pub async fn run(cli: &Cli, settings: &Settings) -> anyhow::Result<u8> {
    let store = Store::open(&settings.store.path, &settings.store.options())
        .await
        .with_context(|| format!("opening store {}", settings.store.path.display()))?;
    let connections = Arc::new(Connections::from_settings(settings)?);
    let provider = match cli.provider.as_deref() {
        None => None,
        Some(p) => {
            Some(ProviderKind::parse(p).ok_or_else(|| anyhow::anyhow!("unknown provider {p:?}"))?)
        }
    };
    let s = &settings.sync;
    let engine = Engine::new(
        store.clone(),
        connections.clone(),
        RetryPolicy::from_settings(s),
        Arc::new(SystemClock),
        EngineOptions {
            workers: s.workers,
            lease: Duration::from_secs(s.lease_secs),
            poll_interval: Duration::from_millis(s.poll_interval_ms),
            credentials_probe: Duration::from_secs(s.credentials_probe_secs),
        },
    );
    let started = Utc::now();
    let scope = Scope {
        dry_run: cli.dry_run,
        program: cli.program.clone(),
        provider,
    };
    let (reports, errors) = reconcile_all(&store, &connections, &engine, settings, &scope).await?;
    record(&store, "cli", started, &reports, errors).await?;
    let drift = reports.iter().any(ConnectionReport::drift_left);
    let code = if errors {
        2
    } else if drift {
        1
    } else {
        0
    };
    let mut out = String::new();
    match cli.format {
        Format::Json => {
            out = serde_json::to_string_pretty(
                &json!({"dry_run": cli.dry_run, "exit": code, "connections": reports}),
            )?
        }
        Format::Table => {
            table(&reports, &mut out);
            let _ = writeln!(
                out,
                "{}",
                match code {
                    0 => "all in sync",
                    1 if cli.dry_run => "drift found (dry run: nothing repaired)",
                    1 => "drift left after repair",
                    _ => "errors: some connections could not be reconciled",
                }
            );
        }
    }
    println!("{}", out.trim_end());
    store.close().await;
    Ok(code)
}
