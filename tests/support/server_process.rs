//! What the throwaway servers (`postgres_server.rs`, `redis_server.rs`)
//! share: a free port, a fresh directory, waiting for a started child to
//! answer, and trying again while a start fails.
//!
//! Included by those files with `#[path = "server_process.rs"] mod server_process;`.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, ExitStatus};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How many ports a start tries: a port free when looked at may be taken
/// by someone else before the server binds it.
const PORT_ATTEMPTS: usize = 5;

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}

/// Runs `start` on a free port, and on another while it fails, up to
/// [`PORT_ATTEMPTS`] ports; the last error when none works. `start` cleans
/// up after a failed try itself.
pub fn on_a_free_port(mut start: impl FnMut(u16) -> Result<(), String>) -> Result<(), String> {
    let mut last_error = String::new();
    for _ in 0..PORT_ATTEMPTS {
        match start(free_port()?) {
            Ok(()) => return Ok(()),
            Err(e) => last_error = e,
        }
    }
    Err(last_error)
}

/// A new, empty `<tmp>/tower-webhook-<label>-<pid>-<n>`.
pub fn fresh_dir(label: &str) -> Result<PathBuf, String> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "tower-webhook-{label}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Ok(dir)
}

/// Why a started server never answered.
pub enum NotReady {
    /// The process ended first.
    Exited(ExitStatus),
    /// It was still running, silent, when the time was up.
    TimedOut,
}

/// Polls `ready` every `poll` until it holds, the child exits, or `within`
/// has passed.
pub fn wait_until_ready(
    child: &mut Child,
    within: Duration,
    poll: Duration,
    mut ready: impl FnMut() -> bool,
) -> Result<(), NotReady> {
    let deadline = Instant::now() + within;
    loop {
        if ready() {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(NotReady::Exited(status));
        }
        if Instant::now() > deadline {
            return Err(NotReady::TimedOut);
        }
        std::thread::sleep(poll);
    }
}

/// Runs `start` until it succeeds, pausing `pause` between tries, for at
/// most `within`; the last error when it never does. `start` cleans up
/// after a failed try itself.
pub fn retry_for(
    within: Duration,
    pause: Duration,
    mut start: impl FnMut() -> Result<(), String>,
) -> Result<(), String> {
    let deadline = Instant::now() + within;
    loop {
        match start() {
            Ok(()) => return Ok(()),
            Err(e) if Instant::now() > deadline => return Err(e),
            Err(_) => std::thread::sleep(pause),
        }
    }
}
