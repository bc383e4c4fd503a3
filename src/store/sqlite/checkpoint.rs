//! The checkpointer thread: copies the WAL back into the database file on a
//! second connection, so that the writer's commits never wait for a
//! checkpoint (SQLite's automatic one would run inside a commit, writing and
//! syncing megabytes while every caller of that group waits).

use std::sync::mpsc::Receiver;
use std::time::Duration;

use rusqlite::Connection;

/// Least time between two checkpoints: under load each one copies what a
/// quarter of a second wrote, and syncs the database file once for it.
const PAUSE: Duration = Duration::from_millis(250);

/// WAL pages (of 4 KiB) past which a checkpoint also waits for the writer
/// so that the WAL starts over: under sustained writes a passive checkpoint
/// never catches up, and this bounds the WAL at about 64 MiB.
pub(super) const RESTART_AT_PAGES: i64 = 16_384;

/// Checkpoints after each wake-up from the writer (one per commit at most,
/// coalesced), until the writer is gone.
pub(super) fn run(conn: &Connection, wake: &Receiver<()>) {
    while wake.recv().is_ok() {
        match checkpoint(conn, "PASSIVE") {
            Ok(wal_pages) if wal_pages >= RESTART_AT_PAGES => {
                report(checkpoint(conn, "RESTART").err());
            }
            outcome => report(outcome.err()),
        }
        std::thread::sleep(PAUSE);
    }
}

/// Runs one checkpoint; returns how many pages the WAL held.
fn checkpoint(conn: &Connection, mode: &str) -> rusqlite::Result<i64> {
    conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |row| {
        row.get(1)
    })
}

fn report(error: Option<rusqlite::Error>) {
    #[cfg(feature = "tracing")]
    if let Some(error) = error {
        tracing::warn!(%error, "SQLite store: checkpoint failed; trying again later");
    }
    #[cfg(not(feature = "tracing"))]
    let _ = error;
}
