//! The end-to-end contract every scheme must meet, through a real axum
//! server on 127.0.0.1 and a real HTTP client: valid, duplicate, tampered,
//! missing, rotation, concurrency, and for the timestamped schemes the
//! tolerance window. A scheme plugs in through a [`Provider`] descriptor;
//! `contracts!` runs every check for each listed case and lists the cases'
//! scheme names ([`case_names`](crate::case_names)).
#![allow(dead_code)]

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use axum::Router;
use axum::routing::post;
use bytes::Bytes;
use http::header::HeaderName;
use http::{Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tower_webhook::{EventId, IdempotencyKey, MemoryStore, Scheme, VerifiedEvent, WebhookLayer};

/// The fixed "now" of the injected clocks, in Unix seconds.
pub const NOW: u64 = 1_700_000_000;

/// How long one whole test may take.
pub const BOUND: Duration = Duration::from_secs(60);

/// What the contract needs to know about one scheme.
pub trait Provider: Send + Sync + 'static {
    /// The scheme under test.
    type S: Scheme;
    /// The scheme, its clock (if any) fixed at [`NOW`].
    fn scheme(&self) -> Self::S;
    /// Two secrets as the provider shows them: the old, then the new.
    fn secrets(&self) -> [String; 2];
    /// The body of event `n`.
    fn body(&self, n: u32) -> Vec<u8>;
    /// The signature headers of event `n` with `body`, signed at `timestamp`
    /// (ignored by schemes that sign none).
    fn sign_at(
        &self,
        secret: &str,
        n: u32,
        body: &[u8],
        timestamp: u64,
    ) -> Vec<(HeaderName, String)>;
    /// The id the store key of event `n` uses.
    fn event_id(&self, n: u32, body: &[u8]) -> String;
    /// The id the handler reads from the typed event.
    fn seen_id(event: &<Self::S as Scheme>::Event) -> String;
    /// The default tolerance in seconds, for schemes that sign a timestamp.
    fn tolerance(&self) -> Option<u64> {
        None
    }
}

// --- the harness -------------------------------------------------------------

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// A receiver on 127.0.0.1:0 whose handler records every event it ran for.
pub struct Server {
    pub url: String,
    pub store: MemoryStore,
    pub runs: Arc<Mutex<Vec<String>>>,
    pub task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    pub async fn start<P: Provider>(provider: &P, secrets: &[String]) -> Self {
        let layer = WebhookLayer::builder(provider.scheme())
            .secrets(secrets.iter().cloned())
            .build()
            .expect("valid secrets");
        let store = layer.store().clone();
        let runs = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&runs);
        let handler = move |VerifiedEvent(event): VerifiedEvent<<P::S as Scheme>::Event>| {
            let seen = Arc::clone(&seen);
            async move {
                seen.lock().unwrap().push(P::seen_id(&event));
                // Long enough for concurrent copies to overlap.
                tokio::time::sleep(Duration::from_millis(100)).await;
                "ok"
            }
        };
        let app = Router::new().route("/hook", post(handler).layer(layer));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            url,
            store,
            runs,
            task,
        }
    }

    pub fn runs(&self) -> Vec<String> {
        self.runs.lock().unwrap().clone()
    }

    /// What the store holds for event `id`: done, in flight, or nothing.
    pub fn status<P: Provider>(&self, provider: &P, id: &str) -> Option<bool> {
        let id = EventId::new(id).unwrap();
        self.store
            .status(&IdempotencyKey::new(provider.scheme().name(), &id))
    }
}

/// Posts `body` with `headers`; returns the status and the response body.
pub async fn post_to(
    url: &str,
    headers: &[(HeaderName, String)],
    body: Vec<u8>,
) -> (StatusCode, String) {
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let mut request = Request::post(url).header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let response = client
        .request(request.body(Full::new(Bytes::from(body))).unwrap())
        .await
        .expect("the server answers");
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

/// A delivery of event `n` signed with `secret` now.
pub fn delivery<P: Provider>(
    provider: &P,
    secret: &str,
    n: u32,
) -> (Vec<(HeaderName, String)>, Vec<u8>) {
    let body = provider.body(n);
    (provider.sign_at(secret, n, &body, NOW), body)
}

pub async fn bounded(test: impl Future<Output = ()>) {
    tokio::time::timeout(BOUND, test)
        .await
        .expect("test finished in time");
}

pub const DUPLICATE: &str = r#"{"status":"duplicate"}"#;

/// Valid, duplicate, tampered and missing, on one server.
pub async fn valid_duplicate_tampered_missing<P: Provider>(provider: P) {
    let [old, new] = provider.secrets();
    let server = Server::start(&provider, &[new.clone(), old]).await;

    // Valid: the handler runs, the key is done.
    let (headers, body) = delivery(&provider, &new, 1);
    let id = provider.event_id(1, &body);
    let (status, _) = post_to(&server.url, &headers, body.clone()).await;
    assert!(status.is_success(), "{status}");
    assert_eq!(server.runs(), std::slice::from_ref(&id));
    assert_eq!(server.status(&provider, &id), Some(true));

    // Duplicate (re-signed, so any unsigned header may differ): 200
    // duplicate, the handler does not run again.
    let (headers, body) = delivery(&provider, &new, 1);
    let (status, text) = post_to(&server.url, &headers, body).await;
    assert_eq!((status, text.as_str()), (StatusCode::OK, DUPLICATE));
    assert_eq!(server.runs().len(), 1);

    // Tampered: 401, nothing recorded; the genuine delivery still runs.
    let (headers, body) = delivery(&provider, &new, 2);
    let id2 = provider.event_id(2, &body);
    let mut forged = body.clone();
    let last = forged.len() - 2;
    forged[last] ^= 0x01;
    let (status, _) = post_to(&server.url, &headers, forged).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(server.status(&provider, &id2), None);
    assert_eq!(server.runs().len(), 1);

    // Missing: without any one of the signed headers, 401.
    for (name, _) in &headers {
        if name.as_str().starts_with("x-github-") {
            continue; // unsigned and informational
        }
        let partial: Vec<_> = headers.iter().filter(|(n, _)| n != name).cloned().collect();
        let (status, text) = post_to(&server.url, &partial, body.clone()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "without {name}: {text}");
    }
    let (status, text) = post_to(&server.url, &[], body.clone()).await;
    assert_eq!(
        (status, text.as_str()),
        (StatusCode::UNAUTHORIZED, r#"{"error":"missing_signature"}"#)
    );
    assert_eq!(server.status(&provider, &id2), None);
    assert_eq!(server.runs().len(), 1);

    let (status, _) = post_to(&server.url, &headers, body).await;
    assert!(status.is_success(), "{status}");
    assert_eq!(server.runs(), [id, id2]);
}

/// Old and new secrets both verify during the overlap; once the old one is
/// removed it does not.
pub async fn rotation<P: Provider>(provider: P) {
    let [old, new] = provider.secrets();
    let both = Server::start(&provider, &[new.clone(), old.clone()]).await;
    for (n, secret) in [(3, &old), (4, &new)] {
        let (headers, body) = delivery(&provider, secret, n);
        let (status, _) = post_to(&both.url, &headers, body).await;
        assert!(status.is_success(), "event {n}: {status}");
    }
    assert_eq!(both.runs().len(), 2);

    let rotated = Server::start(&provider, std::slice::from_ref(&new)).await;
    let (headers, body) = delivery(&provider, &old, 5);
    let id = provider.event_id(5, &body);
    let (status, text) = post_to(&rotated.url, &headers, body).await;
    assert_eq!(
        (status, text.as_str()),
        (
            StatusCode::UNAUTHORIZED,
            r#"{"error":"signature_mismatch"}"#
        )
    );
    assert_eq!(rotated.status(&provider, &id), None);
    let (headers, body) = delivery(&provider, &new, 5);
    let (status, _) = post_to(&rotated.url, &headers, body).await;
    assert!(status.is_success(), "{status}");
    assert_eq!(rotated.runs(), [id]);
}

/// Forty concurrent copies of one event: the handler runs exactly once.
pub async fn concurrent_copies<P: Provider>(provider: P) {
    let [_, new] = provider.secrets();
    let server = Server::start(&provider, std::slice::from_ref(&new)).await;
    let (headers, body) = delivery(&provider, &new, 6);
    let id = provider.event_id(6, &body);
    let copies: Vec<_> = (0..40)
        .map(|_| {
            let (url, headers, body) = (server.url.clone(), headers.clone(), body.clone());
            tokio::spawn(async move { post_to(&url, &headers, body).await })
        })
        .collect();
    let mut ok = 0;
    for copy in copies {
        let (status, text) = copy.await.unwrap();
        match status {
            StatusCode::CONFLICT => {}
            StatusCode::OK if text == DUPLICATE => {}
            StatusCode::OK => ok += 1,
            other => panic!("unexpected {other}: {text}"),
        }
    }
    assert_eq!(ok, 1, "exactly one copy was processed");
    assert_eq!(server.runs(), std::slice::from_ref(&id));
    assert_eq!(server.status(&provider, &id), Some(true));
}

/// Inside the window (bounds included) verifies; one second outside, either
/// way, is 401 `stale_timestamp` and records nothing.
pub async fn tolerance<P: Provider>(provider: P) {
    let window = provider.tolerance().expect("a timestamped scheme");
    let [_, new] = provider.secrets();
    let server = Server::start(&provider, std::slice::from_ref(&new)).await;
    let cases = [
        (10, NOW - window, true),
        (11, NOW + window, true),
        (12, NOW - window - 1, false),
        (13, NOW + window + 1, false),
    ];
    for (n, timestamp, accepted) in cases {
        let body = provider.body(n);
        let headers = provider.sign_at(&new, n, &body, timestamp);
        let id = provider.event_id(n, &body);
        let (status, text) = post_to(&server.url, &headers, body).await;
        if accepted {
            assert!(
                status.is_success(),
                "t = now {:+}: {status} {text}",
                timestamp as i64 - NOW as i64
            );
            assert_eq!(server.status(&provider, &id), Some(true));
        } else {
            assert_eq!(
                (status, text.as_str()),
                (StatusCode::UNAUTHORIZED, r#"{"error":"stale_timestamp"}"#)
            );
            assert_eq!(server.status(&provider, &id), None);
        }
    }
    assert_eq!(server.runs().len(), 2);
}

macro_rules! contract {
    ($module:ident, $provider:expr) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn valid_duplicate_tampered_missing() {
                crate::harness::bounded(crate::harness::valid_duplicate_tampered_missing(
                    $provider,
                ))
                .await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn rotation() {
                crate::harness::bounded(crate::harness::rotation($provider)).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn concurrent_copies_run_once() {
                crate::harness::bounded(crate::harness::concurrent_copies($provider)).await;
            }
        }
    };
}

/// Runs the contract for every listed case, and defines `case_names()`:
/// the scheme name of every case, in the list's order.
macro_rules! contracts {
    ($($(#[$cfg:meta])* $module:ident => $provider:expr,)*) => {
        $($(#[$cfg])* contract!($module, $provider);)*

        /// The scheme name of every case `contracts!` runs.
        pub fn case_names() -> Vec<&'static str> {
            let mut names = Vec::new();
            $(
                $(#[$cfg])*
                names.push(tower_webhook::Scheme::name(&crate::harness::Provider::scheme(&$provider)));
            )*
            names
        }
    };
}
