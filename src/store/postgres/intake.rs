//! Accepts, batched: every `accept` waiting when a writer is free goes into
//! one `INSERT … SELECT FROM unnest(…)` statement, one commit and one WAL
//! flush, and each caller hears of its own row once that commit returned.
//! Under load many deliveries share one flush (group commit), as the SQLite
//! store's writer does; `synchronous_commit` keeps its meaning: nothing is
//! answered `Accepted` before its commit.

use std::collections::HashSet;
use std::sync::Arc;

use sqlx::{PgPool, Row};
use tokio::sync::{Mutex, mpsc, oneshot};

use super::sql::Sql;
use crate::store::StoreError;
use crate::store::queue::{Accept, Delivery};

/// Most accepts in one statement: bounds the first caller's wait.
const MAX_BATCH: usize = 512;

/// How many batches may be on their way to Postgres at once. One: while
/// its commit flushes, the next batch gathers every accept that arrives,
/// so batches grow with the load. Measured in `benches/intake.rs`, four
/// writers split 64 senders into small batches, each paying a flush, and
/// accepted about a fifth as many per second.
pub(super) const WRITERS: usize = 1;

/// One accept waiting for its batch.
pub(super) struct Pending {
    key: String,
    scheme: String,
    event_id: String,
    head: Vec<u8>,
    body: Vec<u8>,
    order_key: Option<String>,
    reply: oneshot::Sender<Result<Accept, StoreError>>,
}

impl Pending {
    pub(super) fn new(
        key: String,
        delivery: &Delivery,
        reply: oneshot::Sender<Result<Accept, StoreError>>,
    ) -> Self {
        Self {
            key,
            head: delivery.encode_head(),
            scheme: delivery.scheme.clone(),
            event_id: delivery.event_id.clone(),
            body: delivery.body.to_vec(),
            order_key: delivery.order_key.clone(),
            reply,
        }
    }
}

/// Runs one writer: takes what is waiting, writes it as one batch,
/// answers; ends once every sender is gone.
pub(super) async fn write_batches(
    pool: PgPool,
    sql: Arc<Sql>,
    queue: Arc<Mutex<mpsc::UnboundedReceiver<Pending>>>,
) {
    loop {
        let mut batch = Vec::new();
        {
            let mut queue = queue.lock().await;
            match queue.recv().await {
                Some(first) => batch.push(first),
                None => return,
            }
            while batch.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
        }
        write(&pool, &sql, batch).await;
    }
}

async fn write(pool: &PgPool, sql: &Sql, batch: Vec<Pending>) {
    // A key twice in one batch: the first copy goes in, the others are
    // duplicates (one statement may not take a row over twice).
    let mut seen = HashSet::with_capacity(batch.len());
    let (mut fresh, mut copies) = (Vec::with_capacity(batch.len()), Vec::new());
    for pending in batch {
        if seen.insert(pending.key.clone()) {
            fresh.push(pending);
        } else {
            copies.push(pending);
        }
    }
    let keys: Vec<&str> = fresh.iter().map(|p| p.key.as_str()).collect();
    let schemes: Vec<&str> = fresh.iter().map(|p| p.scheme.as_str()).collect();
    let ids: Vec<&str> = fresh.iter().map(|p| p.event_id.as_str()).collect();
    let heads: Vec<&[u8]> = fresh.iter().map(|p| p.head.as_slice()).collect();
    let bodies: Vec<&[u8]> = fresh.iter().map(|p| p.body.as_slice()).collect();
    let order_keys: Vec<Option<&str>> = fresh.iter().map(|p| p.order_key.as_deref()).collect();
    let written = sqlx::query(&sql.accept)
        .bind(&keys)
        .bind(&schemes)
        .bind(&ids)
        .bind(&heads)
        .bind(&bodies)
        .bind(&sql.channel)
        .bind(&order_keys)
        .fetch_all(pool)
        .await;
    match written {
        Ok(rows) => {
            let accepted: HashSet<String> = rows
                .iter()
                .filter_map(|row| row.try_get::<String, _>(0).ok())
                .collect();
            for pending in fresh {
                let answer = if accepted.contains(&pending.key) {
                    Accept::Accepted
                } else {
                    Accept::Duplicate
                };
                let _ = pending.reply.send(Ok(answer));
            }
        }
        Err(error) => {
            let message = format!("Postgres could not record a delivery: {error}");
            for pending in fresh {
                let _ = pending
                    .reply
                    .send(Err(StoreError::unavailable(message.clone())));
            }
        }
    }
    for copy in copies {
        let _ = copy.reply.send(Ok(Accept::Duplicate));
    }
}
