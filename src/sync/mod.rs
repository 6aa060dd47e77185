//! The sync engine: durable outbox marks pushed to providers with retries.

pub mod clock;
pub mod connections;
pub mod engine;
pub mod retry;

use crate::api::ProgramInfo;
use crate::store::CouponView;
use crate::store::outbox::Completion;
pub use engine::{Engine, EngineOptions, Inline};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// Why the API asks for a push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushKind {
    /// The coupon was created with a provider, or a provider was assigned.
    Create,
    /// Something the provider holds changed.
    Update,
}

/// The three `synchronization_*` fields of a write (spec §1.4).
#[derive(Debug, Clone)]
pub struct SyncReport {
    pub enabled: bool,
    pub successful: bool,
    pub message: String,
}

/// Hands API writes to the sync engine.
#[derive(Clone)]
pub struct Dispatcher {
    engine: Option<Arc<Engine>>,
    wake: Arc<Notify>,
    deadline: Duration,
}

impl Dispatcher {
    pub fn new(engine: Option<Arc<Engine>>, deadline: Duration) -> Self {
        Self {
            engine,
            wake: Arc::new(Notify::new()),
            deadline,
        }
    }

    pub fn engine(&self) -> Option<&Arc<Engine>> {
        self.engine.as_ref()
    }

    pub fn wake_handle(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Wakes the worker: new marks are due.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Answers the sync fields of a coupon write; pushes inline (within the deadline) when asked.
    pub async fn report(
        &self,
        _program: &ProgramInfo,
        view: &CouponView,
        push: Option<PushKind>,
    ) -> SyncReport {
        let Some(provider) = view.coupon.sync_provider else {
            return SyncReport {
                enabled: false,
                successful: false,
                message: String::new(),
            };
        };
        let Some(kind) = push else {
            return SyncReport {
                enabled: true,
                successful: view.sync.as_ref().is_some_and(|s| s.in_sync()),
                message: String::new(),
            };
        };
        let d = provider.display();
        let verb = if kind == PushKind::Create {
            "created"
        } else {
            "updated"
        };
        let queued = |why: &str| SyncReport {
            enabled: true,
            successful: false,
            message: format!(
                "The coupon is queued for synchronization with {d}: {why}; the sync worker will finish it."
            ),
        };
        let Some(engine) = self.engine.clone() else {
            return queued("no sync worker is running");
        };
        if self.deadline.is_zero() {
            // sync.inline_deadline_ms = 0: never push inline, always queue
            self.wake();
            return queued("inline pushes are off (sync.inline_deadline_ms = 0)");
        }
        let coupon_id = view.id;
        let pusher = engine.clone();
        let store = engine.store().clone();
        let deadline = tokio::time::Instant::now() + self.deadline;
        let handle = engine.spawn_push(async move { pusher.push_now(coupon_id, provider).await });
        let completion = match tokio::time::timeout_at(deadline, handle).await {
            Ok(Ok(Ok(Inline::Pushed(c)))) => Some(c),
            Ok(Ok(Ok(Inline::Parked))) => {
                return queued(
                    "the provider connection is paused (Retry-After) or waiting for its credentials to be fixed",
                );
            }
            Ok(Ok(Ok(Inline::Busy))) => {
                // the worker took it first: wait for its outcome within the same deadline
                loop {
                    match store.claim_state(coupon_id, provider).await {
                        // finished; "pending and unclaimed" is the worker's claim not committed yet
                        Ok(Some(st)) if !st.claimed && st.completion().is_some() => {
                            break st.completion();
                        }
                        Ok(_) => {}
                        Err(e) => {
                            tracing::error!(error = %e, "reading the sync state failed");
                            break None;
                        }
                    }
                    if tokio::time::Instant::now() >= deadline {
                        break None;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            }
            Ok(Ok(Err(e))) => {
                tracing::error!(error = %e, "inline push could not be recorded");
                None
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "inline push task failed");
                None
            }
            Err(_) => None,
        };
        match completion {
            Some(Completion::Synced { message }) => SyncReport {
                enabled: true,
                successful: true,
                message,
            },
            Some(Completion::Retry { message, .. } | Completion::Dead { message }) => SyncReport {
                enabled: true,
                successful: false,
                message: format!("The coupon could not be {verb} in {d}: {message}"),
            },
            Some(Completion::Released) | None => {
                self.wake();
                queued(&format!(
                    "the push did not finish within {} ms",
                    self.deadline.as_millis()
                ))
            }
        }
    }
}
