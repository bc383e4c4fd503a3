//! The layer in process, no sockets: `tower::ServiceExt::oneshot` on a
//! current-thread tokio runtime.
//!
//! `cargo bench -p tower-webhook-benches --bench layer`
//!
//! Variants, each at 300 B and 64 KiB, one frame and many frames:
//!
//! * `bare`: the inner service alone (takes the request, answers 200);
//! * `layer`: the same inner service behind `WebhookLayer` (Numero, memory
//!   store, typed event), on the full "new event" path: verify, parse,
//!   claim, inner service, complete. Every request has a fresh id;
//! * `axum_inline`: a hand-written axum handler that takes `Bytes`, verifies
//!   the HMAC inline (cached key, constant-time compare) and parses the id;
//! * `axum_layer`: an axum handler taking `VerifiedEvent`, behind the layer;
//! * `axum_bare`: the same route without the layer, its handler taking
//!   `Bytes` (the body read, nothing done with it);
//! * `axum_handwritten`: the layer's hand-written peer (`handwritten.rs`):
//!   base64 decode, HMAC verify, `serde_json::from_slice` into an owned
//!   event, a `Mutex<HashSet>` of seen ids; the same typed event for the
//!   handler.
//!
//! Requests are built (and signed) outside the timed region.

use std::convert::Infallible;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::post;
use bytes::Bytes;
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group};
use http::{HeaderMap, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::Full;
use tower::{Layer as _, ServiceExt as _};
use tower_webhook::numero::{Numero, NumeroEvent};
use tower_webhook::{VerifiedEvent, WebhookLayer};

mod common;
mod handwritten;
use common::{Frames, NUMERO_SECRET, Variant, interleaved, signed_delivery, time_n};

const SIZES: &[(&str, usize, usize)] = &[
    // name, body size, frame size for the many-frames case
    ("300B", 300, 64),
    ("64KiB", 64 * 1024, 8 * 1024),
];

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A signed Numero delivery with a fresh id.
fn delivery(size: usize) -> (http::request::Parts, Bytes) {
    signed_delivery(NEXT_ID.fetch_add(1, Ordering::Relaxed), size)
}

async fn inner<B>(request: Request<B>) -> Result<Response<Full<Bytes>>, Infallible> {
    black_box(request);
    Ok(Response::new(Full::new(Bytes::new())))
}

#[derive(serde::Deserialize)]
struct IdOnly<'a> {
    #[serde(borrow)]
    id: std::borrow::Cow<'a, str>,
}

/// Less than a user writes without the layer: verify inline, read the id
/// only.
async fn axum_inline(headers: HeaderMap, body: Bytes) -> StatusCode {
    if let Err(status) = handwritten::verify(&headers, &body) {
        return status;
    }
    match serde_json::from_slice::<IdOnly<'_>>(&body) {
        Ok(event) => {
            black_box(event.id);
            StatusCode::OK
        }
        Err(_) => StatusCode::BAD_REQUEST,
    }
}

async fn axum_with_layer(VerifiedEvent(event): VerifiedEvent<NumeroEvent>) -> StatusCode {
    black_box(event);
    StatusCode::OK
}

/// The bare route: the body read, nothing done with it.
async fn axum_bare(body: Bytes) -> StatusCode {
    black_box(body);
    StatusCode::OK
}

/// The three axum routes every comparison uses: bare, behind the layer, and
/// the hand-written peer.
fn routes(webhook: &WebhookLayer<Numero>) -> [Router; 3] {
    [
        Router::new().route("/webhooks/numero", post(axum_bare)),
        Router::new().route(
            "/webhooks/numero",
            post(axum_with_layer).layer(webhook.clone()),
        ),
        Router::new().route("/webhooks/numero", post(handwritten::handler)),
    ]
}

fn layer(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let webhook = WebhookLayer::new(Numero, NUMERO_SECRET).unwrap();
    let bare_full = tower::service_fn(inner::<Full<Bytes>>);
    let bare_frames = tower::service_fn(inner::<Frames>);
    let layered_full = webhook.layer(tower::service_fn(inner::<Full<Bytes>>));
    let layered_frames = webhook.layer(tower::service_fn(inner::<Full<Bytes>>));
    let router_inline = Router::new().route("/webhooks/numero", post(axum_inline));
    let [_, router_layer, router_handwritten] = routes(&webhook);

    // Sanity: every variant answers 200 on a fresh delivery, and the
    // hand-written peer refuses what it must.
    for (tamper, expected) in [
        (None, StatusCode::OK),
        (Some(b'X'), StatusCode::UNAUTHORIZED),
    ] {
        let (parts, body) = delivery(300);
        let mut body = body.to_vec();
        if let Some(byte) = tamper {
            body[10] = byte;
        }
        let request = Request::from_parts(parts, axum::body::Body::from(body));
        let response = rt
            .block_on(router_handwritten.clone().oneshot(request))
            .unwrap();
        assert_eq!(response.status(), expected);
    }
    let (parts, body) = delivery(300);
    let response = rt
        .block_on(
            layered_full
                .clone()
                .oneshot(Request::from_parts(parts, Full::new(body))),
        )
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let (parts, body) = delivery(300);
    let response = rt
        .block_on(
            router_layer
                .clone()
                .oneshot(Request::from_parts(parts, axum::body::Body::from(body))),
        )
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let (parts, body) = delivery(300);
    let response = rt
        .block_on(
            router_inline
                .clone()
                .oneshot(Request::from_parts(parts, axum::body::Body::from(body))),
        )
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let mut group = c.benchmark_group("layer");
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(4));
    for &(name, size, frame) in SIZES {
        group.throughput(Throughput::Bytes(size as u64));
        let one = |(parts, body): (http::request::Parts, Bytes)| {
            Request::from_parts(parts, Full::new(body))
        };
        let many = move |(parts, body): (http::request::Parts, Bytes)| {
            Request::from_parts(parts, Frames::new(body, frame))
        };
        let axum_one = |(parts, body): (http::request::Parts, Bytes)| {
            Request::from_parts(parts, axum::body::Body::from(body))
        };
        let axum_many = move |(parts, body): (http::request::Parts, Bytes)| {
            Request::from_parts(parts, axum::body::Body::new(Frames::new(body, frame)))
        };

        bench(
            &mut group,
            &rt,
            "bare/one_frame",
            name,
            size,
            &bare_full,
            one,
        );
        bench(
            &mut group,
            &rt,
            "layer/one_frame",
            name,
            size,
            &layered_full,
            one,
        );
        bench(
            &mut group,
            &rt,
            "axum_inline/one_frame",
            name,
            size,
            &router_inline,
            axum_one,
        );
        bench(
            &mut group,
            &rt,
            "axum_layer/one_frame",
            name,
            size,
            &router_layer,
            axum_one,
        );
        bench(
            &mut group,
            &rt,
            "axum_handwritten/one_frame",
            name,
            size,
            &router_handwritten,
            axum_one,
        );
        bench(
            &mut group,
            &rt,
            "bare/many_frames",
            name,
            size,
            &bare_frames,
            many,
        );
        bench(
            &mut group,
            &rt,
            "layer/many_frames",
            name,
            size,
            &layered_frames,
            many,
        );
        bench(
            &mut group,
            &rt,
            "axum_inline/many_frames",
            name,
            size,
            &router_inline,
            axum_many,
        );
        bench(
            &mut group,
            &rt,
            "axum_layer/many_frames",
            name,
            size,
            &router_layer,
            axum_many,
        );
    }
    group.finish();
}

fn bench<S, B, R>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    rt: &tokio::runtime::Runtime,
    variant: &str,
    size_name: &str,
    size: usize,
    service: &S,
    make: impl Fn((http::request::Parts, Bytes)) -> Request<B> + Copy,
) where
    S: tower::Service<Request<B>, Response = Response<R>> + Clone,
    S::Error: std::fmt::Debug,
    R: Body,
{
    group.bench_function(BenchmarkId::new(variant, size_name), |b| {
        b.iter_batched(
            || (service.clone(), make(delivery(size))),
            |(service, request)| {
                let response = rt.block_on(service.oneshot(request)).unwrap();
                debug_assert!(response.status().is_success());
                response
            },
            BatchSize::SmallInput,
        )
    });
}

/// The in-process target, measured interleaved (see `common::interleaved`):
/// (layer − bare) against one 300 B verify, in one run.
fn paired() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let webhook = WebhookLayer::new(Numero, NUMERO_SECRET).unwrap();
    let bare = tower::service_fn(inner::<Full<Bytes>>);
    let layered = webhook.layer(tower::service_fn(inner::<Full<Bytes>>));
    let set = tower_webhook::SecretSet::from_keys([NUMERO_SECRET]).unwrap();
    let ring_key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, NUMERO_SECRET.as_bytes());
    let (parts, body) = delivery(300);
    let signature = tower_webhook::Scheme::signature(&Numero, &parts.headers).unwrap();
    let tag: [u8; 32] = signature
        .tags()
        .next()
        .unwrap()
        .as_bytes()
        .try_into()
        .unwrap();
    let requests = |n: u64| -> Vec<Request<Full<Bytes>>> {
        (0..n)
            .map(|_| {
                let (parts, body) = delivery(300);
                Request::from_parts(parts, Full::new(body))
            })
            .collect()
    };
    let serve = |service: &dyn Fn(Request<Full<Bytes>>) -> StatusCode, n: u64| {
        let batch = requests(n);
        let start = std::time::Instant::now();
        for request in batch {
            black_box(service(request));
        }
        start.elapsed()
    };
    let bare_call = |r: Request<Full<Bytes>>| rt.block_on(bare.oneshot(r)).unwrap().status();
    let layer_call =
        |r: Request<Full<Bytes>>| rt.block_on(layered.clone().oneshot(r)).unwrap().status();
    let router_inline = Router::new().route("/webhooks/numero", post(axum_inline));
    let [router_bare, router_layer, router_handwritten] = routes(&webhook);
    let axum_serve = |router: &Router, n: u64| {
        let batch: Vec<_> = requests(n)
            .into_iter()
            .map(|r| r.map(axum::body::Body::new))
            .collect();
        let start = std::time::Instant::now();
        for request in batch {
            let response = rt.block_on(router.clone().oneshot(request)).unwrap();
            black_box(response.status());
        }
        start.elapsed()
    };
    // The layer's steps alone, for the breakdown.
    let store = tower_webhook::MemoryStore::new();
    let mut key_seq = 0u64;
    let mut variants: Vec<Variant<'_>> = vec![
        ("bare", Box::new(|n| serve(&bare_call, n))),
        ("layer", Box::new(|n| serve(&layer_call, n))),
        ("axum_inline", Box::new(|n| axum_serve(&router_inline, n))),
        ("axum_layer", Box::new(|n| axum_serve(&router_layer, n))),
        ("axum_bare", Box::new(|n| axum_serve(&router_bare, n))),
        (
            "axum_handwritten",
            Box::new(|n| axum_serve(&router_handwritten, n)),
        ),
        (
            "parse",
            Box::new(|n| {
                time_n(n, || {
                    let parsed = tower_webhook::Scheme::parse(
                        &Numero,
                        black_box(&parts.headers),
                        black_box(&body),
                    );
                    black_box(parsed.unwrap());
                })
            }),
        ),
        (
            "claim_complete",
            Box::new(|n| {
                let keys: Vec<_> = (0..n)
                    .map(|_| {
                        key_seq += 1;
                        let id = tower_webhook::EventId::new(&format!("evt_{key_seq:012}"));
                        tower_webhook::IdempotencyKey::new("numero", &id.unwrap())
                    })
                    .collect();
                let start = std::time::Instant::now();
                for key in &keys {
                    use tower_webhook::{Claim, IdempotencyStore as _};
                    let lease = match store.claim(key, Duration::from_secs(300)).into_inner() {
                        Ok(Claim::New(lease)) => lease,
                        _ => panic!("a new key"),
                    };
                    store
                        .complete(lease, Duration::from_secs(3600))
                        .into_inner()
                        .unwrap();
                }
                start.elapsed()
            }),
        ),
        (
            "verify",
            Box::new(|n| {
                time_n(n, || {
                    let sig = tower_webhook::Scheme::signature(&Numero, black_box(&parts.headers))
                        .unwrap();
                    set.verify(&sig, black_box(&body)).unwrap();
                })
            }),
        ),
        (
            "ring",
            Box::new(|n| {
                time_n(n, || {
                    ring::hmac::verify(&ring_key, black_box(&body), black_box(&tag)).unwrap()
                })
            }),
        ),
    ];
    let m = interleaved(&mut variants, 300, 1000);
    let [
        bare,
        layer,
        axum_inline,
        axum_layer,
        axum_bare,
        axum_handwritten,
        parse,
        claim,
        verify,
        ring,
    ] = m[..]
    else {
        unreachable!("ten variants")
    };
    println!("\ninterleaved medians (ns per request), 300 B, one frame, fresh id each");
    println!(
        "| bare | layer | layer − bare | numero verify | ring verify | (layer − bare) / verify | (layer − bare) / ring |"
    );
    println!("|---|---|---|---|---|---|---|");
    println!(
        "| {bare:.0} | {layer:.0} | {:.0} | {verify:.0} | {ring:.0} | {:.2} | {:.2} |",
        layer - bare,
        (layer - bare) / verify,
        (layer - bare) / ring
    );
    println!("\nthe layer's steps alone, same run (ns)");
    println!(
        "| parse (Numero, typed event) | claim + complete (memory store, 100 k bound) | the rest of layer − bare − verify |"
    );
    println!("|---|---|---|");
    println!(
        "| {parse:.0} | {claim:.0} | {:.0} |",
        layer - bare - verify - parse - claim
    );
    println!("\naxum, same run (ns)");
    println!("| axum_inline | axum_layer | axum_layer / axum_inline |");
    println!("|---|---|---|");
    println!(
        "| {axum_inline:.0} | {axum_layer:.0} | {:.2} |",
        axum_layer / axum_inline
    );
    println!("\nthe targets, same run (ns): axum routes, 300 B, one frame, fresh id each");
    println!(
        "| axum_bare | axum_layer | axum_handwritten | layer − bare | handwritten − bare | layer ÷ bare | **layer ÷ handwritten** |"
    );
    println!("|---|---|---|---|---|---|---|");
    println!(
        "| {axum_bare:.0} | {axum_layer:.0} | {axum_handwritten:.0} | {:.0} | {:.0} | {:.2} | **{:.3}** |",
        axum_layer - axum_bare,
        axum_handwritten - axum_bare,
        axum_layer / axum_bare,
        axum_layer / axum_handwritten
    );
}

/// `LAYER_PROFILE=N`: N fresh 300 B deliveries through the layer in
/// `profile_loop`, then exit, for an instruction profile:
/// `LAYER_PROFILE=20000 valgrind --tool=callgrind --toggle-collect='*profile_loop*' <bench binary>`.
/// With `LAYER_PROFILE_ROUTE=axum_bare|axum_layer|axum_handwritten`, the
/// same through that axum route instead (`profile_axum_loop`).
fn profile(n: u64) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let webhook = WebhookLayer::new(Numero, NUMERO_SECRET).unwrap();
    let requests: Vec<_> = (0..n)
        .map(|_| {
            let (parts, body) = delivery(300);
            Request::from_parts(parts, Full::new(body))
        })
        .collect();
    let [bare, layer, handwritten] = routes(&webhook);
    let router = match std::env::var("LAYER_PROFILE_ROUTE").as_deref() {
        Err(_) => {
            let layered = webhook.layer(tower::service_fn(inner::<Full<Bytes>>));
            return profile_loop(&rt, &layered, requests);
        }
        Ok("axum_bare") => bare,
        Ok("axum_layer") => layer,
        Ok("axum_handwritten") => handwritten,
        Ok(other) => panic!("unknown LAYER_PROFILE_ROUTE {other:?}"),
    };
    let requests = requests
        .into_iter()
        .map(|r| r.map(axum::body::Body::new))
        .collect();
    profile_axum_loop(&rt, &router, requests);
}

#[inline(never)]
fn profile_axum_loop(
    rt: &tokio::runtime::Runtime,
    router: &Router,
    requests: Vec<Request<axum::body::Body>>,
) {
    for request in requests {
        let response = rt.block_on(router.clone().oneshot(request)).unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
}

#[inline(never)]
fn profile_loop<S>(rt: &tokio::runtime::Runtime, service: &S, requests: Vec<Request<Full<Bytes>>>)
where
    S: tower::Service<
            Request<Full<Bytes>>,
            Response = Response<tower_webhook::ResponseBody<Full<Bytes>>>,
        > + Clone,
    S::Error: std::fmt::Debug,
{
    for request in requests {
        let response = rt.block_on(service.clone().oneshot(request)).unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
}

criterion_group!(benches, layer);

fn main() {
    if let Some(n) = std::env::var("LAYER_PROFILE")
        .ok()
        .and_then(|n| n.parse().ok())
    {
        return profile(n);
    }
    if std::env::var_os("LAYER_PAIRED").is_some() {
        return paired(); // the interleaved table alone
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
    if std::env::args().any(|a| a == "--bench") {
        paired();
    }
}
