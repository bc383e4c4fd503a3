//! What only `RedisStore` has, against a real `redis-server` (started by
//! each test on a free 127.0.0.1 port): its keys as Redis holds them,
//! prefixes, foreign values, timeouts, the eviction policy, Redis going
//! down (fail closed, fail open), and two real receivers sharing it. What
//! every backend promises (claims, leases, expiry) is in
//! `tests/conformance/`.

#![cfg(feature = "redis")]

#[path = "support/redis_server.rs"]
mod redis_server;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use redis_server::RedisServer;
use tokio::task::JoinHandle;
use tokio::time::{sleep, timeout};
use tower_webhook::numero::{Numero, NumeroEvent};
use tower_webhook::store::redis::{DEFAULT_PREFIX, EvictionPolicy, RedisLease};
use tower_webhook::{
    Claim, EventId, IdempotencyKey, IdempotencyStore, RedisStore, VerifiedEvent, WebhookLayer,
};

const SECRET: &str = "whsec_abcdefghijklmnopqrstuvwxyz123456789";
const LONG: Duration = Duration::from_secs(3600);
/// Every test ends within this, or fails.
const TEST_LIMIT: Duration = Duration::from_secs(60);

fn key(id: &str) -> IdempotencyKey {
    IdempotencyKey::new("numero", &EventId::new(id).unwrap())
}

async fn store(server: &RedisServer) -> RedisStore {
    RedisStore::connect(&server.url()).await.unwrap()
}

/// A fresh server and a default store on it.
async fn started() -> (RedisServer, RedisStore) {
    let server = RedisServer::start();
    let store = store(&server).await;
    (server, store)
}

fn is_new<L>(claim: &Claim<L>) -> bool {
    matches!(claim, Claim::New(_))
}

// --- the store on its own ----------------------------------------------------

/// A claim is a plain Redis key under the prefix; completed, it holds
/// `done` with the done TTL as its expiry, as any other client reads it.
#[tokio::test]
async fn a_done_mark_is_a_plain_key_under_the_prefix_with_its_ttl() {
    within_limit(async {
        let (server, store) = started().await;
        let k = key("evt_cycle");
        let lease = claim_new(&store, &k, LONG).await;
        assert!(lease.is_recorded());
        assert_eq!(lease.key(), format!("{DEFAULT_PREFIX}numero:evt_cycle"));
        assert_eq!(store.status(&k).await.unwrap(), Some(false));
        store.complete(lease, LONG).await.unwrap();
        assert_eq!(store.status(&k).await.unwrap(), Some(true));

        let reply = server
            .command(&["GET", &format!("{DEFAULT_PREFIX}numero:evt_cycle")])
            .unwrap();
        assert_eq!(reply, "$4\r\ndone\r\n");
        let ttl = server
            .command(&["PTTL", &format!("{DEFAULT_PREFIX}numero:evt_cycle")])
            .unwrap();
        let ttl: i64 = ttl.trim_start_matches(':').trim().parse().unwrap();
        assert!(
            ttl > 3_500_000 && ttl <= 3_600_000,
            "done TTL is set: {ttl}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_renewed_claim_outlives_its_lease_and_only_its_holder_renews() {
    within_limit(async {
        let (server, store) = started().await;
        let k = key("evt_renew");
        let pttl = || {
            let reply = server
                .command(&["PTTL", &format!("{DEFAULT_PREFIX}numero:evt_renew")])
                .unwrap();
            reply.trim_start_matches(':').trim().parse::<i64>().unwrap()
        };
        let lease = claim_new(&store, &k, Duration::from_millis(300)).await;
        assert!(store.renew_claim(&lease, LONG).await.unwrap());
        assert!(pttl() > 3_500_000, "the key's expiry moved");
        sleep(Duration::from_millis(500)).await;
        assert_eq!(store.status(&k).await.unwrap(), Some(false), "still held");
        store.complete(lease, LONG).await.unwrap();

        let (k, stale, newer) = stale_and_newer(&store, "evt_renew_stale").await;
        assert!(
            !store.renew_claim(&stale, LONG).await.unwrap(),
            "taken over"
        );
        assert!(store.renew_claim(&newer, LONG).await.unwrap());
        store.complete(newer, LONG).await.unwrap();
        assert!(!store.renew_claim(&stale, LONG).await.unwrap(), "done");
        assert_eq!(store.status(&k).await.unwrap(), Some(true));
    })
    .await;
}

/// A claim dropped while Redis holds its `SET` back (the client went away)
/// takes its claim back once Redis runs it.
#[tokio::test]
async fn a_claim_dropped_mid_flight_leaves_no_orphan() {
    within_limit(async {
        let (server, store) = started().await;
        let k = key("evt_dropped");
        store.status(&k).await.unwrap(); // connected
        server
            .command(&["CLIENT", "PAUSE", "300", "WRITE"])
            .unwrap();
        let gave_up = timeout(Duration::from_millis(50), store.claim(&k, LONG)).await;
        assert!(gave_up.is_err(), "the paused SET cannot answer yet");
        sleep(Duration::from_millis(500)).await;
        assert_eq!(store.status(&k).await.unwrap(), None, "no orphaned claim");
        assert!(is_new(&store.claim(&k, LONG).await.unwrap()));
    })
    .await;
}

#[tokio::test]
async fn prefixes_separate_deployments() {
    within_limit(async {
        let server = RedisServer::start();
        let a = RedisStore::builder()
            .prefix("a:")
            .connect(&server.url())
            .await
            .unwrap();
        let b = RedisStore::builder()
            .prefix("b:")
            .connect(&server.url())
            .await
            .unwrap();
        let k = key("evt_shared_id");
        assert_eq!(a.redis_key(&k), "a:numero:evt_shared_id");
        let lease = claim_new(&a, &k, LONG).await;
        a.complete(lease, LONG).await.unwrap();
        assert!(is_new(&b.claim(&k, LONG).await.unwrap()));
        assert_eq!(
            server
                .command(&["EXISTS", "a:numero:evt_shared_id"])
                .unwrap(),
            ":1\r\n"
        );
    })
    .await;
}

#[tokio::test]
async fn a_key_holding_a_foreign_value_is_an_error_not_a_guess() {
    within_limit(async {
        let (server, store) = started().await;
        let k = key("evt_foreign");
        server
            .command(&["SET", &store.redis_key(&k), "something-else"])
            .unwrap();
        let error = store.claim(&k, LONG).await.unwrap_err();
        assert!(error.to_string().contains("unexpected value"), "{error}");
        assert_eq!(
            error.kind(),
            tower_webhook::StoreErrorKind::Corrupt,
            "{error}"
        );
    })
    .await;
}

#[tokio::test]
async fn every_call_is_bounded_by_the_timeout() {
    within_limit(async {
        // Something that accepts connections and never answers.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = silent.local_addr().unwrap();
        let held = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((socket, _)) = silent.accept().await {
                open.push(socket);
            }
        });
        let store = RedisStore::builder()
            .timeout(Duration::from_millis(200))
            .connect_lazy(&format!("redis://{addr}/"))
            .unwrap();
        let started = tokio::time::Instant::now();
        let error = store.claim(&key("evt_slow"), LONG).await.unwrap_err();
        let took = started.elapsed();
        assert!(error.to_string().contains("timed out"), "{error}");
        assert_eq!(error.kind(), tower_webhook::StoreErrorKind::TimedOut);
        assert!(
            took >= Duration::from_millis(190) && took < Duration::from_millis(1500),
            "{took:?}"
        );

        let connect = RedisStore::builder()
            .timeout(Duration::from_millis(200))
            .connect(&format!("redis://{addr}/"))
            .await;
        let connect = connect.expect_err("connect is bounded too");
        assert_eq!(connect.kind(), tower_webhook::StoreErrorKind::TimedOut);
        held.abort();
    })
    .await;
}

#[tokio::test]
async fn eviction_policy_is_checked() {
    within_limit(async {
        let (server, store) = started().await;
        assert_eq!(
            store.check_eviction_policy().await.unwrap(),
            EvictionPolicy::NoEviction
        );
        server
            .command(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"])
            .unwrap();
        assert_eq!(
            store.check_eviction_policy().await.unwrap(),
            EvictionPolicy::MayEvict("allkeys-lru".into())
        );

        // Managed Redis often disables CONFIG.
        let locked = RedisServer::start_with(&["--rename-command", "CONFIG", ""]);
        let store = RedisStore::connect(&locked.url()).await.unwrap();
        assert_eq!(
            store.check_eviction_policy().await.unwrap(),
            EvictionPolicy::Unknown
        );
        // The store still works there.
        assert!(is_new(
            &store.claim(&key("evt_locked"), LONG).await.unwrap()
        ));
    })
    .await;
}

/// The first claim warns through `tracing` when Redis may evict keys.
#[tokio::test(flavor = "current_thread")]
async fn first_claim_warns_when_keys_can_be_evicted() {
    within_limit(async {
        let server = RedisServer::start_with(&["--maxmemory-policy", "volatile-lru"]);
        let warnings = Arc::new(Mutex::new(Vec::new()));
        // current_thread: the background check runs on this thread, under
        // this subscriber.
        let _guard = tracing::subscriber::set_default(capture::Warnings(Arc::clone(&warnings)));
        let store = store(&server).await;
        assert!(is_new(&store.claim(&key("evt_warn"), LONG).await.unwrap()));
        wait_for(|| async { !warnings.lock().unwrap().is_empty() }).await;
        let text = warnings.lock().unwrap().join("\n");
        assert!(text.contains("volatile-lru"), "{text}");
        assert!(text.contains("noeviction"), "{text}");
        // Once only.
        assert!(is_new(
            &store.claim(&key("evt_warn_2"), LONG).await.unwrap()
        ));
        sleep(Duration::from_millis(100)).await;
        assert_eq!(warnings.lock().unwrap().len(), 1);
    })
    .await;
}

// --- real receivers ----------------------------------------------------------

/// A receiver on 127.0.0.1: `POST /webhook` behind its own layer and
/// store, `GET /health` outside it.
struct Receiver {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Clone, Default)]
struct Handler {
    runs: Arc<AtomicUsize>,
    delay: Duration,
}

async fn receiver(store: RedisStore, handler: Handler) -> Receiver {
    leased_receiver(store, handler, tower_webhook::DEFAULT_LEASE).await
}

/// As [`receiver`], with claims leased for `lease`.
async fn leased_receiver(store: RedisStore, handler: Handler, lease: Duration) -> Receiver {
    let layer = WebhookLayer::builder(Numero)
        .secret(SECRET)
        .lease(lease)
        .store(store)
        .retry_after(Duration::from_secs(2))
        .build()
        .unwrap();
    let on_event = move |VerifiedEvent(_event): VerifiedEvent<NumeroEvent>| {
        let handler = handler.clone();
        async move {
            sleep(handler.delay).await;
            handler.runs.fetch_add(1, Ordering::SeqCst);
            (StatusCode::OK, "processed")
        }
    };
    let app = Router::new()
        .route("/webhook", post(on_event).layer(layer))
        .route("/health", get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Receiver { addr, task }
}

/// One receiver with its own fail-closed or fail-open store (300 ms
/// timeout), and the count of its handler's runs.
struct Replica {
    runs: Arc<AtomicUsize>,
    store: RedisStore,
    app: Receiver,
}

async fn replica(server: &RedisServer, delay: Duration, fail_open: bool) -> Replica {
    let runs = Arc::new(AtomicUsize::new(0));
    let handler = Handler {
        runs: Arc::clone(&runs),
        delay,
    };
    let store = RedisStore::builder()
        .timeout(Duration::from_millis(300))
        .fail_open(fail_open)
        .connect(&server.url())
        .await
        .unwrap();
    let app = receiver(store.clone(), handler).await;
    Replica { runs, store, app }
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

fn event_body(id: &str) -> String {
    format!(r#"{{"id":"{id}","event":"PAYOUT_NOTIFICATION","data":{{"amount":5000.00}}}}"#)
}

struct Answer {
    status: StatusCode,
    retry_after: Option<String>,
    body: String,
}

async fn deliver(client: &HttpClient, addr: SocketAddr, id: &str) -> Answer {
    let body = event_body(id);
    let signature = tower_webhook::numero::sign(SECRET.as_bytes(), body.as_bytes());
    let request = Request::post(format!("http://{addr}/webhook"))
        .header("x-webhook-signature", signature)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let response = client.request(request).await.unwrap();
    let status = response.status();
    let retry_after = response
        .headers()
        .get(header::RETRY_AFTER)
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        retry_after,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

async fn health(client: &HttpClient, addr: SocketAddr) -> StatusCode {
    let request = Request::get(format!("http://{addr}/health"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    client.request(request).await.unwrap().status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_receivers_sharing_redis_run_one_event_once() {
    within_limit(async {
        let server = RedisServer::start();
        let runs = Arc::new(AtomicUsize::new(0));
        let handler = Handler {
            runs: Arc::clone(&runs),
            delay: Duration::from_millis(100),
        };
        // Two separate stores and layers: two replicas.
        let a = receiver(store(&server).await, handler.clone()).await;
        let b = receiver(store(&server).await, handler).await;
        let client = client();

        let deliveries: Vec<_> = (0..100)
            .map(|i| {
                let client = client.clone();
                let addr = if i % 2 == 0 { a.addr } else { b.addr };
                tokio::spawn(async move { deliver(&client, addr, "evt_shared").await })
            })
            .collect();
        let mut processed = 0;
        let mut duplicates = 0;
        let mut in_flight = 0;
        for delivery in deliveries {
            let answer = delivery.await.unwrap();
            match (answer.status, answer.body.as_str()) {
                (StatusCode::OK, "processed") => processed += 1,
                (StatusCode::OK, r#"{"status":"duplicate"}"#) => duplicates += 1,
                (StatusCode::CONFLICT, _) => {
                    assert_eq!(answer.retry_after.as_deref(), Some("2"));
                    in_flight += 1;
                }
                (status, body) => panic!("unexpected answer {status} {body}"),
            }
        }
        assert_eq!(
            runs.load(Ordering::SeqCst),
            1,
            "the handler ran once in total"
        );
        assert_eq!(processed, 1);
        assert_eq!(processed + duplicates + in_flight, 100);
        println!("1 processed, {duplicates} duplicates, {in_flight} in flight");

        // Both replicas now see it as done.
        for addr in [a.addr, b.addr] {
            let answer = deliver(&client, addr, "evt_shared").await;
            assert_eq!(answer.status, StatusCode::OK);
            assert_eq!(answer.body, r#"{"status":"duplicate"}"#);
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    })
    .await;
}

/// A handler slower than three leases keeps its claim in Redis: the layer
/// renews it while the handler runs, so copies sent to another replica after
/// the first lease would have expired are 409 in flight, and the handler
/// runs once across both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_slower_than_its_lease_keeps_its_claim_across_replicas() {
    within_limit(async {
        let server = RedisServer::start();
        let lease = Duration::from_millis(1500);
        let runs = Arc::new(AtomicUsize::new(0));
        let handler = Handler {
            runs: Arc::clone(&runs),
            delay: lease * 5,
        };
        let a = leased_receiver(store(&server).await, handler.clone(), lease).await;
        let b = leased_receiver(store(&server).await, handler, lease).await;
        let client = client();
        let first = {
            let (client, addr) = (client.clone(), a.addr);
            tokio::spawn(async move { deliver(&client, addr, "evt_slow").await })
        };
        let (k, watcher) = (key("evt_slow"), store(&server).await);
        wait_for(|| async { watcher.status(&k).await.unwrap() == Some(false) }).await;
        for wait in [lease * 3 / 2, lease * 2] {
            sleep(wait).await;
            let copy = deliver(&client, b.addr, "evt_slow").await;
            assert_eq!(copy.status, StatusCode::CONFLICT, "{}", copy.body);
            assert_eq!(watcher.status(&k).await.unwrap(), Some(false));
        }
        let first = first.await.unwrap();
        assert_eq!(
            (first.status, first.body.as_str()),
            (StatusCode::OK, "processed")
        );
        assert_eq!(runs.load(Ordering::SeqCst), 1, "the handler ran once");
        assert_eq!(watcher.status(&k).await.unwrap(), Some(true));
    })
    .await;
}

/// A claim lost while its handler runs (its key deleted behind the layer's
/// back, then taken by another replica): the handler runs on and its answer
/// goes to the sender, but its completion does not mark the newer claim's
/// key done; the newer claim's handler decides.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_claim_lets_its_handler_finish_without_touching_the_newer_claim() {
    within_limit(async {
        let server = RedisServer::start();
        let lease = Duration::from_millis(600);
        let slow = |delay| Handler {
            runs: Arc::new(AtomicUsize::new(0)),
            delay,
        };
        let a = leased_receiver(store(&server).await, slow(lease * 3), lease).await;
        let b = leased_receiver(store(&server).await, slow(lease * 6), lease).await;
        let client = client();
        let send = |addr| {
            let client = client.clone();
            tokio::spawn(async move { deliver(&client, addr, "evt_lost").await })
        };
        let (k, watcher) = (key("evt_lost"), store(&server).await);
        let first = send(a.addr);
        wait_for(|| async { watcher.status(&k).await.unwrap() == Some(false) }).await;
        server
            .command(&["DEL", &format!("{DEFAULT_PREFIX}numero:evt_lost")])
            .unwrap();
        let second = send(b.addr);
        let first = first.await.unwrap();
        assert_eq!(
            (first.status, first.body.as_str()),
            (StatusCode::OK, "processed")
        );
        assert_eq!(
            watcher.status(&k).await.unwrap(),
            Some(false),
            "the lost claim's completion left the newer claim in flight"
        );
        let second = second.await.unwrap();
        assert_eq!(
            (second.status, second.body.as_str()),
            (StatusCode::OK, "processed")
        );
        assert_eq!(watcher.status(&k).await.unwrap(), Some(true));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_means_503_then_the_retry_is_processed() {
    within_limit(async {
        let mut server = RedisServer::start_persistent();
        let Replica { runs, store, app } = replica(&server, Duration::ZERO, false).await;
        let client = client();

        let answer = deliver(&client, app.addr, "evt_before").await;
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (StatusCode::OK, "processed")
        );

        server.stop();
        for _ in 0..3 {
            let answer = deliver(&client, app.addr, "evt_during").await;
            assert_eq!(
                answer.status,
                StatusCode::SERVICE_UNAVAILABLE,
                "{}",
                answer.body
            );
            assert_eq!(answer.retry_after.as_deref(), Some("2"));
            assert_eq!(
                health(&client, app.addr).await,
                StatusCode::OK,
                "still serving"
            );
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1, "the handler did not run");

        server.restart();
        // Nothing was marked done, and the earlier event still is.
        let status = retry(|| async { store.status(&key("evt_during")).await }).await;
        assert_eq!(status, None);
        let answer = deliver(&client, app.addr, "evt_before").await;
        assert_eq!(answer.body, r#"{"status":"duplicate"}"#, "data survived");

        // The sender's retry is processed once the store reconnected.
        let answer = retry_until_not_503(&client, app.addr, "evt_during").await;
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (StatusCode::OK, "processed")
        );
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        assert_eq!(store.status(&key("evt_during")).await.unwrap(), Some(true));
    })
    .await;
}

/// Redis dies while the handler runs: the handler's 200 still goes back,
/// and the key is left in flight (not done) until its lease runs out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_dying_mid_request_keeps_the_handlers_answer() {
    within_limit(async {
        let mut server = RedisServer::start_persistent();
        let Replica { runs, store, app } =
            replica(&server, Duration::from_millis(500), false).await;
        let client = client();

        let pending = {
            let client = client.clone();
            let addr = app.addr;
            tokio::spawn(async move { deliver(&client, addr, "evt_mid").await })
        };
        sleep(Duration::from_millis(200)).await;
        server.stop();
        let answer = pending.await.unwrap();
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (StatusCode::OK, "processed")
        );
        assert_eq!(runs.load(Ordering::SeqCst), 1);

        server.restart();
        let status = retry(|| async { store.status(&key("evt_mid")).await }).await;
        assert_eq!(status, Some(false), "in flight, not done");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_open_runs_the_handler_while_redis_is_down() {
    within_limit(async {
        let mut server = RedisServer::start();
        let Replica { runs, store, app } = replica(&server, Duration::ZERO, true).await;
        let client = client();

        let answer = deliver(&client, app.addr, "evt_open").await;
        assert_eq!(answer.body, "processed");
        let answer = deliver(&client, app.addr, "evt_open").await;
        assert_eq!(
            answer.body, r#"{"status":"duplicate"}"#,
            "deduplicates while up"
        );

        server.stop();
        // The documented risk: no deduplication while Redis is down.
        for _ in 0..2 {
            let answer = deliver(&client, app.addr, "evt_open_down").await;
            assert_eq!(
                (answer.status, answer.body.as_str()),
                (StatusCode::OK, "processed")
            );
        }
        assert_eq!(runs.load(Ordering::SeqCst), 3);

        // A claim the store failed open on still completes best effort once
        // Redis is back.
        server.restart();
        retry(|| async { store.status(&key("evt_late")).await }).await;
        let Claim::New(lease) = store.claim(&key("evt_late"), LONG).await.unwrap() else {
            panic!()
        };
        assert!(lease.is_recorded());
        store.complete(lease, LONG).await.unwrap();
        assert!(matches!(
            store.claim(&key("evt_late"), LONG).await.unwrap(),
            Claim::Done
        ));
    })
    .await;
}

// --- helpers -----------------------------------------------------------------

/// Claims `k`, which must be new.
async fn claim_new(store: &RedisStore, k: &IdempotencyKey, lease: Duration) -> RedisLease {
    match store.claim(k, lease).await.unwrap() {
        Claim::New(lease) => lease,
        other => panic!("expected a new claim of {k}, got {other:?}"),
    }
}

async fn stale_and_newer(store: &RedisStore, id: &str) -> (IdempotencyKey, RedisLease, RedisLease) {
    let k = key(id);
    let stale = claim_new(store, &k, Duration::from_millis(50)).await;
    sleep(Duration::from_millis(150)).await;
    let newer = claim_new(store, &k, LONG).await;
    (k, stale, newer)
}

async fn within_limit(test: impl Future<Output = ()>) {
    timeout(TEST_LIMIT, test).await.expect("test timed out");
}

async fn retry_until_not_503(client: &HttpClient, addr: SocketAddr, id: &str) -> Answer {
    for _ in 0..100 {
        let answer = deliver(client, addr, id).await;
        if answer.status != StatusCode::SERVICE_UNAVAILABLE {
            return answer;
        }
        sleep(Duration::from_millis(100)).await;
    }
    panic!("the store never came back");
}

async fn retry<T, E: std::fmt::Display, F, Fut>(call: F) -> T
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut last = String::new();
    for _ in 0..100 {
        match call().await {
            Ok(value) => return value,
            Err(e) => last = e.to_string(),
        }
        sleep(Duration::from_millis(100)).await;
    }
    panic!("never succeeded: {last}");
}

async fn wait_for<F, Fut>(condition: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = bool>,
{
    for _ in 0..200 {
        if condition().await {
            return;
        }
        sleep(Duration::from_millis(10)).await;
    }
    panic!("condition never held");
}

/// A `tracing` subscriber that keeps the text of every warning.
mod capture {
    use std::fmt::Write as _;
    use std::sync::{Arc, Mutex};

    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Level, Metadata, Subscriber};

    pub struct Warnings(pub Arc<Mutex<Vec<String>>>);

    struct Text(String);

    impl Visit for Text {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            let _ = write!(self.0, "{}={value:?} ", field.name());
        }
    }

    impl Subscriber for Warnings {
        fn enabled(&self, metadata: &Metadata<'_>) -> bool {
            *metadata.level() <= Level::WARN
        }
        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &Event<'_>) {
            if *event.metadata().level() == Level::WARN {
                let mut text = Text(String::new());
                event.record(&mut text);
                self.0.lock().unwrap().push(text.0);
            }
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }
}
