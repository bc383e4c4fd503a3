//! [`MemoryQueue`]: queued mode in one process's memory, for tests and
//! development. The same states and answers as the durable backends;
//! nothing survives the process.
//!
//! Every call takes one short lock. `take` scans the jobs (O(jobs)), which
//! is fine for the volumes of a test or a laptop, not for production.

use std::collections::{BTreeMap, HashMap};
use std::future::{Ready, ready};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use super::{
    Accept, DeadLetter, Delivery, Job, JobOutcome, JobQueue, QueueCounts, QueueFuture, TakeRequest,
    Taken, from_unix_millis, unix_millis,
};
use crate::store::{Claim, IdempotencyKey, IdempotencyStore, StoreError};

/// Queued mode (and inline claims) in memory. Clones share one queue.
#[derive(Clone, Default)]
pub struct MemoryQueue {
    shared: Arc<Mutex<State>>,
}

impl std::fmt::Debug for MemoryQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("MemoryQueue")
            .field("keys", &state.slots.len())
            .finish()
    }
}

/// Proof of an inline claim or of a worker's lease on a [`MemoryQueue`]
/// key.
#[derive(Debug, Clone)]
pub struct MemoryQueueLease {
    key: Arc<str>,
    generation: u64,
}

#[derive(Default)]
struct State {
    next_generation: u64,
    slots: HashMap<Arc<str>, Slot>,
    /// Accepts since the last sweep of expired keys.
    since_sweep: usize,
}

struct Recorded {
    delivery: Delivery,
    attempts: u32,
    accepted_ms: u64,
}

enum Slot {
    /// An inline claim.
    Claimed {
        generation: u64,
        until_ms: u64,
    },
    Done {
        until_ms: u64,
    },
    Pending {
        job: Recorded,
        due_ms: u64,
    },
    Running {
        job: Recorded,
        generation: u64,
        until_ms: u64,
    },
    Dead {
        job: Recorded,
        until_ms: u64,
        error: String,
        failed_ms: u64,
    },
}

impl Slot {
    /// Whether the key is free again: its claim, done mark or dead letter
    /// has run out.
    fn expired(&self, now: u64) -> bool {
        match self {
            Self::Claimed { until_ms, .. }
            | Self::Done { until_ms }
            | Self::Dead { until_ms, .. } => *until_ms <= now,
            Self::Pending { .. } | Self::Running { .. } => false,
        }
    }
}

impl MemoryQueue {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Every update is a single assignment: a panic elsewhere leaves the
        // map consistent.
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn now_ms() -> u64 {
    unix_millis(SystemTime::now())
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl State {
    fn generation(&mut self) -> u64 {
        self.next_generation += 1;
        self.next_generation
    }

    /// The slot under `key`, if it holds and has not run out.
    fn live(&self, key: &str, now: u64) -> Option<&Slot> {
        self.slots.get(key).filter(|slot| !slot.expired(now))
    }

    fn sweep(&mut self, now: u64) {
        self.since_sweep += 1;
        if self.since_sweep >= 1024 {
            self.since_sweep = 0;
            self.slots.retain(|_, slot| !slot.expired(now));
        }
    }

    /// Moves the end of `lease` (an inline claim's or a running job's: its
    /// generation names one) to `lease_for` from now; whether it still held.
    fn extend(&mut self, lease: &MemoryQueueLease, lease_for: Duration) -> bool {
        match self.slots.get_mut(&lease.key) {
            Some(
                Slot::Claimed {
                    generation,
                    until_ms,
                }
                | Slot::Running {
                    generation,
                    until_ms,
                    ..
                },
            ) if *generation == lease.generation => {
                *until_ms = now_ms().saturating_add(ms(lease_for));
                true
            }
            _ => false,
        }
    }

    fn holds(&self, lease: &MemoryQueueLease) -> bool {
        matches!(
            self.slots.get(&lease.key),
            Some(Slot::Running { generation, .. } | Slot::Claimed { generation, .. })
                if *generation == lease.generation
        )
    }
}

impl IdempotencyStore for MemoryQueue {
    type Lease = MemoryQueueLease;
    type ClaimFuture = Ready<Result<Claim<MemoryQueueLease>, StoreError>>;
    type FinishFuture = Ready<Result<(), StoreError>>;
    type RenewFuture = Ready<Result<bool, StoreError>>;

    fn claim(&self, key: &IdempotencyKey, lease: Duration) -> Self::ClaimFuture {
        let mut state = self.lock();
        let now = now_ms();
        let answer = match state.live(key.as_str(), now) {
            Some(Slot::Done { .. } | Slot::Dead { .. }) => Claim::Done,
            Some(_) => Claim::InFlight,
            None => {
                let generation = state.generation();
                let key: Arc<str> = Arc::from(key.as_str());
                let slot = Slot::Claimed {
                    generation,
                    until_ms: now.saturating_add(ms(lease)),
                };
                state.slots.insert(Arc::clone(&key), slot);
                Claim::New(MemoryQueueLease { key, generation })
            }
        };
        ready(Ok(answer))
    }

    fn renew_claim(&self, lease: &MemoryQueueLease, lease_for: Duration) -> Self::RenewFuture {
        ready(Ok(self.lock().extend(lease, lease_for)))
    }

    fn complete(&self, lease: MemoryQueueLease, ttl: Duration) -> Self::FinishFuture {
        let mut state = self.lock();
        if state.holds(&lease) {
            let until_ms = now_ms().saturating_add(ms(ttl));
            state.slots.insert(lease.key, Slot::Done { until_ms });
        }
        ready(Ok(()))
    }

    fn release(&self, lease: MemoryQueueLease) -> Self::FinishFuture {
        let mut state = self.lock();
        if matches!(state.slots.get(&lease.key), Some(Slot::Claimed { generation, .. }) if *generation == lease.generation)
        {
            state.slots.remove(&lease.key);
        }
        ready(Ok(()))
    }

    fn release_abandoned(&self, lease: MemoryQueueLease) {
        drop(self.release(lease)); // Ready: the release already happened
    }
}

impl JobQueue for MemoryQueue {
    type JobLease = MemoryQueueLease;

    fn accept(&self, key: &IdempotencyKey, delivery: Delivery) -> QueueFuture<Accept> {
        let mut state = self.lock();
        let now = now_ms();
        state.sweep(now);
        let answer = if state.live(key.as_str(), now).is_some() {
            Accept::Duplicate
        } else {
            let job = Recorded {
                delivery,
                attempts: 0,
                accepted_ms: now,
            };
            let slot = Slot::Pending { job, due_ms: now };
            state.slots.insert(Arc::from(key.as_str()), slot);
            Accept::Accepted
        };
        Box::pin(ready(Ok(answer)))
    }

    fn take(&self, request: TakeRequest) -> QueueFuture<Taken<MemoryQueueLease>> {
        let mut state = self.lock();
        let now = now_ms();
        let wanted = |job: &Recorded| request.schemes.iter().any(|s| **s == job.delivery.scheme);
        let mut due: Vec<(u64, Arc<str>)> = Vec::new();
        let mut next_due: Option<u64> = None;
        for (key, slot) in &state.slots {
            let (job, at) = match slot {
                Slot::Pending { job, due_ms } => (job, *due_ms),
                Slot::Running { job, until_ms, .. } => (job, *until_ms),
                _ => continue,
            };
            if !wanted(job) {
                continue;
            }
            if at <= now {
                due.push((at, Arc::clone(key)));
            } else {
                next_due = Some(next_due.map_or(at, |n| n.min(at)));
            }
        }
        due.sort_unstable();
        let mut jobs = Vec::new();
        for (at, key) in due {
            if jobs.len() == request.max {
                next_due = Some(next_due.map_or(at, |n| n.min(at)));
                continue;
            }
            let generation = state.generation();
            let Some(slot) = state.slots.get_mut(&key) else {
                continue;
            };
            let (Slot::Pending { job, .. } | Slot::Running { job, .. }) =
                std::mem::replace(slot, Slot::Done { until_ms: 0 })
            else {
                unreachable!("only pending and running slots are due")
            };
            let mut job = job;
            job.attempts += 1;
            jobs.push(Job {
                key: key.to_string(),
                delivery: job.delivery.clone(),
                attempt: job.attempts,
                accepted_at: from_unix_millis(job.accepted_ms),
                lease: MemoryQueueLease {
                    key: Arc::clone(&key),
                    generation,
                },
            });
            *slot = Slot::Running {
                job,
                generation,
                until_ms: now.saturating_add(ms(request.lease)),
            };
        }
        let next_due = next_due.map(from_unix_millis);
        Box::pin(ready(Ok(Taken { jobs, next_due })))
    }

    fn renew(&self, lease: &MemoryQueueLease, lease_for: Duration) -> QueueFuture<bool> {
        Box::pin(ready(Ok(self.lock().extend(lease, lease_for))))
    }

    fn finish(&self, lease: MemoryQueueLease, outcome: JobOutcome) -> QueueFuture<bool> {
        let mut state = self.lock();
        let now = now_ms();
        let Some(slot) = state.slots.get_mut(&lease.key) else {
            return Box::pin(ready(Ok(false)));
        };
        if !matches!(slot, Slot::Running { generation, .. } if *generation == lease.generation) {
            return Box::pin(ready(Ok(false)));
        }
        let Slot::Running { job, .. } = std::mem::replace(slot, Slot::Done { until_ms: 0 }) else {
            unreachable!("checked above")
        };
        *slot = match outcome {
            JobOutcome::Done { ttl } => Slot::Done {
                until_ms: now.saturating_add(ms(ttl)),
            },
            JobOutcome::Retry { due, .. } => Slot::Pending {
                job,
                due_ms: unix_millis(due),
            },
            JobOutcome::Dead { error, retain } => Slot::Dead {
                job,
                until_ms: now.saturating_add(ms(retain)),
                error,
                failed_ms: now,
            },
        };
        Box::pin(ready(Ok(true)))
    }

    fn counts(&self) -> QueueFuture<QueueCounts> {
        let state = self.lock();
        let now = now_ms();
        let mut counts = QueueCounts::default();
        for slot in state.slots.values().filter(|slot| !slot.expired(now)) {
            match slot {
                Slot::Pending { .. } => counts.pending += 1,
                Slot::Running { .. } => counts.running += 1,
                Slot::Dead { .. } => counts.dead += 1,
                Slot::Claimed { .. } | Slot::Done { .. } => {}
            }
        }
        Box::pin(ready(Ok(counts)))
    }

    fn counts_by_scheme(&self) -> QueueFuture<Vec<(String, QueueCounts)>> {
        let state = self.lock();
        let now = now_ms();
        let mut by_scheme: BTreeMap<&str, QueueCounts> = BTreeMap::new();
        for slot in state.slots.values().filter(|slot| !slot.expired(now)) {
            let (job, count): (&Recorded, fn(&mut QueueCounts)) = match slot {
                Slot::Pending { job, .. } => (job, |c| c.pending += 1),
                Slot::Running { job, .. } => (job, |c| c.running += 1),
                Slot::Dead { job, .. } => (job, |c| c.dead += 1),
                Slot::Claimed { .. } | Slot::Done { .. } => continue,
            };
            count(by_scheme.entry(&job.delivery.scheme).or_default());
        }
        let counts = by_scheme
            .into_iter()
            .map(|(scheme, counts)| (scheme.to_owned(), counts))
            .collect();
        Box::pin(ready(Ok(counts)))
    }

    fn dead_letters(&self, limit: usize) -> QueueFuture<Vec<DeadLetter>> {
        let state = self.lock();
        let now = now_ms();
        let mut letters: Vec<DeadLetter> = state
            .slots
            .iter()
            .filter(|(_, slot)| !slot.expired(now))
            .filter_map(|(key, slot)| match slot {
                Slot::Dead {
                    job,
                    error,
                    failed_ms,
                    ..
                } => Some(DeadLetter {
                    key: key.to_string(),
                    scheme: job.delivery.scheme.clone(),
                    id: job.delivery.event_id.clone(),
                    attempts: job.attempts,
                    last_error: error.clone(),
                    accepted_at_ms: job.accepted_ms,
                    failed_at_ms: *failed_ms,
                }),
                _ => None,
            })
            .collect();
        letters.sort_by(|a, b| (a.failed_at_ms, &a.key).cmp(&(b.failed_at_ms, &b.key)));
        letters.truncate(limit);
        Box::pin(ready(Ok(letters)))
    }

    fn replay(&self, key: &str) -> QueueFuture<bool> {
        let mut state = self.lock();
        let now = now_ms();
        let replayed = match state.slots.get_mut(key) {
            Some(slot @ Slot::Dead { .. }) if !slot.expired(now) => {
                let Slot::Dead { job, .. } = std::mem::replace(slot, Slot::Done { until_ms: 0 })
                else {
                    unreachable!("matched above")
                };
                *slot = Slot::Pending { job, due_ms: now };
                true
            }
            _ => false,
        };
        Box::pin(ready(Ok(replayed)))
    }
}
