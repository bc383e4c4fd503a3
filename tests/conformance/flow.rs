//! Flow control on the [`JobQueue`] calls: order keys (one job of a key
//! at a time, in acceptance order, a failing one holding back the later
//! ones), the per-scheme and per-tenant caps on running jobs across
//! handles, and the
//! attempt that did not return.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tower_webhook::queue::{
    Accept, Job, JobOutcome, JobQueue, QueueAdmin, QueueCounts, TakeRequest,
};
use tower_webhook::{EventId, IdempotencyKey, Tenant};

use crate::{Backend, LONG, SHORT, delivery, job_key, key, past_short};

macro_rules! cases {
    ($backend:ty) => {
        crate::tests!($backend, flow: [
            jobs_of_one_order_key_run_one_at_a_time_in_acceptance_order,
            a_dead_letter_lets_the_next_job_of_its_key_run,
            a_replayed_dead_letter_joins_the_end_of_its_line,
            a_job_whose_lease_ran_out_is_taken_as_interrupted,
            the_cap_per_scheme_holds_across_handles,
            the_cap_per_tenant_holds_across_schemes_and_handles,
            the_caps_hold_when_two_handles_take_at_once,
        ]);
    };
}
pub(crate) use cases;

async fn accept_keyed<Q: JobQueue>(queue: &Q, id: &str, order: Option<&str>) {
    let mut recorded = delivery(id);
    recorded.order_key = order.map(str::to_owned);
    queue.accept(&key(id), recorded).await.unwrap();
}

async fn take_capped<Q: JobQueue>(
    queue: &Q,
    lease: Duration,
    cap: Option<usize>,
) -> Vec<Job<Q::JobLease>> {
    let mut request = TakeRequest::new(Arc::from(vec![Box::from("numero")]), 10, lease);
    request.max_running_per_scheme = cap;
    queue.take(request).await.unwrap().jobs
}

/// Records the job of `scheme`'s event `id` for `tenant`.
async fn accept_for_tenant<Q: JobQueue>(queue: &Q, scheme: &'static str, tenant: &str, id: &str) {
    let mut recorded = delivery(id);
    recorded.scheme = scheme.to_owned();
    let key = IdempotencyKey::new(scheme, &EventId::new(id).unwrap())
        .with_tenant(Tenant::new(tenant).unwrap());
    let accepted = queue.accept(&key, recorded).await.unwrap();
    assert_eq!(accepted, Accept::Accepted);
}

/// Takes due jobs of both schemes, at most `cap` per tenant.
async fn take_per_tenant<Q: JobQueue>(queue: &Q, cap: Option<usize>) -> Vec<Job<Q::JobLease>> {
    let schemes = Arc::from(vec![Box::from("numero"), Box::from("numberotp")]);
    let mut request = TakeRequest::new(schemes, 10, LONG);
    request.max_running_per_tenant = cap;
    queue.take(request).await.unwrap().jobs
}

/// How many of `jobs` are `tenant`'s.
fn of_tenant<L>(jobs: &[Job<L>], tenant: &str) -> usize {
    jobs.iter()
        .filter(|j| j.key.tenant() == Some(tenant))
        .count()
}

/// The event ids of `jobs`, sorted.
fn ids<L>(jobs: &[Job<L>]) -> Vec<&str> {
    let mut ids: Vec<&str> = jobs.iter().map(|j| j.delivery.event_id.as_str()).collect();
    ids.sort_unstable();
    ids
}

fn retry_now() -> JobOutcome {
    JobOutcome::Retry {
        due: SystemTime::now(),
        error: "failed".into(),
    }
}

fn done() -> JobOutcome {
    JobOutcome::Done { ttl: LONG }
}

fn dead() -> JobOutcome {
    JobOutcome::Dead {
        error: "gave up".into(),
        retain: LONG,
    }
}

/// Finishes the one job of `jobs` whose event is `id`.
async fn finish<Q: JobQueue>(
    queue: &Q,
    jobs: &mut Vec<Job<Q::JobLease>>,
    id: &str,
    how: JobOutcome,
) {
    let at = jobs
        .iter()
        .position(|j| j.delivery.event_id == id)
        .unwrap_or_else(|| panic!("{id} was not taken: {jobs:?}"));
    let job = jobs.remove(at);
    assert!(queue.finish(job.lease, how).await.unwrap());
}

/// Only the first job of a key is taken; its retry holds the later ones
/// back (the retry runs again first), and each done job lets the next run.
/// Other keys and unkeyed jobs run beside it; held jobs count as pending.
pub async fn jobs_of_one_order_key_run_one_at_a_time_in_acceptance_order<
    B: Backend<Store: QueueAdmin>,
>() {
    let backend = B::open().await;
    let queue = backend.store().await;
    for (id, order) in [
        ("evt_a1", Some("A")),
        ("evt_a2", Some("A")),
        ("evt_b1", Some("B")),
        ("evt_a3", Some("A")),
        ("evt_free", None),
    ] {
        accept_keyed(&queue, id, order).await;
    }
    let mut running = take_capped(&queue, LONG, None).await;
    assert_eq!(ids(&running), ["evt_a1", "evt_b1", "evt_free"]);
    assert_eq!(
        running[0].delivery.order_key.is_some(),
        running[0].delivery.event_id != "evt_free"
    );
    let counts = queue.counts().await.unwrap();
    assert_eq!(
        counts,
        QueueCounts {
            pending: 2,
            running: 3,
            dead: 0
        }
    );
    finish(&queue, &mut running, "evt_a1", retry_now()).await;
    let mut again = take_capped(&queue, LONG, None).await;
    assert_eq!(ids(&again), ["evt_a1"], "the failed job first, not evt_a2");
    assert_eq!(again[0].attempt, 2);
    assert_eq!(again[0].delivery.order_key.as_deref(), Some("A"));
    finish(&queue, &mut again, "evt_a1", done()).await;
    let mut next = take_capped(&queue, LONG, None).await;
    assert_eq!(ids(&next), ["evt_a2"]);
    finish(&queue, &mut next, "evt_a2", done()).await;
    assert_eq!(ids(&take_capped(&queue, LONG, None).await), ["evt_a3"]);
}

/// A job of a key that becomes a dead letter no longer holds back the
/// next one; a new job of a busy key waits behind the line.
pub async fn a_dead_letter_lets_the_next_job_of_its_key_run<B: Backend<Store: QueueAdmin>>() {
    let backend = B::open().await;
    let queue = backend.store().await;
    accept_keyed(&queue, "evt_first", Some("K")).await;
    accept_keyed(&queue, "evt_second", Some("K")).await;
    let mut first = take_capped(&queue, LONG, None).await;
    assert_eq!(ids(&first), ["evt_first"]);
    accept_keyed(&backend.store().await, "evt_third", Some("K")).await;
    assert!(take_capped(&queue, LONG, None).await.is_empty(), "held");
    finish(&queue, &mut first, "evt_first", dead()).await;
    let mut second = take_capped(&queue, LONG, None).await;
    assert_eq!(ids(&second), ["evt_second"]);
    assert_eq!(queue.dead_letters(10).await.unwrap().len(), 1);
    finish(&queue, &mut second, "evt_second", done()).await;
    assert_eq!(ids(&take_capped(&queue, LONG, None).await), ["evt_third"]);
}

/// A replayed dead letter of a busy key waits for the job running, then
/// runs.
pub async fn a_replayed_dead_letter_joins_the_end_of_its_line<B: Backend<Store: QueueAdmin>>() {
    let backend = B::open().await;
    let queue = backend.store().await;
    accept_keyed(&queue, "evt_buried", Some("K")).await;
    accept_keyed(&queue, "evt_after", Some("K")).await;
    let mut buried = take_capped(&queue, LONG, None).await;
    finish(&queue, &mut buried, "evt_buried", dead()).await;
    let mut after = take_capped(&queue, LONG, None).await;
    assert_eq!(ids(&after), ["evt_after"]);
    assert!(queue.replay(&job_key("evt_buried")).await.unwrap());
    assert!(
        take_capped(&queue, LONG, None).await.is_empty(),
        "behind evt_after"
    );
    finish(&queue, &mut after, "evt_after", done()).await;
    let replayed = take_capped(&queue, LONG, None).await;
    assert_eq!(ids(&replayed), ["evt_buried"]);
    assert_eq!(replayed[0].attempt, 2);
}

/// A job taken again after its lease ran out says so (the attempt before
/// did not return) and has counted that attempt; one taken after a
/// recorded failure does not.
pub async fn a_job_whose_lease_ran_out_is_taken_as_interrupted<B: Backend<Store: QueueAdmin>>() {
    let backend = B::open().await;
    let queue = backend.store().await;
    accept_keyed(&queue, "evt_crash", None).await;
    let first = take_capped(&queue, SHORT, None).await;
    assert_eq!((first[0].attempt, first[0].interrupted), (1, false));
    past_short().await;
    let mut second = take_capped(&backend.store().await, LONG, None).await;
    assert_eq!(ids(&second), ["evt_crash"]);
    assert_eq!((second[0].attempt, second[0].interrupted), (2, true));
    finish(&queue, &mut second, "evt_crash", retry_now()).await;
    let third = take_capped(&queue, LONG, None).await;
    assert_eq!((third[0].attempt, third[0].interrupted), (3, false));
}

/// With a cap of 2, a second handle (another process) takes nothing while
/// two jobs of the scheme run, and one once a job is done.
pub async fn the_cap_per_scheme_holds_across_handles<B: Backend<Store: QueueAdmin>>() {
    let backend = B::open().await;
    let queue = backend.store().await;
    let other = backend.store().await;
    for id in ["evt_1", "evt_2", "evt_3", "evt_4"] {
        accept_keyed(&queue, id, None).await;
    }
    let mut running = take_capped(&queue, LONG, Some(2)).await;
    assert_eq!(running.len(), 2, "{running:?}");
    assert!(
        take_capped(&other, LONG, Some(2)).await.is_empty(),
        "at the cap"
    );
    let id = running[0].delivery.event_id.clone();
    finish(&queue, &mut running, &id, done()).await;
    assert_eq!(take_capped(&other, LONG, Some(2)).await.len(), 1);
    assert_eq!(take_capped(&other, LONG, None).await.len(), 1, "no cap");
}

/// With a cap of 1 per tenant, `acme`'s three jobs (over two schemes) run
/// one at a time across two handles, while `globex`'s job and a job with
/// no tenant are not held back by them.
pub async fn the_cap_per_tenant_holds_across_schemes_and_handles<B: Backend<Store: QueueAdmin>>() {
    let backend = B::open().await;
    let queue = backend.store().await;
    let other = backend.store().await;
    accept_for_tenant(&queue, "numero", "acme", "evt_a1").await;
    accept_for_tenant(&queue, "numberotp", "acme", "evt_a2").await;
    accept_for_tenant(&queue, "numero", "acme", "evt_a3").await;
    accept_for_tenant(&queue, "numero", "globex", "evt_g1").await;
    accept_keyed(&queue, "evt_n1", None).await;

    let mut running = take_per_tenant(&queue, Some(1)).await;
    assert_eq!(
        running.len(),
        3,
        "one of acme, globex's, the untenanted: {running:?}"
    );
    assert_eq!(of_tenant(&running, "acme"), 1, "{running:?}");
    assert_eq!(of_tenant(&running, "globex"), 1, "{running:?}");
    assert!(
        take_per_tenant(&other, Some(1)).await.is_empty(),
        "acme is at its cap in the other handle, over both schemes"
    );

    let acme = running.iter().find(|j| j.key.tenant() == Some("acme"));
    let id = acme.unwrap().delivery.event_id.clone();
    finish(&queue, &mut running, &id, done()).await;
    let next = take_per_tenant(&other, Some(1)).await;
    assert_eq!((next.len(), of_tenant(&next, "acme")), (1, 1), "{next:?}");
    assert!(
        take_per_tenant(&other, Some(1)).await.is_empty(),
        "at the cap again"
    );
    let uncapped = take_per_tenant(&other, None).await;
    assert_eq!(of_tenant(&uncapped, "acme"), 1, "no cap: {uncapped:?}");
}

/// Two handles taking at the same instant (on two threads), round after
/// round, never lease more than the caps allow between them.
pub async fn the_caps_hold_when_two_handles_take_at_once<B: Backend<Store: QueueAdmin>>() {
    let backend = B::open().await;
    let (queue, other) = (backend.store().await, backend.store().await);
    for n in 0..24 {
        accept_keyed(&queue, &format!("evt_{n}"), None).await;
        accept_for_tenant(&queue, "numberotp", "acme", &format!("evt_t{n}")).await;
    }
    let start = Arc::new(tokio::sync::Barrier::new(2));
    let take = |queue: &B::Store| {
        let (queue, start) = (queue.clone(), Arc::clone(&start));
        tokio::spawn(async move {
            let schemes = Arc::from(vec![Box::from("numero"), Box::from("numberotp")]);
            let mut request = TakeRequest::new(schemes, 10, LONG);
            request.max_running_per_scheme = Some(3);
            request.max_running_per_tenant = Some(2);
            start.wait().await;
            queue.take(request).await.unwrap().jobs
        })
    };
    for round in 0..8 {
        let (a, b) = tokio::join!(take(&queue), take(&other));
        let mut jobs = a.unwrap();
        jobs.extend(b.unwrap());
        let numero = jobs
            .iter()
            .filter(|j| j.delivery.scheme == "numero")
            .count();
        assert_eq!(
            numero, 3,
            "round {round}: the scheme cap between both: {jobs:?}"
        );
        assert_eq!(
            of_tenant(&jobs, "acme"),
            2,
            "round {round}: the tenant cap: {jobs:?}"
        );
        for job in jobs {
            assert!(queue.finish(job.lease, done()).await.unwrap());
        }
    }
}
