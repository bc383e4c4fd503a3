//! The schema, as embedded, versioned migrations, and the runner that
//! applies them once however many replicas start at the same moment.
//!
//! Every migration runs inside one transaction that first takes a
//! transaction-scoped advisory lock named after the schema
//! (`pg_advisory_xact_lock`): a second replica starting at the same time
//! waits for the first to commit, then finds the versions applied and does
//! nothing. The lock ends with the transaction, so a replica that dies
//! mid-migration leaves neither a half-applied schema nor a held lock.

use sqlx::PgPool;

use super::sql::Sql;
use crate::store::StoreError;

/// The migrations, in order; `{schema}` stands for the quoted schema name.
/// A released migration is never edited: a change is a new entry.
const MIGRATIONS: &[(i32, &str)] = &[
    (
        1,
        r"
CREATE TABLE {schema}.keys (
    key         text PRIMARY KEY,
    -- claimed, done, pending, running, dead
    state       text NOT NULL,
    -- what every lease checks: a claim or a take writes a new one
    generation  bigint NOT NULL,
    -- claimed: the lease's end; done: the TTL's end; dead: the retention's
    -- end; NULL for a queued job. A row past it counts as absent.
    expires_at  timestamptz,
    -- pending: when due; running: the lease's end. NULL otherwise.
    due_at      timestamptz,
    scheme      text,
    event_id    text,
    head        bytea,
    body        bytea,
    attempts    integer NOT NULL DEFAULT 0,
    accepted_at timestamptz,
    failed_at   timestamptz,
    last_error  text
);
CREATE INDEX keys_due ON {schema}.keys (due_at) WHERE due_at IS NOT NULL;
CREATE INDEX keys_expiry ON {schema}.keys (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX keys_state_scheme ON {schema}.keys (state, scheme) WHERE state IN ('pending', 'running', 'dead');
CREATE SEQUENCE {schema}.generations;
",
    ),
    (
        2,
        r"
-- Order keys: a job is due only while it is the oldest live job of its
-- scheme and key, by seq (acceptance order; a replay joins the end).
ALTER TABLE {schema}.keys ADD COLUMN order_key text, ADD COLUMN seq bigint;
CREATE INDEX keys_order ON {schema}.keys (scheme, order_key, seq)
    WHERE order_key IS NOT NULL AND state IN ('pending', 'running');
",
    ),
];

/// The newest schema version this build knows.
pub(super) const LATEST: i32 = MIGRATIONS[MIGRATIONS.len() - 1].0;

/// Brings the schema up to [`LATEST`]; a no-op when it is there already.
///
/// The whole run is one simple-protocol message, which Postgres executes
/// as one implicit transaction: the advisory lock first, each missing
/// migration in a `DO` block that applies it only if its version is not
/// recorded yet, and the check that the schema is not newer than this
/// build. An error anywhere rolls all of it back.
///
/// # Errors
///
/// [`StoreError`] when Postgres cannot be reached, refuses a statement, or
/// holds a newer schema than this build knows.
pub(super) async fn migrate(pool: &PgPool, sql: &Sql) -> Result<(), StoreError> {
    sqlx::raw_sql(&script(sql))
        .execute(pool)
        .await
        .map(|_| ())
        .map_err(|error| {
            StoreError::unavailable(format!(
                "the Postgres schema {} could not be migrated: {error}",
                sql.schema_name()
            ))
            .with_source(error)
        })
}

/// The migration run for `sql`'s schema, as one script.
fn script(sql: &Sql) -> String {
    let schema = sql.schema();
    // The schema name is a checked identifier: no quote can get in.
    let lock_name = format!("tower-webhook migrations {}", sql.schema_name());
    let mut script = format!(
        "SELECT pg_advisory_xact_lock(hashtextextended('{lock_name}', 0));
         CREATE SCHEMA IF NOT EXISTS {schema};
         CREATE TABLE IF NOT EXISTS {schema}.migrations (
             version integer PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         );
         DO $check$ BEGIN
             IF (SELECT max(version) FROM {schema}.migrations) > {LATEST} THEN
                 RAISE EXCEPTION 'the schema is newer than this build (version {LATEST})';
             END IF;
         END $check$;
"
    );
    for (version, text) in MIGRATIONS {
        let text = text.replace("{schema}", schema);
        script.push_str(&format!(
            "DO $migration$ BEGIN
                 IF NOT EXISTS (SELECT 1 FROM {schema}.migrations WHERE version = {version}) THEN
                     {text}
                     INSERT INTO {schema}.migrations (version) VALUES ({version});
                 END IF;
             END $migration$;
"
        ));
    }
    script
}
