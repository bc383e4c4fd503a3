//! The receiver's command line (clap). Flags and their meaning are a
//! contract: other tools drive the receiver through them.

use std::net::SocketAddr;

use clap::Parser;

/// Receives webhooks through tower-webhook: verified, deduplicated, typed,
/// durable by default (SQLite at webhooks.db), inline or queued.
#[derive(Debug, Parser)]
#[command(name = "receiver", version)]
pub struct Options {
    /// Address to listen on. On a loopback address the admin routes
    /// (/events, /queue, /dead-letters) are open; on any other the receiver
    /// starts only with ADMIN_TOKEN set, and those routes then answer only
    /// `Authorization: Bearer <ADMIN_TOKEN>` (read from the environment
    /// only, so that `ps` never shows it; once set, required on loopback
    /// too).
    #[arg(long, default_value = "127.0.0.1:3000")]
    pub addr: SocketAddr,

    /// Largest body accepted, in bytes; larger gets 413.
    #[arg(long, default_value_t = tower_webhook::DEFAULT_MAX_BODY_BYTES, value_parser = positive)]
    pub max_body_bytes: usize,

    /// Where claims, done marks and jobs live: `sqlite:PATH` (durable, one
    /// machine), `memory` (forgets on restart), `redis://HOST:PORT/`
    /// (shared by replicas) or `postgres://USER@HOST:PORT/DB` (shared by
    /// replicas; the demo handler's effect, a row in `demo_effects`,
    /// commits with the event's done mark; build with `--features postgres`).
    #[arg(long)]
    pub store: Option<String>,

    /// The same as `--store redis://…`.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis: Option<String>,

    /// With a Redis store, what a 202 or a done mark waits for: `reply`
    /// (the default: Redis's answer, so what a crash keeps is what its
    /// appendfsync keeps), `aof` (WAITAOF: the append-only file is fsynced;
    /// Redis 7.2+ with appendonly yes) or `replicas:N` (WAIT: N replicas
    /// have it). A wait that falls short answers 503.
    #[arg(long)]
    pub redis_durability: Option<String>,

    /// Queued mode on every webhook route: answer 202 once the delivery is
    /// durable, run the handler from a worker with retries.
    #[arg(long)]
    pub queued: bool,

    /// Concurrent handler runs in queued mode.
    #[arg(long, default_value_t = 4, value_parser = positive)]
    pub workers: usize,

    /// Lease of an in-flight claim or a running job, in milliseconds.
    #[arg(long, default_value_t = 300_000, value_parser = positive_u64)]
    pub lease_ms: u64,

    /// Queued mode: delay before the second attempt, doubled for each
    /// further one (with jitter, capped at an hour).
    #[arg(long, default_value_t = 1000, value_parser = positive_u64)]
    pub retry_base_ms: u64,

    /// Queued mode: attempts before a job becomes a dead letter.
    #[arg(long, default_value_t = 60, value_parser = positive_u32)]
    pub max_attempts: u32,

    /// The demo handler waits this long before answering (to watch queued
    /// mode answer first).
    #[arg(long, default_value_t = 0)]
    pub handler_delay_ms: u64,

    /// The demo handler answers 500 to the first N attempts of each event
    /// (to watch retries and dead letters). Inline, each delivery that
    /// reaches the handler is an attempt.
    #[arg(long, default_value_t = 0)]
    pub handler_fail_first: u32,

    /// With a Postgres store: the demo handler's effect statement fails in
    /// the first N attempts of each event, after its row was written, and
    /// the handler answers 200 all the same; the delivery's transaction
    /// then cannot commit, so its row and the done mark roll back and the
    /// event runs again (inline: 503 to the sender; queued: a retry).
    #[arg(long, default_value_t = 0)]
    pub effect_fail_first: u32,
    /// The demo handler aborts the whole process (std::process::abort) on
    /// the first N attempts of each event, before answering: to watch a
    /// poisonous delivery reach --max-attempts across restarts and become a
    /// dead letter ("attempt N did not return") in queued mode.
    #[arg(long, default_value_t = 0)]
    pub handler_abort_first: u32,

    /// With --handler-abort-first: abort only on this event id's attempts
    /// (the others run normally). Default: every event's.
    #[arg(long)]
    pub handler_abort_id: Option<String>,

    /// Queued mode: the JSON pointer (RFC 6901, e.g. /data/customer_id)
    /// into each verified body whose value is the event's order key. Events
    /// of a scheme with the same key run one at a time in acceptance
    /// order; a failing one holds back the later ones until it succeeds or
    /// becomes a dead letter; different keys run in parallel. Default:
    /// none (unordered). Cost: one more JSON parse per delivery, one index
    /// probe per accept and finish.
    #[arg(long, value_parser = json_pointer)]
    pub order_by: Option<String>,

    /// Queued mode: at most N jobs of one scheme run at once, across every
    /// receiver sharing the store (besides --workers, this process's
    /// total). Default: no cap.
    #[arg(long, value_parser = positive)]
    pub max_running_per_scheme: Option<usize>,

    /// Queued mode: at most N pending jobs per scheme; past it a delivery
    /// is answered 503 {"error":"queue_full"} with Retry-After before its
    /// body is read, and nothing is recorded. Counted by the worker, set
    /// from the store's count about once a second. Default: unbounded.
    #[arg(long, value_parser = positive_u64)]
    pub max_pending: Option<u64>,

    /// How many handler runs `GET /events` keeps (the most recent ones).
    #[arg(long, default_value_t = crate::events::DEFAULT_KEEP, value_parser = positive)]
    pub events_keep: usize,

    /// No log line per handler run (for load tests).
    #[arg(long)]
    pub quiet: bool,

    /// On SIGTERM or Ctrl-C, how long in-flight requests and running jobs
    /// may take to finish, in milliseconds.
    #[arg(long, default_value_t = 30_000)]
    pub shutdown_grace_ms: u64,

    /// Deadline for a sender, in milliseconds: its headers must be in
    /// within it (else the connection is closed), and its body within it
    /// once the headers are (else 408 body_timeout), on every route. An
    /// idle keep-alive connection, and one whose peer takes none of the
    /// answer, are closed after it too.
    #[arg(long, default_value_t = 10_000, value_parser = positive_u64)]
    pub body_timeout_ms: u64,

    /// Connections served at once; further ones wait in the listen backlog
    /// until one ends. Lowered to the open-file limit less a reserve when
    /// that is smaller.
    #[arg(long, default_value_t = crate::serve::DEFAULT_MAX_CONNECTIONS, value_parser = positive)]
    pub max_connections: usize,
}

/// The store the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreChoice {
    /// `memory`.
    Memory,
    /// `sqlite:PATH`.
    Sqlite(String),
    /// `redis://…` or `rediss://…`.
    Redis(String),
    /// `postgres://…` or `postgresql://…`.
    Postgres(String),
}

/// The store when no flag names one: durable, in the working directory.
pub const DEFAULT_STORE: &str = "sqlite:webhooks.db";

impl Options {
    /// `--store`, else `--redis` / `REDIS_URL`, else [`DEFAULT_STORE`].
    pub fn store_choice(&self) -> Result<StoreChoice, String> {
        let text = match (&self.store, &self.redis) {
            (Some(store), _) => store.as_str(),
            (None, Some(url)) if !url.trim().is_empty() => url.as_str(),
            _ => DEFAULT_STORE,
        };
        parse_store(text)
    }
}

fn parse_store(text: &str) -> Result<StoreChoice, String> {
    if text == "memory" {
        return Ok(StoreChoice::Memory);
    }
    if let Some(path) = text.strip_prefix("sqlite:") {
        let path = path.strip_prefix("//").unwrap_or(path);
        if path.is_empty() {
            return Err("--store sqlite: needs a path, such as sqlite:webhooks.db".into());
        }
        return Ok(StoreChoice::Sqlite(path.to_owned()));
    }
    if text.starts_with("redis://") || text.starts_with("rediss://") {
        return Ok(StoreChoice::Redis(text.to_owned()));
    }
    if text.starts_with("postgres://") || text.starts_with("postgresql://") {
        return Ok(StoreChoice::Postgres(text.to_owned()));
    }
    Err(format!(
        "--store {text:?} is not sqlite:PATH, memory, redis://HOST:PORT/ or \
         postgres://USER@HOST:PORT/DB"
    ))
}

fn json_pointer(text: &str) -> Result<String, String> {
    if text.starts_with('/') {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "{text:?} is not a JSON pointer: it starts with /, such as /data/customer_id"
        ))
    }
}

fn positive(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) | Err(_) => Err(format!("{text:?} is not a positive whole number")),
        Ok(n) => Ok(n),
    }
}

fn positive_u64(text: &str) -> Result<u64, String> {
    positive(text).map(|n| n as u64)
}

fn positive_u32(text: &str) -> Result<u32, String> {
    positive(text).and_then(|n| u32::try_from(n).map_err(|_| format!("{text:?} is too large")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_urls() {
        assert_eq!(parse_store("memory"), Ok(StoreChoice::Memory));
        assert_eq!(
            parse_store("sqlite:/tmp/a.db"),
            Ok(StoreChoice::Sqlite("/tmp/a.db".into()))
        );
        assert_eq!(
            parse_store("sqlite://rel.db"),
            Ok(StoreChoice::Sqlite("rel.db".into()))
        );
        assert!(parse_store("sqlite:").is_err());
        assert!(parse_store("mysql://x").is_err());
        assert_eq!(
            parse_store("redis://127.0.0.1:6379/"),
            Ok(StoreChoice::Redis("redis://127.0.0.1:6379/".into()))
        );
        assert_eq!(
            parse_store("postgres://app@db:5432/app"),
            Ok(StoreChoice::Postgres("postgres://app@db:5432/app".into()))
        );
    }
}
