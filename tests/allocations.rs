//! Allocations per request through the layer, counted by a counting global
//! allocator (`stats_alloc`; this crate's code stays `unsafe`-free).
//! Allocation counts are deterministic, so a regression fails here; timings
//! live in the benches (`benches/allocs.rs` reports the same counts, and
//! bytes, at several sizes).
//!
//! One `#[test]` only: the allocator's counters are process-wide, so a
//! second test running on another thread would be counted too.

use std::alloc::System;
use std::convert::Infallible;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tower::{Layer as _, ServiceExt as _};
use tower_webhook::numero::{Numero, NumeroEvent};
use tower_webhook::{MemoryStore, Verified, WebhookLayer};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const SECRET: &str = "whsec_abcdefghijklmnopqrstuvwxyz123456789";

/// Allocations one new Numero delivery may cost through the layer, inline,
/// memory store: the request extensions' map, its table, the one `Verified`
/// entry (event and id together), and the transaction `data` (boxed, so the
/// ~1 KB of typed fields is not copied at each move). The event's fields
/// share the body, the key is a digest, the memory store allocates nothing
/// per claim.
const MAX_PER_REQUEST: usize = 4;

/// A 300-byte Numero transfer with id `evt_<n>`, as hyper hands a body over:
/// a slice of a shared read buffer (`BytesMut` split and frozen).
fn delivery(n: u64) -> Request<Full<Bytes>> {
    let head = format!(
        r#"{{"id":"evt_{n:012}","event":"TRANSFER_NOTIFICATION","created_at":"{now}","data":{{"transaction_id":"txn_{n:012}","amount":5000.00,"currency":"NGN","status":"completed","narration":""#,
        now = recent()
    );
    let tail = r#""}}"#;
    let mut buffer = BytesMut::with_capacity(300);
    buffer.extend_from_slice(head.as_bytes());
    buffer.resize(300 - tail.len(), b'x');
    buffer.extend_from_slice(tail.as_bytes());
    let body = buffer.split().freeze();
    Request::post("/webhooks/numero")
        .header("content-length", body.len())
        .header(
            "x-webhook-signature",
            tower_webhook::numero::sign(SECRET.as_bytes(), &body),
        )
        .body(Full::new(body))
        .unwrap()
}

/// The handler reads the event and its id from the one entry.
async fn inner(request: Request<Full<Bytes>>) -> Result<Response<Full<Bytes>>, Infallible> {
    let verified = request.extensions().get::<Verified<NumeroEvent>>();
    let status = match verified {
        Some(Verified { event, id, .. }) if event.id == id.as_str() => StatusCode::OK,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    Ok(response)
}

#[test]
fn a_new_delivery_costs_at_most_four_allocations() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    // A store at its bound, in its steady state: every claim evicts.
    let store = MemoryStore::with_max_keys(1_000);
    let layer = WebhookLayer::builder(Numero)
        .secret(SECRET)
        .store(store.clone())
        .done_ttl(Duration::from_secs(3600))
        .build()
        .unwrap();
    let service = layer.layer(tower::service_fn(inner));
    let serve = |from: u64, to: u64| {
        let requests: Vec<_> = (from..to).map(delivery).collect();
        let region = Region::new(GLOBAL);
        for request in requests {
            let response = rt.block_on(service.clone().oneshot(request)).unwrap();
            assert_eq!(response.status(), StatusCode::OK);
        }
        region.change()
    };
    serve(0, 10_000); // warm up: the store's map and queue reach their size

    // The median of 21 windows: a window where the store's map happens to
    // grow (amortised, not per request) does not decide the count.
    const WINDOW: usize = 100;
    let mut windows: Vec<_> = (0..21u64)
        .map(|w| serve(10_000 + w * 100, 10_100 + w * 100))
        .collect();
    windows.sort_by_key(|change| change.allocations);
    let median = &windows[windows.len() / 2];
    let per_request = median.allocations as f64 / WINDOW as f64;
    println!(
        "{per_request} allocations, {} bytes per request",
        median.bytes_allocated as f64 / WINDOW as f64
    );
    assert!(
        median.allocations <= MAX_PER_REQUEST * WINDOW,
        "{per_request} allocations per request, at most {MAX_PER_REQUEST} expected"
    );
    assert_eq!(store.len(), 1_000);
}

/// A recent signed time for sample bodies (inside the layer's replay
/// window), fixed once per process so that a body built twice is the same.
fn recent() -> &'static str {
    static NOW: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NOW.get_or_init(|| tower_webhook::sign::rfc3339(std::time::SystemTime::now()))
}
