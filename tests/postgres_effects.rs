//! Exactly-once effects on Postgres, seen by counting rows: the example
//! receiver (`--store postgres://…`) as real child processes on a real
//! Postgres server of each test's own; its demo handler writes one row
//! into `demo_effects` in the delivery's transaction. Processes are killed
//! with SIGKILL, the server is stopped and started, the effect's statement
//! is made to fail, and each event still leaves exactly one row.
//!
//! Needs the receiver binary: the first test builds it with `cargo build
//! --all-features --example receiver` (see `support/receiver_process.rs`).

#![cfg(feature = "postgres")]

mod harness;
#[path = "support/postgres_server.rs"]
mod postgres_server;
#[path = "support/receiver_admin.rs"]
mod receiver_admin;
#[path = "support/receiver_process.rs"]
mod receiver_process;

use http::StatusCode;
use postgres_server::PostgresServer;
use receiver_admin::{deliver, get_json, queue, until};
use receiver_process::ReceiverProcess;
use sqlx::PgPool;

/// A receiver on `server`'s database with `extra` flags.
fn receiver(server: &PostgresServer, extra: &[&str]) -> ReceiverProcess {
    let url = server.url();
    let mut args = vec!["--store", url.as_str(), "--quiet"];
    args.extend_from_slice(extra);
    ReceiverProcess::start(&args, &[("NUMERO_WEBHOOK_SECRET", harness::NUMERO_SECRET)])
}

async fn pool(server: &PostgresServer) -> PgPool {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(&server.url())
        .await
        .unwrap()
}

/// The committed `demo_effects` rows of `id`, as their attempt numbers.
async fn effects(db: &PgPool, id: &str) -> Vec<i32> {
    sqlx::query_scalar("SELECT attempt FROM demo_effects WHERE event_id = $1 ORDER BY at")
        .bind(id)
        .fetch_all(db)
        .await
        .unwrap()
}

/// Whether some open transaction has inserted into `demo_effects` and not
/// committed yet: a handler is between its write and its answer.
async fn effect_uncommitted(db: &PgPool) -> bool {
    let held: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
         WHERE c.relname = 'demo_effects' AND l.mode = 'RowExclusiveLock'",
    )
    .fetch_one(db)
    .await
    .unwrap();
    held > 0
}

/// (a) A queued receiver is killed with SIGKILL while its handlers wait,
/// their rows written but not committed; a restarted receiver runs the
/// jobs again after the lease: one row per event, from the second attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_killed_after_writing_its_effects_leaves_one_row_per_event() {
    let server = PostgresServer::start();
    let flags = [
        "--queued",
        "--lease-ms",
        "1500",
        "--handler-delay-ms",
        "3000",
    ];
    let a = receiver(&server, &flags);
    let db = pool(&server).await;
    let ids = ["evt_killed_1", "evt_killed_2", "evt_killed_3"];
    for id in ids {
        let reply = deliver(&a, id).await;
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text());
    }
    until("A's handlers to run", || async {
        (queue(&a).await == (0, 3, 0)).then_some(())
    })
    .await;
    until("A's effects to be written", || async {
        effect_uncommitted(&db).await.then_some(())
    })
    .await;
    a.kill9();
    for id in ids {
        assert!(effects(&db, id).await.is_empty(), "nothing committed yet");
    }

    let b = receiver(&server, &flags);
    for id in ids {
        let rows = until("B's effects", || async {
            let rows = effects(&db, id).await;
            (!rows.is_empty()).then_some(rows)
        })
        .await;
        assert_eq!(rows, [2], "{id}: one row, from B's attempt");
    }
    until("B to finish", || async {
        (queue(&b).await == (0, 0, 0)).then_some(())
    })
    .await;
    for id in ids {
        let copy = deliver(&b, id).await;
        assert_eq!(copy.text(), r#"{"status":"duplicate"}"#);
        assert_eq!(effects(&db, id).await, [2], "{id}: still one row");
    }
}

/// (b) 100 concurrent copies of one event across two receivers on one
/// database: one row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_copies_across_two_receivers_leave_one_row() {
    let server = PostgresServer::start();
    let receivers = [
        receiver(&server, &["--queued"]),
        receiver(&server, &["--queued"]),
    ];
    let db = pool(&server).await;
    let urls = receivers.each_ref().map(|r| r.url("/webhooks/numero"));
    let body = harness::numero_body("evt_copies");
    let statuses = harness::queued::post_copies(&urls, &body, 100).await;
    assert_eq!(statuses.get(&202), Some(&1), "{statuses:?}");
    assert_eq!(statuses.get(&200), Some(&99), "{statuses:?}");
    until("the effect", || async {
        (!effects(&db, "evt_copies").await.is_empty()).then_some(())
    })
    .await;
    until("an empty queue", || async {
        (queue(&receivers[1]).await == (0, 0, 0)).then_some(())
    })
    .await;
    assert_eq!(effects(&db, "evt_copies").await, [1]);
}

/// (c) Postgres stopped: intake answers 503 with `Retry-After` and
/// accepts nothing; started again: the next delivery is processed once,
/// by the same receiver process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_away_is_503_and_back_is_processed_once_without_a_restart() {
    let mut server = PostgresServer::start();
    let r = receiver(&server, &["--queued"]);
    let pid = r.pid();
    server.stop();
    let reply = deliver(&r, "evt_away").await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.text()
    );
    assert!(reply.headers.contains_key("retry-after"));
    server.restart();
    let db = pool(&server).await;
    assert!(
        effects(&db, "evt_away").await.is_empty(),
        "nothing accepted"
    );
    let reply = until("a 202 from the same receiver", || async {
        let reply = deliver(&r, "evt_away").await;
        (reply.status != StatusCode::SERVICE_UNAVAILABLE).then_some(reply)
    })
    .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text());
    until("the effect", || async {
        (!effects(&db, "evt_away").await.is_empty()).then_some(())
    })
    .await;
    until("an empty queue", || async {
        (queue(&r).await == (0, 0, 0)).then_some(())
    })
    .await;
    assert_eq!(effects(&db, "evt_away").await, [1]);
    assert_eq!(r.pid(), pid);
    let copy = deliver(&r, "evt_away").await;
    assert_eq!(copy.text(), r#"{"status":"duplicate"}"#);
}

/// (d) Inline: the effect's statement fails on the first attempt and the
/// handler answers 200 regardless; its transaction cannot commit, so the
/// sender gets 503, no row is there, and its retry leaves one row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inline_handler_whose_transaction_errors_leaves_no_row_until_the_retry() {
    let server = PostgresServer::start();
    let r = receiver(&server, &["--effect-fail-first", "1"]);
    let db = pool(&server).await;
    let first = deliver(&r, "evt_broken").await;
    assert_eq!(
        first.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        first.text()
    );
    assert!(first.headers.contains_key("retry-after"));
    assert!(effects(&db, "evt_broken").await.is_empty(), "rolled back");
    let retry = deliver(&r, "evt_broken").await;
    assert_eq!(retry.status, StatusCode::OK, "{}", retry.text());
    assert_eq!(effects(&db, "evt_broken").await, [2]);
    let copy = deliver(&r, "evt_broken").await;
    assert_eq!(copy.text(), r#"{"status":"duplicate"}"#);
    assert_eq!(effects(&db, "evt_broken").await, [2]);
}

/// (d) Queued: the same failure rolls the attempt back and the worker
/// retries it: one row, from the second attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_handler_whose_transaction_errors_is_retried_into_one_row() {
    let server = PostgresServer::start();
    let flags = [
        "--queued",
        "--effect-fail-first",
        "1",
        "--retry-base-ms",
        "100",
    ];
    let r = receiver(&server, &flags);
    let db = pool(&server).await;
    let reply = deliver(&r, "evt_broken_queued").await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text());
    until("the effect", || async {
        (!effects(&db, "evt_broken_queued").await.is_empty()).then_some(())
    })
    .await;
    until("an empty queue", || async {
        (queue(&r).await == (0, 0, 0)).then_some(())
    })
    .await;
    assert_eq!(effects(&db, "evt_broken_queued").await, [2]);
}

/// (e) A job dead-lettered by one receiver (its handler answered 500, so
/// its row rolled back) is replayed through the other: one row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_replayed_from_the_other_receiver_leaves_one_row() {
    let server = PostgresServer::start();
    let flags = [
        "--queued",
        "--handler-fail-first",
        "1",
        "--max-attempts",
        "1",
    ];
    let a = receiver(&server, &flags);
    let db = pool(&server).await;
    let reply = deliver(&a, "evt_dead").await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text());
    until("a dead letter", || async {
        (queue(&a).await == (0, 0, 1)).then_some(())
    })
    .await;
    assert!(effects(&db, "evt_dead").await.is_empty(), "rolled back");

    let b = receiver(&server, &flags);
    let letters = get_json(&b, "/dead-letters").await;
    let key = letters[0]["key"].as_str().unwrap().to_owned();
    let replay = harness::post(
        &b.url("/dead-letters/replay"),
        &[("content-type", "application/json")],
        serde_json::json!({ "key": key }).to_string(),
    )
    .await;
    assert_eq!(replay.status, StatusCode::ACCEPTED, "{}", replay.text());
    until("the effect", || async {
        (!effects(&db, "evt_dead").await.is_empty()).then_some(())
    })
    .await;
    until("an empty queue", || async {
        (queue(&b).await == (0, 0, 0)).then_some(())
    })
    .await;
    assert_eq!(effects(&db, "evt_dead").await, [2]);
}
