//! An inline Numero receiver on any [`IdempotencyStore`]: a real axum server
//! on 127.0.0.1 whose handler answers 200 and counts its runs. Stopped when
//! dropped.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing;
use http::StatusCode;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tower_webhook::numero::{Numero, NumeroEvent};
use tower_webhook::{IdempotencyStore, VerifiedEvent, WebhookLayer};

use super::{self as harness, Reply, numero_body};

/// A running inline receiver.
pub struct Inline {
    addr: SocketAddr,
    runs: Arc<AtomicUsize>,
    server: JoinHandle<()>,
}

impl Inline {
    /// Serves `POST /numero` on `store`, keeping done keys for `done_ttl`.
    pub async fn start<S: IdempotencyStore>(store: S, done_ttl: Duration) -> Self {
        let layer = WebhookLayer::builder(Numero)
            .secret(harness::NUMERO_SECRET)
            .done_ttl(done_ttl)
            // Tests here watch the store's own expiry; with short TTLs the
            // replay window (the done TTL) would refuse the dated samples.
            .replay_window(None)
            .store(store)
            .build()
            .unwrap();
        let runs = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&runs);
        let handler = move |VerifiedEvent(_): VerifiedEvent<NumeroEvent>| {
            counter.fetch_add(1, Ordering::SeqCst);
            async { StatusCode::OK }
        };
        let app = Router::new().route("/numero", routing::post(handler).route_layer(layer));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, runs, server }
    }

    /// Posts a signed Numero delivery of the event `id`.
    pub async fn deliver(&self, id: &str) -> Reply {
        let body = numero_body(id);
        let sig = harness::numero_signature(body.as_bytes());
        harness::post(
            &format!("http://{}/numero", self.addr),
            &[("x-webhook-signature", &sig)],
            body,
        )
        .await
    }

    /// How many times the handler ran.
    pub fn runs(&self) -> usize {
        self.runs.load(Ordering::SeqCst)
    }
}

impl Drop for Inline {
    fn drop(&mut self) {
        self.server.abort();
    }
}
