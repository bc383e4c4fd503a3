//! The console's JSON API: counts, listings, one dead letter in full, and
//! the writes (replay, replay of a scheme, discard).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Value, json};

use super::RecentRuns;
use crate::queue::{JobState, QueueInspect, Worker};
use crate::store::{JobKey, StoreError};

/// Listed when a request names no `limit`.
const DEFAULT_LIMIT: usize = 100;
/// The most one listing holds.
const MAX_LIMIT: usize = 1000;

/// What every handler shares.
pub(super) struct Shared<Q: QueueInspect> {
    pub(super) worker: Worker<Q>,
    pub(super) runs: Option<RecentRuns>,
}

type St<Q> = State<Arc<Shared<Q>>>;

/// `{"error":"<code>"}` with `status`, never cached.
pub(super) fn error(status: StatusCode, code: &str) -> Response {
    no_store((status, Json(json!({ "error": code }))).into_response())
}

fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn ok(value: impl serde::Serialize) -> Response {
    no_store(Json(value).into_response())
}

/// `503 {"error":"store_unavailable"}`; the error itself goes to the
/// `tracing` log (feature `tracing`), never to the page.
fn unavailable(call: &str, error: &StoreError) -> Response {
    #[cfg(feature = "tracing")]
    tracing::warn!(call, %error, "console: queue call failed");
    #[cfg(not(feature = "tracing"))]
    let _ = (call, error);
    error_unavailable()
}

fn error_unavailable() -> Response {
    error(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable")
}

pub(super) async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "not_found")
}

/// `GET /api/counts`.
pub(super) async fn counts<Q: QueueInspect>(State(shared): St<Q>) -> Response {
    let queue = shared.worker.queue();
    let (total, by_scheme) = match (queue.counts().await, queue.counts_by_scheme().await) {
        (Ok(total), Ok(by_scheme)) => (total, by_scheme),
        (Err(error), _) | (_, Err(error)) => return unavailable("counts", &error),
    };
    let schemes: Vec<Value> = by_scheme
        .into_iter()
        .map(|(scheme, c)| {
            json!({ "scheme": scheme, "pending": c.pending, "running": c.running, "dead": c.dead })
        })
        .collect();
    ok(json!({
        "pending": total.pending,
        "running": total.running,
        "dead": total.dead,
        "schemes": schemes,
    }))
}

#[derive(Deserialize)]
pub(super) struct Listing {
    state: Option<JobState>,
    limit: Option<usize>,
}

impl Listing {
    fn limit(&self) -> usize {
        self.limit.unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT)
    }
}

/// `GET /api/jobs?state=…&limit=…` (pending by default).
pub(super) async fn jobs<Q: QueueInspect>(
    State(shared): St<Q>,
    Query(listing): Query<Listing>,
) -> Response {
    let state = listing.state.unwrap_or(JobState::Pending);
    match shared.worker.queue().jobs(state, listing.limit()).await {
        Ok(jobs) => ok(jobs),
        Err(error) => unavailable("jobs", &error),
    }
}

/// `GET /api/dead-letters?limit=…`.
pub(super) async fn dead_letters<Q: QueueInspect>(
    State(shared): St<Q>,
    Query(listing): Query<Listing>,
) -> Response {
    match shared
        .worker
        .queue()
        .jobs(JobState::Dead, listing.limit())
        .await
    {
        Ok(jobs) => ok(jobs),
        Err(error) => unavailable("dead letters", &error),
    }
}

#[derive(Deserialize)]
pub(super) struct KeyQuery {
    key: String,
}

/// `404 {"error":"no_dead_letter"}`: what a key that names none answers,
/// text that is not a key included (no dead letter can be under it).
fn no_dead_letter() -> Response {
    error(StatusCode::NOT_FOUND, "no_dead_letter")
}

/// Recorded headers whose values are credentials, not evidence.
fn is_secret_header(name: &str) -> bool {
    matches!(
        name,
        "authorization" | "proxy-authorization" | "cookie" | "set-cookie"
    ) || ["token", "secret", "password", "api-key", "apikey"]
        .iter()
        .any(|word| name.contains(word))
}

/// `GET /api/dead-letter?key=…`.
pub(super) async fn dead_letter<Q: QueueInspect>(
    State(shared): St<Q>,
    Query(KeyQuery { key }): Query<KeyQuery>,
) -> Response {
    let Ok(key) = key.parse::<JobKey>() else {
        return no_dead_letter();
    };
    let detail = match shared.worker.queue().dead_letter(&key).await {
        Ok(Some(detail)) => detail,
        Ok(None) => return no_dead_letter(),
        Err(error) => return unavailable("dead letter", &error),
    };
    let delivery = &detail.delivery;
    let headers: Vec<(String, String)> = delivery
        .headers
        .iter()
        .map(|(name, value)| {
            let shown = if is_secret_header(name.as_str()) {
                "[redacted]".to_owned()
            } else {
                String::from_utf8_lossy(value.as_bytes()).into_owned()
            };
            (name.as_str().to_owned(), shown)
        })
        .collect();
    let (body, body_base64) = match std::str::from_utf8(&delivery.body) {
        Ok(text) => (Some(text), None),
        Err(_) => (
            None,
            Some(base64::engine::general_purpose::STANDARD.encode(&delivery.body)),
        ),
    };
    ok(json!({
        "summary": detail.summary,
        "method": delivery.method.as_str(),
        "uri": delivery.uri.to_string(),
        "headers": headers,
        "body": body,
        "body_base64": body_base64,
        "body_bytes": delivery.body.len(),
    }))
}

#[derive(Deserialize)]
pub(super) struct KeyBody {
    key: String,
}

/// `POST /api/replay` `{"key"}`.
pub(super) async fn replay<Q: QueueInspect>(
    State(shared): St<Q>,
    body: Result<Json<KeyBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Ok(Json(KeyBody { key })) = body else {
        return error(StatusCode::BAD_REQUEST, "invalid_json");
    };
    let Ok(key) = key.parse::<JobKey>() else {
        return no_dead_letter();
    };
    match shared.worker.replay(&key).await {
        Ok(true) => {
            no_store((StatusCode::ACCEPTED, Json(json!({ "status": "queued" }))).into_response())
        }
        Ok(false) => no_dead_letter(),
        Err(error) => unavailable("replay", &error),
    }
}

#[derive(Deserialize)]
pub(super) struct SchemeBody {
    scheme: String,
    max: Option<usize>,
}

/// `POST /api/replay-scheme` `{"scheme","max"}`.
pub(super) async fn replay_scheme<Q: QueueInspect>(
    State(shared): St<Q>,
    body: Result<Json<SchemeBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Ok(Json(SchemeBody { scheme, max })) = body else {
        return error(StatusCode::BAD_REQUEST, "invalid_json");
    };
    let max = max.unwrap_or(super::MAX_REPLAYED_PER_CALL);
    match shared.worker.replay_scheme(&scheme, max).await {
        Ok(replayed) => ok(json!({ "replayed": replayed })),
        Err(error) => unavailable("replay scheme", &error),
    }
}

/// `POST /api/discard` `{"key"}`.
pub(super) async fn discard<Q: QueueInspect>(
    State(shared): St<Q>,
    body: Result<Json<KeyBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Ok(Json(KeyBody { key })) = body else {
        return error(StatusCode::BAD_REQUEST, "invalid_json");
    };
    let Ok(key) = key.parse::<JobKey>() else {
        return no_dead_letter();
    };
    match shared.worker.queue().discard(&key).await {
        Ok(true) => ok(json!({ "status": "discarded" })),
        Ok(false) => no_dead_letter(),
        Err(error) => unavailable("discard", &error),
    }
}

/// `GET /api/runs`.
pub(super) async fn runs<Q: QueueInspect>(State(shared): St<Q>) -> Response {
    let runs = shared.runs.as_ref().map(|runs| runs());
    ok(json!({ "runs": runs }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn credential_headers_are_redacted_and_evidence_is_not() {
        for name in [
            "authorization",
            "cookie",
            "x-api-key",
            "x-auth-token",
            "x-client-secret",
        ] {
            assert!(super::is_secret_header(name), "{name}");
        }
        for name in ["x-webhook-signature", "content-type", "x-hub-signature-256"] {
            assert!(!super::is_secret_header(name), "{name}");
        }
    }
}
