//! [`SqliteStoreBuilder`]: the settings of a [`SqliteStore`], and opening
//! it (the file, then its two threads).

use std::path::Path;
use std::sync::{Arc, mpsc};
use std::time::Duration;

use super::writer::Writer;
use super::{DEFAULT_SWEEP_INTERVAL, Shared, SqliteStore, Synchronous, checkpoint, open};
use crate::store::StoreError;

/// Configures a [`SqliteStore`]; [`SqliteStoreBuilder::open`] opens it.
#[derive(Debug, Clone)]
pub struct SqliteStoreBuilder {
    synchronous: Synchronous,
    max_size_bytes: Option<u64>,
    sweep_interval: Duration,
}

impl Default for SqliteStoreBuilder {
    fn default() -> Self {
        Self {
            synchronous: Synchronous::default(),
            max_size_bytes: None,
            sweep_interval: DEFAULT_SWEEP_INTERVAL,
        }
    }
}

impl SqliteStoreBuilder {
    /// What each commit waits for (default [`Synchronous::Full`]).
    #[must_use]
    pub fn synchronous(mut self, synchronous: Synchronous) -> Self {
        self.synchronous = synchronous;
        self
    }

    /// Bounds the database file to about `bytes` (SQLite's
    /// `max_page_count`; default: no bound). At the bound every write is a
    /// [`StoreError`] (503 to senders, nothing acknowledged) until expired
    /// keys are swept. A file already larger than the bound stays at its
    /// size and takes no new rows.
    #[must_use]
    pub fn max_size_bytes(mut self, bytes: u64) -> Self {
        self.max_size_bytes = Some(bytes);
        self
    }

    /// How often expired keys are swept while the store is busy, and after
    /// how much idleness an idle store sweeps (default
    /// [`DEFAULT_SWEEP_INTERVAL`]).
    #[must_use]
    pub fn sweep_interval(mut self, every: Duration) -> Self {
        self.sweep_interval = every;
        self
    }

    /// Opens the store at `path`, creating the file and its schema if
    /// needed, and starts its writer and checkpointer threads. Blocks while it
    /// opens the file.
    ///
    /// # Errors
    ///
    /// [`StoreError`], naming the path, when its directory does not exist,
    /// the file is read-only or is not a SQLite database (or was written by
    /// a newer schema), or SQLite cannot open it or switch it to WAL mode.
    pub fn open(self, path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        let path = path.as_ref().to_path_buf();
        let connections = open::open(&path, self.synchronous, self.max_size_bytes)?;
        // One pending wake-up is enough: the checkpointer copies all there is.
        let (wake_checkpointer, checkpoints) = mpsc::sync_channel(1);
        let checkpointer = connections.checkpointer;
        spawn(&path, "checkpointer", move || {
            checkpoint::run(&checkpointer, &checkpoints);
        })?;
        let (commands, receiver) = mpsc::channel();
        let writer = Writer::new(
            connections.writer,
            connections.files,
            path.clone(),
            self.synchronous,
            self.sweep_interval,
            wake_checkpointer,
        );
        spawn(&path, "writer", move || writer.run(&receiver))?;
        Ok(SqliteStore {
            shared: Arc::new(Shared {
                commands,
                path,
                settings: self,
            }),
        })
    }
}

/// Starts one of the store's threads.
fn spawn(path: &Path, role: &str, run: impl FnOnce() + Send + 'static) -> Result<(), StoreError> {
    std::thread::Builder::new()
        .name(format!("tower-webhook-sqlite-{role}"))
        .spawn(run)
        .map(drop)
        .map_err(|e| {
            StoreError::unavailable(format!(
                "could not start the {role} thread of the SQLite store at {}: {e}",
                path.display()
            ))
        })
}
