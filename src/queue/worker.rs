//! [`Worker`]: takes due jobs from a [`JobQueue`] and runs each through the
//! service its queued layer wrapped, with a lease renewed while the handler
//! runs, a per-attempt timeout, retries and dead letters.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock, Weak};
use std::time::{Duration, SystemTime};

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};

use super::backlog::Backlog;
use super::runner::{JobHandler, RunResult, Runner};
use super::{
    Accept, DEFAULT_DEAD_LETTER_TTL, DeadLetter, Delivery, Job, JobOutcome, JobQueue, QueueAdmin,
    QueueCounts, QueueFuture, QueueInspect, RetryPolicy, TakeRequest,
};
use crate::config::Intake;
use crate::metrics::{AttemptResult, QueueGauges, Stopwatch, attempt_ended};
use crate::store::{IdempotencyKey, JobKey, StoreError, StoreErrorKind};
use crate::trace::AttemptSpan;

/// Default number of handler runs at once: 4.
pub const DEFAULT_CONCURRENCY: usize = 4;
/// Default longest time one attempt may run: 5 minutes (10-second handlers
/// are normal; a hung one must not hold its job for ever).
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// Default longest sleep of an idle worker between two looks at the queue,
/// for work that no wake-up announces (another process's expired lease).
pub const DEFAULT_IDLE_POLL: Duration = Duration::from_secs(1);

/// Runs the jobs of every queued layer built with it, each with the
/// service it was handed for that layer's scheme ([`Worker::handle`]);
/// cheap to clone (one `Arc`).
///
/// ```no_run
/// use std::time::Duration;
/// use axum::{Router, http::StatusCode, routing::post};
/// use tower_webhook::numero::{Numero, NumeroEvent};
/// use tower_webhook::queue::{Attempt, MemoryQueue, Worker};
/// use tower_webhook::{VerifiedEvent, WebhookLayer};
///
/// async fn on_numero(VerifiedEvent(event): VerifiedEvent<NumeroEvent>) -> StatusCode {
///     println!("processing {}", event.id); // after the sender got its 202
///     StatusCode::OK
/// }
///
/// # #[tokio::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let worker = Worker::builder(MemoryQueue::new()).concurrency(4).start();
/// let layer = WebhookLayer::builder(Numero)
///     .secret("whsec_abcdefghijklmnopqrstuvwxyz123456789")
///     .queued(&worker) // the one call that switches to queued mode
///     .build()?;
/// // The worker is handed the handler explicitly: jobs recorded before a
/// // restart run from now on, before any request arrives.
/// worker.handle(layer.job_handler(post(on_numero)));
/// let app: Router = Router::new().route("/webhooks/numero", post(on_numero).route_layer(layer));
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// axum::serve(listener, app).await?;
/// worker.shutdown(Duration::from_secs(30)).await;
/// # Ok(())
/// # }
/// ```
pub struct Worker<Q: JobQueue> {
    shared: Arc<Shared<Q>>,
}

impl<Q: JobQueue> Clone for Worker<Q> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<Q: JobQueue + fmt::Debug> fmt::Debug for Worker<Q> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.shared;
        f.debug_struct("Worker")
            .field("queue", &s.queue)
            .field("concurrency", &s.settings.concurrency)
            .field(
                "running",
                &(s.settings.concurrency - s.permits.available_permits()),
            )
            .finish_non_exhaustive()
    }
}

/// Configures a [`Worker`]; [`WorkerBuilder::start`] starts it.
#[derive(Debug, Clone)]
pub struct WorkerBuilder<Q> {
    queue: Q,
    settings: Settings,
    read_counts: Option<ReadCounts<Q>>,
}

/// How the worker reads the counts per scheme for its gauges: present when
/// the queue is a [`QueueAdmin`].
type ReadCounts<Q> = fn(&Q) -> QueueFuture<Vec<(String, QueueCounts)>>;

#[derive(Debug, Clone)]
struct Settings {
    concurrency: usize,
    lease: Duration,
    attempt_timeout: Duration,
    retry: RetryPolicy,
    dead_letter_ttl: Duration,
    idle_poll: Duration,
    max_running_per_scheme: Option<usize>,
    max_running_per_tenant: Option<usize>,
    max_pending_per_scheme: Option<u64>,
}

struct Shared<Q: JobQueue> {
    queue: Q,
    settings: Settings,
    runners: RwLock<HashMap<&'static str, Arc<dyn Runner>>>,
    /// The schemes with a runner, as `take` wants them.
    schemes: RwLock<Arc<[Box<str>]>>,
    /// One permit per handler run at once.
    permits: Arc<Semaphore>,
    /// Wakes the taking loop: a job accepted here, a permit freed, a runner
    /// registered, a replay, or a shutdown.
    wake: Notify,
    stopping: AtomicBool,
    /// Set to `true` when running attempts must stop now.
    abort: watch::Sender<bool>,
    aborted: AtomicUsize,
    /// Feature `metrics`: the `webhook_queue_jobs` gauges, kept when the
    /// queue can count its jobs.
    gauges: QueueGauges,
    read_counts: Option<ReadCounts<Q>>,
    /// Pending jobs per scheme, for the intake's bound.
    backlog: Backlog,
    /// When the backlog was last set from the backend's counts.
    backlog_synced: std::sync::Mutex<Option<tokio::time::Instant>>,
}

/// What [`Worker::shutdown`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Whether every running attempt finished within the deadline.
    pub finished_in_time: bool,
    /// Attempts stopped at the deadline; their jobs are pending again.
    pub aborted: usize,
}

impl<Q: QueueAdmin> Worker<Q> {
    /// Starts a builder for a worker on `queue`, with the defaults above and
    /// [`RetryPolicy::default`]. The worker keeps the `webhook_queue_jobs`
    /// gauges (feature `metrics`) from the queue's counts.
    pub fn builder(queue: Q) -> WorkerBuilder<Q> {
        let mut builder = Self::builder_without_admin(queue);
        builder.read_counts = Some(|queue| queue.counts_by_scheme());
        builder
    }

    /// Counts jobs by state (across every process, for a shared backend).
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the backend cannot answer.
    pub async fn counts(&self) -> Result<QueueCounts, StoreError> {
        self.shared.queue.counts().await
    }

    /// Lists up to `limit` dead letters, oldest failure first.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the backend cannot answer.
    pub async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, StoreError> {
        self.shared.queue.dead_letters(limit).await
    }

    /// Puts the dead letter under `key` back in the queue, due now, with its
    /// attempts so far, and wakes the worker. `false` when there is none.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the backend cannot answer.
    pub async fn replay(&self, key: &JobKey) -> Result<bool, StoreError> {
        let replayed = self.shared.queue.replay(key).await?;
        if replayed {
            self.shared.wake.notify_one();
        }
        Ok(replayed)
    }
}

impl<Q: QueueInspect> Worker<Q> {
    /// Replays up to `max` dead letters of `scheme`
    /// ([`QueueInspect::replay_scheme`]) and wakes the worker; answers how
    /// many it replayed.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the backend cannot answer.
    pub async fn replay_scheme(&self, scheme: &str, max: usize) -> Result<u64, StoreError> {
        let replayed = self.shared.queue.replay_scheme(scheme, max).await?;
        if replayed > 0 {
            self.shared.wake.notify_one();
        }
        Ok(replayed)
    }
}

impl<Q: JobQueue> Worker<Q> {
    /// Starts a builder for a worker on a queue with the [`JobQueue`] core
    /// only: it runs jobs as [`Worker::builder`]'s does, and has no admin
    /// calls and no `webhook_queue_jobs` gauges.
    pub fn builder_without_admin(queue: Q) -> WorkerBuilder<Q> {
        WorkerBuilder {
            queue,
            settings: Settings {
                concurrency: DEFAULT_CONCURRENCY,
                lease: crate::config::DEFAULT_LEASE,
                attempt_timeout: DEFAULT_ATTEMPT_TIMEOUT,
                retry: RetryPolicy::default(),
                dead_letter_ttl: DEFAULT_DEAD_LETTER_TTL,
                idle_poll: DEFAULT_IDLE_POLL,
                max_running_per_scheme: None,
                max_running_per_tenant: None,
                max_pending_per_scheme: None,
            },
            read_counts: None,
        }
    }

    /// The queue this worker takes jobs from.
    pub fn queue(&self) -> &Q {
        &self.shared.queue
    }

    /// Stops taking jobs, lets running attempts finish within `deadline`,
    /// then stops those still running and puts their jobs back in the queue,
    /// due now. Pending jobs stay queued for the next start.
    pub async fn shutdown(&self, deadline: Duration) -> ShutdownReport {
        let shared = &self.shared;
        shared.stopping.store(true, Ordering::SeqCst);
        shared.wake.notify_one();
        let all = u32::try_from(shared.settings.concurrency).unwrap_or(u32::MAX);
        let finished_in_time = tokio::time::timeout(
            deadline,
            Arc::clone(&shared.permits).acquire_many_owned(all),
        )
        .await
        .is_ok();
        if !finished_in_time {
            shared.abort.send_replace(true);
            // Each stopped attempt records its job as pending; bounded in
            // case the store is down (the lease then frees the job).
            let _ = tokio::time::timeout(
                shared.settings.lease.min(Duration::from_secs(10)),
                Arc::clone(&shared.permits).acquire_many_owned(all),
            )
            .await;
        }
        ShutdownReport {
            finished_in_time,
            aborted: shared.aborted.load(Ordering::SeqCst),
        }
    }
}

impl<Q: JobQueue> WorkerBuilder<Q> {
    /// Handler runs at once, across every scheme (default
    /// [`DEFAULT_CONCURRENCY`], at least 1).
    #[must_use]
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.settings.concurrency = concurrency.max(1);
        self
    }

    /// How long a taken job is leased (default 5 min); the lease is renewed
    /// every third of it while the handler runs, so it only runs out when
    /// the process died. A job whose lease ran out is taken again.
    #[must_use]
    pub fn lease(mut self, lease: Duration) -> Self {
        self.settings.lease = lease.max(Duration::from_millis(30));
        self
    }

    /// At most `cap` jobs of one scheme running at once (at least 1),
    /// besides the total of [`WorkerBuilder::concurrency`]. The backend
    /// enforces it when jobs are taken, counting the running jobs of every
    /// process that shares the queue (SQLite: every process on the file;
    /// Redis: every replica), so it holds across replicas. Default: none.
    /// Cost: one count of the scheme's running jobs per take.
    #[must_use]
    pub fn max_running_per_scheme(mut self, cap: usize) -> Self {
        self.settings.max_running_per_scheme = Some(cap.max(1));
        self
    }

    /// At most `cap` jobs of one tenant ([per-tenant secrets](crate::tenant))
    /// running at once (at least 1), over all its schemes, besides the
    /// other caps; jobs without a tenant are not counted. Like
    /// [`WorkerBuilder::max_running_per_scheme`] it is enforced by the
    /// backend when jobs are taken, counting every process's running jobs,
    /// so one busy tenant cannot hold every place while others wait.
    /// Default: none. Cost: one pass over the running jobs per take (the
    /// memory store: over its jobs), and on Postgres capped takes run one
    /// at a time under an advisory lock.
    #[must_use]
    pub fn max_running_per_tenant(mut self, cap: usize) -> Self {
        self.settings.max_running_per_tenant = Some(cap.max(1));
        self
    }

    /// At most `max` pending jobs per scheme (at least 1): past it, the
    /// scheme's queued layer answers `503 {"error":"queue_full"}` with
    /// `Retry-After`, from the headers alone, before the body is read or
    /// verified, and records nothing (a sender retries later). Default:
    /// none. Cost: one read lock and one atomic load per delivery; the
    /// count is kept by this worker (its accepts, takes and retries) and,
    /// with [`Worker::builder`], set from the backend's count across every
    /// process about once a second, so other replicas' work shows up within
    /// that. Deliveries already past the check when the bound is reached
    /// are still accepted: the bound can be passed by the requests in
    /// flight at that moment, never by more.
    #[must_use]
    pub fn max_pending_per_scheme(mut self, max: u64) -> Self {
        self.settings.max_pending_per_scheme = Some(max.max(1));
        self
    }

    /// Longest time one attempt may run before it is stopped and counted
    /// as failed (default [`DEFAULT_ATTEMPT_TIMEOUT`]).
    #[must_use]
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.settings.attempt_timeout = timeout;
        self
    }

    /// When failed jobs run again, and when they become dead letters.
    #[must_use]
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.settings.retry = policy;
        self
    }

    /// How long a dead letter is kept for replay (default
    /// [`DEFAULT_DEAD_LETTER_TTL`]); its key answers duplicate meanwhile.
    #[must_use]
    pub fn dead_letter_ttl(mut self, ttl: Duration) -> Self {
        self.settings.dead_letter_ttl = ttl;
        self
    }

    /// Longest sleep of an idle worker between two looks at the queue
    /// (default [`DEFAULT_IDLE_POLL`]). Jobs accepted through this worker
    /// wake it at once; this bounds how late it sees work from elsewhere.
    #[must_use]
    pub fn idle_poll(mut self, every: Duration) -> Self {
        self.settings.idle_poll = every.max(Duration::from_millis(1));
        self
    }

    /// Starts the worker's taking loop on the current tokio runtime. Jobs of
    /// a scheme run once the worker has its handler ([`Worker::handle`]).
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, as `tokio::spawn` does.
    pub fn start(self) -> Worker<Q> {
        let (abort, _) = watch::channel(false);
        let max_pending = self.settings.max_pending_per_scheme;
        let shared = Arc::new(Shared {
            queue: self.queue,
            permits: Arc::new(Semaphore::new(self.settings.concurrency)),
            settings: self.settings,
            runners: RwLock::new(HashMap::new()),
            schemes: RwLock::new(Arc::from(Vec::new())),
            wake: Notify::new(),
            stopping: AtomicBool::new(false),
            abort,
            aborted: AtomicUsize::new(0),
            gauges: QueueGauges::default(),
            read_counts: self.read_counts,
            backlog: Backlog::new(max_pending),
            backlog_synced: std::sync::Mutex::new(None),
        });
        tokio::spawn(take_loop(Arc::clone(&shared)));
        Worker { shared }
    }
}

impl<Q: JobQueue> Worker<Q> {
    /// Runs the jobs of `handler`'s scheme with its service, from now on:
    /// jobs recorded before (by an earlier run of the process, or another
    /// replica) run as soon as a worker slot is free. Made with
    /// [`WebhookLayer::job_handler`](crate::WebhookLayer::job_handler);
    /// one handler per scheme: a second one for a scheme that has one is
    /// ignored.
    pub fn handle(&self, handler: JobHandler) {
        let JobHandler { scheme, runner } = handler;
        let mut runners = self
            .shared
            .runners
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if runners.contains_key(scheme) {
            return;
        }
        runners.insert(scheme, runner);
        let names: Vec<Box<str>> = runners.keys().map(|&name| Box::from(name)).collect();
        *self
            .shared
            .schemes
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::from(names);
        drop(runners);
        self.shared.wake.notify_one();
    }
}

impl<Q: JobQueue> Worker<Q> {
    /// What a queued layer records its deliveries through. It holds the
    /// worker weakly, since the worker holds the layer's job handler: a
    /// delivery accepted after the worker is gone is still recorded, and
    /// runs on the next worker of its queue.
    pub(crate) fn intake(&self) -> Arc<dyn Intake> {
        Arc::new(WorkerIntake {
            queue: self.shared.queue.clone(),
            worker: Arc::downgrade(&self.shared),
        })
    }
}

/// A queued layer's intake: accept on the queue, then wake the worker.
struct WorkerIntake<Q: JobQueue> {
    queue: Q,
    worker: Weak<Shared<Q>>,
}

impl<Q: JobQueue> Intake for WorkerIntake<Q> {
    fn accept(&self, key: &IdempotencyKey, delivery: Delivery) -> QueueFuture<Accept> {
        let accepted = self.queue.accept(key, delivery);
        let worker = Weak::clone(&self.worker);
        let scheme = key.scheme();
        Box::pin(async move {
            let answer = accepted.await?;
            if answer == Accept::Accepted
                && let Some(shared) = worker.upgrade()
            {
                shared.backlog.add(scheme, 1);
                shared.wake.notify_one();
            }
            Ok(answer)
        })
    }

    fn is_full(&self, scheme: &str) -> bool {
        self.worker
            .upgrade()
            .is_some_and(|shared| shared.backlog.is_full(scheme))
    }
}

impl<Q: JobQueue> Shared<Q> {
    fn runner(&self, scheme: &str) -> Option<Arc<dyn Runner>> {
        let runners = self.runners.read().unwrap_or_else(PoisonError::into_inner);
        runners.get(scheme).cloned()
    }

    fn schemes(&self) -> Arc<[Box<str>]> {
        Arc::clone(&self.schemes.read().unwrap_or_else(PoisonError::into_inner))
    }
}

/// Takes due jobs while permits are free; sleeps until woken, until the
/// next job is due, or for the idle poll, whichever comes first.
async fn take_loop<Q: JobQueue>(shared: Arc<Shared<Q>>) {
    let mut failures = 0u32;
    while !shared.stopping.load(Ordering::SeqCst) {
        let schemes = shared.schemes();
        let mut sleep_for = shared.settings.idle_poll;
        // Hold the free permits across `take`: a job the store marks running
        // already has its permit, so `shutdown` waits for it.
        let held = match shared.permits.available_permits() {
            0 => None,
            _ if schemes.is_empty() => None,
            free => Arc::clone(&shared.permits)
                .try_acquire_many_owned(u32::try_from(free).unwrap_or(u32::MAX))
                .ok(),
        };
        if let Some(mut held) = held {
            let free = held.num_permits();
            let mut request = TakeRequest::new(schemes, free, shared.settings.lease);
            request.max_running_per_scheme = shared.settings.max_running_per_scheme;
            request.max_running_per_tenant = shared.settings.max_running_per_tenant;
            match shared.queue.take(request).await {
                Ok(taken) => {
                    failures = 0;
                    let took = taken.jobs.len();
                    for job in taken.jobs.iter().filter(|job| !job.interrupted) {
                        shared.backlog.add(&job.delivery.scheme, -1);
                    }
                    for job in taken.jobs {
                        let permit = held.split(1).expect("one permit per job taken");
                        tokio::spawn(run_job(Arc::clone(&shared), job, permit));
                    }
                    drop(held);
                    if took > 0 && took == free {
                        // Possibly more due: look again once a permit frees.
                        sleep_for = shared.settings.idle_poll;
                    } else if took > 0 {
                        continue;
                    }
                    if let Some(due) = taken.next_due {
                        let until = due
                            .duration_since(SystemTime::now())
                            .unwrap_or_default()
                            .max(Duration::from_millis(2));
                        sleep_for = sleep_for.min(until);
                    }
                }
                Err(error) => {
                    drop(held);
                    // The store is away: back off, up to the idle poll.
                    failures = failures.saturating_add(1);
                    sleep_for = Duration::from_millis(50 << failures.min(6)).min(sleep_for);
                    report("take jobs", &error);
                }
            }
        }
        sync_backlog(&shared);
        // Every pass follows a change (or the idle poll): refresh the
        // gauges, or come back when they may be.
        if let Some(read) = shared.read_counts
            && let Some(wait) = shared
                .gauges
                .refresh(|| read(&shared.queue), &shared.schemes())
        {
            sleep_for = sleep_for.min(wait);
        }
        tokio::select! {
            () = shared.wake.notified() => {}
            _ = shared.queue.wait_for_work(sleep_for) => {}
        }
    }
}

/// Sets the backlog from the backend's counts (every process's jobs), in
/// the background, at most once a second; only with a bound and a
/// [`QueueAdmin`] queue.
fn sync_backlog<Q: JobQueue>(shared: &Arc<Shared<Q>>) {
    let Some(read) = shared.read_counts else {
        return;
    };
    if !shared.backlog.is_bounded() {
        return;
    }
    let now = tokio::time::Instant::now();
    {
        let mut last = shared
            .backlog_synced
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if last.is_some_and(|at| now.duration_since(at) < Duration::from_secs(1)) {
            return;
        }
        *last = Some(now);
    }
    let counts = read(&shared.queue);
    let shared = Arc::clone(shared);
    tokio::spawn(async move {
        if let Ok(counts) = counts.await {
            let pending = counts.into_iter().map(|(scheme, c)| (scheme, c.pending));
            shared.backlog.set(pending);
        }
    });
}

/// How an attempt ended, from the worker's side.
enum Ending {
    Ran(RunResult),
    /// The attempt ran past the attempt timeout and was stopped.
    TimedOut(String),
    /// The worker is shutting down and stopped the attempt.
    Aborted,
    /// The lease was lost: another worker owns the job now.
    LostLease,
}

async fn run_job<Q: JobQueue>(
    shared: Arc<Shared<Q>>,
    job: Job<Q::JobLease>,
    permit: OwnedSemaphorePermit,
) {
    let Job {
        key,
        delivery,
        attempt,
        accepted_at,
        interrupted,
        lease,
    } = job;
    let settings = &shared.settings;
    let scheme = delivery.scheme.clone();
    let tenant = key.tenant();
    let span = AttemptSpan::new(tenant, &scheme, &delivery.event_id, attempt);
    let ordered = delivery.order_key.is_some();
    // The previous attempt was counted when it was taken; it never came
    // back (its process died). Past the limit the job is a dead letter
    // without running again: a handler that kills its process must not
    // run for ever.
    let previous = attempt.saturating_sub(1);
    if interrupted
        && settings
            .retry
            .next_due(previous, accepted_at, SystemTime::now())
            .is_none()
    {
        let outcome = JobOutcome::Dead {
            error: dead_error(
                format!("attempt {previous} did not return (lease ran out)"),
                ordered,
            ),
            retain: settings.dead_letter_ttl,
        };
        // Dead, not done: nothing lent is committed, so no rollback.
        let held = matches!(
            finish(&shared, key.as_str(), lease, outcome).await,
            Finished::Recorded(true)
        );
        let result = if held {
            AttemptResult::DeadLettered
        } else {
            AttemptResult::LostLease
        };
        attempt_ended(&scheme, result, None);
        drop(permit);
        shared.wake.notify_one();
        return;
    }
    // When the handler was called, if it was (feature `metrics`).
    let mut handler = None;
    let (ending, done_ttl) = match shared.runner(&delivery.scheme) {
        None => (
            Ending::Ran(RunResult::Failed(format!(
                "no queued layer for scheme {:?} in this process",
                delivery.scheme
            ))),
            Duration::ZERO,
        ),
        Some(runner) => {
            let done_ttl = runner.done_ttl();
            handler = Some(Stopwatch::start());
            let mut lent = http::Extensions::new();
            shared.queue.lend_job_to_handler(&lease, &mut lent);
            let run = span.instrument(runner.run(delivery, attempt, lent));
            let ending = attend(&shared, run, &lease).await;
            (ending, done_ttl)
        }
    };
    let now = SystemTime::now();
    let failed = |error: String, result| match settings.retry.next_due(attempt, accepted_at, now) {
        Some(due) => (JobOutcome::Retry { due, error }, result),
        None => (
            JobOutcome::Dead {
                error: dead_error(error, ordered),
                retain: settings.dead_letter_ttl,
            },
            AttemptResult::DeadLettered,
        ),
    };
    let (outcome, result) = match ending {
        Ending::LostLease => {
            span.ended("lost_lease");
            attempt_ended(&scheme, AttemptResult::LostLease, handler.as_ref());
            warn_lost(key.as_str());
            drop(permit);
            shared.wake.notify_one();
            return;
        }
        Ending::Aborted => {
            shared.aborted.fetch_add(1, Ordering::SeqCst);
            let outcome = JobOutcome::Retry {
                due: now,
                error: "the worker shut down during the attempt".into(),
            };
            (outcome, AttemptResult::Aborted)
        }
        Ending::Ran(RunResult::Succeeded) => {
            (JobOutcome::Done { ttl: done_ttl }, AttemptResult::Succeeded)
        }
        Ending::Ran(RunResult::Failed(error)) => failed(error, AttemptResult::Failed),
        Ending::TimedOut(error) => failed(error, AttemptResult::TimedOut),
        Ending::Ran(RunResult::Unrunnable(error)) => {
            handler = None; // the recorded delivery did not parse: no call
            let outcome = JobOutcome::Dead {
                error: dead_error(error, ordered),
                retain: settings.dead_letter_ttl,
            };
            (outcome, AttemptResult::DeadLettered)
        }
    };
    let retried = matches!(outcome, JobOutcome::Retry { .. });
    let (held, retried, result) = match finish(&shared, key.as_str(), lease.clone(), outcome).await
    {
        Finished::Recorded(held) => (held, retried, result),
        // The handler's writes were undone with the done mark: run again.
        Finished::RolledBack(error) => {
            let (outcome, result) = failed(error, AttemptResult::Failed);
            let retried = matches!(outcome, JobOutcome::Retry { .. });
            match finish(&shared, key.as_str(), lease, outcome).await {
                Finished::Recorded(held) => (held, retried, result),
                Finished::RolledBack(_) => (true, false, result),
            }
        }
    };
    if held && retried {
        shared.backlog.add(&scheme, 1);
    }
    let result = if held {
        result
    } else {
        AttemptResult::LostLease
    };
    span.ended(attempt_outcome(&result));
    attempt_ended(&scheme, result, handler.as_ref());
    drop(permit);
    shared.wake.notify_one();
}

/// A dead letter's error; one with an order key says that the later jobs
/// of its key no longer wait for it.
fn dead_error(error: String, ordered: bool) -> String {
    if ordered {
        format!("{error}; later events of its order key were let past it")
    } else {
        error
    }
}

/// Runs the attempt in its own task (so a panic is caught), renewing the
/// lease, until it ends, times out, loses its lease or is aborted.
async fn attend<Q: JobQueue>(
    shared: &Shared<Q>,
    attempt: std::pin::Pin<Box<dyn std::future::Future<Output = RunResult> + Send>>,
    lease: &Q::JobLease,
) -> Ending {
    let settings = &shared.settings;
    let mut handler = tokio::spawn(attempt);
    let deadline = tokio::time::sleep(settings.attempt_timeout);
    tokio::pin!(deadline);
    let every = (settings.lease / 3).max(Duration::from_millis(10));
    let mut renewals = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    let mut abort = shared.abort.subscribe();
    if *abort.borrow_and_update() {
        handler.abort();
        return Ending::Aborted;
    }
    loop {
        tokio::select! {
            joined = &mut handler => {
                return Ending::Ran(match joined {
                    Ok(result) => result,
                    Err(error) if error.is_panic() => RunResult::Failed("the handler panicked".into()),
                    Err(_) => RunResult::Failed("the handler's task was cancelled".into()),
                });
            }
            () = &mut deadline => {
                handler.abort();
                return Ending::TimedOut(format!(
                    "the attempt timed out after {:?}",
                    settings.attempt_timeout
                ));
            }
            _ = renewals.tick() => match shared.queue.renew(lease, settings.lease).await {
                Ok(true) => {}
                Ok(false) => {
                    handler.abort();
                    return Ending::LostLease;
                }
                // Keep running: the next renewal may get through before the
                // lease runs out.
                Err(error) => report("renew a lease", &error),
            },
            // The flag only ever goes from false to true, and the sender
            // lives in `shared`: any change is the abort.
            _ = abort.changed() => {
                handler.abort();
                return Ending::Aborted;
            }
        }
    }
}

/// What [`finish`] recorded.
enum Finished {
    /// `false` when the lease was lost (another worker took the job), so
    /// nothing was recorded.
    Recorded(bool),
    /// The done mark rolled back with the handler's writes in the queue's
    /// transaction ([`StoreErrorKind::RolledBack`]): nothing was recorded,
    /// and the attempt counts as failed, for this reason.
    RolledBack(String),
}

/// Records the outcome, retrying while the store is briefly away; if it
/// stays away the lease runs out and the job is taken again.
async fn finish<Q: JobQueue>(
    shared: &Shared<Q>,
    key: &str,
    lease: Q::JobLease,
    outcome: JobOutcome,
) -> Finished {
    let give_up = tokio::time::Instant::now() + shared.settings.lease;
    let mut wait = Duration::from_millis(50);
    loop {
        match shared.queue.finish(lease.clone(), outcome.clone()).await {
            Ok(held) => {
                if !held {
                    warn_lost(key);
                }
                return Finished::Recorded(held);
            }
            Err(error) if error.kind() == StoreErrorKind::RolledBack => {
                report("record a job's outcome", &error);
                return Finished::RolledBack(error.to_string());
            }
            Err(error) if tokio::time::Instant::now() + wait < give_up => {
                report("record a job's outcome", &error);
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(2));
            }
            Err(error) => {
                report("record a job's outcome (gave up)", &error);
                return Finished::Recorded(true);
            }
        }
    }
}

/// The `outcome` an attempt's span records.
fn attempt_outcome(result: &AttemptResult) -> &'static str {
    match result {
        AttemptResult::Succeeded => "succeeded",
        AttemptResult::Failed => "failed",
        AttemptResult::TimedOut => "timed_out",
        AttemptResult::DeadLettered => "dead_lettered",
        AttemptResult::LostLease => "lost_lease",
        AttemptResult::Aborted => "aborted",
    }
}

fn warn_lost(key: &str) {
    #[cfg(feature = "tracing")]
    tracing::warn!(
        key,
        "a job's lease ran out before its attempt ended: another worker took it"
    );
    #[cfg(not(feature = "tracing"))]
    let _ = key;
}

fn report(operation: &str, error: &StoreError) {
    #[cfg(feature = "tracing")]
    tracing::warn!(operation, %error, "job queue call failed");
    #[cfg(not(feature = "tracing"))]
    let _ = (operation, error);
}
