//! `GET /events`: the most recent handler runs, so you can watch each event
//! run once (or retried, in queued mode). Bounded: it keeps the last
//! [`DEFAULT_KEEP`] runs (`--events-keep`), so a long-running receiver's
//! memory does not grow with its traffic.
//!
//! What it keeps it copies: an event's [`Text`](tower_webhook::Text) id is
//! a view into the whole body it came in, and keeping the view would keep
//! every body of the last thousand runs alive.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;

/// Handler runs kept by default.
pub const DEFAULT_KEEP: usize = 1000;

/// One handler run.
#[derive(Clone, Serialize)]
pub struct Run {
    /// 1 for the first run since the receiver started, and so on.
    pub seq: u64,
    /// The scheme's name (`numero`, `github`, …).
    pub scheme: &'static str,
    /// The event's id as the provider sent it (a copy, not a view into
    /// the body).
    pub id: Box<str>,
    /// Which attempt this was, 1-based.
    pub attempt: u32,
    /// The status the handler answered.
    pub status: u16,
    /// When the handler started on it, in Unix milliseconds (to see which
    /// runs overlapped, across replicas too).
    pub started_ms: u64,
    /// When it answered, in Unix milliseconds.
    pub ended_ms: u64,
}

/// The wall clock in Unix milliseconds.
pub fn unix_ms() -> u64 {
    tower_webhook::queue::unix_millis(std::time::SystemTime::now())
}

struct Log {
    next_seq: u64,
    keep: usize,
    runs: VecDeque<Run>,
    /// Inline attempts per event, only counted when the demo handler fails
    /// some attempts on purpose (`--handler-fail-first`).
    attempts: HashMap<(&'static str, Box<str>), u32>,
}

/// The shared log of handler runs.
#[derive(Clone)]
pub struct EventLog(Arc<Mutex<Log>>);

impl EventLog {
    /// A log keeping the last `keep` runs.
    pub fn new(keep: usize) -> Self {
        Self(Arc::new(Mutex::new(Log {
            next_seq: 1,
            keep,
            runs: VecDeque::with_capacity(keep.min(4096)),
            attempts: HashMap::new(),
        })))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Log> {
        // A panic while holding the lock leaves a consistent log behind.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts an inline delivery of `id` reaching the handler; returns its
    /// attempt number. Bounded: forgets every count past 100 000 events.
    pub fn inline_attempt(&self, scheme: &'static str, id: &str) -> u32 {
        let mut log = self.lock();
        if log.attempts.len() >= 100_000 {
            log.attempts.clear();
        }
        let count = log.attempts.entry((scheme, Box::from(id))).or_insert(0);
        *count += 1;
        *count
    }

    /// Appends a run (with a copy of `id`) that started at `started_ms`
    /// and ended at `ended_ms`, and returns its sequence number.
    pub fn record(
        &self,
        scheme: &'static str,
        id: &str,
        attempt: u32,
        status: u16,
        started_ms: u64,
        ended_ms: u64,
    ) -> u64 {
        let mut log = self.lock();
        let seq = log.next_seq;
        log.next_seq += 1;
        if log.runs.len() == log.keep {
            log.runs.pop_front();
        }
        log.runs.push_back(Run {
            seq,
            scheme,
            id: Box::from(id),
            attempt,
            status,
            started_ms,
            ended_ms,
        });
        seq
    }

    /// The kept runs as a JSON array, serialized straight from the log.
    pub fn to_json(&self) -> Vec<u8> {
        let log = self.lock();
        serde_json::to_vec(&log.runs).expect("runs serialize")
    }
}
