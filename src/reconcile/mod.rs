//! `coupond --reconcile`: compare every provider object that carries our marker with the store,
//! through the same pure mapping the sync uses; report drift; repair unless `--dry-run`.
//! Exit codes: 0 in sync (after repair), 1 drift left, 2 errors.

mod codes;

use crate::cli::{Cli, Format};
use crate::config::{OrphanPolicy, Settings};
use crate::domain::{PromotionCode, ProviderKind};
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
use std::collections::HashMap;
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
    fn new(program: &str, provider: ProviderKind) -> Self {
        ConnectionReport {
            program: program.into(),
            provider: provider.as_str(),
            counts: Counts::default(),
            findings: Vec::new(),
            error: None,
            requests: 0,
        }
    }

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

/// The desired states of the coupons a scan meets, kept while neighbouring pages use them.
/// Providers list objects in the order they were created (Stripe newest first), and the codes
/// that concurrent workers pushed interleave a few coupons, so one coupon's codes spread over a
/// few pages: without the cache each page would load each of its coupons (and all their codes)
/// again. Bounded: a state the last two pages did not use is dropped.
#[derive(Default)]
struct DesiredCache {
    states: HashMap<i64, (DesiredState, u64)>,
    page: u64,
}

impl DesiredCache {
    async fn get(&mut self, store: &Store, coupon_id: i64) -> anyhow::Result<&DesiredState> {
        let page = self.page;
        let entry = match self.states.entry(coupon_id) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert((store.desired_state(coupon_id).await?.0, page))
            }
        };
        entry.1 = page;
        Ok(&entry.0)
    }

    /// Called after each page.
    fn page_done(&mut self) {
        self.page += 1;
        let page = self.page;
        self.states.retain(|_, (_, used)| *used + 2 >= page);
    }
}

/// One page (≤ 100 objects) of a Stripe list endpoint after the object `after`, and the id to
/// continue after when Stripe has more.
async fn stripe_page(
    client: &StripeClient,
    path: &str,
    after: Option<&str>,
) -> anyhow::Result<(Vec<Value>, Option<String>)> {
    let query = {
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("limit", "100");
        if let Some(a) = after {
            q.append_pair("starting_after", a);
        }
        q.finish()
    };
    let mut page = client
        .get("reconcile_list", &format!("{path}?{query}"))
        .await?;
    let data = match page["data"].take() {
        Value::Array(data) => data,
        _ => Vec::new(),
    };
    let next = if page["has_more"] == true {
        data.last()
            .and_then(|o| o["id"].as_str())
            .map(str::to_owned)
    } else {
        None
    };
    if next.is_some() && next.as_deref() == after {
        anyhow::bail!("Stripe listed {path} after {after:?} without moving on");
    }
    Ok((data, next))
}

/// Scans one Stripe connection and classifies every object. Memory is bounded by a page, as in
/// [`codes::scan`]: coupons, then promotion codes, are read one page at a time, their links are
/// looked up for that page only, and the ids read are recorded in the store for `find_missing`.
async fn scan_stripe(
    store: &Store,
    client: &StripeClient,
    program: &str,
    currency: &str,
) -> anyhow::Result<ConnectionReport> {
    let mut report = ConnectionReport::new(program, ProviderKind::Stripe);
    let scan = Scan::begin(store, program, ProviderKind::Stripe).await?;
    let mut desired = DesiredCache::default();
    let pages = async {
        for (path, kind) in [("/v1/coupons", "coupon"), ("/v1/promotion_codes", "code")] {
            let mut after: Option<String> = None;
            loop {
                let (page, next) = stripe_page(client, path, after.as_deref()).await?;
                report.requests += 1;
                let stripe = StripePage {
                    store,
                    program,
                    currency,
                    kind,
                };
                stripe
                    .classify(&page, &scan.run, &mut desired, &mut report)
                    .await?;
                desired.page_done();
                match next {
                    Some(n) => after = Some(n),
                    None => break,
                }
            }
        }
        Ok(())
    }
    .await;
    scan.finish(store, &["coupon", "code"], pages, report).await
}

/// What classifying one page of a Stripe listing needs.
struct StripePage<'a> {
    store: &'a Store,
    program: &'a str,
    currency: &'a str,
    /// `coupon` or `code`: the listing the page comes from.
    kind: &'static str,
}

impl StripePage<'_> {
    async fn classify(
        &self,
        page: &[Value],
        run: &str,
        desired: &mut DesiredCache,
        report: &mut ConnectionReport,
    ) -> anyhow::Result<()> {
        let (store, program, kind) = (self.store, self.program, self.kind);
        let id_of = |o: &Value| o["id"].as_str().unwrap_or_default().to_owned();
        let ids: Vec<String> = page
            .iter()
            .filter(|o| ours(o, program))
            .map(id_of)
            .collect();
        let links: HashMap<String, (i64, Link)> = store
            .links_by_remote(program, ProviderKind::Stripe, &ids)
            .await?
            .into_iter()
            .filter(|(_, l)| l.kind == kind)
            .map(|(id, l)| (l.remote_id.clone(), (id, l)))
            .collect();
        store.seen_add(run, &ids, Utc::now()).await?;
        let now = Utc::now();
        for o in page {
            if !ours(o, program) {
                report.counts.foreign += 1;
                continue;
            }
            let id = id_of(o);
            let uuid = o["metadata"]["coupond_coupon"].as_str().map(str::to_owned);
            let code = o["code"].as_str().map(str::to_owned);
            // retired codes stay in Stripe as inactive objects: only an active one is an orphan
            let live = kind == "coupon" || o["active"] == true;
            let orphan = Finding {
                class: "orphan",
                kind,
                remote_id: id.clone(),
                uuid_code: uuid.clone(),
                code: code.clone(),
                fields: vec![],
                coupon_id: None,
                change: None,
            };
            let Some((cid, link)) = links.get(&id) else {
                if live {
                    report.findings.push(orphan);
                }
                continue;
            };
            let d = desired.get(store, *cid).await?;
            // a promotion code we still want: the coupon's code the link names
            let want = d
                .codes
                .iter()
                .find(|c| kind == "code" && c.code.eq_ignore_ascii_case(&link.local_key));
            if d.deleted || (kind == "code" && want.is_none()) {
                if live {
                    report.findings.push(orphan);
                }
                continue;
            }
            let compared = match want {
                None => self.coupon_drift(d, link, o)?,
                Some(want) => self.code_drift(d, want, link, o, now)?,
            };
            // `None`: the mapping refuses the coupon (the sync reports that)
            let Some((fields, change)) = compared else {
                continue;
            };
            if fields.is_empty() {
                report.counts.in_sync += 1;
            } else {
                report.findings.push(Finding {
                    class: "drifted",
                    fields,
                    coupon_id: Some(*cid),
                    change: Some(change),
                    ..orphan
                });
            }
        }
        Ok(())
    }

    /// How a linked coupon differs from ours, and the link to write so that the next push sends
    /// ours back (a change to an immutable field makes the push create the coupon again).
    fn coupon_drift(
        &self,
        d: &DesiredState,
        link: &Link,
        c: &Value,
    ) -> anyhow::Result<Option<(Vec<FieldDrift>, LinkChange)>> {
        let Ok(spec) = map_coupon(self.program, self.currency, &d.coupon) else {
            return Ok(None);
        };
        let fields = coupon_drift(&spec, c);
        let immutable = fields
            .iter()
            .any(|f| f.field != "name" && !f.field.starts_with("metadata."));
        let theirs = crate::providers::stripe::mapping::CouponSpec {
            name: c["name"].as_str().unwrap_or_default().to_owned(),
            metadata: metadata_of(c),
            ..spec
        };
        let change = LinkChange::Theirs {
            kind: "coupon".into(),
            local_key: link.local_key.clone(),
            remote: serde_json::to_value(&theirs)?,
            keep_fingerprint: !immutable,
        };
        Ok(Some((fields, change)))
    }

    /// As `coupon_drift`, for a promotion code the coupon still has.
    fn code_drift(
        &self,
        d: &DesiredState,
        want: &PromotionCode,
        link: &Link,
        p: &Value,
        now: chrono::DateTime<Utc>,
    ) -> anyhow::Result<Option<(Vec<FieldDrift>, LinkChange)>> {
        let Ok(spec) = map_code(self.program, self.currency, &d.coupon, want, now) else {
            return Ok(None);
        };
        let fields = code_drift(&spec, p);
        let immutable = fields
            .iter()
            .any(|f| f.field != "active" && !f.field.starts_with("metadata."));
        let change = LinkChange::Theirs {
            kind: "code".into(),
            local_key: link.local_key.clone(),
            remote: serde_json::to_value(code_spec_from_remote(p))?,
            keep_fingerprint: !immutable,
        };
        Ok(Some((fields, change)))
    }
}

/// One scan's record of the provider objects it read: kept in the store (`reconcile_seen`), not
/// in memory, so that the scan's memory is a page whatever the number of objects.
struct Scan {
    program: String,
    provider: ProviderKind,
    run: String,
    started: chrono::DateTime<Utc>,
}

impl Scan {
    async fn begin(store: &Store, program: &str, provider: ProviderKind) -> anyhow::Result<Self> {
        let started = Utc::now();
        let run = store.seen_begin(started).await?;
        Ok(Scan {
            program: program.into(),
            provider,
            run,
            started,
        })
    }

    /// After the pages: adds the links (of `kinds`) whose object was not read, drops the run's
    /// record whether or not the pages got through, and counts the findings.
    async fn finish(
        self,
        store: &Store,
        kinds: &[&'static str],
        pages: anyhow::Result<()>,
        mut report: ConnectionReport,
    ) -> anyhow::Result<ConnectionReport> {
        let scanned = match pages {
            Ok(()) => self.find_missing(store, kinds, &mut report).await,
            Err(e) => Err(e),
        };
        store.seen_end(&self.run).await?;
        scanned?;
        report.count_findings();
        Ok(report)
    }

    /// Adds a finding for each link (of the given object kinds) whose object the run did not read.
    async fn find_missing(
        &self,
        store: &Store,
        kinds: &[&'static str],
        report: &mut ConnectionReport,
    ) -> anyhow::Result<()> {
        let (program, provider, run) = (&self.program, self.provider, &self.run);
        // links written during the scan are left to the next run: the push that wrote them may have
        // created what the scan read before
        let since = self.started.timestamp_micros();
        let mut after = 0;
        loop {
            let page = store.links_page(program, provider, run, after, 500).await?;
            let Some(last) = page.last() else { break };
            after = last.rowid;
            for pl in page {
                let l = pl.link;
                let Some(kind) = kinds.iter().copied().find(|k| *k == l.kind) else {
                    continue;
                };
                if l.remote_id.is_empty() || pl.updated_at >= since {
                    continue;
                }
                report.findings.push(Finding {
                    class: "missing",
                    kind,
                    remote_id: l.remote_id,
                    uuid_code: Some(pl.uuid_code),
                    code: (kind == "code").then(|| l.local_key.clone()),
                    fields: vec![],
                    coupon_id: Some(pl.coupon_id),
                    change: Some(LinkChange::Drop {
                        kind: l.kind,
                        local_key: l.local_key,
                    }),
                });
            }
        }
        Ok(())
    }
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
            for l in store.links(cid, ProviderKind::Stripe).await? {
                if l.kind == "code" {
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
                    error: Some(format!(
                        "reconcile is not available for {} (no adapter)",
                        c.provider.display()
                    )),
                    ..ConnectionReport::new(&c.program, c.provider)
                });
                continue;
            }
        };
        let failed = |e: anyhow::Error| ConnectionReport {
            error: Some(format!("{e:#}")),
            ..ConnectionReport::new(&c.program, c.provider)
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
