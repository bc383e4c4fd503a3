//! A webhook receiver: NumberOTP, Numero, GitHub, Standard Webhooks and
//! Stripe deliveries verified, deduplicated and typed by `tower-webhook`, on
//! a real axum server, durable by default.
//!
//! ```text
//! cargo run --release --example receiver -- [--store sqlite:webhooks.db] [--queued] [--addr 127.0.0.1:3000]
//! ```
//!
//! * `--store URL`: `sqlite:PATH` (the default, `sqlite:webhooks.db` in the
//!   working directory: claims, done marks and queued jobs survive restarts
//!   and `kill -9`), `memory` (forgets on restart), or `redis://HOST:PORT/`
//!   (shared by several receivers; build with `--features redis`), or
//!   `postgres://USER@HOST:PORT/DB` (shared by several receivers; build
//!   with `--features postgres`): there the demo handler writes one row
//!   into `demo_effects (scheme, event_id, attempt, at)` in the delivery's
//!   transaction, which commits with the event's done mark, so each event
//!   leaves exactly one row whatever crashes (`--effect-fail-first N`
//!   makes that statement fail, to watch the rollback and the retry).
//!   `--redis URL` and `REDIS_URL` mean the same as `--store redis://…`;
//!   `--redis-durability reply|aof|replicas:N` says what a 202 waits for
//!   there (printed at start).
//! * `--queued`: answer `202 {"status":"accepted"}` once the delivery is
//!   on disk, then run the handler from a worker (`--workers N`, default 4)
//!   with retries (`--retry-base-ms`, `--max-attempts`) and dead letters.
//! * `--handler-delay-ms N` and `--handler-fail-first N` make the demo
//!   handler slow or failing, to watch queued mode answer first and retry;
//!   `--handler-abort-first N` makes it abort the process, to watch a
//!   poisonous delivery become a dead letter after `--max-attempts`
//!   restarts.
//! * Flow control, queued: `--order-by /data/customer_id` (one event of a
//!   key at a time, in acceptance order), `--max-running-per-scheme N`
//!   (across every receiver on the store), `--max-pending N` (past it, 503
//!   `queue_full` before the body is read).
//! * `--help` lists every flag.
//!
//! The SQLite store runs with `synchronous=FULL`: a 2xx or 202 is sent only
//! once the claim or the job is on disk, so not even a power loss loses an
//! acknowledged delivery; group commit keeps that cheap.
//!
//! Routes:
//!
//! * `POST /webhooks/numberotp`: header `x-numberotp-signature: sha256=<hex>`;
//! * `POST /webhooks/numero`: header `X-Webhook-Signature: <base64 or hex>`;
//! * `POST /webhooks/github`: header `X-Hub-Signature-256: sha256=<hex>`;
//! * `POST /webhooks/standard`: Standard Webhooks / Svix headers
//!   `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64>`;
//! * `POST /webhooks/stripe`: header `Stripe-Signature: t=<unix>,v1=<hex>`;
//! * `POST /webhooks/<provider>` for Shopify, Slack, Paddle, Linear, Zoom,
//!   Twitch, WooCommerce, Lemon Squeezy, Flutterwave, Paystack, Twilio,
//!   Square and Discord, each configured with its provider's setting names
//!   (see `providers.rs`); Standard Webhooks also takes
//!   `STANDARD_WEBHOOK_PUBLIC_KEY` (`whpk_…`, `v1a`);
//! * `GET /events`: the most recent handler runs (the last 1000,
//!   `--events-keep`), each `{"seq","scheme","id","attempt","status",
//!   "started_ms","ended_ms"}`, so
//!   you can watch each event run once;
//! * `GET /queue`: `{"pending":N,"running":N,"dead":N}` (zeros inline);
//! * `GET /dead-letters`: `[{"key","scheme","id","attempts","last_error",…}]`;
//! * `POST /dead-letters/replay` with `{"key":"<key>"}`: 202 when that dead
//!   letter is queued again, 404 when there is none;
//! * `GET /metrics`: `webhook_deliveries_total`, the handler-duration and
//!   body-size histograms, and in queued mode `webhook_queue_jobs` and
//!   `webhook_job_attempts_total`, in the Prometheus text format.
//!
//! The admin routes (`/events`, `/queue`, `/dead-letters`) are open on a
//! loopback address (the default). On any other address the receiver
//! starts only with `ADMIN_TOKEN` set, and they then answer only requests
//! with `Authorization: Bearer <ADMIN_TOKEN>` (401 otherwise); once set, the
//! token is required on loopback too. Every route reads its body within
//! `--body-timeout-ms`; the admin routes and `/metrics` take at most 64 KiB.
//! An error body is a reason code (`{"error":"store_unavailable"}`); the
//! detail goes to stderr.
//!
//! Secrets come from `NUMBEROTP_WEBHOOK_SECRET`, `NUMERO_WEBHOOK_SECRET`,
//! `GITHUB_WEBHOOK_SECRET`, `STANDARD_WEBHOOK_SECRET` (`whsec_` + base64)
//! and `STRIPE_WEBHOOK_SECRET`: each holds one secret, its whole value,
//! spaces included. During a rotation name a file with one secret per line
//! in `<VAR>_FILE` instead. When a variable is unset and the receiver
//! listens on a loopback address (the default), it makes up a demo secret
//! and prints it; on any other address that route is not mounted, and no
//! secret is ever printed:
//!
//! ```text
//! NUMERO_WEBHOOK_SECRET=whsec_abcdefghijklmnopqrstuvwxyz123456789 cargo run --release --example receiver
//! NUMERO_WEBHOOK_SECRET=whsec_abcdefghijklmnopqrstuvwxyz123456789 cargo run --release --example send -- numero duplicate
//! ```
//!
//! With curl, sign the exact bytes you send (here with openssl):
//!
//! ```text
//! secret=whsec_abcdefghijklmnopqrstuvwxyz123456789
//! body='{"id":"evt_1","event":"PAYOUT_NOTIFICATION","data":{"amount":5000.00,"currency":"NGN"}}'
//! sig=$(printf %s "$body" | openssl dgst -sha256 -hmac "$secret" -binary | base64)
//! curl -i http://127.0.0.1:3000/webhooks/numero -H "X-Webhook-Signature: $sig" -d "$body"
//! # → 200 {"status":"processed",...} (queued: 202 {"status":"accepted"});
//! #   the same command again → 200 {"status":"duplicate"}, even after a restart
//! curl -i http://127.0.0.1:3000/webhooks/numero -H "X-Webhook-Signature: $sig" -d "${body/5000/9000}"
//! # → 401 {"error":"signature_mismatch"}
//! curl -s http://127.0.0.1:3000/events
//! ```
//!
//! A store that cannot be opened (a missing directory, a read-only file, a
//! file that is not a database) stops the receiver with a one-line error and
//! a non-zero exit status.

mod admin;
mod cli;
mod effect;
mod events;
mod metrics;
mod providers;
mod routes;
mod secrets;
mod serve;
mod wiring;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use clap::Parser;
use tokio::net::TcpListener;
use tower_webhook::queue::QueueInspect;
use tower_webhook::queue::RetryPolicy;
use tower_webhook::store::SqliteStore;
use tower_webhook::{MemoryQueue, MemoryStore, Worker};

use crate::cli::{Options, StoreChoice};
use crate::events::EventLog;
use crate::routes::{AppState, Demo, LayerSettings};
use crate::secrets::Unset;
use crate::serve::{Flush, Limits, StopSignal};
use crate::wiring::{Admin, Inline, Queued, Wiring};

#[tokio::main]
async fn main() -> ExitCode {
    let options = Options::parse();
    match run(options).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Opens the store, binds, mounts every route, serves until stopped.
async fn run(options: Options) -> Result<(), String> {
    let choice = options.store_choice()?;
    if options.redis_durability.is_some() && !matches!(choice, StoreChoice::Redis(_)) {
        return Err("--redis-durability needs a redis store (--store redis://…)".into());
    }
    // Before anything is opened: a receiver it refuses leaves nothing behind.
    let access = admin::Access::from_env(options.addr)?;
    println!("{}", access.describe());
    // Before any layer is built: they register their metrics with it.
    metrics::install()?;
    // Bind first, so the hints printed for demo secrets carry the real port.
    let listener = TcpListener::bind(options.addr)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", options.addr))?;
    let mode = if options.queued { "queued" } else { "inline" };
    let queued_only = [
        ("--order-by", options.order_by.is_some()),
        (
            "--max-running-per-scheme",
            options.max_running_per_scheme.is_some(),
        ),
        ("--max-pending", options.max_pending.is_some()),
    ];
    if let Some((flag, _)) = queued_only.iter().find(|(_, set)| *set && !options.queued) {
        return Err(format!("{flag} needs --queued"));
    }
    match choice {
        StoreChoice::Memory if options.queued => {
            let worker = worker(MemoryQueue::new(), &options);
            start(listener, &options, access, Queued(worker), "memory, queued").await
        }
        StoreChoice::Memory => {
            start(
                listener,
                &options,
                access,
                Inline(MemoryStore::new()),
                "memory, inline",
            )
            .await
        }
        StoreChoice::Sqlite(path) => {
            let store =
                SqliteStore::open(&path).map_err(|e| format!("--store sqlite:{path}: {e}"))?;
            let described = format!("sqlite:{path} (synchronous=FULL), {mode}");
            if options.queued {
                let worker = worker(store, &options);
                start(listener, &options, access, Queued(worker), &described).await
            } else {
                start(listener, &options, access, Inline(store), &described).await
            }
        }
        #[cfg(feature = "redis")]
        StoreChoice::Redis(url) => {
            let store = redis_store(&url, options.redis_durability.as_deref()).await?;
            if options.queued {
                let worker = worker(store, &options);
                start(listener, &options, access, Queued(worker), "redis, queued").await
            } else {
                start(listener, &options, access, Inline(store), "redis, inline").await
            }
        }
        #[cfg(feature = "postgres")]
        StoreChoice::Postgres(url) => {
            let store = effect::open_store(&url, options.workers).await?;
            let described = format!("{}, {mode}", secrets::url_for_log(&url));
            if options.queued {
                let worker = worker(store, &options);
                start(listener, &options, access, Queued(worker), &described).await
            } else {
                start(listener, &options, access, Inline(store), &described).await
            }
        }
        #[cfg(not(feature = "postgres"))]
        StoreChoice::Postgres(url) => {
            let url = secrets::url_for_log(&url);
            Err(format!(
                "{url} needs the postgres feature: \
                 cargo run --release --example receiver --features postgres -- --store {url}"
            ))
        }
        #[cfg(not(feature = "redis"))]
        StoreChoice::Redis(url) => {
            let url = secrets::url_for_log(&url);
            Err(format!(
                "{url} needs the redis feature: \
                 cargo run --release --example receiver --features redis -- --store {url}"
            ))
        }
    }
}

/// A started worker on `queue` with the command line's settings.
fn worker<Q: QueueInspect>(queue: Q, options: &Options) -> Worker<Q> {
    let retry = RetryPolicy {
        base: Duration::from_millis(options.retry_base_ms),
        max_attempts: options.max_attempts,
        ..RetryPolicy::default()
    };
    let mut builder = Worker::builder(queue)
        .concurrency(options.workers)
        .lease(Duration::from_millis(options.lease_ms))
        .retry(retry);
    if let Some(cap) = options.max_running_per_scheme {
        builder = builder.max_running_per_scheme(cap);
    }
    if let Some(max) = options.max_pending {
        builder = builder.max_pending_per_scheme(max);
    }
    builder.start()
}

/// Mounts every scheme with `wiring`, the admin routes open to whom
/// `access` admits, and serves.
async fn start<W: Wiring + Admin + Flush>(
    listener: TcpListener,
    options: &Options,
    access: admin::Access,
    wiring: W,
    described: &str,
) -> Result<(), String> {
    let base_url = format!(
        "http://{}",
        listener.local_addr().map_err(|e| e.to_string())?
    );
    let wiring = Arc::new(wiring);
    let admin: Arc<dyn Admin> = Arc::clone(&wiring) as Arc<dyn Admin>;
    let state = AppState {
        log: EventLog::new(options.events_keep),
        admin: Arc::clone(&admin),
        demo: Demo {
            delay: Duration::from_millis(options.handler_delay_ms),
            fail_first: options.handler_fail_first,
            effect_fail_first: options.effect_fail_first,
            abort_first: options.handler_abort_first,
            abort_id: options
                .handler_abort_id
                .as_deref()
                .map(std::sync::Arc::from),
            quiet: options.quiet,
        },
    };
    let settings = LayerSettings {
        max_body_bytes: options.max_body_bytes,
        lease: Duration::from_millis(options.lease_ms),
        body_timeout: Duration::from_millis(options.body_timeout_ms),
        order_by: options.order_by.clone(),
        state: state.clone(),
    };
    let wiring = &*wiring;
    // Off loopback a printed demo secret would let any reader of the log
    // sign: unset providers are then not mounted at all.
    let unset = Unset::for_address(listener.local_addr().map_err(|e| e.to_string())?);
    let app = Router::new().merge(routes::admin(access, settings.body_timeout));
    let app = mount_console(app, wiring, &state.log, settings.body_timeout);
    let app = providers::mount_all(app, unset, wiring, &settings, &base_url)?;
    let flushed = wiring.flushed();
    let limits = Limits::new(
        Duration::from_millis(options.body_timeout_ms),
        options.max_connections,
        Duration::from_millis(options.shutdown_grace_ms),
    );
    let stop = StopSignal::listen();
    println!(
        "listening on {base_url} (store: {described}); GET /events lists handler runs; \
         Ctrl-C stops"
    );
    serve::serve(
        listener,
        app.with_state(state),
        admin,
        flushed,
        stop,
        limits,
    )
    .await;
    Ok(())
}

/// Mounts the operator console at `/console` when `ADMIN_TOKEN` is set
/// and the receiver is queued, and says so either way.
fn mount_console<W: Wiring>(
    app: Router<AppState>,
    wiring: &W,
    log: &EventLog,
    body_deadline: Duration,
) -> Router<AppState> {
    let token = std::env::var(admin::TOKEN_VAR).unwrap_or_default();
    if token.is_empty() {
        println!(
            "console: off; set {} to serve it at /console",
            admin::TOKEN_VAR
        );
        return app;
    }
    match wiring.console(&token, log.clone()) {
        Some(console) => {
            let bounded = axum::middleware::from_fn_with_state(body_deadline, admin::bound_body);
            println!(
                "console: /console (log in with ${}, or send `Authorization: Bearer ${}`)",
                admin::TOKEN_VAR,
                admin::TOKEN_VAR
            );
            app.nest_service("/console", console.layer(bounded))
        }
        None => {
            println!("console: off; it shows a queue, so it needs --queued");
            app
        }
    }
}

/// Connects to the Redis at `url`, says what its acknowledgements wait
/// for and whether it may evict.
#[cfg(feature = "redis")]
async fn redis_store(
    url: &str,
    durability: Option<&str>,
) -> Result<tower_webhook::RedisStore, String> {
    use tower_webhook::store::redis::{Durability, EvictionPolicy};
    let durability = match durability.unwrap_or("reply") {
        "reply" => Durability::Reply,
        "aof" => Durability::AofFsync,
        text => text
            .strip_prefix("replicas:")
            .and_then(|n| n.parse().ok())
            .filter(|&n| n > 0)
            .map(Durability::Replicas)
            .ok_or_else(|| {
                format!("--redis-durability {text:?} is not reply, aof or replicas:N")
            })?,
    };
    let store = tower_webhook::RedisStore::builder()
        .durability(durability)
        .connect(url)
        .await;
    let url = secrets::url_for_log(url);
    let store = store.map_err(|e| format!("{url}: {e}"))?;
    println!(
        "redis durability: {}",
        match durability {
            Durability::AofFsync =>
                "aof: a 202 waits for the append-only file's fsync (WAITAOF)".to_owned(),
            Durability::Replicas(n) => format!("replicas:{n}: a 202 waits for {n} replicas (WAIT)"),
            Durability::Reply =>
                "reply: a 202 is sent on Redis's answer; what a crash keeps is what its \
                  appendfsync keeps (--redis-durability aof waits for the fsync)"
                    .to_owned(),
        }
    );
    match store.check_eviction_policy().await {
        Ok(EvictionPolicy::NoEviction) => println!("redis at {url}: noeviction"),
        Ok(EvictionPolicy::MayEvict(policy)) => println!(
            "redis at {url}: WARNING: maxmemory-policy is {policy}, so an evicted key \
             lets a duplicate run again: set it to noeviction"
        ),
        Ok(EvictionPolicy::Unknown) | Err(_) => {
            println!("redis at {url}: could not read maxmemory-policy: make sure it is noeviction")
        }
    }
    Ok(store)
}
