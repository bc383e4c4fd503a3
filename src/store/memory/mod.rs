//! The embedded default store: one process, bounded memory.
//!
//! Every call takes one short lock and answers synchronously, so its futures
//! are `Ready` and cost no allocation. At the bound a new key first evicts
//! expired entries, then the completed key nearest the end of its done TTL
//! (with one TTL for every key, the oldest completed); so a live done mark
//! never goes while an expired one is still held, whatever TTLs the keys
//! were completed with. An in-flight claim is never evicted, and when every
//! key is in flight the claim fails (503) rather than forget a claim.
//!
//! It cannot see other processes: run several replicas behind a load balancer
//! and a duplicate can land on a replica that never saw the first copy. Use a
//! shared store (Redis) there.
//!
//! # How keys are held
//!
//! The store keeps no key text: each key is held as a 128-bit keyed digest
//! of its scheme and id, so a claim allocates nothing and an entry has a
//! fixed size (16 bytes of digest, 16 of state). The digest is SipHash-1-3
//! (std's `RandomState`, keyed with random keys per store) over the scheme,
//! the tenant if any, and the id: `H(m)` and `H(m ‖ 0x01)` for the two
//! 64-bit halves, where `m` is the scheme, with a tenant `0xFE` and the
//! tenant, then `0xFF`, the id, `0xFF` (so no two keys, and no key and
//! extended key, share an input). Two
//! different keys share a digest with probability at most about
//! n² / 2¹²⁹ for n keys resident together (≈ 2⁻⁸⁹ at a million), on the
//! usual assumption that keyed SipHash behaves as a pseudo-random function;
//! the ids come from signed bodies, and the digests never leave the process,
//! so nobody can search for a collision.
//!
//! # Shards
//!
//! A store of [`SHARD_MIN_KEYS`] keys or more is split into [`SHARDS`]
//! shards by digest, each with its own lock and an equal share of the
//! bound, so that concurrent requests rarely wait for one another. Each
//! shard evicts its own completed key nearest its expiry, so the order above
//! holds per shard (keys spread evenly, as the digest is random), and a claim
//! fails only when its shard is full of in-flight claims. Smaller stores
//! have one shard and the exact behaviour above.
//!
//! # Queued mode
//!
//! [`MemoryQueue`] keeps its jobs in this same table: a job's key is an
//! entry like a claim's (pending and running jobs in flight and never
//! evicted, a dead letter done until its retention ends and never evicted
//! before), with the recorded delivery beside it in its shard. So the
//! bound, the eviction order and the lease checks above hold for both.

use std::cmp::Reverse;
use std::collections::hash_map::Entry as MapEntry;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::future::{Ready, ready};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::{Claim, IdempotencyKey, IdempotencyStore, StoreError};
use crate::scheme::MAX_ID_LEN;

mod queue;

use crate::tenant::MAX_TENANT_LEN;
pub use queue::MemoryQueue;

/// Default bound on resident keys.
pub const DEFAULT_MAX_KEYS: usize = 100_000;

/// Shards of a store bounded at [`SHARD_MIN_KEYS`] keys or more.
pub const SHARDS: usize = 16;

/// The smallest bound at which a store is sharded; below it, one shard.
pub const SHARD_MIN_KEYS: usize = 16 * 1024;

/// The in-memory store. Clones share one map.
#[derive(Clone)]
pub struct MemoryStore {
    shared: Arc<Shared>,
}

struct Shared {
    epoch: Instant,
    max_keys: usize,
    /// Keys the digests (per store, random).
    keys: RandomState,
    shards: Box<[Padded]>,
}

/// A shard's lock on a cache line pair of its own, so two threads working
/// in two shards do not invalidate each other's line.
#[repr(align(128))]
struct Padded(Mutex<Shard>);

/// Proof of a claim on a [`MemoryStore`] key, or of a worker's lease on a
/// [`MemoryQueue`] job.
#[derive(Debug, Clone)]
pub struct MemoryLease {
    key: Digest,
    generation: u64,
}

/// A key as the store holds it: its 128-bit keyed digest.
type Digest = u128;

const DONE: u64 = 1 << 63;
/// The key holds a [`MemoryQueue`] job, recorded in its shard's `jobs`.
const JOB: u64 = 1 << 62;

/// 16 bytes: the deadline (lease end, done-TTL end, or a dead letter's
/// retention end; never for a pending or running job) in milliseconds since
/// the store's epoch, and the claim's generation with the done flag in its
/// top bit and the job flag below it.
#[derive(Clone, Copy)]
struct Entry {
    deadline_ms: u64,
    generation_and_done: u64,
}

impl Entry {
    fn generation(self) -> u64 {
        self.generation_and_done & !(DONE | JOB)
    }
    fn is_job(self) -> bool {
        self.generation_and_done & JOB != 0
    }
    fn is_done(self) -> bool {
        self.generation_and_done & DONE != 0
    }
}

/// One item of the completion queue, ordered by its done deadline first.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Completed {
    deadline_ms: u64,
    generation: u64,
    key: Digest,
}

/// The completion queue, soonest done deadline first. With one done TTL
/// for every key (the usual case) completions arrive in deadline order, so
/// they go to a FIFO, read and written at its two ends (sequential memory,
/// O(1)); only a completion due before the FIFO's newest goes to the heap,
/// whose sift would touch a cache line per level. The soonest item is the
/// sooner of the two fronts.
#[derive(Default)]
struct Completions {
    in_order: VecDeque<Completed>,
    out_of_order: BinaryHeap<Reverse<Completed>>,
}

impl Completions {
    fn push(&mut self, item: Completed) {
        match self.in_order.back() {
            Some(newest) if item.deadline_ms < newest.deadline_ms => {
                self.out_of_order.push(Reverse(item));
            }
            _ => self.in_order.push_back(item),
        }
    }

    /// Whether the FIFO's front is due no later than the heap's.
    fn fifo_first(&self) -> bool {
        match (self.in_order.front(), self.out_of_order.peek()) {
            (Some(fifo), Some(Reverse(heap))) => fifo <= heap,
            (fifo, _) => fifo.is_some(),
        }
    }

    fn peek(&self) -> Option<&Completed> {
        if self.fifo_first() {
            self.in_order.front()
        } else {
            self.out_of_order.peek().map(|Reverse(item)| item)
        }
    }

    fn pop(&mut self) -> Option<Completed> {
        if self.fifo_first() {
            self.in_order.pop_front()
        } else {
            self.out_of_order.pop().map(|Reverse(item)| item)
        }
    }
}

/// The map's hasher: a digest is already uniformly random, so the map takes
/// its low 64 bits as they are (the shard is chosen from the high ones).
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u128` is used (the map's keys are digests); any other
        // input still hashes, just not uniformly.
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u128(&mut self, digest: u128) {
        self.0 = digest as u64; // the low half; truncation intended
    }
}

type Map = HashMap<Digest, Entry, BuildHasherDefault<Prehashed>>;

struct Shard {
    max_keys: usize,
    next_generation: u64,
    entries: Map,
    /// Completed keys, soonest done deadline on top, with the generation
    /// they completed under, so that checking the top for expiry costs no
    /// hash lookup; an item whose entry has since changed is stale and
    /// skipped. Ordered by deadline rather than completion, so that with
    /// mixed TTLs an expired key is found before a live one is evicted.
    completed: Completions,
    /// The [`MemoryQueue`] jobs of the entries with the job flag; always
    /// empty for a [`MemoryStore`].
    jobs: HashMap<Digest, queue::Recorded, BuildHasherDefault<Prehashed>>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("keys", &self.len())
            .field("max_keys", &self.shared.max_keys)
            .field("shards", &self.shared.shards.len())
            .finish()
    }
}

impl MemoryStore {
    /// A store holding at most [`DEFAULT_MAX_KEYS`] keys.
    pub fn new() -> Self {
        Self::with_max_keys(DEFAULT_MAX_KEYS)
    }

    /// A store holding at most `max_keys` keys (at least 1); sharded from
    /// [`SHARD_MIN_KEYS`] keys on (see the module docs).
    pub fn with_max_keys(max_keys: usize) -> Self {
        let max_keys = max_keys.max(1);
        let shards = if max_keys >= SHARD_MIN_KEYS {
            SHARDS
        } else {
            1
        };
        let shards = (0..shards)
            .map(|i| {
                // An equal share; the first shards take the remainder.
                let share = max_keys / shards + usize::from(i < max_keys % shards);
                Padded(Mutex::new(Shard {
                    max_keys: share,
                    next_generation: 0,
                    entries: Map::default(),
                    completed: Completions::default(),
                    jobs: HashMap::default(),
                }))
            })
            .collect();
        Self {
            shared: Arc::new(Shared {
                epoch: Instant::now(),
                max_keys,
                keys: RandomState::new(),
                shards,
            }),
        }
    }

    /// How many keys are resident (expired ones not yet evicted included).
    pub fn len(&self) -> usize {
        (0..self.shared.shards.len())
            .map(|i| self.lock(i).entries.len())
            .sum()
    }

    /// Whether no key is resident.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What the store holds for `key` now: `Some(true)` done, `Some(false)`
    /// in flight, `None` absent or expired. For tests and diagnostics.
    pub fn status(&self, key: &IdempotencyKey) -> Option<bool> {
        let digest = self.digest(key);
        let now = self.now_ms();
        self.shard(digest)
            .entries
            .get(&digest)
            .filter(|e| e.deadline_ms > now)
            .map(|e| e.is_done())
    }

    /// The key's 128-bit keyed digest (see the module docs).
    fn digest(&self, key: &IdempotencyKey) -> Digest {
        // m = scheme [0xFE tenant] 0xFF id 0xFF (0xFE and 0xFF are never in
        // UTF-8, so m is unambiguous, and a key with a tenant never shares
        // an input with one without); low = H(m), high = H(m 0x01): one
        // pass over the key, two finalisations.
        // Written in one call when it fits a stack buffer (each `write`
        // call costs SipHash's tail handling again); the result is the same
        // either way, the hash being over the stream of bytes.
        let (scheme, id) = (key.scheme().as_bytes(), key.id().as_str().as_bytes());
        let tenant = key.tenant().map(|t| t.as_str().as_bytes());
        let tenant_len = tenant.map_or(0, |t| 1 + t.len());
        let mut hasher = self.shared.keys.build_hasher();
        let mut m = [0xff; 3 + 32 + MAX_TENANT_LEN + MAX_ID_LEN];
        if let Some(rest) = m.get_mut(..scheme.len() + tenant_len + 1 + id.len() + 1) {
            rest[..scheme.len()].copy_from_slice(scheme);
            let mut at = scheme.len();
            if let Some(tenant) = tenant {
                rest[at] = 0xfe;
                rest[at + 1..][..tenant.len()].copy_from_slice(tenant);
                at += tenant_len;
            }
            rest[at + 1..][..id.len()].copy_from_slice(id);
            hasher.write(rest);
        } else {
            hasher.write(scheme);
            if let Some(tenant) = tenant {
                hasher.write_u8(0xfe);
                hasher.write(tenant);
            }
            hasher.write_u8(0xff);
            hasher.write(id);
            hasher.write_u8(0xff);
        }
        let low = hasher.finish();
        hasher.write_u8(0x01);
        (u128::from(hasher.finish()) << 64) | u128::from(low)
    }

    fn now_ms(&self) -> u64 {
        millis(self.shared.epoch.elapsed())
    }

    fn lock(&self, shard: usize) -> MutexGuard<'_, Shard> {
        // A panic elsewhere while holding the lock leaves the map consistent
        // (every update is a single assignment), so carry on.
        self.shared.shards[shard]
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The shard of `digest`, locked: chosen by the digest's top bits (the
    /// map hashes its low ones).
    fn shard(&self, digest: Digest) -> MutexGuard<'_, Shard> {
        let n = self.shared.shards.len();
        // Truncation intended: the top 64 bits, reduced to a shard index.
        let high = (digest >> 64) as u64;
        self.lock(usize::try_from(high % n as u64).unwrap_or(0))
    }
}

impl Shard {
    /// Inserts `fresh` under `key`, unless a live entry holds the key: then
    /// nothing changes and that entry is the answer. An expired entry is
    /// replaced (a dead letter past its retention, with its job); at the
    /// bound, room is made first (see the module docs).
    fn admit(&mut self, key: Digest, now: u64, fresh: Entry) -> Result<Option<Entry>, StoreError> {
        self.evict_expired_completed(now);
        let full = self.entries.len() >= self.max_keys;
        match self.entries.entry(key) {
            MapEntry::Occupied(mut slot) => {
                let entry = *slot.get();
                if entry.deadline_ms > now {
                    return Ok(Some(entry));
                }
                // Expired: a lease that ran out, a done TTL or a dead
                // letter's retention that ended.
                slot.insert(fresh);
                if entry.is_job() {
                    self.jobs.remove(&key);
                }
            }
            MapEntry::Vacant(slot) if !full => {
                slot.insert(fresh);
            }
            MapEntry::Vacant(_) => {
                if !self.make_room(now) {
                    return Err(StoreError::full(format!(
                        "memory store is full: all {} keys of a shard are in flight",
                        self.max_keys
                    )));
                }
                self.entries.insert(key, fresh);
            }
        }
        self.next_generation += 1;
        Ok(None)
    }

    fn claim(
        &mut self,
        key: Digest,
        now: u64,
        lease: Duration,
    ) -> Result<Claim<MemoryLease>, StoreError> {
        let generation = self.next_generation;
        let fresh = Entry {
            deadline_ms: now.saturating_add(millis(lease)),
            generation_and_done: generation,
        };
        Ok(match self.admit(key, now, fresh)? {
            None => Claim::New(MemoryLease { key, generation }),
            Some(held) if held.is_done() => Claim::Done,
            Some(_) => Claim::InFlight,
        })
    }

    /// Whether `entry` is the in-flight inline claim `lease` took (neither
    /// done nor a job).
    fn holds(entry: &Entry, lease: &MemoryLease) -> bool {
        entry.generation_and_done == lease.generation
    }

    fn complete(&mut self, lease: MemoryLease, deadline_ms: u64) {
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
        self.completed.push(Completed {
            deadline_ms,
            generation: lease.generation,
            key: lease.key,
        });
    }

    /// Moves the claim's lease end to `deadline_ms`; whether it still held
    /// its key.
    fn renew(&mut self, lease: &MemoryLease, deadline_ms: u64) -> bool {
        match self.entries.get_mut(&lease.key) {
            Some(entry) if Self::holds(entry, lease) => {
                entry.deadline_ms = deadline_ms;
                true
            }
            _ => false,
        }
    }

    fn release(&mut self, lease: &MemoryLease) {
        if let MapEntry::Occupied(slot) = self.entries.entry(lease.key)
            && Self::holds(slot.get(), lease)
        {
            slot.remove();
        }
    }

    /// Removes the completed key of `item` if its entry is still the one
    /// that completed (not reclaimed since); returns whether it did.
    fn remove_completed(&mut self, item: &Completed) -> bool {
        match self.entries.entry(item.key) {
            MapEntry::Occupied(slot)
                if slot.get().generation_and_done == item.generation | DONE =>
            {
                slot.remove();
                true
            }
            _ => false, // stale: the key was reclaimed or evicted since
        }
    }

    /// Drops every expired completed key (the top of the completion queue);
    /// O(log n) per key dropped, and no hash lookup while nothing expired.
    fn evict_expired_completed(&mut self, now: u64) {
        while let Some(item) = self.completed.peek() {
            if item.deadline_ms > now {
                break;
            }
            if let Some(item) = self.completed.pop() {
                self.remove_completed(&item);
            }
        }
    }

    /// At the bound, once expired completed keys are gone: evicts the
    /// completed key nearest its expiry, or failing that every expired
    /// in-flight claim. Returns whether there is room now.
    fn make_room(&mut self, now: u64) -> bool {
        while let Some(item) = self.completed.pop() {
            if self.remove_completed(&item) {
                return true;
            }
        }
        // Only in-flight claims, jobs and dead letters are left; drop the
        // claims whose lease ran out and the dead letters past retention.
        let before = self.entries.len();
        self.entries.retain(|_, e| e.deadline_ms > now);
        if self.entries.len() < before && !self.jobs.is_empty() {
            let entries = &self.entries;
            self.jobs.retain(|key, _| entries.contains_key(key));
        }
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
    type RenewFuture = Ready<Result<bool, StoreError>>;

    fn claim(&self, key: &IdempotencyKey, lease: Duration) -> Self::ClaimFuture {
        let digest = self.digest(key);
        let now = self.now_ms();
        ready(self.shard(digest).claim(digest, now, lease))
    }

    fn renew_claim(&self, lease: &MemoryLease, lease_for: Duration) -> Self::RenewFuture {
        let deadline_ms = self.now_ms().saturating_add(millis(lease_for));
        ready(Ok(self.shard(lease.key).renew(lease, deadline_ms)))
    }

    fn complete(&self, lease: MemoryLease, ttl: Duration) -> Self::FinishFuture {
        let deadline_ms = self.now_ms().saturating_add(millis(ttl));
        self.shard(lease.key).complete(lease, deadline_ms);
        ready(Ok(()))
    }

    fn release(&self, lease: MemoryLease) -> Self::FinishFuture {
        self.shard(lease.key).release(&lease);
        ready(Ok(()))
    }

    fn release_abandoned(&self, lease: MemoryLease) {
        self.shard(lease.key).release(&lease);
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
        try_claim(store, id, Duration::from_millis(lease_ms)).unwrap()
    }

    fn try_claim(
        store: &MemoryStore,
        id: &str,
        lease: Duration,
    ) -> Result<Claim<MemoryLease>, StoreError> {
        store.claim(&key(id), lease).into_inner()
    }

    fn complete(store: &MemoryStore, lease: MemoryLease, ttl: Duration) {
        store.complete(lease, ttl).into_inner().unwrap();
    }

    fn release(store: &MemoryStore, lease: MemoryLease) {
        store.release(lease).into_inner().unwrap();
    }

    const LONG: Duration = Duration::from_secs(3600);

    #[test]
    fn claim_complete_release_cycle() {
        let store = MemoryStore::new();
        let Claim::New(lease) = claim(&store, "a", 60_000) else {
            panic!()
        };
        assert!(matches!(claim(&store, "a", 60_000), Claim::InFlight));
        release(&store, lease);
        assert_eq!(store.status(&key("a")), None);
        let Claim::New(lease) = claim(&store, "a", 60_000) else {
            panic!()
        };
        complete(&store, lease, LONG);
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
        complete(&store, stale, LONG);
        assert_eq!(store.status(&key("a")), Some(false));
        let Claim::New(stale) = claim(&store, "b", 1) else {
            panic!()
        };
        std::thread::sleep(Duration::from_millis(5));
        let Claim::New(_newer) = claim(&store, "b", 60_000) else {
            panic!()
        };
        release(&store, stale);
        assert_eq!(store.status(&key("b")), Some(false));
    }

    fn renew(store: &MemoryStore, lease: &MemoryLease, lease_for: Duration) -> bool {
        store.renew_claim(lease, lease_for).into_inner().unwrap()
    }

    #[test]
    fn a_renewed_claim_outlives_its_first_lease_and_a_stale_one_is_refused() {
        let store = MemoryStore::new();
        let Claim::New(lease) = claim(&store, "a", 20) else {
            panic!()
        };
        assert!(renew(&store, &lease, LONG));
        std::thread::sleep(Duration::from_millis(40));
        assert!(matches!(claim(&store, "a", 60_000), Claim::InFlight));
        complete(&store, lease, LONG);
        let Claim::New(stale) = claim(&store, "b", 1) else {
            panic!()
        };
        std::thread::sleep(Duration::from_millis(5));
        let Claim::New(newer) = claim(&store, "b", 60_000) else {
            panic!()
        };
        assert!(!renew(&store, &stale, LONG), "another claim took the key");
        release(&store, newer);
        assert!(!renew(&store, &stale, LONG), "the key was released");
        assert_eq!(store.status(&key("b")), None);
    }

    #[test]
    fn done_expires_after_its_ttl() {
        let store = MemoryStore::new();
        let Claim::New(lease) = claim(&store, "a", 60_000) else {
            panic!()
        };
        complete(&store, lease, Duration::from_millis(2));
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
            complete(&store, lease, LONG);
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
        let full = try_claim(&store, "z", LONG).unwrap_err();
        assert_eq!(full.kind(), crate::StoreErrorKind::Full, "{full}");
        assert_eq!(store.status(&key("busy")), Some(false));
    }

    #[test]
    fn at_the_bound_expired_done_marks_go_before_a_live_one() {
        let store = MemoryStore::with_max_keys(3);
        let Claim::New(lease) = claim(&store, "long", 60_000) else {
            panic!()
        };
        complete(&store, lease, LONG);
        for id in ["short_1", "short_2"] {
            let Claim::New(lease) = claim(&store, id, 60_000) else {
                panic!()
            };
            complete(&store, lease, Duration::from_millis(2));
        }
        std::thread::sleep(Duration::from_millis(10));
        // Full: "long" is the oldest completion, but the short ones expired.
        for id in ["x", "y"] {
            assert!(matches!(claim(&store, id, 60_000), Claim::New(_)), "{id}");
        }
        assert!(
            matches!(claim(&store, "long", 60_000), Claim::Done),
            "the live done mark is still a duplicate"
        );
        assert_eq!(store.len(), 3);
    }

    #[test]
    fn at_the_bound_the_done_mark_nearest_its_expiry_goes_first() {
        let store = MemoryStore::with_max_keys(2);
        for (id, ttl) in [("long", LONG), ("shorter", LONG / 2)] {
            let Claim::New(lease) = claim(&store, id, 60_000) else {
                panic!()
            };
            complete(&store, lease, ttl);
        }
        assert!(matches!(claim(&store, "x", 60_000), Claim::New(_)));
        assert_eq!(store.status(&key("shorter")), None);
        assert_eq!(store.status(&key("long")), Some(true));
    }

    #[test]
    fn a_sharded_store_keeps_its_bound_and_its_newest_keys() {
        let store = MemoryStore::with_max_keys(SHARD_MIN_KEYS);
        let total = 2 * SHARD_MIN_KEYS;
        for i in 0..total {
            let Claim::New(lease) = claim(&store, &format!("k{i}"), 60_000) else {
                panic!("k{i} is new")
            };
            complete(&store, lease, LONG);
        }
        assert_eq!(store.len(), SHARD_MIN_KEYS);
        for i in (0..100).chain(total - 100..total) {
            let expected = (i >= total - 100).then_some(true);
            assert_eq!(store.status(&key(&format!("k{i}"))), expected, "k{i}");
        }
        let debug = format!("{store:?}");
        assert!(debug.contains("shards: 16"), "{debug}");
    }

    #[test]
    fn keys_of_other_schemes_or_ids_are_other_keys() {
        let store = MemoryStore::new();
        let id = EventId::new("evt_1").unwrap();
        let numero = IdempotencyKey::new("numero", &id);
        let Ok(Claim::New(lease)) = store.claim(&numero, LONG).into_inner() else {
            panic!()
        };
        complete(&store, lease, LONG);
        assert_eq!(store.status(&numero), Some(true));
        let stripe = IdempotencyKey::new("stripe", &id);
        assert_eq!(store.status(&stripe), None);
        let parts = IdempotencyKey::new("numero", &EventId::new("evt_").unwrap());
        assert_eq!(store.status(&parts), None);
        assert_eq!(numero.as_str(), "numero:evt_1");
        assert_eq!(
            format!("{numero} {numero:?}"),
            r#"numero:evt_1 "numero:evt_1""#
        );
    }

    #[test]
    fn keys_of_other_tenants_are_other_keys() {
        let store = MemoryStore::new();
        let tenant = |t: &str| crate::Tenant::new(t).unwrap();
        let id = |i: &str| EventId::new(i).unwrap();
        let acme = IdempotencyKey::new("numero", &id("evt_1")).with_tenant(tenant("acme"));
        let Ok(Claim::New(lease)) = store.claim(&acme, LONG).into_inner() else {
            panic!()
        };
        complete(&store, lease, LONG);
        assert_eq!(store.status(&acme), Some(true));
        assert_eq!(acme.as_str(), "numero/acme:evt_1");
        assert_eq!(acme.to_string(), "numero/acme:evt_1");
        let long = "x".repeat(crate::scheme::MAX_ID_LEN);
        let others = [
            IdempotencyKey::new("numero", &id("evt_1")),
            IdempotencyKey::new("numero", &id("acme:evt_1")),
            IdempotencyKey::new("numero", &id("acme/evt_1")),
            IdempotencyKey::new("numero", &id("evt_1")).with_tenant(tenant("globex")),
            IdempotencyKey::new("numero", &id("evt_1")).with_tenant(tenant("acm")),
            IdempotencyKey::new("numero", &id(&long)).with_tenant(tenant("acme")),
        ];
        for other in &others {
            assert_ne!(other, &acme);
            assert_ne!(other.as_str(), acme.as_str());
            assert_eq!(store.status(other), None, "{other}");
        }
        assert_eq!(others[1].as_str(), "numero:acme:evt_1");
        assert_eq!(others[2].as_str(), "numero:acme/evt_1");
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
