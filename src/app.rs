//! Wiring: builds the store, API and workers from settings; runs until shutdown.

use crate::api::{self, AppState, Programs};
use crate::config::Settings;
use crate::store::Store;
use crate::sync::Dispatcher;
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
    settings: Settings,
    listener: TcpListener,
}

impl App {
    /// Opens and migrates the store and binds the listener (`server.listen`, or the given one).
    pub async fn build(settings: Settings, listener: Option<TcpListener>) -> anyhow::Result<Self> {
        let store = Store::open(&settings.store.path, &settings.store.options())
            .await
            .with_context(|| format!("opening store {}", settings.store.path.display()))?;
        let listener = match listener {
            Some(l) => l,
            None => TcpListener::bind(settings.server.listen)
                .await
                .with_context(|| format!("binding {}", settings.server.listen))?,
        };
        let state = AppState {
            programs: Arc::new(Programs::from_settings(&settings)),
            sync: Dispatcher::new(store.clone()),
            public_url: settings.server.public_url.as_deref().map(Arc::from),
            store,
        };
        Ok(Self {
            state,
            settings,
            listener,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("bound listener")
    }

    /// Serves until `shutdown` resolves, then drains and closes the store.
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
        let _ = sd_notify::notify(&[
            sd_notify::NotifyState::Ready,
            sd_notify::NotifyState::Status("serving"),
        ]);
        tracing::info!(addr = %self.local_addr(), "coupond is serving");
        axum::serve(self.listener, router)
            .with_graceful_shutdown(token.clone().cancelled_owned())
            .await
            .context("serving HTTP")?;
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
        self.state.store.close().await;
        tracing::info!("coupond stopped");
        Ok(())
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
