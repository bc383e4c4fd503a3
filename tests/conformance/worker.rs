//! Queued mode through a [`Worker`] over real HTTP: each case starts a
//! queued Numero receiver (`harness::queued`) on the backend, posts
//! through a real client, and checks what a user sees: statuses, handler
//! runs and attempts, queue counts, dead letters.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http::StatusCode;
use tower_webhook::linear::Linear;
use tower_webhook::queue::{Accept, JobQueue, QueueAdmin, QueueCounts, Worker};

use crate::harness::queued::{Run, Script, post_copies, quick_retries, start, start_scheme};
use crate::harness::{PATIENCE, numero_body, post};
use crate::{Backend, job_key};

macro_rules! cases {
    ($backend:ty) => {
        crate::tests!($backend, worker: [
            accepted_then_run_once,
            recorded_jobs_run_without_a_request,
            two_hundred_concurrent_copies_make_one_job,
            failures_are_retried_until_done,
            panics_are_retried_until_done,
            dead_letters_are_kept_and_replayed,
            dead_letters_are_dropped_after_the_workers_retention,
            slow_handlers_do_not_hold_the_sender,
            shutdown_lets_running_attempts_finish,
            late_attempts_still_run,
        ]);
    };
}
pub(crate) use cases;

/// A job already in the queue when the server starts (as after a restart)
/// runs without any request arriving.
pub async fn recorded_jobs_run_without_a_request<B: Backend<Store: QueueAdmin>>() {
    let backend = B::open().await;
    let queue = backend.store().await;
    let accepted = queue.accept(
        &crate::key("evt_recovered"),
        crate::delivery("evt_recovered"),
    );
    assert_eq!(accepted.await.unwrap(), Accept::Accepted);
    let r = start(Worker::builder(queue)).await;
    r.wait_until("the recorded job to run", |s| s.successes() == 1)
        .await;
    assert_eq!(r.seen.runs()[0].id, "evt_recovered");
}

/// A new event: 202 accepted, then the handler runs once with attempt 1
/// and the event's id; every later copy is a duplicate.
pub async fn accepted_then_run_once<B: Backend<Store: QueueAdmin>>() {
    let backend = B::open().await;
    let r = start(Worker::builder(backend.store().await)).await;
    let body = numero_body("evt_q1");
    let first = r.deliver(&body).await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.text());
    assert_eq!(first.text(), r#"{"status":"accepted"}"#);
    r.wait_until("the handler run", |s| s.successes() == 1)
        .await;
    let again = r.deliver(&body).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.text(), r#"{"status":"duplicate"}"#);
    r.wait_counts(QueueCounts::default()).await;
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

/// Many concurrent copies of one event: one 202, the rest duplicates, one
/// job, one successful handler run.
pub async fn two_hundred_concurrent_copies_make_one_job<B: Backend<Store: QueueAdmin>>() {
    let copies = 200;
    let backend = B::open().await;
    let r = start(Worker::builder(backend.store().await)).await;
    let url = format!("http://{}/numero", r.addr);
    let statuses = post_copies(&[url], &numero_body("evt_many"), copies).await;
    assert_eq!(statuses.get(&202), Some(&1), "{statuses:?}");
    assert_eq!(statuses.get(&200), Some(&(copies - 1)), "{statuses:?}");
    r.wait_until("the handler run", |s| s.successes() == 1)
        .await;
    r.wait_counts(QueueCounts::default()).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(r.seen.runs().len(), 1);
}

/// A handler that fails its first attempts (500, then a panic) is retried
/// with backoff until it succeeds; the sender only ever saw the 202.
pub async fn failures_are_retried_until_done<B: Backend<Store: QueueAdmin>>() {
    retried_until_done::<B>(false).await;
}

/// As [`failures_are_retried_until_done`], with panics for the failures.
pub async fn panics_are_retried_until_done<B: Backend<Store: QueueAdmin>>() {
    retried_until_done::<B>(true).await;
}

async fn retried_until_done<B: Backend<Store: QueueAdmin>>(panic: bool) {
    let backend = B::open().await;
    let r = start(Worker::builder(backend.store().await).retry(quick_retries(5))).await;
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
    r.wait_counts(QueueCounts::default()).await;
    let again = r.deliver(&numero_body("evt_flaky")).await;
    assert_eq!(again.text(), r#"{"status":"duplicate"}"#);
}

/// A handler that always fails: after the last attempt the job is a dead
/// letter (listed, a duplicate to senders); replayed, it runs again with its
/// attempts so far, and succeeds once the handler is fixed.
pub async fn dead_letters_are_kept_and_replayed<B: Backend<Store: QueueAdmin>>() {
    let backend = B::open().await;
    // Replayed through a worker on another handle: another replica, or an
    // admin tool, can.
    let replay_from = Worker::builder(backend.store().await).start();
    let r = start(Worker::builder(backend.store().await).retry(quick_retries(3))).await;
    r.seen.script.lock().unwrap().fail_first = u32::MAX;
    assert_eq!(
        r.deliver(&numero_body("evt_dead")).await.status,
        StatusCode::ACCEPTED
    );
    r.wait_counts(QueueCounts {
        dead: 1,
        ..QueueCounts::default()
    })
    .await;
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
    assert!(!replay_from.replay(&job_key("nothing-here")).await.unwrap());
    r.wait_until("the replayed run", |s| s.successes() == 1)
        .await;
    let last = r.seen.runs().last().cloned().unwrap();
    assert_eq!(last.attempt, 4, "attempts carry over a replay");
    r.wait_counts(QueueCounts::default()).await;
    assert!(r.worker.dead_letters(10).await.unwrap().is_empty());
}

/// A 10-second handler: the sender's answer comes back at once, long
/// before the handler ends. Shutting down with a short deadline stops the
/// attempt and leaves its job queued.
pub async fn slow_handlers_do_not_hold_the_sender<B: Backend<Store: QueueAdmin>>() {
    let backend = B::open().await;
    let r = start(Worker::builder(backend.store().await)).await;
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
        ..QueueCounts::default()
    })
    .await;
    let report = r.worker.shutdown(Duration::from_millis(100)).await;
    assert!(!report.finished_in_time);
    assert_eq!(report.aborted, 1);
    r.wait_counts(QueueCounts {
        pending: 1,
        ..QueueCounts::default()
    })
    .await;
}

/// Shutdown lets a running attempt finish within the deadline.
pub async fn shutdown_lets_running_attempts_finish<B: Backend<Store: QueueAdmin>>() {
    let backend = B::open().await;
    let r = start(Worker::builder(backend.store().await)).await;
    r.seen.script.lock().unwrap().delay = Duration::from_millis(300);
    assert_eq!(
        r.deliver(&numero_body("evt_drain")).await.status,
        StatusCode::ACCEPTED
    );
    r.wait_counts(QueueCounts {
        running: 1,
        ..QueueCounts::default()
    })
    .await;
    let report = r.worker.shutdown(PATIENCE).await;
    assert!(report.finished_in_time);
    assert_eq!(report.aborted, 0);
    assert_eq!(r.seen.successes(), 1);
    assert_eq!(r.counts().await, QueueCounts::default());
}

/// A dead letter is kept for the worker's `dead_letter_ttl`, then dropped:
/// the event is new again and a fixed handler runs it.
pub async fn dead_letters_are_dropped_after_the_workers_retention<B: Backend<Store: QueueAdmin>>() {
    let backend = B::open().await;
    let retain = crate::SHORT;
    let worker = Worker::builder(backend.store().await)
        .retry(quick_retries(1))
        .dead_letter_ttl(retain);
    let r = start(worker).await;
    r.seen.script.lock().unwrap().fail_first = u32::MAX;
    assert_eq!(
        r.deliver(&numero_body("evt_dropped")).await.status,
        StatusCode::ACCEPTED
    );
    r.wait_counts(QueueCounts {
        dead: 1,
        ..QueueCounts::default()
    })
    .await;
    let copy = r.deliver(&numero_body("evt_dropped")).await;
    assert_eq!(copy.text(), r#"{"status":"duplicate"}"#, "kept for now");

    crate::past_short().await;
    r.wait_counts(QueueCounts::default()).await;
    assert!(r.worker.dead_letters(10).await.unwrap().is_empty());
    r.seen.script.lock().unwrap().fail_first = 0;
    assert_eq!(
        r.deliver(&numero_body("evt_dropped")).await.status,
        StatusCode::ACCEPTED,
        "new again once dropped"
    );
    r.wait_until("the second chance", |s| s.successes() == 1)
        .await;
}

/// The Linear signing secret of [`late_attempts_still_run`].
const LINEAR_SECRET: &str = "lin_wh_queued_secret";

/// A Linear delivery signed at `millis` (its `webhookTimestamp`).
fn linear_delivery(issue: &str, millis: u64) -> (String, String) {
    let body = format!(
        r#"{{"action":"update","type":"Issue","data":{{"id":"{issue}"}},"webhookTimestamp":{millis}}}"#
    );
    let signature = tower_webhook::linear::sign(LINEAR_SECRET.as_bytes(), body.as_bytes());
    (body, signature)
}

/// Linear signs its time inside the body and allows 60 s: that window is
/// judged once, when the delivery arrives. Attempts after it has passed (a
/// retry, a replayed dead letter) still run the handler. The scheme's clock
/// jumps 10 minutes ahead as each first attempt fails.
pub async fn late_attempts_still_run<B: Backend<Store: QueueAdmin>>() {
    let backend = B::open().await;
    let queue = backend.store().await;
    let now = Arc::new(AtomicU64::new(1_700_000_000));
    let clock = Arc::clone(&now);
    let linear = Linear::new()
        .clock(move || std::time::UNIX_EPOCH + Duration::from_secs(clock.load(Ordering::SeqCst)));
    let r = start_scheme(
        Worker::builder(queue).retry(quick_retries(2)),
        linear,
        LINEAR_SECRET,
        "/linear",
        |event| event.data_id.as_deref().unwrap_or_default().to_owned(),
    )
    .await;
    let jump = Arc::clone(&now);
    *r.seen.script.lock().unwrap() = Script {
        fail_first: 1,
        after_run: Some(Arc::new(move |run: &Run| {
            if run.attempt == 1 {
                jump.fetch_add(600, Ordering::SeqCst);
            }
        })),
        ..Script::default()
    };
    let deliver = |issue: &str| {
        let (body, signature) = linear_delivery(issue, now.load(Ordering::SeqCst) * 1000);
        let url = format!("http://{}/linear", r.addr);
        async move { post(&url, &[("linear-signature", &signature)], body).await }
    };

    // A retry after the window: runs, and succeeds.
    let first = deliver("issue-retried").await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.text());
    r.wait_until("the retry to succeed", |s| s.successes() == 1)
        .await;
    r.wait_counts(QueueCounts::default()).await;
    let attempts: Vec<(String, u32, u16)> = r
        .seen
        .runs()
        .into_iter()
        .map(|run| (run.id, run.attempt, run.status))
        .collect();
    assert_eq!(
        attempts,
        [
            ("issue-retried".to_owned(), 1, 500),
            ("issue-retried".to_owned(), 2, 200)
        ]
    );

    // A dead letter replayed after the window: runs, and succeeds.
    r.seen.script.lock().unwrap().fail_first = u32::MAX;
    let second = deliver("issue-replayed").await;
    assert_eq!(second.status, StatusCode::ACCEPTED, "{}", second.text());
    r.wait_counts(QueueCounts {
        dead: 1,
        ..QueueCounts::default()
    })
    .await;
    let letters = r.worker.dead_letters(10).await.unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].attempts, 2, "{letters:?}");
    assert!(letters[0].last_error.contains("500"), "{letters:?}");
    r.seen.script.lock().unwrap().fail_first = 0;
    assert!(r.worker.replay(&letters[0].key).await.unwrap());
    r.wait_until("the replayed run", |s| s.successes() == 2)
        .await;
    r.wait_counts(QueueCounts::default()).await;
    let last = r.seen.runs().last().cloned().unwrap();
    assert_eq!((last.id.as_str(), last.attempt), ("issue-replayed", 3));

    // Arriving after the window is still refused, and nothing is recorded.
    let (body, signature) = linear_delivery("issue-stale", 1_700_000_000 * 1000);
    let stale = post(
        &format!("http://{}/linear", r.addr),
        &[("linear-signature", &signature)],
        body,
    )
    .await;
    assert_eq!(stale.status, StatusCode::UNAUTHORIZED);
    assert_eq!(stale.error(), "stale_timestamp");
    assert_eq!(r.counts().await, QueueCounts::default());
}
