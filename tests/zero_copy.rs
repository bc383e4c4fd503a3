//! A body that arrives as one frame reaches the inner service as the very
//! same `Bytes`: same pointer, same length, no copy.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use tower::{Layer as _, ServiceExt as _};
use tower_webhook::WebhookLayer;
use tower_webhook::numero::Numero;

const SECRET: &str = "whsec_abcdefghijklmnopqrstuvwxyz123456789";

/// What the inner service saw: the body's address and length.
type Seen = Arc<Mutex<Option<(usize, usize)>>>;

async fn deliver(body: Bytes) -> (StatusCode, Option<(usize, usize)>) {
    let seen: Seen = Arc::default();
    let record = Arc::clone(&seen);
    let inner = tower::service_fn(move |request: Request<Full<Bytes>>| {
        let record = Arc::clone(&record);
        async move {
            let frame = request.into_body().frame().await.expect("one frame");
            let data = frame
                .expect("infallible")
                .into_data()
                .expect("a data frame");
            *record.lock().unwrap() = Some((data.as_ptr() as usize, data.len()));
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
        }
    });
    let service = WebhookLayer::new(Numero, SECRET).unwrap().layer(inner);
    let request = Request::post("/webhooks/numero")
        .header("content-length", body.len())
        .header(
            "x-webhook-signature",
            tower_webhook::numero::sign(SECRET.as_bytes(), &body),
        )
        .body(Full::new(body))
        .unwrap();
    let status = service.oneshot(request).await.unwrap().status();
    let seen = *seen.lock().unwrap();
    (status, seen)
}

#[tokio::test]
async fn a_one_frame_body_reaches_the_inner_service_uncopied() {
    for size in [300, 64 * 1024] {
        let mut text = format!(r#"{{"id":"evt_zero_copy_{size}","event":"PING","pad":""#);
        text.push_str(&"x".repeat(size - text.len() - 2));
        text.push_str(r#""}"#);
        let body = Bytes::from(text);
        let sent = (body.as_ptr() as usize, body.len());
        let (status, seen) = deliver(body).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(seen, Some(sent), "the inner service got a copy at {size} B");
    }
}
