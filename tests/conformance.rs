//! One conformance suite for every backend: each case is written once,
//! generic over a [`Backend`], and `conformance!` expands every case of the
//! capabilities a backend lists into one `#[tokio::test]` each, named
//! `<backend>::<capability>::<case>` (`cargo test -p tower-webhook --test conformance
//! sqlite::queue::` runs one backend's queue cases).
//!
//! | capability | what it asks of the backend | cases in |
//! |---|---|---|
//! | `claims` | an [`IdempotencyStore`](tower_webhook::IdempotencyStore) | `conformance/claims.rs` |
//! | `queue` | a [`JobQueue`](tower_webhook::queue::JobQueue): its calls, flow control (order keys, caps, interrupted attempts), and a `Worker` over real HTTP | `conformance/queue.rs`, `conformance/flow.rs`, `conformance/worker.rs` |
//! | `inspect` | a [`QueueInspect`](tower_webhook::queue::QueueInspect): jobs by state, one dead letter in full, discard, replay of a scheme | `conformance/inspect.rs` |
//! | `persistence` | [`Persistent`]: claims, done marks and jobs survive a reopen | `conformance/persistence.rs` |
//!
//! A new backend implements [`Backend`] (and [`Persistent`] if it keeps its
//! data) in `conformance/backends.rs`, and joins with one line below.
//! Every case ends within [`TEST_LIMIT`]; leases and TTLs that a case lets
//! run out are [`SHORT`].

#[path = "harness/mod.rs"]
mod harness;
#[cfg(feature = "postgres")]
#[path = "support/postgres_server.rs"]
mod postgres_server;
#[cfg(feature = "redis")]
#[path = "support/redis_server.rs"]
mod redis_server;

#[path = "conformance/backends.rs"]
mod backends;
#[path = "conformance/claims.rs"]
mod claims;
#[path = "conformance/core_only.rs"]
mod core_only;
#[path = "conformance/flow.rs"]
mod flow;
#[path = "conformance/inspect.rs"]
mod inspect;
#[path = "conformance/persistence.rs"]
mod persistence;
#[path = "conformance/queue.rs"]
mod queue;
#[path = "conformance/worker.rs"]
mod worker;

use std::time::{Duration, Instant};

pub use backends::{Backend, Persistent};

conformance!(memory_store, MemoryStoreBackend; claims);
conformance!(memory_queue, MemoryQueueBackend; claims, queue, inspect);
#[cfg(feature = "sqlite")]
conformance!(sqlite, SqliteBackend; claims, queue, inspect, persistence);
#[cfg(feature = "redis")]
conformance!(redis, RedisBackend; claims, queue, inspect, persistence);
#[cfg(feature = "postgres")]
conformance!(postgres, PostgresBackend; claims, queue, inspect, persistence);

/// `conformance!(name, Backend; capability, …)`: a module `name` with the
/// tests of each listed capability on `backends::Backend`. A capability
/// the backend does not promise is not listed, so its cases do not exist
/// for it (and listing `persistence` needs [`Persistent`], `queue` a
/// `JobQueue`: the compiler holds the list to the backend).
macro_rules! conformance {
    ($name:ident, $backend:ident; $($capability:ident),+ $(,)?) => {
        mod $name {
            $( crate::$capability::cases!(crate::backends::$backend); )+
        }
    };
}
use conformance;

/// One test per case: `tests!(Backend, module: [case, …])` makes a module
/// `module` holding `#[tokio::test] fn case()` running
/// `crate::module::case::<Backend>()` within [`TEST_LIMIT`]. Each case
/// module's `cases!` calls it with its own list; a case missing from the
/// list is an unused function, which the lints refuse.
macro_rules! tests {
    ($backend:ty, $module:ident: [$($case:ident),+ $(,)?]) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    crate::within_limit(crate::$module::$case::<$backend>()).await;
                }
            )+
        }
    };
}
use tests;

/// Every case ends within this, or fails.
pub const TEST_LIMIT: Duration = Duration::from_secs(60);
/// A lease or TTL that a case lets run out.
pub const SHORT: Duration = Duration::from_millis(700);
/// A lease or TTL that never runs out within a case.
pub const LONG: Duration = Duration::from_secs(3600);
/// Every wait for an outcome ends by itself within this.
pub use harness::PATIENCE;

async fn within_limit(case: impl Future<Output = ()>) {
    tokio::time::timeout(TEST_LIMIT, case)
        .await
        .expect("the case did not end within TEST_LIMIT");
}

/// Sleeps until a [`SHORT`] lease or TTL begun now has surely run out.
pub async fn past_short() {
    tokio::time::sleep(SHORT * 2).await;
}

/// The key of the Numero event `id`, as the layer builds it (`key`) and as
/// a backend lists it (`job_key`).
pub use harness::{numero_delivery as delivery, numero_job_key as job_key, numero_key as key};

/// Polls `check` every 10 ms until it holds, or fails after [`PATIENCE`].
pub async fn eventually<F: Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    let deadline = Instant::now() + PATIENCE;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
