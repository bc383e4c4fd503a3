//! Queued mode on Redis: [`RedisStore`] as a [`JobQueue`] that every
//! replica sharing the Redis and the prefix takes jobs from.
//!
//! ```no_run
//! use axum::{Router, http::StatusCode, routing::post};
//! use tower_webhook::numero::{Numero, NumeroEvent};
//! use tower_webhook::queue::Worker;
//! use tower_webhook::store::RedisStore;
//! use tower_webhook::{VerifiedEvent, WebhookLayer};
//!
//! async fn on_numero(VerifiedEvent(event): VerifiedEvent<NumeroEvent>) -> StatusCode {
//!     println!("processing {}", event.id); // on whichever replica took the job
//!     StatusCode::OK
//! }
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = RedisStore::builder()
//!     .prefix("payments:webhooks:")
//!     .connect("redis://127.0.0.1:6379/")
//!     .await?;
//! let worker = Worker::builder(store).concurrency(8).start();
//! let layer = WebhookLayer::builder(Numero)
//!     .secret("whsec_abcdefghijklmnopqrstuvwxyz123456789")
//!     .queued(&worker)
//!     .build()?;
//! worker.handle(layer.job_handler(post(on_numero)));
//! let app: Router = Router::new().route("/webhooks/numero", post(on_numero).route_layer(layer));
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:3000").await?;
//! axum::serve(listener, app).await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Data model
//!
//! `P` is the store's prefix; a *member* is an idempotency key's text,
//! `<scheme>:<event id>`. The queue's own keys sit under `P#q:`: `#` is
//! never part of a scheme's name, so they cannot collide with an event's
//! key.
//!
//! | key | type | holds | expires |
//! |---|---|---|---|
//! | `P<scheme>:<id>` | string | `p:<token>`: inline claim · `job`: queued, pending or running · `dead`: dead letter · `done` | lease · never (the job ends it) · with the dead letter · done TTL |
//! | `P#q:job:<scheme>:<id>` | hash | `scheme`, `id`, `head` ([`Delivery::encode_head`]), `body` (raw bytes), `attempts`, `accepted` (ms), `state` (`pending`/`running`/`dead`), `token` (while running), `error` (last failure), `failed` (ms, when dead) | never while pending or running; deleted when done; at the same instant as its `dead` key once dead |
//! | `P#q:pending:<scheme>` | sorted set | pending members, score = due time (ms) | members leave when taken |
//! | `P#q:leases:<scheme>` | sorted set | running members, score = lease end (ms) | members leave on finish, or when taken again after the lease |
//! | `P#q:line:<scheme>:<order key>` | list | the live (pending or running) jobs with that order key, in acceptance order; only the first is in `pending` or `leases`, the others are held | members leave when done or dead (the next one then joins `pending`); the key goes with its last member |
//! | `P#q:held:<scheme>` | string | how many jobs of the scheme are held behind an earlier one of their key (counted as pending) | never |
//! | `P#q:dead` | sorted set | dead letters, score = failure time: the listing order | trimmed with `dead-until` |
//! | `P#q:dead-until` | sorted set | dead letters, score = expiry | every accept and finish removes up to 100 expired members from both; reads skip expired ones |
//! | `P#q:schemes` | set | the scheme names ever accepted (for [`QueueAdmin::counts`] and [`QueueAdmin::counts_by_scheme`]) | never: one member per scheme |
//! | `P#q:wake` | stream | one entry per accept, replay and retry due now | capped at about 100 entries (`XADD MAXLEN ~`) |
//!
//! So Redis holds, per event: its done key for the done TTL; its job while
//! it is pending or running; its dead letter for the dead-letter retention.
//! Memory stays bounded by the event rate times those retentions, plus the
//! jobs in progress.
//!
//! # Scripts
//!
//! Every call is one Lua script (see `scripts.rs` for their text): atomic on
//! the server, so no crash or concurrent replica sees half of one.
//!
//! * **accept**: `SET P<scheme>:<id> job NX`, and only if that succeeds, the
//!   job's hash, its pending entry due now, and a wake entry. An inline
//!   claim, a done key, a job or a dead letter under the key all make the
//!   `SET` fail, so inline and queued deliveries of one event exclude each
//!   other, and no claim exists without its job or job without its claim.
//! * **take**: for each requested scheme, the members due in `pending`
//!   (due ≤ now) and in `leases` (lease end ≤ now: their replica died),
//!   earliest first, up to `max` (and, with a cap, up to what leaves the
//!   scheme's live leases at the cap); each gets a fresh token, one more
//!   attempt, and a lease end. Returns them with the next due time or
//!   lease end. A job of an order line is in `pending` only while it is
//!   the line's first: accept pushes it on the line, finish (done or dead)
//!   pops it and puts the next one in `pending`, due now.
//! * **renew** and **finish** act only while the job is running under the
//!   caller's token; otherwise they answer `false` and change nothing. A
//!   replica whose lease ran out and whose job was taken over can no longer
//!   complete, retry, bury or renew it.
//! * **replay**: a live dead letter back to pending, due now, attempts kept.
//! * **counts**, **counts by scheme** and **dead letters** read across
//!   every scheme and every replica. Counting dead letters by scheme walks
//!   the live dead letters when more than one scheme was ever accepted
//!   under the prefix (one `ZCOUNT` otherwise).
//!
//! Times are the **Redis server's** clock (`TIME` inside each script), not
//! the replicas': one clock decides when a lease ran out or a retry is due,
//! so a replica with a skewed clock neither steals a live lease nor runs a
//! retry early. The worker's side crosses between the two clocks at each
//! call: a retry's due time goes to Redis as a delay from now, and a taken
//! job's acceptance time (and the next due time) come back translated by
//! the server time in the same reply. [`DeadLetter`] times are server
//! times.
//!
//! # Waiting for work
//!
//! [`JobQueue::wait_for_work`] blocks in one background `XREAD` per store on
//! the `P#q:wake` stream, on a connection of its own: every replica sees
//! every entry, an entry written between two waits or during a reconnect is
//! still seen, and nothing polls. `BLPOP` would hand each wake-up to one
//! waiter only (possibly a busy one); pub/sub and keyspace notifications
//! lose what is sent while a replica is not listening (and keyspace
//! notifications need a server-wide setting). A store built with
//! [`RedisStoreBuilder::with_connection`](super::RedisStoreBuilder::with_connection)
//! has no client to open that connection: its workers see other replicas'
//! work at their idle poll. Jobs whose lease runs out announce nothing: the
//! worker sleeps until the earliest lease end that `take` reported, or its
//! idle poll.
//!
//! # Failures
//!
//! Each call is bounded by the store's timeout. Fail open does not apply to
//! queued mode: an accept that fails is a [`StoreError`], and the layer
//! answers 503 with `Retry-After`, so the sender retries; if the accept did
//! reach Redis before the failure, the retry is a duplicate and the job
//! runs. A take whose reply is lost leaves its jobs leased to nobody: they
//! are taken again once the lease runs out. The worker backs off while
//! `take`, `renew` or `finish` fail, and resumes when Redis is back.
//!
//! # What Redis must be configured for
//!
//! * **`maxmemory-policy noeviction`.** Any eviction policy can drop a job
//!   (lost event), an index (jobs that never run) or a done key (a
//!   redelivered copy runs again); `volatile-*` policies still drop done
//!   keys and dead letters. Under `noeviction` a full Redis refuses writes:
//!   accepts fail, senders get 503 and retry, nothing is lost. The store
//!   warns once when the policy is anything else.
//! * **Persistence.** With the default [`Durability::Reply`], a `202` is
//!   sent once Redis answered the accept; what survives a crash is what
//!   Redis persisted ([`Durability::AofFsync`] and [`Durability::Replicas`]
//!   wait for more before the `202`; see [`Durability`]):
//!
//!   | Redis setting | Redis process killed | machine loses power or the OS crashes |
//!   |---|---|---|
//!   | no persistence | everything: accepted jobs (senders already got 202), done keys, dead letters | everything |
//!   | RDB snapshots only | everything since the last snapshot | everything since the last snapshot |
//!   | `appendonly yes`, `appendfsync always` | nothing | nothing acknowledged: each reply waits for the fsync |
//!   | `appendonly yes`, `appendfsync everysec` | nothing (written to the OS at once) | about the last second (up to 2 s) of writes |
//!   | `appendonly yes`, `appendfsync no` | nothing | the writes the OS had not flushed (tens of seconds on Linux) |
//!
//!   A lost *accept* is an event lost for good (the sender got its 202). A
//!   lost *finish* or *take* only moves a job back a step: it runs again
//!   (at least once). A lost *done* key lets a redelivered copy run again.
//!   Replication is asynchronous: a failover to a replica can lose the
//!   latest acknowledged writes in the same way, unless the store waits for
//!   replicas ([`Durability::Replicas`]).
//!
//!   [`Durability`]: super::Durability
//!   [`Durability::Reply`]: super::Durability::Reply
//!   [`Durability::AofFsync`]: super::Durability::AofFsync
//!   [`Durability::Replicas`]: super::Durability::Replicas
//! * **One slot.** The scripts build key names from the prefix. On Redis
//!   Cluster, put a hash tag in the prefix (`{webhooks}:`) so that every key
//!   lives in one slot.
//!
//! Needs Redis 5 or later (streams, scripts replicated by their effects).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use redis::{FromRedisValue, Script, ScriptInvocation, Value};

use super::scripts::{MAX_MS, scripts};
use super::{RedisStore, bounded, new_token};
use crate::store::admin::{DeadLetterDetail, JobState, JobSummary, QueueInspect};
use crate::store::queue::{
    Accept, DeadLetter, Delivery, Job, JobOutcome, JobQueue, QueueAdmin, QueueCounts, QueueFuture,
    TakeRequest, Taken,
};
use crate::store::{IdempotencyKey, JobKey, StoreError};

/// Proof of a worker's lease on one job of a [`RedisStore`]: the job's key
/// and the token the take gave it.
#[derive(Clone)]
pub struct RedisJobLease {
    member: Arc<str>,
    token: Arc<str>,
}

impl std::fmt::Debug for RedisJobLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisJobLease")
            .field("key", &self.member)
            .finish_non_exhaustive()
    }
}

impl RedisJobLease {
    /// The job's idempotency key, `<scheme>:<event id>`.
    pub fn key(&self) -> &str {
        &self.member
    }
}

/// Milliseconds for a script: capped at [`MAX_MS`] so that times stay exact
/// in Lua.
fn script_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).min(MAX_MS)
}

/// The server's clock against this process's: a reply's server time and
/// when it arrived.
#[derive(Clone, Copy)]
struct Clock {
    server_ms: i64,
    local: SystemTime,
}

impl Clock {
    /// The local time matching server time `at_ms`.
    fn local(self, at_ms: i64) -> SystemTime {
        let delta = at_ms.saturating_sub(self.server_ms);
        let magnitude = Duration::from_millis(delta.unsigned_abs());
        if delta >= 0 {
            self.local + magnitude
        } else {
            let epoch = SystemTime::UNIX_EPOCH;
            self.local
                .checked_sub(magnitude)
                .map_or(epoch, |t| t.max(epoch))
        }
    }
}

impl RedisStore {
    /// A call of one of the queue's scripts, with the prefix as `ARGV[1]`;
    /// the caller adds the rest.
    fn script(&self, script: &'static Script) -> ScriptInvocation<'static> {
        let mut invocation = script.prepare_invoke();
        invocation.arg(&*self.shared.prefix);
        invocation
    }

    /// Runs `invocation` on the shared connection, bounded by the timeout.
    fn run<T: FromRedisValue + Send + 'static>(
        &self,
        operation: &'static str,
        invocation: ScriptInvocation<'static>,
    ) -> impl Future<Output = Result<T, StoreError>> + Send + 'static {
        let mut conn = self.conn.clone();
        let timeout = self.shared.timeout;
        async move {
            bounded(timeout, operation, async {
                invocation.invoke_async(&mut conn).await
            })
            .await
        }
    }

    /// Runs a script that answers `1` (yes) or `0` (no).
    fn run_flag(
        &self,
        operation: &'static str,
        invocation: ScriptInvocation<'static>,
    ) -> QueueFuture<bool> {
        let answer = self.run::<i64>(operation, invocation);
        Box::pin(async move { Ok(answer.await? == 1) })
    }

    /// [`Self::run_flag`] for a write that is acknowledged to someone: then
    /// waits for the store's [`Durability`](super::Durability), on the same
    /// connection. `wait_on_no` says whether a `0` also waits (an accept's
    /// duplicate is acknowledged too; a finish or a replay that changed
    /// nothing is not).
    fn run_durable_flag(
        &self,
        operation: &'static str,
        invocation: ScriptInvocation<'static>,
        wait_on_no: bool,
    ) -> QueueFuture<bool> {
        let mut conn = self.conn.clone();
        let (timeout, durability) = (self.shared.timeout, self.shared.durability);
        Box::pin(async move {
            let answer: i64 = durability
                .invoke(&mut conn, &invocation, timeout, operation, |&answer| {
                    answer == 1 || wait_on_no
                })
                .await?;
            Ok(answer == 1)
        })
    }
}

/// A running-jobs cap as the take script reads it: `-1` for none.
fn script_cap(cap: Option<usize>) -> i64 {
    cap.map_or(-1, |cap| i64::try_from(cap).unwrap_or(i64::MAX))
}

impl JobQueue for RedisStore {
    type JobLease = RedisJobLease;

    fn accept(&self, key: &IdempotencyKey, delivery: Delivery) -> QueueFuture<Accept> {
        self.check_policy_once();
        let mut accept = self.script(&scripts().accept);
        accept
            .arg(key.as_str())
            .arg(&delivery.scheme)
            .arg(&delivery.event_id)
            .arg(delivery.encode_head())
            .arg(&delivery.body[..])
            .arg(delivery.order_key.as_deref().unwrap_or(""));
        let accepted = self.run_durable_flag("accept", accept, true);
        Box::pin(async move {
            Ok(if accepted.await? {
                Accept::Accepted
            } else {
                Accept::Duplicate
            })
        })
    }

    fn take(&self, request: TakeRequest) -> QueueFuture<Taken<RedisJobLease>> {
        let mut take = self.script(&scripts().take);
        take.arg(request.max)
            .arg(script_ms(request.lease))
            .arg(new_token())
            .arg(script_cap(request.max_running_per_scheme))
            .arg(script_cap(request.max_running_per_tenant));
        for scheme in request.schemes.iter() {
            take.arg(&**scheme);
        }
        let reply = self.run::<Vec<Value>>("take jobs", take);
        Box::pin(async move { parse_taken(reply.await?, SystemTime::now()) })
    }

    fn renew(&self, lease: &RedisJobLease, lease_for: Duration) -> QueueFuture<bool> {
        let mut renew = self.script(&scripts().renew);
        renew
            .arg(&*lease.member)
            .arg(&*lease.token)
            .arg(script_ms(lease_for));
        self.run_flag("renew a lease", renew)
    }

    fn finish(&self, lease: RedisJobLease, outcome: JobOutcome) -> QueueFuture<bool> {
        let (kind, ms, error) = match &outcome {
            JobOutcome::Done { ttl } => ("done", script_ms(*ttl).max(1), ""),
            JobOutcome::Retry { due, error } => {
                let delay = due.duration_since(SystemTime::now()).unwrap_or_default();
                ("retry", script_ms(delay), error.as_str())
            }
            JobOutcome::Dead { error, retain } => {
                ("dead", script_ms(*retain).max(1), error.as_str())
            }
        };
        let mut finish = self.script(&scripts().finish);
        finish
            .arg(&*lease.member)
            .arg(&*lease.token)
            .arg(kind)
            .arg(ms)
            .arg(error);
        self.run_durable_flag("finish a job", finish, false)
    }

    fn wait_for_work(&self, max_wait: Duration) -> QueueFuture<()> {
        let shared = Arc::clone(&self.shared);
        Box::pin(async move {
            shared.wake.wait(max_wait).await;
            Ok(())
        })
    }
}

impl QueueAdmin for RedisStore {
    fn counts(&self) -> QueueFuture<QueueCounts> {
        let reply = self.run::<Vec<Value>>("count jobs", self.script(&scripts().counts));
        Box::pin(async move { parse_counts(&reply.await?) })
    }

    fn counts_by_scheme(&self) -> QueueFuture<Vec<(String, QueueCounts)>> {
        let script = self.script(&scripts().counts_by_scheme);
        let reply = self.run::<Vec<Value>>("count jobs by scheme", script);
        Box::pin(async move { parse_counts_by_scheme(reply.await?) })
    }

    fn dead_letters(&self, limit: usize) -> QueueFuture<Vec<DeadLetter>> {
        if limit == 0 {
            return Box::pin(std::future::ready(Ok(Vec::new())));
        }
        let mut list = self.script(&scripts().dead_letters);
        list.arg(limit);
        let reply = self.run::<Vec<Value>>("list dead letters", list);
        Box::pin(async move { parse_dead_letters(reply.await?) })
    }

    fn replay(&self, key: &JobKey) -> QueueFuture<bool> {
        let mut replay = self.script(&scripts().replay);
        replay.arg(key.as_str());
        self.run_durable_flag("replay a dead letter", replay, false)
    }
}

impl QueueInspect for RedisStore {
    fn jobs(&self, state: JobState, limit: usize) -> QueueFuture<Vec<JobSummary>> {
        if limit == 0 {
            return Box::pin(std::future::ready(Ok(Vec::new())));
        }
        let mut list = self.script(&scripts().jobs);
        list.arg(match state {
            JobState::Pending => "pending",
            JobState::Running => "running",
            JobState::Dead => "dead",
        })
        .arg(limit);
        let reply = self.run::<Vec<Value>>("list jobs", list);
        Box::pin(async move {
            let reply = reply.await?;
            if !reply.len().is_multiple_of(7) {
                return Err(corrupt("jobs of the wrong length"));
            }
            let mut jobs = Vec::with_capacity(reply.len() / 7);
            let mut fields = reply.into_iter();
            while let Some(member) = fields.next() {
                jobs.push(summary(state, member, &mut fields)?);
            }
            Ok(jobs)
        })
    }

    fn dead_letter(&self, key: &JobKey) -> QueueFuture<Option<DeadLetterDetail>> {
        let mut read = self.script(&scripts().dead_letter);
        read.arg(key.as_str());
        let reply = self.run::<Vec<Value>>("read a dead letter", read);
        Box::pin(async move {
            let mut fields = reply.await?.into_iter();
            let Some(member) = fields.next() else {
                return Ok(None);
            };
            let summary = summary(JobState::Dead, member, &mut fields)?;
            let mut field = || fields.next().ok_or_else(|| corrupt("a short dead letter"));
            let head = bytes(field()?)?;
            let body = Bytes::from(bytes(field()?)?);
            let delivery =
                Delivery::decode(summary.scheme.clone(), summary.id.clone(), &head, body)?;
            Ok(Some(DeadLetterDetail { summary, delivery }))
        })
    }

    fn discard(&self, key: &JobKey) -> QueueFuture<bool> {
        let mut discard = self.script(&scripts().discard);
        discard.arg(key.as_str());
        self.run_durable_flag("discard a dead letter", discard, false)
    }
}

/// A job's summary from `member` and the 6 values after it: scheme, id,
/// attempts, error, accepted, failed.
fn summary(
    state: JobState,
    member: Value,
    fields: &mut impl Iterator<Item = Value>,
) -> Result<JobSummary, StoreError> {
    let mut field = || fields.next().ok_or_else(|| corrupt("a short job"));
    Ok(JobSummary::new(
        job_key(member)?,
        state,
        text(field()?)?,
        text(field()?)?,
        u32::try_from(int(&field()?)?).unwrap_or(u32::MAX),
        text(field()?)?,
        count(&field()?)?,
        count(&field()?)?,
    ))
}

/// A reply that is not what the scripts return.
fn corrupt(what: &str) -> StoreError {
    StoreError::corrupt(format!("redis answered a queue call with {what}"))
}

fn int(value: &Value) -> Result<i64, StoreError> {
    match value {
        Value::Int(n) => Ok(*n),
        _ => Err(corrupt("a non-integer where a number belongs")),
    }
}

fn bytes(value: Value) -> Result<Vec<u8>, StoreError> {
    match value {
        Value::BulkString(b) => Ok(b),
        Value::SimpleString(s) => Ok(s.into_bytes()),
        Value::Nil => Ok(Vec::new()),
        _ => Err(corrupt("a non-string where text belongs")),
    }
}

fn text(value: Value) -> Result<String, StoreError> {
    String::from_utf8(bytes(value)?).map_err(|_| corrupt("text that is not UTF-8"))
}

fn job_key(value: Value) -> Result<JobKey, StoreError> {
    parse_key(&text(value)?)
}

/// A job's member is its key's text; anything else was not written here.
fn parse_key(member: &str) -> Result<JobKey, StoreError> {
    member
        .parse()
        .map_err(|error| corrupt(&format!("a member that is {error}")))
}

fn count(value: &Value) -> Result<u64, StoreError> {
    u64::try_from(int(value)?).map_err(|_| corrupt("a negative count"))
}

/// `{now, next, then 10 values per job}`, as the take script answers.
fn parse_taken(
    reply: Vec<Value>,
    received: SystemTime,
) -> Result<Taken<RedisJobLease>, StoreError> {
    const FIELDS: usize = 10;
    let mut values = reply.into_iter();
    let (Some(now), Some(next)) = (values.next(), values.next()) else {
        return Err(corrupt("a short take reply"));
    };
    let clock = Clock {
        server_ms: int(&now)?,
        local: received,
    };
    let next = int(&next)?;
    let rest: Vec<Value> = values.collect();
    if !rest.len().is_multiple_of(FIELDS) {
        return Err(corrupt("a take reply of the wrong length"));
    }
    let mut jobs = Vec::with_capacity(rest.len() / FIELDS);
    let mut fields = rest.into_iter();
    while let Some(member) = fields.next() {
        let mut field = || fields.next().ok_or_else(|| corrupt("a short job"));
        let member = text(member)?;
        let key = parse_key(&member)?;
        let member: Arc<str> = Arc::from(member);
        let token: Arc<str> = Arc::from(text(field()?)?);
        let scheme = text(field()?)?;
        let event_id = text(field()?)?;
        let attempt = u32::try_from(int(&field()?)?).unwrap_or(u32::MAX);
        let accepted_ms = int(&field()?)?;
        let head = bytes(field()?)?;
        let body = Bytes::from(bytes(field()?)?);
        let interrupted = int(&field()?)? == 1;
        let order_key = text(field()?)?;
        let mut delivery = Delivery::decode(scheme, event_id, &head, body)?;
        delivery.order_key = (!order_key.is_empty()).then_some(order_key);
        jobs.push(Job {
            key,
            delivery,
            attempt,
            accepted_at: clock.local(accepted_ms),
            interrupted,
            lease: RedisJobLease { member, token },
        });
    }
    Ok(Taken {
        jobs,
        next_due: (next >= 0).then(|| clock.local(next)),
    })
}

/// `{pending, running, dead}`.
fn parse_counts(reply: &[Value]) -> Result<QueueCounts, StoreError> {
    let [pending, running, dead] = reply else {
        return Err(corrupt("counts of the wrong length"));
    };
    Ok(QueueCounts {
        pending: count(pending)?,
        running: count(running)?,
        dead: count(dead)?,
    })
}

/// 4 values per scheme: name, pending, running, dead; sorted by name.
fn parse_counts_by_scheme(reply: Vec<Value>) -> Result<Vec<(String, QueueCounts)>, StoreError> {
    const FIELDS: usize = 4;
    if !reply.len().is_multiple_of(FIELDS) {
        return Err(corrupt("counts by scheme of the wrong length"));
    }
    let mut counts = Vec::with_capacity(reply.len() / FIELDS);
    let mut fields = reply.into_iter();
    while let Some(scheme) = fields.next() {
        let rest: Vec<Value> = fields.by_ref().take(FIELDS - 1).collect();
        counts.push((text(scheme)?, parse_counts(&rest)?));
    }
    counts.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(counts)
}

/// 7 values per letter: member, scheme, id, attempts, error, accepted,
/// failed.
fn parse_dead_letters(reply: Vec<Value>) -> Result<Vec<DeadLetter>, StoreError> {
    const FIELDS: usize = 7;
    if !reply.len().is_multiple_of(FIELDS) {
        return Err(corrupt("dead letters of the wrong length"));
    }
    let mut letters = Vec::with_capacity(reply.len() / FIELDS);
    let mut fields = reply.into_iter();
    while let Some(key) = fields.next() {
        let mut field = || fields.next().ok_or_else(|| corrupt("a short dead letter"));
        letters.push(DeadLetter {
            key: job_key(key)?,
            scheme: text(field()?)?,
            id: text(field()?)?,
            attempts: u32::try_from(int(&field()?)?).unwrap_or(u32::MAX),
            last_error: text(field()?)?,
            accepted_at_ms: count(&field()?)?,
            failed_at_ms: count(&field()?)?,
        });
    }
    Ok(letters)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_times_map_onto_the_local_clock() {
        let local = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let clock = Clock {
            server_ms: 5_000,
            local,
        };
        assert_eq!(clock.local(5_250), local + Duration::from_millis(250));
        assert_eq!(clock.local(4_000), local - Duration::from_secs(1));
        assert_eq!(
            Clock {
                server_ms: i64::MAX,
                local
            }
            .local(0),
            SystemTime::UNIX_EPOCH
        );
    }

    #[test]
    fn durations_are_capped_for_lua() {
        assert_eq!(script_ms(Duration::from_millis(1500)), 1500);
        assert_eq!(script_ms(Duration::MAX), MAX_MS);
    }

    #[test]
    fn malformed_replies_are_errors() {
        assert!(parse_taken(vec![Value::Int(1)], SystemTime::now()).is_err());
        assert!(
            parse_taken(
                vec![Value::Int(1), Value::Int(-1), Value::Nil],
                SystemTime::now()
            )
            .is_err()
        );
        assert!(parse_counts(&[Value::Int(1), Value::Int(2)]).is_err());
        assert!(parse_counts(&[Value::Int(1), Value::Int(-2), Value::Int(0)]).is_err());
        assert!(parse_dead_letters(vec![Value::Nil]).is_err());
        assert!(parse_counts_by_scheme(vec![Value::Nil, Value::Int(1), Value::Int(2)]).is_err());
        let two = parse_counts_by_scheme(vec![
            Value::BulkString(b"numero".to_vec()),
            Value::Int(1),
            Value::Int(2),
            Value::Int(3),
            Value::BulkString(b"github".to_vec()),
            Value::Int(0),
            Value::Int(0),
            Value::Int(0),
        ])
        .unwrap();
        assert_eq!(two[0], ("github".to_owned(), QueueCounts::default()));
        assert_eq!(
            two[1],
            (
                "numero".to_owned(),
                QueueCounts {
                    pending: 1,
                    running: 2,
                    dead: 3
                }
            )
        );
        let empty = parse_taken(vec![Value::Int(1), Value::Int(-1)], SystemTime::now()).unwrap();
        assert!(empty.jobs.is_empty() && empty.next_due.is_none());
    }
}
