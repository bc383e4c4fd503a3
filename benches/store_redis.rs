//! Claim + complete round trip: `RedisStore` against a local `redis-server`
//! next to `MemoryStore`, in one run.
//!
//! `cargo bench -p tower-webhook-benches --features redis --bench store_redis`
//!
//! The bench starts its own `redis-server` (a free 127.0.0.1 port, no
//! persistence, a throwaway directory); without one on `PATH` it says so and
//! measures the memory store only.
//!
//! * `claim_complete/memory`: one task, `MemoryStore` (default bound);
//! * `claim_complete/redis`: one task, one connection, a new key each time:
//!   `SET NX PX` then the complete script (`EVALSHA`): two round trips;
//! * `claim_complete/redis_16_concurrent`: 16 tasks on one multiplexed
//!   connection, time per round trip (aggregate throughput).
//!
//! Keys (`numero:evt_<12 digits>`) are built before timing; every claim is
//! of a new key.

#[path = "../tests/support/redis_server.rs"]
mod redis_server;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use tokio::runtime::Runtime;
use tower_webhook::store::memory::MemoryStore;
use tower_webhook::{Claim, EventId, IdempotencyKey, IdempotencyStore, RedisStore};

const LEASE: Duration = Duration::from_secs(300);
const TTL: Duration = Duration::from_secs(600);
const TASKS: usize = 16;

fn keys(next: &AtomicUsize, count: usize) -> Vec<IdempotencyKey> {
    let start = next.fetch_add(count, Ordering::Relaxed);
    (start..start + count)
        .map(|i| IdempotencyKey::new("numero", &EventId::new(&format!("evt_{i:012}")).unwrap()))
        .collect()
}

async fn claim_complete<S: IdempotencyStore>(store: &S, key: &IdempotencyKey) {
    match store.claim(key, LEASE).await {
        Ok(Claim::New(lease)) => store.complete(lease, TTL).await.unwrap(),
        Ok(Claim::Done) => panic!("expected a new claim, got Done"),
        Ok(Claim::InFlight) => panic!("expected a new claim, got InFlight"),
        Err(e) => panic!("{e}"),
    }
}

/// One task, one claim + complete after another.
fn sequential<S: IdempotencyStore>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    runtime: &Runtime,
    store: &S,
    next: &AtomicUsize,
) {
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let keys = keys(next, iters as usize);
            runtime.block_on(async {
                let start = Instant::now();
                for key in &keys {
                    claim_complete(store, key).await;
                }
                start.elapsed()
            })
        });
    });
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let next = AtomicUsize::new(0);

    let mut group = c.benchmark_group("claim_complete");
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(1));

    sequential(&mut group, "memory", &runtime, &MemoryStore::new(), &next);

    let server = match redis_server::RedisServer::try_start() {
        Ok(server) => server,
        Err(e) => {
            eprintln!(
                "\nSKIPPED claim_complete/redis*: cannot start redis-server ({e}).\n\
                 Install it (apt-get install redis-server) to measure RedisStore.\n"
            );
            group.finish();
            return;
        }
    };
    let redis = runtime
        .block_on(RedisStore::connect(&server.url()))
        .expect("connect to the local redis-server");

    sequential(&mut group, "redis", &runtime, &redis, &next);

    group.bench_function("redis_16_concurrent", |b| {
        b.iter_custom(|iters| {
            let keys = Arc::new(keys(&next, iters as usize));
            runtime.block_on(async {
                let start = Instant::now();
                let tasks: Vec<_> = (0..TASKS)
                    .map(|t| {
                        let keys = Arc::clone(&keys);
                        let redis = redis.clone();
                        tokio::spawn(async move {
                            for key in keys.iter().skip(t).step_by(TASKS) {
                                claim_complete(&redis, key).await;
                            }
                        })
                    })
                    .collect();
                for task in tasks {
                    task.await.unwrap();
                }
                start.elapsed()
            })
        });
    });
    group.finish();
    drop(server);
}

criterion_group!(benches, bench);
criterion_main!(benches);
