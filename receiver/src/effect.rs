//! The demo handler's effect: on Postgres, one row in `demo_effects`
//! written in the delivery's transaction, so it commits with the event's
//! done mark or not at all; on the other stores, nothing (their handlers
//! keep at-least-once semantics).

use axum::extract::FromRequestParts;
use axum::response::Response;
use http::request::Parts;

/// The effect the demo handler writes, through the delivery's transaction
/// where the store lends one.
pub struct Effect {
    #[cfg(feature = "postgres")]
    tx: Option<tower_webhook::DeliveryTransaction>,
}

impl<S: Send + Sync> FromRequestParts<S> for Effect {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Response> {
        #[cfg(feature = "postgres")]
        {
            use axum::response::IntoResponse;
            use tower_webhook::store::postgres::{TakeTransactionError, TakeTransactionRejection};
            match tower_webhook::DeliveryTransaction::take(&parts.extensions).await {
                Ok(tx) => Ok(Self { tx: Some(tx) }),
                Err(TakeTransactionError::NotLent) => Ok(Self { tx: None }),
                Err(error) => Err(TakeTransactionRejection(error).into_response()),
            }
        }
        #[cfg(not(feature = "postgres"))]
        {
            let _ = parts;
            Ok(Self {})
        }
    }
}

impl Effect {
    /// Whether the store lent a transaction, so [`write`](Self::write)
    /// does work (and takes time).
    pub fn lent(&self) -> bool {
        #[cfg(feature = "postgres")]
        {
            self.tx.is_some()
        }
        #[cfg(not(feature = "postgres"))]
        {
            false
        }
    }

    /// Writes one `demo_effects` row for this attempt, if the store lent a
    /// transaction; with `fail`, then runs a statement that fails, which
    /// aborts the transaction (what a handler's failed write does).
    ///
    /// # Errors
    ///
    /// The failed statement, as text.
    pub async fn write(
        &mut self,
        scheme: &str,
        id: &str,
        attempt: u32,
        fail: bool,
    ) -> Result<(), String> {
        #[cfg(feature = "postgres")]
        if let Some(tx) = self.tx.as_mut() {
            sqlx::query("INSERT INTO demo_effects (scheme, event_id, attempt) VALUES ($1, $2, $3)")
                .bind(scheme)
                .bind(id)
                .bind(i32::try_from(attempt).unwrap_or(i32::MAX))
                .execute(&mut **tx)
                .await
                .map_err(|e| e.to_string())?;
            if fail {
                sqlx::query("SELECT 1 / 0")
                    .execute(&mut **tx)
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
        let _ = (scheme, id, attempt, fail);
        Ok(())
    }
}

/// Opens the Postgres store at `url` and creates `demo_effects` if it is
/// missing. The pool holds a connection for each handler that may run at
/// once (`workers`, and inline requests) and a reserve for claims and
/// renewals; a call waits at most 2 s for one, so an unreachable Postgres
/// is a prompt 503.
#[cfg(feature = "postgres")]
pub async fn open_store(url: &str, workers: usize) -> Result<tower_webhook::PostgresStore, String> {
    use std::time::Duration;
    let shown = crate::secrets::url_for_log(url);
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(
            u32::try_from(workers)
                .unwrap_or(u32::MAX)
                .saturating_add(32),
        )
        .acquire_timeout(Duration::from_secs(2))
        .connect(url)
        .await
        .map_err(|e| format!("--store {shown}: {e}"))?;
    // One implicit transaction, serialised by the lock: receivers starting
    // together would otherwise race on the table's type.
    sqlx::raw_sql(
        "SELECT pg_advisory_xact_lock(hashtextextended('tower-webhook demo_effects', 0));
         CREATE TABLE IF NOT EXISTS demo_effects (
             scheme text, event_id text, attempt int, at timestamptz DEFAULT now())",
    )
    .execute(&pool)
    .await
    .map_err(|e| format!("--store {shown}: cannot create demo_effects: {e}"))?;
    tower_webhook::PostgresStore::open(pool)
        .await
        .map_err(|e| format!("--store {shown}: {e}"))
}
