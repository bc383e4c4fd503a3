//! With feature `tracing`, every rejection is a `tracing` event carrying its
//! reason code. A minimal subscriber records the `reason` field of each event.
#![cfg(feature = "tracing")]

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use tower::{Layer as _, ServiceExt as _, service_fn};
use tower_webhook::WebhookLayer;
use tower_webhook::numero::Numero;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

#[derive(Clone, Default)]
struct Reasons(Arc<Mutex<Vec<String>>>);

impl Visit for Reasons {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "reason" {
            self.0.lock().unwrap().push(value.to_owned());
        }
    }
    fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
}

impl Subscriber for Reasons {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        event.record(&mut self.clone());
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[test]
fn every_rejection_is_a_tracing_event_with_its_reason() {
    let reasons = Reasons::default();
    let seen = reasons.clone();
    tracing::subscriber::with_default(reasons, || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            let secret = "whsec_tracing_test";
            let svc = WebhookLayer::new(Numero, secret).unwrap().layer(service_fn(
                |_req: Request<Full<Bytes>>| async {
                    Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::new())))
                },
            ));
            let body = Bytes::from_static(br#"{"id":"evt_traced"}"#);
            let sig = tower_webhook::numero::sign(secret.as_bytes(), &body);
            let send = |sig: Option<&str>, body: Bytes| {
                let mut r = Request::post("/");
                if let Some(sig) = sig {
                    r = r.header("x-webhook-signature", sig);
                }
                svc.clone().oneshot(r.body(Full::new(body)).unwrap())
            };
            let statuses = [
                send(None, body.clone()).await.unwrap().status(),
                send(Some("bogus"), body.clone()).await.unwrap().status(),
                send(Some(&sig), Bytes::from_static(b"{}"))
                    .await
                    .unwrap()
                    .status(),
                send(Some(&sig), body.clone()).await.unwrap().status(),
                send(Some(&sig), body.clone()).await.unwrap().status(),
            ];
            assert_eq!(
                statuses,
                [
                    StatusCode::UNAUTHORIZED,
                    StatusCode::UNAUTHORIZED,
                    StatusCode::UNAUTHORIZED,
                    StatusCode::OK,
                    StatusCode::OK
                ]
            );
        });
    });
    assert_eq!(
        *seen.0.lock().unwrap(),
        [
            "missing_signature",
            "malformed_signature",
            "signature_mismatch",
            "duplicate"
        ]
    );
}
