//! [`Durability`]: what a [`RedisStore`](super::RedisStore) waits for
//! before it reports a write that a sender or a duplicate check relies on.

use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::{Cmd, FromRedisValue, RedisError, ScriptInvocation, Value};

use super::{bounded, failed};
use crate::store::StoreError;

/// What a [`RedisStore`](super::RedisStore) waits for after the writes
/// that are acknowledged to someone: an accept (the sender's `202`), a
/// replay, a done mark (inline complete, a job's finish), and a queued
/// duplicate (the sender's `200`, which tells it the event is safe). These
/// are the writes whose loss loses an event or runs one twice; claims,
/// takes, renewals and releases never wait (losing one only frees a key or
/// makes a job due again, which at-least-once allows).
///
/// The wait is sent in one pipeline with the write, on the store's
/// connection, so it covers every write made so far on that connection. It
/// is
/// bounded by the store's timeout ([`RedisStoreBuilder::timeout`]): Redis
/// is asked to wait up to about 90% of it, and a wait that comes back
/// short (fewer fsyncs or replicas than asked for), errors or times out
/// makes the call a [`StoreError`], so the layer answers `503` and the
/// sender retries. The write itself has happened by then: the retry is a
/// duplicate, answered `200` only once its own wait succeeds.
///
/// A duplicate's wait covers this connection's writes, not those another
/// replica made: a copy that reaches replica B while replica A's accept is
/// still waiting for its fsync can be answered before that fsync (B's
/// wait covers B's own writes). The sender of the first copy still hears
/// `503` from A if A's wait fails, and retries.
///
/// [`RedisStoreBuilder::timeout`]: super::RedisStoreBuilder::timeout
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Durability {
    /// Acknowledge as soon as Redis answered the write (the default). What
    /// survives a crash is then what the server's persistence settings
    /// keep: see the table in the [`queue`](super::queue) module docs
    /// (with `appendfsync everysec`, about the last second of writes on a
    /// power loss; without AOF, everything since the last snapshot).
    #[default]
    Reply,
    /// `WAITAOF 1 0 <timeout>` after each such write: acknowledged once the
    /// server's append-only file holds it on disk (`fsync`ed). Needs Redis
    /// 7.2 or later with `appendonly yes`; on an older server, or one
    /// without AOF, every such call fails (fail closed). With `appendfsync
    /// everysec` a write waits up to a second for the next fsync: give the
    /// store a timeout above that (2 s, say).
    AofFsync,
    /// `WAIT <n> <timeout>` after each such write: acknowledged once `n`
    /// replicas have it (in their memory, not necessarily on their disk).
    /// Survives the loss of the primary when a failover promotes one of
    /// those replicas. Any Redis version.
    Replicas(u32),
}

impl Durability {
    /// Runs `invocation`, then waits for what `self` asks for, when `wait`
    /// holds for the script's answer. The wait is sent in one pipeline with
    /// the script, so both run on one connection: a reconnect between the
    /// two would leave the wait on a connection that wrote nothing, and it
    /// would answer at once.
    pub(super) async fn invoke<T: FromRedisValue>(
        self,
        conn: &mut ConnectionManager,
        invocation: &ScriptInvocation<'_>,
        timeout: Duration,
        operation: &str,
        wait: impl FnOnce(&T) -> bool,
    ) -> Result<T, StoreError> {
        let Some(wait_cmd) = self.command(timeout) else {
            return bounded(timeout, operation, invocation.invoke_async(conn)).await;
        };
        let mut pipe = redis::pipe();
        pipe.ignore_errors()
            .invoke_script(invocation)
            .add_command(wait_cmd);
        let (answer, waited) = bounded(timeout, operation, async {
            let (mut answer, mut waited): (Value, Value) = pipe.query_async(conn).await?;
            if matches!(&answer, Value::ServerError(e) if e.code() == "NOSCRIPT") {
                invocation.load_async(conn).await?;
                (answer, waited) = pipe.query_async(conn).await?;
            }
            Ok::<_, RedisError>((answer, waited))
        })
        .await?;
        let answer: T =
            redis::from_redis_value(answer.extract_error().map_err(|e| failed(operation, e))?)
                .map_err(|e| failed(operation, e.into()))?;
        if wait(&answer) {
            self.check(waited, timeout)?;
        }
        Ok(answer)
    }

    /// The wait command, with Redis's own bound on it; `None` for
    /// [`Durability::Reply`].
    fn command(self, timeout: Duration) -> Option<Cmd> {
        let server_ms = server_wait_ms(timeout);
        let mut cmd = match self {
            Self::Reply => return None,
            Self::AofFsync => {
                let mut cmd = redis::cmd("WAITAOF");
                cmd.arg(1).arg(0);
                cmd
            }
            Self::Replicas(wanted) => {
                let mut cmd = redis::cmd("WAIT");
                cmd.arg(wanted);
                cmd
            }
        };
        cmd.arg(server_ms);
        Some(cmd)
    }

    /// Whether the wait's answer shows enough fsyncs or replicas.
    fn check(self, waited: Value, timeout: Duration) -> Result<(), StoreError> {
        let server_ms = server_wait_ms(timeout);
        let waited = waited.extract_error().map_err(|e| {
            let hint = match self {
                Self::AofFsync => " (WAITAOF needs Redis 7.2 or later, with appendonly yes)",
                Self::Reply | Self::Replicas(_) => "",
            };
            StoreError::unavailable(format!(
                "redis could not confirm the write is durable ({self:?}): {e}{hint}"
            ))
            .with_source(e)
        })?;
        let short = |what: String| {
            StoreError::timed_out(format!(
                "redis did not confirm the write within {server_ms} ms ({what}): \
                 it is not acknowledged"
            ))
        };
        match self {
            Self::Reply => Ok(()),
            Self::AofFsync => {
                let (local, _replicas): (i64, i64) = redis::from_redis_value(waited)
                    .map_err(|e| short(format!("WAITAOF answered {e}")))?;
                if local < 1 {
                    return Err(short("its append-only file was not fsynced".into()));
                }
                Ok(())
            }
            Self::Replicas(wanted) => {
                let reached: i64 = redis::from_redis_value(waited)
                    .map_err(|e| short(format!("WAIT answered {e}")))?;
                if reached < i64::from(wanted) {
                    return Err(short(format!("{reached} of {wanted} replicas had it")));
                }
                Ok(())
            }
        }
    }
}

/// How long Redis is asked to wait: about 90% of the call's bound, so that
/// its answer arrives before the bound (at least 1 ms: 0 would mean
/// forever).
fn server_wait_ms(timeout: Duration) -> u64 {
    let ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
    (ms - ms / 10).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_is_asked_to_wait_less_than_the_bound_and_never_forever() {
        assert_eq!(server_wait_ms(Duration::from_secs(1)), 900);
        assert_eq!(server_wait_ms(Duration::ZERO), 1);
        assert_eq!(server_wait_ms(Duration::from_millis(5)), 5);
    }
}
