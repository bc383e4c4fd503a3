//! [`MemoryQueue`]: queued mode in one process's memory, for tests and
//! development. The same states and answers as the durable backends;
//! nothing survives the process.
//!
//! Its keys live in a [`MemoryStore`]'s table (see the parent module): the
//! same bound, eviction, TTLs and lease checks as inline claims, written
//! once. Each call takes one shard's lock; `take`, the counts and the dead
//! letter calls scan the jobs (O(jobs)), which is fine for the volumes of
//! a test or a laptop, not for production.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::{Ready, ready};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use super::{Completed, DONE, Digest, Entry, JOB, MemoryLease, MemoryStore, Shard, millis};
use crate::store::admin::{DeadLetterDetail, JobState, JobSummary, QueueInspect};
use crate::store::queue::{
    Accept, DeadLetter, Delivery, Job, JobOutcome, JobQueue, QueueAdmin, QueueCounts, QueueFuture,
    TakeRequest, Taken, from_unix_millis, unix_millis,
};
use crate::store::{IdempotencyKey, IdempotencyStore, JobKey, StoreError};

/// Queued mode (and inline claims) in memory, bounded like a
/// [`MemoryStore`]: pending, running and dead jobs count towards the bound
/// and are never evicted, so a queue full of them refuses new deliveries
/// (503) rather than forget one. Clones share one queue.
#[derive(Clone, Default)]
pub struct MemoryQueue {
    store: MemoryStore,
    /// Per scheme and order key, its live jobs in acceptance order: the
    /// first is the one that may run, the others are held. Locked before
    /// any shard, never while one is held.
    lines: Arc<Mutex<HashMap<LineKey, VecDeque<Digest>>>>,
    /// Held by a capped take from its count to its last lease, so that
    /// each capped take counts the jobs the one before it leased. Locked
    /// before any shard.
    capped_takes: Arc<Mutex<()>>,
}

/// A due job as `take` sorts them: its due time or lease end, shard,
/// digest, scheme (an index into the request's), and tenant (with a
/// tenant cap only).
type DueJob = (u64, usize, Digest, usize, Option<Box<str>>);

/// A scheme and an order key.
type LineKey = (Box<str>, Box<str>);

/// The due time of a job held back behind an earlier one of its order key.
const HELD: u64 = u64::MAX;

fn line_key(delivery: &Delivery) -> Option<LineKey> {
    let order = delivery.order_key.as_deref()?;
    Some((delivery.scheme.as_str().into(), order.into()))
}

impl std::fmt::Debug for MemoryQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryQueue")
            .field("keys", &self.store.len())
            .field("max_keys", &self.store.shared.max_keys)
            .finish()
    }
}

/// A job as its shard records it, beside its key's entry.
pub(super) struct Recorded {
    /// The key, as [`Job::key`] and [`DeadLetter::key`] give it.
    key: JobKey,
    delivery: Delivery,
    attempts: u32,
    accepted_ms: u64,
    state: State,
    /// Why the last attempt failed, and when it ended (Unix ms; 0: none).
    last_failure: (String, u64),
}

/// Times in milliseconds since the Unix epoch, as the queue contract
/// speaks them; a dead letter's retention is its entry's deadline.
enum State {
    Pending { due_ms: u64 },
    Running { until_ms: u64 },
    Dead { error: String, failed_ms: u64 },
}

fn unix_now() -> u64 {
    unix_millis(SystemTime::now())
}

impl MemoryQueue {
    /// An empty queue holding at most
    /// [`DEFAULT_MAX_KEYS`](super::DEFAULT_MAX_KEYS) keys.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty queue holding at most `max_keys` keys (claims, done marks
    /// and jobs together; at least 1).
    pub fn with_max_keys(max_keys: usize) -> Self {
        Self {
            store: MemoryStore::with_max_keys(max_keys),
            lines: Arc::default(),
            capped_takes: Arc::default(),
        }
    }

    fn lines(&self) -> MutexGuard<'_, HashMap<LineKey, VecDeque<Digest>>> {
        self.lines.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn accept_now(&self, key: &IdempotencyKey, delivery: Delivery) -> Result<Accept, StoreError> {
        let digest = self.store.digest(key);
        let now = self.store.now_ms();
        let line = line_key(&delivery);
        let mut lines = line.as_ref().map(|_| self.lines());
        let mut shard = self.store.shard(digest);
        let fresh = Entry {
            deadline_ms: u64::MAX,
            generation_and_done: shard.next_generation | JOB,
        };
        if shard.admit(digest, now, fresh)?.is_some() {
            return Ok(Accept::Duplicate);
        }
        let accepted_ms = unix_now();
        let mut due_ms = accepted_ms;
        if let (Some(lines), Some(line)) = (lines.as_mut(), line) {
            let queued = lines.entry(line).or_default();
            if !queued.is_empty() {
                due_ms = HELD;
            }
            queued.push_back(digest);
        }
        let job = Recorded {
            key: JobKey::from(key),
            delivery,
            attempts: 0,
            accepted_ms,
            state: State::Pending { due_ms },
            last_failure: (String::new(), 0),
        };
        shard.jobs.insert(digest, job);
        Ok(Accept::Accepted)
    }

    fn take_now(&self, request: &TakeRequest) -> Taken<MemoryLease> {
        let _one_at_a_time = request.is_capped().then(|| {
            self.capped_takes
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
        });
        let now = unix_now();
        let mut due: Vec<DueJob> = Vec::new();
        let mut next_due: Option<u64> = None;
        let mut soonest = |at: u64| next_due = Some(next_due.map_or(at, |n: u64| n.min(at)));
        // Jobs running on a live lease: per requested scheme (by index),
        // and per tenant over every scheme (only with a tenant cap).
        let mut running = vec![0usize; request.schemes.len()];
        let mut running_by_tenant: HashMap<Box<str>, usize> = HashMap::new();
        let count_tenants = request.max_running_per_tenant.is_some();
        for index in 0..self.store.shared.shards.len() {
            let shard = self.store.lock(index);
            for (digest, job) in &shard.jobs {
                let live_lease = matches!(job.state, State::Running { until_ms } if until_ms > now);
                let tenant = job.key.tenant().filter(|_| count_tenants);
                if live_lease && let Some(tenant) = tenant {
                    *running_by_tenant.entry(tenant.into()).or_default() += 1;
                }
                let Some(scheme) = request
                    .schemes
                    .iter()
                    .position(|s| **s == job.delivery.scheme)
                else {
                    continue;
                };
                let at = match job.state {
                    State::Pending { due_ms: HELD } | State::Dead { .. } => continue,
                    State::Pending { due_ms } => due_ms,
                    State::Running { until_ms } => until_ms,
                };
                if live_lease {
                    running[scheme] += 1;
                }
                if at <= now {
                    due.push((at, index, *digest, scheme, tenant.map(Box::from)));
                } else {
                    soonest(at);
                }
            }
        }
        due.sort_unstable();
        let scheme_cap = request.max_running_per_scheme.unwrap_or(usize::MAX);
        let tenant_cap = request.max_running_per_tenant.unwrap_or(usize::MAX);
        let mut jobs = Vec::new();
        for (at, index, digest, scheme, tenant) in due {
            let tenant_running = tenant.map(|t| running_by_tenant.entry(t).or_default());
            if running[scheme] >= scheme_cap
                || tenant_running.as_ref().is_some_and(|n| **n >= tenant_cap)
            {
                // A place frees when a job ends (which wakes this worker,
                // if it ran here) or a lease runs out, not at `at`.
                continue;
            }
            if jobs.len() == request.max {
                soonest(at);
                continue;
            }
            if let Some(job) = self.store.lock(index).take_job(digest, now, request.lease) {
                running[scheme] += 1;
                if let Some(n) = tenant_running {
                    *n += 1;
                }
                jobs.push(job);
            }
        }
        let next_due = next_due.map(from_unix_millis);
        Taken { jobs, next_due }
    }

    /// Takes `digest` out of its order line and lets the next job of the
    /// line run.
    fn leave_line(&self, line: &LineKey, digest: Digest) {
        let mut lines = self.lines();
        let Some(queued) = lines.get_mut(line) else {
            return;
        };
        queued.retain(|d| *d != digest);
        match queued.front() {
            None => {
                lines.remove(line);
            }
            Some(&next) => {
                if let Some(job) = self.store.shard(next).jobs.get_mut(&next)
                    && matches!(job.state, State::Pending { due_ms: HELD })
                {
                    job.state = State::Pending { due_ms: unix_now() };
                }
            }
        }
    }

    /// Every live job, with its shard's clock, for the admin calls.
    fn each_job(&self, mut visit: impl FnMut(&Recorded)) {
        let now = self.store.now_ms();
        for index in 0..self.store.shared.shards.len() {
            let shard = self.store.lock(index);
            for (digest, job) in &shard.jobs {
                if shard
                    .entries
                    .get(digest)
                    .is_some_and(|e| e.deadline_ms > now)
                {
                    visit(job);
                }
            }
        }
    }
}

impl Shard {
    /// Leases the job under `digest` if it is still due (`now` in Unix
    /// milliseconds): its attempt count goes up, and only the new lease's
    /// generation can renew or finish it.
    fn take_job(&mut self, digest: Digest, now: u64, lease: Duration) -> Option<Job<MemoryLease>> {
        let generation = self.next_generation;
        let entry = self.entries.get_mut(&digest)?;
        let job = self.jobs.get_mut(&digest)?;
        let (at, interrupted) = match job.state {
            State::Pending { due_ms } => (due_ms, false),
            State::Running { until_ms } => (until_ms, true),
            State::Dead { .. } => return None,
        };
        if at > now {
            return None;
        }
        self.next_generation += 1;
        entry.generation_and_done = generation | JOB;
        job.attempts += 1;
        job.state = State::Running {
            until_ms: now.saturating_add(millis(lease)),
        };
        Some(Job {
            key: job.key.clone(),
            delivery: job.delivery.clone(),
            attempt: job.attempts,
            accepted_at: from_unix_millis(job.accepted_ms),
            interrupted,
            lease: MemoryLease {
                key: digest,
                generation,
            },
        })
    }

    /// The running job `lease` holds, if it still holds it.
    fn running(&mut self, lease: &MemoryLease) -> Option<(&mut Entry, &mut Recorded)> {
        let entry = self.entries.get_mut(&lease.key)?;
        if entry.generation_and_done != lease.generation | JOB {
            return None;
        }
        let job = self.jobs.get_mut(&lease.key)?;
        matches!(job.state, State::Running { .. }).then_some((entry, job))
    }

    /// Records how the attempt `lease` holds ended; `now` is the store's
    /// clock. `None` when the lease no longer held; else the order line
    /// the job left (done or dead), if it had one.
    fn finish_job(
        &mut self,
        lease: &MemoryLease,
        outcome: JobOutcome,
        now: u64,
    ) -> Option<Option<LineKey>> {
        let (entry, job) = self.running(lease)?;
        let line = match outcome {
            JobOutcome::Retry { .. } => None,
            JobOutcome::Done { .. } | JobOutcome::Dead { .. } => line_key(&job.delivery),
        };
        match outcome {
            JobOutcome::Done { ttl } => {
                let deadline_ms = now.saturating_add(millis(ttl));
                *entry = Entry {
                    deadline_ms,
                    generation_and_done: lease.generation | DONE,
                };
                self.jobs.remove(&lease.key);
                self.completed.push(Completed {
                    deadline_ms,
                    generation: lease.generation,
                    key: lease.key,
                });
            }
            JobOutcome::Retry { due, error } => {
                job.state = State::Pending {
                    due_ms: unix_millis(due),
                };
                job.last_failure = (error, unix_now());
            }
            JobOutcome::Dead { error, retain } => {
                *entry = Entry {
                    deadline_ms: now.saturating_add(millis(retain)),
                    generation_and_done: lease.generation | DONE | JOB,
                };
                let failed_ms = unix_now();
                job.last_failure = (error.clone(), failed_ms);
                job.state = State::Dead { error, failed_ms };
            }
        }
        Some(line)
    }
}

impl IdempotencyStore for MemoryQueue {
    type Lease = MemoryLease;
    type ClaimFuture = <MemoryStore as IdempotencyStore>::ClaimFuture;
    type FinishFuture = <MemoryStore as IdempotencyStore>::FinishFuture;
    type RenewFuture = <MemoryStore as IdempotencyStore>::RenewFuture;

    fn claim(&self, key: &IdempotencyKey, lease: Duration) -> Self::ClaimFuture {
        self.store.claim(key, lease)
    }

    fn renew_claim(&self, lease: &MemoryLease, lease_for: Duration) -> Self::RenewFuture {
        self.store.renew_claim(lease, lease_for)
    }

    fn complete(&self, lease: MemoryLease, ttl: Duration) -> Self::FinishFuture {
        self.store.complete(lease, ttl)
    }

    fn release(&self, lease: MemoryLease) -> Self::FinishFuture {
        self.store.release(lease)
    }

    fn release_abandoned(&self, lease: MemoryLease) {
        self.store.release_abandoned(lease);
    }
}

fn answered<T: Send + 'static>(answer: T) -> QueueFuture<T> {
    Box::pin(ready(Ok(answer)))
}

impl JobQueue for MemoryQueue {
    type JobLease = MemoryLease;

    fn accept(&self, key: &IdempotencyKey, delivery: Delivery) -> QueueFuture<Accept> {
        let answer: Ready<_> = ready(self.accept_now(key, delivery));
        Box::pin(answer)
    }

    fn take(&self, request: TakeRequest) -> QueueFuture<Taken<MemoryLease>> {
        answered(self.take_now(&request))
    }

    fn renew(&self, lease: &MemoryLease, lease_for: Duration) -> QueueFuture<bool> {
        let renewed = self.store.shard(lease.key).running(lease).map(|(_, job)| {
            job.state = State::Running {
                until_ms: unix_now().saturating_add(millis(lease_for)),
            };
        });
        answered(renewed.is_some())
    }

    fn finish(&self, lease: MemoryLease, outcome: JobOutcome) -> QueueFuture<bool> {
        let now = self.store.now_ms();
        let finished = self.store.shard(lease.key).finish_job(&lease, outcome, now);
        if let Some(Some(line)) = &finished {
            self.leave_line(line, lease.key);
        }
        answered(finished.is_some())
    }
}

impl QueueAdmin for MemoryQueue {
    fn counts(&self) -> QueueFuture<QueueCounts> {
        let mut counts = QueueCounts::default();
        self.each_job(|job| count(&mut counts, job));
        answered(counts)
    }

    fn counts_by_scheme(&self) -> QueueFuture<Vec<(String, QueueCounts)>> {
        let mut by_scheme: BTreeMap<String, QueueCounts> = BTreeMap::new();
        self.each_job(|job| {
            let scheme = &job.delivery.scheme;
            if !by_scheme.contains_key(scheme) {
                by_scheme.insert(scheme.clone(), QueueCounts::default());
            }
            if let Some(counts) = by_scheme.get_mut(scheme) {
                count(counts, job);
            }
        });
        answered(by_scheme.into_iter().collect())
    }

    fn dead_letters(&self, limit: usize) -> QueueFuture<Vec<DeadLetter>> {
        let mut letters = Vec::new();
        self.each_job(|job| {
            if let State::Dead { error, failed_ms } = &job.state {
                letters.push(DeadLetter {
                    key: job.key.clone(),
                    scheme: job.delivery.scheme.clone(),
                    id: job.delivery.event_id.clone(),
                    attempts: job.attempts,
                    last_error: error.clone(),
                    accepted_at_ms: job.accepted_ms,
                    failed_at_ms: *failed_ms,
                });
            }
        });
        letters.sort_by(|a, b| (a.failed_at_ms, &a.key).cmp(&(b.failed_at_ms, &b.key)));
        letters.truncate(limit);
        answered(letters)
    }

    fn replay(&self, key: &JobKey) -> QueueFuture<bool> {
        let now = self.store.now_ms();
        // The order lines are locked before a shard: find the letter first.
        let mut found = None;
        for index in 0..self.store.shared.shards.len() {
            let shard = self.store.lock(index);
            if let Some((digest, job)) = shard
                .jobs
                .iter()
                .find(|(_, job)| job.key == *key && matches!(job.state, State::Dead { .. }))
            {
                found = Some((index, *digest, line_key(&job.delivery)));
                break;
            }
        }
        let Some((index, digest, line)) = found else {
            return answered(false);
        };
        let mut lines = line.as_ref().map(|_| self.lines());
        let mut shard = self.store.lock(index);
        let shard = &mut *shard;
        let (Some(job), Some(entry)) =
            (shard.jobs.get_mut(&digest), shard.entries.get_mut(&digest))
        else {
            return answered(false);
        };
        if !matches!(job.state, State::Dead { .. }) || entry.deadline_ms <= now {
            return answered(false); // replayed meanwhile, or past its retention
        }
        *entry = Entry {
            deadline_ms: u64::MAX,
            generation_and_done: entry.generation() | JOB,
        };
        let mut due_ms = unix_now();
        if let (Some(lines), Some(line)) = (lines.as_mut(), line) {
            let queued = lines.entry(line).or_default();
            if !queued.is_empty() {
                due_ms = HELD;
            }
            queued.push_back(digest);
        }
        job.state = State::Pending { due_ms };
        answered(true)
    }
}

impl Recorded {
    fn state(&self) -> JobState {
        match self.state {
            State::Pending { .. } => JobState::Pending,
            State::Running { .. } => JobState::Running,
            State::Dead { .. } => JobState::Dead,
        }
    }

    fn summary(&self) -> JobSummary {
        JobSummary::new(
            self.key.clone(),
            self.state(),
            self.delivery.scheme.clone(),
            self.delivery.event_id.clone(),
            self.attempts,
            self.last_failure.0.clone(),
            self.accepted_ms,
            self.last_failure.1,
        )
    }
}

impl QueueInspect for MemoryQueue {
    fn jobs(&self, state: JobState, limit: usize) -> QueueFuture<Vec<JobSummary>> {
        let mut listed = Vec::new();
        self.each_job(|job| {
            if job.state() == state {
                let leaves_at = match job.state {
                    State::Pending { due_ms } => due_ms,
                    State::Running { until_ms } => until_ms,
                    State::Dead { failed_ms, .. } => failed_ms,
                };
                listed.push((leaves_at, job.summary()));
            }
        });
        listed.sort_by(|a, b| (a.0, &a.1.key).cmp(&(b.0, &b.1.key)));
        let listed = listed.into_iter().take(limit).map(|(_, job)| job).collect();
        answered(listed)
    }

    fn dead_letter(&self, key: &JobKey) -> QueueFuture<Option<DeadLetterDetail>> {
        let mut found = None;
        self.each_job(|job| {
            if found.is_none() && job.key == *key && job.state() == JobState::Dead {
                found = Some(DeadLetterDetail {
                    summary: job.summary(),
                    delivery: job.delivery.clone(),
                });
            }
        });
        answered(found)
    }

    fn discard(&self, key: &JobKey) -> QueueFuture<bool> {
        let now = self.store.now_ms();
        for index in 0..self.store.shared.shards.len() {
            let mut shard = self.store.lock(index);
            let found = shard.jobs.iter().find_map(|(digest, job)| {
                (job.key == *key && matches!(job.state, State::Dead { .. })).then_some(*digest)
            });
            let Some(digest) = found else { continue };
            let live = shard
                .entries
                .get(&digest)
                .is_some_and(|e| e.deadline_ms > now);
            // A dead letter's entry is never in the completion queue, so it
            // goes with its job and nothing else refers to it.
            shard.jobs.remove(&digest);
            shard.entries.remove(&digest);
            return answered(live);
        }
        answered(false)
    }
}

fn count(counts: &mut QueueCounts, job: &Recorded) {
    match job.state {
        State::Pending { .. } => counts.pending += 1,
        State::Running { .. } => counts.running += 1,
        State::Dead { .. } => counts.dead += 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EventId;
    use crate::store::Claim;

    fn claimed(queue: &MemoryQueue, key: &IdempotencyKey) -> Claim<MemoryLease> {
        queue
            .claim(key, Duration::from_secs(60))
            .into_inner()
            .unwrap()
    }

    fn key(id: &str) -> IdempotencyKey {
        IdempotencyKey::new("numero", &EventId::new(id).unwrap())
    }

    fn delivery(id: &str) -> Delivery {
        Delivery {
            scheme: "numero".into(),
            event_id: id.into(),
            method: http::Method::POST,
            uri: "/numero".parse().unwrap(),
            headers: http::HeaderMap::new(),
            body: bytes::Bytes::new(),
            order_key: None,
        }
    }

    #[tokio::test]
    async fn jobs_count_towards_the_bound_and_are_never_evicted() {
        let queue = MemoryQueue::with_max_keys(2);
        for id in ["a", "b"] {
            assert_eq!(
                queue.accept(&key(id), delivery(id)).await.unwrap(),
                Accept::Accepted
            );
        }
        assert!(
            queue.accept(&key("c"), delivery("c")).await.is_err(),
            "full of jobs"
        );
        assert!(
            queue
                .claim(&key("c"), Duration::from_secs(60))
                .into_inner()
                .is_err()
        );
        assert!(matches!(claimed(&queue, &key("a")), Claim::InFlight));
        assert_eq!(queue.counts().await.unwrap().pending, 2);
    }

    #[tokio::test]
    async fn a_done_job_is_evicted_like_a_done_claim() {
        let queue = MemoryQueue::with_max_keys(1);
        queue.accept(&key("a"), delivery("a")).await.unwrap();
        let request = TakeRequest::new(
            std::sync::Arc::from(vec![Box::from("numero")]),
            1,
            Duration::from_secs(60),
        );
        let job = queue.take(request).await.unwrap().jobs.pop().unwrap();
        let done = JobOutcome::Done {
            ttl: Duration::from_secs(3600),
        };
        assert!(queue.finish(job.lease, done).await.unwrap());
        assert!(
            matches!(claimed(&queue, &key("b")), Claim::New(_)),
            "a went"
        );
        assert_eq!(queue.store.len(), 1);
    }
}
