//! Flow control in queued mode through real child receivers on memory,
//! SQLite and Redis: per-key order (`--order-by`), replicas sharing one
//! store, the cap per scheme across them (`--max-running-per-scheme`), a
//! handler that aborts its process (`--handler-abort-first`), and the bound
//! on pending jobs (`--max-pending`).
//!
//! Every run is read back from `GET /events`, whose `started_ms` and
//! `ended_ms` say which runs overlapped. Needs the receiver binary (built
//! on first use, see `support/receiver_process.rs`); the Redis cases need
//! `redis-server`.

mod harness;
#[path = "support/receiver_admin.rs"]
mod receiver_admin;
#[path = "support/receiver_process.rs"]
mod receiver_process;
#[cfg(feature = "redis")]
#[path = "support/redis_server.rs"]
mod redis_server;

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use http::StatusCode;
use receiver_admin::{deliver_body, get_json, until_within};
use receiver_process::ReceiverProcess;

/// Every wait ends by itself within this.
const PATIENCE: Duration = Duration::from_secs(40);

/// Events in the ordering cases, and the keys they are spread over.
const EVENTS: usize = 50;
const KEYS: usize = 5;

/// A signed Numero body for `id` whose order key (`/data/customer_id`) is
/// `customer`.
fn body(id: &str, customer: &str) -> String {
    let now = tower_webhook::sign::rfc3339(SystemTime::now());
    format!(
        r#"{{"id":"{id}","event":"TRANSFER_NOTIFICATION","created_at":"{now}","data":{{"customer_id":"{customer}","TrxAmount":1000.0}}}}"#
    )
}

fn start(store: &str, extra: &[&str]) -> ReceiverProcess {
    let mut args = vec!["--store", store, "--queued", "--quiet"];
    args.extend_from_slice(extra);
    ReceiverProcess::start(&args, &[("NUMERO_WEBHOOK_SECRET", harness::NUMERO_SECRET)])
}

async fn deliver(receiver: &ReceiverProcess, id: &str, customer: &str) -> harness::Reply {
    deliver_body(receiver, body(id, customer)).await
}

/// One handler run, as `GET /events` shows it.
#[derive(Debug, Clone)]
struct Run {
    id: String,
    attempt: u64,
    status: u64,
    started_ms: u64,
    ended_ms: u64,
}

async fn runs(receiver: &ReceiverProcess) -> Vec<Run> {
    let events = get_json(receiver, "/events").await;
    events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| Run {
            id: e["id"].as_str().unwrap().to_owned(),
            attempt: e["attempt"].as_u64().unwrap(),
            status: e["status"].as_u64().unwrap(),
            started_ms: e["started_ms"].as_u64().unwrap(),
            ended_ms: e["ended_ms"].as_u64().unwrap(),
        })
        .collect()
}

/// Polls every 50 ms until `check` holds, or fails after [`PATIENCE`].
async fn eventually<F: Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    until_within(what, PATIENCE, || {
        let holds = check();
        async move { holds.await.then_some(()) }
    })
    .await
}

/// The order key of event number `n`, and its id.
fn event(n: usize) -> (String, String) {
    (format!("evt_{n:03}"), format!("cust_{}", n % KEYS))
}

/// Flags of the ordering cases: every event's first attempt fails, retried
/// after 10 to 20 ms; each run takes 20 ms.
const ORDERED: &[&str] = &[
    "--order-by",
    "/data/customer_id",
    "--handler-fail-first",
    "1",
    "--retry-base-ms",
    "20",
    "--handler-delay-ms",
    "20",
    "--workers",
    "5",
];

/// Sends the [`EVENTS`] events one after another (so acceptance order is
/// their number), to `receivers` in turn; each is accepted.
async fn send_ordered(receivers: &[&ReceiverProcess]) {
    for n in 0..EVENTS {
        let (id, customer) = event(n);
        let reply = deliver(receivers[n % receivers.len()], &id, &customer).await;
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{id}: {}", reply.text());
    }
}

/// Waits until every event succeeded, on any of `receivers`, and returns
/// every run of them all.
async fn all_runs(receivers: &[&ReceiverProcess]) -> Vec<Run> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let mut seen = Vec::new();
        for receiver in receivers {
            seen.extend(runs(receiver).await);
        }
        let done = seen.iter().filter(|r| r.status == 200).count();
        if done == EVENTS {
            return seen;
        }
        assert!(Instant::now() < deadline, "{done} of {EVENTS} succeeded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Per key: the runs in the order they started are each event's failed
/// first attempt then its successful second, event after event in
/// acceptance order, and no run began before the previous one ended. Across
/// keys, some runs overlapped.
fn assert_ordered_per_key_and_parallel_across(mut all: Vec<Run>) {
    all.sort_by_key(|r| (r.started_ms, r.ended_ms));
    let mut by_key: BTreeMap<String, Vec<&Run>> = BTreeMap::new();
    for run in &all {
        let n: usize = run.id["evt_".len()..].parse().unwrap();
        by_key.entry(event(n).1).or_default().push(run);
    }
    assert_eq!(by_key.len(), KEYS);
    for (customer, runs) in &by_key {
        let seen: Vec<(&str, u64, u64)> = runs
            .iter()
            .map(|r| (r.id.as_str(), r.attempt, r.status))
            .collect();
        let ids: Vec<String> = (0..EVENTS)
            .map(event)
            .filter(|(_, c)| c == customer)
            .map(|(id, _)| id)
            .collect();
        let wanted: Vec<(&str, u64, u64)> = ids
            .iter()
            .flat_map(|id| [(id.as_str(), 1, 500), (id.as_str(), 2, 200)])
            .collect();
        assert_eq!(seen, wanted, "{customer}: runs in acceptance order");
        for pair in runs.windows(2) {
            assert!(
                pair[1].started_ms >= pair[0].ended_ms,
                "{customer}: {:?} began before {:?} ended",
                pair[1],
                pair[0]
            );
        }
    }
    let overlapped = all.windows(2).any(|pair| {
        let key = |r: &Run| event(r.id["evt_".len()..].parse().unwrap()).1;
        key(&pair[0]) != key(&pair[1]) && pair[1].started_ms < pair[0].ended_ms
    });
    assert!(overlapped, "runs of different keys overlapped: {all:?}");
}

async fn events_run_in_order_per_key(store: &str) {
    let receiver = start(store, ORDERED);
    send_ordered(&[&receiver]).await;
    let all = all_runs(&[&receiver]).await;
    assert_ordered_per_key_and_parallel_across(all);
}

/// Two receivers on one store, deliveries alternating between them: the
/// same order per key across both, and never two runs of one key at once.
async fn replicas_keep_one_run_per_key(store: &str) {
    let a = start(store, ORDERED);
    let b = start(store, ORDERED);
    send_ordered(&[&a, &b]).await;
    let all = all_runs(&[&a, &b]).await;
    let ran_on_b = runs(&b).await.len();
    assert!(
        ran_on_b > 0 && ran_on_b < all.len(),
        "both replicas ran jobs"
    );
    assert_ordered_per_key_and_parallel_across(all);
}

/// Two receivers with `--max-running-per-scheme 1` on one store: while
/// the first runs a slow job (1 s), the second, with free workers and five
/// jobs of its own due, starts none; across both, no two runs overlap.
async fn the_cap_per_scheme_holds_across_replicas(store: &str) {
    let capped = |delay: &'static str| {
        [
            "--max-running-per-scheme",
            "1",
            "--workers",
            "4",
            "--handler-delay-ms",
            delay,
        ]
    };
    let slow = start(store, &capped("1000"));
    let fast = start(store, &capped("20"));
    let reply = deliver(&slow, "evt_slow", "").await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    eventually("the slow job to run", || async {
        get_json(&slow, "/queue").await["running"] == 1
    })
    .await;
    for n in 0..5 {
        let id = format!("evt_{n:03}");
        assert_eq!(deliver(&fast, &id, "").await.status, StatusCode::ACCEPTED);
    }
    let deadline = Instant::now() + PATIENCE;
    let mut all = loop {
        let mut seen = runs(&slow).await;
        seen.extend(runs(&fast).await);
        if seen.len() == 6 {
            break seen;
        }
        assert!(Instant::now() < deadline, "{} of 6 ran", seen.len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    all.sort_by_key(|r| r.started_ms);
    assert_eq!(all[0].id, "evt_slow", "{all:?}");
    for pair in all.windows(2) {
        assert!(
            pair[1].started_ms >= pair[0].ended_ms,
            "{:?} began before {:?} ended",
            pair[1],
            pair[0]
        );
    }
}

/// Attempts before a dead letter in the poison case.
const MAX_ATTEMPTS: u32 = 3;

/// A handler that aborts its process on every attempt of one event: after
/// `--max-attempts` crashes and restarts, the next start makes that event a
/// dead letter ("attempt 3 did not return") without running it, and every
/// other event, accepted before or between the crashes, ran.
async fn a_poisonous_event_becomes_a_dead_letter(store: &str) {
    let max = MAX_ATTEMPTS.to_string();
    let flags = [
        "--handler-abort-first",
        "1000",
        "--handler-abort-id",
        "evt_poison",
        "--max-attempts",
        max.as_str(),
        // Long enough that a restarted receiver is up and has answered
        // the bystanders before the poisonous job's lease runs out and it
        // crashes again, even on a loaded machine.
        "--lease-ms",
        "5000",
        "--workers",
        "1",
    ];
    let mut others = Vec::new();
    let mut receiver = start(store, &flags);
    assert_eq!(
        deliver(&receiver, "evt_poison", "c").await.status,
        StatusCode::ACCEPTED
    );
    for crash in 1..=MAX_ATTEMPTS {
        let exit = tokio::task::block_in_place(|| receiver.wait_exit(PATIENCE));
        assert!(exit.is_some_and(|s| !s.success()), "crash {crash}");
        receiver = start(store, &flags);
        // Run before the poisonous job's lease runs out.
        for n in 0..2 {
            let id = format!("evt_bystander_{crash}_{n}");
            assert_eq!(
                deliver(&receiver, &id, "c").await.status,
                StatusCode::ACCEPTED
            );
            others.push(id);
        }
    }
    let deadline = Instant::now() + PATIENCE;
    let letter = loop {
        let letters = get_json(&receiver, "/dead-letters").await;
        if !letters[0].is_null() {
            break letters[0].clone();
        }
        assert!(Instant::now() < deadline, "no dead letter");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(letter["id"], "evt_poison");
    let error = letter["last_error"].as_str().unwrap();
    assert!(
        error.contains(&format!("attempt {MAX_ATTEMPTS} did not return")),
        "{error}"
    );
    assert_eq!(
        receiver.wait_exit(Duration::from_millis(500)),
        None,
        "alive"
    );
    eventually("the bystanders to be done", || {
        let receiver = &receiver;
        async move {
            let q = get_json(receiver, "/queue").await;
            (&q["pending"], &q["running"], &q["dead"]) == (&0.into(), &0.into(), &1.into())
        }
    })
    .await;
    // Done, not lost: each copy is a duplicate, and none ran at its first
    // attempt in vain (every run of this process succeeded).
    for id in &others {
        let reply = deliver(&receiver, id, "c").await;
        assert_eq!(reply.status, StatusCode::OK, "{id}: {}", reply.text());
    }
    assert!(runs(&receiver).await.iter().all(|r| r.status == 200));
}

/// Past `--max-pending 3` (one worker, 300 ms per run) a delivery gets 503
/// `queue_full` with `Retry-After`; every accepted event still runs, and
/// the refused one is accepted once the queue has drained.
async fn past_max_pending_intake_answers_503(store: &str) {
    let receiver = start(
        store,
        &[
            "--max-pending",
            "3",
            "--workers",
            "1",
            "--handler-delay-ms",
            "300",
        ],
    );
    let mut accepted = Vec::new();
    let mut refused = None;
    for n in 0..20 {
        let id = format!("evt_{n:03}");
        let reply = deliver(&receiver, &id, "c").await;
        match reply.status {
            StatusCode::ACCEPTED => accepted.push(id),
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(reply.error(), "queue_full");
                assert!(reply.headers.contains_key(http::header::RETRY_AFTER));
                refused = Some(id);
                break;
            }
            other => panic!("{id}: {other} {}", reply.text()),
        }
    }
    let refused = refused.expect("a delivery past the bound is refused");
    assert!(accepted.len() >= 3, "{accepted:?}");
    eventually("every accepted event to run", || {
        let (receiver, accepted) = (&receiver, &accepted);
        async move {
            let ran = runs(receiver).await;
            accepted
                .iter()
                .all(|id| ran.iter().any(|r| r.id == *id && r.status == 200))
        }
    })
    .await;
    let deadline = Instant::now() + PATIENCE;
    let again = loop {
        let reply = deliver(&receiver, &refused, "c").await;
        if reply.status != StatusCode::SERVICE_UNAVAILABLE {
            break reply.status;
        }
        assert!(Instant::now() < deadline, "still refused");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(again, StatusCode::ACCEPTED, "nothing was recorded");
}

mod memory {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fifty_events_over_five_keys_run_in_order_per_key() {
        super::events_run_in_order_per_key("memory").await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn past_max_pending_intake_answers_503_and_accepted_events_run() {
        super::past_max_pending_intake_answers_503("memory").await;
    }
}

mod sqlite {
    use super::harness::TempDir;

    fn store(dir: &TempDir) -> String {
        format!("sqlite:{}", dir.join("flow.db").display())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fifty_events_over_five_keys_run_in_order_per_key() {
        let dir = TempDir::new();
        super::events_run_in_order_per_key(&store(&dir)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_processes_on_one_file_never_run_two_jobs_of_a_key_at_once() {
        let dir = TempDir::new();
        super::replicas_keep_one_run_per_key(&store(&dir)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_processes_on_one_file_keep_the_cap_per_scheme() {
        let dir = TempDir::new();
        super::the_cap_per_scheme_holds_across_replicas(&store(&dir)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_aborting_handler_becomes_a_dead_letter_after_max_attempts_restarts() {
        let dir = TempDir::new();
        super::a_poisonous_event_becomes_a_dead_letter(&store(&dir)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn past_max_pending_intake_answers_503_and_accepted_events_run() {
        let dir = TempDir::new();
        super::past_max_pending_intake_answers_503(&store(&dir)).await;
    }
}

#[cfg(feature = "redis")]
mod redis {
    use super::redis_server::RedisServer;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fifty_events_over_five_keys_run_in_order_per_key() {
        let server = RedisServer::start();
        super::events_run_in_order_per_key(&server.url()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_replicas_never_run_two_jobs_of_a_key_at_once() {
        let server = RedisServer::start();
        super::replicas_keep_one_run_per_key(&server.url()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_replicas_keep_the_cap_per_scheme() {
        let server = RedisServer::start();
        super::the_cap_per_scheme_holds_across_replicas(&server.url()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_aborting_handler_becomes_a_dead_letter_after_max_attempts_restarts() {
        let server = RedisServer::start();
        super::a_poisonous_event_becomes_a_dead_letter(&server.url()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn past_max_pending_intake_answers_503_and_accepted_events_run() {
        let server = RedisServer::start();
        super::past_max_pending_intake_answers_503(&server.url()).await;
    }
}
