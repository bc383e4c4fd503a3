//! `take`: leasing due jobs, within the running-jobs caps per scheme and
//! per tenant. Counts are read in the same transaction as the leases, and
//! every process's writes to the file are serialized, so the caps hold
//! across processes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rusqlite::params;

use super::{HELD, Result, Tx, after, parse_key};
use crate::store::queue::{DEFAULT_DEAD_LETTER_TTL, Delivery, Job, TakeRequest, Taken};
use crate::store::sqlite::SqliteLease;

/// A stored key's tenant, in SQL: the text between the namespace's `/` and
/// the key's first `:` (which ends the namespace), or NULL without one.
const TENANT: &str = "CASE WHEN instr(key, '/') BETWEEN 1 AND instr(key, ':') \
    THEN substr(key, instr(key, '/') + 1, instr(key, ':') - instr(key, '/') - 1) END";

/// A key's tenant, as [`TENANT`] reads it.
fn tenant_of(key: &str) -> Option<&str> {
    key.split_once(':')?
        .0
        .split_once('/')
        .map(|(_, tenant)| tenant)
}

/// The tenants at their cap, as `,a,b,` (tenant ids hold no `,`), for
/// `instr(?, ',' || tenant || ',') = 0` to exclude them.
fn listed(at_cap: &[&str]) -> String {
    let mut list = String::from(",");
    for tenant in at_cap {
        list.push_str(tenant);
        list.push(',');
    }
    list
}

impl Tx<'_> {
    /// A scheme's jobs running on a live lease, in every process.
    fn running(&self, scheme: &str) -> Result<i64> {
        self.conn
            .prepare_cached(
                "SELECT count(*) FROM webhook_keys
                 WHERE scheme = ?1 AND due_ms > ?2 AND state = 'running'",
            )?
            .query_row(params![scheme, self.now], |row| row.get(0))
    }

    /// Each tenant's jobs running on a live lease, over every scheme.
    fn running_by_tenant(&self) -> Result<HashMap<String, usize>> {
        let mut select = self.conn.prepare_cached(&format!(
            "SELECT {TENANT}, count(*) FROM webhook_keys
             WHERE state = 'running' AND due_ms > ?1 GROUP BY 1"
        ))?;
        let rows = select.query_map([self.now], |row| {
            Ok((row.get::<_, Option<String>>(0)?, row.get::<_, i64>(1)?))
        })?;
        let mut running = HashMap::new();
        for row in rows {
            if let (Some(tenant), count) = row? {
                running.insert(tenant, usize::try_from(count).unwrap_or(usize::MAX));
            }
        }
        Ok(running)
    }

    pub(in crate::store::sqlite) fn take(
        &mut self,
        request: &TakeRequest,
    ) -> Result<Taken<SqliteLease>> {
        let limit = i64::try_from(request.max).unwrap_or(i64::MAX);
        let mut running_by_tenant = match request.max_running_per_tenant {
            Some(_) => self.running_by_tenant()?,
            None => HashMap::new(),
        };
        let tenant_cap = request.max_running_per_tenant.unwrap_or(usize::MAX);
        let at_cap: Vec<&str> = running_by_tenant
            .iter()
            .filter(|&(_, running)| *running >= tenant_cap)
            .map(|(tenant, _)| tenant.as_str())
            .collect();
        let excluded = listed(&at_cap);
        let mut due: Vec<(i64, String)> = Vec::new();
        let mut capped: Vec<&str> = Vec::new();
        for scheme in request.schemes.iter() {
            let mut room = limit;
            if let Some(cap) = request.max_running_per_scheme {
                let cap = i64::try_from(cap).unwrap_or(i64::MAX);
                room = room.min(cap.saturating_sub(self.running(scheme)?));
                if room <= 0 {
                    capped.push(scheme);
                    continue;
                }
            }
            let mut select = self.conn.prepare_cached(&format!(
                "SELECT due_ms, key FROM webhook_keys
                 WHERE scheme = ?1 AND due_ms <= ?2
                     AND ({TENANT} IS NULL OR instr(?4, ',' || {TENANT} || ',') = 0)
                 ORDER BY due_ms LIMIT ?3"
            ))?;
            let rows = select.query_map(params![&**scheme, self.now, room, &excluded], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })?;
            for row in rows {
                due.push(row?);
            }
        }
        due.sort_unstable();
        due.truncate(request.max);
        let mut jobs = Vec::with_capacity(due.len());
        for (_, key) in due {
            if request.max_running_per_tenant.is_some()
                && let Some(tenant) = tenant_of(&key)
            {
                let running = running_by_tenant.entry(tenant.to_owned()).or_default();
                if *running >= tenant_cap {
                    // Filled by this batch: the caller takes again.
                    continue;
                }
                *running += 1;
            }
            if let Some(job) = self.lease_job(key, request.lease)? {
                jobs.push(job);
            }
        }
        let next_due = self.next_due(request, &capped, &excluded)?;
        Ok(Taken {
            jobs,
            next_due: next_due.map(|ms| self.local(Some(ms))),
        })
    }

    /// The earliest due time or lease end of the requested schemes. A
    /// scheme at its cap, and a pending job of a tenant at its cap, frees a
    /// place when a job ends (which wakes this worker, if it ran here) or a
    /// lease runs out: only lease ends count for them.
    fn next_due(
        &self,
        request: &TakeRequest,
        capped: &[&str],
        excluded: &str,
    ) -> Result<Option<i64>> {
        let mut next_due: Option<i64> = None;
        for scheme in request.schemes.iter() {
            let first: Option<i64> = if capped.contains(&&**scheme) {
                self.conn
                    .prepare_cached(
                        "SELECT min(due_ms) FROM webhook_keys
                         WHERE scheme = ?1 AND due_ms < ?2 AND state = 'running'",
                    )?
                    .query_row(params![&**scheme, HELD], |row| row.get(0))?
            } else {
                self.conn
                    .prepare_cached(&format!(
                        "SELECT min(due_ms) FROM webhook_keys
                         WHERE scheme = ?1 AND due_ms < ?2 AND (state = 'running'
                             OR {TENANT} IS NULL OR instr(?3, ',' || {TENANT} || ',') = 0)"
                    ))?
                    .query_row(params![&**scheme, HELD, excluded], |row| row.get(0))?
            };
            next_due = match (next_due, first) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        Ok(next_due)
    }

    /// Leases the due job under `key` to the caller. A row whose delivery
    /// no longer decodes becomes a dead letter instead, so that it cannot
    /// stall the queue.
    fn lease_job(&mut self, key: String, lease: Duration) -> Result<Option<Job<SqliteLease>>> {
        let job_key = parse_key(&key, 0)?;
        type Row = (
            String,
            String,
            Vec<u8>,
            Vec<u8>,
            u32,
            Option<i64>,
            String,
            Option<String>,
        );
        let (scheme, event_id, head, body, attempts, accepted_ms, state, order_key): Row = self
            .conn
            .prepare_cached(
                "SELECT scheme, event_id, head, body, attempts, accepted_ms, state, order_key
                 FROM webhook_keys WHERE key = ?1",
            )?
            .query_row([&key], |row| {
                let head: Option<Vec<u8>> = row.get(2)?;
                let body: Option<Vec<u8>> = row.get(3)?;
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    head.unwrap_or_default(),
                    body.unwrap_or_default(),
                    row.get(4)?,
                    row.get(5)?,
                    row.get(6)?,
                    row.get(7)?,
                ))
            })?;
        let decoded = Delivery::decode(scheme, event_id, &head, Bytes::from(body));
        let delivery = match decoded {
            Ok(mut delivery) => {
                delivery.order_key = order_key;
                delivery
            }
            Err(error) => {
                self.conn
                    .prepare_cached(
                        "UPDATE webhook_keys
                         SET state = 'dead', due_ms = NULL, expires_ms = ?2, last_error = ?3,
                             failed_ms = ?4
                         WHERE key = ?1",
                    )?
                    .execute(params![
                        key,
                        after(self.now, DEFAULT_DEAD_LETTER_TTL),
                        error.to_string(),
                        self.now,
                    ])?;
                return Ok(None);
            }
        };
        let generation = self.generation();
        let attempt = attempts.saturating_add(1);
        self.conn
            .prepare_cached(
                "UPDATE webhook_keys
                 SET state = 'running', generation = ?2, attempts = ?3, due_ms = ?4
                 WHERE key = ?1",
            )?
            .execute(params![&key, generation, attempt, after(self.now, lease)])?;
        let key: Arc<str> = Arc::from(key);
        Ok(Some(Job {
            key: job_key,
            delivery,
            attempt,
            accepted_at: self.local(accepted_ms),
            interrupted: state == "running",
            lease: SqliteLease { key, generation },
        }))
    }
}
