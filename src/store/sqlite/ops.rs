//! The SQL of each store call, run by the writer thread inside a group's
//! transaction. The states and lease checks are [`MemoryQueue`]'s, row for
//! slot: a row whose `expires_ms` has passed is treated as absent before the
//! sweep deletes it, and every change made under a lease requires the row
//! to still carry that lease's generation.
//!
//! [`MemoryQueue`]: crate::queue::MemoryQueue

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension, params};

use super::{KeyState, SqliteLease};
use crate::store::admin::{JobState, JobSummary};
use crate::store::queue::{
    Accept, DeadLetter, Delivery, JobOutcome, QueueCounts, from_unix_millis, unix_millis,
};
use crate::store::{Claim, JobKey};

mod take;

type Result<T> = rusqlite::Result<T>;

/// The key in column `index`; text that is not a key fails the call as
/// [`StoreErrorKind::Corrupt`](crate::store::StoreErrorKind::Corrupt).
fn job_key(row: &rusqlite::Row<'_>, index: usize) -> Result<JobKey> {
    let text: String = row.get(index)?;
    parse_key(&text, index)
}

fn parse_key(text: &str, index: usize) -> Result<JobKey> {
    text.parse().map_err(|error| {
        rusqlite::Error::FromSqlConversionFailure(
            index,
            rusqlite::types::Type::Text,
            Box::new(error),
        )
    })
}

/// One group's view of the database: its connection, its clock, and the
/// lease generations it hands out.
pub(super) struct Tx<'c> {
    conn: &'c Connection,
    /// The store's time ([`StoreClock`]) at the start of the group.
    now: i64,
    /// The wall clock's Unix milliseconds less `now`, read at the same
    /// moment: what turns the store's times into this process's
    /// `SystemTime`s and back (zero unless the wall clock stepped since
    /// the store opened).
    wall_offset: i64,
    /// The generation counter as read at the start of the group; written
    /// back before the commit if any was handed out.
    read_generation: i64,
    next_generation: i64,
}

/// A recorded delivery, as `accept` stores it: the head encoded once on the
/// caller's thread.
pub(super) struct NewJob {
    pub(super) scheme: String,
    pub(super) event_id: String,
    pub(super) head: Vec<u8>,
    pub(super) body: Bytes,
    pub(super) order_key: Option<String>,
}

/// The due time of a job held behind an earlier one of its order key.
const HELD: i64 = i64::MAX;

impl NewJob {
    pub(super) fn new(delivery: &Delivery) -> Self {
        Self {
            head: delivery.encode_head(),
            scheme: delivery.scheme.clone(),
            event_id: delivery.event_id.clone(),
            body: delivery.body.clone(),
            order_key: delivery.order_key.clone(),
        }
    }
}

/// Milliseconds as SQLite stores them (an `i64`; later than year 292 million
/// counts as then).
pub(super) fn sql_ms(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}

fn after(now: i64, wait: Duration) -> i64 {
    now.saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX))
}

fn unsigned(ms: Option<i64>) -> u64 {
    ms.map_or(0, |ms| u64::try_from(ms).unwrap_or(0))
}

fn wall_ms() -> i64 {
    sql_ms(unix_millis(SystemTime::now()))
}

/// The store's clock, in which every lease end, due time and expiry is
/// written: Unix milliseconds from the wall clock as it read when the store
/// opened, advanced since by the monotonic clock. A step of the wall clock
/// while the store runs (an NTP correction, an operator's `date -s`, a VM
/// resumed) moves no lease and no TTL of this process: a running job's
/// lease cannot run out early, and a done mark is kept for its whole TTL.
/// Across a restart the times stay meaningful (the next open reads the wall
/// clock again); a step while no process had the store open moves every
/// stored time by that step, as does a difference between the wall clocks
/// that two processes sharing the file read at their opens.
pub(super) struct StoreClock {
    wall_at_open_ms: i64,
    opened: Instant,
}

impl StoreClock {
    pub(super) fn start() -> Self {
        Self {
            wall_at_open_ms: wall_ms(),
            opened: Instant::now(),
        }
    }

    pub(super) fn now_ms(&self) -> i64 {
        let elapsed = i64::try_from(self.opened.elapsed().as_millis()).unwrap_or(i64::MAX);
        self.wall_at_open_ms.saturating_add(elapsed)
    }
}

fn is_live(expires_ms: Option<i64>, now: i64) -> bool {
    expires_ms.is_none_or(|expires| expires > now)
}

impl<'c> Tx<'c> {
    /// Reads the generation counter; call inside the group's transaction.
    pub(super) fn begin(conn: &'c Connection, clock: &StoreClock) -> Result<Self> {
        let generation: i64 = conn
            .prepare_cached("SELECT value FROM webhook_meta WHERE name = 'next_generation'")?
            .query_row([], |row| row.get(0))?;
        let now = clock.now_ms();
        Ok(Self {
            conn,
            now,
            wall_offset: wall_ms().saturating_sub(now),
            read_generation: generation,
            next_generation: generation,
        })
    }

    /// Writes back the generation counter, if the group used it.
    pub(super) fn end(&self) -> Result<()> {
        if self.next_generation != self.read_generation {
            self.conn
                .prepare_cached(
                    "UPDATE webhook_meta SET value = ?1 WHERE name = 'next_generation'",
                )?
                .execute([self.next_generation])?;
        }
        Ok(())
    }

    /// A store time as this process's wall clock names it (0 for none).
    fn local_ms(&self, store_ms: Option<i64>) -> u64 {
        unsigned(store_ms.map(|ms| ms.saturating_add(self.wall_offset)))
    }

    fn local(&self, store_ms: Option<i64>) -> SystemTime {
        from_unix_millis(self.local_ms(store_ms))
    }

    /// A wall-clock time of this process (a retry's due time) as a store
    /// time.
    fn store_ms(&self, at: SystemTime) -> i64 {
        sql_ms(unix_millis(at)).saturating_sub(self.wall_offset)
    }

    fn generation(&mut self) -> i64 {
        let generation = self.next_generation;
        self.next_generation += 1;
        generation
    }

    /// The key's state, if its row is there and has not run out.
    pub(super) fn status(&self, key: &str) -> Result<Option<KeyState>> {
        let row: Option<(String, Option<i64>)> = self
            .conn
            .prepare_cached("SELECT state, expires_ms FROM webhook_keys WHERE key = ?1")?
            .query_row([key], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()?;
        Ok(row
            .filter(|(_, expires)| is_live(*expires, self.now))
            .and_then(|(state, _)| KeyState::from_sql(&state)))
    }

    /// Every row, expired ones not yet swept included.
    pub(super) fn len(&self) -> Result<u64> {
        let rows: i64 = self
            .conn
            .prepare_cached("SELECT count(*) FROM webhook_keys")?
            .query_row([], |row| row.get(0))?;
        Ok(unsigned(Some(rows)))
    }

    pub(super) fn claim(&mut self, key: &str, lease: Duration) -> Result<Claim<SqliteLease>> {
        match self.status(key)? {
            Some(KeyState::Done | KeyState::Dead) => return Ok(Claim::Done),
            Some(_) => return Ok(Claim::InFlight),
            None => {}
        }
        let generation = self.generation();
        self.conn
            .prepare_cached(
                "INSERT OR REPLACE INTO webhook_keys (key, state, generation, expires_ms)
                 VALUES (?1, 'claimed', ?2, ?3)",
            )?
            .execute(params![key, generation, after(self.now, lease)])?;
        Ok(Claim::New(SqliteLease {
            key: Arc::from(key),
            generation,
        }))
    }

    /// Marks a held claim (or a job's lease) done for `ttl`; a stale lease
    /// changes nothing.
    pub(super) fn complete(&self, lease: &SqliteLease, ttl: Duration) -> Result<()> {
        self.conn
            .prepare_cached(
                "UPDATE webhook_keys
                 SET state = 'done', expires_ms = ?3, due_ms = NULL, head = NULL, body = NULL,
                     order_key = NULL
                 WHERE key = ?1 AND generation = ?2 AND state IN ('claimed', 'running')",
            )?
            .execute(params![&*lease.key, lease.generation, after(self.now, ttl)])?;
        Ok(())
    }

    /// Moves a held inline claim's lease end to `lease_for` from now;
    /// whether the claim still held its key.
    pub(super) fn renew_claim(&self, lease: &SqliteLease, lease_for: Duration) -> Result<bool> {
        self.extend(
            "UPDATE webhook_keys SET expires_ms = ?3
             WHERE key = ?1 AND generation = ?2 AND state = 'claimed'",
            lease,
            lease_for,
        )
    }

    pub(super) fn release(&self, lease: &SqliteLease) -> Result<()> {
        self.conn
            .prepare_cached(
                "DELETE FROM webhook_keys WHERE key = ?1 AND generation = ?2 AND state = 'claimed'",
            )?
            .execute(params![&*lease.key, lease.generation])?;
        Ok(())
    }

    pub(super) fn accept(&mut self, key: &str, job: &NewJob) -> Result<Accept> {
        if self.status(key)?.is_some() {
            return Ok(Accept::Duplicate);
        }
        let generation = self.generation();
        let due = match &job.order_key {
            Some(order) if self.line_is_busy(&job.scheme, order)? => HELD,
            _ => self.now,
        };
        self.conn
            .prepare_cached(
                "INSERT OR REPLACE INTO webhook_keys
                 (key, state, generation, due_ms, scheme, event_id, head, body, attempts,
                  accepted_ms, order_key, seq)
                 VALUES (?1, 'pending', ?2, ?3, ?4, ?5, ?6, ?7, 0, ?8, ?9, ?2)",
            )?
            .execute(params![
                key,
                generation,
                due,
                job.scheme,
                job.event_id,
                job.head,
                &job.body[..],
                self.now,
                job.order_key,
            ])?;
        Ok(Accept::Accepted)
    }

    /// Whether a job of `scheme` with order key `order` is pending or
    /// running (one index probe).
    fn line_is_busy(&self, scheme: &str, order: &str) -> Result<bool> {
        self.conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM webhook_keys
                 WHERE scheme = ?1 AND order_key = ?2 AND state IN ('pending', 'running'))",
            )?
            .query_row(params![scheme, order], |row| row.get(0))
    }

    /// Lets the first held job of a line run, once the job before it left
    /// (done or dead).
    fn advance_line(&self, scheme: &str, order: &str) -> Result<()> {
        self.conn
            .prepare_cached(
                "UPDATE webhook_keys SET due_ms = ?3
                 WHERE key = (SELECT key FROM webhook_keys
                              WHERE scheme = ?1 AND order_key = ?2
                                AND state IN ('pending', 'running')
                              ORDER BY seq LIMIT 1)
                   AND due_ms = ?4",
            )?
            .execute(params![scheme, order, self.now, HELD])?;
        Ok(())
    }

    pub(super) fn renew(&self, lease: &SqliteLease, lease_for: Duration) -> Result<bool> {
        self.extend(
            "UPDATE webhook_keys SET due_ms = ?3
             WHERE key = ?1 AND generation = ?2 AND state = 'running'",
            lease,
            lease_for,
        )
    }

    /// Runs `update` (`?1` key, `?2` generation, `?3` the new lease end,
    /// `lease_for` from now); whether it changed the lease's row.
    fn extend(&self, update: &str, lease: &SqliteLease, lease_for: Duration) -> Result<bool> {
        let changed = self.conn.prepare_cached(update)?.execute(params![
            &*lease.key,
            lease.generation,
            after(self.now, lease_for)
        ])?;
        Ok(changed == 1)
    }

    pub(super) fn finish(&self, lease: &SqliteLease, outcome: &JobOutcome) -> Result<bool> {
        let (key, generation) = (&*lease.key, lease.generation);
        // Done or dead, a job of an order line lets the next one run.
        let line: Option<(String, String)> = match outcome {
            JobOutcome::Retry { .. } => None,
            JobOutcome::Done { .. } | JobOutcome::Dead { .. } => self
                .conn
                .prepare_cached(
                    "SELECT scheme, order_key FROM webhook_keys
                     WHERE key = ?1 AND generation = ?2 AND state = 'running'
                       AND order_key IS NOT NULL",
                )?
                .query_row(params![key, generation], |row| {
                    Ok((row.get(0)?, row.get(1)?))
                })
                .optional()?,
        };
        let changed = match outcome {
            JobOutcome::Done { ttl } => self
                .conn
                .prepare_cached(
                    "UPDATE webhook_keys
                     SET state = 'done', expires_ms = ?3, due_ms = NULL, head = NULL, body = NULL,
                     order_key = NULL
                     WHERE key = ?1 AND generation = ?2 AND state = 'running'",
                )?
                .execute(params![key, generation, after(self.now, *ttl)])?,
            JobOutcome::Retry { due, error } => self
                .conn
                .prepare_cached(
                    "UPDATE webhook_keys
                     SET state = 'pending', due_ms = ?3, last_error = ?4, failed_ms = ?5
                     WHERE key = ?1 AND generation = ?2 AND state = 'running'",
                )?
                .execute(params![
                    key,
                    generation,
                    self.store_ms(*due),
                    error,
                    self.now
                ])?,
            JobOutcome::Dead { error, retain } => self
                .conn
                .prepare_cached(
                    "UPDATE webhook_keys
                     SET state = 'dead', due_ms = NULL, expires_ms = ?3, last_error = ?4,
                         failed_ms = ?5
                     WHERE key = ?1 AND generation = ?2 AND state = 'running'",
                )?
                .execute(params![
                    key,
                    generation,
                    after(self.now, *retain),
                    error,
                    self.now
                ])?,
        };
        if changed == 1
            && let Some((scheme, order)) = line
        {
            self.advance_line(&scheme, &order)?;
        }
        Ok(changed == 1)
    }

    pub(super) fn counts(&self) -> Result<QueueCounts> {
        let mut counts = QueueCounts::default();
        let mut by_state = self.conn.prepare_cached(
            "SELECT state, count(*) FROM webhook_keys WHERE due_ms IS NOT NULL GROUP BY state",
        )?;
        let rows = by_state.query_map([], |row| Ok((row.get::<_, String>(0)?, row.get(1)?)))?;
        for row in rows {
            let (state, count): (String, i64) = row?;
            match state.as_str() {
                "pending" => counts.pending = unsigned(Some(count)),
                "running" => counts.running = unsigned(Some(count)),
                _ => {}
            }
        }
        let dead: i64 = self
            .conn
            .prepare_cached(
                "SELECT count(*) FROM webhook_keys WHERE state = 'dead' AND expires_ms > ?1",
            )?
            .query_row([self.now], |row| row.get(0))?;
        counts.dead = unsigned(Some(dead));
        Ok(counts)
    }

    /// [`Self::counts`] per scheme, in one `GROUP BY` over the same
    /// partial indexes, sorted by scheme.
    pub(super) fn counts_by_scheme(&self) -> Result<Vec<(String, QueueCounts)>> {
        let mut by_scheme: BTreeMap<String, QueueCounts> = BTreeMap::new();
        let mut select = self.conn.prepare_cached(
            "SELECT scheme, state, count(*) FROM webhook_keys
             WHERE due_ms IS NOT NULL AND state IN ('pending', 'running')
             GROUP BY scheme, state
             UNION ALL
             SELECT scheme, state, count(*) FROM webhook_keys
             WHERE state = 'dead' AND expires_ms > ?1
             GROUP BY scheme",
        )?;
        let rows = select.query_map([self.now], |row| {
            Ok((
                row.get::<_, Option<String>>(0)?.unwrap_or_default(),
                row.get::<_, String>(1)?,
                row.get::<_, i64>(2)?,
            ))
        })?;
        for row in rows {
            let (scheme, state, count) = row?;
            let counts = by_scheme.entry(scheme).or_default();
            let count = unsigned(Some(count));
            match state.as_str() {
                "pending" => counts.pending = count,
                "running" => counts.running = count,
                _ => counts.dead = count,
            }
        }
        Ok(by_scheme.into_iter().collect())
    }

    pub(super) fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>> {
        let mut select = self.conn.prepare_cached(
            "SELECT key, scheme, event_id, attempts, last_error, accepted_ms, failed_ms
             FROM webhook_keys WHERE state = 'dead' AND expires_ms > ?1
             ORDER BY failed_ms, key LIMIT ?2",
        )?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = select.query_map(params![self.now, limit], |row| {
            Ok(DeadLetter {
                key: job_key(row, 0)?,
                scheme: row.get::<_, Option<String>>(1)?.unwrap_or_default(),
                id: row.get::<_, Option<String>>(2)?.unwrap_or_default(),
                attempts: row.get(3)?,
                last_error: row.get::<_, Option<String>>(4)?.unwrap_or_default(),
                accepted_at_ms: self.local_ms(row.get(5)?),
                failed_at_ms: self.local_ms(row.get(6)?),
            })
        })?;
        rows.collect()
    }

    /// A live dead letter back to pending, due now; one with an order key
    /// joins the end of its line (a new `seq`), held if the line is busy.
    pub(super) fn replay(&mut self, key: &str) -> Result<bool> {
        let line: Option<(String, Option<String>)> = self
            .conn
            .prepare_cached(
                "SELECT scheme, order_key FROM webhook_keys
                 WHERE key = ?1 AND state = 'dead' AND expires_ms > ?2",
            )?
            .query_row(params![key, self.now], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()?;
        let Some((scheme, order)) = line else {
            return Ok(false);
        };
        let due = match &order {
            Some(order) if self.line_is_busy(&scheme, order)? => HELD,
            _ => self.now,
        };
        let seq = self.generation();
        let changed = self
            .conn
            .prepare_cached(
                "UPDATE webhook_keys
                 SET state = 'pending', due_ms = ?2, expires_ms = NULL, failed_ms = NULL, seq = ?3
                 WHERE key = ?1 AND state = 'dead'",
            )?
            .execute(params![key, due, seq])?;
        Ok(changed == 1)
    }
}

/// A dead letter as its row holds it: the summary, and the delivery's
/// parts still to decode.
pub(super) struct DeadRow {
    pub(super) summary: JobSummary,
    pub(super) head: Vec<u8>,
    pub(super) body: Vec<u8>,
}

fn state_sql(state: JobState) -> &'static str {
    match state {
        JobState::Pending => "pending",
        JobState::Running => "running",
        JobState::Dead => "dead",
    }
}

impl Tx<'_> {
    fn summary(&self, row: &rusqlite::Row<'_>, state: JobState) -> Result<JobSummary> {
        Ok(JobSummary::new(
            job_key(row, 0)?,
            state,
            row.get::<_, Option<String>>(1)?.unwrap_or_default(),
            row.get::<_, Option<String>>(2)?.unwrap_or_default(),
            row.get(3)?,
            row.get::<_, Option<String>>(4)?.unwrap_or_default(),
            self.local_ms(row.get(5)?),
            row.get::<_, Option<i64>>(6)?
                .map_or(0, |ms| self.local_ms(Some(ms))),
        ))
    }

    pub(super) fn jobs(&self, state: JobState, limit: usize) -> Result<Vec<JobSummary>> {
        // Pending and running rows leave their state at `due_ms`, dead
        // letters are ordered by failure, as their index has them.
        let mut select = self.conn.prepare_cached(
            "SELECT key, scheme, event_id, attempts, last_error, accepted_ms, failed_ms
             FROM webhook_keys WHERE state = ?1 AND (state != 'dead' OR expires_ms > ?2)
             ORDER BY CASE WHEN state = 'dead' THEN failed_ms ELSE due_ms END, key LIMIT ?3",
        )?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = select.query_map(params![state_sql(state), self.now, limit], |row| {
            self.summary(row, state)
        })?;
        rows.collect()
    }

    pub(super) fn dead_letter(&self, key: &str) -> Result<Option<DeadRow>> {
        self.conn
            .prepare_cached(
                "SELECT key, scheme, event_id, attempts, last_error, accepted_ms, failed_ms,
                        head, body
                 FROM webhook_keys WHERE key = ?1 AND state = 'dead' AND expires_ms > ?2",
            )?
            .query_row(params![key, self.now], |row| {
                Ok(DeadRow {
                    summary: self.summary(row, JobState::Dead)?,
                    head: row.get::<_, Option<Vec<u8>>>(7)?.unwrap_or_default(),
                    body: row.get::<_, Option<Vec<u8>>>(8)?.unwrap_or_default(),
                })
            })
            .optional()
    }

    pub(super) fn discard(&self, key: &str) -> Result<bool> {
        let changed = self
            .conn
            .prepare_cached(
                "DELETE FROM webhook_keys WHERE key = ?1 AND state = 'dead' AND expires_ms > ?2",
            )?
            .execute(params![key, self.now])?;
        Ok(changed == 1)
    }
}

/// Whether any row has run out (a cheap probe of the expiry index, so an
/// idle sweep opens no transaction when there is nothing to do).
pub(super) fn anything_expired(conn: &Connection, now: i64) -> Result<bool> {
    conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM webhook_keys WHERE expires_ms <= ?1)")?
        .query_row([now], |row| row.get(0))
}

/// Deletes up to `batch` rows that have run out, soonest expiry first;
/// returns how many it deleted. (`DELETE … LIMIT` is not compiled into the
/// bundled SQLite, hence the sub-select.)
pub(super) fn delete_expired(conn: &Connection, now: i64, batch: usize) -> Result<usize> {
    let batch = i64::try_from(batch).unwrap_or(i64::MAX);
    conn.prepare_cached(
        "DELETE FROM webhook_keys WHERE rowid IN (
             SELECT rowid FROM webhook_keys WHERE expires_ms <= ?1 ORDER BY expires_ms LIMIT ?2)",
    )?
    .execute(params![now, batch])
}
