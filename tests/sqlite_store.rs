//! What only [`SqliteStore`] has, on real files: expired keys are swept;
//! a claim whose caller went away is released; bad files are refused at
//! open; a full store answers 503 and runs nothing; one failing write
//! leaves the rest of its group committed. Inline mode goes through a real
//! HTTP server; every wait is bounded. What every backend promises
//! (claims, leases, the queue, restarts) is in `tests/conformance/`.

mod harness;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use harness::inline::Inline;
use harness::queued;
use harness::{PATIENCE, TempDir, numero_body};
use http::{HeaderMap, Method, StatusCode};
use tower_webhook::queue::{
    Accept, Delivery, JobOutcome, JobQueue, QueueAdmin, QueueCounts, TakeRequest, Worker,
};
use tower_webhook::store::sqlite::{KeyState, SqliteLease};
use tower_webhook::store::{Claim, IdempotencyStore, SqliteStore, Synchronous};

const LONG: Duration = Duration::from_secs(3600);

use harness::numero_key as key;

fn delivery(id: &str, body: impl Into<Bytes>) -> Delivery {
    Delivery {
        scheme: "numero".into(),
        event_id: id.into(),
        method: Method::POST,
        uri: "/numero".parse().unwrap(),
        headers: HeaderMap::new(),
        body: body.into(),
        order_key: None,
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
async fn a_handler_slower_than_its_lease_keeps_its_claim() {
    let dir = TempDir::new();
    let store = SqliteStore::open(dir.join("store.db")).unwrap();
    let lease = Duration::from_millis(1500);
    let inline = Arc::new(Inline::start_slow(store.clone(), LONG, lease, lease * 5).await);
    let first = {
        let inline = Arc::clone(&inline);
        tokio::spawn(async move { inline.deliver("evt_slow").await })
    };
    eventually("the handler to start", || async { inline.runs() == 1 }).await;
    for wait in [lease * 3 / 2, lease * 2] {
        tokio::time::sleep(wait).await;
        let copy = inline.deliver("evt_slow").await;
        assert_eq!(copy.status, StatusCode::CONFLICT, "{}", copy.text());
        assert_eq!(copy.error(), "in_flight");
        assert_eq!(
            store.status(&key("evt_slow")).await.unwrap(),
            Some(KeyState::Claimed)
        );
    }
    let first = tokio::time::timeout(PATIENCE, first)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(inline.runs(), 1, "the handler ran once");
    assert_eq!(
        store.status(&key("evt_slow")).await.unwrap(),
        Some(KeyState::Done)
    );
}

/// Renewing an inline claim keeps it past its first lease; a stale lease
/// (its key taken by a newer claim) and a finished claim cannot renew.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_holder_renews_an_inline_claim() {
    let dir = TempDir::new();
    let store = SqliteStore::open(dir.join("store.db")).unwrap();
    let short = Duration::from_millis(20);
    let held = new_claim(&store, "a", short).await;
    assert!(store.renew_claim(&held, LONG).await.unwrap());
    tokio::time::sleep(short * 3).await;
    assert!(matches!(
        store.claim(&key("a"), LONG).await.unwrap(),
        Claim::InFlight
    ));
    store.complete(held.clone(), LONG).await.unwrap();
    assert!(!store.renew_claim(&held, LONG).await.unwrap(), "completed");

    let stale = new_claim(&store, "b", short).await;
    tokio::time::sleep(short * 3).await;
    let newer = new_claim(&store, "b", LONG).await;
    assert!(
        !store.renew_claim(&stale, LONG).await.unwrap(),
        "taken over"
    );
    assert!(store.renew_claim(&newer, LONG).await.unwrap());
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
    let request = TakeRequest::new(std::sync::Arc::from(vec![Box::from("numero")]), 1, lease);
    let mut taken = store.take(request).await.unwrap();
    assert_eq!(taken.jobs.len(), 1, "one due job");
    taken.jobs.remove(0).lease
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

/// Fills what room `fill` left with pending jobs of a scheme no worker
/// here runs, each the size of a queued delivery, until an accept fails:
/// which pages a row needs depends on the file's layout, so a full store
/// is full for both kinds of row. Returns the counts it leaves.
async fn fill_with_jobs(store: &SqliteStore) -> QueueCounts {
    for i in 0..100_000 {
        let id = format!("filler_job_{i:06}");
        let event = tower_webhook::EventId::new(&id).unwrap();
        let mut job = delivery(&id, numero_body(&id));
        job.scheme = "numberotp".into();
        let key = tower_webhook::IdempotencyKey::new("numberotp", &event);
        if let Err(error) = store.accept(&key, job).await {
            assert!(error.to_string().contains("is full"), "{error}");
            return store.counts().await.unwrap();
        }
    }
    panic!("the size cap never stopped an accept");
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
    let queued = queued::start(Worker::builder(store.clone())).await;
    let mut leases = fill(&store).await;
    let filled = fill_with_jobs(&store).await;

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
    assert_eq!(queued.counts().await, filled, "nothing recorded");

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

/// Opens a store at `store.db`, holds a claim, does `damage` to its files,
/// then checks that every kind of call fails with the reason.
async fn assert_fails_closed_after(damage: impl FnOnce(&TempDir)) {
    let dir = TempDir::new();
    let store = SqliteStore::open(dir.join("store.db")).unwrap();
    let lease = new_claim(&store, "before", LONG).await;
    damage(&dir);
    let why = |error: tower_webhook::store::StoreError| {
        let message = error.to_string();
        assert!(message.contains("deleted or replaced"), "{message}");
    };
    why(store
        .accept(&key("after"), delivery("after", "{}"))
        .await
        .unwrap_err());
    why(store.claim(&key("after_claim"), LONG).await.unwrap_err());
    why(store.complete(lease, LONG).await.unwrap_err());
    why(store.status(&key("before")).await.unwrap_err());
    why(store.counts().await.unwrap_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_whose_file_was_replaced_fails_every_call() {
    // Another database moved over the path, as a restore from backup would.
    assert_fails_closed_after(|dir| {
        let other = dir.join("other.db");
        drop(SqliteStore::open(&other).unwrap());
        std::fs::rename(&other, dir.join("store.db")).unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_whose_wal_was_deleted_fails_every_call() {
    assert_fails_closed_after(|dir| std::fs::remove_file(dir.join("store.db-wal")).unwrap()).await;
}
