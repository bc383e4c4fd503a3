//! The [`JobQueue`] calls on their own: accept, take, renew, finish (done,
//! retry, dead), dead letters and replay, stale job leases, and how inline
//! claims and jobs share one key.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tower_webhook::queue::{
    Accept, Job, JobOutcome, JobQueue, QueueAdmin, QueueCounts, TakeRequest,
};
use tower_webhook::{Claim, IdempotencyStore, JobKey};

use crate::claims::new_claim;
use crate::{Backend, LONG, PATIENCE, SHORT, delivery, job_key, key, past_short};

macro_rules! cases {
    ($backend:ty) => {
        crate::tests!($backend, queue: [
            a_delivery_is_accepted_once,
            take_leases_due_jobs_of_the_asked_schemes,
            renew_extends_a_running_jobs_lease,
            finish_done_makes_copies_duplicates_until_its_ttl,
            finish_retry_makes_the_job_pending_again_due_later,
            finish_dead_keeps_a_dead_letter_until_replayed,
            dead_letters_are_listed_oldest_first,
            dead_letters_expire_after_their_retention,
            a_stale_job_lease_can_neither_renew_nor_finish,
            inline_claims_and_queued_jobs_exclude_each_other,
            claims_and_done_marks_that_ran_out_free_the_key,
            concurrent_accepts_of_one_key_make_one_job,
        ]);
        crate::worker::cases!($backend);
        crate::flow::cases!($backend);
    };
}
pub(crate) use cases;

fn counts(pending: u64, running: u64, dead: u64) -> QueueCounts {
    QueueCounts {
        pending,
        running,
        dead,
    }
}

async fn accept<Q: QueueAdmin>(queue: &Q, id: &str) -> Accept {
    queue.accept(&key(id), delivery(id)).await.unwrap()
}

/// Takes what is due of the Numero scheme, leased for `lease`.
async fn take<Q: QueueAdmin>(queue: &Q, max: usize, lease: Duration) -> Vec<Job<Q::JobLease>> {
    take_of(queue, "numero", max, lease).await
}

async fn take_of<Q: QueueAdmin>(
    queue: &Q,
    scheme: &str,
    max: usize,
    lease: Duration,
) -> Vec<Job<Q::JobLease>> {
    let request = TakeRequest::new(Arc::from(vec![Box::from(scheme)]), max, lease);
    queue.take(request).await.unwrap().jobs
}

/// Takes the one due job, which must be `id`'s.
async fn take_one<Q: QueueAdmin>(queue: &Q, id: &str, lease: Duration) -> Job<Q::JobLease> {
    let mut jobs = take(queue, 10, lease).await;
    assert_eq!(jobs.len(), 1, "one due job: {jobs:?}");
    let job = jobs.remove(0);
    assert_eq!(job.key, format!("numero:{id}").as_str());
    job
}

/// What an inline claim of `id` answers, by name (a new claim is
/// released again).
async fn claim_answer<Q: QueueAdmin>(queue: &Q, id: &str) -> &'static str {
    match queue.claim(&key(id), LONG).await.unwrap() {
        Claim::New(lease) => {
            queue.release(lease).await.unwrap();
            "new"
        }
        Claim::Done => "done",
        Claim::InFlight => "in flight",
    }
}

fn done() -> JobOutcome {
    JobOutcome::Done { ttl: LONG }
}

fn dead(retain: Duration) -> JobOutcome {
    JobOutcome::Dead {
        error: "gave up".into(),
        retain,
    }
}

/// The first copy is recorded as a pending job; every other copy is a
/// duplicate and records nothing.
pub async fn a_delivery_is_accepted_once<B: Backend<Store: QueueAdmin>>() {
    let backend = B::open().await;
    let queue = backend.store().await;
    assert_eq!(queue.counts().await.unwrap(), counts(0, 0, 0));
    assert_eq!(accept(&queue, "evt_once").await, Accept::Accepted);
    assert_eq!(accept(&queue, "evt_once").await, Accept::Duplicate);
    assert_eq!(
        accept(&backend.store().await, "evt_once").await,
        Accept::Duplicate,
        "another handle"
    );
    assert_eq!(queue.counts().await.unwrap(), counts(1, 0, 0));
    let by_scheme = queue.counts_by_scheme().await.unwrap();
    let numero: Vec<_> = by_scheme.iter().filter(|(s, _)| s == "numero").collect();
    assert_eq!(
        numero,
        [&("numero".to_owned(), counts(1, 0, 0))],
        "{by_scheme:?}"
    );
    assert!(queue.dead_letters(10).await.unwrap().is_empty());
}

/// `take` leases at most `max` due jobs of the schemes asked for, each as
/// attempt 1 with its delivery as recorded; a taken job is not taken
/// again while its lease holds, and stays a duplicate to copies.
pub async fn take_leases_due_jobs_of_the_asked_schemes<B: Backend<Store: QueueAdmin>>() {
    let backend = B::open().await;
    let queue = backend.store().await;
    for id in ["evt_a", "evt_b", "evt_c"] {
        assert_eq!(accept(&queue, id).await, Accept::Accepted);
    }
    assert!(
        take_of(&queue, "numberotp", 10, LONG).await.is_empty(),
        "another scheme's"
    );

    let first = take(&queue, 2, LONG).await;
    assert_eq!(first.len(), 2, "at most max: {first:?}");
    assert_eq!(queue.counts().await.unwrap(), counts(1, 2, 0));
    let rest = take(&queue, 10, LONG).await;
    assert_eq!(rest.len(), 1, "{rest:?}");
    assert!(take(&queue, 10, LONG).await.is_empty(), "all leased");
    assert_eq!(queue.counts().await.unwrap(), counts(0, 3, 0));

    let mut keys: Vec<&str> = first
        .iter()
        .chain(&rest)
        .map(|job| job.key.as_str())
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["numero:evt_a", "numero:evt_b", "numero:evt_c"]);
    for job in first.iter().chain(&rest) {
        let id = job.key.event_id();
        let recorded = delivery(id);
        assert_eq!(job.attempt, 1, "{job:?}");
        assert_eq!(job.delivery.scheme, recorded.scheme);
        assert_eq!(job.delivery.event_id, recorded.event_id);
        assert_eq!(job.delivery.method, recorded.method);
        assert_eq!(job.delivery.uri, recorded.uri);
        assert_eq!(job.delivery.headers, recorded.headers);
        assert_eq!(job.delivery.body, recorded.body);
        let accepted_ago = SystemTime::now().duration_since(job.accepted_at).unwrap();
        assert!(accepted_ago < PATIENCE, "accepted {accepted_ago:?} ago");
        assert_eq!(accept(&queue, id).await, Accept::Duplicate);
        assert_eq!(claim_answer(&queue, id).await, "in flight");
    }
}

/// A renewed lease outlives its first term: the job is not taken again
/// after it; a finished job's lease renews no more.
pub async fn renew_extends_a_running_jobs_lease<B: Backend<Store: QueueAdmin>>() {
    let backend = B::open().await;
    let queue = backend.store().await;
    assert_eq!(accept(&queue, "evt_renewed").await, Accept::Accepted);
    let job = take_one(&queue, "evt_renewed", SHORT).await;
    assert!(queue.renew(&job.lease, LONG).await.unwrap());
    past_short().await;
    assert!(take(&queue, 10, LONG).await.is_empty(), "still leased");
    assert_eq!(queue.counts().await.unwrap(), counts(0, 1, 0));
    assert!(queue.renew(&job.lease, LONG).await.unwrap());
    assert!(queue.finish(job.lease.clone(), done()).await.unwrap());
    assert!(!queue.renew(&job.lease, LONG).await.unwrap(), "finished");
    assert!(
        !queue.finish(job.lease, done()).await.unwrap(),
        "finished once"
    );
}

/// Done: the queue is empty, copies are duplicates and inline claims
/// answer done, until the done TTL ends; then the event is new.
pub async fn finish_done_makes_copies_duplicates_until_its_ttl<B: Backend<Store: QueueAdmin>>() {
    let backend = B::open().await;
    let queue = backend.store().await;
    for id in ["evt_kept", "evt_short"] {
        assert_eq!(accept(&queue, id).await, Accept::Accepted);
    }
    let jobs = take(&queue, 10, LONG).await;
    assert_eq!(jobs.len(), 2);
    for job in jobs {
        let ttl = if job.key == "numero:evt_kept" {
            LONG
        } else {
            SHORT
        };
        assert!(
            queue
                .finish(job.lease, JobOutcome::Done { ttl })
                .await
                .unwrap()
        );
    }
    assert_eq!(queue.counts().await.unwrap(), counts(0, 0, 0));
    for id in ["evt_kept", "evt_short"] {
        assert_eq!(accept(&queue, id).await, Accept::Duplicate, "{id}");
        assert_eq!(claim_answer(&queue, id).await, "done", "{id}");
    }
    past_short().await;
    assert_eq!(accept(&queue, "evt_kept").await, Accept::Duplicate);
    assert_eq!(
        accept(&queue, "evt_short").await,
        Accept::Accepted,
        "the TTL ended"
    );
}

/// Retry: pending again, a duplicate to copies, not taken before its due
/// time; then taken as attempt 2 with the same delivery.
pub async fn finish_retry_makes_the_job_pending_again_due_later<B: Backend<Store: QueueAdmin>>() {
    let backend = B::open().await;
    let queue = backend.store().await;
    assert_eq!(accept(&queue, "evt_retry").await, Accept::Accepted);
    let job = take_one(&queue, "evt_retry", LONG).await;
    let due = SystemTime::now() + Duration::from_secs(2);
    let retry = JobOutcome::Retry {
        due,
        error: "500 Internal Server Error".into(),
    };
    assert!(queue.finish(job.lease, retry).await.unwrap());
    assert_eq!(queue.counts().await.unwrap(), counts(1, 0, 0));
    assert_eq!(accept(&queue, "evt_retry").await, Accept::Duplicate);
    assert!(take(&queue, 10, LONG).await.is_empty(), "not due yet");

    let deadline = Instant::now() + PATIENCE;
    let mut again = take(&queue, 10, LONG).await;
    while again.is_empty() {
        assert!(Instant::now() < deadline, "the retry never came due");
        tokio::time::sleep(Duration::from_millis(10)).await;
        again = take(&queue, 10, LONG).await;
    }
    // Backends keep due times in whole milliseconds.
    let now_ms = tower_webhook::queue::unix_millis(SystemTime::now());
    assert!(
        now_ms >= tower_webhook::queue::unix_millis(due),
        "taken before it was due"
    );
    assert_eq!(again.len(), 1);
    assert_eq!(
        (again[0].key.as_str(), again[0].attempt),
        ("numero:evt_retry", 2)
    );
    assert_eq!(again[0].delivery.body, delivery("evt_retry").body);
    assert!(queue.finish(again.remove(0).lease, done()).await.unwrap());
}

/// Dead: listed with its attempts and error, a duplicate to copies and
/// done to inline claims; replayed (once), it is pending again and runs as
/// its next attempt.
pub async fn finish_dead_keeps_a_dead_letter_until_replayed<B: Backend<Store: QueueAdmin>>() {
    let backend = B::open().await;
    let queue = backend.store().await;
    assert_eq!(accept(&queue, "evt_dead").await, Accept::Accepted);
    let job = take_one(&queue, "evt_dead", LONG).await;
    assert!(queue.finish(job.lease, dead(LONG)).await.unwrap());
    assert_eq!(queue.counts().await.unwrap(), counts(0, 0, 1));
    let letters = queue.dead_letters(10).await.unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
    let letter = &letters[0];
    assert_eq!(
        (
            letter.key.as_str(),
            letter.scheme.as_str(),
            letter.id.as_str(),
            letter.attempts,
            letter.last_error.as_str()
        ),
        ("numero:evt_dead", "numero", "evt_dead", 1, "gave up")
    );
    assert!(letter.failed_at_ms >= letter.accepted_at_ms, "{letter:?}");
    assert_eq!(accept(&queue, "evt_dead").await, Accept::Duplicate);
    assert_eq!(claim_answer(&queue, "evt_dead").await, "done");
    assert!(take(&queue, 10, LONG).await.is_empty());

    let admin = backend.store().await;
    assert!(!admin.replay(&job_key("nothing-here")).await.unwrap());
    assert!(admin.replay(&job_key("evt_dead")).await.unwrap());
    assert!(
        !admin.replay(&job_key("evt_dead")).await.unwrap(),
        "replayed once"
    );
    assert_eq!(queue.counts().await.unwrap(), counts(1, 0, 0));
    assert!(queue.dead_letters(10).await.unwrap().is_empty());
    assert_eq!(accept(&queue, "evt_dead").await, Accept::Duplicate);
    let job = take_one(&queue, "evt_dead", LONG).await;
    assert_eq!(job.attempt, 2, "attempts carry over a replay");
    assert!(queue.finish(job.lease, done()).await.unwrap());
    assert_eq!(queue.counts().await.unwrap(), counts(0, 0, 0));
}

/// Dead letters come oldest failure first, at most `limit` of them.
pub async fn dead_letters_are_listed_oldest_first<B: Backend<Store: QueueAdmin>>() {
    let backend = B::open().await;
    let queue = backend.store().await;
    let ids = ["evt_first", "evt_second", "evt_third"];
    for id in ids {
        assert_eq!(accept(&queue, id).await, Accept::Accepted);
    }
    let mut jobs: HashMap<JobKey, Job<_>> = take(&queue, 10, LONG)
        .await
        .into_iter()
        .map(|job| (job.key.clone(), job))
        .collect();
    for id in ids {
        let job = jobs.remove(format!("numero:{id}").as_str()).unwrap();
        assert!(queue.finish(job.lease, dead(LONG)).await.unwrap());
        // Failure times are kept in milliseconds.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let listed: Vec<String> = queue
        .dead_letters(2)
        .await
        .unwrap()
        .into_iter()
        .map(|letter| letter.id)
        .collect();
    assert_eq!(listed, ["evt_first", "evt_second"]);
    assert_eq!(queue.dead_letters(10).await.unwrap().len(), 3);
}

/// Past its retention a dead letter is gone: not listed, not counted, not
/// replayable, and the event can be accepted again.
pub async fn dead_letters_expire_after_their_retention<B: Backend<Store: QueueAdmin>>() {
    let backend = B::open().await;
    let queue = backend.store().await;
    assert_eq!(accept(&queue, "evt_gone").await, Accept::Accepted);
    let job = take_one(&queue, "evt_gone", LONG).await;
    assert!(queue.finish(job.lease, dead(SHORT)).await.unwrap());
    assert_eq!(queue.dead_letters(10).await.unwrap().len(), 1);
    past_short().await;
    assert!(queue.dead_letters(10).await.unwrap().is_empty());
    assert_eq!(queue.counts().await.unwrap(), counts(0, 0, 0));
    assert!(!queue.replay(&job_key("evt_gone")).await.unwrap());
    assert_eq!(accept(&queue, "evt_gone").await, Accept::Accepted);
}

/// A worker whose lease ran out (it died) loses the job to the next take,
/// as attempt 2; its late renew and finishes answer `false` and change
/// nothing, while the newer lease still holds.
pub async fn a_stale_job_lease_can_neither_renew_nor_finish<B: Backend<Store: QueueAdmin>>() {
    let backend = B::open().await;
    let queue = backend.store().await;
    assert_eq!(accept(&queue, "evt_orphan").await, Accept::Accepted);
    let stale = take_one(&queue, "evt_orphan", SHORT).await.lease;
    past_short().await;
    let newer = take_one(&queue, "evt_orphan", LONG).await;
    assert_eq!(newer.attempt, 2);

    assert!(!queue.renew(&stale, LONG).await.unwrap());
    assert!(!queue.finish(stale.clone(), done()).await.unwrap());
    let retry = JobOutcome::Retry {
        due: SystemTime::now(),
        error: "late".into(),
    };
    assert!(!queue.finish(stale.clone(), retry).await.unwrap());
    assert!(!queue.finish(stale.clone(), dead(LONG)).await.unwrap());
    assert_eq!(
        queue.counts().await.unwrap(),
        counts(0, 1, 0),
        "still the newer's"
    );
    assert!(queue.dead_letters(10).await.unwrap().is_empty());
    assert!(take(&queue, 10, LONG).await.is_empty());

    assert!(queue.renew(&newer.lease, LONG).await.unwrap());
    assert!(queue.finish(newer.lease, done()).await.unwrap());
    assert!(!queue.finish(stale, dead(LONG)).await.unwrap(), "nor after");
    assert_eq!(queue.counts().await.unwrap(), counts(0, 0, 0));
    assert_eq!(claim_answer(&queue, "evt_orphan").await, "done");
}

/// An inline claim makes a queued copy a duplicate (held or done); a
/// queued job answers an inline claim in flight (pending or running).
pub async fn inline_claims_and_queued_jobs_exclude_each_other<B: Backend<Store: QueueAdmin>>() {
    let backend = B::open().await;
    let queue = backend.store().await;

    let inline = new_claim(&queue, &key("evt_inline"), LONG).await;
    assert_eq!(accept(&queue, "evt_inline").await, Accept::Duplicate);
    queue.complete(inline, LONG).await.unwrap();
    assert_eq!(accept(&queue, "evt_inline").await, Accept::Duplicate);
    assert_eq!(
        queue.counts().await.unwrap(),
        counts(0, 0, 0),
        "nothing recorded"
    );

    assert_eq!(accept(&queue, "evt_queued").await, Accept::Accepted);
    assert_eq!(claim_answer(&queue, "evt_queued").await, "in flight");
    let job = take_one(&queue, "evt_queued", LONG).await;
    assert_eq!(claim_answer(&queue, "evt_queued").await, "in flight");
    assert!(queue.finish(job.lease, done()).await.unwrap());
    assert_eq!(claim_answer(&queue, "evt_queued").await, "done");
}

/// An inline claim whose lease ran out, or a done mark whose TTL ended,
/// leaves its key free for a queued delivery.
pub async fn claims_and_done_marks_that_ran_out_free_the_key<B: Backend<Store: QueueAdmin>>() {
    let backend = B::open().await;
    let queue = backend.store().await;
    let _crashed = new_claim(&queue, &key("evt_claimed"), SHORT).await;
    let lease = new_claim(&queue, &key("evt_done"), LONG).await;
    queue.complete(lease, SHORT).await.unwrap();
    assert_eq!(accept(&queue, "evt_claimed").await, Accept::Duplicate);
    assert_eq!(accept(&queue, "evt_done").await, Accept::Duplicate);
    past_short().await;
    assert_eq!(accept(&queue, "evt_claimed").await, Accept::Accepted);
    assert_eq!(accept(&queue, "evt_done").await, Accept::Accepted);
    assert_eq!(queue.counts().await.unwrap(), counts(2, 0, 0));
}

/// 200 concurrent accepts of one key: one job, 199 duplicates.
pub async fn concurrent_accepts_of_one_key_make_one_job<B: Backend<Store: QueueAdmin>>() {
    let backend = B::open().await;
    let queue = backend.store().await;
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let queue = queue.clone();
            tokio::spawn(async move { accept(&queue, "evt_once").await })
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
    assert_eq!(queue.counts().await.unwrap(), counts(1, 0, 0));
}
