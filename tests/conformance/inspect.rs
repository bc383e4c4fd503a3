//! The [`QueueInspect`] calls: jobs listed by state with their failures,
//! one dead letter in full, discarding one, and replaying a scheme's dead
//! letters, bounded per call.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tower_webhook::queue::{
    Accept, Job, JobOutcome, JobQueue, JobState, QueueAdmin, QueueCounts, QueueInspect, TakeRequest,
};
use tower_webhook::{EventId, IdempotencyKey, JobKey, Tenant};

use crate::{Backend, LONG, delivery, job_key, key};

macro_rules! cases {
    ($backend:ty) => {
        crate::tests!($backend, inspect: [
            jobs_are_listed_by_state_with_their_last_failure,
            a_dead_letter_is_read_in_full_with_its_delivery,
            a_discarded_dead_letter_is_gone_and_its_key_free,
            replay_scheme_replays_that_schemes_dead_letters_up_to_max,
            a_tenants_job_is_listed_with_its_tenant,
        ]);
    };
}
pub(crate) use cases;

async fn take_all<Q: JobQueue>(queue: &Q, scheme: &str) -> Vec<Job<Q::JobLease>> {
    let request = TakeRequest::new(Arc::from(vec![Box::from(scheme)]), 100, LONG);
    queue.take(request).await.unwrap().jobs
}

fn dead(error: &str) -> JobOutcome {
    JobOutcome::Dead {
        error: error.into(),
        retain: LONG,
    }
}

/// A Numero delivery recorded under another scheme's name (the queue
/// never parses it).
fn delivery_of(scheme: &'static str, id: &str) -> (IdempotencyKey, tower_webhook::queue::Delivery) {
    let mut recorded = delivery(id);
    recorded.scheme = scheme.into();
    (
        IdempotencyKey::new(scheme, &EventId::new(id).unwrap()),
        recorded,
    )
}

/// Accepts each id and buries it with `error`.
async fn bury<Q: QueueInspect>(queue: &Q, scheme: &'static str, ids: &[&str], error: &str) {
    // One at a time, so they die in the order given: jobs due in the same
    // millisecond may be taken in any order.
    for id in ids {
        let (key, recorded) = delivery_of(scheme, id);
        assert_eq!(
            queue.accept(&key, recorded).await.unwrap(),
            Accept::Accepted
        );
        for job in take_all(queue, scheme).await {
            assert!(queue.finish(job.lease, dead(error)).await.unwrap());
            // Failure times are kept in milliseconds.
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
    }
}

/// Pending, running and dead jobs each list under their state, with
/// attempts, the last error (cut to its bound) and when it happened.
pub async fn jobs_are_listed_by_state_with_their_last_failure<B: Backend<Store: QueueInspect>>() {
    let backend = B::open().await;
    let queue = backend.store().await;
    let before = tower_webhook::queue::unix_millis(SystemTime::now());
    for id in ["evt_retried", "evt_waiting"] {
        assert_eq!(
            queue.accept(&key(id), delivery(id)).await.unwrap(),
            Accept::Accepted
        );
    }
    let pending = queue.jobs(JobState::Pending, 10).await.unwrap();
    assert_eq!(pending.len(), 2, "{pending:?}");
    assert!(pending.iter().all(|job| job.attempts == 0
        && job.last_error.is_empty()
        && job.last_attempt_at_ms == 0
        && job.accepted_at_ms + 1000 >= before
        && job.state == JobState::Pending
        && job.tenant.is_none()));

    let mut jobs = take_all(&queue, "numero").await;
    assert_eq!(jobs.len(), 2);
    let running = queue.jobs(JobState::Running, 10).await.unwrap();
    assert_eq!(running.len(), 2, "{running:?}");
    assert!(running.iter().all(|job| job.attempts == 1));
    jobs.sort_by(|a, b| a.key.cmp(&b.key));
    let waiting = jobs.pop().unwrap();
    let retried = jobs.pop().unwrap();
    assert_eq!(retried.key, "numero:evt_retried");
    let long_error = "handler answered 500: ".to_owned() + &"é".repeat(2000);
    let retry = JobOutcome::Retry {
        due: SystemTime::now() + LONG,
        error: long_error.clone(),
    };
    assert!(queue.finish(retried.lease, retry).await.unwrap());
    assert!(queue.finish(waiting.lease, dead("gave up")).await.unwrap());

    let pending = queue.jobs(JobState::Pending, 10).await.unwrap();
    assert_eq!(pending.len(), 1, "{pending:?}");
    let job = &pending[0];
    assert_eq!(
        (job.key.as_str(), job.id.as_str()),
        ("numero:evt_retried", "evt_retried")
    );
    assert_eq!((job.scheme.as_str(), job.attempts), ("numero", 1));
    assert!(job.last_error.len() <= tower_webhook::store::admin::MAX_LISTED_ERROR_BYTES);
    assert!(job.last_error.len() > 100, "{}", job.last_error);
    assert!(long_error.starts_with(job.last_error.trim_end_matches('…')));
    assert!(job.last_attempt_at_ms >= job.accepted_at_ms, "{job:?}");
    assert!(queue.jobs(JobState::Running, 10).await.unwrap().is_empty());
    let buried = queue.jobs(JobState::Dead, 10).await.unwrap();
    assert_eq!(buried.len(), 1, "{buried:?}");
    assert_eq!(
        (
            buried[0].key.as_str(),
            buried[0].last_error.as_str(),
            buried[0].attempts
        ),
        ("numero:evt_waiting", "gave up", 1)
    );
    assert!(buried[0].last_attempt_at_ms >= buried[0].accepted_at_ms);
    assert_eq!(queue.jobs(JobState::Pending, 0).await.unwrap(), []);
}

/// A dead letter reads back with every recorded header and its body, from
/// another handle; none is read for a key that holds no dead letter.
pub async fn a_dead_letter_is_read_in_full_with_its_delivery<B: Backend<Store: QueueInspect>>() {
    let backend = B::open().await;
    let queue = backend.store().await;
    bury(&queue, "numero", &["evt_full"], "handler answered 500").await;
    let admin = backend.store().await;
    let letter = admin
        .dead_letter(&job_key("evt_full"))
        .await
        .unwrap()
        .unwrap();
    let recorded = delivery("evt_full");
    assert_eq!(letter.summary.key, "numero:evt_full");
    assert_eq!(letter.summary.state, JobState::Dead);
    assert_eq!(letter.summary.last_error, "handler answered 500");
    assert_eq!(letter.delivery.method, recorded.method);
    assert_eq!(letter.delivery.uri, recorded.uri);
    assert_eq!(letter.delivery.headers, recorded.headers);
    assert_eq!(letter.delivery.body, recorded.body);
    assert!(
        admin
            .dead_letter(&job_key("nothing"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(admin.replay(&job_key("evt_full")).await.unwrap());
    assert!(
        admin
            .dead_letter(&job_key("evt_full"))
            .await
            .unwrap()
            .is_none(),
        "pending again, not a dead letter"
    );
}

/// Discarded, a dead letter is neither listed, counted, read nor
/// replayable, and a new copy of its event is accepted; a pending job is
/// not discarded.
pub async fn a_discarded_dead_letter_is_gone_and_its_key_free<B: Backend<Store: QueueInspect>>() {
    let backend = B::open().await;
    let queue = backend.store().await;
    bury(&queue, "numero", &["evt_dropped", "evt_kept"], "gave up").await;
    assert!(queue.discard(&job_key("evt_dropped")).await.unwrap());
    assert!(
        !queue.discard(&job_key("evt_dropped")).await.unwrap(),
        "once"
    );
    let listed: Vec<JobKey> = queue
        .dead_letters(10)
        .await
        .unwrap()
        .into_iter()
        .map(|letter| letter.key)
        .collect();
    assert_eq!(listed, ["numero:evt_kept"]);
    assert_eq!(queue.counts().await.unwrap().dead, 1);
    assert!(
        queue
            .dead_letter(&job_key("evt_dropped"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(!queue.replay(&job_key("evt_dropped")).await.unwrap());
    assert_eq!(
        queue
            .accept(&key("evt_dropped"), delivery("evt_dropped"))
            .await
            .unwrap(),
        Accept::Accepted,
        "its key is free"
    );
    assert!(
        !queue.discard(&job_key("evt_dropped")).await.unwrap(),
        "pending"
    );
    assert_eq!(
        queue.counts().await.unwrap(),
        QueueCounts {
            pending: 1,
            running: 0,
            dead: 1
        }
    );
}

/// `replay_scheme` replays that scheme's dead letters only, at most `max`
/// a call, and answers how many.
pub async fn replay_scheme_replays_that_schemes_dead_letters_up_to_max<
    B: Backend<Store: QueueInspect>,
>() {
    let backend = B::open().await;
    let queue = backend.store().await;
    bury(&queue, "numero", &["evt_1", "evt_2", "evt_3"], "gave up").await;
    bury(&queue, "github", &["evt_gh"], "gave up").await;
    assert_eq!(queue.replay_scheme("numero", 2).await.unwrap(), 2);
    let left: Vec<JobKey> = queue
        .jobs(JobState::Dead, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|job| job.key)
        .collect();
    assert_eq!(left, ["numero:evt_3", "github:evt_gh"], "oldest first went");
    assert_eq!(queue.replay_scheme("numero", 10).await.unwrap(), 1);
    assert_eq!(queue.replay_scheme("numero", 10).await.unwrap(), 0);
    assert_eq!(queue.jobs(JobState::Pending, 10).await.unwrap().len(), 3);
    assert_eq!(
        queue.jobs(JobState::Dead, 10).await.unwrap()[0].key,
        "github:evt_gh"
    );
}

/// A job of a tenant's delivery lists the tenant, read from its key.
pub async fn a_tenants_job_is_listed_with_its_tenant<B: Backend<Store: QueueInspect>>() {
    let backend = B::open().await;
    let queue = backend.store().await;
    let tenanted = key("evt_t").with_tenant(Tenant::new("acme").unwrap());
    assert_eq!(
        queue.accept(&tenanted, delivery("evt_t")).await.unwrap(),
        Accept::Accepted
    );
    let listed = queue.jobs(JobState::Pending, 10).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].tenant.as_deref(), Some("acme"));
    assert_eq!(listed[0].key, "numero/acme:evt_t");
    assert_eq!(listed[0].key.tenant(), Some("acme"));
    assert_eq!(listed[0].id, "evt_t");
}
