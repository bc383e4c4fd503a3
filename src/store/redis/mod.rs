//! [`RedisStore`]: one idempotency store shared by every replica, on Redis
//! (feature `redis`).
//!
//! The in-memory store cannot see other processes. Behind a load balancer a
//! retry or a duplicate can land on any replica, so the replicas must claim
//! keys in one shared place. This store keeps one Redis string per event:
//!
//! | Redis value | meaning | expires |
//! |---|---|---|
//! | absent | never seen, released, or expired | – |
//! | `p:<token>` | in flight, held by the claim that wrote `<token>` | after the lease |
//! | `done` | processed | after the done TTL |
//! | `job` | queued: a pending or running job holds the key | when the job ends |
//! | `dead` | queued: the job is a dead letter | with the dead letter |
//!
//! The last two are written by queued mode (see [`queue`]): a claim meeting
//! `job` answers [`Claim::InFlight`], one meeting `dead` answers
//! [`Claim::Done`], as for the in-memory queue.
//!
//! * **Claim** is `SET <key> p:<token> NX PX <lease>`. When the key exists
//!   the store reads it with `GET`: `done` → [`Claim::Done`], `p:…` →
//!   [`Claim::InFlight`]. If the key vanished between the two calls (its
//!   holder released it, or its lease or TTL ran out just then), the key is
//!   free again, so the store tries the `SET` once more; if that loses again
//!   and the key vanished again, it answers [`Claim::InFlight`] (409 with
//!   `Retry-After`: the sender comes back, nothing runs twice, nothing is
//!   wrongly called done). Any other value under the key (something else
//!   writes into this namespace) is a [`StoreError`].
//! * **Renew**, **complete** and **release** are Lua scripts that act only
//!   while the key still holds this claim's `p:<token>`: renew moves its
//!   expiry (`PEXPIRE`), complete sets it `done`, release deletes it. A
//!   claim whose lease ran out, and whose key another delivery has taken
//!   since, can neither keep that key, mark it done nor delete it.
//! * Tokens are 128 random bits (from the standard library's randomly keyed
//!   hasher) plus the process id and a per-process counter: they never repeat
//!   across processes or within one.
//!
//! # Keys
//!
//! `<prefix><scheme>:<event id>`, with the prefix [`DEFAULT_PREFIX`]
//! (`tower-webhook:`) unless [`RedisStoreBuilder::prefix`] says otherwise.
//! Give each deployment that shares one Redis its own prefix.
//!
//! # Failures
//!
//! Every call (a claim with its `GET`, a renewal, a complete, a release) is
//! bounded by one timeout, [`DEFAULT_TIMEOUT`] (1 s) unless
//! [`RedisStoreBuilder::timeout`] says otherwise; past it the call is a
//! [`StoreError`]. The connection is a [`ConnectionManager`]: when Redis goes
//! away, calls fail (the layer answers 503 with `Retry-After` and does not
//! call the handler) and the manager reconnects in the background, so the
//! sender's retry is processed once Redis is back.
//!
//! * **Fail closed** (the default): a claim that fails is a 503. No event
//!   is processed while Redis is down; none is processed twice.
//! * **Fail open** ([`RedisStoreBuilder::fail_open`]): a claim that fails
//!   is logged and treated as new, so the handler runs without
//!   deduplication. Complete and release are then best effort. **Risk:**
//!   while Redis is unreachable every delivery runs the handler, duplicates
//!   and concurrent copies included; use it only for handlers that are
//!   idempotent themselves, or where a missed event costs more than a
//!   repeated one.
//!
//! A claim that fails or times out, or whose future is dropped before it
//! answers, deletes its own `p:<token>` in the background (compare and
//! delete, as in release), in case its `SET` reached Redis anyway: a retry is
//! then not held off by an orphaned claim for a whole lease.
//!
//! When recording `done` fails after the handler answered 2xx, the layer
//! still returns that 2xx (a 5xx would make the sender run the work again)
//! and logs the failure; the key then stays in flight until its lease runs
//! out, after which a redelivery would run again.
//!
//! # Durability
//!
//! By default ([`Durability::Reply`]) a write is acknowledged as soon as
//! Redis answers it, so what a crash keeps is what the server's persistence
//! keeps (the table in the [`queue`] module docs): with `appendfsync
//! everysec`, a power loss can take about the last second of `202`s.
//! [`RedisStoreBuilder::durability`] makes the writes that are acknowledged
//! to someone (accepts, replays, done marks, queued duplicates) wait, in the
//! same pipeline as the write, for the append-only file's fsync
//! ([`Durability::AofFsync`], `WAITAOF`, Redis 7.2+) or for replicas
//! ([`Durability::Replicas`], `WAIT`). A wait that comes back short is a
//! [`StoreError`] (503, the sender retries): the store fails closed on a
//! server that cannot give what was asked for, such as one without AOF.
//! Claims, takes, renewals and releases never wait; neither does a fail-open
//! store's unrecorded complete.
//!
//! # Eviction
//!
//! Deduplication holds only if Redis never drops a key before its TTL. On
//! its first claim the store reads `CONFIG GET maxmemory-policy` in the
//! background and logs a `tracing` warning when the policy can evict keys
//! (anything but `noeviction`), or when the server refuses `CONFIG` (managed
//! Redis often does) so the policy cannot be checked. See
//! [`RedisStore::check_eviction_policy`].
//!
//! # Queued mode
//!
//! `RedisStore` is also a [`JobQueue`](crate::queue::JobQueue): accept
//! (claim + record) is one Lua script, workers on every replica take jobs
//! with leases, and wait on a blocking stream read instead of polling. The
//! [`queue`] module documents its data model, scripts, wake-ups, and what
//! Redis must be configured for (`noeviction`, AOF).
//!
//! # Runtime
//!
//! The store runs on tokio: create it, and use it, inside a tokio runtime
//! with its time driver enabled (`#[tokio::main]` enables it).
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use axum::{Router, http::StatusCode, routing::post};
//! use tower_webhook::numero::{Numero, NumeroEvent};
//! use tower_webhook::store::RedisStore;
//! use tower_webhook::{VerifiedEvent, WebhookLayer};
//!
//! async fn on_numero(VerifiedEvent(event): VerifiedEvent<NumeroEvent>) -> StatusCode {
//!     println!("processing {}", event.id); // once per event, across every replica
//!     StatusCode::OK
//! }
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = RedisStore::builder()
//!     .prefix("payments:webhooks:")
//!     .timeout(Duration::from_millis(500))
//!     .connect("redis://127.0.0.1:6379/")
//!     .await?;
//! let layer = WebhookLayer::builder(Numero)
//!     .secret("whsec_abcdefghijklmnopqrstuvwxyz123456789")
//!     .store(store)
//!     .build()?;
//! let app: Router = Router::new().route("/webhooks/numero", post(on_numero).layer(layer));
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:3000").await?;
//! axum::serve(listener, app).await?;
//! # Ok(())
//! # }
//! ```

use std::collections::hash_map::RandomState;
use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisError, Script, Value};

use super::{Claim, IdempotencyKey, IdempotencyStore, StoreError};

mod durability;
pub mod queue;
mod scripts;
mod wake;

pub use durability::Durability;
pub use queue::RedisJobLease;

/// Default namespace in front of every key: `tower-webhook:`.
pub const DEFAULT_PREFIX: &str = "tower-webhook:";

/// Default bound on every Redis call: 1 second.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

/// The value of a key whose event was processed.
const DONE: &[u8] = b"done";

/// The value of a key held by a queued job (pending or running).
const JOB: &[u8] = b"job";

/// The value of a key whose queued job is a dead letter.
const DEAD: &[u8] = b"dead";

/// Marks the key done for `ARGV[2]` ms, only if it holds `ARGV[1]`.
const COMPLETE_LUA: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], 'done', 'PX', ARGV[2])
  return 1
end
return 0
";

/// Extends the key's expiry to `ARGV[2]` ms, only if it holds `ARGV[1]`.
const RENEW_LUA: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
";

/// Deletes the key, only if it holds `ARGV[1]`.
const RELEASE_LUA: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// An idempotency store on Redis, shared by every replica that uses the
/// same Redis and prefix. Clones share one connection.
///
/// Built with [`RedisStore::builder`]; see the [module docs](self) for the
/// data model, the failure modes and an example.
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    shared: Arc<Shared>,
}

struct Shared {
    prefix: Box<str>,
    timeout: Duration,
    fail_open: bool,
    durability: Durability,
    complete: Script,
    renew: Script,
    release: Script,
    /// Set once the first claim has started the eviction-policy check.
    policy_checked: AtomicBool,
    /// Wakes idle queue workers when another replica wrote work.
    wake: wake::Wake,
    /// Releases of abandoned claims spawned and not yet answered.
    abandoned: AbandonedReleases,
}

/// A count of spawned releases in flight, and a wake-up when it reaches
/// zero: what [`IdempotencyStore::abandoned_released`] waits on.
#[derive(Default)]
struct AbandonedReleases {
    in_flight: AtomicUsize,
    drained: tokio::sync::Notify,
}

impl AbandonedReleases {
    fn started(&self) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
    }

    fn ended(&self) {
        if self.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.drained.notify_waiters();
        }
    }

    async fn drained(&self) {
        loop {
            // Registered before the check, so an `ended` between the two
            // is not missed.
            let drained = self.drained.notified();
            if self.in_flight.load(Ordering::Acquire) == 0 {
                return;
            }
            drained.await;
        }
    }
}

impl fmt::Debug for RedisStore {
    // The connection is left out: its URL may carry a password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.shared.prefix)
            .field("timeout", &self.shared.timeout)
            .field("fail_open", &self.shared.fail_open)
            .field("durability", &self.shared.durability)
            .finish_non_exhaustive()
    }
}

/// Configures a [`RedisStore`]; ends with [`RedisStoreBuilder::connect`],
/// [`RedisStoreBuilder::connect_lazy`] or
/// [`RedisStoreBuilder::with_connection`].
#[derive(Debug, Clone)]
pub struct RedisStoreBuilder {
    prefix: String,
    timeout: Duration,
    fail_open: bool,
    durability: Durability,
}

impl Default for RedisStoreBuilder {
    fn default() -> Self {
        Self {
            prefix: DEFAULT_PREFIX.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            fail_open: false,
            durability: Durability::Reply,
        }
    }
}

impl RedisStoreBuilder {
    /// The namespace in front of every key (default [`DEFAULT_PREFIX`]).
    /// Replicas that must deduplicate together need the same prefix.
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The bound on every Redis call (default [`DEFAULT_TIMEOUT`]). A call
    /// that takes longer is a [`StoreError`]: a 503 on claim, unless the
    /// store fails open. Also used as the connect timeout.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Whether a failed claim lets the delivery through (default `false`:
    /// fail closed, 503).
    ///
    /// With `true`, a claim that errors or times out is logged and answered
    /// [`Claim::New`], so the handler runs **without deduplication** while
    /// Redis is unreachable: duplicates and concurrent copies all run. After
    /// the handler, a 2xx sets the key `done` without checking who holds it
    /// (the event was processed either way), and a failure deletes the key
    /// only if this claim's token is in it; both are best effort.
    #[must_use]
    pub fn fail_open(mut self, fail_open: bool) -> Self {
        self.fail_open = fail_open;
        self
    }

    /// What an acknowledged write waits for (default [`Durability::Reply`]:
    /// nothing beyond Redis's answer). See [`Durability`] for which calls
    /// wait, and the [module docs](self#durability).
    #[must_use]
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Connects to the Redis at `url` (`redis://[user:password@]host:port/db`)
    /// and waits for the connection, bounded by the timeout.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the URL is invalid, or Redis cannot be reached
    /// within the timeout.
    pub async fn connect(self, url: &str) -> Result<RedisStore, StoreError> {
        let client = open(url)?;
        let config = self.manager_config();
        let conn = tokio::time::timeout(
            self.timeout,
            ConnectionManager::new_with_config(client.clone(), config),
        )
        .await
        .map_err(|_| {
            StoreError::timed_out(format!(
                "could not connect to redis within {:?}",
                self.timeout
            ))
        })?
        .map_err(|e| {
            StoreError::unavailable(format!("could not connect to redis: {e}")).with_source(e)
        })?;
        Ok(self.assemble(conn, Some(client)))
    }

    /// Prepares a connection to the Redis at `url` without waiting for it:
    /// the first call connects. A service built this way starts while Redis
    /// is down, and answers 503 until Redis is up.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the URL is invalid, or this is not called inside a
    /// tokio runtime.
    pub fn connect_lazy(self, url: &str) -> Result<RedisStore, StoreError> {
        let client = open(url)?;
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(StoreError::unavailable(
                "RedisStore must be created inside a tokio runtime",
            ));
        }
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), self.manager_config())
            .map_err(|e| {
            StoreError::unavailable(format!("could not set up the redis connection: {e}"))
                .with_source(e)
        })?;
        Ok(self.assemble(conn, Some(client)))
    }

    /// Uses a connection manager you configured yourself (TLS, a custom
    /// retry policy, …).
    ///
    /// In queued mode such a store has no client to open the connection its
    /// wake-up listener blocks on, so its workers see jobs accepted by other
    /// replicas at their idle poll; use
    /// [`with_connection_and_client`](Self::with_connection_and_client) to
    /// give it one.
    pub fn with_connection(self, conn: ConnectionManager) -> RedisStore {
        self.assemble(conn, None)
    }

    /// Uses a connection manager you configured yourself, and `client` (the
    /// same server and settings) for the one extra connection queued mode
    /// blocks on to wake idle workers (see [`queue`]).
    pub fn with_connection_and_client(
        self,
        conn: ConnectionManager,
        client: redis::Client,
    ) -> RedisStore {
        self.assemble(conn, Some(client))
    }

    fn assemble(self, conn: ConnectionManager, client: Option<redis::Client>) -> RedisStore {
        let stream = format!("{}{}wake", self.prefix, scripts::NAMESPACE);
        RedisStore {
            conn,
            shared: Arc::new(Shared {
                wake: wake::Wake::new(client, stream, self.timeout),
                prefix: self.prefix.into_boxed_str(),
                timeout: self.timeout,
                fail_open: self.fail_open,
                durability: self.durability,
                complete: Script::new(COMPLETE_LUA),
                renew: Script::new(RENEW_LUA),
                release: Script::new(RELEASE_LUA),
                policy_checked: AtomicBool::new(false),
                abandoned: AbandonedReleases::default(),
            }),
        }
    }

    /// Each connection attempt is bounded by the call timeout, and while
    /// Redis is away the manager keeps retrying at least once a second, so
    /// a restarted Redis is seen again within about a second.
    fn manager_config(&self) -> ConnectionManagerConfig {
        ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            .set_max_delay(Duration::from_secs(1))
    }
}

fn open(url: &str) -> Result<redis::Client, StoreError> {
    redis::Client::open(url)
        .map_err(|e| StoreError::unavailable(format!("invalid redis URL: {e}")).with_source(e))
}

/// Proof of a claim on a [`RedisStore`] key: the key and this claim's token.
#[derive(Clone)]
pub struct RedisLease {
    key: Arc<str>,
    /// `p:<token>`: the value this claim wrote.
    value: Arc<str>,
    /// `false` when a fail-open store let the delivery through without a
    /// claim.
    recorded: bool,
}

impl fmt::Debug for RedisLease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisLease")
            .field("key", &self.key)
            .field("recorded", &self.recorded)
            .finish_non_exhaustive()
    }
}

impl RedisLease {
    /// The Redis key this lease claims.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Whether Redis recorded the claim. Always `true` unless the store
    /// fails open and the claim failed.
    pub fn is_recorded(&self) -> bool {
        self.recorded
    }
}

/// What [`RedisStore::check_eviction_policy`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvictionPolicy {
    /// `maxmemory-policy` is `noeviction`: keys live until their TTL.
    NoEviction,
    /// Any other policy: Redis may drop keys under memory pressure, and a
    /// dropped key lets a duplicate run. Holds the policy's name.
    MayEvict(String),
    /// The server refused `CONFIG GET` (disabled, renamed or not permitted),
    /// so the policy is unknown.
    Unknown,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'static>>;

/// The future of [`RedisStore`]'s claim.
///
/// Dropped before it answers (the client went away while Redis was slow),
/// it releases its claim in the background, in case the `SET` had already
/// reached Redis: otherwise the sender's retry would meet an orphaned
/// in-flight key until the lease ran out.
pub struct RedisClaimFuture {
    inner: BoxFuture<Claim<RedisLease>>,
    /// What to release if dropped after the first poll and before the
    /// answer.
    orphan: Option<(RedisStore, RedisLease)>,
    polled: bool,
}

/// The future of [`RedisStore`]'s complete and release.
pub struct RedisFinishFuture(BoxFuture<()>);

impl Future for RedisClaimFuture {
    type Output = Result<Claim<RedisLease>, StoreError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        this.polled = true;
        let answer = std::task::ready!(this.inner.as_mut().poll(cx));
        this.orphan = None;
        Poll::Ready(answer)
    }
}

impl Drop for RedisClaimFuture {
    fn drop(&mut self) {
        if let (true, Some((store, lease))) = (self.polled, self.orphan.take()) {
            store.spawn_release(lease);
        }
    }
}

impl Future for RedisFinishFuture {
    type Output = Result<(), StoreError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.0.as_mut().poll(cx)
    }
}

impl fmt::Debug for RedisClaimFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RedisClaimFuture")
    }
}

impl fmt::Debug for RedisFinishFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RedisFinishFuture")
    }
}

impl RedisStore {
    /// Starts a builder with the defaults: prefix [`DEFAULT_PREFIX`],
    /// timeout [`DEFAULT_TIMEOUT`], fail closed.
    pub fn builder() -> RedisStoreBuilder {
        RedisStoreBuilder::default()
    }

    /// Connects to the Redis at `url` with every default (see
    /// [`RedisStoreBuilder::connect`]).
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the URL is invalid, or Redis cannot be reached
    /// within [`DEFAULT_TIMEOUT`].
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::builder().connect(url).await
    }

    /// What this store's acknowledged writes wait for (see [`Durability`]).
    pub fn durability(&self) -> Durability {
        self.shared.durability
    }

    /// The Redis key under which `key` is stored: the prefix, then the key's
    /// text (`<scheme>:<event id>`).
    pub fn redis_key(&self, key: &IdempotencyKey) -> String {
        let mut text = String::with_capacity(self.shared.prefix.len() + key.as_str().len());
        text.push_str(&self.shared.prefix);
        text.push_str(key.as_str());
        text
    }

    /// What Redis holds for `key` now: `Some(true)` done, `Some(false)` in
    /// flight (an inline claim, or a queued job: pending, running or dead),
    /// `None` absent or expired. For tests and diagnostics.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when Redis fails or the timeout passes.
    pub async fn status(&self, key: &IdempotencyKey) -> Result<Option<bool>, StoreError> {
        let redis_key = self.redis_key(key);
        let mut conn = self.conn.clone();
        let value: Option<Vec<u8>> = bounded(self.shared.timeout, "status", async move {
            redis::cmd("GET")
                .arg(redis_key)
                .query_async(&mut conn)
                .await
        })
        .await?;
        Ok(value.map(|v| v == DONE))
    }

    /// Reads `maxmemory-policy` and logs a `tracing` warning when Redis may
    /// evict keys or the policy cannot be read. The store runs this once, in
    /// the background, on its first claim; call it yourself to check at
    /// start-up.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when Redis is unreachable or the timeout passes (a
    /// server that refuses `CONFIG` is [`EvictionPolicy::Unknown`], not an
    /// error).
    pub async fn check_eviction_policy(&self) -> Result<EvictionPolicy, StoreError> {
        let mut conn = self.conn.clone();
        let reply = tokio::time::timeout(self.shared.timeout, async move {
            redis::cmd("CONFIG")
                .arg("GET")
                .arg("maxmemory-policy")
                .query_async::<Value>(&mut conn)
                .await
        })
        .await
        .map_err(|_| timed_out("CONFIG GET maxmemory-policy", self.shared.timeout))?;
        let policy = match reply {
            Ok(value) => parse_policy(value),
            // An answer from the server (unknown command, no permission):
            // CONFIG is disabled here.
            Err(e) if e.kind() != redis::ErrorKind::Io && !e.is_unrecoverable_error() => {
                tracing::debug!(error = %e, "CONFIG GET maxmemory-policy refused");
                None
            }
            Err(e) => return Err(failed("CONFIG GET maxmemory-policy", e)),
        };
        let policy = match policy {
            Some(name) if name == "noeviction" => EvictionPolicy::NoEviction,
            Some(name) => {
                tracing::warn!(
                    maxmemory_policy = %name,
                    "redis may evict keys (maxmemory-policy is not noeviction): \
                     an evicted key lets a duplicate webhook run again; \
                     set maxmemory-policy noeviction"
                );
                EvictionPolicy::MayEvict(name)
            }
            None => {
                tracing::warn!(
                    "could not read redis maxmemory-policy (CONFIG is disabled or not \
                     permitted): make sure it is noeviction, or evicted keys let \
                     duplicate webhooks run again"
                );
                EvictionPolicy::Unknown
            }
        };
        Ok(policy)
    }

    /// On the first claim, checks the eviction policy in the background; if
    /// Redis could not be asked, a later claim tries again.
    fn check_policy_once(&self) {
        if self.shared.policy_checked.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.shared.policy_checked.store(false, Ordering::Release);
            return;
        };
        let store = self.clone();
        runtime.spawn(async move {
            if store.check_eviction_policy().await.is_err() {
                store.shared.policy_checked.store(false, Ordering::Release);
            }
        });
    }

    fn finish_future(
        &self,
        lease: RedisLease,
        ttl: Option<Duration>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send + 'static {
        let mut conn = self.conn.clone();
        let shared = Arc::clone(&self.shared);
        async move {
            let timeout = shared.timeout;
            match ttl {
                Some(ttl) if lease.recorded => {
                    let mut complete = shared.complete.prepare_invoke();
                    complete
                        .key(&*lease.key)
                        .arg(&*lease.value)
                        .arg(millis(ttl));
                    let set: i64 = shared
                        .durability
                        .invoke(&mut conn, &complete, timeout, "complete", |&set| set == 1)
                        .await?;
                    if set == 0 {
                        tracing::warn!(
                            key = %lease.key,
                            "the claim's lease ran out before the handler finished (no renewal \
                             reached redis in time): another delivery may have run it too"
                        );
                    }
                    Ok(())
                }
                Some(ttl) => {
                    // Fail open: nobody recorded this claim, but the event
                    // was processed, so say so whoever holds the key. Best
                    // effort, so it does not wait for the durability.
                    bounded(timeout, "complete", async {
                        redis::cmd("SET")
                            .arg(&*lease.key)
                            .arg(DONE)
                            .arg("PX")
                            .arg(millis(ttl))
                            .query_async::<()>(&mut conn)
                            .await
                    })
                    .await
                }
                None => {
                    let _deleted: i64 = bounded(timeout, "release", async {
                        shared
                            .release
                            .key(&*lease.key)
                            .arg(&*lease.value)
                            .invoke_async(&mut conn)
                            .await
                    })
                    .await?;
                    Ok(())
                }
            }
        }
    }

    /// Starts `future` on the current tokio runtime, logging its failure; if
    /// there is no runtime the lease running out frees the key.
    fn spawn_release(&self, lease: RedisLease) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let key = Arc::clone(&lease.key);
        let release = self.finish_future(lease, None);
        let shared = Arc::clone(&self.shared);
        shared.abandoned.started();
        runtime.spawn(async move {
            if let Err(error) = release.await {
                tracing::warn!(
                    key = %key,
                    %error,
                    "could not release an abandoned claim; it frees itself when its lease runs out"
                );
            }
            shared.abandoned.ended();
        });
    }
}

impl IdempotencyStore for RedisStore {
    type Lease = RedisLease;
    type ClaimFuture = RedisClaimFuture;
    type FinishFuture = RedisFinishFuture;
    type RenewFuture = BoxFuture<bool>;

    fn claim(&self, key: &IdempotencyKey, lease: Duration) -> Self::ClaimFuture {
        self.check_policy_once();
        let store = self.clone();
        let key: Arc<str> = Arc::from(self.redis_key(key));
        let value: Arc<str> = Arc::from(format!("p:{}", new_token()));
        let lease_ms = millis(lease);
        let orphan = RedisLease {
            key: Arc::clone(&key),
            value: Arc::clone(&value),
            recorded: true,
        };
        let inner = Box::pin(async move {
            let mut conn = store.conn.clone();
            let timeout = store.shared.timeout;
            let outcome = bounded(timeout, "claim", claim(&mut conn, &key, &value, lease_ms))
                .await
                .and_then(|answer| answer);
            let fresh = |recorded| RedisLease {
                key: Arc::clone(&key),
                value: Arc::clone(&value),
                recorded,
            };
            match outcome {
                Ok(Some(claim)) => Ok(claim),
                Ok(None) => Ok(Claim::New(fresh(true))),
                Err(error) if store.shared.fail_open => {
                    tracing::warn!(
                        key = %key,
                        %error,
                        "idempotency store unavailable; failing open: the handler runs \
                         without deduplication"
                    );
                    Ok(Claim::New(fresh(false)))
                }
                Err(error) => {
                    // The SET may have landed before the failure: take it
                    // back, so the sender's retry is not held off for a lease.
                    store.spawn_release(fresh(true));
                    Err(error)
                }
            }
        });
        RedisClaimFuture {
            inner,
            orphan: Some((self.clone(), orphan)),
            polled: false,
        }
    }

    fn renew_claim(&self, lease: &RedisLease, lease_for: Duration) -> Self::RenewFuture {
        // A fail-open delivery holds nothing, so there is nothing to lose.
        if !lease.recorded {
            return Box::pin(std::future::ready(Ok(true)));
        }
        let (shared, mut conn) = (Arc::clone(&self.shared), self.conn.clone());
        let (key, value) = (Arc::clone(&lease.key), Arc::clone(&lease.value));
        Box::pin(async move {
            let renewed: i64 = bounded(shared.timeout, "renew", async {
                shared
                    .renew
                    .key(&*key)
                    .arg(&*value)
                    .arg(millis(lease_for))
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
            Ok(renewed == 1)
        })
    }

    fn complete(&self, lease: RedisLease, ttl: Duration) -> Self::FinishFuture {
        RedisFinishFuture(Box::pin(self.finish_future(lease, Some(ttl))))
    }

    fn release(&self, lease: RedisLease) -> Self::FinishFuture {
        RedisFinishFuture(Box::pin(self.finish_future(lease, None)))
    }

    fn release_abandoned(&self, lease: RedisLease) {
        self.spawn_release(lease);
    }

    fn abandoned_released(&self) -> impl Future<Output = ()> + Send + 'static {
        let shared = Arc::clone(&self.shared);
        async move { shared.abandoned.drained().await }
    }
}

/// `SET NX`, then `GET` on conflict. `Ok(Ok(None))`: this claim holds the
/// key; `Ok(Err(_))`: Redis answered, with a value this store did not write
/// ([`StoreErrorKind::Corrupt`](crate::store::StoreErrorKind::Corrupt)).
async fn claim(
    conn: &mut ConnectionManager,
    key: &str,
    value: &str,
    lease_ms: u64,
) -> Result<Result<Option<Claim<RedisLease>>, StoreError>, RedisError> {
    // Two rounds: the key may vanish between SET and GET once (released, or
    // its lease or TTL ran out right then), and is then free to take. If
    // it vanishes again, answer "in flight": the sender retries later.
    for _ in 0..2 {
        let set: Option<String> = redis::cmd("SET")
            .arg(key)
            .arg(value)
            .arg("NX")
            .arg("PX")
            .arg(lease_ms)
            .query_async(conn)
            .await?;
        if set.is_some() {
            return Ok(Ok(None));
        }
        let current: Option<Vec<u8>> = redis::cmd("GET").arg(key).query_async(conn).await?;
        match current.as_deref() {
            None => continue,
            Some(DONE | DEAD) => return Ok(Ok(Some(Claim::Done))),
            Some(JOB) => return Ok(Ok(Some(Claim::InFlight))),
            Some(v) if v.starts_with(b"p:") => return Ok(Ok(Some(Claim::InFlight))),
            Some(_) => {
                return Ok(Err(StoreError::corrupt(format!(
                    "unexpected value under the idempotency key {key}: something else \
                     writes under this prefix; give the store its own"
                ))));
            }
        }
    }
    Ok(Ok(Some(Claim::InFlight)))
}

async fn bounded<T>(
    timeout: Duration,
    operation: &str,
    call: impl Future<Output = Result<T, RedisError>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(timeout, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(failed(operation, e)),
        Err(_) => Err(timed_out(operation, timeout)),
    }
}

fn failed(operation: &str, error: RedisError) -> StoreError {
    StoreError::unavailable(format!("redis {operation} failed: {error}")).with_source(error)
}

fn timed_out(operation: &str, timeout: Duration) -> StoreError {
    StoreError::timed_out(format!("redis {operation} timed out after {timeout:?}"))
}

/// `CONFIG GET` answers `[name, value]` (RESP2) or `{name: value}` (RESP3).
fn parse_policy(value: Value) -> Option<String> {
    let text = |v: &Value| match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    };
    match value {
        Value::Array(items) => items.get(1).and_then(text),
        Value::Map(pairs) => pairs.first().and_then(|(_, v)| text(v)),
        _ => None,
    }
}

/// Milliseconds, at least 1 (Redis refuses `PX 0`).
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// A claim token: 128 bits from two randomly keyed hashers (the standard
/// library seeds them from the OS), then the process id and a per-process
/// counter, so that no two claims anywhere share one.
fn new_token() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut words = [0u64; 2];
    for (i, word) in words.iter_mut().enumerate() {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_usize(i);
        hasher.write_u64(count);
        hasher.write_u32(pid);
        hasher.write_u128(nanos);
        *word = hasher.finish();
    }
    format!("{:016x}{:016x}.{pid:x}.{count:x}", words[0], words[1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_do_not_repeat() {
        let tokens: std::collections::HashSet<String> = (0..10_000).map(|_| new_token()).collect();
        assert_eq!(tokens.len(), 10_000);
        assert!(tokens.iter().all(|t| t.len() > 32));
    }

    #[test]
    fn policy_replies_parse_in_both_protocols() {
        let name = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        assert_eq!(
            parse_policy(Value::Array(vec![
                name("maxmemory-policy"),
                name("allkeys-lru")
            ])),
            Some("allkeys-lru".to_owned())
        );
        assert_eq!(
            parse_policy(Value::Map(vec![(
                name("maxmemory-policy"),
                name("noeviction")
            )])),
            Some("noeviction".to_owned())
        );
        assert_eq!(parse_policy(Value::Array(vec![])), None);
    }

    #[test]
    fn durations_never_become_px_zero() {
        assert_eq!(millis(Duration::ZERO), 1);
        assert_eq!(millis(Duration::from_micros(1500)), 1);
        assert_eq!(millis(Duration::from_secs(2)), 2000);
    }
}
