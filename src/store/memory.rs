//! The embedded default store: one process, bounded memory.
//!
//! Every call takes one short lock and answers synchronously, so its futures
//! are `Ready` and cost no allocation. At the bound a new key first evicts
//! expired entries, then the oldest completed one; an in-flight claim is
//! never evicted, and when every key is in flight the claim fails (503) rather
//! than forget a claim.
//!
//! It cannot see other processes: run several replicas behind a load balancer
//! and a duplicate can land on a replica that never saw the first copy. Use a
//! shared store (Redis) there.

use std::collections::hash_map::Entry as MapEntry;
use std::collections::{HashMap, VecDeque};
use std::future::{Ready, ready};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::{Claim, IdempotencyKey, IdempotencyStore, StoreError};

/// Default bound on resident keys.
pub const DEFAULT_MAX_KEYS: usize = 100_000;

/// The in-memory store. Clones share one map.
#[derive(Clone)]
pub struct MemoryStore {
    shared: Arc<Mutex<State>>,
}

/// Proof of a claim on a [`MemoryStore`] key.
#[derive(Debug)]
pub struct MemoryLease {
    key: Arc<str>,
    generation: u64,
}

const DONE: u64 = 1 << 63;

/// 16 bytes: the deadline (lease end or done-TTL end) in milliseconds since
/// the store's epoch, and the claim's generation with the done flag in its
/// top bit.
#[derive(Clone, Copy)]
struct Entry {
    deadline_ms: u64,
    generation_and_done: u64,
}

impl Entry {
    fn generation(self) -> u64 {
        self.generation_and_done & !DONE
    }
    fn is_done(self) -> bool {
        self.generation_and_done & DONE != 0
    }
}

/// One item of the completion queue.
struct Completed {
    key: Arc<str>,
    generation: u64,
    deadline_ms: u64,
}

struct State {
    epoch: Instant,
    max_keys: usize,
    next_generation: u64,
    entries: HashMap<Arc<str>, Entry>,
    /// Completed keys, oldest first, with the generation they completed
    /// under and their done deadline, so that checking the front for expiry
    /// costs no hash lookup; an item whose entry has since changed is stale
    /// and skipped.
    completed: VecDeque<Completed>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("MemoryStore")
            .field("keys", &state.entries.len())
            .field("max_keys", &state.max_keys)
            .finish()
    }
}

impl MemoryStore {
    /// A store holding at most [`DEFAULT_MAX_KEYS`] keys.
    pub fn new() -> Self {
        Self::with_max_keys(DEFAULT_MAX_KEYS)
    }

    /// A store holding at most `max_keys` keys (at least 1).
    pub fn with_max_keys(max_keys: usize) -> Self {
        Self {
            shared: Arc::new(Mutex::new(State {
                epoch: Instant::now(),
                max_keys: max_keys.max(1),
                next_generation: 0,
                entries: HashMap::new(),
                completed: VecDeque::new(),
            })),
        }
    }

    /// How many keys are resident (expired ones not yet evicted included).
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether no key is resident.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What the store holds for `key` now: `Some(true)` done, `Some(false)`
    /// in flight, `None` absent or expired. For tests and diagnostics.
    pub fn status(&self, key: &IdempotencyKey) -> Option<bool> {
        let state = self.lock();
        let now = state.now_ms();
        state
            .entries
            .get(key.as_str())
            .filter(|e| e.deadline_ms > now)
            .map(|e| e.is_done())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves the map consistent
        // (every update is a single assignment), so carry on.
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    fn now_ms(&self) -> u64 {
        millis(self.epoch.elapsed())
    }

    fn claim(
        &mut self,
        key: &IdempotencyKey,
        lease: Duration,
    ) -> Result<Claim<MemoryLease>, StoreError> {
        let now = self.now_ms();
        self.evict_expired_completed(now);
        let generation = self.next_generation;
        let fresh = Entry {
            deadline_ms: now.saturating_add(millis(lease)),
            generation_and_done: generation,
        };
        if let Some((key, entry)) = self.entries.get_key_value(key.as_str()) {
            if entry.deadline_ms > now {
                return Ok(if entry.is_done() {
                    Claim::Done
                } else {
                    Claim::InFlight
                });
            }
            // Expired: a lease that ran out or a done TTL that ended.
            let key = Arc::clone(key);
            self.entries.insert(Arc::clone(&key), fresh);
            self.next_generation += 1;
            return Ok(Claim::New(MemoryLease { key, generation }));
        }
        if self.entries.len() >= self.max_keys && !self.make_room(now) {
            return Err(StoreError::new(format!(
                "memory store is full: all {} keys are in flight",
                self.max_keys
            )));
        }
        let key: Arc<str> = Arc::from(key.as_str());
        self.entries.insert(Arc::clone(&key), fresh);
        self.next_generation += 1;
        Ok(Claim::New(MemoryLease { key, generation }))
    }

    /// Whether `entry` is the in-flight claim `lease` took.
    fn holds(entry: &Entry, lease: &MemoryLease) -> bool {
        !entry.is_done() && entry.generation() == lease.generation
    }

    fn complete(&mut self, lease: MemoryLease, ttl: Duration) {
        let deadline_ms = self.now_ms().saturating_add(millis(ttl));
        // One hash lookup: check and update the entry in place.
        match self.entries.get_mut(&lease.key) {
            Some(entry) if Self::holds(entry, &lease) => {
                *entry = Entry {
                    deadline_ms,
                    generation_and_done: lease.generation | DONE,
                };
            }
            _ => return,
        }
        self.completed.push_back(Completed {
            key: lease.key,
            generation: lease.generation,
            deadline_ms,
        });
    }

    fn release(&mut self, lease: MemoryLease) {
        let generation = lease.generation;
        // One hash lookup: the lease owns its key, so `entry` needs no copy.
        match self.entries.entry(lease.key) {
            MapEntry::Occupied(slot)
                if !slot.get().is_done() && slot.get().generation() == generation =>
            {
                slot.remove();
            }
            _ => {}
        }
    }

    /// Removes the completed key of `item` if its entry is still the one
    /// that completed (not reclaimed since); returns whether it did.
    fn remove_completed(&mut self, item: Completed) -> bool {
        match self.entries.entry(item.key) {
            MapEntry::Occupied(slot)
                if slot.get().is_done() && slot.get().generation() == item.generation =>
            {
                slot.remove();
                true
            }
            _ => false, // stale: the key was reclaimed or evicted since
        }
    }

    /// Drops expired completed keys from the front of the completion queue;
    /// amortised O(1) per call, and no hash lookup while nothing expired.
    fn evict_expired_completed(&mut self, now: u64) {
        while self.completed.front().is_some_and(|c| c.deadline_ms <= now) {
            if let Some(item) = self.completed.pop_front() {
                self.remove_completed(item);
            }
        }
    }

    /// At the bound: evicts the oldest completed key, or failing that every
    /// expired in-flight claim. Returns whether there is room now.
    fn make_room(&mut self, now: u64) -> bool {
        while let Some(item) = self.completed.pop_front() {
            if self.remove_completed(item) {
                return true;
            }
        }
        // Only in-flight claims are left; drop those whose lease ran out.
        self.entries.retain(|_, e| e.deadline_ms > now);
        self.entries.len() < self.max_keys
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl IdempotencyStore for MemoryStore {
    type Lease = MemoryLease;
    type ClaimFuture = Ready<Result<Claim<MemoryLease>, StoreError>>;
    type FinishFuture = Ready<Result<(), StoreError>>;

    fn claim(&self, key: &IdempotencyKey, lease: Duration) -> Self::ClaimFuture {
        ready(self.lock().claim(key, lease))
    }

    fn complete(&self, lease: MemoryLease, ttl: Duration) -> Self::FinishFuture {
        self.lock().complete(lease, ttl);
        ready(Ok(()))
    }

    fn release(&self, lease: MemoryLease) -> Self::FinishFuture {
        self.lock().release(lease);
        ready(Ok(()))
    }

    fn release_abandoned(&self, lease: MemoryLease) {
        self.lock().release(lease);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EventId;

    fn key(id: &str) -> IdempotencyKey {
        IdempotencyKey::new("t", &EventId::new(id).unwrap())
    }

    fn claim(store: &MemoryStore, id: &str, lease_ms: u64) -> Claim<MemoryLease> {
        store
            .lock()
            .claim(&key(id), Duration::from_millis(lease_ms))
            .unwrap()
    }

    const LONG: Duration = Duration::from_secs(3600);

    #[test]
    fn claim_complete_release_cycle() {
        let store = MemoryStore::new();
        let Claim::New(lease) = claim(&store, "a", 60_000) else {
            panic!()
        };
        assert!(matches!(claim(&store, "a", 60_000), Claim::InFlight));
        store.lock().release(lease);
        assert_eq!(store.status(&key("a")), None);
        let Claim::New(lease) = claim(&store, "a", 60_000) else {
            panic!()
        };
        store.lock().complete(lease, LONG);
        assert!(matches!(claim(&store, "a", 60_000), Claim::Done));
        assert_eq!(store.status(&key("a")), Some(true));
    }

    #[test]
    fn a_stale_lease_cannot_touch_a_newer_claim() {
        let store = MemoryStore::new();
        let Claim::New(stale) = claim(&store, "a", 1) else {
            panic!()
        };
        std::thread::sleep(Duration::from_millis(5));
        let Claim::New(_newer) = claim(&store, "a", 60_000) else {
            panic!()
        };
        store.lock().complete(stale, LONG);
        assert_eq!(store.status(&key("a")), Some(false));
        let Claim::New(stale) = claim(&store, "b", 1) else {
            panic!()
        };
        std::thread::sleep(Duration::from_millis(5));
        let Claim::New(_newer) = claim(&store, "b", 60_000) else {
            panic!()
        };
        store.lock().release(stale);
        assert_eq!(store.status(&key("b")), Some(false));
    }

    #[test]
    fn done_expires_after_its_ttl() {
        let store = MemoryStore::new();
        let Claim::New(lease) = claim(&store, "a", 60_000) else {
            panic!()
        };
        store.lock().complete(lease, Duration::from_millis(2));
        std::thread::sleep(Duration::from_millis(5));
        assert!(matches!(claim(&store, "a", 60_000), Claim::New(_)));
    }

    #[test]
    fn at_the_bound_the_oldest_completed_goes_never_in_flight() {
        let store = MemoryStore::with_max_keys(3);
        for id in ["old", "new"] {
            let Claim::New(lease) = claim(&store, id, 60_000) else {
                panic!()
            };
            store.lock().complete(lease, LONG);
        }
        let Claim::New(_held) = claim(&store, "busy", 60_000) else {
            panic!()
        };
        assert!(matches!(claim(&store, "x", 60_000), Claim::New(_)));
        assert_eq!(store.status(&key("old")), None, "oldest completed evicted");
        assert_eq!(store.status(&key("new")), Some(true));
        assert_eq!(store.status(&key("busy")), Some(false));
        assert_eq!(store.len(), 3);
        // Now "new" goes; then only in-flight keys remain and a claim fails.
        assert!(matches!(claim(&store, "y", 60_000), Claim::New(_)));
        assert!(store.lock().claim(&key("z"), LONG).is_err());
        assert_eq!(store.status(&key("busy")), Some(false));
    }

    #[test]
    fn many_threads_one_key_one_winner() {
        let store = MemoryStore::new();
        let winners: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    let store = store.clone();
                    s.spawn(move || {
                        (0..1000)
                            .filter(|i| {
                                matches!(claim(&store, &format!("k{i}"), 60_000), Claim::New(_))
                            })
                            .count()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(winners, 1000);
    }
}
