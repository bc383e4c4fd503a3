//! The example receiver's admin routes (`GET /events`, `/queue`,
//! `/dead-letters`, `POST /dead-letters/replay`) and its event log, through
//! a real child process:
//!
//! * on a loopback address they are open; on any other one the receiver
//!   refuses to start without `ADMIN_TOKEN`, and with it answers them only
//!   to `Authorization: Bearer <token>` (401 otherwise);
//! * a body over the admin routes' cap is a 413;
//! * a store that fails answers `503 {"error":"store_unavailable"}`, with
//!   no detail of the store in the body;
//! * the event log keeps the ids of handler runs, not their bodies: 150
//!   one-MiB deliveries leave the resident memory about where it was.
//!
//! Every wait is bounded.

#[path = "harness/mod.rs"]
mod harness;
#[path = "support/receiver_process.rs"]
mod receiver_process;
#[path = "support/redis_server.rs"]
mod redis_server;

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use receiver_process::{ReceiverProcess, run_to_end_at};
use redis_server::RedisServer;

const TOKEN: &str = "admin-token-0123456789abcdef";
const LIMIT: Duration = Duration::from_secs(20);

fn numero_env() -> (&'static str, &'static str) {
    ("NUMERO_WEBHOOK_SECRET", harness::NUMERO_SECRET)
}

/// The admin routes: method, path, body.
const ADMIN_ROUTES: [(Method, &str, &str); 4] = [
    (Method::GET, "/events", ""),
    (Method::GET, "/queue", ""),
    (Method::GET, "/dead-letters", ""),
    (
        Method::POST,
        "/dead-letters/replay",
        r#"{"key":"numero:evt_none"}"#,
    ),
];

/// Sends `method path` with `body` and, when given, `authorization`.
async fn admin_request(
    receiver: &ReceiverProcess,
    method: &Method,
    path: &str,
    body: &str,
    authorization: Option<&str>,
) -> harness::Reply {
    let mut request = Request::builder()
        .method(method.clone())
        .uri(receiver.url(path))
        .header("content-type", "application/json");
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    let request = request
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    let response = tokio::time::timeout(LIMIT, harness::client().request(request))
        .await
        .expect("an answer in time")
        .expect("an answer");
    let (parts, body) = response.into_parts();
    harness::Reply {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes(),
    }
}

/// What a caller allowed in gets from each admin route of an inline
/// receiver: 200, and 404 from a replay of a dead letter that is not there.
fn allowed_status(path: &str) -> StatusCode {
    if path == "/dead-letters/replay" {
        StatusCode::NOT_FOUND
    } else {
        StatusCode::OK
    }
}

#[test]
fn a_non_loopback_address_without_admin_token_is_refused_at_start() {
    let (status, stderr) =
        run_to_end_at("0.0.0.0:0", &["--store", "memory"], &[numero_env()], LIMIT);
    assert!(!status.success(), "{status:?}: {stderr}");
    let lines: Vec<_> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains("ADMIN_TOKEN"), "{stderr}");

    // An empty token is no token.
    let (status, stderr) = run_to_end_at(
        "0.0.0.0:0",
        &["--store", "memory"],
        &[numero_env(), ("ADMIN_TOKEN", "")],
        LIMIT,
    );
    assert!(!status.success(), "{status:?}: {stderr}");
    assert!(stderr.contains("ADMIN_TOKEN"), "{stderr}");
}

#[tokio::test]
async fn with_admin_token_the_admin_routes_answer_only_its_bearer() {
    let receiver = ReceiverProcess::start_on(
        "0.0.0.0:0",
        &["--store", "memory"],
        &[numero_env(), ("ADMIN_TOKEN", TOKEN)],
    );
    let printed = receiver.printed().join("\n");
    assert!(printed.contains("ADMIN_TOKEN"), "{printed}");
    assert!(!printed.contains(TOKEN), "the token was printed: {printed}");

    let right = format!("Bearer {TOKEN}");
    let wrong = format!("Bearer {TOKEN}x");
    let shorter = format!("Bearer {}", &TOKEN[..TOKEN.len() - 1]);
    let basic = format!("Basic {TOKEN}");
    for (method, path, body) in &ADMIN_ROUTES {
        for refused in [
            None,
            Some(wrong.as_str()),
            Some(shorter.as_str()),
            Some(basic.as_str()),
            Some("Bearer "),
        ] {
            let reply = admin_request(&receiver, method, path, body, refused).await;
            assert_eq!(
                (reply.status, reply.text()),
                (StatusCode::UNAUTHORIZED, r#"{"error":"unauthorized"}"#),
                "{method} {path} with {refused:?}"
            );
        }
        let reply = admin_request(&receiver, method, path, body, Some(&right)).await;
        assert_eq!(
            reply.status,
            allowed_status(path),
            "{method} {path}: {reply:?}"
        );
    }

    // The webhook routes take no token: their signature is their check.
    let reply = deliver_numero(&receiver, harness::numero_body("evt_behind_token")).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    let events = admin_request(&receiver, &Method::GET, "/events", "", Some(&right)).await;
    assert!(events.text().contains("evt_behind_token"), "{events:?}");
}

#[tokio::test]
async fn on_loopback_the_admin_routes_stay_open() {
    let receiver = ReceiverProcess::start(&["--store", "memory"], &[numero_env()]);
    let printed = receiver.printed().join("\n");
    assert!(printed.contains("admin routes"), "{printed}");
    for (method, path, body) in &ADMIN_ROUTES {
        let reply = admin_request(&receiver, method, path, body, None).await;
        assert_eq!(
            reply.status,
            allowed_status(path),
            "{method} {path}: {reply:?}"
        );
    }
}

#[tokio::test]
async fn an_admin_body_over_the_cap_is_413() {
    let receiver = ReceiverProcess::start(&["--store", "memory"], &[numero_env()]);
    let key = "k".repeat(100 * 1024);
    let body = format!(r#"{{"key":"{key}"}}"#);
    let reply = admin_request(
        &receiver,
        &Method::POST,
        "/dead-letters/replay",
        &body,
        None,
    )
    .await;
    assert_eq!(
        (reply.status, reply.text()),
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            r#"{"error":"body_too_large"}"#
        )
    );
}

#[tokio::test]
async fn a_failing_store_answers_the_admin_routes_with_a_reason_code_only() {
    let mut server = RedisServer::start();
    let url = server.url();
    let receiver = ReceiverProcess::start(&["--store", &url, "--queued"], &[numero_env()]);
    let reply = admin_request(&receiver, &Method::GET, "/queue", "", None).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");

    server.stop();
    for (method, path, body) in &ADMIN_ROUTES[1..] {
        let reply = admin_request(&receiver, method, path, body, None).await;
        assert_eq!(
            (reply.status, reply.text()),
            (
                StatusCode::SERVICE_UNAVAILABLE,
                r#"{"error":"store_unavailable"}"#
            ),
            "{method} {path}"
        );
    }
    // The detail goes to the receiver's log instead.
    let deadline = std::time::Instant::now() + LIMIT;
    while !receiver
        .printed()
        .iter()
        .any(|line| line.contains("GET /queue"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no log line for the failure: {:?}",
            receiver.printed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A Numero body of event `id` of about `size` bytes.
fn numero_body_of_size(id: &str, size: usize) -> String {
    let padding = "x".repeat(size.saturating_sub(200));
    format!(
        r#"{{"id":"{id}","event":"TRANSFER_NOTIFICATION","data":{{"TrxAmount":1000.0,"Reference":"{padding}"}}}}"#
    )
}

/// Delivers `body`, signed, to the receiver's Numero route.
async fn deliver_numero(receiver: &ReceiverProcess, body: String) -> harness::Reply {
    let signature = harness::numero_signature(body.as_bytes());
    let url = receiver.url("/webhooks/numero");
    harness::post(&url, &[("x-webhook-signature", &signature)], body).await
}

#[tokio::test]
async fn the_event_log_keeps_ids_not_whole_bodies() {
    const DELIVERIES: usize = 150;
    /// How much the resident memory may grow over the deliveries.
    const GROWTH_BOUND: u64 = 60 * 1024 * 1024;
    let receiver = ReceiverProcess::start(
        &[
            "--store",
            "memory",
            "--quiet",
            "--max-body-bytes",
            "2000000",
        ],
        &[numero_env()],
    );
    const MIB: usize = 1024 * 1024;
    // A few first, so that buffers the allocator keeps for reuse are in
    // the starting figure.
    for i in 0..5 {
        let body = numero_body_of_size(&format!("evt_warm_{i}"), MIB);
        let reply = deliver_numero(&receiver, body).await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    }
    let at_start = receiver.rss().expect("/proc/<pid>/status");
    for i in 0..DELIVERIES {
        let body = numero_body_of_size(&format!("evt_large_{i}"), MIB);
        let reply = deliver_numero(&receiver, body).await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    }
    let at_end = receiver.rss().expect("/proc/<pid>/status");
    let events = admin_request(&receiver, &Method::GET, "/events", "", None).await;
    let runs: Vec<serde_json::Value> = serde_json::from_slice(&events.body).unwrap();
    assert_eq!(runs.len(), DELIVERIES + 5, "every run is listed");
    assert_eq!(
        runs[DELIVERIES + 4]["id"],
        format!("evt_large_{}", DELIVERIES - 1)
    );
    let growth = at_end.saturating_sub(at_start);
    println!(
        "{DELIVERIES} one-MiB deliveries: RSS {} MiB → {} MiB",
        at_start >> 20,
        at_end >> 20
    );
    assert!(
        growth < GROWTH_BOUND,
        "the resident memory grew by {} MiB over {DELIVERIES} one-MiB deliveries",
        growth >> 20
    );
}
