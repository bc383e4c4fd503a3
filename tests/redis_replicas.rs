//! Replicas as real processes: the example receiver (`--store redis://…
//! --queued`) started twice as child processes on one `redis-server`, one
//! of them killed with SIGKILL in the middle of a handler.
//!
//! Needs the receiver binary: the first test builds it with `cargo build
//! --all-features --example receiver` (a no-op once built; see
//! `support/receiver_process.rs`).

#![cfg(feature = "redis")]

mod harness;
#[path = "support/receiver_admin.rs"]
mod receiver_admin;
#[path = "support/receiver_process.rs"]
mod receiver_process;
#[path = "support/redis_server.rs"]
mod redis_server;

use std::time::Duration;

use http::StatusCode;
use receiver_admin::{deliver, get_json, queue, until};
use receiver_process::ReceiverProcess;
use redis_server::RedisServer;

/// A queued receiver on `server` with `extra` flags.
fn replica(server: &RedisServer, extra: &[&str]) -> ReceiverProcess {
    let url = server.url();
    let mut args = vec!["--store", url.as_str(), "--queued", "--quiet"];
    args.extend_from_slice(extra);
    ReceiverProcess::start(&args, &[("NUMERO_WEBHOOK_SECRET", harness::NUMERO_SECRET)])
}

/// `GET /events` as `(id, attempt, status)`.
async fn events(replica: &ReceiverProcess) -> Vec<(String, u64, u64)> {
    let events = get_json(replica, "/events").await;
    events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["id"].as_str().unwrap().to_owned(),
                e["attempt"].as_u64().unwrap(),
                e["status"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Replica A takes a job and is killed with SIGKILL mid-handler; replica B
/// runs the job once A's lease runs out, as attempt 2, exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_mid_handler_is_taken_over_after_its_lease() {
    let server = RedisServer::start();
    let flags = ["--lease-ms", "1500", "--handler-delay-ms", "3000"];
    let a = replica(&server, &flags);
    let reply = deliver(&a, "evt_killed").await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text());
    // Only A runs a worker so far: once the job is running, A holds it.
    until("A to run the job", || async {
        (queue(&a).await == (0, 1, 0)).then_some(())
    })
    .await;
    let b = replica(&server, &flags);
    a.kill9();

    let runs = until("B's run", || async {
        let runs = events(&b).await;
        (!runs.is_empty()).then_some(runs)
    })
    .await;
    // Attempt 2: B took the job A had taken (attempt 1), which it can only
    // do once A's lease ran out.
    assert_eq!(runs, [("evt_killed".to_owned(), 2, 200)]);
    // The demo handler logs its run before it answers; the job is done
    // once the worker has recorded that answer.
    until("B to finish the job", || async {
        (queue(&b).await == (0, 0, 0)).then_some(())
    })
    .await;
    let copy = deliver(&b, "evt_killed").await;
    assert_eq!(copy.text(), r#"{"status":"duplicate"}"#);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(events(&b).await.len(), 1, "one run in total");
}

/// Two receiver processes, 100 concurrent copies of one event split across
/// them: one 202, 99 duplicates, one successful handler run in total.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_receiver_processes_run_one_of_a_hundred_copies() {
    let server = RedisServer::start();
    let replicas = [replica(&server, &[]), replica(&server, &[])];
    let urls = replicas.each_ref().map(|r| r.url("/webhooks/numero"));
    let body = harness::numero_body("evt_copies");
    let statuses = harness::queued::post_copies(&urls, &body, 100).await;
    assert_eq!(statuses.get(&202), Some(&1), "{statuses:?}");
    assert_eq!(statuses.get(&200), Some(&99), "{statuses:?}");
    let total = until("the handler run", || async {
        let mut runs = events(&replicas[0]).await;
        runs.extend(events(&replicas[1]).await);
        (!runs.is_empty()).then_some(runs)
    })
    .await;
    assert_eq!(total, [("evt_copies".to_owned(), 1, 200)]);
    until("an empty queue", || async {
        (queue(&replicas[1]).await == (0, 0, 0)).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let runs = events(&replicas[0]).await.len() + events(&replicas[1]).await.len();
    assert_eq!(runs, 1, "one run in total");
}
