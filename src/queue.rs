//! Queued mode: answer the sender as soon as the delivery is durable, then
//! run the handler from a [`Worker`], with retries, backoff and dead letters.
//!
//! ```text
//! inline:  … ─► typed event ─► claim ─────────────────────► inner service ─► complete / release
//! queued:  … ─► typed event ─► claim + record (1 txn) ─► 202     worker ─► inner service ─► done / retry later / dead letter
//! ```
//!
//! A layer switches to queued mode with one builder call,
//! [`WebhookLayerBuilder::queued`](crate::WebhookLayerBuilder::queued). The
//! intake then verifies and parses as in inline mode, records the delivery
//! (method, URI, headers, raw body, event id) together with its claim in one
//! atomic step of the [`JobQueue`], and answers `202 {"status":"accepted"}`
//! only once that step is durable. The service the layer wraps on its route
//! is not called in queued mode: the worker is handed the handler
//! explicitly, with [`Worker::handle`] and
//! [`WebhookLayer::job_handler`](crate::WebhookLayer::job_handler), and calls
//! it for each job on the rebuilt request, with the typed event and its
//! [`EventId`](crate::EventId) (one [`Verified`](crate::Verified) entry) and
//! the [`Attempt`] in the extensions. Pass it the same handler as the route
//! and one handler serves both modes. Jobs recorded before a restart run as
//! soon as the handler is handed over, before any request arrives. [`Worker`]
//! shows it whole.
//!
//! | job state | a copy of the event gets | leaves it by |
//! |---|---|---|
//! | pending (due now or after a backoff) | 200 `duplicate` | a worker taking it |
//! | running (leased, lease renewed while the handler runs) | 200 `duplicate` | 2xx → done; failure → pending or dead; lease running out (process died) → taken again |
//! | done | 200 `duplicate` | the done TTL ending |
//! | dead letter | 200 `duplicate` | [`Worker::replay`] (back to pending), or its retention ending |
//!
//! # Guarantees
//!
//! Acceptance is exactly once: one copy of an event is recorded, every
//! other copy is a duplicate. The handler runs **at least once** per accepted
//! event: a process that dies mid-handler (`kill -9`, power loss) leaves its
//! job running with a lease, and once that lease runs out a worker takes the
//! job again, so the handler may run a second time for that event. Use the
//! [`Verified`](crate::Verified) entry's `id` to make the handler's own
//! effect idempotent (a unique constraint, an upsert).
//!
//! # Flow control
//!
//! * **Attempts are counted when a job is taken**, before the handler runs,
//!   so a handler that kills its process (abort, OOM kill, `kill -9`)
//!   still uses up attempts: its job is taken again once its lease runs out
//!   ([`Job::interrupted`]), and past [`RetryPolicy::max_attempts`] it is a
//!   dead letter without running again (`attempt N did not return (lease
//!   ran out)`). Always on.
//! * **Per-key order**:
//!   [`WebhookLayerBuilder::order_by`](crate::WebhookLayerBuilder::order_by)
//!   (a closure over the typed event) or
//!   [`order_by_pointer`](crate::WebhookLayerBuilder::order_by_pointer) (a
//!   JSON pointer into the verified body) names each event's
//!   [`Delivery::order_key`]. Jobs of a scheme with one key run one at a
//!   time in acceptance order; a failing one holds back the later ones
//!   until it is done or a dead letter (which says so). Default: none. Cost:
//!   an index probe (SQLite), a list push and pop (Redis) or a map lookup
//!   (memory) per accept and per job done; the pointer parses the body once
//!   more.
//! * **Concurrency cap per scheme**:
//!   [`WorkerBuilder::max_running_per_scheme`], counted in the backend over
//!   every process's live leases. Default: none. Cost: one count per take.
//! * **Concurrency cap per tenant**:
//!   [`WorkerBuilder::max_running_per_tenant`], the same over each tenant's
//!   jobs of every scheme. Default: none. Cost: one pass over the running
//!   jobs per take.
//! * **Backpressure**: [`WorkerBuilder::max_pending_per_scheme`]; past it
//!   the layer answers `503 queue_full` with `Retry-After` from the headers
//!   alone. Default: unbounded. Cost: one atomic load per delivery.
//!
//! # Backends
//!
//! A backend is one type implementing [`JobQueue`] (and, for the
//! operator's calls and the gauges, [`QueueAdmin`]): [`MemoryQueue`] (tests
//! and development: same semantics, nothing survives the process),
//! `SqliteStore` (feature `sqlite`: one machine, durable) and `RedisStore`
//! (feature `redis`: several replicas share one queue).

mod backlog;
mod retry;
pub(crate) mod runner;
mod worker;

pub use crate::store::memory::MemoryQueue;
pub use retry::RetryPolicy;
pub use runner::JobHandler;
pub use worker::{
    DEFAULT_ATTEMPT_TIMEOUT, DEFAULT_CONCURRENCY, DEFAULT_IDLE_POLL, ShutdownReport, Worker,
    WorkerBuilder,
};

/// The operator's further calls (jobs by state, one dead letter in full,
/// replay of a scheme, discard), defined with the admin contract.
pub use crate::store::admin::{DeadLetterDetail, JobState, JobSummary, QueueInspect};

/// The queue contract, defined with the other backend contracts in
/// [`crate::store`].
pub use crate::store::queue::{
    Accept, DEFAULT_DEAD_LETTER_TTL, DeadLetter, Delivery, Job, JobOutcome, JobQueue, QueueAdmin,
    QueueCounts, QueueFuture, TakeRequest, Taken, from_unix_millis, unix_millis,
};

/// Which attempt at a job this handler run is, 1-based. In the request
/// extensions of every run the [`Worker`] makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Attempt(pub u32);
