//! The queued-mode contract, generic over the backend: each case starts a
//! real axum server on 127.0.0.1 with a Numero route in queued mode on the
//! given queue, posts through a real HTTP client, and checks what a user
//! sees (status, handler runs, queue counts, dead letters). Every wait is
//! bounded.
//!
//! A backend's test file calls each case with a fresh queue:
//! `queue_contract::accepted_then_run_once(MemoryQueue::new()).await`.

#![allow(dead_code)] // each backend's test binary uses what it needs

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Extension;
use axum::routing;
use http::StatusCode;
use tower_webhook::numero::{Numero, NumeroEvent};
use tower_webhook::queue::{Attempt, JobQueue, QueueCounts, RetryPolicy, Worker, WorkerBuilder};
use tower_webhook::{Verified, WebhookLayer};

#[path = "../harness/mod.rs"]
pub mod harness;

pub use harness::{PATIENCE, Reply, numero_body, post};

/// What the handler does for each attempt; the test sets it.
#[derive(Clone, Default)]
pub struct Script {
    /// Answer 500 to the first N attempts of each event.
    pub fail_first: u32,
    /// Panic instead of answering 500 for those.
    pub panic: bool,
    /// Wait this long before answering.
    pub delay: Duration,
}

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

    pub async fn counts(&self) -> QueueCounts {
        self.worker.counts().await.unwrap()
    }

    /// Waits until `done` says so, or fails after [`PATIENCE`].
    pub async fn wait_until(&self, what: &str, mut done: impl FnMut(&Seen) -> bool) {
        let deadline = Instant::now() + PATIENCE;
        while !done(&self.seen) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
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
    let worker = worker.start();
    let seen = Arc::new(Seen::default());
    let layer = WebhookLayer::builder(Numero)
        .secret(harness::NUMERO_SECRET)
        .queued(&worker)
        .build()
        .unwrap();
    let state = Arc::clone(&seen);
    let handler = move |Extension(Attempt(attempt)): Extension<Attempt>,
                        Verified {
                            event, id: key_id, ..
                        }: Verified<NumeroEvent>| {
        let seen = Arc::clone(&state);
        async move {
            let script = seen.script.lock().unwrap().clone();
            seen.started
                .lock()
                .unwrap()
                .push((event.id.to_string(), attempt));
            let started = Instant::now();
            tokio::time::sleep(script.delay).await;
            let fail = attempt <= script.fail_first;
            seen.runs.lock().unwrap().push(Run {
                id: event.id.to_string(),
                attempt,
                key_id: key_id.as_str().to_owned(),
                status: if fail { 500 } else { 200 },
                started,
            });
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
    let app = Router::new().route("/numero", routing::post(handler).route_layer(layer));
    let addr = harness::serve(app).await;
    Queued { addr, worker, seen }
}

/// A job already in the queue when the server starts (as after a restart)
/// runs without any request arriving.
pub async fn recorded_jobs_run_without_a_request<Q: JobQueue>(queue: Q) {
    let body = numero_body("evt_recovered");
    let id = tower_webhook::EventId::new("evt_recovered").unwrap();
    let delivery = tower_webhook::queue::Delivery {
        scheme: "numero".into(),
        event_id: "evt_recovered".into(),
        method: http::Method::POST,
        uri: "/numero".parse().unwrap(),
        headers: http::HeaderMap::new(),
        body: body.into(),
    };
    let key = tower_webhook::IdempotencyKey::new("numero", &id);
    let accepted = queue.accept(&key, delivery).await.unwrap();
    assert_eq!(accepted, tower_webhook::queue::Accept::Accepted);
    let r = start(Worker::builder(queue)).await;
    r.wait_until("the recorded job to run", |s| s.successes() == 1)
        .await;
    assert_eq!(r.seen.runs()[0].id, "evt_recovered");
}

fn zero() -> QueueCounts {
    QueueCounts::default()
}

/// A new event: 202 accepted, then the handler runs once with attempt 1
/// and the event's id; every later copy is a duplicate.
pub async fn accepted_then_run_once<Q: JobQueue>(queue: Q) {
    let r = start(Worker::builder(queue)).await;
    let body = numero_body("evt_q1");
    let first = r.deliver(&body).await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.text());
    assert_eq!(first.text(), r#"{"status":"accepted"}"#);
    r.wait_until("the handler run", |s| s.successes() == 1)
        .await;
    let again = r.deliver(&body).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.text(), r#"{"status":"duplicate"}"#);
    r.wait_counts(zero()).await;
    let runs = r.seen.runs();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!((runs[0].id.as_str(), runs[0].attempt), ("evt_q1", 1));
    assert_eq!(runs[0].key_id, "evt_q1");
    // A forged copy is still refused before anything is recorded.
    let forged = post(
        &format!("http://{}/numero", r.addr),
        &[("x-webhook-signature", "AAAA")],
        body,
    )
    .await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);
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

/// Many concurrent copies of one event: one 202, the rest duplicates, one
/// job, one successful handler run.
pub async fn concurrent_copies_make_one_job<Q: JobQueue>(queue: Q, copies: usize) {
    let r = start(Worker::builder(queue)).await;
    let url = format!("http://{}/numero", r.addr);
    let statuses = post_copies(&[url], &numero_body("evt_many"), copies).await;
    assert_eq!(statuses.get(&202), Some(&1), "{statuses:?}");
    assert_eq!(statuses.get(&200), Some(&(copies - 1)), "{statuses:?}");
    r.wait_until("the handler run", |s| s.successes() == 1)
        .await;
    r.wait_counts(zero()).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(r.seen.runs().len(), 1);
}

/// A handler that fails its first attempts (500, then a panic) is retried
/// with backoff until it succeeds; the sender only ever saw the 202.
pub async fn failures_are_retried_until_done<Q: JobQueue>(queue: Q, panic: bool) {
    let r = start(Worker::builder(queue).retry(quick_retries(5))).await;
    *r.seen.script.lock().unwrap() = Script {
        fail_first: 2,
        panic,
        ..Script::default()
    };
    let first = r.deliver(&numero_body("evt_flaky")).await;
    assert_eq!(first.status, StatusCode::ACCEPTED);
    r.wait_until("a successful attempt", |s| s.successes() == 1)
        .await;
    let runs = r.seen.runs();
    let attempts: Vec<(u32, u16)> = runs.iter().map(|r| (r.attempt, r.status)).collect();
    assert_eq!(attempts, [(1, 500), (2, 500), (3, 200)]);
    // Backoff: the retries did not come back at once.
    assert!(runs[1].started - runs[0].started >= Duration::from_millis(10));
    r.wait_counts(zero()).await;
    let again = r.deliver(&numero_body("evt_flaky")).await;
    assert_eq!(again.text(), r#"{"status":"duplicate"}"#);
}

/// A handler that always fails: after the last attempt the job is a dead
/// letter (listed, a duplicate to senders); replayed, it runs again with its
/// attempts so far, and succeeds once the handler is fixed.
pub async fn dead_letters_are_kept_and_replayed<Q: JobQueue>(queue: Q, replay_from: Worker<Q>) {
    let r = start(Worker::builder(queue).retry(quick_retries(3))).await;
    r.seen.script.lock().unwrap().fail_first = u32::MAX;
    assert_eq!(
        r.deliver(&numero_body("evt_dead")).await.status,
        StatusCode::ACCEPTED
    );
    r.wait_counts(QueueCounts { dead: 1, ..zero() }).await;
    assert_eq!(r.seen.runs().len(), 3);
    let letters = r.worker.dead_letters(10).await.unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(
        (
            letters[0].scheme.as_str(),
            letters[0].id.as_str(),
            letters[0].attempts
        ),
        ("numero", "evt_dead", 3)
    );
    assert!(letters[0].last_error.contains("500"), "{letters:?}");
    let copy = r.deliver(&numero_body("evt_dead")).await;
    assert_eq!(
        copy.text(),
        r#"{"status":"duplicate"}"#,
        "a dead letter is not accepted twice"
    );

    r.seen.script.lock().unwrap().fail_first = 0;
    assert!(replay_from.replay(&letters[0].key).await.unwrap());
    assert!(!replay_from.replay("numero:nothing-here").await.unwrap());
    r.wait_until("the replayed run", |s| s.successes() == 1)
        .await;
    let last = r.seen.runs().last().cloned().unwrap();
    assert_eq!(last.attempt, 4, "attempts carry over a replay");
    r.wait_counts(zero()).await;
    assert!(r.worker.dead_letters(10).await.unwrap().is_empty());
}

/// A 10-second handler: the sender's answer comes back at once, long
/// before the handler ends. Shutting down with a short deadline stops the
/// attempt and leaves its job queued.
pub async fn slow_handlers_do_not_hold_the_sender<Q: JobQueue>(queue: Q) {
    let r = start(Worker::builder(queue)).await;
    r.seen.script.lock().unwrap().delay = Duration::from_secs(10);
    let sent = Instant::now();
    let reply = r.deliver(&numero_body("evt_slow")).await;
    let answered_in = sent.elapsed();
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    assert!(
        answered_in < Duration::from_secs(1),
        "the sender waited {answered_in:?} for a 10 s handler"
    );
    r.wait_counts(QueueCounts {
        running: 1,
        ..zero()
    })
    .await;
    let report = r.worker.shutdown(Duration::from_millis(100)).await;
    assert!(!report.finished_in_time);
    assert_eq!(report.aborted, 1);
    r.wait_counts(QueueCounts {
        pending: 1,
        ..zero()
    })
    .await;
}

/// Shutdown lets a running attempt finish within the deadline.
pub async fn shutdown_lets_running_attempts_finish<Q: JobQueue>(queue: Q) {
    let r = start(Worker::builder(queue)).await;
    r.seen.script.lock().unwrap().delay = Duration::from_millis(300);
    assert_eq!(
        r.deliver(&numero_body("evt_drain")).await.status,
        StatusCode::ACCEPTED
    );
    r.wait_counts(QueueCounts {
        running: 1,
        ..zero()
    })
    .await;
    let report = r.worker.shutdown(PATIENCE).await;
    assert!(report.finished_in_time);
    assert_eq!(report.aborted, 0);
    assert_eq!(r.seen.successes(), 1);
    assert_eq!(r.counts().await, zero());
}

/// A fresh directory under the system's temp dir for a backend that lives
/// in files, removed (with what it holds) when dropped.
pub struct TempDir(std::path::PathBuf);

impl TempDir {
    pub fn new() -> Self {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let unique = format!(
            "tower-webhook-{}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        );
        let path = std::env::temp_dir().join(unique);
        std::fs::create_dir(&path).unwrap();
        Self(path)
    }

    /// `name` inside the directory.
    pub fn join(&self, name: &str) -> std::path::PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
