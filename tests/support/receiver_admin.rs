//! What a test asks a child receiver ([`ReceiverProcess`]) over HTTP: a
//! signed Numero delivery, an admin route's JSON, the queue's counts, and
//! a bounded wait for a condition.
//!
//! Included with `#[path = "support/receiver_admin.rs"] mod receiver_admin;`
//! beside `harness` and `receiver_process`.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use serde_json::Value;

use crate::harness;
use crate::receiver_process::ReceiverProcess;

/// Every wait ends by itself within this.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Posts the Numero event `id`, signed, to `receiver`.
pub async fn deliver(receiver: &ReceiverProcess, id: &str) -> harness::Reply {
    deliver_body(receiver, harness::numero_body(id)).await
}

/// Posts the Numero event `body`, signed, to `receiver`.
pub async fn deliver_body(receiver: &ReceiverProcess, body: String) -> harness::Reply {
    let sig = harness::numero_signature(body.as_bytes());
    harness::post(
        &receiver.url("/webhooks/numero"),
        &[("x-webhook-signature", &sig)],
        body,
    )
    .await
}

/// `GET path` on `receiver`, which must answer 200 with JSON.
pub async fn get_json(receiver: &ReceiverProcess, path: &str) -> Value {
    let request = Request::get(receiver.url(path))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = harness::client().request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "GET {path}");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&body).unwrap()
}

/// `GET /queue` as `(pending, running, dead)`.
pub async fn queue(receiver: &ReceiverProcess) -> (u64, u64, u64) {
    let q = get_json(receiver, "/queue").await;
    let n = |field: &str| q[field].as_u64().unwrap();
    (n("pending"), n("running"), n("dead"))
}

/// Polls `probe` every 50 ms until it returns `Some`, or fails after
/// [`PATIENCE`].
pub async fn until<T, F, Fut>(what: &str, probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    until_within(what, PATIENCE, probe).await
}

/// Polls `probe` every 50 ms until it returns `Some`, or fails after
/// `patience`.
pub async fn until_within<T, F, Fut>(what: &str, patience: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + patience;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
