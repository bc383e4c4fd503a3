//! [`SqliteStore`] on real files: restarts keep claims, done marks and jobs;
//! keys expire and are swept; stale leases change nothing; bad files are
//! refused at open; a full store answers 503 and runs nothing. Inline mode
//! goes through a real HTTP server; every wait is bounded.

mod queue_contract;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing;
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use http_body_util::Full;
use queue_contract::TempDir;
use queue_contract::harness::{self, PATIENCE, Reply, numero_body};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tower_webhook::numero::{Numero, NumeroEvent};
use tower_webhook::queue::{
    Accept, Attempt, Delivery, JobOutcome, JobQueue, QueueCounts, TakeRequest, Worker,
};
use tower_webhook::store::sqlite::{KeyState, SqliteLease};
use tower_webhook::store::{Claim, IdempotencyStore, SqliteStore, Synchronous};
use tower_webhook::{EventId, IdempotencyKey, Verified, VerifiedEvent, WebhookLayer};

const LONG: Duration = Duration::from_secs(3600);

fn key(id: &str) -> IdempotencyKey {
    IdempotencyKey::new("numero", &EventId::new(id).unwrap())
}

fn delivery(id: &str, body: impl Into<Bytes>) -> Delivery {
    Delivery {
        scheme: "numero".into(),
        event_id: id.into(),
        method: Method::POST,
        uri: "/numero".parse().unwrap(),
        headers: HeaderMap::new(),
        body: body.into(),
    }
}

/// An inline Numero receiver on a [`SqliteStore`], stopped when dropped.
struct Inline {
    addr: SocketAddr,
    runs: Arc<AtomicUsize>,
    server: JoinHandle<()>,
}

impl Inline {
    async fn start(store: SqliteStore, done_ttl: Duration) -> Self {
        let layer = WebhookLayer::builder(Numero)
            .secret(harness::NUMERO_SECRET)
            .done_ttl(done_ttl)
            // These tests watch the store's own expiry; with short TTLs the
            // replay window (the done TTL) would refuse the dated samples.
            .replay_window(None)
            .store(store)
            .build()
            .unwrap();
        let runs = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&runs);
        let handler = move |VerifiedEvent(_): VerifiedEvent<NumeroEvent>| {
            counter.fetch_add(1, Ordering::SeqCst);
            async { StatusCode::OK }
        };
        let app = Router::new().route("/numero", routing::post(handler).route_layer(layer));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, runs, server }
    }

    async fn deliver(&self, id: &str) -> Reply {
        let body = numero_body(id);
        let sig = harness::numero_signature(body.as_bytes());
        harness::post(
            &format!("http://{}/numero", self.addr),
            &[("x-webhook-signature", &sig)],
            body,
        )
        .await
    }

    fn runs(&self) -> usize {
        self.runs.load(Ordering::SeqCst)
    }
}

impl Drop for Inline {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Polls `check` until it holds, or fails after [`PATIENCE`].
async fn eventually<F: Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    let deadline = Instant::now() + PATIENCE;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_processed_delivery_is_a_duplicate_after_a_restart() {
    let dir = TempDir::new();
    let path = dir.join("store.db");
    let first = Inline::start(SqliteStore::open(&path).unwrap(), LONG).await;
    assert_eq!(first.deliver("evt_restart").await.status, StatusCode::OK);
    assert_eq!(first.runs(), 1);
    drop(first);

    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(
        store.status(&key("evt_restart")).await.unwrap(),
        Some(KeyState::Done)
    );
    let second = Inline::start(store, LONG).await;
    let again = second.deliver("evt_restart").await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.text(), r#"{"status":"duplicate"}"#);
    assert_eq!(second.runs(), 0, "the handler ran again after a restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_job_survives_a_restart_and_runs() {
    let dir = TempDir::new();
    let path = dir.join("queue.db");
    let first = queue_contract::start(Worker::builder(SqliteStore::open(&path).unwrap())).await;
    first.seen.script.lock().unwrap().delay = Duration::from_secs(10);
    let reply = first.deliver(&numero_body("evt_kept")).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    first
        .wait_counts(QueueCounts {
            running: 1,
            ..QueueCounts::default()
        })
        .await;
    let report = first.worker.shutdown(Duration::from_millis(100)).await;
    assert_eq!(report.aborted, 1);

    // The restarted process: a new store on the file and a new worker, whose
    // handler is layered at once (no delivery needed to wake anything).
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(
        store.status(&key("evt_kept")).await.unwrap(),
        Some(KeyState::Pending)
    );
    let worker = Worker::builder(store.clone()).start();
    let (ran, mut runs) = tokio::sync::mpsc::unbounded_channel();
    let handler = tower::service_fn(move |request: http::Request<Full<Bytes>>| {
        let attempt = request.extensions().get::<Attempt>().map(|a| a.0);
        let id = request
            .extensions()
            .get::<Verified<NumeroEvent>>()
            .map(|verified| verified.id.as_str().to_owned());
        ran.send((id, attempt)).unwrap();
        async { Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::new()))) }
    });
    let layer = WebhookLayer::builder(Numero)
        .secret(harness::NUMERO_SECRET)
        .queued(&worker)
        .build()
        .unwrap();
    worker.handle(layer.job_handler(handler));
    let run = tokio::time::timeout(PATIENCE, runs.recv()).await.unwrap();
    assert_eq!(run, Some((Some("evt_kept".to_owned()), Some(2))));
    eventually("the job to be done", || async {
        store.status(&key("evt_kept")).await.unwrap() == Some(KeyState::Done)
    })
    .await;
    let copy = store
        .accept(&key("evt_kept"), delivery("evt_kept", "{}"))
        .await;
    assert_eq!(copy.unwrap(), Accept::Duplicate);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn done_keys_expire_after_their_ttl_and_are_swept() {
    let dir = TempDir::new();
    let store = SqliteStore::builder()
        .sweep_interval(Duration::from_millis(50))
        .open(dir.join("store.db"))
        .unwrap();
    let ttl = Duration::from_secs(2);
    let receiver = Inline::start(store.clone(), ttl).await;
    let done_at = Instant::now();
    assert_eq!(receiver.deliver("evt_ttl").await.status, StatusCode::OK);
    let copy = receiver.deliver("evt_ttl").await;
    assert_eq!(copy.text(), r#"{"status":"duplicate"}"#);
    eventually("the sweep to remove the done key", || async {
        store.key_count().await.unwrap() == 0
    })
    .await;
    assert!(done_at.elapsed() >= ttl, "the key went before its TTL");
    assert_eq!(receiver.deliver("evt_ttl").await.status, StatusCode::OK);
    assert_eq!(receiver.runs(), 2, "the expired key runs the handler again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_that_ran_out_are_free_before_the_sweep() {
    let dir = TempDir::new();
    let store = SqliteStore::builder()
        .sweep_interval(LONG)
        .open(dir.join("store.db"))
        .unwrap();
    let short = Duration::from_millis(50);
    // A done key, an abandoned claim and a dead letter, all run out.
    let lease = new_claim(&store, "done", LONG).await;
    store.complete(lease, short).await.unwrap();
    let _abandoned = new_claim(&store, "claimed", short).await;
    assert_eq!(accept(&store, "dead").await, Accept::Accepted);
    let job = take_one(&store, LONG).await;
    let outcome = JobOutcome::Dead {
        error: "gave up".into(),
        retain: short,
    };
    assert!(store.finish(job, outcome).await.unwrap());
    tokio::time::sleep(short * 3).await;

    assert_eq!(store.key_count().await.unwrap(), 3, "not swept yet");
    for id in ["done", "claimed", "dead"] {
        assert_eq!(store.status(&key(id)).await.unwrap(), None, "{id}");
    }
    new_claim(&store, "done", LONG).await;
    new_claim(&store, "claimed", LONG).await;
    assert_eq!(accept(&store, "dead").await, Accept::Accepted);
}

async fn accept(store: &SqliteStore, id: &str) -> Accept {
    store.accept(&key(id), delivery(id, "{}")).await.unwrap()
}

async fn new_claim(store: &SqliteStore, id: &str, lease: Duration) -> SqliteLease {
    match store.claim(&key(id), lease).await.unwrap() {
        Claim::New(lease) => lease,
        other => panic!("{id}: expected a new claim, got {other:?}"),
    }
}

async fn take_one(store: &SqliteStore, lease: Duration) -> SqliteLease {
    let request = TakeRequest {
        schemes: Arc::from(vec![Box::from("numero")]),
        max: 1,
        lease,
    };
    let mut taken = store.take(request).await.unwrap();
    assert_eq!(taken.jobs.len(), 1, "one due job");
    taken.jobs.remove(0).lease
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_lease_cannot_touch_a_newer_claim_or_job() {
    let dir = TempDir::new();
    let store = SqliteStore::open(dir.join("store.db")).unwrap();
    let short = Duration::from_millis(20);

    // Inline claims.
    let stale = new_claim(&store, "a", short).await;
    tokio::time::sleep(short * 3).await;
    let newer = new_claim(&store, "a", LONG).await;
    store.complete(stale.clone(), LONG).await.unwrap();
    assert_eq!(
        store.status(&key("a")).await.unwrap(),
        Some(KeyState::Claimed)
    );
    store.release(stale).await.unwrap();
    assert_eq!(
        store.status(&key("a")).await.unwrap(),
        Some(KeyState::Claimed)
    );
    store.complete(newer, LONG).await.unwrap();
    assert_eq!(store.status(&key("a")).await.unwrap(), Some(KeyState::Done));

    // Job leases.
    assert_eq!(accept(&store, "j").await, Accept::Accepted);
    let stale = take_one(&store, short).await;
    tokio::time::sleep(short * 3).await;
    let newer = take_one(&store, LONG).await;
    assert!(!store.renew(&stale, LONG).await.unwrap());
    let done = JobOutcome::Done { ttl: LONG };
    assert!(!store.finish(stale, done.clone()).await.unwrap());
    assert_eq!(
        store.status(&key("j")).await.unwrap(),
        Some(KeyState::Running)
    );
    assert!(store.renew(&newer, LONG).await.unwrap());
    assert!(store.finish(newer, done).await.unwrap());
    assert_eq!(store.status(&key("j")).await.unwrap(), Some(KeyState::Done));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_whose_caller_went_away_frees_its_key() {
    let dir = TempDir::new();
    let store = SqliteStore::open(dir.join("store.db")).unwrap();
    // Dropped before the writer answers, and after it answered unread.
    drop(store.claim(&key("early"), LONG));
    let late = store.claim(&key("late"), LONG);
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(late);
    for id in ["early", "late"] {
        eventually("the abandoned claim to be released", || async {
            store.status(&key(id)).await.unwrap().is_none()
        })
        .await;
        new_claim(&store, id, LONG).await;
    }
}

/// Opening `path` fails with a message that names it and says `why`.
fn assert_refused(path: &std::path::Path, why: &str) {
    let message = SqliteStore::open(path).unwrap_err().to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains(why), "{message}");
}

#[test]
fn bad_store_files_are_refused_at_open_with_the_path() {
    let dir = TempDir::new();
    let missing = dir.join("no-such-dir").join("store.db");
    assert_refused(&missing, "directory does not exist");

    let read_only = dir.join("read-only.db");
    drop(SqliteStore::open(&read_only).unwrap());
    let mut permissions = std::fs::metadata(&read_only).unwrap().permissions();
    permissions.set_readonly(true);
    std::fs::set_permissions(&read_only, permissions).unwrap();
    assert_refused(&read_only, "is read-only");

    let not_a_db = dir.join("notes.txt");
    std::fs::write(&not_a_db, "these are notes, not a database\n".repeat(200)).unwrap();
    assert_refused(&not_a_db, "is not a SQLite database");
}

/// Fills `store` with inline claims until a write fails; returns the
/// claims' leases.
async fn fill(store: &SqliteStore) -> Vec<SqliteLease> {
    let mut leases = Vec::new();
    for i in 0..100_000 {
        match store.claim(&key(&format!("filler_{i:06}")), LONG).await {
            Ok(Claim::New(lease)) => leases.push(lease),
            Ok(other) => panic!("a fresh key answered {other:?}"),
            Err(error) => {
                assert!(error.to_string().contains("is full"), "{error}");
                return leases;
            }
        }
    }
    panic!("the size cap never stopped a write");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_store_answers_503_runs_nothing_and_records_nothing() {
    let dir = TempDir::new();
    let store = SqliteStore::builder()
        .synchronous(Synchronous::Normal) // the fill is many small commits
        .max_size_bytes(64 * 1024)
        .open(dir.join("store.db"))
        .unwrap();
    let inline = Inline::start(store.clone(), LONG).await;
    let queued = queue_contract::start(Worker::builder(store.clone())).await;
    let mut leases = fill(&store).await;

    let reply = inline.deliver("evt_full").await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(reply.headers.contains_key("retry-after"));
    let reply = queued.deliver(&numero_body("evt_full_q")).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(reply.headers.contains_key("retry-after"));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(inline.runs(), 0);
    assert!(queued.seen.runs().is_empty());
    assert_eq!(store.status(&key("evt_full")).await.unwrap(), None);
    assert_eq!(store.status(&key("evt_full_q")).await.unwrap(), None);
    assert_eq!(queued.counts().await, QueueCounts::default());

    // Room again: the sender's retry goes through.
    for lease in leases.drain(..leases.len() / 2) {
        store.release(lease).await.unwrap();
    }
    assert_eq!(inline.deliver("evt_full").await.status, StatusCode::OK);
    assert_eq!(inline.runs(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_write_does_not_fail_the_others_in_its_group() {
    let dir = TempDir::new();
    let store = SqliteStore::builder()
        .max_size_bytes(128 * 1024)
        .open(dir.join("store.db"))
        .unwrap();
    let too_big = Bytes::from(vec![b'x'; 256 * 1024]);
    let accept = |id: String, body: Bytes| {
        let store = store.clone();
        tokio::spawn(async move { store.accept(&key(&id), delivery(&id, body)).await.is_ok() })
    };
    let mut tasks: Vec<_> = (0..50)
        .map(|i| accept(format!("small_{i}"), Bytes::from_static(b"{}")))
        .collect();
    tasks.insert(25, accept("big".into(), too_big));
    let mut ok = 0;
    for task in tasks {
        ok += usize::from(task.await.unwrap());
    }
    assert_eq!(ok, 50, "every small delivery recorded, the big one refused");
    assert_eq!(store.status(&key("big")).await.unwrap(), None);
    let counts = store.counts().await.unwrap();
    assert_eq!(counts.pending, 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_accepts_of_one_key_make_one_job() {
    let dir = TempDir::new();
    let store = SqliteStore::open(dir.join("store.db")).unwrap();
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .accept(&key("evt_once"), delivery("evt_once", "{}"))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut answers: HashMap<&str, usize> = HashMap::new();
    for task in tasks {
        let answer = match task.await.unwrap() {
            Accept::Accepted => "accepted",
            Accept::Duplicate => "duplicate",
        };
        *answers.entry(answer).or_default() += 1;
    }
    assert_eq!(answers.get("accepted"), Some(&1), "{answers:?}");
    assert_eq!(answers.get("duplicate"), Some(&199), "{answers:?}");
    assert_eq!(store.counts().await.unwrap().pending, 1);
}
