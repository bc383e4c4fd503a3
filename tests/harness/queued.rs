//! A queued-mode receiver on any [`JobQueue`]: a real axum server on
//! 127.0.0.1 with a Numero route in queued mode, a handler whose answers a
//! test scripts, and what that handler saw. Every wait is bounded.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Extension;
use axum::routing;
use http::StatusCode;
use tower_webhook::numero::Numero;
use tower_webhook::queue::{
    Attempt, JobQueue, QueueAdmin, QueueCounts, RetryPolicy, Worker, WorkerBuilder,
};
use tower_webhook::{Scheme, Verified, WebhookLayer};

use super::{self as harness, PATIENCE, Reply, post};

/// What the handler does for each attempt; the test sets it.
#[derive(Clone, Default)]
pub struct Script {
    /// Answer 500 to the first N attempts of each event.
    pub fail_first: u32,
    /// Panic instead of answering 500 for those.
    pub panic: bool,
    /// Wait this long before answering.
    pub delay: Duration,
    /// Called with each run as the handler is about to answer.
    pub after_run: Option<AfterRun>,
}

/// What [`Script::after_run`] calls.
pub type AfterRun = Arc<dyn Fn(&Run) + Send + Sync>;

/// One handler run, as the handler saw it.
#[derive(Debug, Clone)]
pub struct Run {
    pub id: String,
    pub attempt: u32,
    pub key_id: String,
    pub status: u16,
    pub started: Instant,
}

#[derive(Default)]
pub struct Seen {
    pub runs: Mutex<Vec<Run>>,
    pub script: Mutex<Script>,
    /// `(event id, attempt)` of every attempt, recorded as it starts.
    pub started: Mutex<Vec<(String, u32)>>,
}

impl Seen {
    pub fn runs(&self) -> Vec<Run> {
        self.runs.lock().unwrap().clone()
    }
    pub fn successes(&self) -> usize {
        self.runs().iter().filter(|r| r.status == 200).count()
    }
}

pub struct Queued<Q: JobQueue> {
    pub addr: SocketAddr,
    pub worker: Worker<Q>,
    pub seen: Arc<Seen>,
}

impl<Q: JobQueue> Queued<Q> {
    pub async fn deliver(&self, body: &str) -> Reply {
        let sig = harness::numero_signature(body.as_bytes());
        post(
            &format!("http://{}/numero", self.addr),
            &[("x-webhook-signature", &sig)],
            body.to_owned(),
        )
        .await
    }

    /// Waits until `done` says so, or fails after [`PATIENCE`].
    pub async fn wait_until(&self, what: &str, mut done: impl FnMut(&Seen) -> bool) {
        let deadline = Instant::now() + PATIENCE;
        while !done(&self.seen) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl<Q: QueueAdmin> Queued<Q> {
    pub async fn counts(&self) -> QueueCounts {
        self.worker.counts().await.unwrap()
    }

    pub async fn wait_counts(&self, want: QueueCounts) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let counts = self.counts().await;
            if counts == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "queue counts stayed {counts:?}, wanted {want:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// A fast retry policy for tests: 20 ms, 40 ms, … at most `max_attempts`.
pub fn quick_retries(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        base: Duration::from_millis(20),
        cap: Duration::from_millis(200),
        max_attempts,
        ..RetryPolicy::default()
    }
}

/// Starts a queued Numero receiver on `worker`.
pub async fn start<Q: JobQueue>(worker: WorkerBuilder<Q>) -> Queued<Q> {
    start_scheme(worker, Numero, harness::NUMERO_SECRET, "/numero", |event| {
        event.id.to_string()
    })
    .await
}

/// Starts a queued receiver for `scheme` at `path` on `worker`, whose
/// handler follows the [`Script`] and records each run under `id_of`.
pub async fn start_scheme<Q: JobQueue, Sc: Scheme>(
    worker: WorkerBuilder<Q>,
    scheme: Sc,
    secret: &str,
    path: &str,
    id_of: fn(&Sc::Event) -> String,
) -> Queued<Q> {
    let worker = worker.start();
    let seen = Arc::new(Seen::default());
    let layer = WebhookLayer::builder(scheme)
        .secret(secret)
        .queued(&worker)
        .build()
        .unwrap();
    let state = Arc::clone(&seen);
    let handler = move |Extension(Attempt(attempt)): Extension<Attempt>,
                        Verified {
                            event, id: key_id, ..
                        }: Verified<Sc::Event>| {
        let seen = Arc::clone(&state);
        async move {
            let script = seen.script.lock().unwrap().clone();
            let id = id_of(&event);
            seen.started.lock().unwrap().push((id.clone(), attempt));
            let started = Instant::now();
            tokio::time::sleep(script.delay).await;
            let fail = attempt <= script.fail_first;
            let run = Run {
                id,
                attempt,
                key_id: key_id.as_str().to_owned(),
                status: if fail { 500 } else { 200 },
                started,
            };
            if let Some(after_run) = &script.after_run {
                after_run(&run);
            }
            seen.runs.lock().unwrap().push(run);
            if fail && script.panic {
                panic!("handler panics on purpose (attempt {attempt})");
            }
            if fail {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::OK
            }
        }
    };
    worker.handle(layer.job_handler(routing::post(handler.clone())));
    let app = Router::new().route(path, routing::post(handler).route_layer(layer));
    let addr = harness::serve(app).await;
    Queued { addr, worker, seen }
}

/// Posts `copies` signed copies of the Numero event `body` all at once,
/// spread over `urls` in turn; how many got each status.
pub async fn post_copies(urls: &[String], body: &str, copies: usize) -> HashMap<u16, usize> {
    let sig = harness::numero_signature(body.as_bytes());
    let client = harness::client();
    let tasks: Vec<_> = (0..copies)
        .map(|i| {
            let url = urls[i % urls.len()].clone();
            let (client, sig, body) = (client.clone(), sig.clone(), body.to_owned());
            tokio::spawn(async move {
                harness::post_with(&client, &url, &[("x-webhook-signature", &sig)], body)
                    .await
                    .status
            })
        })
        .collect();
    let mut statuses: HashMap<u16, usize> = HashMap::new();
    for task in tasks {
        *statuses.entry(task.await.unwrap().as_u16()).or_default() += 1;
    }
    statuses
}
