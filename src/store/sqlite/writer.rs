//! The writer thread: the one owner of the connection. It takes every
//! command waiting in its channel, runs them in one transaction (each under
//! its own savepoint), commits once, and only then answers each caller.
//! When idle it sweeps rows that have run out.

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode};
use tokio::sync::oneshot;

use super::Synchronous;
use super::identity::OpenedFiles;
use super::ops::{self, StoreClock, Tx};
use crate::store::StoreError;

/// Most commands in one group: bounds how long the first caller of a burst
/// waits for the commit.
const MAX_GROUP: usize = 1024;

/// Most rows one sweep pass deletes: bounds how long a pass holds the
/// write lock.
pub(super) const SWEEP_BATCH: usize = 1000;

/// One store call, queued for the writer thread.
pub(super) trait Command: Send {
    /// Runs the call's SQL; may run again if its group has to start over.
    fn run(&mut self, tx: &mut Tx<'_>) -> rusqlite::Result<()>;

    /// Whether its commit must be on disk before it is answered.
    fn flush(&self) -> Flush;

    /// Answers the caller once the group committed (or failed). Returns a
    /// command to run next when the caller has gone away and left something
    /// behind (a claim nobody will complete).
    fn answer(self: Box<Self>, outcome: Result<(), StoreError>) -> Option<Box<dyn Command>>;
}

/// What a command's commit waits for, under [`Synchronous::Full`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flush {
    /// Its effect is acknowledged (a 202, a done mark): wait for the
    /// `fsync`.
    Disk,
    /// Losing it to a power cut only frees a key or makes a job due again,
    /// which at-least-once already allows (a claim, a take, a lease
    /// renewal), or it writes nothing (a read): do not wait.
    Lazy,
}

/// A call whose answer is `T`.
pub(super) struct Call<T, F> {
    op: F,
    flush: Flush,
    value: Option<T>,
    reply: oneshot::Sender<Result<T, StoreError>>,
    /// What to do with an answer nobody received.
    orphaned: fn(T) -> Option<Box<dyn Command>>,
}

impl<T, F> Call<T, F> {
    pub(super) fn new(
        op: F,
        flush: Flush,
        reply: oneshot::Sender<Result<T, StoreError>>,
        orphaned: fn(T) -> Option<Box<dyn Command>>,
    ) -> Self {
        Self {
            op,
            flush,
            value: None,
            reply,
            orphaned,
        }
    }
}

impl<T, F> Command for Call<T, F>
where
    T: Send,
    F: FnMut(&mut Tx<'_>) -> rusqlite::Result<T> + Send,
{
    fn run(&mut self, tx: &mut Tx<'_>) -> rusqlite::Result<()> {
        self.value = Some((self.op)(tx)?);
        Ok(())
    }

    fn flush(&self) -> Flush {
        self.flush
    }

    fn answer(self: Box<Self>, outcome: Result<(), StoreError>) -> Option<Box<dyn Command>> {
        let answer = match (outcome, self.value) {
            (Ok(()), Some(value)) => Ok(value),
            (Ok(()), None) => Err(StoreError::unavailable("the SQLite store lost an answer")),
            (Err(error), _) => Err(error),
        };
        match self.reply.send(answer) {
            Err(Ok(value)) => (self.orphaned)(value),
            Ok(()) | Err(Err(_)) => None,
        }
    }
}

/// The thread's state.
pub(super) struct Writer {
    conn: Connection,
    /// The files `conn` opened, checked after each commit.
    files: OpenedFiles,
    /// The time every lease, due time and expiry is written in.
    clock: StoreClock,
    /// Set for good once a file the store opened is gone from its path:
    /// why every later call fails.
    lost: Option<String>,
    path: PathBuf,
    sweep_interval: Duration,
    /// The store's setting.
    synchronous: Synchronous,
    /// The connection's setting now: `synchronous`, or `Normal` for a group
    /// of lazy commands.
    synchronous_now: Synchronous,
    /// Wakes the checkpointer after a commit; dropped with the writer, which
    /// stops it.
    wake_checkpointer: SyncSender<()>,
    /// Commands to run in the next group (clean-up left by callers that
    /// went away).
    follow_ups: Vec<Box<dyn Command>>,
    next_sweep: Instant,
}

impl Writer {
    pub(super) fn new(
        conn: Connection,
        files: OpenedFiles,
        path: PathBuf,
        synchronous: Synchronous,
        sweep_interval: Duration,
        wake_checkpointer: SyncSender<()>,
    ) -> Self {
        Self {
            wake_checkpointer,
            conn,
            files,
            clock: StoreClock::start(),
            lost: None,
            path,
            sweep_interval,
            synchronous,
            synchronous_now: synchronous,
            follow_ups: Vec::new(),
            next_sweep: Instant::now(),
        }
    }

    /// Serves commands until every sender is gone; dropping the writer then
    /// closes its connection and stops the checkpointer.
    pub(super) fn run(mut self, commands: &Receiver<Box<dyn Command>>) {
        loop {
            let mut group = std::mem::take(&mut self.follow_ups);
            if group.is_empty() {
                let idle_for = self.next_sweep.saturating_duration_since(Instant::now());
                match commands.recv_timeout(idle_for) {
                    Ok(first) => group.push(first),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            }
            while group.len() < MAX_GROUP {
                match commands.try_recv() {
                    Ok(command) => group.push(command),
                    Err(_) => break,
                }
            }
            if !group.is_empty() {
                self.run_group(group);
                // A full channel means a checkpoint is coming anyway.
                let _ = self.wake_checkpointer.try_send(());
            }
            if Instant::now() >= self.next_sweep {
                self.sweep_pass();
            }
        }
    }

    /// Runs `group` in one transaction and answers each command. A command
    /// that fails is rolled back alone (its savepoint) and gets its error;
    /// the others go on. If SQLite rolled the whole transaction back (it may
    /// on a full disk or an I/O error), the group starts over without the
    /// failed command. A failed commit fails every command of the group, and
    /// so does a commit that went into a file no longer at the store's path.
    fn run_group(&mut self, mut group: Vec<Box<dyn Command>>) {
        let mut failed: Vec<Option<StoreError>> = group.iter().map(|_| None).collect();
        let committed = 'attempt: loop {
            if let Some(lost) = &self.lost {
                break Err(lost.clone());
            }
            let all_lazy = group.iter().all(|command| command.flush() == Flush::Lazy);
            let begun = self
                .set_synchronous(all_lazy)
                .and_then(|()| self.exec("BEGIN IMMEDIATE"));
            if let Err(error) = begun {
                break Err(self.error(&error));
            }
            let mut tx = match Tx::begin(&self.conn, &self.clock) {
                Ok(tx) => tx,
                Err(error) => break Err(self.abort(&error)),
            };
            for (command, failure) in group.iter_mut().zip(failed.iter_mut()) {
                if failure.is_some() {
                    continue;
                }
                if let Err(error) = self.run_one(command.as_mut(), &mut tx) {
                    *failure = Some(self.command_error(&error));
                    if self.conn.is_autocommit() {
                        continue 'attempt;
                    }
                }
            }
            break match tx.end().and_then(|()| self.exec("COMMIT")) {
                Ok(()) => self.check_files(),
                Err(error) => Err(self.abort(&error)),
            };
        };
        for (command, failure) in group.into_iter().zip(failed) {
            let outcome = match (failure, &committed) {
                (Some(error), _) => Err(error),
                (None, Ok(())) => Ok(()),
                (None, Err(error)) => Err(StoreError::unavailable(error.clone())),
            };
            if let Some(follow_up) = command.answer(outcome) {
                self.follow_ups.push(follow_up);
            }
        }
    }

    /// Whether the files the store opened are still at its path. Checked
    /// after the commit and before any answer, so a file deleted or replaced
    /// before the commit returned never yields an acknowledgement; once one
    /// is gone, every later call fails without touching the connection (a
    /// restart opens the path afresh).
    fn check_files(&mut self) -> Result<(), String> {
        let Some(changed) = self.files.first_changed() else {
            return Ok(());
        };
        let lost = format!(
            "the SQLite store at {} no longer has its file: {} was deleted or replaced \
             while the store was open, so nothing written now would survive a restart; \
             restart the process to open the path again",
            self.path.display(),
            changed.display()
        );
        report_lost(&lost);
        self.lost = Some(lost.clone());
        Err(lost)
    }

    /// Relaxes `Full` to `Normal` for a group of lazy commands only (the
    /// setting cannot change inside a transaction). A later `Full` commit
    /// flushes the WAL with their frames in it.
    fn set_synchronous(&mut self, all_lazy: bool) -> rusqlite::Result<()> {
        let wanted = if all_lazy {
            Synchronous::Normal
        } else {
            self.synchronous
        };
        if wanted != self.synchronous_now {
            self.conn
                .pragma_update(None, "synchronous", wanted.pragma())?;
            self.synchronous_now = wanted;
        }
        Ok(())
    }

    fn run_one(&self, command: &mut dyn Command, tx: &mut Tx<'_>) -> rusqlite::Result<()> {
        self.exec("SAVEPOINT command")?;
        match command.run(tx) {
            Ok(()) => self.exec("RELEASE command"),
            Err(error) => {
                if !self.conn.is_autocommit() {
                    // Undo this command only; if even that fails, the error
                    // already fails it and the commit decides for the rest.
                    let _ = self.exec("ROLLBACK TO command");
                    let _ = self.exec("RELEASE command");
                }
                Err(error)
            }
        }
    }

    fn exec(&self, sql: &str) -> rusqlite::Result<()> {
        self.conn.prepare_cached(sql)?.execute([])?;
        Ok(())
    }

    /// Rolls back whatever is open after `error` and describes it.
    fn abort(&self, error: &rusqlite::Error) -> String {
        if !self.conn.is_autocommit() {
            let _ = self.exec("ROLLBACK");
        }
        self.error(error)
    }

    fn error(&self, error: &rusqlite::Error) -> String {
        let path = self.path.display();
        match error.sqlite_error_code() {
            Some(ErrorCode::DiskFull) => {
                format!("the SQLite store at {path} is full (its size cap or the disk): {error}")
            }
            _ => format!("the SQLite store at {path} failed: {error}"),
        }
    }

    /// The error a failed command answers: a value this crate did not
    /// write (a key that does not parse) is corrupt data; anything else
    /// means the store is unavailable.
    fn command_error(&self, error: &rusqlite::Error) -> StoreError {
        match error {
            rusqlite::Error::FromSqlConversionFailure(..) => {
                let path = self.path.display();
                StoreError::corrupt(format!("the SQLite store at {path} holds {error}"))
            }
            _ => StoreError::unavailable(self.error(error)),
        }
    }

    /// Deletes up to [`SWEEP_BATCH`] rows that have run out. After a full
    /// batch the next pass comes at once; otherwise after the interval.
    fn sweep_pass(&mut self) {
        if self.lost.is_some() {
            self.next_sweep = Instant::now() + self.sweep_interval;
            return;
        }
        let swept = self.sweep();
        if swept.as_ref().is_ok_and(|&deleted| deleted > 0) {
            let _ = self.wake_checkpointer.try_send(());
        }
        let again_in = match swept {
            Ok(SWEEP_BATCH) => Duration::ZERO,
            Ok(_) => self.sweep_interval,
            Err(error) => {
                report_sweep(&self.error(&error));
                self.sweep_interval
            }
        };
        self.next_sweep = Instant::now() + again_in;
    }

    fn sweep(&self) -> rusqlite::Result<usize> {
        let now = self.clock.now_ms();
        if !ops::anything_expired(&self.conn, now)? {
            return Ok(0);
        }
        self.exec("BEGIN IMMEDIATE")?;
        let deleted = ops::delete_expired(&self.conn, now, SWEEP_BATCH)
            .and_then(|deleted| self.exec("COMMIT").map(|()| deleted));
        if deleted.is_err() && !self.conn.is_autocommit() {
            let _ = self.exec("ROLLBACK");
        }
        deleted
    }
}

fn report_lost(error: &str) {
    #[cfg(feature = "tracing")]
    tracing::error!(%error, "SQLite store failing closed");
    #[cfg(not(feature = "tracing"))]
    let _ = error;
}

fn report_sweep(error: &str) {
    #[cfg(feature = "tracing")]
    tracing::warn!(%error, "sweeping expired keys failed; trying again later");
    #[cfg(not(feature = "tracing"))]
    let _ = error;
}
