//! `byte-sandbox`: the agent that runs app workspaces for Byte Platform.
//!
//! One process serves many workspaces (each a directory under `SANDBOX_ROOT`, keyed by a
//! workspace id). It writes and reads files confined to a workspace, runs commands with
//! timeouts and output caps, supervises one dev server per workspace, keeps a bounded log,
//! turns tool output into structured errors, proxies HTTP and WebSocket traffic to the dev
//! server, and runs production builds. The Worker's `UserAppSandboxService` Durable Object
//! is its only client; every route but `/health` requires the shared secret.

pub mod api_error;
pub mod auth;
pub mod builder;
pub mod checker;
pub mod config;
pub mod deps;
pub mod errors;
pub mod exec;
pub mod files;
pub mod hmr;
pub mod jail;
pub mod logs;
pub mod paths;
pub mod ports;
pub mod process;
pub mod proxy;
pub mod reaper;
pub mod routes;
pub mod workspace;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

pub use config::Config;
pub use routes::{router, AppState};

/// The crate version reported by `/health` and `/v1/version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Serves the API on `listener` until `shutdown` resolves, then stops every process the agent
/// started (dev servers and commands, whole process groups) before returning. Workspace
/// processes start through `jail` (see [`jail::Jail::setup`]).
///
/// Open Server-Sent Event streams and WebSocket tunnels are told to finish; connections that
/// still linger after a short grace period are dropped rather than keeping the agent alive.
pub async fn serve(
    config: Config,
    jail: Arc<jail::Jail>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let prepare = config.prepare_deps;
    let state = AppState::new(Arc::new(config), jail)?;
    let registry = state.registry.clone();
    if prepare {
        // Every template's dependencies, ready before the first workspace asks.
        let deps = registry.deps().clone();
        tokio::spawn(async move {
            for template in deps.templates() {
                if let Err(e) = deps.prepare(&template).await {
                    tracing::warn!("{e}");
                }
            }
        });
    }
    let stop_tx = state.shutdown_sender();
    let app = router(state);

    let (graceful_tx, graceful_rx) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        let _ = graceful_rx.await;
    });
    let mut server = tokio::spawn(async move { server.await });

    tokio::select! {
        // The server only ends on its own if accepting failed.
        joined = &mut server => {
            registry.shutdown().await;
            return joined.map_err(std::io::Error::other)?;
        }
        _ = shutdown => {}
    }
    tracing::info!("shutting down: stopping processes");
    // Streams watch this flag and end, so graceful shutdown is not held open by them.
    let _ = stop_tx.send(true);
    let _ = graceful_tx.send(());
    registry.shutdown().await;

    match tokio::time::timeout(Duration::from_secs(5), server).await {
        Ok(joined) => joined.map_err(std::io::Error::other)?,
        Err(_) => {
            tracing::warn!("connections still open after 5 s; exiting anyway");
            Ok(())
        }
    }
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("install SIGINT handler");
    tokio::select! {
        _ = term.recv() => {},
        _ = int.recv() => {},
    }
}
