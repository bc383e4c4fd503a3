//! Queued mode on [`SqliteStore`]: the shared contract over real HTTP, each
//! case on a fresh database file.

mod queue_contract;

use queue_contract::{self as contract, TempDir};
use tower_webhook::SqliteStore;
use tower_webhook::queue::Worker;

/// A store on a new file in `dir`.
fn store(dir: &TempDir) -> SqliteStore {
    SqliteStore::open(dir.join("queue.db")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_then_run_once() {
    let dir = TempDir::new();
    contract::accepted_then_run_once(store(&dir)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_jobs_run_without_a_request() {
    let dir = TempDir::new();
    contract::recorded_jobs_run_without_a_request(store(&dir)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_copies_make_one_job() {
    let dir = TempDir::new();
    contract::concurrent_copies_make_one_job(store(&dir), 200).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_retried_until_done() {
    let dir = TempDir::new();
    contract::failures_are_retried_until_done(store(&dir), false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panics_are_retried_until_done() {
    let dir = TempDir::new();
    contract::failures_are_retried_until_done(store(&dir), true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_kept_and_replayed() {
    let dir = TempDir::new();
    // Replay through a second store and worker on the same file: another
    // process (an admin tool) can.
    let other = Worker::builder(store(&dir)).start();
    contract::dead_letters_are_kept_and_replayed(store(&dir), other).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_handlers_do_not_hold_the_sender() {
    let dir = TempDir::new();
    contract::slow_handlers_do_not_hold_the_sender(store(&dir)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_running_attempts_finish() {
    let dir = TempDir::new();
    contract::shutdown_lets_running_attempts_finish(store(&dir)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_attempts_still_run() {
    let dir = TempDir::new();
    contract::late_attempts_still_run(store(&dir)).await;
}
