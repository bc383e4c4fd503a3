//! A backend with the [`JobQueue`] core and no [`QueueAdmin`]: what
//! [`Worker::builder_without_admin`] is for. The wrapper hands every core
//! call to a [`MemoryQueue`] and hides its admin calls, so the compiler
//! proves the worker needs none of them to run jobs.
//!
//! [`QueueAdmin`]: tower_webhook::QueueAdmin

use std::time::Duration;

use http::StatusCode;
use tower_webhook::queue::{
    Accept, Delivery, JobOutcome, JobQueue, QueueFuture, TakeRequest, Taken, Worker,
};
use tower_webhook::{Claim, IdempotencyKey, IdempotencyStore, MemoryQueue};

use crate::harness::numero_body;
use crate::harness::queued::{quick_retries, start};

/// [`MemoryQueue`] seen through the core contracts only.
#[derive(Clone, Default)]
struct CoreOnly(MemoryQueue);

type Lease = <MemoryQueue as IdempotencyStore>::Lease;
type JobLease = <MemoryQueue as JobQueue>::JobLease;

impl IdempotencyStore for CoreOnly {
    type Lease = Lease;
    type ClaimFuture = <MemoryQueue as IdempotencyStore>::ClaimFuture;
    type FinishFuture = <MemoryQueue as IdempotencyStore>::FinishFuture;
    type RenewFuture = <MemoryQueue as IdempotencyStore>::RenewFuture;

    fn claim(&self, key: &IdempotencyKey, lease: Duration) -> Self::ClaimFuture {
        self.0.claim(key, lease)
    }
    fn renew_claim(&self, lease: &Lease, lease_for: Duration) -> Self::RenewFuture {
        self.0.renew_claim(lease, lease_for)
    }
    fn complete(&self, lease: Lease, ttl: Duration) -> Self::FinishFuture {
        self.0.complete(lease, ttl)
    }
    fn release(&self, lease: Lease) -> Self::FinishFuture {
        self.0.release(lease)
    }
    fn release_abandoned(&self, lease: Lease) {
        self.0.release_abandoned(lease);
    }
}

impl JobQueue for CoreOnly {
    type JobLease = JobLease;

    fn accept(&self, key: &IdempotencyKey, delivery: Delivery) -> QueueFuture<Accept> {
        self.0.accept(key, delivery)
    }
    fn take(&self, request: TakeRequest) -> QueueFuture<Taken<JobLease>> {
        self.0.take(request)
    }
    fn renew(&self, lease: &JobLease, lease_for: Duration) -> QueueFuture<bool> {
        self.0.renew(lease, lease_for)
    }
    fn finish(&self, lease: JobLease, outcome: JobOutcome) -> QueueFuture<bool> {
        self.0.finish(lease, outcome)
    }
}

/// A worker on a core-only backend accepts, runs, retries and deduplicates
/// as any other: 202, a failed first attempt retried, then 200 duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_without_admin_runs_and_retries_jobs() {
    crate::within_limit(async {
        let queue = CoreOnly::default();
        let r = start(Worker::builder_without_admin(queue.clone()).retry(quick_retries(3))).await;
        r.seen.script.lock().unwrap().fail_first = 1;
        let body = numero_body("evt_core_only");
        let first = r.deliver(&body).await;
        assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.text());
        r.wait_until("the retried attempt to succeed", |s| s.successes() == 1)
            .await;
        let attempts: Vec<u32> = r.seen.runs().iter().map(|run| run.attempt).collect();
        assert_eq!(attempts, [1, 2]);
        let again = r.deliver(&body).await;
        assert_eq!(
            (again.status, again.text()),
            (StatusCode::OK, r#"{"status":"duplicate"}"#)
        );
        // The key is done in the backend itself, not only in the worker.
        let key = crate::key("evt_core_only");
        assert!(matches!(
            queue.claim(&key, Duration::from_secs(5)).await,
            Ok(Claim::Done)
        ));
    })
    .await;
}
