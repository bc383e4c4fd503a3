//! Queued-mode intake, per backend: how many deliveries a queue records per
//! second, and how soon after a sender's 202 the worker starts the handler.
//!
//! `cargo bench --all-features --bench intake`
//!
//! For SQLite with `Synchronous::Full`, SQLite with `Synchronous::Normal`
//! (each on a fresh file in the system's temp dir) and `MemoryQueue`:
//!
//! * **intake**: 64 tasks on a multi-thread tokio runtime, each calling
//!   `JobQueue::accept` in a loop on unique keys, 20 000 accepts in all
//!   (after 2 000 to warm up); accepts per second over the whole run. The
//!   deliveries (signed Numero bodies of 1 KiB) are built before timing.
//! * **accept → handler start**: a `Worker` (concurrency 4) and a queued
//!   layer in front of a handler that notes `Instant::now()` when called;
//!   2 000 deliveries sent one at a time through the layer, each timed from
//!   the moment its 202 resolves to the moment the handler starts. p50 and
//!   p99.
//! * **drain, unordered vs ordered**: 2 000 jobs accepted first (without,
//!   then with an order key, one of 16), then a `Worker` (concurrency 8)
//!   runs them through a handler that answers 200 at once; jobs per second
//!   from the worker's start to the last job done. Same run, same backend,
//!   side by side: the ratio is the cost of ordering in the queue.
//!
//! Run as a test (`cargo test --benches`, no `--bench` argument) it does a
//! few of each, to check that it still works.

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use tokio::sync::mpsc;
use tower::{Layer as _, ServiceExt as _};
use tower_webhook::numero::Numero;
use tower_webhook::queue::{Accept, Delivery, JobQueue, MemoryQueue, QueueAdmin, Worker};
use tower_webhook::store::{SqliteStore, Synchronous};
use tower_webhook::{EventId, IdempotencyKey, WebhookLayer};

mod common;

const SENDERS: usize = 64;
const BODY_BYTES: usize = 1024;
const PATIENCE: Duration = Duration::from_secs(10);

/// How much to measure: the full run, or a smoke test.
struct Sizes {
    warm_up: usize,
    accepts: usize,
    latency_samples: usize,
    drained: usize,
}

fn main() {
    let benching = std::env::args().any(|arg| arg == "--bench");
    let sizes = if benching {
        Sizes {
            warm_up: 2_000,
            accepts: 20_000,
            latency_samples: 2_000,
            drained: 2_000,
        }
    } else {
        Sizes {
            warm_up: 64,
            accepts: 256,
            latency_samples: 20,
            drained: 64,
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    println!(
        "backend            intake (accepts/s, {SENDERS} senders)   accept → handler start p50 / p99   \
         drain unordered / ordered (jobs/s)"
    );
    for backend in [Backend::SqliteFull, Backend::SqliteNormal, Backend::Memory] {
        let dir = ScratchDir::new();
        let measured = runtime.block_on(async {
            let rate = match backend.open(&dir, "intake.db") {
                Opened::Sqlite(store) => intake(store, &sizes).await,
                Opened::Memory(queue) => intake(queue, &sizes).await,
            };
            let (p50, p99) = match backend.open(&dir, "latency.db") {
                Opened::Sqlite(store) => handler_start(store, sizes.latency_samples).await,
                Opened::Memory(queue) => handler_start(queue, sizes.latency_samples).await,
            };
            let mut drains = [0.0; 2];
            for (drain, keys) in drains.iter_mut().zip([None, Some(ORDER_KEYS)]) {
                let file = if keys.is_some() {
                    "ordered.db"
                } else {
                    "unordered.db"
                };
                *drain = match backend.open(&dir, file) {
                    Opened::Sqlite(store) => drain_rate(store, sizes.drained, keys).await,
                    Opened::Memory(queue) => drain_rate(queue, sizes.drained, keys).await,
                };
            }
            (rate, p50, p99, drains)
        });
        let (rate, p50, p99, [unordered, ordered]) = measured;
        println!(
            "{:<18} {:>12.0}                          {:>7.3} ms / {:.3} ms      {:>8.0} / {:.0} ({:.2}×)",
            backend.name(),
            rate,
            millis(p50),
            millis(p99),
            unordered,
            ordered,
            ordered / unordered
        );
    }
}

#[derive(Clone, Copy)]
enum Backend {
    SqliteFull,
    SqliteNormal,
    Memory,
}

enum Opened {
    Sqlite(SqliteStore),
    Memory(MemoryQueue),
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Self::SqliteFull => "sqlite (Full)",
            Self::SqliteNormal => "sqlite (Normal)",
            Self::Memory => "memory",
        }
    }

    fn open(self, dir: &ScratchDir, file: &str) -> Opened {
        let synchronous = match self {
            Self::SqliteFull => Synchronous::Full,
            Self::SqliteNormal => Synchronous::Normal,
            Self::Memory => return Opened::Memory(MemoryQueue::new()),
        };
        let store = SqliteStore::builder()
            .synchronous(synchronous)
            .open(dir.0.join(file))
            .expect("a store in the temp dir");
        Opened::Sqlite(store)
    }
}

/// A signed 1 KiB Numero delivery with id `evt_<id>`, as the intake records
/// it.
fn delivery(id: u64) -> (IdempotencyKey, Delivery) {
    let (parts, body) = common::signed_delivery(id, BODY_BYTES);
    let event_id = format!("evt_{id:012}");
    let key = IdempotencyKey::new("numero", &EventId::new(&event_id).expect("an id"));
    let delivery = Delivery {
        scheme: "numero".into(),
        event_id,
        method: parts.method,
        uri: parts.uri,
        headers: parts.headers,
        body,
        order_key: None,
    };
    (key, delivery)
}

/// Accepts per second with [`SENDERS`] concurrent callers.
async fn intake<Q: JobQueue>(queue: Q, sizes: &Sizes) -> f64 {
    let total = sizes.warm_up + sizes.accepts;
    let deliveries: Arc<Vec<_>> = Arc::new((0..total as u64).map(delivery).collect());
    accept_all(&queue, &deliveries, 0..sizes.warm_up).await;
    let start = Instant::now();
    accept_all(&queue, &deliveries, sizes.warm_up..total).await;
    sizes.accepts as f64 / start.elapsed().as_secs_f64()
}

/// Accepts `deliveries[range]` from [`SENDERS`] tasks, each taking the next
/// index until none is left.
async fn accept_all<Q: JobQueue>(
    queue: &Q,
    deliveries: &Arc<Vec<(IdempotencyKey, Delivery)>>,
    range: std::ops::Range<usize>,
) {
    let next = Arc::new(AtomicUsize::new(range.start));
    let senders: Vec<_> = (0..SENDERS)
        .map(|_| {
            let (queue, deliveries, next) = (queue.clone(), Arc::clone(deliveries), next.clone());
            let end = range.end;
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= end {
                        return;
                    }
                    let (key, delivery) = &deliveries[i];
                    let answer = queue.accept(key, delivery.clone()).await;
                    assert_eq!(answer.expect("the queue accepts"), Accept::Accepted);
                }
            })
        })
        .collect();
    for sender in senders {
        sender.await.expect("a sender task");
    }
}

/// Order keys in the ordered drain.
const ORDER_KEYS: usize = 16;

/// Jobs per second a worker (concurrency 8) runs `jobs` accepted jobs at,
/// each with one of `keys` order keys when given.
async fn drain_rate<Q: QueueAdmin>(queue: Q, jobs: usize, keys: Option<usize>) -> f64 {
    for i in 0..jobs {
        let (key, mut delivery) = delivery(i as u64);
        delivery.order_key = keys.map(|keys| format!("customer_{}", i % keys));
        let answer = queue
            .accept(&key, delivery)
            .await
            .expect("the queue accepts");
        assert_eq!(answer, Accept::Accepted);
    }
    let done = Arc::new(AtomicUsize::new(0));
    let (finished, mut all_done) = mpsc::unbounded_channel();
    let counter = Arc::clone(&done);
    let handler = tower::service_fn(move |_: Request<Full<Bytes>>| {
        if counter.fetch_add(1, Ordering::Relaxed) + 1 == jobs {
            let _ = finished.send(());
        }
        std::future::ready(Ok::<_, Infallible>(Response::new(Full::new(Bytes::new()))))
    });
    let start = Instant::now();
    let worker = Worker::builder(queue).concurrency(8).start();
    let layer = WebhookLayer::builder(Numero)
        .secret(common::NUMERO_SECRET)
        .queued(&worker)
        .build()
        .expect("a layer");
    worker.handle(layer.job_handler(handler));
    tokio::time::timeout(PATIENCE * 6, all_done.recv())
        .await
        .expect("every job runs in time");
    // The last job's outcome is recorded once the handler answered.
    worker.shutdown(PATIENCE).await;
    jobs as f64 / start.elapsed().as_secs_f64()
}

/// p50 and p99 of the time from a delivery's 202 to its handler's start,
/// one delivery at a time through a queued layer.
async fn handler_start<Q: QueueAdmin>(queue: Q, samples: usize) -> (Duration, Duration) {
    let worker = Worker::builder(queue).start();
    let (started, mut starts) = mpsc::unbounded_channel();
    let handler = tower::service_fn(move |_: Request<Full<Bytes>>| {
        let _ = started.send(Instant::now());
        std::future::ready(Ok::<_, Infallible>(Response::new(Full::new(Bytes::new()))))
    });
    let layer = WebhookLayer::builder(Numero)
        .secret(common::NUMERO_SECRET)
        .queued(&worker)
        .build()
        .expect("a layer");
    worker.handle(layer.job_handler(handler.clone()));
    let service = layer.layer(handler);
    let mut waits = Vec::with_capacity(samples);
    for id in 0..samples as u64 {
        let (parts, body) = common::signed_delivery(id, BODY_BYTES);
        let request = Request::from_parts(parts, Full::new(body));
        let response = service.clone().oneshot(request).await.expect("an answer");
        let accepted = Instant::now();
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let start = tokio::time::timeout(PATIENCE, starts.recv())
            .await
            .expect("the handler starts in time")
            .expect("the handler is alive");
        waits.push(start.saturating_duration_since(accepted));
    }
    worker.shutdown(PATIENCE).await;
    waits.sort_unstable();
    let at = |q: f64| waits[((waits.len() - 1) as f64 * q).round() as usize];
    (at(0.50), at(0.99))
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// A fresh directory in the system's temp dir, removed when dropped.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "tower-webhook-intake-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).expect("a temp dir");
        Self(path)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
