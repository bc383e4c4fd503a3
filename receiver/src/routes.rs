//! The routes: `POST /webhooks/<scheme>` behind its own layer and the demo
//! handler, and the admin routes (`/events`, `/queue`, `/dead-letters`,
//! `/metrics`).
//!
//! An error body carries a reason code only (`{"error":"store_unavailable"}`);
//! what went wrong, which may name the store's file or server, goes to
//! stderr.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Extension, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use tower::{Layer, ServiceBuilder};
use tower_http::catch_panic::CatchPanicLayer;
use tower_webhook::queue::Attempt;
use tower_webhook::{
    Builtin, DEFAULT_RETRY_AFTER, JobKey, LayerAnswer, VerifiedEvent, WebhookLayer,
};

use crate::admin::Access;
use crate::effect::Effect;
use crate::events::EventLog;
use crate::wiring::{Admin, Wiring};

/// What every handler and admin route shares.
#[derive(Clone)]
pub struct AppState {
    /// Handler runs, for `GET /events`.
    pub log: EventLog,
    /// Queue counts, dead letters, replay.
    pub admin: Arc<dyn Admin>,
    /// The demo handler's behaviour.
    pub demo: Demo,
}

/// How the demo handler behaves (`--handler-delay-ms`, `--handler-fail-first`,
/// `--handler-abort-first`).
#[derive(Clone)]
pub struct Demo {
    /// Wait before answering.
    pub delay: Duration,
    /// Answer 500 to the first N attempts of each event.
    pub fail_first: u32,
    /// Make the effect's statement fail in the first N attempts of each
    /// event (Postgres).
    pub effect_fail_first: u32,
    /// Abort the process on the first N attempts of each event.
    pub abort_first: u32,
    /// Only this event's attempts abort, when set.
    pub abort_id: Option<std::sync::Arc<str>>,
    /// No log line per run.
    pub quiet: bool,
}

/// Layer settings shared by every route.
pub struct LayerSettings {
    /// The body cap.
    pub max_body_bytes: usize,
    /// The lease of an inline claim.
    pub lease: Duration,
    /// The body deadline.
    pub body_timeout: Duration,
    /// Queued mode: the JSON pointer to each event's order key.
    pub order_by: Option<String>,
    /// What the demo handler shares, for the jobs a worker runs.
    pub state: AppState,
}

/// The admin routes, open to whom `access` admits, and `/metrics`; each
/// reads its body within `body_deadline` and up to
/// [`MAX_BODY_BYTES`](crate::admin::MAX_BODY_BYTES).
pub fn admin(access: Access, body_deadline: Duration) -> Router<AppState> {
    let bounded = from_fn_with_state(body_deadline, crate::admin::bound_body);
    // The token is checked before the body is read.
    let guarded = Router::new()
        .route("/events", get(list_events))
        .route("/queue", get(queue_counts))
        .route("/dead-letters", get(dead_letters))
        .route("/dead-letters/replay", post(replay))
        .route_layer(bounded.clone())
        .route_layer(from_fn_with_state(access, crate::admin::require));
    // Counts only, for a scraper that holds no token.
    Router::new()
        .route("/metrics", get(crate::metrics::render))
        .route_layer(bounded)
        .merge(guarded)
}

/// Mounts `POST /webhooks/<scheme name>` behind a layer keyed with
/// `secrets`, finished by `wiring`, in front of the demo handler.
pub fn mount<Sc, W>(
    app: Router<AppState>,
    scheme: Sc,
    secrets: Vec<String>,
    wiring: &W,
    settings: &LayerSettings,
) -> Result<Router<AppState>, String>
where
    Sc: Builtin,
    W: Wiring,
{
    let name = scheme.name();
    let path = format!("/webhooks/{name}");
    let builder = WebhookLayer::builder(scheme)
        .secrets(secrets)
        .max_body_bytes(settings.max_body_bytes)
        .body_timeout(settings.body_timeout)
        .lease(settings.lease);
    let builder = match &settings.order_by {
        Some(pointer) => builder.order_by_pointer(pointer.clone()),
        None => builder,
    };
    let layer = wiring
        .wire(builder)
        .build()
        .map_err(|e| format!("{name} secret: {e}"))?;
    let handler = move |State(state): State<AppState>,
                        attempt: Option<Extension<Attempt>>,
                        effect: Effect,
                        VerifiedEvent(event): VerifiedEvent<Sc::Event>| {
        demo_handler::<Sc>(
            state,
            name,
            attempt.map(|Extension(Attempt(n))| n),
            effect,
            event,
        )
    };
    // A panicking handler becomes a 500 inside the webhook layer, which
    // then releases the claim; queued, the worker runs the same handler
    // behind the same catch.
    let jobs = CatchPanicLayer::new().layer(post(handler).with_state(settings.state.clone()));
    wiring.handle(layer.job_handler(jobs));
    let stack = ServiceBuilder::new()
        .layer(layer)
        .layer(CatchPanicLayer::new());
    Ok(app.route(&path, post(handler).route_layer(stack)))
}

/// Writes its effect in the delivery's transaction (Postgres), waits,
/// records the run, and answers 500 to the first attempts it was told to
/// fail, else 200.
async fn demo_handler<Sc: Builtin>(
    state: AppState,
    scheme: &'static str,
    queued_attempt: Option<u32>,
    mut effect: Effect,
    event: Sc::Event,
) -> Response {
    let demo = &state.demo;
    let started_ms = crate::events::unix_ms();
    let id = Sc::shown_id(&event);
    let attempt = match queued_attempt {
        Some(attempt) => attempt,
        // Inline, each delivery that reaches the handler is an attempt;
        // counted only when the demo fails some on purpose.
        None if demo.fail_first > 0 || demo.abort_first > 0 || demo.effect_fail_first > 0 => {
            state.log.inline_attempt(scheme, &id)
        }
        None => 1,
    };
    let break_effect = attempt <= demo.effect_fail_first;
    if let Err(error) = effect.write(scheme, &id, attempt, break_effect).await
        && !break_effect
    {
        eprintln!("{scheme} {id}: the demo effect failed: {error}");
        let body = json!({ "error": "effect_failed" });
        return (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    }
    let poisoned = demo.abort_id.as_deref().is_none_or(|only| *only == *id);
    if attempt <= demo.abort_first && poisoned {
        eprintln!("{scheme} {id} attempt {attempt}: aborting the process (--handler-abort-first)");
        std::process::abort();
    }
    if !demo.delay.is_zero() {
        tokio::time::sleep(demo.delay).await;
    }
    let failed = attempt <= demo.fail_first;
    let status = if failed {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    };
    // Nothing waited since the start: its clock reading is the end's too.
    let waited = !demo.delay.is_zero() || effect.lent();
    let ended_ms = if waited {
        crate::events::unix_ms()
    } else {
        started_ms
    };
    let seq = state
        .log
        .record(scheme, &id, attempt, status.as_u16(), started_ms, ended_ms);
    if !demo.quiet {
        let mut line = format!(
            "#{seq} {scheme} {id} attempt {attempt} → {}",
            status.as_u16()
        );
        for (field, value) in Sc::shown_fields(&event) {
            line.push_str(&format!(" {field}={value}"));
        }
        println!("{line}");
    }
    let outcome = if failed { "failed" } else { "processed" };
    let body = answer(attempt, &id, seq, outcome);
    let json = HeaderValue::from_static("application/json");
    (status, [(header::CONTENT_TYPE, json)], body).into_response()
}

/// The demo handler's answer, `{"attempt":N,"id":"…","seq":N,"status":"…"}`,
/// written straight into its bytes; the id escaped by `serde_json`.
fn answer(attempt: u32, id: &str, seq: u64, status: &str) -> Vec<u8> {
    use std::io::Write as _;
    let mut body = Vec::with_capacity(64 + id.len());
    // Writes into a Vec cannot fail, nor can a &str's serialization.
    let _ = write!(body, r#"{{"attempt":{attempt},"id":"#);
    let _ = serde_json::to_writer(&mut body, id);
    let _ = write!(body, r#","seq":{seq},"status":"{status}"}}"#);
    body
}

/// `GET /events`: the kept handler runs, oldest first.
async fn list_events(State(state): State<AppState>) -> Response {
    let json = state.log.to_json();
    ([(header::CONTENT_TYPE, "application/json")], json).into_response()
}

/// `GET /queue`: `{"pending":N,"running":N,"dead":N}`.
async fn queue_counts(State(state): State<AppState>) -> Response {
    match state.admin.counts().await {
        Ok(counts) => Json(counts).into_response(),
        Err(error) => unavailable("GET /queue", &error),
    }
}

/// `GET /dead-letters`: the dead letters, oldest failure first.
async fn dead_letters(State(state): State<AppState>) -> Response {
    match state.admin.dead_letters().await {
        Ok(letters) => Json(letters).into_response(),
        Err(error) => unavailable("GET /dead-letters", &error),
    }
}

/// The body of `POST /dead-letters/replay`.
#[derive(Deserialize)]
struct ReplayRequest {
    key: String,
}

/// `POST /dead-letters/replay` `{"key":"…"}`: 202 when queued again, 404
/// when there is no such dead letter (text that is not a key names none),
/// `{"error":"invalid_json"}` (with axum's status for it) when the body is
/// not such an object.
async fn replay(
    State(state): State<AppState>,
    request: Result<Json<ReplayRequest>, JsonRejection>,
) -> Response {
    let request = match request {
        Ok(Json(request)) => request,
        Err(rejection) => {
            let body = Json(json!({ "error": "invalid_json" }));
            return (rejection.status(), body).into_response();
        }
    };
    let no_dead_letter = || {
        let body = Json(json!({ "error": "no_dead_letter" }));
        (StatusCode::NOT_FOUND, body).into_response()
    };
    let Ok(key) = request.key.parse::<JobKey>() else {
        return no_dead_letter();
    };
    match state.admin.replay(key).await {
        Ok(true) => (StatusCode::ACCEPTED, Json(json!({ "status": "queued" }))).into_response(),
        Ok(false) => no_dead_letter(),
        Err(error) => unavailable("POST /dead-letters/replay", &error),
    }
}

/// `503 {"error":"store_unavailable"}` with `Retry-After`, as the webhook
/// layer answers; the error itself goes to stderr.
fn unavailable(route: &str, error: &tower_webhook::StoreError) -> Response {
    eprintln!("{route}: store_unavailable: {error}");
    LayerAnswer::StoreUnavailable {
        retry_after: DEFAULT_RETRY_AFTER,
    }
    .into_response()
    .map(axum::body::Body::new)
}

#[cfg(test)]
mod tests {
    use super::answer;
    use serde_json::{Value, json};

    #[test]
    fn the_answer_is_the_json_object_with_the_id_escaped() {
        for id in ["evt_1", r#"quo"te\back"#, "line\nbreak\u{1}", "ünï"] {
            let body = answer(3, id, 42, "processed");
            let parsed: Value = serde_json::from_slice(&body).expect("the answer is JSON");
            let expected = json!({ "attempt": 3, "id": id, "seq": 42, "status": "processed" });
            assert_eq!(parsed, expected, "{}", String::from_utf8_lossy(&body));
        }
    }
}
