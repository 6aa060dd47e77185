//! Wiring: builds the store, API and sync engine from settings; runs until shutdown.

use crate::api::{self, AppState, Programs};
use crate::config::Settings;
use crate::mirror::Mirror;
use crate::store::Store;
use crate::sync::clock::{Clock, SystemClock};
use crate::sync::connections::Connections;
use crate::sync::retry::RetryPolicy;
use crate::sync::{Dispatcher, Engine, EngineOptions};
use anyhow::Context;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// A built daemon, bound to its listener, not yet serving.
pub struct App {
    pub state: AppState,
    pub engine: Arc<Engine>,
    settings: Settings,
    listener: TcpListener,
    background_worker: bool,
}

impl App {
    /// Opens and migrates the store and binds the listener (`server.listen`, or the given one).
    pub async fn build(settings: Settings, listener: Option<TcpListener>) -> anyhow::Result<Self> {
        Self::build_with_clock(settings, listener, Arc::new(SystemClock)).await
    }

    /// As `build`, with the engine's clock given (tests use a manual clock).
    pub async fn build_with_clock(
        settings: Settings,
        listener: Option<TcpListener>,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        let store = Store::open(&settings.store.path, &settings.store.options())
            .await
            .with_context(|| format!("opening store {}", settings.store.path.display()))?;
        // One daemon per store: leases left by a crashed run are released at once.
        let released = store.release_all_claims().await?;
        if released > 0 {
            tracing::info!(released, "released sync leases of a previous run");
        }
        let listener = match listener {
            Some(l) => l,
            None => TcpListener::bind(settings.server.listen)
                .await
                .with_context(|| format!("binding {}", settings.server.listen))?,
        };
        let connections = Arc::new(Connections::from_settings(&settings)?);
        let s = &settings.sync;
        let engine = Arc::new(Engine::new(
            store.clone(),
            connections,
            RetryPolicy::from_settings(s),
            clock,
            EngineOptions {
                workers: s.workers,
                lease: Duration::from_secs(s.lease_secs),
                poll_interval: Duration::from_millis(s.poll_interval_ms),
                credentials_probe: Duration::from_secs(s.credentials_probe_secs),
            },
        ));
        let mirror_client = reqwest::Client::builder()
            .timeout(Duration::from_millis(s.request_timeout_ms))
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("coupond/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let dispatcher = Dispatcher::new(
            Some(engine.clone()),
            Duration::from_millis(s.inline_deadline_ms),
        );
        let mirrors: Vec<Arc<Mirror>> = settings
            .programs
            .iter()
            .filter_map(|(name, p)| {
                let u = p.upstream.as_ref()?;
                Some(Arc::new(Mirror::new(
                    name,
                    u,
                    mirror_client.clone(),
                    store.clone(),
                    dispatcher.wake_handle(),
                    Duration::from_secs(s.max_retry_after_secs),
                )))
            })
            .collect();
        let state = AppState {
            programs: Arc::new(Programs::from_settings(&settings)),
            sync: dispatcher,
            mirrors: Arc::new(mirrors),
            public_url: settings.server.public_url.as_deref().map(Arc::from),
            thresholds: Arc::new(settings.status.clone()),
            reconcile_next: Arc::new(std::sync::Mutex::new(None)),
            store,
        };
        api::status::prometheus();
        Ok(Self {
            state,
            engine,
            settings,
            listener,
            background_worker: true,
        })
    }

    /// Serve without the background worker (tests drive `engine.run_once()` themselves).
    pub fn without_worker(mut self) -> Self {
        self.background_worker = false;
        self
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("bound listener")
    }

    /// Serves until `shutdown` resolves: stops accepting, stops claiming, lets in-flight provider
    /// calls finish (bounded by `sync.shutdown_grace_secs`), releases leases, closes the store.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let token = CancellationToken::new();
        let router = api::router(
            self.state.clone(),
            self.settings.server.body_limit_bytes,
            Duration::from_millis(self.settings.server.request_timeout_ms),
        );
        let t = token.clone();
        tokio::spawn(async move {
            shutdown.await;
            t.cancel();
        });
        let worker = self.background_worker.then(|| {
            tokio::spawn(
                self.engine
                    .clone()
                    .run(token.clone(), self.state.sync.wake_handle()),
            )
        });
        let pollers: Vec<_> = if self.background_worker {
            self.state
                .mirrors
                .iter()
                .map(|m| tokio::spawn(m.clone().run(token.clone())))
                .collect()
        } else {
            Vec::new()
        };
        let reconciler =
            if self.background_worker && !self.settings.reconcile.schedule.trim().is_empty() {
                Some(tokio::spawn(scheduled_reconcile(
                    self.settings.clone(),
                    self.state.store.clone(),
                    self.engine.clone(),
                    self.state.reconcile_next.clone(),
                    token.clone(),
                )))
            } else {
                None
            };
        let watchdog = sd_notify::watchdog_enabled().map(|period| {
            let engine = self.background_worker.then(|| self.engine.clone());
            tokio::spawn(watchdog(
                self.state.store.clone(),
                engine,
                period,
                token.clone(),
            ))
        });
        // The Prometheus recorder keeps histogram samples until upkeep folds them into their
        // buckets; without a scrape they would pile up (about 19 MiB per 1,000,000 outbox marks
        // in the lifecycle benchmark).
        let upkeep = api::status::prometheus().map(|handle| {
            let t = token.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(5));
                loop {
                    tokio::select! {
                        _ = t.cancelled() => break,
                        _ = tick.tick() => handle.run_upkeep(),
                    }
                }
            })
        });
        // READY: migrations ran (in build) and the listener is bound.
        let _ = sd_notify::notify(&[
            sd_notify::NotifyState::Ready,
            sd_notify::NotifyState::Status("serving"),
        ]);
        tracing::info!(addr = %self.local_addr(), "coupond is serving");
        let served = axum::serve(self.listener, router)
            .with_graceful_shutdown(token.clone().cancelled_owned())
            .await;
        let _ = sd_notify::notify(&[
            sd_notify::NotifyState::Stopping,
            sd_notify::NotifyState::Status("stopping"),
        ]);
        let grace = Duration::from_secs(self.settings.sync.shutdown_grace_secs);
        let engine = self.engine.clone();
        let drain = async move {
            if let Some(w) = worker {
                let _ = w.await;
            }
            engine.finish_pushes().await;
        };
        if tokio::time::timeout(grace, drain).await.is_err() {
            tracing::warn!(
                ?grace,
                "in-flight provider calls did not finish in time; their leases are released"
            );
        }
        if let Some(w) = watchdog {
            w.abort();
        }
        if let Some(u) = upkeep {
            let _ = u.await;
        }
        if let Some(r) = reconciler {
            let _ = r.await;
        }
        for p in pollers {
            // a pass is idempotent: stopping mid-pass loses nothing
            let _ = p.await;
        }
        if let Err(e) = self.state.store.release_all_claims().await {
            tracing::warn!(error = %e, "releasing leases at shutdown failed");
        }
        self.state.store.close().await;
        tracing::info!("coupond stopped");
        served.context("serving HTTP")
    }
}

/// The daemon's own reconcile runs: the cron schedule only signals; one task runs them, so runs
/// never overlap (ticks during a run coalesce into one next run). Each run is recorded.
async fn scheduled_reconcile(
    settings: Settings,
    store: Store,
    engine: Arc<Engine>,
    next: Arc<std::sync::Mutex<Option<String>>>,
    token: CancellationToken,
) {
    use tokio_cron_scheduler::{Job, JobScheduler};
    let tick = Arc::new(tokio::sync::Notify::new());
    let t = tick.clone();
    let job = match Job::new_async(settings.reconcile.schedule.as_str(), move |_, _| {
        let t = t.clone();
        Box::pin(async move { t.notify_one() })
    }) {
        Ok(j) => j,
        Err(e) => {
            tracing::error!(schedule = %settings.reconcile.schedule, error = %e, "reconcile.schedule is not a valid cron expression; scheduled reconcile is off");
            return;
        }
    };
    let mut sched = match JobScheduler::new().await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "the reconcile scheduler could not start");
            return;
        }
    };
    let Ok(job_id) = sched.add(job).await else {
        return;
    };
    if sched.start().await.is_err() {
        return;
    }
    let set_next = async |sched: &mut JobScheduler| {
        let n = sched.next_tick_for_job(job_id).await.ok().flatten();
        *next.lock().unwrap_or_else(|e| e.into_inner()) =
            n.map(|t| crate::domain::time::format_ts(&t));
    };
    set_next(&mut sched).await;
    loop {
        tokio::select! {
            _ = token.cancelled() => break,
            _ = tick.notified() => {}
        }
        let started = chrono::Utc::now();
        let scope = crate::reconcile::Scope::default();
        match crate::reconcile::reconcile_all(
            &store,
            engine.connections(),
            &engine,
            &settings,
            &scope,
        )
        .await
        {
            Ok((reports, errors)) => {
                match crate::reconcile::record(&store, "schedule", started, &reports, errors).await
                {
                    Ok(outcome) => tracing::info!(%outcome, "scheduled reconcile finished"),
                    Err(e) => {
                        tracing::error!(error = %e, "recording the scheduled reconcile failed")
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = format!("{e:#}"), "scheduled reconcile failed");
                let _ = crate::reconcile::record(&store, "schedule", started, &[], true).await;
            }
        }
        set_next(&mut sched).await;
    }
    let _ = sched.shutdown().await;
}

/// Pings systemd's watchdog only while the store answers and the sync worker loop is going round,
/// and keeps `systemctl status` informed.
async fn watchdog(
    store: Store,
    engine: Option<Arc<Engine>>,
    period: Duration,
    token: CancellationToken,
) {
    let mut tick = tokio::time::interval(period / 2);
    loop {
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tick.tick() => {}
        }
        let db_ok = store.ping().await.is_ok();
        let worker_ok = engine
            .as_ref()
            .is_none_or(|e| e.since_last_beat().is_some_and(|d| d < period));
        if db_ok && worker_ok {
            let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
        } else {
            tracing::warn!(db_ok, worker_ok, "not pinging the watchdog");
        }
        if let Ok(o) = store.outbox_stats(chrono::Utc::now()).await {
            let line = format!("serving; {} syncs waiting, {} dead", o.depth, o.dead);
            let _ = sd_notify::notify(&[sd_notify::NotifyState::Status(&line)]);
        }
    }
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
