//! Nothing lost across restarts and crashes: the example receiver as a real
//! child process on a real SQLite file, stopped with SIGTERM or killed with
//! SIGKILL between or during deliveries.

#[path = "harness/mod.rs"]
mod harness;
#[path = "support/receiver_process.rs"]
mod receiver_process;

use std::time::{Duration, Instant};

use harness::TempDir;
use http::StatusCode;
use receiver_process::{ReceiverProcess, run_to_end};
use serde_json::Value;

const SECRET: &str = harness::NUMERO_SECRET;

fn env() -> [(&'static str, &'static str); 1] {
    [("NUMERO_WEBHOOK_SECRET", SECRET)]
}

fn sqlite_arg(dir: &TempDir) -> String {
    format!("sqlite:{}", dir.join("webhooks.db").display())
}

async fn deliver(receiver: &ReceiverProcess, id: &str) -> harness::Reply {
    let body = harness::numero_body(id);
    let signature = harness::numero_signature(body.as_bytes());
    harness::post(
        &receiver.url("/webhooks/numero"),
        &[("x-webhook-signature", &signature)],
        body,
    )
    .await
}

async fn get_json(receiver: &ReceiverProcess, path: &str) -> Value {
    let response = harness::client()
        .get(receiver.url(path).parse().unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    serde_json::from_slice(&body).unwrap()
}

/// The handler runs listed by `GET /events` for `id` that answered `status`.
async fn runs(receiver: &ReceiverProcess, id: &str, status: u64) -> usize {
    let events = get_json(receiver, "/events").await;
    events
        .as_array()
        .unwrap()
        .iter()
        .filter(|run| run["id"] == id && run["status"] == status)
        .count()
}

/// Polls `GET path` until `done` holds, for at most `limit`.
async fn wait_for(receiver: &ReceiverProcess, what: &str, limit: Duration, done: impl AsyncCheck) {
    let deadline = Instant::now() + limit;
    while !done.check(receiver).await {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; receiver printed {:?}",
            receiver.printed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A condition on a running receiver.
trait AsyncCheck {
    async fn check(&self, receiver: &ReceiverProcess) -> bool;
}

/// `GET /queue` equals the given counts.
struct QueueIs(u64, u64, u64);

impl AsyncCheck for QueueIs {
    async fn check(&self, receiver: &ReceiverProcess) -> bool {
        let q = get_json(receiver, "/queue").await;
        (
            q["pending"].as_u64(),
            q["running"].as_u64(),
            q["dead"].as_u64(),
        ) == (Some(self.0), Some(self.1), Some(self.2))
    }
}

/// `GET /events` lists a successful run of the id.
struct Succeeded(&'static str);

impl AsyncCheck for Succeeded {
    async fn check(&self, receiver: &ReceiverProcess) -> bool {
        runs(receiver, self.0, 200).await == 1
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_remembers_processed_events() {
    let dir = TempDir::with_label("restart");
    let store = sqlite_arg(&dir);
    let mut first = ReceiverProcess::start(&["--store", &store], &env());
    let reply = deliver(&first, "evt_restart").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert!(reply.text().contains("processed"), "{}", reply.text());
    first.sigterm();
    let status = first.wait_exit(Duration::from_secs(10)).expect("it stops");
    assert!(status.success(), "SIGTERM exits 0, got {status:?}");

    let second = ReceiverProcess::start(&["--store", &store], &env());
    let again = deliver(&second, "evt_restart").await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.text(), r#"{"status":"duplicate"}"#);
    assert_eq!(
        runs(&second, "evt_restart", 200).await,
        0,
        "the handler did not run again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_after_the_answer_remembers_the_event() {
    let dir = TempDir::with_label("kill9");
    let store = sqlite_arg(&dir);
    let first = ReceiverProcess::start(&["--store", &store], &env());
    assert_eq!(deliver(&first, "evt_kill").await.status, StatusCode::OK);
    first.kill9();

    let second = ReceiverProcess::start(&["--store", &store], &env());
    let again = deliver(&second, "evt_kill").await;
    assert_eq!(again.text(), r#"{"status":"duplicate"}"#);
    assert_eq!(runs(&second, "evt_kill", 200).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_job_killed_mid_handler_runs_after_a_restart() {
    let dir = TempDir::with_label("queued-kill9");
    let store = sqlite_arg(&dir);
    // The first process's handler takes 30 s: it is killed long before.
    let slow = [
        "--store",
        &store,
        "--queued",
        "--lease-ms",
        "1000",
        "--handler-delay-ms",
        "30000",
    ];
    let first = ReceiverProcess::start(&slow, &env());
    let accepted = deliver(&first, "evt_crash").await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{}", accepted.text());
    wait_for(
        &first,
        "the job to run",
        Duration::from_secs(10),
        QueueIs(0, 1, 0),
    )
    .await;
    first.kill9();

    let second = ReceiverProcess::start(
        &["--store", &store, "--queued", "--lease-ms", "1000"],
        &env(),
    );
    // The dead process's lease runs out after about a second; then the job
    // is taken again and runs to completion.
    wait_for(
        &second,
        "the job to complete",
        Duration::from_secs(20),
        Succeeded("evt_crash"),
    )
    .await;
    wait_for(
        &second,
        "an empty queue",
        Duration::from_secs(10),
        QueueIs(0, 0, 0),
    )
    .await;
    let events = get_json(&second, "/events").await;
    let attempt = events.as_array().unwrap()[0]["attempt"].as_u64();
    assert_eq!(attempt, Some(2), "the crashed attempt counts: {events}");
    let copy = deliver(&second, "evt_crash").await;
    assert_eq!(copy.text(), r#"{"status":"duplicate"}"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_retries_dead_letters_and_replay_through_the_routes() {
    let dir = TempDir::with_label("queued-dead");
    let store = sqlite_arg(&dir);
    let args = [
        "--store",
        &store,
        "--queued",
        "--retry-base-ms",
        "20",
        "--max-attempts",
        "2",
        "--handler-fail-first",
        "2",
    ];
    let receiver = ReceiverProcess::start(&args, &env());
    assert_eq!(
        deliver(&receiver, "evt_dead").await.status,
        StatusCode::ACCEPTED
    );
    wait_for(
        &receiver,
        "a dead letter",
        Duration::from_secs(10),
        QueueIs(0, 0, 1),
    )
    .await;
    let letters = get_json(&receiver, "/dead-letters").await;
    let letter = &letters.as_array().unwrap()[0];
    assert_eq!(
        (letter["scheme"].as_str(), letter["id"].as_str()),
        (Some("numero"), Some("evt_dead"))
    );
    assert_eq!(letter["attempts"].as_u64(), Some(2));
    let key = letter["key"].as_str().unwrap().to_owned();

    let replay = |key: String| {
        let url = receiver.url("/dead-letters/replay");
        async move {
            harness::post(
                &url,
                &[("content-type", "application/json")],
                format!(r#"{{"key":"{key}"}}"#),
            )
            .await
            .status
        }
    };
    assert_eq!(replay("numero:nothing".into()).await, StatusCode::NOT_FOUND);
    assert_eq!(replay(key).await, StatusCode::ACCEPTED);
    // Attempt 3 is past --handler-fail-first 2: it succeeds.
    wait_for(
        &receiver,
        "the replayed run",
        Duration::from_secs(10),
        Succeeded("evt_dead"),
    )
    .await;
    wait_for(
        &receiver,
        "an empty queue",
        Duration::from_secs(10),
        QueueIs(0, 0, 0),
    )
    .await;
}

#[test]
fn a_store_that_cannot_be_opened_is_a_one_line_error() {
    let dir = TempDir::with_label("bad-store");
    let not_a_db = dir.join("notes.txt");
    std::fs::write(
        &not_a_db,
        "these are not the pages of a database\n".repeat(200),
    )
    .unwrap();
    let read_only = dir.join("read-only.db");
    std::fs::write(&read_only, b"").unwrap();
    let mut permissions = std::fs::metadata(&read_only).unwrap().permissions();
    permissions.set_readonly(true);
    std::fs::set_permissions(&read_only, permissions).unwrap();
    let cases = [
        format!("sqlite:{}", dir.join("missing/webhooks.db").display()),
        format!("sqlite:{}", read_only.display()),
        format!("sqlite:{}", not_a_db.display()),
        "postgres://nowhere/".to_owned(),
    ];
    for store in cases {
        let (status, stderr) = run_to_end(&["--store", &store], Duration::from_secs(20));
        assert!(!status.success(), "{store}: exit {status:?}");
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{store}: one line, got {stderr:?}");
        assert!(lines[0].starts_with("error: "), "{store}: {stderr:?}");
        assert!(!stderr.contains("panicked"), "{store}: {stderr:?}");
    }
}

/// Removes the database and its `-wal` and `-shm` files while the receiver
/// runs, then delivers new events: each must be refused with 503 (nothing
/// acknowledged that a restart would not find), never 202 or 200.
async fn deleted_store_refuses_new_deliveries(label: &str, extra: &[&str], before: StatusCode) {
    let dir = TempDir::with_label(label);
    let store = sqlite_arg(&dir);
    let mut args = vec!["--store", store.as_str()];
    args.extend_from_slice(extra);
    let receiver = ReceiverProcess::start(&args, &env());
    let first = deliver(&receiver, &format!("evt_{label}_before")).await;
    assert_eq!(first.status, before, "{}", first.text());
    for suffix in ["", "-wal", "-shm"] {
        let file = dir.join(&format!("webhooks.db{suffix}"));
        std::fs::remove_file(&file).unwrap_or_else(|e| panic!("removing {file:?}: {e}"));
    }
    for n in 0..3 {
        let reply = deliver(&receiver, &format!("evt_{label}_after_{n}")).await;
        assert_eq!(
            reply.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "delivery {n} after the store file was deleted: {}",
            reply.text()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_store_file_fails_queued_deliveries_closed() {
    deleted_store_refuses_new_deliveries("deleted-queued", &["--queued"], StatusCode::ACCEPTED)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_store_file_fails_inline_deliveries_closed() {
    deleted_store_refuses_new_deliveries("deleted-inline", &[], StatusCode::OK).await;
}

/// libfaketime, which shifts what the child process reads from the wall
/// clock (and only that: its monotonic clock is left alone) by the offset
/// in a file it rereads on every call.
const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// A job running under a lease when the receiver's wall clock steps an
/// hour forward is not taken again (a second, concurrent run) by the next
/// take, which a new delivery's wake-up makes at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wall_clock_step_does_not_expire_a_running_lease() {
    assert!(
        std::path::Path::new(LIBFAKETIME).exists(),
        "{LIBFAKETIME} is missing (scripts/test.sh installs it: apt-get install faketime)"
    );
    let dir = TempDir::with_label("clock-step");
    let store = sqlite_arg(&dir);
    let offset = dir.join("faketime");
    std::fs::write(&offset, "+0\n").unwrap();
    let offset_path = offset.display().to_string();
    let clock = [
        ("LD_PRELOAD", LIBFAKETIME),
        ("FAKETIME_TIMESTAMP_FILE", offset_path.as_str()),
        ("FAKETIME_NO_CACHE", "1"),
        ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
        ("NUMERO_WEBHOOK_SECRET", SECRET),
    ];
    // No renewal comes during the 4 s handler (one every 10 s).
    let args = [
        "--store",
        &store,
        "--queued",
        "--lease-ms",
        "30000",
        "--handler-delay-ms",
        "4000",
    ];
    let receiver = ReceiverProcess::start(&args, &clock);
    let first = deliver(&receiver, "evt_leased").await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.text());
    wait_for(
        &receiver,
        "the job to run",
        Duration::from_secs(10),
        QueueIs(0, 1, 0),
    )
    .await;
    std::fs::write(&offset, "+1h\n").unwrap();
    let second = deliver(&receiver, "evt_after_step").await;
    assert_eq!(second.status, StatusCode::ACCEPTED, "{}", second.text());
    wait_for(
        &receiver,
        "the second job to complete",
        Duration::from_secs(20),
        Succeeded("evt_after_step"),
    )
    .await;
    wait_for(
        &receiver,
        "an empty queue",
        Duration::from_secs(20),
        QueueIs(0, 0, 0),
    )
    .await;
    let events = get_json(&receiver, "/events").await;
    let leased: Vec<&Value> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|run| run["id"] == "evt_leased")
        .collect();
    assert_eq!(leased.len(), 1, "evt_leased ran once: {events}");
}
