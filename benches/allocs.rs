//! Allocations per request through the layer, and memory per resident key in
//! the memory store, counted by a counting global allocator (`stats_alloc`,
//! so this crate keeps `unsafe_code = "forbid"`).
//!
//! `cargo bench -p tower-webhook-benches --bench allocs`
//!
//! A separate binary from the timing benches, so that the allocator's
//! counters never slow down what criterion measures.

use std::alloc::System;
use std::convert::Infallible;
use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tower::{Layer as _, ServiceExt as _};
use tower_webhook::numero::Numero;
use tower_webhook::store::memory::MemoryStore;
use tower_webhook::{Claim, EventId, IdempotencyKey, IdempotencyStore, WebhookLayer};

mod common;
use common::{Frames, NUMERO_SECRET, signed_delivery};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const REQUESTS: usize = 20_000;

async fn inner<B>(request: Request<B>) -> Result<Response<Full<Bytes>>, Infallible> {
    black_box(request);
    Ok(Response::new(Full::new(Bytes::new())))
}

fn deliveries(first_id: u64, size: usize) -> Vec<(http::request::Parts, Bytes)> {
    // Fewer large bodies: they are all built before the counted region.
    let n = if size > 4096 { REQUESTS / 10 } else { REQUESTS };
    (0..n as u64)
        .map(|i| signed_delivery(first_id + i, size))
        .collect()
}

struct Count {
    allocations: f64,
    bytes: f64,
}

/// Runs every request through `service` and counts what the requests'
/// handling allocated (building the requests is outside the region).
fn count<S, B, R>(rt: &tokio::runtime::Runtime, service: &S, requests: Vec<Request<B>>) -> Count
where
    S: tower::Service<Request<B>, Response = Response<R>> + Clone,
    S::Error: std::fmt::Debug,
{
    let n = requests.len() as f64;
    let region = Region::new(GLOBAL);
    for request in requests {
        let response = rt.block_on(service.clone().oneshot(request)).unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    let change = region.change();
    Count {
        allocations: change.allocations as f64 / n,
        bytes: change.bytes_allocated as f64 / n,
    }
}

fn requests_per_request() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let webhook = WebhookLayer::new(Numero, NUMERO_SECRET).unwrap();
    let layered = webhook.layer(tower::service_fn(inner::<Full<Bytes>>));
    let bare_full = tower::service_fn(inner::<Full<Bytes>>);
    let bare_frames = tower::service_fn(inner::<Frames>);

    println!(
        "allocations per request (numero, fresh id each, {REQUESTS} requests at 300 B, {} at 64 KiB)",
        REQUESTS / 10
    );
    println!("| body | frames | bare: allocs | bare: bytes | layer: allocs | layer: bytes |");
    println!("|---|---|---|---|---|---|");
    let mut id = 1;
    for (name, size, frame) in [("300 B", 300, 64), ("64 KiB", 64 * 1024, 8 * 1024)] {
        let one = |d: Vec<(http::request::Parts, Bytes)>| {
            d.into_iter()
                .map(|(p, b)| Request::from_parts(p, Full::new(b)))
                .collect::<Vec<_>>()
        };
        let many = |d: Vec<(http::request::Parts, Bytes)>| {
            d.into_iter()
                .map(|(p, b)| Request::from_parts(p, Frames::new(b, frame)))
                .collect::<Vec<_>>()
        };
        let bare = count(&rt, &bare_full, one(deliveries(id, size)));
        id += REQUESTS as u64;
        let layer = count(&rt, &layered, one(deliveries(id, size)));
        id += REQUESTS as u64;
        println!(
            "| {name} | one | {:.2} | {:.0} | {:.2} | {:.0} |",
            bare.allocations, bare.bytes, layer.allocations, layer.bytes
        );
        let bare = count(&rt, &bare_frames, many(deliveries(id, size)));
        id += REQUESTS as u64;
        let layer = count(&rt, &layered, many(deliveries(id, size)));
        id += REQUESTS as u64;
        println!(
            "| {name} | {} | {:.2} | {:.0} | {:.2} | {:.0} |",
            size.div_ceil(frame),
            bare.allocations,
            bare.bytes,
            layer.allocations,
            layer.bytes
        );
    }
}

fn memory_per_key() {
    const KEYS: usize = 1_000_000;
    let keys: Vec<IdempotencyKey> = (0..KEYS)
        .map(|i| IdempotencyKey::new("numero", &EventId::new(&format!("evt_{i:012}")).unwrap()))
        .collect();
    let key_len = keys[0].id().as_str().len() + "numero:".len();
    let region = Region::new(GLOBAL);
    let store = MemoryStore::with_max_keys(KEYS);
    for key in &keys {
        let Ok(Claim::New(lease)) = store.claim(key, Duration::from_secs(300)).into_inner() else {
            panic!("fresh key")
        };
        store
            .complete(lease, Duration::from_secs(3600))
            .into_inner()
            .unwrap();
    }
    let change = region.change();
    let live = change.bytes_allocated as f64 - change.bytes_deallocated as f64;
    let per_key = live / KEYS as f64;
    println!();
    println!(
        "memory store, {KEYS} resident completed keys of {key_len} bytes of text (held as 16-byte digests)"
    );
    println!("| live bytes | bytes per key | allocations per key |");
    println!("|---|---|---|");
    println!(
        "| {:.0} | {per_key:.1} | {:.4} |",
        live,
        change.allocations as f64 / KEYS as f64
    );
    black_box(&store);
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    requests_per_request();
    memory_per_key();
}
