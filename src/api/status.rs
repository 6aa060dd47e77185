//! `/status` (real probes, 200 or 503 naming what fails), `/healthz`, `/metrics`.

use super::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde_json::{Value, json};
use std::sync::OnceLock;
use std::time::Instant;

static PROMETHEUS: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process-wide Prometheus recorder (installed once; later calls reuse it).
pub fn prometheus() -> Option<&'static PrometheusHandle> {
    PROMETHEUS
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets(&[
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                ])
                .ok()?
                .install_recorder()
                .ok()?;
            metrics::gauge!("coupond_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
            Some(handle)
        })
        .as_ref()
}

/// `GET /status`.
pub async fn status(State(s): State<AppState>) -> Response {
    let now = chrono::Utc::now();
    let mut failing: Vec<String> = Vec::new();

    let started = Instant::now();
    let store = match s.store.ping_write().await {
        Ok(()) => {
            json!({"ok": true, "write_round_trip_ms": started.elapsed().as_secs_f64() * 1000.0})
        }
        Err(e) => {
            failing.push("store".into());
            json!({"ok": false, "error": e.to_string()})
        }
    };

    let t = &s.thresholds;
    let outbox = match s.store.outbox_stats(now).await {
        Ok(o) => {
            let mut problems = Vec::new();
            if o.dead > t.max_dead {
                problems.push(format!("{} dead syncs (threshold {})", o.dead, t.max_dead));
            }
            if o.oldest_pending_secs
                .is_some_and(|a| a > t.max_oldest_pending_secs)
            {
                problems.push(format!(
                    "oldest waiting sync is {}s old (threshold {}s)",
                    o.oldest_pending_secs.unwrap_or(0),
                    t.max_oldest_pending_secs
                ));
            }
            if o.depth > t.max_outbox_depth {
                problems.push(format!(
                    "{} syncs waiting (threshold {})",
                    o.depth, t.max_outbox_depth
                ));
            }
            if !problems.is_empty() {
                failing.push("outbox".into());
            }
            json!({"ok": problems.is_empty(), "depth": o.depth, "dead": o.dead, "oldest_pending_secs": o.oldest_pending_secs,
                   "problems": problems, "thresholds": t})
        }
        Err(e) => {
            failing.push("outbox".into());
            json!({"ok": false, "error": e.to_string()})
        }
    };

    let mut providers: Vec<Value> = Vec::new();
    if let Some(engine) = s.sync.engine() {
        let mut conns: Vec<_> = engine.connections().all().collect();
        conns.sort_by(|a, b| (&a.program, a.provider).cmp(&(&b.program, b.provider)));
        for c in conns {
            let health = c.health();
            let stats = c.stats();
            let name = format!("provider:{}/{}", c.program, c.provider.as_str());
            let rejected = health.credentials_rejected.clone();
            if rejected.is_some() {
                failing.push(name.clone());
            }
            let transport = c.transport();
            providers.push(json!({
                "program": c.program, "provider": c.provider.as_str(), "ok": rejected.is_none(),
                "credentials": if rejected.is_some() { "rejected" } else { "ok" }, "credentials_error": rejected,
                "last_success": stats.last_success, "last_error": stats.last_error, "last_error_at": stats.last_error_at,
                "calls": stats.calls, "throttled_429": stats.throttled_429,
                "rate_limit_per_second": transport.map(|t| t.limiter().per_second()),
                "paused_for_secs": transport.and_then(|t| t.paused_for()).map(|d| d.as_secs_f64()),
                "adapter": if transport.is_some() { "available" } else { "not built yet" },
            }));
        }
    }

    let mut mirrors: Vec<Value> = Vec::new();
    for m in s.mirrors.iter() {
        let state = s
            .store
            .mirror_state(m.program(), now)
            .await
            .ok()
            .flatten()
            .unwrap_or_default();
        // failing: the last pass failed and no complete pass happened within three intervals
        let stale = state
            .lag_secs
            .is_none_or(|l| l as f64 > 3.0 * m.interval.as_secs_f64().max(1.0));
        let ok = state.last_error.is_none() || !stale;
        if !ok {
            failing.push(format!("upstream:{}", m.program()));
        }
        mirrors.push(json!({"program": m.program(), "ok": ok, "poll_interval_secs": m.interval.as_secs_f64(), "state": state}));
    }

    let last = s
        .store
        .reconcile_runs(1)
        .await
        .ok()
        .and_then(|mut r| r.pop());
    let next = s
        .reconcile_next
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let reconcile = json!({"last": last, "next": next});

    let healthy = failing.is_empty();
    let body = json!({
        "status": if healthy { "ok" } else { "failing" },
        "failing": failing,
        "version": env!("CARGO_PKG_VERSION"),
        "checked_at": crate::domain::time::format_ts(&now),
        "components": {"store": store, "outbox": outbox, "providers": providers, "mirrors": mirrors, "reconcile": reconcile},
    });
    let code = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body)).into_response()
}

/// `GET /metrics`: Prometheus text; outbox gauges are read at scrape time.
pub async fn metrics_text(State(s): State<AppState>) -> Response {
    if let Ok(o) = s.store.outbox_stats(chrono::Utc::now()).await {
        metrics::gauge!("coupond_outbox_depth").set(o.depth as f64);
        metrics::gauge!("coupond_outbox_dead").set(o.dead as f64);
        metrics::gauge!("coupond_outbox_oldest_pending_seconds")
            .set(o.oldest_pending_secs.unwrap_or(0) as f64);
    }
    let text = prometheus()
        .map(PrometheusHandle::render)
        .unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// Records every API request: count by route, method and status; latency by route.
pub async fn track(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = req.method().as_str().to_owned();
    let started = Instant::now();
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    metrics::counter!("coupond_http_requests_total", "route" => route.clone(), "method" => method, "status" => status).increment(1);
    metrics::histogram!("coupond_http_request_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
    resp
}
