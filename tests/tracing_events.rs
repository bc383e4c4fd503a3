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

#[path = "harness/mod.rs"]
mod harness;

/// Every span the process opens: its name and its fields as text, as
/// recorded so far.
#[derive(Clone, Default)]
struct Spans(Arc<Mutex<Vec<Recorded>>>);

type Recorded = (String, Vec<(String, String)>, &'static Metadata<'static>);

struct Fields<'a>(&'a mut Vec<(String, String)>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_owned(), value.to_owned()));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.push((field.name().to_owned(), value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }
}

impl Subscriber for Spans {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, attributes: &Attributes<'_>) -> Id {
        let mut spans = self.0.lock().unwrap();
        let mut fields = Vec::new();
        attributes.record(&mut Fields(&mut fields));
        let metadata = attributes.metadata();
        spans.push((metadata.name().to_owned(), fields, metadata));
        Id::from_u64(spans.len() as u64)
    }
    fn record(&self, id: &Id, values: &Record<'_>) {
        let mut spans = self.0.lock().unwrap();
        let index = usize::try_from(id.into_u64()).unwrap() - 1;
        values.record(&mut Fields(&mut spans[index].1));
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, _: &Event<'_>) {}
    // Entered spans per thread, so that `Span::current()` answers as a
    // full subscriber's would.
    fn enter(&self, id: &Id) {
        ENTERED.with(|entered| entered.borrow_mut().push(id.into_u64()));
    }
    fn exit(&self, _: &Id) {
        ENTERED.with(|entered| entered.borrow_mut().pop());
    }
    fn current_span(&self) -> tracing_core::span::Current {
        let spans = self.0.lock().unwrap();
        match ENTERED.with(|entered| entered.borrow().last().copied()) {
            Some(id) => {
                let metadata = spans[usize::try_from(id).unwrap() - 1].2;
                tracing_core::span::Current::new(Id::from_u64(id), metadata)
            }
            None => tracing_core::span::Current::none(),
        }
    }
}

thread_local! {
    static ENTERED: std::cell::RefCell<Vec<u64>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl Spans {
    /// The spans named `name` whose `event_id` is `id`, each as its last
    /// value per field.
    fn named(&self, name: &str, id: &str) -> Vec<std::collections::HashMap<String, String>> {
        let spans = self.0.lock().unwrap();
        spans
            .iter()
            .filter(|(span, _, _)| span == name)
            .map(|(_, fields, _)| {
                fields
                    .iter()
                    .cloned()
                    .collect::<std::collections::HashMap<_, _>>()
            })
            .filter(|fields| fields.get("event_id").map(String::as_str) == Some(id))
            .collect()
    }
}

/// Queued: the intake's `webhook.delivery` span and each attempt's
/// `webhook.attempt` span carry the event's id, the attempts their
/// numbers and outcomes.
#[test]
fn intake_and_every_attempt_carry_the_same_event_id() {
    use harness::queued::{self, quick_retries};
    let spans = Spans::default();
    tracing::subscriber::set_global_default(spans.clone()).expect("the only global subscriber");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let worker = tower_webhook::Worker::builder(tower_webhook::MemoryQueue::new())
            .retry(quick_retries(5));
        let receiver = queued::start(worker).await;
        receiver.seen.script.lock().unwrap().fail_first = 2;
        let reply = receiver.deliver(&harness::numero_body("evt_spanned")).await;
        assert_eq!(reply.status, StatusCode::ACCEPTED);
        receiver
            .wait_until("a success", |seen| seen.successes() == 1)
            .await;
        receiver
            .wait_counts(tower_webhook::queue::QueueCounts::default())
            .await;
    });
    let intake = spans.named("webhook.delivery", "evt_spanned");
    assert_eq!(intake.len(), 1, "{:?}", spans.0.lock().unwrap());
    assert_eq!(intake[0]["scheme"], "numero");
    assert_eq!(intake[0]["outcome"], "accepted");
    let mut attempts: Vec<(String, String)> = spans
        .named("webhook.attempt", "evt_spanned")
        .into_iter()
        .map(|fields| (fields["attempt"].clone(), fields["outcome"].clone()))
        .collect();
    attempts.sort();
    assert_eq!(
        attempts,
        [
            ("1".to_owned(), "failed".to_owned()),
            ("2".to_owned(), "failed".to_owned()),
            ("3".to_owned(), "succeeded".to_owned()),
        ]
    );
}
