//! Queued mode on `RedisStore` as only Redis has it, against a real
//! `redis-server` that each test starts (a free 127.0.0.1 port, a
//! throwaway directory): keys under the prefix, Redis going down, and
//! several replicas (each its own axum server, store connection and
//! `Worker`) on one Redis. What every backend promises is in
//! `tests/conformance/`.

#![cfg(feature = "redis")]

mod harness;
#[path = "support/receiver_process.rs"]
mod receiver_process;
#[path = "support/redis_server.rs"]
mod redis_server;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use harness::queued::{self, Queued, quick_retries};
use harness::{PATIENCE, numero_body, numero_job_key as job_key};
use http::{StatusCode, header};
use receiver_process::{ReceiverProcess, run_to_end};
use redis_server::RedisServer;
use tokio::time::{sleep, timeout};
use tower_webhook::queue::{
    JobOutcome, JobQueue, JobState, QueueAdmin, QueueCounts, QueueInspect, TakeRequest, Worker,
    WorkerBuilder,
};
use tower_webhook::store::redis::{DEFAULT_PREFIX, Durability};
use tower_webhook::{RedisStore, StoreErrorKind};

/// Every test ends within this, or fails.
const TEST_LIMIT: Duration = Duration::from_secs(90);
const LONG: Duration = Duration::from_secs(3600);

async fn connect(server: &RedisServer) -> RedisStore {
    RedisStore::builder()
        .timeout(Duration::from_millis(500))
        .connect(&server.url())
        .await
        .unwrap()
}

async fn within_limit(test: impl Future<Output = ()>) {
    timeout(TEST_LIMIT, test).await.expect("test timed out");
}

fn zero() -> QueueCounts {
    QueueCounts::default()
}

use harness::{numero_delivery as delivery, numero_key as key};

fn numero_schemes() -> Arc<[Box<str>]> {
    Arc::from(vec![Box::from("numero")])
}

/// A replica: a queued receiver whose worker has its handler at start
/// (`queued::start` gives the router its state before serving).
async fn replica(worker: WorkerBuilder<RedisStore>) -> Queued<RedisStore> {
    queued::start(worker).await
}

/// A replica that records and answers (202) but runs nothing: its worker
/// is stopped before the first delivery, as if its handlers were elsewhere.
async fn intake_only(store: RedisStore) -> Queued<RedisStore> {
    let replica = queued::start(Worker::builder(store)).await;
    replica.worker.shutdown(Duration::ZERO).await;
    replica
}

/// Every handler attempt across `replicas`, as `(id, attempt, status)`.
fn all_runs(replicas: &[&Queued<RedisStore>]) -> Vec<(String, u32, u16)> {
    replicas
        .iter()
        .flat_map(|r| r.seen.runs())
        .map(|run| (run.id, run.attempt, run.status))
        .collect()
}

fn successes(replicas: &[&Queued<RedisStore>]) -> usize {
    replicas.iter().map(|r| r.seen.successes()).sum()
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        sleep(Duration::from_millis(10)).await;
    }
}

/// Retries `call` while Redis is coming back.
async fn eventually<T, F, Fut>(call: F) -> T
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, tower_webhook::StoreError>>,
{
    let deadline = Instant::now() + PATIENCE;
    loop {
        match call().await {
            Ok(value) => return value,
            Err(e) => assert!(Instant::now() < deadline, "redis never came back: {e}"),
        }
        sleep(Duration::from_millis(50)).await;
    }
}

/// Every key the queue writes carries the prefix; a done key's Redis expiry
/// is the done TTL, and a dead letter's record and key expire with its
/// retention.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_key_carries_the_prefix_and_its_expiry() {
    within_limit(async {
        let server = RedisServer::start();
        let store = RedisStore::builder()
            .prefix("tenant-a:")
            .connect(&server.url())
            .await
            .unwrap();
        let retain = Duration::from_millis(1500);
        let r = replica(
            Worker::builder(store)
                .retry(quick_retries(1))
                .dead_letter_ttl(retain),
        )
        .await;
        assert_eq!(
            r.deliver(&numero_body("evt_ok")).await.status,
            StatusCode::ACCEPTED
        );
        r.wait_until("the handler run", |s| s.successes() == 1)
            .await;
        r.seen.script.lock().unwrap().fail_first = u32::MAX;
        assert_eq!(
            r.deliver(&numero_body("evt_dead")).await.status,
            StatusCode::ACCEPTED
        );
        r.wait_counts(QueueCounts { dead: 1, ..zero() }).await;

        let keys = server.command(&["KEYS", "*"]).unwrap();
        let names: Vec<&str> = keys
            .lines()
            .filter(|l| !l.starts_with('*') && !l.starts_with('$'))
            .collect();
        assert!(names.len() >= 5, "{keys}");
        assert!(
            names.iter().all(|k| k.starts_with("tenant-a:")),
            "every key carries the prefix: {names:?}"
        );
        let pttl = |key: &str| -> i64 {
            let reply = server.command(&["PTTL", key]).unwrap();
            reply.trim_start_matches(':').trim().parse().unwrap()
        };
        let done_ttl = pttl("tenant-a:numero:evt_ok");
        assert!(
            done_ttl > 71 * 3_600_000,
            "done for the done TTL: {done_ttl}"
        );
        assert_eq!(
            pttl("tenant-a:#q:job:numero:evt_ok"),
            -2,
            "no record once done"
        );
        for dead_key in [
            "tenant-a:numero:evt_dead",
            "tenant-a:#q:job:numero:evt_dead",
        ] {
            let ttl = pttl(dead_key);
            assert!(ttl > 0 && ttl <= 1500, "{dead_key} expires: {ttl}");
        }
        // Another prefix is another deployment: it sees none of this.
        let other = RedisStore::builder()
            .prefix("tenant-b:")
            .connect(&server.url())
            .await
            .unwrap();
        assert_eq!(other.counts().await.unwrap(), zero());
    })
    .await;
}

// --- replicas ---------------------------------------------------------------------

/// Two replicas, 100 concurrent copies of one event split across them:
/// exactly one 202, one job, one successful handler run in total.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_one_hundred_copies_one_run() {
    within_limit(async {
        let server = RedisServer::start();
        let a = replica(Worker::builder(connect(&server).await)).await;
        let b = replica(Worker::builder(connect(&server).await)).await;
        for r in [&a, &b] {
            r.seen.script.lock().unwrap().delay = Duration::from_millis(50);
        }
        let urls = [&a, &b].map(|r| format!("http://{}/numero", r.addr));
        let statuses = queued::post_copies(&urls, &numero_body("evt_shared"), 100).await;
        assert_eq!(statuses.get(&202), Some(&1), "{statuses:?}");
        assert_eq!(statuses.get(&200), Some(&99), "duplicates: {statuses:?}");
        wait_for("the handler run", || successes(&[&a, &b]) == 1).await;
        a.wait_counts(zero()).await;
        sleep(Duration::from_millis(200)).await;
        assert_eq!(all_runs(&[&a, &b]).len(), 1, "one run in total");
        for r in [&a, &b] {
            let copy = r.deliver(&numero_body("evt_shared")).await;
            assert_eq!(copy.text(), r#"{"status":"duplicate"}"#);
        }
    })
    .await;
}

/// Replica A takes a job and dies (its lease is never renewed). Replica B
/// runs the job once the lease runs out; A's late renew and finish, with
/// the stale lease, answer `false` and change nothing, while B still runs
/// it and after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_replicas_job_is_taken_over_and_its_lease_is_void() {
    within_limit(async {
        let server = RedisServer::start();
        let a_store = connect(&server).await;
        let a = intake_only(a_store.clone()).await;
        assert_eq!(
            a.deliver(&numero_body("evt_orphan")).await.status,
            StatusCode::ACCEPTED
        );
        let lease = Duration::from_millis(800);
        let taken = a_store
            .take(TakeRequest::new(numero_schemes(), 10, lease))
            .await
            .unwrap();
        assert_eq!(taken.jobs.len(), 1);
        let stale = taken.jobs[0].lease.clone();
        let taken_at = Instant::now();

        let b = replica(Worker::builder(connect(&server).await)).await;
        b.seen.script.lock().unwrap().delay = Duration::from_millis(1500);
        b.wait_until("B to start the orphaned job", |s| {
            !s.started.lock().unwrap().is_empty()
        })
        .await;
        assert!(
            taken_at.elapsed() >= lease - Duration::from_millis(50),
            "B waited for the lease to run out"
        );
        assert_eq!(
            b.seen.started.lock().unwrap().clone(),
            [("evt_orphan".to_owned(), 2)],
            "the second attempt"
        );

        // A comes back late, while B runs the job.
        assert!(!a_store.renew(&stale, LONG).await.unwrap());
        let done = JobOutcome::Done { ttl: LONG };
        assert!(!a_store.finish(stale.clone(), done.clone()).await.unwrap());
        let retry = JobOutcome::Retry {
            due: SystemTime::now(),
            error: "late".into(),
        };
        assert!(!a_store.finish(stale.clone(), retry).await.unwrap());
        assert_eq!(
            b.counts().await,
            QueueCounts {
                running: 1,
                ..zero()
            },
            "still B's"
        );
        assert_eq!(
            a_store.status(&key("evt_orphan")).await.unwrap(),
            Some(false)
        );

        b.wait_until("B's run", |s| s.successes() == 1).await;
        b.wait_counts(zero()).await;
        let dead = JobOutcome::Dead {
            error: "late".into(),
            retain: LONG,
        };
        assert!(!a_store.finish(stale, dead).await.unwrap());
        assert_eq!(b.counts().await, zero());
        assert_eq!(
            a_store.status(&key("evt_orphan")).await.unwrap(),
            Some(true)
        );
        assert!(b.worker.dead_letters(10).await.unwrap().is_empty());
        assert_eq!(all_runs(&[&a, &b]), [("evt_orphan".to_owned(), 2, 200)]);
    })
    .await;
}

/// Redis stops: deliveries get 503 with Retry-After, nothing is recorded,
/// the handler does not run. Redis comes back: the sender's retry is
/// accepted and processed, and the worker resumed by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_means_503_then_the_retry_is_processed() {
    within_limit(async {
        let mut server = RedisServer::start_persistent();
        let store = connect(&server).await;
        let r = replica(Worker::builder(store.clone())).await;
        assert_eq!(
            r.deliver(&numero_body("evt_before")).await.status,
            StatusCode::ACCEPTED
        );
        r.wait_until("the first run", |s| s.successes() == 1).await;

        server.stop();
        for _ in 0..3 {
            let reply = r.deliver(&numero_body("evt_during")).await;
            assert_eq!(
                reply.status,
                StatusCode::SERVICE_UNAVAILABLE,
                "{}",
                reply.text()
            );
            assert!(reply.headers.contains_key(header::RETRY_AFTER));
        }
        sleep(Duration::from_millis(300)).await;
        assert_eq!(r.seen.runs().len(), 1, "the handler did not run");

        server.restart();
        let during = key("evt_during");
        let status = eventually(|| store.status(&during)).await;
        assert_eq!(status, None, "nothing recorded, nothing done");
        let copy = r.deliver(&numero_body("evt_before")).await;
        assert_eq!(copy.text(), r#"{"status":"duplicate"}"#, "data survived");

        let deadline = Instant::now() + PATIENCE;
        let reply = loop {
            let reply = r.deliver(&numero_body("evt_during")).await;
            if reply.status != StatusCode::SERVICE_UNAVAILABLE || Instant::now() > deadline {
                break reply;
            }
            sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text());
        r.wait_until("the retried event's run", |s| s.successes() == 2)
            .await;
        r.wait_counts(zero()).await;
        assert_eq!(store.status(&key("evt_during")).await.unwrap(), Some(true));
    })
    .await;
}

/// A handler that keeps failing: backoff, then a dead letter, shared by
/// both replicas; replayed from replica B (A's worker stopped), B runs it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_is_replayed_and_run_by_the_other_replica() {
    within_limit(async {
        let server = RedisServer::start();
        let a = replica(Worker::builder(connect(&server).await).retry(quick_retries(3))).await;
        let b = replica(Worker::builder(connect(&server).await).retry(quick_retries(3))).await;
        for r in [&a, &b] {
            r.seen.script.lock().unwrap().fail_first = u32::MAX;
        }
        assert_eq!(
            a.deliver(&numero_body("evt_poison")).await.status,
            StatusCode::ACCEPTED
        );
        b.wait_counts(QueueCounts { dead: 1, ..zero() }).await;
        let mut attempts: Vec<(u32, u16)> = all_runs(&[&a, &b])
            .into_iter()
            .map(|(_, attempt, status)| (attempt, status))
            .collect();
        attempts.sort_unstable();
        assert_eq!(attempts, [(1, 500), (2, 500), (3, 500)]);

        let letters = b.worker.dead_letters(10).await.unwrap();
        assert_eq!(letters, a.worker.dead_letters(10).await.unwrap(), "shared");
        assert_eq!(letters.len(), 1);
        assert_eq!(
            (letters[0].key.as_str(), letters[0].attempts),
            ("numero:evt_poison", 3)
        );
        assert!(letters[0].last_error.contains("500"), "{letters:?}");
        assert!(letters[0].failed_at_ms >= letters[0].accepted_at_ms);

        a.worker.shutdown(PATIENCE).await;
        b.seen.script.lock().unwrap().fail_first = 0;
        assert!(b.worker.replay(&job_key("evt_poison")).await.unwrap());
        assert!(
            !b.worker.replay(&job_key("evt_poison")).await.unwrap(),
            "once"
        );
        b.wait_until("the replayed run", |s| s.successes() == 1)
            .await;
        assert_eq!(b.seen.runs().last().unwrap().attempt, 4);
        b.wait_counts(zero()).await;
        assert!(b.worker.dead_letters(10).await.unwrap().is_empty());
        assert_eq!(a.seen.successes(), 0);
    })
    .await;
}

/// An idle worker on another replica is woken by the wake stream, not by
/// its idle poll (a minute here), and still is after Redis restarts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_workers_on_other_replicas_wake_without_polling() {
    within_limit(async {
        let mut server = RedisServer::start();
        let a = intake_only(connect(&server).await).await;
        let b = replica(Worker::builder(connect(&server).await).idle_poll(Duration::from_secs(60)))
            .await;
        sleep(Duration::from_millis(300)).await; // B is idle, waiting
        assert_eq!(
            a.deliver(&numero_body("evt_wake_1")).await.status,
            StatusCode::ACCEPTED
        );
        b.wait_until("B's run", |s| s.successes() == 1).await;

        server.restart();
        let deadline = Instant::now() + PATIENCE;
        loop {
            let reply = a.deliver(&numero_body("evt_wake_2")).await;
            if reply.status == StatusCode::ACCEPTED {
                break;
            }
            assert!(Instant::now() < deadline, "{}", reply.text());
            sleep(Duration::from_millis(100)).await;
        }
        b.wait_until("B's run after the restart", |s| s.successes() == 2)
            .await;
    })
    .await;
}

/// A dead letter whose member is not an idempotency key (written by
/// something else under the prefix) fails the listings as corrupt data,
/// rather than being listed under a key no call can name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_that_is_not_a_key_is_corrupt_not_listed() {
    within_limit(async {
        let server = RedisServer::start();
        let store = connect(&server).await;
        let ns = format!("{DEFAULT_PREFIX}#q:");
        for command in [
            vec!["ZADD", &format!("{ns}dead"), "1", "not a key"],
            vec![
                "ZADD",
                &format!("{ns}dead-until"),
                "99999999999999",
                "not a key",
            ],
            vec![
                "HSET",
                &format!("{ns}job:not a key"),
                "state",
                "dead",
                "scheme",
                "numero",
            ],
        ] {
            server.command(&command).unwrap();
        }
        let listed = store.jobs(JobState::Dead, 10).await.unwrap_err();
        assert_eq!(listed.kind(), StoreErrorKind::Corrupt, "{listed}");
        let letters = store.dead_letters(10).await.unwrap_err();
        assert_eq!(letters.kind(), StoreErrorKind::Corrupt, "{letters}");
    })
    .await;
}

// --- durability: what a 202 waits for ------------------------------------------

/// A store on `server` whose acknowledged writes wait for `durability`.
async fn durable(server: &RedisServer, durability: Durability) -> RedisStore {
    RedisStore::builder()
        .timeout(Duration::from_secs(2))
        .durability(durability)
        .connect(&server.url())
        .await
        .unwrap()
}

/// The server's `major.minor` version, from `INFO server`.
fn server_version(server: &RedisServer) -> (u32, u32) {
    let info = server.command(&["INFO", "server"]).unwrap();
    let version = info
        .lines()
        .find_map(|line| line.strip_prefix("redis_version:"))
        .expect("INFO names the version");
    let mut parts = version.trim().split('.').map(|p| p.parse().unwrap());
    (parts.next().unwrap(), parts.next().unwrap())
}

/// Delivers `id` three times (a sender's retries); every answer must be
/// 503 with `Retry-After`, never a 2xx.
async fn assert_never_acknowledged(replica: &Queued<RedisStore>, id: &str) {
    for attempt in 0..3 {
        let reply = replica.deliver(&numero_body(id)).await;
        assert_eq!(
            reply.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "delivery {attempt} of {id}: {}",
            reply.text()
        );
        assert!(reply.headers.contains_key(header::RETRY_AFTER));
    }
}

/// `Durability::AofFsync` on a server with `appendonly yes` and
/// `appendfsync everysec` (so the wait is real): a 202 comes once the AOF
/// is fsynced, and the job is there after a crash of Redis. WAITAOF is
/// Redis 7.2's; an older server cannot confirm an fsync, so there every
/// delivery is refused (fail closed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aof_fsync_durability_answers_202_once_the_append_only_file_is_on_disk() {
    within_limit(async {
        let mut server =
            RedisServer::start_with(&["--appendonly", "yes", "--appendfsync", "everysec"]);
        let a = intake_only(durable(&server, Durability::AofFsync).await).await;
        if server_version(&server) < (7, 2) {
            assert_never_acknowledged(&a, "evt_fsynced").await;
            return;
        }
        let reply = a.deliver(&numero_body("evt_fsynced")).await;
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text());
        let copy = a.deliver(&numero_body("evt_fsynced")).await;
        assert_eq!(copy.text(), r#"{"status":"duplicate"}"#);
        server.restart(); // SIGKILL: only what the AOF held comes back
        let store =
            eventually(|| async { RedisStore::builder().connect(&server.url()).await }).await;
        let pending = QueueCounts {
            pending: 1,
            ..zero()
        };
        assert_eq!(store.counts().await.unwrap(), pending);
    })
    .await;
}

/// `Durability::AofFsync` on a server without an append-only file: nothing
/// can be fsynced, so no delivery is acknowledged, not even the sender's
/// retries (which find the job the first attempt wrote).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aof_fsync_durability_without_an_append_only_file_acknowledges_nothing() {
    within_limit(async {
        let server = RedisServer::start_with(&["--appendonly", "no"]);
        let store = durable(&server, Durability::AofFsync).await;
        let a = intake_only(store.clone()).await;
        assert_never_acknowledged(&a, "evt_unsynced").await;
        let error = store
            .accept(&key("evt_direct"), delivery("evt_direct"))
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("WAITAOF"), "{error}");
    })
    .await;
}

/// `Durability::Replicas(1)`: a 202 once a replica has the write; with the
/// replica gone, no delivery is acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_durability_answers_202_only_while_a_replica_has_the_write() {
    within_limit(async {
        let primary = RedisServer::start();
        let port = primary.port().to_string();
        let mut replica_server = RedisServer::start_with(&["--replicaof", "127.0.0.1", &port]);
        let deadline = Instant::now() + PATIENCE;
        while !replica_server
            .command(&["INFO", "replication"])
            .unwrap()
            .contains("master_link_status:up")
        {
            assert!(Instant::now() < deadline, "the replica never synced");
            sleep(Duration::from_millis(50)).await;
        }
        let a = intake_only(durable(&primary, Durability::Replicas(1)).await).await;
        let reply = a.deliver(&numero_body("evt_replicated")).await;
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text());
        assert!(
            replica_server
                .command(&["EXISTS", "tower-webhook:numero:evt_replicated"])
                .unwrap()
                .starts_with(":1"),
            "the replica holds the key when the 202 is sent"
        );

        replica_server.stop();
        assert_never_acknowledged(&a, "evt_unreplicated").await;
    })
    .await;
}

/// The receiver says at start what its Redis acknowledgements wait for,
/// and with `--redis-durability aof` on a server without an append-only
/// file it acknowledges no delivery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_receiver_says_which_redis_durability_it_runs_with() {
    within_limit(async {
        let server = RedisServer::start_with(&["--appendonly", "no"]);
        let url = server.url();
        let env = [("NUMERO_WEBHOOK_SECRET", harness::NUMERO_SECRET)];
        let says = |receiver: &ReceiverProcess, what: &str| {
            let printed = receiver.printed();
            assert!(
                printed.iter().any(|line| line.starts_with(what)),
                "{what:?} in {printed:?}"
            );
        };
        let default = ReceiverProcess::start(&["--store", &url, "--queued"], &env);
        says(&default, "redis durability: reply");
        drop(default);

        let aof = ["--store", &url, "--queued", "--redis-durability", "aof"];
        let receiver = ReceiverProcess::start(&aof, &env);
        says(&receiver, "redis durability: aof");
        let body = numero_body("evt_receiver_aof");
        let signature = harness::numero_signature(body.as_bytes());
        let reply = harness::post(
            &receiver.url("/webhooks/numero"),
            &[("x-webhook-signature", &signature)],
            body,
        )
        .await;
        assert_eq!(
            reply.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{}",
            reply.text()
        );

        for wrong in [
            vec!["--store", url.as_str(), "--redis-durability", "always"],
            vec!["--store", "memory", "--redis-durability", "aof"],
        ] {
            let (status, stderr) = run_to_end(&wrong, Duration::from_secs(20));
            assert!(!status.success(), "{wrong:?}");
            assert!(stderr.contains("--redis-durability"), "{wrong:?}: {stderr}");
        }
    })
    .await;
}
