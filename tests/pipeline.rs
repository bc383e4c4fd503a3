//! End to end through a real server on 127.0.0.1: the early checks, the
//! bounded body, verification, parsing, and what the handler receives. Each
//! test asserts the status, whether the handler ran, and the store.

mod harness;

use std::time::Duration;

use harness::*;
use http::StatusCode;
use http_body_util::BodyExt as _;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;

// ---- 1. early checks, from the headers alone --------------------------------

#[tokio::test]
async fn declared_length_over_the_cap_is_413_before_any_body_is_sent() {
    let r = start().await;
    // Headers only, body never sent: the answer cannot have waited for it.
    let sig = numero_signature(b"{}");
    let head = format!(
        "POST /numero HTTP/1.1\r\nhost: x\r\nx-webhook-signature: {sig}\r\ncontent-length: 1000000000\r\n\r\n"
    );
    let (status, text) = raw(r.addr, head.as_bytes()).await;
    assert_eq!(status, 413, "{text}");
    assert!(text.contains(r#"{"error":"body_too_large"}"#), "{text}");
    assert_eq!(r.seen.runs(), 0);
    assert!(r.store.is_empty());
}

#[tokio::test]
async fn missing_signature_is_401_before_any_body_is_sent() {
    let r = start().await;
    let head = "POST /numero HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n";
    let (status, text) = raw(r.addr, head.as_bytes()).await;
    assert_eq!(status, 401, "{text}");
    assert!(text.contains(r#"{"error":"missing_signature"}"#), "{text}");
    assert_eq!(r.seen.runs(), 0);
}

#[tokio::test]
async fn repeated_signature_header_is_401_even_when_both_are_valid() {
    let r = start().await;
    let body = numero_body("evt_rep");
    let sig = numero_signature(body.as_bytes());
    let request = format!(
        "POST /numero HTTP/1.1\r\nhost: x\r\nx-webhook-signature: {sig}\r\nx-webhook-signature: {sig}\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let (status, text) = raw(r.addr, request.as_bytes()).await;
    assert_eq!(status, 401, "{text}");
    assert!(text.contains("repeated_signature"), "{text}");
    assert_eq!(r.seen.runs(), 0);
    assert_eq!(r.numero_state("evt_rep"), None);
}

#[tokio::test]
async fn values_not_exactly_in_the_format_are_401() {
    let r = start().await;
    let body = numberotp_body("act_fmt", "111111");
    let good = numberotp_signature(body.as_bytes());
    let hex = good.trim_start_matches("sha256=");
    for bad in [
        hex.to_owned(),                     // no prefix
        format!("sha1={hex}"),              // wrong algorithm
        format!("sha256={}", &hex[..32]),   // truncated (16 bytes)
        format!("sha256={hex}00"),          // overlong
        format!("sha256= {hex}"),           // inner whitespace
        "sha256=".to_owned(),               // prefix only
        format!("sha256={}zz", &hex[..62]), // not hex
    ] {
        let reply = post(
            &r.url("/numberotp"),
            &[("x-numberotp-signature", &bad)],
            body.clone(),
        )
        .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{bad}");
        assert_eq!(reply.error(), "malformed_signature", "{bad}");
    }
    // Upper-case hex is the same tag.
    let upper = format!("sha256={}", hex.to_uppercase());
    let reply = post(
        &r.url("/numberotp"),
        &[("x-numberotp-signature", &upper)],
        body,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(r.seen.runs(), 1);
}

// ---- 2. the bounded body ----------------------------------------------------

/// A Numero event padded to exactly `len` bytes of JSON.
fn padded_numero(id: &str, len: usize) -> String {
    let base = format!(r#"{{"id":"{id}","event":"X","pad":""}}"#);
    let pad = "p".repeat(len - base.len());
    format!(r#"{{"id":"{id}","event":"X","pad":"{pad}"}}"#)
}

#[tokio::test]
async fn a_body_exactly_at_the_cap_passes_and_one_byte_over_is_413() {
    let r = start_with(Settings {
        max_body_bytes: 1000,
        ..Settings::default()
    })
    .await;
    let at_cap = padded_numero("evt_cap", 1000);
    assert_eq!(deliver_numero(&r, &at_cap).await.status, StatusCode::OK);
    let over = padded_numero("evt_over", 1001);
    let reply = deliver_numero(&r, &over).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.seen.runs(), 1);
    assert_eq!(r.numero_state("evt_over"), None);
}

#[tokio::test]
async fn a_chunked_body_over_the_cap_is_413_without_content_length() {
    let r = start_with(Settings {
        max_body_bytes: 1000,
        ..Settings::default()
    })
    .await;
    let body = padded_numero("evt_chunked", 5000);
    let sig = numero_signature(body.as_bytes());
    // A streamed body: hyper sends it chunked, with no Content-Length.
    let frames = Frames::new(body.as_bytes().chunks(700));
    let client = Client::builder(TokioExecutor::new()).build_http();
    let request = http::Request::post(r.url("/numero"))
        .header("x-webhook-signature", sig)
        .body(frames)
        .unwrap();
    assert!(request.headers().get("content-length").is_none());
    let response = tokio::time::timeout(PATIENCE, client.request(request))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let text = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&text[..], br#"{"error":"body_too_large"}"#);
    assert_eq!(r.seen.runs(), 0);
    assert_eq!(r.numero_state("evt_chunked"), None);
}

#[tokio::test]
async fn a_chunked_body_under_the_cap_in_many_frames_verifies() {
    let r = start().await;
    let body = numero_body("evt_frames");
    let sig = numero_signature(body.as_bytes());
    // Raw chunked encoding, three chunks, to exercise the multi-frame copy.
    let (a, rest) = body.split_at(10);
    let (b, c) = rest.split_at(20);
    let mut request = format!(
        "POST /numero HTTP/1.1\r\nhost: x\r\nx-webhook-signature: {sig}\r\n\
         transfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    );
    for part in [a, b, c] {
        request.push_str(&format!("{:x}\r\n{part}\r\n", part.len()));
    }
    request.push_str("0\r\n\r\n");
    let (status, text) = raw(r.addr, request.as_bytes()).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(r.seen.runs(), 1);
    assert_eq!(r.seen.bodies.lock().unwrap()[0], body.as_bytes());
    assert_eq!(r.numero_state("evt_frames"), Some(true));
}

#[tokio::test]
async fn a_body_cut_short_is_400_and_nothing_is_recorded() {
    let r = start().await;
    let body = numero_body("evt_cut");
    let sig = numero_signature(body.as_bytes());
    let head = format!(
        "POST /numero HTTP/1.1\r\nhost: x\r\nx-webhook-signature: {sig}\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    let mut stream = TcpStream::connect(r.addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body.as_bytes()[..10]).await.unwrap();
    // The sender stops sending: the body can never complete.
    stream.shutdown().await.unwrap();
    let (status, text) = read_response(&mut stream).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("body_unreadable"), "{text}");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(r.seen.runs(), 0);
    assert_eq!(r.numero_state("evt_cut"), None);
}

// ---- 3. verification ---------------------------------------------------------

#[tokio::test]
async fn a_tampered_body_is_401_and_never_reaches_the_handler() {
    let r = start().await;
    let body = numero_body("evt_tamper");
    let sig = numero_signature(body.as_bytes());
    let tampered = body.replace("1000.0", "9000.0");
    let reply = post(
        &r.url("/numero"),
        &[("x-webhook-signature", &sig)],
        tampered,
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.error(), "signature_mismatch");
    // Nothing about the expected tag leaks.
    assert_eq!(reply.text(), r#"{"error":"signature_mismatch"}"#);
    assert_eq!(r.seen.runs(), 0);
    assert_eq!(r.numero_state("evt_tamper"), None);
}

#[tokio::test]
async fn numero_accepts_base64_and_hex_of_either_case() {
    let r = start().await;
    for (i, format) in ["base64", "hex", "HEX"].into_iter().enumerate() {
        let body = numero_body(&format!("evt_fmt_{i}"));
        let tag = tower_webhook::sign::tag(NUMERO_SECRET.as_bytes(), body.as_bytes());
        let sig = match format {
            "base64" => tag.to_base64(),
            "hex" => tag.to_hex(),
            _ => tag.to_hex().to_uppercase(),
        };
        let reply = post(&r.url("/numero"), &[("x-webhook-signature", &sig)], body).await;
        assert_eq!(reply.status, StatusCode::OK, "{format}");
    }
    assert_eq!(r.seen.runs(), 3);
}

#[tokio::test]
async fn rotation_old_and_new_secrets_both_verify() {
    const OLD: &str = "whsec_old_0123456789abcdef";
    let r = start_with(Settings {
        numero_secrets: vec![NUMERO_SECRET, OLD],
        ..Settings::default()
    })
    .await;
    let body = numero_body("evt_new_secret");
    assert_eq!(deliver_numero(&r, &body).await.status, StatusCode::OK);
    let body = numero_body("evt_old_secret");
    let sig = tower_webhook::numero::sign(OLD.as_bytes(), body.as_bytes());
    let reply = post(&r.url("/numero"), &[("x-webhook-signature", &sig)], body).await;
    assert_eq!(reply.status, StatusCode::OK);
    // A secret that is not (or no longer) configured.
    let body = numero_body("evt_retired_secret");
    let sig = tower_webhook::numero::sign(b"whsec_retired", body.as_bytes());
    let reply = post(&r.url("/numero"), &[("x-webhook-signature", &sig)], body).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.seen.runs(), 2);
    assert_eq!(r.numero_state("evt_retired_secret"), None);
}

// ---- 4. parsing the verified bytes --------------------------------------------

#[tokio::test]
async fn verified_bodies_that_are_no_event_are_400_and_unrecorded() {
    let r = start().await;
    let long_id = "x".repeat(256);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"not json at all".to_vec(), "invalid_json"),
        (b"{\"id\":\"evt_\xff\"}".to_vec(), "not_utf8"),
        (
            br#"{"event":"TRANSFER_NOTIFICATION"}"#.to_vec(),
            "missing_id",
        ),
        (br#"{"id":"evt_a","Id":"evt_a"}"#.to_vec(), "ambiguous_id"),
        (br#"{"id":"evt_a","id":"evt_b"}"#.to_vec(), "ambiguous_id"),
        (br#"{"id":42}"#.to_vec(), "invalid_id"),
        (
            format!(r#"{{"id":"{long_id}"}}"#).into_bytes(),
            "invalid_id",
        ),
        (br#"["evt_a"]"#.to_vec(), "invalid_payload"),
    ];
    for (body, reason) in cases {
        let sig = numero_signature(&body);
        let reply = post(&r.url("/numero"), &[("x-webhook-signature", &sig)], body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{reason}");
        assert_eq!(reply.error(), reason);
    }
    assert_eq!(r.seen.runs(), 0);
    assert!(r.store.is_empty(), "{:?}", r.store);
    // 255 bytes is the longest id accepted.
    let body = format!(r#"{{"id":"{}"}}"#, "y".repeat(255));
    assert_eq!(deliver_numero(&r, &body).await.status, StatusCode::OK);
}

#[tokio::test]
async fn ids_compare_by_their_decoded_value() {
    let r = start().await;
    assert_eq!(
        deliver_numero(&r, r#"{"id":"evt"}"#).await.status,
        StatusCode::OK
    );
    let escaped = deliver_numero(&r, r#"{"id":"\u0065vt"}"#).await;
    assert_eq!(escaped.text(), r#"{"status":"duplicate"}"#);
    assert_eq!(r.seen.runs(), 1);
}

#[tokio::test]
async fn an_unsigned_id_header_that_disagrees_is_400_and_never_the_key() {
    let r = start().await;
    let body = numero_body("evt_signed");
    let sig = numero_signature(body.as_bytes());
    let reply = post(
        &r.url("/numero"),
        &[("x-webhook-signature", &sig), ("x-webhook-id", "evt_other")],
        body.clone(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.error(), "header_mismatch");
    assert_eq!(r.seen.runs(), 0);
    assert!(r.store.is_empty());
    // Agreeing headers pass, and the key is the body's id.
    let reply = post(
        &r.url("/numero"),
        &[
            ("x-webhook-signature", &sig),
            ("x-webhook-id", "evt_signed"),
            ("x-webhook-event", "TRANSFER_NOTIFICATION"),
        ],
        body,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(r.numero_state("evt_signed"), Some(true));
}

#[tokio::test]
async fn an_unknown_numero_event_type_is_delivered() {
    let r = start().await;
    let body = r#"{"Id":"evt_new_kind","Event":"REFUND_NOTIFICATION","Data":{"x":1}}"#;
    assert_eq!(deliver_numero(&r, body).await.status, StatusCode::OK);
    assert_eq!(r.seen.ids.lock().unwrap().as_slice(), ["evt_new_kind"]);
}

// ---- 7. what the handler receives ----------------------------------------------

#[tokio::test]
async fn the_handler_gets_original_headers_raw_body_and_typed_event() {
    let r = start().await;
    // Whitespace and key order a re-serialiser would change.
    let body = "{ \"status\":\"received\",\n  \"otp\":\"482910\", \"id\":\"act_8f7d98x\" }";
    let sig = numberotp_signature(body.as_bytes());
    let reply = post(
        &r.url("/numberotp"),
        &[("x-numberotp-signature", &sig), ("x-probe", "kept")],
        body.to_owned(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(r.seen.ids.lock().unwrap().as_slice(), ["act_8f7d98x"]);
    assert_eq!(r.seen.bodies.lock().unwrap()[0], body.as_bytes());
    assert_eq!(r.seen.probe_headers.lock().unwrap().as_slice(), ["kept"]);
}

#[tokio::test]
async fn the_extractor_without_the_layer_is_a_500_naming_the_layer() {
    let r = start().await;
    let reply = post(&r.url("/unlayered"), &[], "{}").await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(reply.text().contains("WebhookLayer"), "{}", reply.text());
}

#[tokio::test]
async fn other_methods_on_a_webhook_route_are_405_with_route_layer() {
    let r = start().await;
    let (status, text) = raw(
        r.addr,
        b"GET /numero HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 405, "{text}");
    assert_eq!(r.seen.runs(), 0);
}

#[tokio::test]
async fn the_handler_can_read_the_event_id_deduplication_keyed_on() {
    use axum::{Router, routing};
    use tower_webhook::numberotp::{NumberOtp, NumberOtpEvent};
    use tower_webhook::{Verified, WebhookLayer};
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let layer = WebhookLayer::new(NumberOtp, NUMBEROTP_SECRET).unwrap();
    let app = Router::new().route(
        "/numberotp",
        routing::post(
            move |Verified { event, id, .. }: Verified<NumberOtpEvent>| async move {
                tx.send((id.as_str().to_owned(), event.id.to_string()))
                    .unwrap();
            },
        )
        .route_layer(layer),
    );
    let addr = serve(app).await;
    let body = numberotp_body("act_9", "424242");
    let sig = numberotp_signature(body.as_bytes());
    let url = format!("http://{addr}/numberotp");
    let reply = post(&url, &[("x-numberotp-signature", &sig)], body).await;
    assert_eq!(reply.status, StatusCode::OK);
    let (id, activation) = rx.recv().await.unwrap();
    let key_id = numberotp_key_id("act_9", "received", "424242", "Your code is 424242.");
    assert_eq!(id, key_id.as_str());
    assert!(id.starts_with("5:act_98:received6:42424264:"), "{id}");
    assert_eq!(activation, "act_9");
}
