//! Accepting and serving connections, at most `--max-connections` at once,
//! each bounded in time and memory; and draining them on a stop.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use super::Limits;
use super::signal::StopSignal;
use super::stall::WriteStall;

/// Connections served at once unless `--max-connections` says otherwise:
/// under the usual open-file limit of 1024 with room to spare, and above
/// the 600 slow connections of the slowloris test with room for honest senders.
pub const DEFAULT_MAX_CONNECTIONS: usize = 900;

/// File descriptors kept out of the connection cap: standard streams, the
/// listener, the runtime's, the store's files or sockets.
const RESERVED_FDS: u64 = 64;

/// Largest read buffer of a connection, and so its largest request head
/// (a larger one is answered 431). hyper's default is about 400 KiB; a
/// provider's head is a few KiB.
pub const MAX_BUF_BYTES: usize = 64 * 1024;

/// Pause after an accept error that is not one connection's (such as
/// running out of file descriptors), so as not to spin.
const ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// The server's connections: how each is served, the cap, and the tasks.
pub struct Connections {
    http: http1::Builder,
    deadline: Duration,
    permits: Arc<Semaphore>,
    graceful: GracefulShutdown,
    tasks: JoinSet<()>,
}

impl Connections {
    /// Connections served within `limits`.
    pub fn new(limits: Limits) -> Self {
        let mut http = http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(limits.deadline)
            .max_buf_size(MAX_BUF_BYTES);
        Self {
            http,
            deadline: limits.deadline,
            permits: Arc::new(Semaphore::new(limits.max_connections)),
            graceful: GracefulShutdown::new(),
            tasks: JoinSet::new(),
        }
    }

    /// Accepts and serves connections on `listener` until `stop` ends;
    /// says which signal it was. The listener is closed on return, so new
    /// connections are refused from then on.
    pub async fn serve_until(
        &mut self,
        listener: TcpListener,
        app: Router,
        stop: StopSignal,
    ) -> &'static str {
        let stop = stop.recv();
        tokio::pin!(stop);
        loop {
            while self.tasks.try_join_next().is_some() {}
            let permit = tokio::select! {
                biased;
                signal = &mut stop => return signal,
                permit = Arc::clone(&self.permits).acquire_owned() => {
                    permit.expect("the semaphore is never closed")
                }
            };
            let accepted = tokio::select! {
                biased;
                signal = &mut stop => return signal,
                accepted = listener.accept() => accepted,
            };
            match accepted {
                Ok((stream, _peer)) => self.spawn(stream, app.clone(), permit),
                Err(e) if is_connection_error(&e) => {}
                Err(e) => {
                    eprintln!("accept failed: {e}; retrying in {ACCEPT_BACKOFF:?}");
                    tokio::select! {
                        biased;
                        signal = &mut stop => return signal,
                        () = tokio::time::sleep(ACCEPT_BACKOFF) => {}
                    }
                }
            }
        }
    }

    /// Serves one connection on its own task, holding `permit` until it ends.
    fn spawn(&mut self, stream: TcpStream, app: Router, permit: OwnedSemaphorePermit) {
        // Answers are small and written whole: no Nagle delay.
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(WriteStall::new(stream, self.deadline));
        let conn = self
            .http
            .serve_connection(io, TowerToHyperService::new(app));
        let conn = self.graceful.watch(conn);
        self.tasks.spawn(async move {
            // An error here is the peer's (gone mid-request, too slow, a
            // malformed head): the connection ends, nothing to report.
            let _ = conn.await;
            drop(permit);
        });
    }

    /// Asks every connection to finish the request it is in and close, and
    /// waits up to `grace`; then drops those still open, which drops their
    /// requests. Returns how many were dropped.
    pub async fn drain(self, grace: Duration) -> usize {
        let Self {
            graceful,
            mut tasks,
            ..
        } = self;
        let in_time = tokio::time::timeout(grace, graceful.shutdown())
            .await
            .is_ok();
        while tasks.try_join_next().is_some() {}
        let cut = if in_time { 0 } else { tasks.len() };
        // Aborts each task and waits until its future is dropped.
        tasks.shutdown().await;
        cut
    }
}

/// An accept error that concerns one connection only (it went away before
/// it was accepted): accept the next one at once.
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    )
}

/// `requested`, lowered so that the connections and [`RESERVED_FDS`] fit
/// the process's open-file limit (read from `/proc/self/limits`, where
/// there is one), with a line saying so.
pub fn cap_within_open_files(requested: usize) -> usize {
    let Some(limit) = open_file_limit() else {
        return requested;
    };
    let fits = usize::try_from(limit.saturating_sub(RESERVED_FDS).max(1)).unwrap_or(usize::MAX);
    if fits < requested {
        eprintln!(
            "--max-connections {requested} lowered to {fits}: the open-file limit is {limit} \
             ({RESERVED_FDS} kept for the store and the runtime); raise it with `ulimit -n`"
        );
        fits
    } else {
        requested
    }
}

/// The soft limit on open files, from `/proc/self/limits` (Linux).
fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
