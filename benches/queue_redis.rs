//! Queued mode on Redis, against a local `redis-server` the bench starts
//! itself (127.0.0.1, a free port, a throwaway directory):
//!
//! * **intake throughput**: 64 concurrent senders, each accepting new keys
//!   through `JobQueue::accept` on one shared `RedisStore` (one multiplexed
//!   connection), for three persistence settings: none, AOF `everysec`, AOF
//!   `always`;
//! * **accept → handler start**: one delivery at a time through a queued
//!   layer (no HTTP), a real `Worker` running the handler; the time from the
//!   layer's `202` to the handler's first line, p50 and p99, when the worker
//!   is on the same replica (woken in process) and on another replica (its
//!   own store, woken through the Redis wake stream).
//!
//! `cargo bench --all-features --bench queue_redis`
//!
//! A plain `main` (`harness = false`): prints one table. Without
//! `redis-server` on `PATH` it says so and measures nothing.

#[path = "../tests/support/redis_server.rs"]
mod redis_server;

use std::convert::Infallible;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response};
use http_body_util::Full;
use redis_server::RedisServer;
use tokio::runtime::Runtime;
use tokio::sync::mpsc;
use tower::{Layer, ServiceExt, service_fn};
use tower_webhook::numero::{Numero, NumeroEvent};
use tower_webhook::queue::{Accept, Delivery, JobQueue, Worker};
use tower_webhook::{EventId, IdempotencyKey, RedisStore, Verified, WebhookLayer};

const SECRET: &str = "whsec_abcdefghijklmnopqrstuvwxyz123456789";
const SENDERS: usize = 64;
const ACCEPTS: usize = 20_000;
const WARM_UP: usize = 2_000;
const LATENCY_SAMPLES: usize = 2_000;

fn body(id: &str) -> String {
    format!(
        r#"{{"id":"{id}","event":"TRANSFER_NOTIFICATION","created_at":"{now}","data":{{"TrxAmount":1000.0,"Reference":"T4898"}}}}"#,
        now = recent()
    )
}

fn delivery(id: &str) -> Delivery {
    let body = body(id);
    let mut headers = HeaderMap::new();
    let signature = tower_webhook::numero::sign(SECRET.as_bytes(), body.as_bytes());
    headers.insert("x-webhook-signature", signature.parse().unwrap());
    headers.insert("content-type", "application/json".parse().unwrap());
    Delivery {
        scheme: "numero".into(),
        event_id: id.into(),
        method: Method::POST,
        uri: "/webhooks/numero".parse().unwrap(),
        headers,
        body: Bytes::from(body),
        order_key: None,
    }
}

async fn connect(server: &RedisServer) -> RedisStore {
    RedisStore::connect(&server.url()).await.unwrap()
}

/// `count` accepts of new keys from `SENDERS` tasks; accepts per second.
async fn accept_many(store: &RedisStore, run: &str, count: usize) -> f64 {
    let started = Instant::now();
    let tasks: Vec<_> = (0..SENDERS)
        .map(|sender| {
            let store = store.clone();
            let run = run.to_owned();
            tokio::spawn(async move {
                for i in (sender..count).step_by(SENDERS) {
                    let id = format!("{run}_{i:08}");
                    let key = IdempotencyKey::new("numero", &EventId::new(&id).unwrap());
                    let answer = store.accept(&key, delivery(&id)).await.unwrap();
                    assert_eq!(answer, Accept::Accepted);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    count as f64 / started.elapsed().as_secs_f64()
}

fn intake_throughput(runtime: &Runtime, label: &str, args: &[&str]) -> f64 {
    let server = RedisServer::start_with(args);
    let rate = runtime.block_on(async {
        let store = connect(&server).await;
        accept_many(&store, "warm", WARM_UP).await;
        accept_many(&store, "timed", ACCEPTS).await
    });
    println!("intake, {label}: {rate:.0} accepts/s");
    rate
}

/// p50 and p99 of accept (202) → handler start, in milliseconds.
fn latency(runtime: &Runtime, server: &RedisServer, other_replica: bool) -> (f64, f64) {
    runtime.block_on(async {
        let (started_tx, mut started_rx) = mpsc::unbounded_channel::<(String, Instant)>();
        let handler = service_fn(move |request: Request<Full<Bytes>>| {
            let started = Instant::now();
            let id = request
                .extensions()
                .get::<Verified<NumeroEvent>>()
                .unwrap()
                .id
                .as_str()
                .to_owned();
            let _ = started_tx.send((id, started));
            async { Ok::<_, Infallible>(Response::new(Full::new(Bytes::new()))) }
        });
        let intake_worker = Worker::builder(connect(server).await).start();
        let intake = WebhookLayer::builder(Numero)
            .secret(SECRET)
            .queued(&intake_worker)
            .build()
            .unwrap();
        let runner_worker;
        let service = if other_replica {
            // The intake replica runs nothing; the other one runs the jobs.
            intake_worker.shutdown(Duration::ZERO).await;
            runner_worker = Worker::builder(connect(server).await).start();
            let runner = WebhookLayer::builder(Numero)
                .secret(SECRET)
                .queued(&runner_worker)
                .build()
                .unwrap();
            runner_worker.handle(runner.job_handler(handler.clone()));
            tokio::time::sleep(Duration::from_millis(500)).await; // the worker is idle
            intake.layer(handler)
        } else {
            intake_worker.handle(intake.job_handler(handler.clone()));
            runner_worker = intake_worker;
            intake.layer(handler)
        };
        let mut samples = Vec::with_capacity(LATENCY_SAMPLES);
        for i in 0..LATENCY_SAMPLES + 200 {
            let id = format!("lat_{other_replica}_{i:06}");
            let body = body(&id);
            let request = Request::post("/webhooks/numero")
                .header(
                    "x-webhook-signature",
                    tower_webhook::numero::sign(SECRET.as_bytes(), body.as_bytes()),
                )
                .body(Full::new(Bytes::from(body)))
                .unwrap();
            let response = service.clone().oneshot(request).await.unwrap();
            let accepted = Instant::now();
            assert_eq!(response.status(), 202);
            let (ran, started) = tokio::time::timeout(Duration::from_secs(5), started_rx.recv())
                .await
                .expect("the handler started within 5 s")
                .unwrap();
            assert_eq!(ran, id);
            if i >= 200 {
                samples.push(started.saturating_duration_since(accepted));
            }
        }
        runner_worker.shutdown(Duration::from_secs(5)).await;
        samples.sort_unstable();
        let ms = |q: f64| {
            let index = ((samples.len() as f64 * q) as usize).min(samples.len() - 1);
            samples[index].as_secs_f64() * 1000.0
        };
        (ms(0.50), ms(0.99))
    })
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` asks for benchmark names
    }
    if let Err(e) = RedisServer::try_start() {
        eprintln!("SKIPPED queue_redis: cannot start redis-server ({e})");
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    let persistence: [(&str, &[&str]); 3] = [
        ("no persistence", &[]),
        (
            "AOF everysec",
            &["--appendonly", "yes", "--appendfsync", "everysec"],
        ),
        (
            "AOF always",
            &["--appendonly", "yes", "--appendfsync", "always"],
        ),
    ];
    let rates: Vec<(&str, f64)> = persistence
        .iter()
        .map(|(label, args)| (*label, intake_throughput(&runtime, label, args)))
        .collect();

    let server = RedisServer::start();
    let same = latency(&runtime, &server, false);
    println!(
        "latency, same replica: p50 {:.2} ms, p99 {:.2} ms",
        same.0, same.1
    );
    let other = latency(&runtime, &server, true);
    println!(
        "latency, other replica: p50 {:.2} ms, p99 {:.2} ms",
        other.0, other.1
    );

    println!();
    println!("| intake ({SENDERS} senders, {ACCEPTS} new keys) | accepts/s |");
    println!("|---|---|");
    for (label, rate) in rates {
        println!("| {label} | {rate:.0} |");
    }
    println!();
    println!(
        "| accept (202) → handler start, {LATENCY_SAMPLES} deliveries one at a time | p50 | p99 |"
    );
    println!("|---|---|---|");
    println!(
        "| worker on the same replica | {:.2} ms | {:.2} ms |",
        same.0, same.1
    );
    println!(
        "| worker on another replica (wake stream) | {:.2} ms | {:.2} ms |",
        other.0, other.1
    );
}

/// A recent signed time for sample bodies (inside the layer's replay
/// window), fixed once per process so that a body built twice is the same.
fn recent() -> &'static str {
    static NOW: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NOW.get_or_init(|| tower_webhook::sign::rfc3339(std::time::SystemTime::now()))
}
