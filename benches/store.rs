//! The memory store: claim + complete of a new key, with 1 M keys resident.
//!
//! `cargo bench -p tower-webhook-benches --bench store`
//!
//! The store is bounded at 1 M keys and filled before timing (with 2 M keys,
//! so that every shard is at its share of the bound), so every claim also
//! evicts the oldest completed key: the steady state of a busy receiver.
//! Keys (`numero:evt_<12 digits>`, 23 bytes) are built before timing and
//! cycle through 4 M distinct values, so each claim is a new key.
//!
//! * `claim_complete/1_thread`: time per claim + complete;
//! * `claim_complete/2_threads`: two threads on one shared store, disjoint
//!   keys; time per pair of operations (one on each thread), so the
//!   reported throughput is the aggregate.
//!
//! After criterion, the same loop with one and two threads, timed in CPU
//! time per thread (`STORE_CPU=1` for that table alone).
//!
//! Memory per resident key is measured by `cargo bench -p tower-webhook-benches --bench allocs`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group};
use tower_webhook::store::memory::MemoryStore;
use tower_webhook::{Claim, EventId, IdempotencyKey, IdempotencyStore};

/// Resident keys: 1 M, or `STORE_RESIDENT` (to see the same loop with a
/// store that fits in the CPU's caches).
fn resident() -> usize {
    std::env::var("STORE_RESIDENT")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000)
}
const LEASE: Duration = Duration::from_secs(300);
const TTL: Duration = Duration::from_secs(72 * 3600);

fn key(i: usize) -> IdempotencyKey {
    IdempotencyKey::new("numero", &EventId::new(&format!("evt_{i:012}")).unwrap())
}

fn claim_complete(store: &MemoryStore, key: &IdempotencyKey) {
    match store.claim(key, LEASE).into_inner() {
        Ok(Claim::New(lease)) => store.complete(lease, TTL).into_inner().unwrap(),
        other => panic!("expected a new claim, got {other:?}"),
    }
}

fn store(c: &mut Criterion) {
    let resident = resident();
    let distinct = 4 * resident;
    let keys: Vec<IdempotencyKey> = (0..distinct).map(key).collect();
    let store = MemoryStore::with_max_keys(resident);
    for k in &keys[..2 * resident] {
        claim_complete(&store, k);
    }
    assert_eq!(store.len(), resident);
    // Next key index per thread; thread t uses indices ≡ t (mod 2) in the
    // 2-thread case, so the two never claim the same key.
    let next = AtomicUsize::new(2 * resident);

    let mut group = c.benchmark_group("claim_complete");
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));

    group.throughput(Throughput::Elements(1));
    group.bench_function("1_thread", |b| {
        b.iter_custom(|iters| {
            let start_at = next.fetch_add(iters as usize, Ordering::Relaxed);
            let start = Instant::now();
            for i in 0..iters as usize {
                claim_complete(&store, &keys[(start_at + i) % distinct]);
            }
            start.elapsed()
        })
    });

    group.throughput(Throughput::Elements(2));
    group.bench_function("2_threads", |b| {
        b.iter_custom(|iters| {
            let start_at = next.fetch_add(2 * iters as usize, Ordering::Relaxed);
            let start = Instant::now();
            std::thread::scope(|s| {
                for t in 0..2 {
                    let (store, keys) = (&store, &keys);
                    s.spawn(move || {
                        for i in 0..iters as usize {
                            claim_complete(store, &keys[(start_at + 2 * i + t) % distinct]);
                        }
                    });
                }
            });
            start.elapsed()
        })
    });
    group.finish();
    assert_eq!(store.len(), resident);
}

/// This thread's user + system CPU time (`/proc/thread-self/stat`, Linux;
/// clock ticks of 10 ms).
fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of stat(5); `after` starts at field 3.
    let ticks = |i: usize| {
        fields
            .get(i - 3)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Duration::from_millis((ticks(14) + ticks(15)) * 10)
}

/// CPU time per claim + complete with one thread and with two threads on
/// one store (disjoint keys), each thread timing its own CPU: unlike wall
/// time, this does not count the time a loaded machine keeps a thread off
/// its core, so a difference between the two is what the threads cost
/// each other (lock hand-offs, shared cache lines).
fn cpu_per_pair(resident: usize) {
    const OPS: usize = 1_000_000;
    let keys: Vec<IdempotencyKey> = (0..2 * resident + 4 * OPS).map(key).collect();
    let store = MemoryStore::with_max_keys(resident);
    for k in &keys[..2 * resident] {
        claim_complete(&store, k);
    }
    let run = |keys: &[IdempotencyKey]| {
        let start = (thread_cpu(), Instant::now());
        for k in keys {
            claim_complete(&store, k);
        }
        (thread_cpu() - start.0, start.1.elapsed())
    };
    let base = 2 * resident;
    let (one_cpu, one_wall) = run(&keys[base..base + OPS]);
    let base = base + OPS;
    let (two_cpu, two_wall) = std::thread::scope(|s| {
        let a = s.spawn(|| run(&keys[base..base + OPS]));
        let b = s.spawn(|| run(&keys[base + OPS..base + 2 * OPS]));
        let (a, b) = (a.join().unwrap(), b.join().unwrap());
        (a.0 + b.0, a.1.max(b.1))
    });
    let ns = |d: Duration, ops: usize| d.as_nanos() as f64 / ops as f64;
    println!("\nmemory store, {resident} keys resident, {OPS} claim + complete per thread");
    println!("| threads | CPU ns per pair | wall ns per pair (aggregate) | pairs/s |");
    println!("|---|---|---|---|");
    for (threads, cpu, wall) in [(1, one_cpu, one_wall), (2, two_cpu, two_wall)] {
        let ops = threads * OPS;
        println!(
            "| {threads} | {:.0} | {:.0} | {:.0} |",
            ns(cpu, ops),
            ns(wall, ops),
            ops as f64 / wall.as_secs_f64()
        );
    }
}

/// `STORE_PROFILE=N`: fill the store, run N claim + complete pairs in
/// `profile_loop` and exit, for an instruction profile:
/// `STORE_PROFILE=200000 valgrind --tool=callgrind --toggle-collect='*profile_loop*' <bench binary>`.
fn profile(n: usize) {
    let resident = resident();
    let keys: Vec<IdempotencyKey> = (0..2 * resident + n).map(key).collect();
    let store = MemoryStore::with_max_keys(resident);
    for k in &keys[..2 * resident] {
        claim_complete(&store, k);
    }
    profile_loop(&store, &keys[2 * resident..]);
    assert_eq!(store.len(), resident);
}

#[inline(never)]
fn profile_loop(store: &MemoryStore, keys: &[IdempotencyKey]) {
    for k in keys {
        claim_complete(store, k);
    }
}

criterion_group!(benches, store);

fn main() {
    if let Some(n) = std::env::var("STORE_PROFILE")
        .ok()
        .and_then(|n| n.parse().ok())
    {
        return profile(n);
    }
    if std::env::var_os("STORE_CPU").is_none() {
        benches();
        Criterion::default().configure_from_args().final_summary();
    }
    if std::env::args().any(|a| a == "--bench") {
        cpu_per_pair(resident());
    }
}
