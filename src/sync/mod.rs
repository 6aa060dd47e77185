//! The sync engine's face towards the API: what a write answers about its provider push.

use crate::api::ProgramInfo;
use crate::store::{CouponView, Store};
use std::sync::Arc;
use tokio::sync::Notify;

/// Why the API asks for a push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushKind {
    /// The coupon was created with a provider, or a provider was assigned.
    Create,
    /// Something the provider holds changed.
    Update,
}

/// The three `synchronization_*` fields of a write (spec §1.4), and the view after any push.
#[derive(Debug, Clone)]
pub struct SyncReport {
    pub enabled: bool,
    pub successful: bool,
    pub message: String,
    /// The coupon as re-read after an inline push (sync state changed).
    pub view: Option<CouponView>,
}

/// Hands writes to the sync engine.
#[derive(Clone)]
pub struct Dispatcher {
    #[allow(dead_code)]
    store: Store,
    wake: Arc<Notify>,
}

impl Dispatcher {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            wake: Arc::new(Notify::new()),
        }
    }

    /// Wakes the worker: new marks are due.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Answers the sync fields of a coupon write.
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
                view: None,
            };
        };
        match push {
            None => SyncReport {
                enabled: true,
                successful: view.sync.as_ref().is_some_and(|s| s.last_success),
                message: String::new(),
                view: None,
            },
            Some(_) => {
                self.wake();
                SyncReport {
                    enabled: true,
                    successful: false,
                    message: format!(
                        "The coupon is queued for synchronization with {}.",
                        provider.display()
                    ),
                    view: None,
                }
            }
        }
    }
}
