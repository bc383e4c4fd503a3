//! The replay window: a validly signed delivery whose signed time (Numero's
//! `created_at`) is older than the window, by default the done TTL, is
//! refused before anything is recorded; the check is made at intake only.

#[path = "harness/mod.rs"]
mod harness;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::routing::post;
use http::StatusCode;
use tower_webhook::numero::Numero;
use tower_webhook::queue::{MemoryQueue, RetryPolicy, Worker};
use tower_webhook::{EventId, IdempotencyKey, MemoryStore, WebhookLayer, WebhookLayerBuilder};

const HOUR: Duration = Duration::from_secs(3600);

/// A Numero body signed `age` ago (or with no `created_at` at all).
fn body(id: &str, age: Option<Duration>) -> String {
    match age {
        Some(age) => {
            let at = tower_webhook::sign::rfc3339(SystemTime::now() - age);
            format!(
                r#"{{"id":"{id}","event":"TRANSFER_NOTIFICATION","created_at":"{at}","data":{{}}}}"#
            )
        }
        None => format!(r#"{{"id":"{id}","event":"TRANSFER_NOTIFICATION","data":{{}}}}"#),
    }
}

/// The same, in Numero's PascalCase.
fn pascal_body(id: &str, age: Duration) -> String {
    let at = tower_webhook::sign::rfc3339(SystemTime::now() - age);
    format!(r#"{{"Id":"{id}","Event":"TRANSFER_NOTIFICATION","CreatedAt":"{at}","Data":{{}}}}"#)
}

struct Server {
    url: String,
    runs: Arc<AtomicUsize>,
    store: MemoryStore,
}

/// A Numero route whose handler answers 200, behind the layer `configure`
/// finishes.
async fn server(
    configure: impl FnOnce(
        WebhookLayerBuilder<Numero, MemoryStore>,
    ) -> WebhookLayerBuilder<Numero, MemoryStore>,
) -> Server {
    let store = MemoryStore::new();
    let builder = WebhookLayer::builder(Numero)
        .secret(harness::NUMERO_SECRET)
        .store(store.clone());
    let layer = configure(builder).build().unwrap();
    let runs = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&runs);
    let handler = move || {
        counter.fetch_add(1, Ordering::SeqCst);
        async { StatusCode::OK }
    };
    let app = Router::new().route("/numero", post(handler).route_layer(layer));
    let addr = harness::serve(app).await;
    Server {
        url: format!("http://{addr}/numero"),
        runs,
        store,
    }
}

async fn deliver(url: &str, body: &str) -> harness::Reply {
    let signature = harness::numero_signature(body.as_bytes());
    harness::post(url, &[("x-webhook-signature", &signature)], body.to_owned()).await
}

fn state(store: &MemoryStore, id: &str) -> Option<bool> {
    store.status(&IdempotencyKey::new("numero", &EventId::new(id).unwrap()))
}

#[tokio::test]
async fn a_delivery_signed_before_the_done_ttl_is_refused_and_nothing_recorded() {
    let s = server(|b| b).await;
    // The default window is the done TTL: 72 hours.
    let stale = deliver(&s.url, &body("evt_old", Some(73 * HOUR))).await;
    assert_eq!(stale.status, StatusCode::UNAUTHORIZED);
    assert_eq!(stale.error(), "stale_timestamp");
    let stale = deliver(&s.url, &pascal_body("evt_old2", 100 * HOUR)).await;
    assert_eq!(stale.error(), "stale_timestamp", "PascalCase too");
    assert_eq!(s.runs.load(Ordering::SeqCst), 0);
    assert_eq!(state(&s.store, "evt_old"), None, "nothing recorded");

    let fresh = deliver(&s.url, &body("evt_new", Some(71 * HOUR))).await;
    assert_eq!(fresh.status, StatusCode::OK);
    // No signed time: the window cannot apply, the signature still does.
    let unchecked = deliver(&s.url, &body("evt_undated", None)).await;
    assert_eq!(unchecked.status, StatusCode::OK);
    assert_eq!(s.runs.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn the_window_follows_the_done_ttl_and_can_be_set_or_turned_off() {
    let short_ttl = server(|b| b.done_ttl(HOUR)).await;
    let reply = deliver(&short_ttl.url, &body("evt_a", Some(2 * HOUR))).await;
    assert_eq!(reply.error(), "stale_timestamp");

    let set = server(|b| b.replay_window(Duration::from_secs(60))).await;
    let reply = deliver(&set.url, &body("evt_b", Some(Duration::from_secs(120)))).await;
    assert_eq!(reply.error(), "stale_timestamp");
    let reply = deliver(&set.url, &body("evt_c", Some(Duration::from_secs(5)))).await;
    assert_eq!(reply.status, StatusCode::OK);

    let off = server(|b| b.replay_window(None)).await;
    let reply = deliver(&off.url, &body("evt_d", Some(1000 * HOUR))).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(off.runs.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_retries_past_the_window_still_run() {
    // A 2 s window; the first attempt fails and the retry comes after the
    // window has passed: the check was at intake, so the retry runs.
    let retry = RetryPolicy {
        base: Duration::from_millis(2500),
        cap: Duration::from_millis(2500),
        ..RetryPolicy::default()
    };
    let worker = Worker::builder(MemoryQueue::new()).retry(retry).start();
    let layer = WebhookLayer::builder(Numero)
        .secret(harness::NUMERO_SECRET)
        .replay_window(Duration::from_secs(2))
        .queued(&worker)
        .build()
        .unwrap();
    let attempts = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&attempts);
    let handler = move || {
        let first = counter.fetch_add(1, Ordering::SeqCst) == 0;
        async move {
            if first {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::OK
            }
        }
    };
    worker.handle(layer.job_handler(post(handler.clone())));
    let app = Router::new().route("/numero", post(handler).route_layer(layer));
    let url = format!("http://{}/numero", harness::serve(app).await);
    let reply = deliver(&url, &body("evt_q", Some(Duration::from_secs(1)))).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    let deadline = tokio::time::Instant::now() + harness::PATIENCE;
    while attempts.load(Ordering::SeqCst) < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the retry never ran"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let counts = loop {
        let counts = worker.counts().await.unwrap();
        if counts.pending + counts.running == 0 || tokio::time::Instant::now() > deadline {
            break counts;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        counts.dead, 0,
        "the late retry succeeded rather than being refused"
    );
}
