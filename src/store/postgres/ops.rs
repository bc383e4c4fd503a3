//! The store calls that are one statement each, and the settling of a
//! lease's transaction.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Postgres, Row, Transaction};

use super::sql::{Sql, millis};
use super::transaction::{PostgresLease, Settle};
use crate::store::queue::{
    DEFAULT_DEAD_LETTER_TTL, DeadLetter, Delivery, Job, QueueCounts, TakeRequest, Taken,
};
use crate::store::{JobKey, StoreError};

/// A `StoreError` for a failed statement.
pub(super) fn failed(what: &str, error: sqlx::Error) -> StoreError {
    let message = format!("Postgres could not {what}: {error}");
    match &error {
        sqlx::Error::PoolTimedOut => StoreError::timed_out(message),
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => StoreError::corrupt(message),
        _ => StoreError::unavailable(message),
    }
    .with_source(error)
}

/// The key in column `index`; text that is not a key is a decode error,
/// so [`failed`] reports it as corrupt.
pub(super) fn job_key(row: &PgRow, index: usize) -> Result<JobKey, sqlx::Error> {
    let text: &str = row.try_get(index)?;
    text.parse()
        .map_err(|error| sqlx::Error::Decode(Box::new(error)))
}

/// Runs `update` (`$1` key, `$2` generation, `$3` milliseconds, `$4` text)
/// on the lease's row; whether it changed it.
pub(super) async fn on_lease(
    pool: &PgPool,
    update: &str,
    lease: &PostgresLease,
    ms: i64,
    text: Option<&str>,
    what: &str,
) -> Result<bool, StoreError> {
    let mut query = sqlx::query(update)
        .bind(lease.key())
        .bind(lease.generation())
        .bind(ms);
    if let Some(text) = text {
        query = query.bind(text);
    }
    let done = query.execute(pool).await.map_err(|e| failed(what, e))?;
    Ok(done.rows_affected() == 1)
}

/// Writes the done mark (`update`: `$1` key, `$2` generation, `$3` the TTL
/// in ms), in the handler's transaction if it wrote in one. `Ok(false)`
/// when the lease no longer holds its key (nothing changed).
///
/// # Errors
///
/// [`StoreError::rolled_back`] when the handler's transaction could not
/// commit with the mark (its statement failed, the lease was lost, the
/// handler kept it, or the commit failed): neither its writes nor the mark
/// are recorded, as far as this process can tell.
pub(super) async fn mark_done(
    pool: &PgPool,
    update: &str,
    release: Option<&str>,
    lease: &PostgresLease,
    ttl: Duration,
) -> Result<bool, StoreError> {
    match lease.settle() {
        Settle::Untaken => on_lease(pool, update, lease, millis(ttl), None, "mark done").await,
        Settle::Commit(tx) => {
            let committed = commit_with_mark(tx, update, lease, ttl).await;
            if committed.is_err()
                && let Some(release) = release
            {
                // Inline: free the key for the sender's retry at once (a
                // commit that did land left it done, which this spares).
                let _ = on_lease(pool, release, lease, 0, None, "release a claim").await;
            }
            committed.map(|()| true)
        }
        Settle::Unusable => {
            if let Some(release) = release {
                let _ = on_lease(pool, release, lease, 0, None, "release a claim").await;
            }
            Err(StoreError::rolled_back(
                "the handler still held the delivery's transaction when it answered, \
                 so its writes were rolled back",
            ))
        }
    }
}

async fn commit_with_mark(
    mut tx: Transaction<'static, Postgres>,
    update: &str,
    lease: &PostgresLease,
    ttl: Duration,
) -> Result<(), StoreError> {
    let marked = sqlx::query(update)
        .bind(lease.key())
        .bind(lease.generation())
        .bind(millis(ttl))
        .execute(&mut *tx)
        .await;
    match marked {
        Ok(done) if done.rows_affected() == 1 => tx.commit().await.map_err(|error| {
            StoreError::rolled_back(format!(
                "the delivery's transaction did not commit: {error}"
            ))
            .with_source(error)
        }),
        Ok(_) => Err(StoreError::rolled_back(
            "the claim was lost while the handler ran, so its transaction was rolled back",
        )),
        Err(error) => Err(StoreError::rolled_back(format!(
            "the delivery's transaction failed, so it was rolled back: {error}"
        ))
        .with_source(error)),
    }
}

/// Rolls back the handler's transaction, if it took one.
pub(super) async fn roll_back(lease: &PostgresLease) {
    if let Settle::Commit(tx) = lease.settle() {
        let _ = tx.rollback().await;
    }
}

/// Leases due jobs; a row whose delivery no longer decodes becomes a dead
/// letter instead, so that it cannot stall the queue.
pub(super) async fn take(
    pool: &PgPool,
    sql: &Sql,
    request: &TakeRequest,
) -> Result<Taken<PostgresLease>, StoreError> {
    let schemes: Vec<&str> = request.schemes.iter().map(|s| &**s).collect();
    let rows = if request.is_capped() {
        take_capped(pool, sql, &schemes, request).await?
    } else {
        take_rows(pool, sql, &schemes, request.max, request.lease).await?
    };
    let mut jobs = Vec::with_capacity(rows.len());
    for row in rows {
        let (job, undecodable) = job_of(&row).map_err(|e| failed("read a job", e))?;
        match undecodable {
            None => jobs.push(job),
            Some(error) => {
                let retain = millis(DEFAULT_DEAD_LETTER_TTL);
                let _ = on_lease(pool, &sql.dead, &job.lease, retain, Some(&error), "bury").await;
            }
        }
    }
    let next_due = if request.is_capped() {
        sqlx::query(&sql.next_due_capped)
            .bind(&schemes)
            .bind(cap(request.max_running_per_scheme))
            .bind(cap(request.max_running_per_tenant))
    } else {
        sqlx::query(&sql.next_due).bind(&schemes)
    };
    let next_due_in: Option<i64> = next_due
        .fetch_one(pool)
        .await
        .and_then(|row| row.try_get(0))
        .map_err(|e| failed("read when jobs are due", e))?;
    let now = SystemTime::now();
    let next_due = next_due_in.map(|ms| match u64::try_from(ms) {
        Ok(ms) => now + Duration::from_millis(ms),
        Err(_) => now,
    });
    Ok(Taken { jobs, next_due })
}

/// A cap as the SQL takes it.
fn cap(cap: Option<usize>) -> Option<i64> {
    cap.map(|cap| i64::try_from(cap).unwrap_or(i64::MAX))
}

/// Takes within the caps, in one transaction under an advisory lock: capped
/// takes of every process run one at a time, so each counts the running
/// jobs the one before it leased (two at the same instant would otherwise
/// each fill the last place).
async fn take_capped(
    pool: &PgPool,
    sql: &Sql,
    schemes: &[&str],
    request: &TakeRequest,
) -> Result<Vec<PgRow>, StoreError> {
    let mut tx = pool.begin().await.map_err(|e| failed("begin a take", e))?;
    sqlx::query(&sql.take_lock)
        .execute(&mut *tx)
        .await
        .map_err(|e| failed("lock capped takes", e))?;
    let rows = sqlx::query(&sql.take_capped)
        .bind(schemes)
        .bind(i64::try_from(request.max).unwrap_or(i64::MAX))
        .bind(millis(request.lease))
        .bind(cap(request.max_running_per_scheme))
        .bind(cap(request.max_running_per_tenant))
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| failed("take jobs", e))?;
    tx.commit().await.map_err(|e| failed("commit a take", e))?;
    Ok(rows)
}

async fn take_rows(
    pool: &PgPool,
    sql: &Sql,
    schemes: &[&str],
    max: usize,
    lease: Duration,
) -> Result<Vec<PgRow>, StoreError> {
    sqlx::query(&sql.take)
        .bind(schemes)
        .bind(i64::try_from(max).unwrap_or(i64::MAX))
        .bind(millis(lease))
        .fetch_all(pool)
        .await
        .map_err(|e| failed("take jobs", e))
}

/// The job a taken row holds, and why its delivery did not decode if it
/// did not (the job then carries an empty delivery).
fn job_of(row: &PgRow) -> Result<(Job<PostgresLease>, Option<String>), sqlx::Error> {
    let job_key = job_key(row, 0)?;
    let generation: i64 = row.try_get(1)?;
    let attempts: i32 = row.try_get(2)?;
    let scheme: Option<String> = row.try_get(3)?;
    let event_id: Option<String> = row.try_get(4)?;
    let head: Option<Vec<u8>> = row.try_get(5)?;
    let body: Option<Vec<u8>> = row.try_get(6)?;
    let accepted_ms: Option<i64> = row.try_get(7)?;
    let interrupted: bool = row.try_get(8)?;
    let order_key: Option<String> = row.try_get(9)?;
    let (scheme, event_id) = (scheme.unwrap_or_default(), event_id.unwrap_or_default());
    let decoded = Delivery::decode(
        scheme.clone(),
        event_id.clone(),
        &head.unwrap_or_default(),
        Bytes::from(body.unwrap_or_default()),
    );
    let (mut delivery, undecodable) = match decoded {
        Ok(delivery) => (delivery, None),
        Err(error) => (
            Delivery::decode(scheme, event_id, b"POST /\n", Bytes::new())
                .expect("a fixed, valid head"),
            Some(error.to_string()),
        ),
    };
    delivery.order_key = order_key;
    let accepted_ms = accepted_ms
        .and_then(|ms| u64::try_from(ms).ok())
        .unwrap_or(0);
    let job = Job {
        lease: PostgresLease::new(job_key.as_str().to_owned(), generation),
        key: job_key,
        delivery,
        attempt: u32::try_from(attempts).unwrap_or(0),
        accepted_at: SystemTime::UNIX_EPOCH + Duration::from_millis(accepted_ms),
        interrupted,
    };
    Ok((job, undecodable))
}

pub(super) async fn counts_by_scheme(
    pool: &PgPool,
    sql: &Sql,
) -> Result<Vec<(String, QueueCounts)>, StoreError> {
    let rows = sqlx::query(&sql.counts_by_scheme)
        .fetch_all(pool)
        .await
        .map_err(|e| failed("count jobs", e))?;
    let count = |row: &PgRow, i: usize| -> Result<u64, sqlx::Error> {
        Ok(u64::try_from(row.try_get::<i64, _>(i)?).unwrap_or(0))
    };
    rows.iter()
        .map(|row| {
            Ok((
                row.try_get(0)?,
                QueueCounts {
                    pending: count(row, 1)?,
                    running: count(row, 2)?,
                    dead: count(row, 3)?,
                },
            ))
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(|e| failed("read job counts", e))
}

pub(super) async fn dead_letters(
    pool: &PgPool,
    sql: &Sql,
    limit: usize,
) -> Result<Vec<DeadLetter>, StoreError> {
    let rows = sqlx::query(&sql.dead_letters)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(pool)
        .await
        .map_err(|e| failed("list dead letters", e))?;
    let ms = |row: &PgRow, i: usize| -> Result<u64, sqlx::Error> {
        Ok(u64::try_from(row.try_get::<i64, _>(i)?).unwrap_or(0))
    };
    rows.iter()
        .map(|row| {
            Ok(DeadLetter {
                key: job_key(row, 0)?,
                scheme: row.try_get(1)?,
                id: row.try_get(2)?,
                attempts: u32::try_from(row.try_get::<i32, _>(3)?).unwrap_or(0),
                last_error: row.try_get(4)?,
                accepted_at_ms: ms(row, 5)?,
                failed_at_ms: ms(row, 6)?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(|e| failed("read dead letters", e))
}

/// Deletes rows that ran out, a batch at a time, every `interval`, until
/// the store is gone.
pub(super) async fn sweep(pool: PgPool, sql: std::sync::Weak<Sql>, interval: Duration) {
    const BATCH: i64 = 1000;
    loop {
        tokio::time::sleep(interval).await;
        let Some(sql) = sql.upgrade() else { return };
        loop {
            match sqlx::query(&sql.sweep).bind(BATCH).execute(&pool).await {
                Ok(done) if done.rows_affected() == u64::try_from(BATCH).unwrap_or(0) => {}
                Ok(_) => break,
                Err(error) => {
                    tracing::warn!(%error, "sweeping expired keys failed; trying again later");
                    break;
                }
            }
        }
    }
}
