//! The SQL of every store call, written once per store with its schema's
//! name in it (so each text is one prepared statement per connection).
//!
//! Every time is Postgres's own clock (`now()`, the statement's start in
//! autocommit), so replicas whose clocks disagree agree on every lease.
//! Durations travel as milliseconds (`$n * interval '1 millisecond'`).

use crate::store::StoreError;

/// A duration in milliseconds, as the SQL takes it.
pub(super) fn millis(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX / 2)
}

/// The statements of one store, for one schema.
#[derive(Debug)]
pub(super) struct Sql {
    name: String,
    schema: String,
    pub(super) claim: String,
    pub(super) state_of: String,
    pub(super) renew_claim: String,
    pub(super) complete: String,
    pub(super) release: String,
    pub(super) accept: String,
    pub(super) take: String,
    pub(super) take_capped: String,
    pub(super) take_lock: String,
    pub(super) next_due: String,
    pub(super) next_due_capped: String,
    pub(super) renew: String,
    pub(super) retry: String,
    pub(super) dead: String,
    pub(super) counts_by_scheme: String,
    pub(super) dead_letters: String,
    pub(super) replay: String,
    pub(super) sweep: String,
    pub(super) channel: String,
}

/// Whether `name` is a plain lower-case identifier: a letter or `_`, then
/// letters, digits or `_`, at most 50 bytes (the schema's name is written
/// into SQL text, so nothing else gets in).
fn is_plain_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 50
}

impl Sql {
    pub(super) fn new(schema_name: &str) -> Result<Self, StoreError> {
        if !is_plain_identifier(schema_name) {
            return Err(StoreError::corrupt(format!(
                "the Postgres schema name {schema_name:?} is not a plain identifier \
                 (a-z, 0-9 and _, not starting with a digit, at most 50 bytes)"
            )));
        }
        let s = format!("\"{schema_name}\"");
        // What a claim or an accept leaves behind when it takes a row over.
        let clear = "due_at = NULL, scheme = NULL, event_id = NULL, head = NULL, body = NULL, \
                     attempts = 0, accepted_at = NULL, failed_at = NULL, last_error = NULL, \
                     order_key = NULL, seq = NULL";
        let lease = "key = $1 AND generation = $2";
        // A key's tenant: between its namespace's `/` and its first `:`.
        let tenant = "nullif(split_part(split_part(k.key, ':', 1), '/', 2), '')";
        // No job before it in its order line is pending or running.
        let line_free = format!(
            "(k.order_key IS NULL OR NOT EXISTS (
                 SELECT 1 FROM {s}.keys AS o
                 WHERE o.scheme = k.scheme AND o.order_key = k.order_key
                     AND o.state IN ('pending', 'running') AND o.seq < k.seq))"
        );
        // A job that is due to be taken: pending whose time came, or
        // running whose lease ran out, and first of its order line.
        let due =
            format!("k.due_at <= now() AND k.state IN ('pending', 'running') AND {line_free}");
        // Leases the rows of `due` ($3: the lease in milliseconds).
        let lease_due = format!(
            "UPDATE {s}.keys AS k SET state = 'running', generation = nextval('{s}.generations'),
                 attempts = k.attempts + 1, due_at = now() + $3 * interval '1 millisecond'
             FROM due WHERE k.key = due.key
             RETURNING k.key, k.generation, k.attempts, k.scheme, k.event_id, k.head, k.body,
                 (extract(epoch FROM k.accepted_at) * 1000)::bigint, due.was = 'running',
                 k.order_key"
        );
        // Each scheme's and tenant's places left under the caps in the
        // parameters `scheme_cap` and `tenant_cap` (NULL: no cap), counting
        // live leases of every process.
        let rooms = |scheme_cap: &str, tenant_cap: &str| {
            format!(
                "live AS (
                     SELECT k.scheme, {tenant} AS tenant FROM {s}.keys AS k
                     WHERE k.state = 'running' AND k.due_at > now()
                 ),
                 scheme_room AS (
                     SELECT scheme, {scheme_cap}::bigint - count(*) AS room FROM live GROUP BY scheme
                 ),
                 tenant_room AS (
                     SELECT tenant, {tenant_cap}::bigint - count(*) AS room FROM live
                     WHERE tenant IS NOT NULL GROUP BY tenant
                 )"
            )
        };
        // The job's scheme and tenant have room (or no cap).
        let has_room = format!(
            "NOT EXISTS (SELECT 1 FROM scheme_room AS sr WHERE sr.scheme = k.scheme AND sr.room <= 0)
             AND NOT EXISTS (SELECT 1 FROM tenant_room AS tr WHERE tr.tenant = {tenant} AND tr.room <= 0)"
        );
        Ok(Self {
            claim: format!(
                "INSERT INTO {s}.keys AS k (key, state, generation, expires_at)
                 VALUES ($1, 'claimed', nextval('{s}.generations'), now() + $2 * interval '1 millisecond')
                 ON CONFLICT (key) DO UPDATE SET state = 'claimed', generation = EXCLUDED.generation,
                     expires_at = EXCLUDED.expires_at, {clear}
                 WHERE k.expires_at <= now()
                 RETURNING generation"
            ),
            state_of: format!(
                "SELECT state FROM {s}.keys WHERE key = $1 AND (expires_at IS NULL OR expires_at > now())"
            ),
            renew_claim: format!(
                "UPDATE {s}.keys SET expires_at = now() + $3 * interval '1 millisecond'
                 WHERE {lease} AND state = 'claimed'"
            ),
            // A claim's generation or a job's: one sequence writes both.
            complete: format!(
                "UPDATE {s}.keys SET state = 'done', expires_at = now() + $3 * interval '1 millisecond',
                     due_at = NULL, head = NULL, body = NULL
                 WHERE {lease} AND state IN ('claimed', 'running')"
            ),
            release: format!("DELETE FROM {s}.keys WHERE {lease} AND state = 'claimed'"),
            accept: format!(
                "WITH accepted AS (
                     INSERT INTO {s}.keys AS k
                         (key, state, generation, due_at, scheme, event_id, head, body, attempts,
                          accepted_at, order_key, seq)
                     SELECT t.key, 'pending', nextval('{s}.generations'), now(), t.scheme, t.event_id,
                            t.head, t.body, 0, now(), t.order_key, nextval('{s}.generations')
                     FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::bytea[],
                                 $7::text[])
                         WITH ORDINALITY AS t(key, scheme, event_id, head, body, order_key, n)
                     ORDER BY t.n
                     ON CONFLICT (key) DO UPDATE SET state = 'pending', generation = EXCLUDED.generation,
                         expires_at = NULL, due_at = EXCLUDED.due_at, scheme = EXCLUDED.scheme,
                         event_id = EXCLUDED.event_id, head = EXCLUDED.head, body = EXCLUDED.body,
                         attempts = 0, accepted_at = EXCLUDED.accepted_at, failed_at = NULL,
                         last_error = NULL, order_key = EXCLUDED.order_key, seq = EXCLUDED.seq
                     WHERE k.expires_at <= now()
                     RETURNING k.key
                 )
                 SELECT accepted.key FROM accepted
                 CROSS JOIN (SELECT pg_notify($6, '')) AS woken"
            ),
            take: format!(
                "WITH due AS (
                     SELECT k.key, k.state AS was FROM {s}.keys AS k
                     WHERE {due} AND k.scheme = ANY($1)
                     ORDER BY k.due_at LIMIT $2
                     FOR UPDATE OF k SKIP LOCKED
                 )
                 {lease_due}"
            ),
            // $4, $5: the caps per scheme and per tenant (NULL: none). Jobs
            // of a scheme or tenant at its cap are not candidates; of the
            // candidates, each scheme and tenant gets what its room allows.
            take_capped: format!(
                "WITH {},
                 candidates AS (
                     SELECT k.key, k.state AS was, k.due_at, k.scheme, {tenant} AS tenant
                     FROM {s}.keys AS k
                     WHERE {due} AND k.scheme = ANY($1) AND {has_room}
                     ORDER BY k.due_at LIMIT $2
                     FOR UPDATE OF k SKIP LOCKED
                 ),
                 ranked AS (
                     SELECT c.key, c.was, c.scheme, c.tenant,
                         row_number() OVER (PARTITION BY c.scheme ORDER BY c.due_at, c.key)
                             AS nth_of_scheme,
                         row_number() OVER (PARTITION BY c.tenant ORDER BY c.due_at, c.key)
                             AS nth_of_tenant
                     FROM candidates AS c
                 ),
                 due AS (
                     SELECT r.key, r.was FROM ranked AS r
                     WHERE ($4::bigint IS NULL OR r.nth_of_scheme <= coalesce(
                             (SELECT room FROM scheme_room AS sr WHERE sr.scheme = r.scheme), $4))
                         AND ($5::bigint IS NULL OR r.tenant IS NULL OR r.nth_of_tenant <= coalesce(
                             (SELECT room FROM tenant_room AS tr WHERE tr.tenant = r.tenant), $5))
                 )
                 {lease_due}",
                rooms("$4", "$5")
            ),
            take_lock: format!("SELECT pg_advisory_xact_lock(hashtext('tower_webhook take {schema_name}'))"),
            // A held job of an order line, and a pending job of a scheme
            // or tenant at its cap, is due only once a running job ends:
            // only lease ends count for them.
            next_due: format!(
                "SELECT (extract(epoch FROM min(k.due_at) - now()) * 1000)::bigint FROM {s}.keys AS k
                 WHERE k.due_at IS NOT NULL AND k.state IN ('pending', 'running')
                     AND k.scheme = ANY($1) AND {line_free}"
            ),
            next_due_capped: format!(
                "WITH {}
                 SELECT (extract(epoch FROM min(k.due_at) - now()) * 1000)::bigint FROM {s}.keys AS k
                 WHERE k.due_at IS NOT NULL AND k.state IN ('pending', 'running')
                     AND k.scheme = ANY($1) AND {line_free}
                     AND ((k.state = 'running' AND k.due_at > now()) OR {has_room})",
                rooms("$2", "$3")
            ),
            renew: format!(
                "UPDATE {s}.keys SET due_at = now() + $3 * interval '1 millisecond'
                 WHERE {lease} AND state = 'running'"
            ),
            retry: format!(
                "UPDATE {s}.keys SET state = 'pending',
                     due_at = now() + $3 * interval '1 millisecond', last_error = $4,
                     failed_at = now()
                 WHERE {lease} AND state = 'running'"
            ),
            dead: format!(
                "UPDATE {s}.keys SET state = 'dead', due_at = NULL, failed_at = now(),
                     expires_at = now() + $3 * interval '1 millisecond', last_error = $4
                 WHERE {lease} AND state = 'running'"
            ),
            counts_by_scheme: format!(
                "SELECT coalesce(scheme, ''),
                     count(*) FILTER (WHERE state = 'pending'),
                     count(*) FILTER (WHERE state = 'running'),
                     count(*) FILTER (WHERE state = 'dead')
                 FROM {s}.keys
                 WHERE state IN ('pending', 'running', 'dead')
                     AND (expires_at IS NULL OR expires_at > now())
                 GROUP BY 1 ORDER BY 1"
            ),
            dead_letters: format!(
                "SELECT key, coalesce(scheme, ''), coalesce(event_id, ''), attempts,
                     coalesce(last_error, ''),
                     coalesce((extract(epoch FROM accepted_at) * 1000)::bigint, 0),
                     coalesce((extract(epoch FROM failed_at) * 1000)::bigint, 0)
                 FROM {s}.keys WHERE state = 'dead' AND expires_at > now()
                 ORDER BY failed_at LIMIT $1"
            ),
            replay: format!(
                "WITH replayed AS (
                     UPDATE {s}.keys SET state = 'pending', due_at = now(), expires_at = NULL,
                         failed_at = NULL, seq = nextval('{s}.generations')
                     WHERE key = $1 AND state = 'dead' AND expires_at > now()
                     RETURNING key
                 )
                 SELECT replayed.key FROM replayed CROSS JOIN (SELECT pg_notify($2, '')) AS woken"
            ),
            sweep: format!(
                "DELETE FROM {s}.keys WHERE key IN (
                     SELECT key FROM {s}.keys WHERE expires_at <= now()
                     ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED)"
            ),
            channel: format!("tower_webhook_{schema_name}"),
            name: schema_name.to_owned(),
            schema: s,
        })
    }

    /// The schema's name, quoted for SQL text.
    pub(super) fn schema(&self) -> &str {
        &self.schema
    }

    /// The schema's name as given.
    pub(super) fn schema_name(&self) -> &str {
        &self.name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_schema_names_are_written_into_sql() {
        assert!(Sql::new("tower_webhook").is_ok());
        assert!(Sql::new("_a1").is_ok());
        for name in ["", "1a", "a-b", "a\"; DROP TABLE x; --", "Upper", "a b"] {
            assert!(Sql::new(name).is_err(), "{name:?}");
        }
    }
}
