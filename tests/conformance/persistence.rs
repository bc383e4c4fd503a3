//! What survives a restart of a [`Persistent`] backend: inline claims and
//! done marks (a copy is still a duplicate, the handler does not run
//! again), pending and interrupted jobs (they run after the restart), done
//! jobs and dead letters (still duplicates, still listed and replayable).

use std::time::Duration;

use http::StatusCode;
use tower_webhook::queue::{
    Accept, JobOutcome, JobQueue, QueueAdmin, QueueCounts, TakeRequest, Worker,
};
use tower_webhook::{Claim, IdempotencyStore};

use crate::claims::new_claim;
use crate::harness::inline::Inline;
use crate::harness::numero_body;
use crate::harness::queued::start;
use crate::{LONG, Persistent, delivery, job_key, key};

macro_rules! cases {
    ($backend:ty) => {
        crate::tests!($backend, persistence: [
            inline_done_marks_and_claims_survive_a_reopen,
            pending_and_interrupted_jobs_survive_a_reopen_and_run,
            done_jobs_and_dead_letters_survive_a_reopen,
        ]);
    };
}
pub(crate) use cases;

fn pending(pending: u64) -> QueueCounts {
    QueueCounts {
        pending,
        ..QueueCounts::default()
    }
}

/// A delivery processed inline before the restart is a duplicate after
/// it, and its handler does not run again; a claim held at the restart is
/// still in flight.
pub async fn inline_done_marks_and_claims_survive_a_reopen<B: Persistent<Store: QueueAdmin>>() {
    let mut backend = B::open().await;
    let store = backend.store().await;
    let first = Inline::start(store.clone(), LONG).await;
    assert_eq!(first.deliver("evt_restart").await.status, StatusCode::OK);
    assert_eq!(first.runs(), 1);
    let _held = new_claim(&store, &key("evt_held"), LONG).await;
    drop((first, store));

    let store = backend.reopen().await;
    assert!(matches!(
        store.claim(&key("evt_held"), LONG).await.unwrap(),
        Claim::InFlight
    ));
    let second = Inline::start(store, LONG).await;
    let again = second.deliver("evt_restart").await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.text(), r#"{"status":"duplicate"}"#);
    assert_eq!(second.runs(), 0, "the handler ran again after a restart");
}

/// Jobs accepted and never run, and a job whose attempt was cut short by
/// shutdown, are still pending after the restart; a new worker runs each
/// once, as its next attempt, with no delivery arriving to wake it.
pub async fn pending_and_interrupted_jobs_survive_a_reopen_and_run<
    B: Persistent<Store: QueueAdmin>,
>() {
    let mut backend = B::open().await;
    let first = start(Worker::builder(backend.store().await)).await;
    first.seen.script.lock().unwrap().delay = Duration::from_secs(10);
    let reply = first.deliver(&numero_body("evt_interrupted")).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    first
        .wait_counts(QueueCounts {
            running: 1,
            ..QueueCounts::default()
        })
        .await;
    let report = first.worker.shutdown(Duration::from_millis(100)).await;
    assert_eq!(report.aborted, 1);
    // The intake still records with its worker stopped.
    let reply = first.deliver(&numero_body("evt_pending")).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    first.wait_counts(pending(2)).await;
    drop(first);

    let store = backend.reopen().await;
    assert_eq!(
        store.counts().await.unwrap(),
        pending(2),
        "the jobs survived"
    );
    let second = start(Worker::builder(store)).await;
    second
        .wait_until("both kept jobs to run", |s| s.successes() == 2)
        .await;
    second.wait_counts(QueueCounts::default()).await;
    let mut runs: Vec<(String, u32)> = second
        .seen
        .runs()
        .into_iter()
        .map(|run| (run.id, run.attempt))
        .collect();
    runs.sort_unstable();
    assert_eq!(
        runs,
        [
            ("evt_interrupted".to_owned(), 2),
            ("evt_pending".to_owned(), 1)
        ]
    );
    for id in ["evt_interrupted", "evt_pending"] {
        let copy = second.deliver(&numero_body(id)).await;
        assert_eq!(copy.text(), r#"{"status":"duplicate"}"#, "{id}");
    }
}

/// A done job is still a duplicate after the restart; a dead letter is
/// still listed, still a duplicate, and can be replayed and run.
pub async fn done_jobs_and_dead_letters_survive_a_reopen<B: Persistent<Store: QueueAdmin>>() {
    let mut backend = B::open().await;
    let store = backend.store().await;
    for id in ["evt_done", "evt_dead"] {
        assert_eq!(
            store.accept(&key(id), delivery(id)).await.unwrap(),
            Accept::Accepted
        );
    }
    let request = TakeRequest::new(std::sync::Arc::from(vec![Box::from("numero")]), 10, LONG);
    for job in store.take(request.clone()).await.unwrap().jobs {
        let outcome = if job.key == "numero:evt_done" {
            JobOutcome::Done { ttl: LONG }
        } else {
            JobOutcome::Dead {
                error: "gave up".into(),
                retain: LONG,
            }
        };
        assert!(store.finish(job.lease, outcome).await.unwrap());
    }
    drop(store);

    let store = backend.reopen().await;
    for id in ["evt_done", "evt_dead"] {
        assert_eq!(
            store.accept(&key(id), delivery(id)).await.unwrap(),
            Accept::Duplicate,
            "{id}"
        );
    }
    assert_eq!(
        store.counts().await.unwrap(),
        QueueCounts {
            dead: 1,
            ..QueueCounts::default()
        }
    );
    let letters = store.dead_letters(10).await.unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(
        (letters[0].key.as_str(), letters[0].attempts),
        ("numero:evt_dead", 1)
    );
    assert!(store.replay(&job_key("evt_dead")).await.unwrap());
    let mut taken = store.take(request).await.unwrap().jobs;
    assert_eq!(taken.len(), 1);
    let job = taken.remove(0);
    assert_eq!((job.key.as_str(), job.attempt), ("numero:evt_dead", 2));
    assert_eq!(job.delivery.body, delivery("evt_dead").body);
    assert!(
        store
            .finish(job.lease, JobOutcome::Done { ttl: LONG })
            .await
            .unwrap()
    );
}
