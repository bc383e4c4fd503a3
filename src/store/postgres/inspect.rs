//! [`QueueInspect`] on Postgres: jobs by state, one dead letter in full,
//! discarding one. Replaying a scheme uses the contract's default, one
//! `replay` per dead letter.

use std::sync::Arc;

use bytes::Bytes;
use sqlx::Row;
use sqlx::postgres::PgRow;

use super::PostgresStore;
use super::ops::{failed, job_key};
use crate::store::JobKey;
use crate::store::admin::{DeadLetterDetail, JobState, JobSummary, QueueInspect};
use crate::store::queue::{Delivery, QueueFuture};

/// The columns a summary is read from, in [`summary_of`]'s order.
const SUMMARY: &str = "key, state, coalesce(scheme, ''), coalesce(event_id, ''), attempts,
     coalesce(last_error, ''),
     coalesce((extract(epoch FROM accepted_at) * 1000)::bigint, 0),
     coalesce((extract(epoch FROM failed_at) * 1000)::bigint, 0)";

/// What is live in `state`, and the order it leaves it in.
fn filter_and_order(state: JobState) -> (&'static str, &'static str) {
    match state {
        JobState::Pending => ("state = 'pending'", "due_at, key"),
        JobState::Running => ("state = 'running'", "due_at, key"),
        JobState::Dead => ("state = 'dead' AND expires_at > now()", "failed_at, key"),
    }
}

fn summary_of(row: &PgRow) -> Result<JobSummary, sqlx::Error> {
    let state = match row.try_get::<&str, _>(1)? {
        "pending" => JobState::Pending,
        "running" => JobState::Running,
        _ => JobState::Dead,
    };
    let ms = |i: usize| -> Result<u64, sqlx::Error> {
        Ok(u64::try_from(row.try_get::<i64, _>(i)?).unwrap_or(0))
    };
    Ok(JobSummary::new(
        job_key(row, 0)?,
        state,
        row.try_get(2)?,
        row.try_get(3)?,
        u32::try_from(row.try_get::<i32, _>(4)?).unwrap_or(0),
        row.try_get(5)?,
        ms(6)?,
        ms(7)?,
    ))
}

impl QueueInspect for PostgresStore {
    fn jobs(&self, state: JobState, limit: usize) -> QueueFuture<Vec<JobSummary>> {
        let shared = Arc::clone(&self.shared);
        Box::pin(async move {
            let (filter, order) = filter_and_order(state);
            let query = format!(
                "SELECT {SUMMARY} FROM {s}.keys WHERE {filter} ORDER BY {order} LIMIT $1",
                s = shared.sql.schema()
            );
            let rows = sqlx::query(&query)
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_all(&shared.pool)
                .await
                .map_err(|e| failed("list jobs", e))?;
            rows.iter()
                .map(summary_of)
                .collect::<Result<_, _>>()
                .map_err(|e| failed("read jobs", e))
        })
    }

    fn dead_letter(&self, key: &JobKey) -> QueueFuture<Option<DeadLetterDetail>> {
        let (shared, key) = (Arc::clone(&self.shared), key.clone());
        Box::pin(async move {
            let (filter, _) = filter_and_order(JobState::Dead);
            let query = format!(
                "SELECT {SUMMARY}, head, body FROM {s}.keys WHERE key = $1 AND {filter}",
                s = shared.sql.schema()
            );
            let row = sqlx::query(&query)
                .bind(key.as_str())
                .fetch_optional(&shared.pool)
                .await
                .map_err(|e| failed("read a dead letter", e))?;
            let Some(row) = row else {
                return Ok(None);
            };
            let read = |row: &PgRow| -> Result<_, sqlx::Error> {
                let head: Option<Vec<u8>> = row.try_get(8)?;
                let body: Option<Vec<u8>> = row.try_get(9)?;
                Ok((
                    summary_of(row)?,
                    head.unwrap_or_default(),
                    body.unwrap_or_default(),
                ))
            };
            let (summary, head, body) = read(&row).map_err(|e| failed("read a dead letter", e))?;
            let delivery = Delivery::decode(
                summary.scheme.clone(),
                summary.id.clone(),
                &head,
                Bytes::from(body),
            )?;
            Ok(Some(DeadLetterDetail { summary, delivery }))
        })
    }

    fn discard(&self, key: &JobKey) -> QueueFuture<bool> {
        let (shared, key) = (Arc::clone(&self.shared), key.clone());
        Box::pin(async move {
            let (filter, _) = filter_and_order(JobState::Dead);
            let query = format!(
                "DELETE FROM {s}.keys WHERE key = $1 AND {filter}",
                s = shared.sql.schema()
            );
            let deleted = sqlx::query(&query)
                .bind(key.as_str())
                .execute(&shared.pool)
                .await
                .map_err(|e| failed("discard a dead letter", e))?;
            Ok(deleted.rows_affected() == 1)
        })
    }
}
