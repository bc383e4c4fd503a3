//! End to end through a real server on 127.0.0.1: claiming, completing and
//! releasing. Each test asserts the status, how often the handler ran, and
//! what the store holds.

mod harness;

use std::sync::Arc;
use std::time::Duration;

use harness::*;
use http::StatusCode;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tower_webhook::store::{Claim, IdempotencyStore as _};
use tower_webhook::{EventId, IdempotencyKey, MemoryStore};

fn hold() -> (Mode, Arc<Notify>, Arc<Notify>) {
    let started = Arc::new(Notify::new());
    let release = Arc::new(Notify::new());
    let mode = Mode::Hold {
        started: started.clone(),
        release: release.clone(),
    };
    (mode, started, release)
}

/// Sends a signed Numero delivery from a task of its own.
fn in_background(r: &Receiver, body: &str) -> tokio::task::JoinHandle<Reply> {
    let (url, body) = (r.url("/numero"), body.to_owned());
    let sig = numero_signature(body.as_bytes());
    tokio::spawn(async move { post(&url, &[("x-webhook-signature", &sig)], body).await })
}

async fn within<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(PATIENCE, f).await.expect("timed out")
}

#[tokio::test]
async fn a_processed_event_is_answered_duplicate_without_the_handler() {
    let r = start().await;
    let body = numero_body("evt_dup");
    let first = deliver_numero(&r, &body).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(r.numero_state("evt_dup"), Some(true));
    for _ in 0..3 {
        let again = deliver_numero(&r, &body).await;
        assert_eq!(again.status, StatusCode::OK);
        assert_eq!(again.text(), r#"{"status":"duplicate"}"#);
    }
    assert_eq!(r.seen.runs(), 1);
}

#[tokio::test]
async fn numberotp_second_code_runs_again_and_a_redelivery_does_not() {
    let r = start().await;
    let deliver = |otp: &'static str| {
        let body = numberotp_body("act_1", otp);
        let sig = numberotp_signature(body.as_bytes());
        let url = r.url("/numberotp");
        async move { post(&url, &[("x-numberotp-signature", &sig)], body).await }
    };
    assert_eq!(deliver("111111").await.text(), "");
    assert_eq!(deliver("111111").await.text(), r#"{"status":"duplicate"}"#);
    assert_eq!(deliver("222222").await.status, StatusCode::OK);
    assert_eq!(r.seen.runs(), 2);
}

/// Two SMSes on one activation are two events, though NumberOTP sends no
/// event id: without a code extracted (`otp: null`), or with the same code
/// in a new text, each runs the handler; an exact redelivery of either is
/// still a duplicate.
#[tokio::test]
async fn numberotp_two_texts_on_one_activation_both_run() {
    let r = start().await;
    let deliver = |body: String| {
        let sig = numberotp_signature(body.as_bytes());
        let url = r.url("/numberotp");
        async move { post(&url, &[("x-numberotp-signature", &sig)], body).await }
    };
    let sms = |otp: &str, text: &str| {
        format!(
            r#"{{"id":"act_2","phone_number":"14155552671","service":"wa","country":"67","otp":{otp},"full_sms":"{text}","status":"received"}}"#
        )
    };
    let bodies = [
        sms("null", "Your account is being verified."),
        sms("null", "Tap the link to finish signing in."),
        sms(r#""482910""#, "Your WhatsApp code is 482910."),
        sms(r#""482910""#, "Reminder: your WhatsApp code is 482910."),
    ];
    for (ran, body) in bodies.iter().enumerate() {
        let reply = deliver(body.clone()).await;
        assert_eq!((reply.status, reply.text()), (StatusCode::OK, ""), "{body}");
        assert_eq!(r.seen.runs(), ran + 1, "{body}");
    }
    for body in &bodies {
        let again = deliver(body.clone()).await;
        assert_eq!(again.status, StatusCode::OK);
        assert_eq!(again.text(), r#"{"status":"duplicate"}"#, "{body}");
    }
    assert_eq!(r.seen.runs(), bodies.len());
}

#[tokio::test]
async fn equal_ids_from_two_providers_do_not_collide() {
    let r = start().await;
    assert_eq!(deliver_numero(&r, &numero_body("same")).await.text(), "");
    let body = numberotp_body("same", "123456");
    let sig = numberotp_signature(body.as_bytes());
    let reply = post(
        &r.url("/numberotp"),
        &[("x-numberotp-signature", &sig)],
        body,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), "", "not a duplicate of the Numero event");
    assert_eq!(r.seen.runs(), 2);
}

#[tokio::test]
async fn a_copy_arriving_while_the_first_runs_is_409_with_retry_after() {
    let r = start().await;
    let (mode, started, release) = hold();
    r.seen.set(mode);
    let body = numero_body("evt_inflight");
    let first = in_background(&r, &body);
    within(started.notified()).await;
    assert_eq!(r.numero_state("evt_inflight"), Some(false));
    let second = deliver_numero(&r, &body).await;
    assert_eq!(second.status, StatusCode::CONFLICT);
    assert_eq!(second.headers["retry-after"], "7");
    assert_eq!(second.error(), "in_flight");
    release.notify_one();
    assert_eq!(within(first).await.unwrap().status, StatusCode::OK);
    assert_eq!(r.seen.runs(), 1);
    assert_eq!(r.numero_state("evt_inflight"), Some(true));
}

#[tokio::test]
async fn fifty_concurrent_copies_run_the_handler_exactly_once() {
    let r = start().await;
    let body = numero_body("evt_fifty");
    let sig = numero_signature(body.as_bytes());
    let go = Arc::new(tokio::sync::Barrier::new(50));
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (url, body, sig, go) = (r.url("/numero"), body.clone(), sig.clone(), go.clone());
            tokio::spawn(async move {
                // One client (one connection) per copy, all sent together.
                let client = client();
                go.wait().await;
                post_with(&client, &url, &[("x-webhook-signature", &sig)], body).await
            })
        })
        .collect();
    let mut processed = 0;
    for task in tasks {
        let reply = within(task).await.unwrap();
        match (reply.status, reply.text()) {
            (StatusCode::OK, "") => processed += 1,
            (StatusCode::OK, r#"{"status":"duplicate"}"#) | (StatusCode::CONFLICT, _) => {}
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert_eq!(processed, 1);
    assert_eq!(r.seen.runs(), 1);
    assert_eq!(r.numero_state("evt_fifty"), Some(true));
}

#[tokio::test]
async fn a_handler_answering_500_releases_the_claim_so_the_retry_runs() {
    let r = start().await;
    r.seen.set(Mode::Status(StatusCode::INTERNAL_SERVER_ERROR));
    let body = numero_body("evt_500");
    let failed = deliver_numero(&r, &body).await;
    assert_eq!(failed.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(r.numero_state("evt_500"), None);
    r.seen.set(Mode::Ok);
    let retry = deliver_numero(&r, &body).await;
    assert_eq!((retry.status, retry.text()), (StatusCode::OK, ""));
    assert_eq!(r.seen.runs(), 2);
    assert_eq!(r.numero_state("evt_500"), Some(true));
}

#[tokio::test]
async fn a_client_that_disconnects_mid_handler_releases_the_claim() {
    let r = start().await;
    let (mode, started, _release) = hold();
    r.seen.set(mode);
    let body = numero_body("evt_gone");
    let sig = numero_signature(body.as_bytes());
    let request = format!(
        "POST /numero HTTP/1.1\r\nhost: x\r\nx-webhook-signature: {sig}\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut stream = TcpStream::connect(r.addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    within(started.notified()).await;
    assert_eq!(r.numero_state("evt_gone"), Some(false));
    drop(stream); // the client goes away while the handler runs
    r.wait_numero_state("evt_gone", None).await;
    r.seen.set(Mode::Ok);
    let retry = deliver_numero(&r, &body).await;
    assert_eq!((retry.status, retry.text()), (StatusCode::OK, ""));
    assert_eq!(r.seen.runs(), 2);
    assert_eq!(r.numero_state("evt_gone"), Some(true));
}

#[tokio::test]
async fn a_panicking_handler_behind_catch_panic_is_a_500_and_released() {
    let r = start().await;
    r.seen.set(Mode::Panic);
    let body = numero_body("evt_panic_caught");
    let sig = numero_signature(body.as_bytes());
    let url = r.url("/numero/caught");
    let reply = post(&url, &[("x-webhook-signature", &sig)], body.clone()).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(r.numero_state("evt_panic_caught"), None);
    r.seen.set(Mode::Ok);
    let retry = post(&url, &[("x-webhook-signature", &sig)], body).await;
    assert_eq!((retry.status, retry.text()), (StatusCode::OK, ""));
    assert_eq!(r.seen.runs(), 2);
}

#[tokio::test]
async fn a_panic_unwinding_through_the_layer_releases_the_claim() {
    let r = start().await;
    r.seen.set(Mode::Panic);
    let body = numero_body("evt_panic_raw");
    let sig = numero_signature(body.as_bytes());
    let request = format!(
        "POST /numero HTTP/1.1\r\nhost: x\r\nx-webhook-signature: {sig}\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    // No catch-panic layer: the connection dies with the panic.
    let (status, _) = raw(r.addr, request.as_bytes()).await;
    assert_eq!(status, 0, "no response: the connection task panicked");
    r.wait_numero_state("evt_panic_raw", None).await;
    r.seen.set(Mode::Ok);
    let retry = deliver_numero(&r, &body).await;
    assert_eq!((retry.status, retry.text()), (StatusCode::OK, ""));
    assert_eq!(r.seen.runs(), 2);
}

#[tokio::test]
async fn an_unavailable_store_is_503_with_retry_after_and_nothing_runs() {
    // A memory store bounded at one key, held in flight: it cannot take a
    // second claim, so it answers with an error, as an unreachable store does.
    let r = start_with(Settings {
        store: MemoryStore::with_max_keys(1),
        ..Settings::default()
    })
    .await;
    let (mode, started, release) = hold();
    r.seen.set(mode);
    let holder = in_background(&r, &numero_body("evt_holder"));
    within(started.notified()).await;
    let reply = deliver_numero(&r, &numero_body("evt_refused")).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.headers["retry-after"], "7");
    assert_eq!(reply.error(), "store_unavailable");
    assert_eq!(r.seen.runs(), 1, "only the holder ran");
    assert_eq!(r.numero_state("evt_refused"), None);
    release.notify_one();
    assert_eq!(within(holder).await.unwrap().status, StatusCode::OK);
    // With room again (the completed key is evictable), the retry runs.
    r.seen.set(Mode::Ok);
    let retry = deliver_numero(&r, &numero_body("evt_refused")).await;
    assert_eq!((retry.status, retry.text()), (StatusCode::OK, ""));
}

/// A Numero body with no signed time, which the replay window cannot check.
fn undated(id: &str) -> String {
    format!(r#"{{"id":"{id}","event":"TRANSFER_NOTIFICATION","data":{{}}}}"#)
}

#[tokio::test]
async fn done_expires_after_its_ttl_and_a_lease_after_its_lease() {
    let r = start_with(Settings {
        // Long enough that a loaded CI machine still delivers the duplicate
        // within it; the sleeps below are longer still.
        done_ttl: Duration::from_millis(1000),
        lease: Duration::from_millis(1000),
        ..Settings::default()
    })
    .await;
    // Undated bodies: the replay window (the done TTL, 1 s here) cannot
    // apply, so the expired key and lease are all that decide. A dated body
    // would be refused as stale instead (tests/replay_window.rs).
    let body = &undated("evt_ttl");
    assert_eq!(deliver_numero(&r, body).await.text(), "");
    assert_eq!(
        deliver_numero(&r, body).await.text(),
        r#"{"status":"duplicate"}"#
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        deliver_numero(&r, body).await.text(),
        "",
        "TTL over: processed again"
    );
    assert_eq!(r.seen.runs(), 2);

    // A claim nobody renews (its process died mid-handler) runs out after
    // its lease and no longer blocks the event.
    let key = IdempotencyKey::new("numero", &EventId::new("evt_lease").unwrap());
    let Claim::New(dead_holder) = r
        .store
        .claim(&key, Duration::from_millis(1000))
        .await
        .unwrap()
    else {
        panic!("evt_lease is new")
    };
    assert_eq!(
        deliver_numero(&r, &undated("evt_lease")).await.status,
        StatusCode::CONFLICT
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let taken_over = deliver_numero(&r, &undated("evt_lease")).await;
    assert_eq!((taken_over.status, taken_over.text()), (StatusCode::OK, ""));
    // The dead holder's stale lease cannot undo the newer claim's record.
    r.store.release(dead_holder).await.unwrap();
    assert_eq!(r.numero_state("evt_lease"), Some(true));
    assert_eq!(r.seen.runs(), 3);
}

/// A handler slower than three leases keeps its claim: the layer renews it
/// while the handler runs, so a copy arriving after the first lease would
/// have run out is still 409 in flight, and the handler runs once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_slower_than_its_lease_keeps_its_claim() {
    let lease = Duration::from_millis(1500);
    let r = start_with(Settings {
        lease,
        ..Settings::default()
    })
    .await;
    let (mode, started, release) = hold();
    r.seen.set(mode);
    let body = numero_body("evt_slow");
    let first = in_background(&r, &body);
    within(started.notified()).await;
    // Copies after the first lease, and after the third, would have run out.
    r.seen.set(Mode::Ok);
    for wait in [lease * 3 / 2, lease * 2] {
        tokio::time::sleep(wait).await;
        let copy = deliver_numero(&r, &body).await;
        assert_eq!(copy.status, StatusCode::CONFLICT, "{}", copy.text());
        assert_eq!(copy.error(), "in_flight");
        assert_eq!(r.numero_state("evt_slow"), Some(false));
    }
    release.notify_one();
    let first = within(first).await.unwrap();
    assert_eq!((first.status, first.text()), (StatusCode::OK, ""));
    assert_eq!(r.seen.runs(), 1, "the handler ran once");
    assert_eq!(r.numero_state("evt_slow"), Some(true));
    let again = deliver_numero(&r, &body).await;
    assert_eq!(again.text(), r#"{"status":"duplicate"}"#);
    assert_eq!(r.seen.runs(), 1);
}
