//! Queued mode on [`MemoryQueue`]: the shared contract over real HTTP.

mod queue_contract;

use queue_contract as contract;
use tower_webhook::queue::{MemoryQueue, Worker};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_then_run_once() {
    contract::accepted_then_run_once(MemoryQueue::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_jobs_run_without_a_request() {
    contract::recorded_jobs_run_without_a_request(MemoryQueue::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_copies_make_one_job() {
    contract::concurrent_copies_make_one_job(MemoryQueue::new(), 200).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_retried_until_done() {
    contract::failures_are_retried_until_done(MemoryQueue::new(), false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panics_are_retried_until_done() {
    contract::failures_are_retried_until_done(MemoryQueue::new(), true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_kept_and_replayed() {
    let queue = MemoryQueue::new();
    // Replay through a second worker on the same queue: any holder can.
    let other = Worker::builder(queue.clone()).start();
    contract::dead_letters_are_kept_and_replayed(queue, other).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_handlers_do_not_hold_the_sender() {
    contract::slow_handlers_do_not_hold_the_sender(MemoryQueue::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_running_attempts_finish() {
    contract::shutdown_lets_running_attempts_finish(MemoryQueue::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_attempts_still_run() {
    contract::late_attempts_still_run(MemoryQueue::new()).await;
}
