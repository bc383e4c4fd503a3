//! Serving until SIGTERM or Ctrl-C, then a graceful stop: no new
//! connections, in-flight requests and running jobs get a grace period.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;

use crate::wiring::Admin;

/// Serves `app` on `listener` until a stop signal, then drains within
/// `grace`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    admin: Arc<dyn Admin>,
    grace: Duration,
) -> Result<(), String> {
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stop_rx.await;
            })
            .await
    });
    let signal = stop_signal().await;
    println!("{signal}: stopping; in-flight requests and running jobs have {grace:?}");
    let _ = stop_tx.send(());
    let drain = async {
        match tokio::time::timeout(grace, server).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(e))) => Err(format!("server failed: {e}")),
            Ok(Err(e)) => Err(format!("server task failed: {e}")),
            Err(_) => {
                eprintln!("in-flight requests did not finish within {grace:?}");
                Ok(())
            }
        }
    };
    let (drained, ()) = tokio::join!(drain, admin.shutdown(grace));
    drained
}

/// Waits for SIGTERM or Ctrl-C (SIGINT); says which.
async fn stop_signal() -> &'static str {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut term) = signal(SignalKind::terminate()) else {
            ctrl_c.await;
            return "Ctrl-C";
        };
        tokio::select! {
            () = ctrl_c => "Ctrl-C",
            _ = term.recv() => "SIGTERM",
        }
    }
    #[cfg(not(unix))]
    {
        ctrl_c.await;
        "Ctrl-C"
    }
}
