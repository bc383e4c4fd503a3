//! Opening the database file: the checks that turn a bad path into one clear
//! sentence, the pragmas, and the schema.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags};

use super::Synchronous;
use super::identity::OpenedFiles;
use crate::store::StoreError;

/// The schema version this code writes (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 2;

/// How long a write waits for another connection to the same file (another
/// process, or a second store in this one) before it is a `StoreError`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// What the WAL file is cut back to when it starts over: the checkpointer
/// keeps it about this size.
const WAL_LIMIT_BYTES: i64 = super::checkpoint::RESTART_AT_PAGES * 4096;

/// One row per idempotency key. `expires_ms` is when the key becomes free
/// (claims, done marks, dead letters; NULL for jobs that must run);
/// `due_ms` is when a job is next taken (pending: its due time; running:
/// its lease end; NULL otherwise). Times are Unix milliseconds. A job
/// with an `order_key` is held (`due_ms` at `i64::MAX`) while an earlier
/// one of its scheme and key, by `seq` (the generation it was accepted
/// with), is pending or running.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS webhook_keys (
    key         TEXT PRIMARY KEY NOT NULL,
    state       TEXT NOT NULL
                CHECK (state IN ('claimed', 'done', 'pending', 'running', 'dead')),
    generation  INTEGER NOT NULL,
    expires_ms  INTEGER,
    due_ms      INTEGER,
    scheme      TEXT,
    event_id    TEXT,
    head        BLOB,
    body        BLOB,
    attempts    INTEGER NOT NULL DEFAULT 0,
    accepted_ms INTEGER,
    last_error  TEXT,
    failed_ms   INTEGER,
    order_key   TEXT,
    seq         INTEGER
);
CREATE INDEX IF NOT EXISTS webhook_keys_expiry
    ON webhook_keys (expires_ms) WHERE expires_ms IS NOT NULL;
CREATE INDEX IF NOT EXISTS webhook_keys_due
    ON webhook_keys (scheme, due_ms) WHERE due_ms IS NOT NULL;
CREATE INDEX IF NOT EXISTS webhook_keys_dead
    ON webhook_keys (failed_ms, key) WHERE state = 'dead';
CREATE TABLE IF NOT EXISTS webhook_meta (
    name  TEXT PRIMARY KEY NOT NULL,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT OR IGNORE INTO webhook_meta (name, value) VALUES ('next_generation', 1);
";

/// Schema 1 had no order keys: its table gains the two columns. Run before
/// [`LINES`], whose index needs them.
const ADD_ORDER_KEYS: &str = "
ALTER TABLE webhook_keys ADD COLUMN order_key TEXT;
ALTER TABLE webhook_keys ADD COLUMN seq INTEGER;
";

/// Each order line's live jobs in acceptance order.
const LINES: &str = "
CREATE INDEX IF NOT EXISTS webhook_keys_line
    ON webhook_keys (scheme, order_key, seq) WHERE order_key IS NOT NULL;
";

/// The store's two connections to one file.
pub(super) struct Connections {
    /// Every read and write, on the writer thread.
    pub(super) writer: Connection,
    /// Checkpoints only, on the checkpointer thread.
    pub(super) checkpointer: Connection,
    /// The database, `-wal` and `-shm` files the connections opened.
    pub(super) files: OpenedFiles,
}

/// Opens (creating if needed) the store's database at `path`, in WAL mode
/// with the schema in place, so that every problem with the file shows up
/// here rather than on the first request.
pub(super) fn open(
    path: &Path,
    synchronous: Synchronous,
    max_size_bytes: Option<u64>,
) -> Result<Connections, StoreError> {
    let shown = path.display();
    let refuse = |why: &str| StoreError::unavailable(format!("the SQLite store at {shown} {why}"));
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
    if parent.is_some_and(|dir| !dir.is_dir()) {
        return Err(refuse("cannot be created: its directory does not exist"));
    }
    // Checked here because root (tests, containers) ignores permission bits.
    if let Ok(metadata) = std::fs::metadata(path) {
        if metadata.is_dir() {
            return Err(refuse("is a directory, not a database file"));
        }
        if metadata.permissions().readonly() {
            return Err(refuse("is read-only"));
        }
    }
    let failed = |error: rusqlite::Error| match error.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => refuse("is not a SQLite database"),
        Some(ErrorCode::ReadOnly) => refuse("is read-only"),
        _ => refuse(&format!("cannot be opened: {error}")),
    };
    let conn = connect(path, OpenFlags::SQLITE_OPEN_CREATE, synchronous).map_err(failed)?;
    // The first read of the file: a file that is not a database fails here.
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(failed)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(refuse(&format!(
            "cannot use write-ahead logging (journal mode stayed {mode})"
        )));
    }
    // The checkpointer thread checkpoints instead; after a burst, the WAL
    // file shrinks back to its usual bound when it starts over.
    conn.pragma_update(None, "wal_autocheckpoint", 0)
        .and_then(|()| conn.pragma_update(None, "journal_size_limit", WAL_LIMIT_BYTES))
        .map_err(failed)?;
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(failed)?;
    if version > SCHEMA_VERSION {
        return Err(refuse(&format!(
            "was written by a newer tower-webhook (schema {version}, this one knows {SCHEMA_VERSION})"
        )));
    }
    let has_order_keys = |conn: &Connection| -> rusqlite::Result<bool> {
        conn.query_row(
            "SELECT count(*) FROM pragma_table_info('webhook_keys') WHERE name = 'order_key'",
            [],
            |row| row.get::<_, i64>(0),
        )
        .map(|n| n > 0)
    };
    conn.execute_batch("BEGIN IMMEDIATE").map_err(failed)?;
    let migrated = conn.execute_batch(SCHEMA).and_then(|()| {
        if !has_order_keys(&conn)? {
            conn.execute_batch(ADD_ORDER_KEYS)?;
        }
        conn.execute_batch(&format!(
            "{LINES} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
        ))
    });
    if let Err(error) = migrated {
        let _ = conn.execute_batch("ROLLBACK");
        return Err(failed(error));
    }
    if let Some(bytes) = max_size_bytes {
        let page_size: i64 = conn
            .pragma_query_value(None, "page_size", |row| row.get(0))
            .map_err(failed)?;
        let page_size = u64::try_from(page_size).unwrap_or(4096).max(1);
        let pages = i64::try_from(bytes / page_size).unwrap_or(i64::MAX).max(1);
        conn.pragma_update(None, "max_page_count", pages)
            .map_err(failed)?;
    }
    conn.set_prepared_statement_cache_capacity(64);
    let checkpointer = connect(path, OpenFlags::empty(), synchronous).map_err(failed)?;
    Ok(Connections {
        writer: conn,
        checkpointer,
        files: OpenedFiles::record(path),
    })
}

/// A read-write connection to `path` with the store's settings.
fn connect(
    path: &Path,
    create: OpenFlags,
    synchronous: Synchronous,
) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | create;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "synchronous", synchronous.pragma())?;
    Ok(conn)
}
