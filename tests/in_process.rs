//! In process (`tower::ServiceExt::oneshot`), for what a TCP peer cannot
//! show: how much of an endless body is read, a `Content-Length` smaller
//! than the body, a body that fails mid-way, and an inner service that
//! errors. Each test asserts the status, whether the inner service ran, and
//! the store.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body::{Body, Frame};
use http_body_util::Full;
use tower::{Layer as _, ServiceExt as _, service_fn};
use tower_webhook::numero::Numero;
use tower_webhook::{EventId, IdempotencyKey, MemoryStore, WebhookLayer};

const SECRET: &str = "whsec_in_process_secret";

/// Yields `frame` forever (or fails after `fail_after` frames), counting
/// how many frames were pulled.
struct Endless {
    frame: Bytes,
    pulled: Arc<AtomicUsize>,
    fail_after: Option<usize>,
}

impl Body for Endless {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let n = self.pulled.fetch_add(1, Ordering::SeqCst);
        if self.fail_after.is_some_and(|limit| n >= limit) {
            return Poll::Ready(Some(Err(std::io::Error::other("connection reset"))));
        }
        Poll::Ready(Some(Ok(Frame::data(self.frame.clone()))))
    }
}

/// What the layered test service answers.
type Answer = Response<tower_webhook::ResponseBody<Full<Bytes>>>;

/// The layer around a service that counts its runs and answers `status`,
/// or fails when `status` is `None`.
fn service<B>(
    store: MemoryStore,
    status: Option<StatusCode>,
) -> (
    impl tower::Service<Request<B>, Response = Answer, Error = std::io::Error>,
    Arc<AtomicUsize>,
)
where
    B: Body<Data = Bytes>,
{
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = runs.clone();
    let layer = WebhookLayer::builder(Numero)
        .secret(SECRET)
        .max_body_bytes(10 * 1024)
        .store(store)
        .build()
        .unwrap();
    let inner = service_fn(move |_req: Request<Full<Bytes>>| {
        counted.fetch_add(1, Ordering::SeqCst);
        async move {
            match status {
                Some(status) => {
                    let mut response = Response::new(Full::new(Bytes::new()));
                    *response.status_mut() = status;
                    Ok(response)
                }
                None => Err(std::io::Error::other("inner service failed")),
            }
        }
    });
    (layer.layer(inner), runs)
}

fn signed(body: Endless, signed_over: &[u8], content_length: Option<usize>) -> Request<Endless> {
    let mut request = Request::post("/").header(
        "x-webhook-signature",
        tower_webhook::numero::sign(SECRET.as_bytes(), signed_over),
    );
    if let Some(len) = content_length {
        request = request.header("content-length", len);
    }
    request.body(body).unwrap()
}

#[tokio::test]
async fn an_endless_body_is_413_after_at_most_the_cap_plus_one_frame() {
    let store = MemoryStore::new();
    let (svc, runs) = service(store.clone(), Some(StatusCode::OK));
    let pulled = Arc::new(AtomicUsize::new(0));
    let body = Endless {
        frame: Bytes::from(vec![b' '; 1024]),
        pulled: pulled.clone(),
        fail_after: None,
    };
    let response = svc.oneshot(signed(body, b"{}", None)).await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // 10 frames fill the 10 KiB cap exactly; the 11th crosses it.
    assert_eq!(pulled.load(Ordering::SeqCst), 11);
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    assert!(store.is_empty());
}

#[tokio::test]
async fn a_content_length_smaller_than_the_body_does_not_lift_the_cap() {
    let (svc, runs) = service(MemoryStore::new(), Some(StatusCode::OK));
    let pulled = Arc::new(AtomicUsize::new(0));
    let body = Endless {
        frame: Bytes::from(vec![b' '; 4096]),
        pulled: pulled.clone(),
        fail_after: None,
    };
    let response = svc.oneshot(signed(body, b"{}", Some(10))).await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(pulled.load(Ordering::SeqCst), 3);
    assert_eq!(runs.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_body_that_fails_mid_way_is_400() {
    let store = MemoryStore::new();
    let (svc, runs) = service(store.clone(), Some(StatusCode::OK));
    let body = Endless {
        frame: Bytes::from_static(b"{\"id\":"),
        pulled: Arc::default(),
        fail_after: Some(1),
    };
    let response = svc.oneshot(signed(body, b"{}", None)).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    assert!(store.is_empty());
}

#[tokio::test]
async fn an_inner_service_error_releases_the_claim_and_propagates() {
    const EVENT: &[u8] = br#"{"id":"evt_err"}"#;
    let store = MemoryStore::new();
    let key = IdempotencyKey::new("numero", &EventId::new("evt_err").unwrap());
    let request = || {
        Request::post("/")
            .header(
                "x-webhook-signature",
                tower_webhook::numero::sign(SECRET.as_bytes(), EVENT),
            )
            .body(Full::new(Bytes::from_static(EVENT)))
            .unwrap()
    };
    let (failing, runs) = service(store.clone(), None);
    let error = failing.oneshot(request()).await.unwrap_err();
    assert_eq!(error.to_string(), "inner service failed");
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(store.status(&key), None, "released");
    // The sender's retry is processed, and then the event is done.
    let (working, runs) = service(store.clone(), Some(StatusCode::NO_CONTENT));
    let response = working.oneshot(request()).await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(store.status(&key), Some(true));
}
