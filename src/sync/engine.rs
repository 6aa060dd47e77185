//! The sync worker: claims due marks with a lease, pushes the coupon's *current* desired state
//! through its provider's adapter, and records the outcome in one transaction.

use super::clock::Clock;
use super::connections::Connections;
use super::retry::RetryPolicy;
use crate::domain::ProviderKind;
use crate::domain::time::format_ts;
use crate::providers::{ErrorClass, PushInput, PushNote};
use crate::store::outbox::{Claim, Completion, LinkJournal};
use crate::store::{Store, StoreError};
use futures_util::future::join_all;
use rand::Rng;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    pub workers: usize,
    pub lease: Duration,
    pub poll_interval: Duration,
    pub credentials_probe: Duration,
}

/// The worker pool.
pub struct Engine {
    store: Store,
    connections: Arc<Connections>,
    policy: RetryPolicy,
    clock: Arc<dyn Clock>,
    opts: EngineOptions,
    /// Never two calls in flight for one (coupon, provider) in this process.
    in_flight: Mutex<HashSet<(i64, ProviderKind)>>,
    /// When the worker loop last went round (for the systemd watchdog).
    beat: Mutex<Option<std::time::Instant>>,
    /// Every push in flight (worker and inline), so shutdown can let them finish.
    tracker: TaskTracker,
}

/// The message stored (and answered) for a successful push.
pub fn success_message(provider: ProviderKind, note: &PushNote) -> String {
    let d = provider.display();
    if note.retired {
        return format!("The coupon was removed from {d}.");
    }
    let verb = if note.created { "created" } else { "updated" };
    match &note.replaced {
        Some(why) => format!("The coupon was successfully {verb} in {d} (replaced: {why})."),
        None => format!("The coupon was successfully {verb} in {d}."),
    }
}

impl Engine {
    pub fn new(
        store: Store,
        connections: Arc<Connections>,
        policy: RetryPolicy,
        clock: Arc<dyn Clock>,
        opts: EngineOptions,
    ) -> Self {
        Self {
            store,
            connections,
            policy,
            clock,
            opts,
            in_flight: Mutex::new(HashSet::new()),
            beat: Mutex::new(None),
            tracker: TaskTracker::new(),
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn connections(&self) -> &Arc<Connections> {
        &self.connections
    }

    /// Spawns a push so that shutdown waits for it.
    pub fn spawn_push<F>(&self, f: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.tracker.spawn(f)
    }

    /// Stops accepting new pushes and waits for those in flight.
    pub async fn finish_pushes(&self) {
        self.tracker.close();
        self.tracker.wait().await;
    }

    /// How long ago the worker loop last went round (`None`: it is not running).
    pub fn since_last_beat(&self) -> Option<Duration> {
        self.beat
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map(|t| t.elapsed())
    }

    fn beat(&self) {
        *self.beat.lock().unwrap_or_else(|e| e.into_inner()) = Some(std::time::Instant::now());
    }

    fn parked(&self) -> Vec<(String, ProviderKind)> {
        self.connections
            .all()
            .filter(|c| c.parked())
            .map(|c| (c.program.clone(), c.provider))
            .collect()
    }

    /// Claims up to `limit` due marks. For a connection whose credentials were rejected (and
    /// which is due for a probe) only one mark is kept: the probe; the rest are released.
    async fn claim(&self, limit: usize) -> Result<Vec<Claim>, StoreError> {
        let in_flight: Vec<i64> = self
            .in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(id, _)| *id)
            .collect();
        let claims = self
            .store
            .claim_due(
                self.clock.now(),
                self.opts.lease,
                limit as i64,
                &self.parked(),
                &in_flight,
            )
            .await?;
        let mut keep = Vec::with_capacity(claims.len());
        for c in claims {
            let conn = self.connections.get(&c.program, c.provider);
            let unhealthy = conn
                .as_ref()
                .is_some_and(|x| x.health().credentials_rejected.is_some());
            // one probe at a time for a connection whose credentials were rejected
            if unhealthy && !conn.as_ref().is_some_and(|x| x.start_probe()) {
                let now = self.clock.now();
                self.store
                    .complete(
                        &c,
                        c.desired_revision,
                        None,
                        &Completion::Released,
                        now,
                        now,
                    )
                    .await?;
            } else {
                keep.push(c);
            }
        }
        Ok(keep)
    }

    /// One step: claims up to `workers` due marks and processes them concurrently.
    /// Returns how many were processed (0 = nothing was due). Tests drain with it.
    pub async fn run_once(&self) -> Result<usize, StoreError> {
        let claims = self.claim(self.opts.workers).await?;
        let n = claims.len();
        for r in join_all(claims.into_iter().map(|c| self.process(c))).await {
            r?;
        }
        Ok(n)
    }

    /// Processes marks until none is due.
    pub async fn drain(&self) -> Result<usize, StoreError> {
        let mut total = 0;
        loop {
            let n = self.run_once().await?;
            if n == 0 {
                return Ok(total);
            }
            total += n;
        }
    }

    /// The inline push of an API write: processes this mark now if it is due and free, and its
    /// connection is neither paused by a `Retry-After` nor waiting for credentials.
    pub async fn push_now(
        &self,
        coupon_id: i64,
        provider: ProviderKind,
    ) -> Result<Inline, StoreError> {
        let program = self.store.program_of(coupon_id).await?;
        if self
            .connections
            .get(&program, provider)
            .is_some_and(|c| c.parked() || c.health().credentials_rejected.is_some())
        {
            return Ok(Inline::Parked);
        }
        if self
            .in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&(coupon_id, provider))
        {
            return Ok(Inline::Busy);
        }
        match self
            .store
            .claim_one(coupon_id, provider, self.clock.now(), self.opts.lease)
            .await?
        {
            Some(c) => self.process(c).await.map(Inline::Pushed),
            None => Ok(Inline::Busy),
        }
    }

    /// Pushes one claimed mark and records the outcome.
    pub async fn process(&self, claim: Claim) -> Result<Completion, StoreError> {
        let key = (claim.coupon_id, claim.provider);
        if !self
            .in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key)
        {
            let now = self.clock.now();
            self.store
                .complete(
                    &claim,
                    claim.desired_revision,
                    None,
                    &Completion::Released,
                    now,
                    now,
                )
                .await?;
            return Ok(Completion::Released);
        }
        // whatever happens below (even a panic), the key leaves the in-flight set
        let _guard = InFlight {
            set: &self.in_flight,
            key,
        };
        self.process_claimed(&claim).await
    }

    async fn process_claimed(&self, claim: &Claim) -> Result<Completion, StoreError> {
        let started = self.clock.now();
        let (desired, revision) = self.store.desired_state(claim.coupon_id).await?;
        let uuid_code = desired.coupon.uuid_code.clone();
        let span = tracing::info_span!("sync", program = %claim.program, uuid_code = %uuid_code, provider = %claim.provider, revision);
        let _enter = span.enter();
        let Some(conn) = self.connections.get(&claim.program, claim.provider) else {
            let completion = Completion::Dead {
                message: format!(
                    "{} is no longer connected for program {}.",
                    claim.provider.as_str(),
                    claim.program
                ),
            };
            self.store
                .complete(
                    claim,
                    revision,
                    None,
                    &completion,
                    started,
                    self.clock.now(),
                )
                .await?;
            return Ok(completion);
        };
        let mut links = self.store.links(claim.coupon_id, claim.provider).await?;
        let heartbeat = self.heartbeat(claim.clone());
        let journal = LinkJournal::new(self.store.clone(), claim.clone(), revision);
        let input = PushInput {
            program: &claim.program,
            currency: &conn.currency,
            desired: &desired,
            attempt: claim.attempts + 1,
            claim_token: &claim.token,
            now: started,
            journal: &journal,
        };
        let result = conn.adapter.push(&input, &mut links).await;
        drop(heartbeat);
        conn.end_probe();
        let now = self.clock.now();
        let completion = match result {
            Ok(note) => {
                conn.mark_ok();
                Completion::Synced {
                    message: success_message(claim.provider, &note),
                }
            }
            Err(e) => match e.class() {
                ErrorClass::Credentials => {
                    conn.mark_rejected(e.to_string(), self.opts.credentials_probe);
                    Completion::Retry {
                        at: now,
                        message: format!("{e}; waiting for the credentials to be fixed"),
                        count_attempt: false,
                    }
                }
                ErrorClass::Permanent => Completion::Dead {
                    message: e.to_string(),
                },
                ErrorClass::Retryable => {
                    conn.mark_ok();
                    let failed = u32::try_from(claim.attempts + 1).unwrap_or(u32::MAX);
                    let unit: f64 = rand::rng().random();
                    match self.policy.next_delay(failed, &e, unit) {
                        Some(d) => {
                            let at = now + chrono::Duration::from_std(d).unwrap_or_default();
                            Completion::Retry {
                                at,
                                message: format!(
                                    "{}; retry {failed} of {} at {}",
                                    e.short(),
                                    self.policy.schedule.len(),
                                    format_ts(&at)
                                ),
                                count_attempt: true,
                            }
                        }
                        None => Completion::Dead {
                            message: format!("{e}; gave up after {failed} attempts"),
                        },
                    }
                }
            },
        };
        match &completion {
            Completion::Synced { message } => {
                tracing::info!(outcome = "synced", %message, "sync attempt")
            }
            Completion::Retry { message, .. } => {
                tracing::warn!(outcome = "retry", %message, "sync attempt")
            }
            Completion::Dead { message } => {
                tracing::error!(outcome = "dead", %message, "sync attempt")
            }
            Completion::Released => {}
        }
        metrics::counter!("coupond_sync_attempts_total", "provider" => claim.provider.as_str(), "outcome" => outcome_label(&completion)).increment(1);
        self.store
            .complete(claim, revision, Some(&links), &completion, started, now)
            .await?;
        Ok(completion)
    }

    /// Renews the lease every third of its length while the push runs. A failed renewal (the
    /// store was busy) is tried again; only a lost claim stops it. Dropping the guard stops it.
    fn heartbeat(&self, claim: Claim) -> tokio_util::sync::DropGuard {
        let token = CancellationToken::new();
        let (store, clock, lease, t) = (
            self.store.clone(),
            self.clock.clone(),
            self.opts.lease,
            token.clone(),
        );
        tokio::spawn(async move {
            let mut wait = lease / 3;
            loop {
                tokio::select! {
                    _ = t.cancelled() => return,
                    _ = tokio::time::sleep(wait) => {}
                }
                let until = clock.now() + chrono::Duration::from_std(lease).unwrap_or_default();
                match store.renew_lease(&claim, until).await {
                    Ok(true) => wait = lease / 3,
                    Ok(false) => return,
                    Err(e) => {
                        tracing::warn!(error = %e, "renewing a sync lease failed; trying again");
                        wait = (lease / 12).max(std::time::Duration::from_millis(100));
                    }
                }
            }
        });
        token.drop_guard()
    }

    /// The daemon's loop: keeps up to `workers` pushes in flight; wakes on `wake`, on a finished
    /// push, or every poll interval. On cancellation it stops claiming and lets in-flight pushes finish.
    pub async fn run(self: Arc<Self>, token: CancellationToken, wake: Arc<Notify>) {
        let mut tasks: JoinSet<()> = JoinSet::new();
        loop {
            self.beat();
            if token.is_cancelled() {
                break;
            }
            let free = self.opts.workers.saturating_sub(tasks.len());
            let mut claimed = 0;
            if free > 0 {
                match self.claim(free).await {
                    Ok(claims) => {
                        claimed = claims.len();
                        for c in claims {
                            let me = self.clone();
                            let push = self.tracker.track_future(async move {
                                if let Err(e) = me.process(c).await {
                                    tracing::error!(error = %e, "recording a sync attempt failed");
                                }
                            });
                            tasks.spawn(push);
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "claiming sync work failed"),
                }
            }
            if claimed > 0 && claimed == free {
                // the pool is full: wait for a slot
                tokio::select! {
                    _ = token.cancelled() => break,
                    _ = tasks.join_next() => {}
                    _ = tokio::time::sleep(self.opts.poll_interval) => {}
                }
                continue;
            }
            if claimed > 0 {
                continue;
            }
            tokio::select! {
                _ = token.cancelled() => break,
                _ = wake.notified() => {}
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                _ = tokio::time::sleep(self.opts.poll_interval) => {}
            }
        }
        tracing::info!(
            in_flight = tasks.len(),
            "sync worker stopping; letting in-flight pushes finish"
        );
        while tasks.join_next().await.is_some() {}
        *self.beat.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

/// What an inline push did.
#[derive(Debug, Clone, PartialEq)]
pub enum Inline {
    Pushed(Completion),
    /// Another push of this coupon holds the mark (the worker took it first).
    Busy,
    /// The connection is paused by a `Retry-After` or waiting for credentials: queued.
    Parked,
}

/// Removes a (coupon, provider) from the in-flight set when dropped.
struct InFlight<'a> {
    set: &'a Mutex<HashSet<(i64, ProviderKind)>>,
    key: (i64, ProviderKind),
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.set
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.key);
    }
}

fn outcome_label(c: &Completion) -> &'static str {
    match c {
        Completion::Synced { .. } => "synced",
        Completion::Retry {
            count_attempt: true,
            ..
        } => "retry",
        Completion::Retry {
            count_attempt: false,
            ..
        } => "credentials",
        Completion::Dead { .. } => "dead",
        Completion::Released => "released",
    }
}
