//! Waking idle workers on every replica: a blocking `XREAD` on the
//! prefix's wake stream, in one background task per store, on a connection
//! of its own.
//!
//! Every accept, replay and retry-due-now appends an entry to
//! `<prefix>#q:wake` (capped at about 100 entries). The listener task
//! blocks in `XREAD BLOCK … STREAMS <stream> <last id seen>` and, whenever
//! entries arrive, bumps a generation counter (a `watch` channel).
//! [`JobQueue::wait_for_work`](crate::queue::JobQueue::wait_for_work)
//! returns as soon as the generation differs from the one the previous wait
//! ended on, or after its `max_wait`.
//!
//! Why a stream read and not the alternatives:
//!
//! * **`BLPOP` on a list** hands each entry to *one* waiter, which may be a
//!   worker with no free permit, or one that does not run that scheme: the
//!   wake-up is used up and the job waits for an idle poll. A busy worker
//!   would even drain the list, since its loop waits again at once.
//!   `XREAD` does not consume: every replica sees every entry.
//! * **Pub/sub and keyspace notifications** are fire and forget: a message
//!   published while a replica is between two waits, or reconnecting, is
//!   lost. Keyspace notifications also need `notify-keyspace-events`, a
//!   server-wide setting that managed Redis often does not allow. The
//!   stream remembers: the listener reads on from the last id it saw, so an
//!   entry written between two reads, or during a reconnect, still wakes.
//! * **A blocking call on the store's shared connection** would hold up
//!   every other call multiplexed on it; the listener has its own.
//!
//! The listener starts on the first wait, reconnects with a backoff (100 ms
//! up to 1 s) while Redis is away, and bumps the generation after each
//! (re)connect, since entries may have been missed. It ends once the store
//! and every pending wait are dropped. Nothing here is needed for
//! correctness: a missed wake-up only delays a job until the worker's idle
//! poll.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, Value};
use tokio::sync::watch;

use super::StoreError;

/// How long one `XREAD` blocks on the server before it is sent again.
const BLOCK: Duration = Duration::from_secs(5);

/// At most this many entries per read (more than the stream keeps).
const READ_COUNT: u32 = 1000;

/// Longest pause between two reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// The wake-up side of one store.
pub(super) struct Wake {
    /// Opens the listener's own connection; `None` for a store built on a
    /// connection the caller made, which then waits by sleeping.
    client: Option<Client>,
    stream: Box<str>,
    timeout: Duration,
    /// The generation the listener publishes; set when it starts.
    generation: OnceLock<watch::Receiver<u64>>,
    /// The generation the last wait ended on.
    seen: AtomicU64,
}

impl Wake {
    pub(super) fn new(client: Option<Client>, stream: String, timeout: Duration) -> Self {
        Self {
            client,
            stream: stream.into_boxed_str(),
            timeout,
            generation: OnceLock::new(),
            seen: AtomicU64::new(0),
        }
    }

    /// Waits until another replica (or this one) wrote a wake entry since
    /// the previous wait ended, or `max_wait` passed.
    pub(super) async fn wait(&self, max_wait: Duration) {
        let Some(mut generation) = self.subscribe() else {
            tokio::time::sleep(max_wait).await;
            return;
        };
        let current = *generation.borrow_and_update();
        if current == self.seen.load(Ordering::Acquire) {
            let changed = async {
                if generation.changed().await.is_err() {
                    // The listener is gone (it cannot be while we hold a
                    // receiver, but never spin if it were).
                    std::future::pending::<()>().await;
                }
            };
            let _ = tokio::time::timeout(max_wait, changed).await;
        }
        self.seen.store(*generation.borrow(), Ordering::Release);
    }

    /// The generation channel, starting the listener on first use; `None`
    /// without a client or outside a tokio runtime.
    fn subscribe(&self) -> Option<watch::Receiver<u64>> {
        if let Some(receiver) = self.generation.get() {
            return Some(receiver.clone());
        }
        let client = self.client.clone()?;
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let receiver = self.generation.get_or_init(|| {
            let (sender, receiver) = watch::channel(0);
            let stream = self.stream.to_string();
            runtime.spawn(listen(client, stream, self.timeout, sender));
            receiver
        });
        Some(receiver.clone())
    }
}

/// Reads the stream until every receiver is gone, reconnecting as needed.
async fn listen(client: Client, stream: String, timeout: Duration, generation: watch::Sender<u64>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let ended = tokio::select! {
            () = generation.closed() => return,
            ended = session(&client, &stream, timeout, &generation, &mut backoff) => ended,
        };
        if let Err(error) = ended {
            tracing::debug!(%error, "the job queue's wake listener lost redis; reconnecting");
        }
        tokio::select! {
            () = generation.closed() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One connection's life: find the stream's end, then block on it.
async fn session(
    client: &Client,
    stream: &str,
    timeout: Duration,
    generation: &watch::Sender<u64>,
    backoff: &mut Duration,
) -> Result<(), StoreError> {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(None);
    let mut conn = super::bounded(
        timeout,
        "connect the wake listener",
        client.get_multiplexed_async_connection_with_config(&config),
    )
    .await?;
    // Everything after the last entry now wakes us; everything before it is
    // covered by the wake-up just below (the worker then takes).
    let last: Value = super::bounded(timeout, "read the wake stream", async {
        redis::cmd("XREVRANGE")
            .arg(stream)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(&mut conn)
            .await
    })
    .await?;
    let mut cursor = last_id(&last).unwrap_or_else(|| "0-0".to_owned());
    *backoff = Duration::from_millis(100);
    generation.send_modify(|g| *g = g.wrapping_add(1));
    loop {
        let reply = read(&mut conn, stream, &cursor, timeout).await?;
        if let Some(id) = entries(&reply).and_then(last_id) {
            cursor = id;
            generation.send_modify(|g| *g = g.wrapping_add(1));
        }
    }
}

/// One blocking read, bounded by the block time plus the call timeout.
async fn read(
    conn: &mut MultiplexedConnection,
    stream: &str,
    cursor: &str,
    timeout: Duration,
) -> Result<Value, StoreError> {
    super::bounded(BLOCK + timeout, "wait on the wake stream", async {
        redis::cmd("XREAD")
            .arg("COUNT")
            .arg(READ_COUNT)
            .arg("BLOCK")
            .arg(u64::try_from(BLOCK.as_millis()).unwrap_or(u64::MAX))
            .arg("STREAMS")
            .arg(stream)
            .arg(cursor)
            .query_async(conn)
            .await
    })
    .await
}

/// The entries of the one stream in an `XREAD` reply: `[[stream, entries]]`
/// (RESP2) or `{stream: entries}` (RESP3); `None` when the read timed out.
fn entries(reply: &Value) -> Option<&Value> {
    match reply {
        Value::Array(streams) => match streams.first()? {
            Value::Array(pair) => pair.get(1),
            _ => None,
        },
        Value::Map(pairs) => pairs.first().map(|(_, entries)| entries),
        _ => None,
    }
}

/// The id of the last entry in `[[id, fields], …]`.
fn last_id(entries: &Value) -> Option<String> {
    let Value::Array(entries) = entries else {
        return None;
    };
    let Value::Array(entry) = entries.last()? else {
        return None;
    };
    match entry.first()? {
        Value::BulkString(id) => String::from_utf8(id.clone()).ok(),
        Value::SimpleString(id) => Some(id.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    fn entry(id: &str) -> Value {
        Value::Array(vec![
            bulk(id),
            Value::Array(vec![bulk("s"), bulk("numero")]),
        ])
    }

    #[test]
    fn reads_the_last_id_in_both_protocols() {
        let list = Value::Array(vec![entry("1-0"), entry("2-5")]);
        let resp2 = Value::Array(vec![Value::Array(vec![bulk("p#q:wake"), list.clone()])]);
        let resp3 = Value::Map(vec![(bulk("p#q:wake"), list.clone())]);
        assert_eq!(entries(&resp2).and_then(last_id).as_deref(), Some("2-5"));
        assert_eq!(entries(&resp3).and_then(last_id).as_deref(), Some("2-5"));
        assert_eq!(entries(&Value::Nil), None, "a timed-out read");
        assert_eq!(last_id(&list).as_deref(), Some("2-5"), "XREVRANGE");
        assert_eq!(last_id(&Value::Array(vec![])), None, "no stream yet");
    }
}
