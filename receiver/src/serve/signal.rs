//! The stop signals: SIGTERM and Ctrl-C (SIGINT).

use std::future::pending;

/// SIGTERM and Ctrl-C, listened for from [`StopSignal::listen`] on, so a
/// signal that comes before the receiver waits for it still stops it
/// gracefully.
pub struct StopSignal {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
}

impl StopSignal {
    /// Starts listening. Must run inside the tokio runtime.
    pub fn listen() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let listen = |kind, name| match signal(kind) {
                Ok(signal) => Some(signal),
                Err(e) => {
                    eprintln!("cannot listen for {name}: {e}");
                    None
                }
            };
            Self {
                term: listen(SignalKind::terminate(), "SIGTERM"),
                interrupt: listen(SignalKind::interrupt(), "Ctrl-C"),
            }
        }
        #[cfg(not(unix))]
        Self {}
    }

    /// Waits for the first stop signal; says which.
    pub async fn recv(self) -> &'static str {
        #[cfg(unix)]
        {
            let Self { term, interrupt } = self;
            let wait = |signal: Option<tokio::signal::unix::Signal>| async move {
                match signal {
                    Some(mut signal) => {
                        signal.recv().await;
                    }
                    None => pending::<()>().await,
                }
            };
            tokio::select! {
                () = wait(interrupt) => "Ctrl-C",
                () = wait(term) => "SIGTERM",
            }
        }
        #[cfg(not(unix))]
        {
            if tokio::signal::ctrl_c().await.is_err() {
                pending::<()>().await;
            }
            "Ctrl-C"
        }
    }
}
