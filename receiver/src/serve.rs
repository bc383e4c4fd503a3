//! Serving until SIGTERM or Ctrl-C, then a graceful stop: no new
//! connections, in-flight requests and running jobs get a grace period.
//!
//! The receiver serves HTTP/1 with hyper directly rather than through
//! `axum::serve`, to bound what one sender can hold:
//!
//! * its headers must be in within the sender deadline (hyper's header read
//!   timeout, `--body-timeout-ms`), which also closes a connection that
//!   sends nothing, or sits idle between keep-alive requests, for that long;
//!   its body must be in within the same deadline (the layer's);
//! * a connection whose peer takes none of the answer for that long is
//!   closed ([`stall`]);
//! * its headers and read buffer are at most
//!   [`MAX_BUF_BYTES`](connections::MAX_BUF_BYTES);
//! * at most `--max-connections` connections are served at once
//!   ([`connections`]), below the open-file limit.
//!
//! On a stop signal the listener closes, each connection finishes the
//! request it is in and closes, and whatever is still running when the
//! grace period ends is dropped: an inline request's claim is released as
//! its response future drops, and [`Flush`] waits until those releases
//! have reached the store before the process exits.

mod connections;
mod flush;
mod signal;
mod stall;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;

use self::connections::Connections;
pub use self::connections::DEFAULT_MAX_CONNECTIONS;
pub use self::flush::Flush;
pub use self::signal::StopSignal;
use crate::wiring::Admin;

/// A boxed future that ends with nothing, for what the stop waits on.
pub type Waiting = Pin<Box<dyn Future<Output = ()> + Send>>;

/// How long the store may take to confirm the releases of cut-off requests.
const FLUSH_LIMIT: Duration = Duration::from_secs(5);

/// What bounds each sender and the whole server.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The sender deadline: headers, idle keep-alive, a stalled answer.
    deadline: Duration,
    /// Connections served at once.
    max_connections: usize,
    /// How long in-flight requests and running jobs get after a stop signal.
    grace: Duration,
}

impl Limits {
    /// The limits the command line asks for; `max_connections` lowered
    /// (with a line on stderr) when the open-file limit is smaller.
    pub fn new(deadline: Duration, max_connections: usize, grace: Duration) -> Self {
        Self {
            deadline,
            max_connections: connections::cap_within_open_files(max_connections),
            grace,
        }
    }
}

/// Serves `app` on `listener` until `stop`, then drains within
/// `limits.grace`: requests still running then are dropped and `flushed`
/// is awaited, so the claims they release reach the store; running jobs
/// stop through `admin` meanwhile.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    admin: Arc<dyn Admin>,
    flushed: Waiting,
    stop: StopSignal,
    limits: Limits,
) {
    let grace = limits.grace;
    let mut connections = Connections::new(limits);
    let signal = connections.serve_until(listener, app, stop).await;
    println!("{signal}: stopping; in-flight requests and running jobs have {grace:?}");
    let requests = async move {
        let cut = connections.drain(grace).await;
        if cut > 0 {
            eprintln!(
                "{cut} connection(s) still busy after {grace:?} were closed; \
                 the claims of their requests are released"
            );
        }
        if tokio::time::timeout(FLUSH_LIMIT, flushed).await.is_err() {
            eprintln!(
                "the store did not confirm the releases within {FLUSH_LIMIT:?}; \
                 those claims free themselves when their lease runs out"
            );
        }
    };
    tokio::join!(requests, admin.shutdown(grace));
}
