//! Hostile input: every answer the layer gives to a malformed, forged,
//! oversized, slow or otherwise adversarial delivery, each case asserting
//! what a user sees: the status, whether the handler ran, and what the store
//! holds afterwards (`MemoryStore::status` on the event's key, and
//! `is_empty` when nothing may have been recorded at all).
//!
//! Cases that need bytes no HTTP client would send (a lying
//! `Content-Length`, a repeated header, non-ASCII header bytes, a body that
//! trickles in) go through a real server on 127.0.0.1 with raw
//! `tokio::net::TcpStream` writes; the others go through the same axum
//! router with `oneshot`.

mod harness;

use harness::Frames;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::post;
use bytes::Bytes;
use http::{Request, StatusCode};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tower::{ServiceBuilder, ServiceExt as _};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};
use tower_webhook::numberotp::NumberOtp;
use tower_webhook::numero::Numero;
use tower_webhook::{EventId, IdempotencyKey, MemoryStore, Scheme, WebhookLayer};

const SECRET: &str = "whsec_hostile0123456789abcdefghij";
const OLD_SECRET: &str = "whsec_retired9876543210zyxwvutsrq";
const OTP_BODY: &str = r#"{"id":"act_1","phone_number":"14155552671","service":"wa","country":"67","otp":"111111","full_sms":"Your code is 111111.","status":"received"}"#;
const NUMERO_BODY: &str =
    r#"{"id":"evt_1","event":"TRANSFER_NOTIFICATION","data":{"TrxAmount":1000.0}}"#;
/// Every test is bounded: no single request may take longer than this.
const LIMIT: Duration = Duration::from_secs(10);

/// What a handler does when it runs.
#[derive(Clone, Copy)]
enum Handler {
    Ok,
    /// Panics on its first call, answers 200 afterwards.
    PanicsOnce,
}

/// One webhook route, its store, and how many times the handler ran.
struct Rig {
    app: Router,
    store: MemoryStore,
    calls: Arc<AtomicUsize>,
}

impl Rig {
    fn numberotp() -> Self {
        Self::new(NumberOtp, &[SECRET], Handler::Ok, usize::MAX)
    }

    fn numero() -> Self {
        Self::new(Numero, &[SECRET], Handler::Ok, usize::MAX)
    }

    fn new<Sc: Scheme>(scheme: Sc, secrets: &[&str], handler: Handler, cap: usize) -> Self {
        let store = MemoryStore::new();
        let calls = Arc::new(AtomicUsize::new(0));
        let mut builder = WebhookLayer::builder(scheme)
            .secrets(secrets.iter().copied())
            .store(store.clone());
        if cap != usize::MAX {
            builder = builder.max_body_bytes(cap);
        }
        let layer = builder.build().expect("valid secrets");
        let counter = Arc::clone(&calls);
        let handle = move || {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            async move {
                if matches!(handler, Handler::PanicsOnce) && n == 0 {
                    panic!("handler bug on the first delivery");
                }
                StatusCode::OK
            }
        };
        // The composition the README recommends: catch-panic inside the
        // webhook layer, so it sees a 500 and releases the claim.
        let route = post(handle).layer(
            ServiceBuilder::new()
                .layer(layer)
                .layer(CatchPanicLayer::new()),
        );
        Self {
            app: Router::new().route("/hook", route),
            store,
            calls,
        }
    }

    fn ran(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    async fn send(&self, request: Request<Body>) -> (StatusCode, String) {
        let response = tokio::time::timeout(LIMIT, self.app.clone().oneshot(request))
            .await
            .expect("bounded")
            .expect("infallible");
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .expect("response body");
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    /// Asserts nothing was recorded for any key.
    fn assert_untouched(&self) {
        assert!(self.store.is_empty(), "the store must hold nothing");
    }

    async fn serve(&self) -> SocketAddr {
        harness::serve(self.app.clone()).await
    }
}

fn otp_key(id: &str, status: &str, otp: &str, full_sms: &str) -> IdempotencyKey {
    let id = harness::numberotp_key_id(id, status, otp, full_sms);
    IdempotencyKey::new("numberotp", &id)
}

fn numero_key(id: &str) -> IdempotencyKey {
    IdempotencyKey::new("numero", &EventId::new(id).unwrap())
}

fn otp_request(signature: &str, body: impl Into<Bytes>) -> Request<Body> {
    Request::post("/hook")
        .header("x-numberotp-signature", signature)
        .body(Body::from(body.into()))
        .unwrap()
}

fn numero_request(signature: &str, body: impl Into<Bytes>) -> Request<Body> {
    Request::post("/hook")
        .header("x-webhook-signature", signature)
        .body(Body::from(body.into()))
        .unwrap()
}

/// A Numero delivery of `body`, correctly signed.
fn signed_numero(body: impl AsRef<[u8]>) -> Request<Body> {
    let body = Bytes::copy_from_slice(body.as_ref());
    numero_request(&numero_sig(&body), body)
}

/// A NumberOTP delivery of `body`, correctly signed.
fn signed_otp(body: impl AsRef<[u8]>) -> Request<Body> {
    let body = Bytes::copy_from_slice(body.as_ref());
    otp_request(&otp_sig(&body), body)
}

fn otp_sig(body: &[u8]) -> String {
    tower_webhook::numberotp::sign(SECRET.as_bytes(), body)
}

fn numero_sig(body: &[u8]) -> String {
    tower_webhook::numero::sign(SECRET.as_bytes(), body)
}

/// Asserts the layer refused `request` with `status` and `reason`, the
/// handler did not run, and the store holds nothing.
async fn assert_refused(rig: &Rig, request: Request<Body>, status: StatusCode, reason: &str) {
    let (got, body) = rig.send(request).await;
    assert_eq!((got, body), (status, format!(r#"{{"error":"{reason}"}}"#)));
    assert_eq!(rig.ran(), 0);
    rig.assert_untouched();
}

async fn assert_401(rig: &Rig, request: Request<Body>, reason: &str) {
    assert_refused(rig, request, StatusCode::UNAUTHORIZED, reason).await;
}

async fn assert_400(rig: &Rig, request: Request<Body>, reason: &str) {
    assert_refused(rig, request, StatusCode::BAD_REQUEST, reason).await;
}

/// Asserts the handler ran once and the key is done.
async fn assert_processed(rig: &Rig, request: Request<Body>, key: &IdempotencyKey) {
    let (status, body) = rig.send(request).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(rig.ran(), 1);
    assert_eq!(rig.store.status(key), Some(true), "done");
}

// --- the signature header ---------------------------------------------------

#[tokio::test]
async fn empty_signature_value_is_401() {
    let rig = Rig::numberotp();
    assert_401(&rig, otp_request("", OTP_BODY), "malformed_signature").await;
}

#[tokio::test]
async fn prefix_only_tag_is_401() {
    let rig = Rig::numberotp();
    assert_401(
        &rig,
        otp_request("sha256=", OTP_BODY),
        "malformed_signature",
    )
    .await;
}

#[tokio::test]
async fn truncated_tag_is_401() {
    let rig = Rig::numberotp();
    let good = otp_sig(OTP_BODY.as_bytes());
    // One hex digit short, and the 16-byte truncation RFC 4231 case 5 uses.
    assert_401(
        &rig,
        otp_request(&good[..good.len() - 1], OTP_BODY),
        "malformed_signature",
    )
    .await;
    assert_401(
        &rig,
        otp_request(&good[..7 + 32], OTP_BODY),
        "malformed_signature",
    )
    .await;
}

#[tokio::test]
async fn overlong_tag_is_401() {
    let rig = Rig::numberotp();
    let good = otp_sig(OTP_BODY.as_bytes());
    assert_401(
        &rig,
        otp_request(&format!("{good}0"), OTP_BODY),
        "malformed_signature",
    )
    .await;
    assert_401(
        &rig,
        otp_request(&format!("{good}{}", &good[7..]), OTP_BODY),
        "malformed_signature",
    )
    .await;
}

#[tokio::test]
async fn wrong_algorithm_prefix_is_401() {
    let rig = Rig::numberotp();
    let hex = &otp_sig(OTP_BODY.as_bytes())[7..];
    for prefix in ["sha1=", "SHA256=", "sha512=", "", "sha256:"] {
        let value = format!("{prefix}{hex}");
        assert_401(&rig, otp_request(&value, OTP_BODY), "malformed_signature").await;
    }
}

#[tokio::test]
async fn non_hex_digits_are_401() {
    let rig = Rig::numberotp();
    let good = otp_sig(OTP_BODY.as_bytes());
    let bad = format!("{}zz", &good[..good.len() - 2]);
    assert_401(&rig, otp_request(&bad, OTP_BODY), "malformed_signature").await;
}

#[tokio::test]
async fn whitespace_inside_the_value_is_401() {
    let rig = Rig::numberotp();
    let good = otp_sig(OTP_BODY.as_bytes());
    let spaced = format!("sha256= {}", &good[7..]);
    assert_401(&rig, otp_request(&spaced, OTP_BODY), "malformed_signature").await;
    let split = format!("{} {}", &good[..20], &good[20..]);
    assert_401(&rig, otp_request(&split, OTP_BODY), "malformed_signature").await;
}

#[tokio::test]
async fn whitespace_kept_around_the_value_is_401() {
    // A value that reaches the layer with whitespace around it (built in
    // code, or passed on by a proxy) is not in the exact format: refused.
    // Over the wire HTTP itself strips it: see
    // `whitespace_around_the_value_on_the_wire_is_stripped_by_http`.
    let rig = Rig::numberotp();
    let good = otp_sig(OTP_BODY.as_bytes());
    assert_401(
        &rig,
        otp_request(&format!(" {good}\t"), OTP_BODY),
        "malformed_signature",
    )
    .await;
}

#[tokio::test]
async fn signature_in_another_schemes_header_is_401() {
    let rig = Rig::numberotp();
    let request = Request::post("/hook")
        .header("x-webhook-signature", otp_sig(OTP_BODY.as_bytes()))
        .body(Body::from(OTP_BODY))
        .unwrap();
    assert_401(&rig, request, "missing_signature").await;
}

#[tokio::test]
async fn another_schemes_encoding_is_401() {
    // Numero's base64 for the right tag is not NumberOTP's format.
    let rig = Rig::numberotp();
    let base64 = numero_sig(OTP_BODY.as_bytes());
    assert_401(&rig, otp_request(&base64, OTP_BODY), "malformed_signature").await;
}

#[tokio::test]
async fn non_canonical_unpadded_and_url_safe_base64_are_401() {
    let rig = Rig::numero();
    // A tag whose base64 holds both `+` and `/`, so the URL-safe alphabet
    // differs from the standard one.
    let body = (0..)
        .map(|n| format!(r#"{{"id":"evt_{n}"}}"#))
        .find(|b| {
            let s = numero_sig(b.as_bytes());
            s.contains('+') && s.contains('/')
        })
        .unwrap();
    let good = numero_sig(body.as_bytes());
    let mut bent = good.clone().into_bytes();
    // The last symbol before `=` carries 2 unused bits; setting one gives
    // the same bytes in a non-canonical spelling.
    let last = &mut bent[42];
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let index = alphabet.iter().position(|c| c == last).unwrap();
    *last = alphabet[index | 1];
    let bent = String::from_utf8(bent).unwrap();
    let url_safe = good.replace('+', "-").replace('/', "_");
    for value in [bent.as_str(), &good[..43], &url_safe, &format!("{good}=")] {
        assert_401(
            &rig,
            numero_request(value, body.clone()),
            "malformed_signature",
        )
        .await;
    }
}

#[tokio::test]
async fn upper_and_mixed_case_hex_verify() {
    // Deliberate: hex is case-insensitive, as both providers' formats allow.
    let rig = Rig::numberotp();
    let good = otp_sig(OTP_BODY.as_bytes());
    let upper = format!("sha256={}", good[7..].to_uppercase());
    assert_processed(
        &rig,
        otp_request(&upper, OTP_BODY),
        &otp_key("act_1", "received", "111111", "Your code is 111111."),
    )
    .await;
}

// --- the body ---------------------------------------------------------------

#[tokio::test]
async fn one_byte_body_change_is_401() {
    let rig = Rig::numberotp();
    let signature = otp_sig(OTP_BODY.as_bytes());
    let forged = OTP_BODY.replace("111111", "111112");
    assert_401(&rig, otp_request(&signature, forged), "signature_mismatch").await;
}

#[tokio::test]
async fn crlf_is_not_lf() {
    // The tag covers the bytes as sent: a body signed with LF line ends and
    // delivered with CRLF (a proxy rewriting line ends) does not verify.
    let lf = "{\n  \"id\": \"evt_1\",\n  \"event\": \"X\"\n}";
    let crlf = lf.replace('\n', "\r\n");
    let rig = Rig::numero();
    assert_401(
        &rig,
        numero_request(&numero_sig(lf.as_bytes()), crlf.clone()),
        "signature_mismatch",
    )
    .await;
    // Signed as sent, CRLF is fine: whitespace is JSON whitespace.
    assert_processed(&rig, signed_numero(crlf), &numero_key("evt_1")).await;
}

#[tokio::test]
async fn reserialised_json_does_not_verify() {
    // NumberOTP's own Node example hashes JSON.stringify(parsed body): the
    // layer hashes the bytes that arrived, so a re-serialised body (other
    // key order, other spacing) is a different message.
    let rig = Rig::numberotp();
    let signature = otp_sig(OTP_BODY.as_bytes());
    let value: serde_json::Value = serde_json::from_str(OTP_BODY).unwrap();
    let pretty = serde_json::to_string_pretty(&value).unwrap();
    assert_401(&rig, otp_request(&signature, pretty), "signature_mismatch").await;
}

#[tokio::test]
async fn verified_empty_body_is_400() {
    let rig = Rig::numero();
    assert_400(&rig, numero_request(&numero_sig(b""), ""), "invalid_json").await;
}

#[tokio::test]
async fn verified_non_json_body_is_400() {
    let rig = Rig::numero();
    let body = "id=evt_1&event=X";
    assert_400(&rig, signed_numero(body), "invalid_json").await;
}

#[tokio::test]
async fn verified_non_utf8_body_is_400() {
    let rig = Rig::numero();
    let body: &[u8] = b"{\"id\":\"evt_\xff\"}";
    assert_400(&rig, signed_numero(body), "not_utf8").await;
}

#[tokio::test]
async fn verified_bom_prefixed_body_is_400() {
    // Deliberate: RFC 8259 §8.1 forbids a BOM in networked JSON; the layer
    // refuses it rather than strip bytes the sender signed.
    let rig = Rig::numero();
    let body = format!("\u{feff}{NUMERO_BODY}");
    assert_400(&rig, signed_numero(body), "invalid_json").await;
}

#[tokio::test]
async fn verified_10000_deep_nesting_never_overflows_the_stack() {
    // Deliberate: the layer reads only the fields it needs. A field it does
    // not read is skipped by serde_json without recursion (constant stack),
    // so deep nesting there is valid JSON and the event is processed; the
    // handler gets the raw bytes and its own parser's limits. The test
    // thread keeps its default stack.
    let rig = Rig::numero();
    let deep = format!(
        r#"{{"id":"evt_1","extra":{}{}}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    assert_processed(&rig, signed_numero(deep), &numero_key("evt_1")).await;

    // A field the layer types (`data`) is parsed with serde_json's
    // recursion limit (128): refused, nothing recorded for its key.
    let rig = Rig::numero();
    let deep_data = format!(
        r#"{{"id":"evt_2","data":{}1{}}}"#,
        r#"{"a":"#.repeat(10_000),
        "}".repeat(10_000)
    );
    assert_400(&rig, signed_numero(deep_data), "invalid_payload").await;
    // NumberOTP's fields are text: a nested value in one is refused.
    let rig = Rig::numberotp();
    let deep_otp = format!(
        r#"{{"id":"act_1","otp":{}{}}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    assert_400(&rig, signed_otp(deep_otp), "invalid_payload").await;
    // Nested at the top: not an object, refused at its first byte.
    let rig = Rig::numero();
    let top = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    assert_400(&rig, signed_numero(top), "invalid_payload").await;
}

#[tokio::test]
async fn numeric_id_is_400_string_id_is_processed() {
    // Deliberate: an id is a string. `12` and `12.0` and `1.2e1` are one
    // number in JSON but three texts; refusing numbers keeps keys exact.
    let rig = Rig::numero();
    let numeric = r#"{"id":12,"event":"X"}"#;
    assert_400(&rig, signed_numero(numeric), "invalid_id").await;
    let text = r#"{"id":"12","event":"X"}"#;
    assert_processed(&rig, signed_numero(text), &numero_key("12")).await;
}

#[tokio::test]
async fn numeric_numberotp_activation_id_is_400() {
    let rig = Rig::numberotp();
    let body = r#"{"id":8123,"otp":"1","status":"received"}"#;
    assert_400(&rig, signed_otp(body), "invalid_id").await;
}

#[tokio::test]
async fn over_long_id_is_400_and_the_longest_accepted_is_processed() {
    let rig = Rig::numero();
    let long = format!(r#"{{"id":"{}"}}"#, "x".repeat(256));
    assert_400(&rig, signed_numero(long), "invalid_id").await;
    let id = "x".repeat(255);
    let ok = format!(r#"{{"id":"{id}"}}"#);
    assert_processed(&rig, signed_numero(ok), &numero_key(&id)).await;
}

#[tokio::test]
async fn ambiguous_ids_are_400() {
    let rig = Rig::numero();
    for body in [
        r#"{"id":"evt_1","Id":"evt_2"}"#,
        r#"{"id":"evt_1","id":"evt_1"}"#,
        r#"{"id":"evt_1","\u0069d":"evt_2"}"#,
    ] {
        assert_400(&rig, signed_numero(body), "ambiguous_id").await;
    }
}

#[tokio::test]
async fn escaped_id_is_the_same_event() {
    let rig = Rig::numero();
    let plain = r#"{"id":"evt_1"}"#;
    let escaped = r#"{"id":"\u0065vt_1"}"#;
    assert_processed(&rig, signed_numero(plain), &numero_key("evt_1")).await;
    let (status, body) = rig.send(signed_numero(escaped)).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, r#"{"status":"duplicate"}"#)
    );
    assert_eq!(rig.ran(), 1, "the escaped copy is a duplicate");
    assert_eq!(rig.store.status(&numero_key("evt_1")), Some(true));
}

#[tokio::test]
async fn unsigned_id_header_that_disagrees_is_400() {
    let rig = Rig::numero();
    let mut request = signed_numero(NUMERO_BODY);
    request
        .headers_mut()
        .insert("x-webhook-id", "evt_other".parse().unwrap());
    assert_400(&rig, request, "header_mismatch").await;
    assert_eq!(rig.store.status(&numero_key("evt_other")), None);
}

#[tokio::test]
async fn body_split_into_many_frames_verifies() {
    let rig = Rig::numero();
    let frames = NUMERO_BODY.as_bytes().chunks(3).map(Bytes::copy_from_slice);
    let request = Request::post("/hook")
        .header("x-webhook-signature", numero_sig(NUMERO_BODY.as_bytes()))
        .body(Body::new(Frames(frames.collect())))
        .unwrap();
    assert_processed(&rig, request, &numero_key("evt_1")).await;
}

// --- rotation and handler failures -----------------------------------------

#[tokio::test]
async fn secret_removed_from_rotation_is_401() {
    let old = tower_webhook::numberotp::sign(OLD_SECRET.as_bytes(), OTP_BODY.as_bytes());
    // During the overlap both secrets verify…
    let during = Rig::new(NumberOtp, &[SECRET, OLD_SECRET], Handler::Ok, usize::MAX);
    let key = otp_key("act_1", "received", "111111", "Your code is 111111.");
    assert_processed(&during, otp_request(&old, OTP_BODY), &key).await;
    // …once the old one is removed, its signatures are forgeries.
    let after = Rig::new(NumberOtp, &[SECRET], Handler::Ok, usize::MAX);
    assert_401(&after, otp_request(&old, OTP_BODY), "signature_mismatch").await;
}

#[tokio::test]
async fn panicking_handler_behind_catch_panic_releases_the_claim() {
    let rig = Rig::new(Numero, &[SECRET], Handler::PanicsOnce, usize::MAX);
    let signature = numero_sig(NUMERO_BODY.as_bytes());
    let (status, _) = rig.send(numero_request(&signature, NUMERO_BODY)).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(rig.ran(), 1);
    assert_eq!(rig.store.status(&numero_key("evt_1")), None, "released");
    // The sender's retry is processed.
    let (status, _) = rig.send(numero_request(&signature, NUMERO_BODY)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(rig.ran(), 2);
    assert_eq!(rig.store.status(&numero_key("evt_1")), Some(true));
}

#[tokio::test]
async fn panic_unwinding_through_the_layer_releases_the_claim() {
    // Catch-panic placed outside the webhook layer instead: the panic
    // unwinds through the layer's future, whose drop releases the claim.
    let store = MemoryStore::new();
    let layer = WebhookLayer::builder(Numero)
        .secret(SECRET)
        .store(store.clone())
        .build()
        .unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let handle = move || {
        counter.fetch_add(1, Ordering::SeqCst);
        async move {
            panic!("handler bug");
            #[allow(unreachable_code)]
            StatusCode::OK
        }
    };
    let route = post(handle).layer(
        ServiceBuilder::new()
            .layer(CatchPanicLayer::new())
            .layer(layer),
    );
    let app = Router::new().route("/hook", route);
    let request = signed_numero(NUMERO_BODY);
    let response = app.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(store.status(&numero_key("evt_1")), None, "released");
    assert!(store.is_empty());
}

// --- malformed HTTP, through a real server and raw TCP ----------------------

/// Writes `request` on a fresh connection: the first response's status and
/// body.
async fn raw(addr: SocketAddr, request: &[u8]) -> (u16, String) {
    let reply = harness::raw_reply(addr, request).await;
    (reply.status, reply.body)
}

/// The next response's status and body.
async fn read_response(stream: &mut (impl tokio::io::AsyncRead + Unpin)) -> (u16, String) {
    let reply = harness::read_reply(stream).await;
    (reply.status, reply.body)
}

fn head(signature_lines: &[&[u8]], content_length: Option<usize>) -> Vec<u8> {
    let mut out =
        b"POST /hook HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n".to_vec();
    for line in signature_lines {
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    if let Some(len) = content_length {
        out.extend_from_slice(format!("content-length: {len}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// The request line, fixed headers, the given header lines, an optional
/// `Content-Length`, then `body`.
fn wire(lines: &[&[u8]], content_length: Option<usize>, body: &[u8]) -> Vec<u8> {
    let mut out = head(lines, content_length);
    out.extend_from_slice(body);
    out
}

/// Serves `rig`, writes `request` raw, and asserts the layer refused it with
/// `status` and `reason`, the handler did not run and nothing was recorded.
async fn assert_wire_refused(rig: &Rig, request: &[u8], status: u16, reason: &str) {
    let addr = rig.serve().await;
    let (got, body) = raw(addr, request).await;
    assert_eq!((got, body), (status, format!(r#"{{"error":"{reason}"}}"#)));
    assert_eq!(rig.ran(), 0);
    rig.assert_untouched();
}

fn otp_line(value: &str) -> Vec<u8> {
    format!("x-numberotp-signature: {value}").into_bytes()
}

#[tokio::test]
async fn repeated_signature_header_valid_first_is_401() {
    let good = otp_line(&otp_sig(OTP_BODY.as_bytes()));
    let junk = otp_line(&format!("sha256={}", "0".repeat(64)));
    let request = wire(&[&good, &junk], Some(OTP_BODY.len()), OTP_BODY.as_bytes());
    assert_wire_refused(&Rig::numberotp(), &request, 401, "repeated_signature").await;
}

#[tokio::test]
async fn repeated_signature_header_valid_last_is_401() {
    let good = otp_line(&otp_sig(OTP_BODY.as_bytes()));
    let junk = otp_line("sha256=");
    let request = wire(&[&junk, &good], Some(OTP_BODY.len()), OTP_BODY.as_bytes());
    assert_wire_refused(&Rig::numberotp(), &request, 401, "repeated_signature").await;
}

#[tokio::test]
async fn non_ascii_header_bytes_are_401() {
    // A valid tag with its last hex digit replaced by UTF-8 `é`, then by a
    // lone 0xff byte: HTTP passes such bytes through (obs-text).
    let good = otp_sig(OTP_BODY.as_bytes());
    for tail in [&b"\xc3\xa9"[..], b"\xff"] {
        let mut line = otp_line(&good[..good.len() - 1]);
        line.extend_from_slice(tail);
        let request = wire(&[&line], Some(OTP_BODY.len()), OTP_BODY.as_bytes());
        assert_wire_refused(&Rig::numberotp(), &request, 401, "malformed_signature").await;
    }
}

#[tokio::test]
async fn whitespace_around_the_value_on_the_wire_is_stripped_by_http() {
    // Deliberate: optional whitespace around a field value is not part of
    // the value (RFC 9110 §5.5); the HTTP parser drops it before the layer
    // sees the header, so the delivery verifies.
    let rig = Rig::numberotp();
    let addr = rig.serve().await;
    let line = otp_line(&format!(" \t {} \t", otp_sig(OTP_BODY.as_bytes())));
    let mut request = head(&[&line], Some(OTP_BODY.len()));
    request.extend_from_slice(OTP_BODY.as_bytes());
    let (status, _) = raw(addr, &request).await;
    assert_eq!(status, 200);
    assert_eq!(rig.ran(), 1);
    assert_eq!(
        rig.store.status(&otp_key(
            "act_1",
            "received",
            "111111",
            "Your code is 111111."
        )),
        Some(true)
    );
}

#[tokio::test]
async fn content_length_shorter_than_the_body_is_401() {
    // The server reads only the declared bytes: the layer verifies what
    // arrived as this request, which is not what was signed.
    let line = otp_line(&otp_sig(OTP_BODY.as_bytes()));
    let request = wire(&[&line], Some(OTP_BODY.len() - 10), OTP_BODY.as_bytes());
    assert_wire_refused(&Rig::numberotp(), &request, 401, "signature_mismatch").await;
}

#[tokio::test]
async fn content_length_longer_than_the_body_is_400() {
    // The sender declares more than it sends, then closes its side: the
    // body ends early, which is a read error, not a message.
    let rig = Rig::numberotp();
    let addr = rig.serve().await;
    let line = otp_line(&otp_sig(OTP_BODY.as_bytes()));
    let mut request = head(&[&line], Some(OTP_BODY.len() + 10));
    request.extend_from_slice(OTP_BODY.as_bytes());
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(&request).await.unwrap();
    stream.shutdown().await.unwrap();
    let (status, body) = read_response(&mut stream).await;
    assert_eq!(
        (status, body.as_str()),
        (400, r#"{"error":"body_unreadable"}"#)
    );
    assert_eq!(rig.ran(), 0);
    rig.assert_untouched();
}

#[tokio::test]
async fn content_length_over_the_cap_is_413_before_the_body() {
    // Declares 2 MiB and sends nothing: answered from the headers alone.
    let line = otp_line(&otp_sig(OTP_BODY.as_bytes()));
    let request = head(&[&line], Some(2 << 20));
    assert_wire_refused(&Rig::numberotp(), &request, 413, "body_too_large").await;
}

#[tokio::test]
async fn chunked_body_over_the_cap_is_413() {
    let line = otp_line(&otp_sig(OTP_BODY.as_bytes()));
    let mut request = head(&[&line, b"transfer-encoding: chunked"], None);
    for chunk in OTP_BODY.as_bytes().chunks(40) {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    let rig = Rig::new(NumberOtp, &[SECRET], Handler::Ok, 64);
    assert_wire_refused(&rig, &request, 413, "body_too_large").await;
}

// --- slow bodies: composing with tower-http's timeouts ----------------------
//
// `RequestBodyTimeoutLayer` is an *idle* timeout: it resets on every frame,
// so it stops a body that stalls but not one that trickles a byte at a time.
// `TimeoutLayer` bounds the whole request (body and handler) and stops both.
// Put both outside the webhook layer:
//
//     let webhook = ServiceBuilder::new()
//         .layer(webhook_layer)                // outside: sees the handler's 500
//         .layer(CatchPanicLayer::new());      // inside: a panic becomes a 500
//     Router::new()
//         .route("/hook", post(handler).layer(webhook))
//         .layer(RequestBodyTimeoutLayer::new(idle))
//         .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, total))

fn timed_app(
    store: &MemoryStore,
    calls: &Arc<AtomicUsize>,
    idle: Duration,
    total: Duration,
) -> Router {
    let layer = WebhookLayer::builder(NumberOtp)
        .secret(SECRET)
        .store(store.clone())
        .build()
        .unwrap();
    let counter = Arc::clone(calls);
    let handle = move || {
        counter.fetch_add(1, Ordering::SeqCst);
        async { StatusCode::OK }
    };
    let webhook = ServiceBuilder::new()
        .layer(layer)
        .layer(CatchPanicLayer::new());
    Router::new()
        .route("/hook", post(handle).layer(webhook))
        .layer(RequestBodyTimeoutLayer::new(idle))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            total,
        ))
}

/// Sends the head, then the body one byte every `pace` on a writer task,
/// and reads the first response meanwhile.
async fn trickle(addr: SocketAddr, pace: Duration, stall_after: Option<usize>) -> (u16, String) {
    let line = otp_line(&otp_sig(OTP_BODY.as_bytes()));
    let request_head = head(&[&line], Some(OTP_BODY.len()));
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let writing = tokio::spawn(async move {
        writer.write_all(&request_head).await?;
        for (i, byte) in OTP_BODY.as_bytes().iter().enumerate() {
            if stall_after == Some(i) {
                tokio::time::sleep(LIMIT).await;
            }
            tokio::time::sleep(pace).await;
            writer.write_all(&[*byte]).await?;
        }
        std::io::Result::Ok(writer)
    });
    let result = read_response(&mut reader).await;
    writing.abort();
    result
}

/// Serves the timed composition with an `idle` body timeout and a `total`
/// request deadline, trickles the body in, and reports the status, the
/// response body, how often the handler ran and the store.
async fn timed_trickle(
    idle: Duration,
    total: Duration,
    pace: Duration,
    stall_after: Option<usize>,
) -> (u16, String, usize, MemoryStore) {
    let store = MemoryStore::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let addr = harness::serve(timed_app(&store, &calls, idle, total)).await;
    let (status, body) = trickle(addr, pace, stall_after).await;
    (status, body, calls.load(Ordering::SeqCst), store)
}

#[tokio::test]
async fn trickling_body_is_stopped_by_the_request_timeout_408() {
    // Idle timeout 1 s never fires (a byte every 20 ms); the 400 ms total
    // deadline does, long before the ~3 s the body would take.
    let started = std::time::Instant::now();
    let (status, _, ran, store) = timed_trickle(
        Duration::from_secs(1),
        Duration::from_millis(400),
        Duration::from_millis(20),
        None,
    )
    .await;
    assert_eq!(status, 408);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(ran, 0);
    assert!(store.is_empty());
}

#[tokio::test]
async fn stalled_body_is_stopped_by_the_body_timeout_400() {
    // The body stops after 10 bytes; the 300 ms idle timeout ends it as a
    // read error (400 body_unreadable) before the 5 s total deadline.
    let (status, body, ran, store) = timed_trickle(
        Duration::from_millis(300),
        Duration::from_secs(5),
        Duration::from_millis(1),
        Some(10),
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (400, r#"{"error":"body_unreadable"}"#)
    );
    assert_eq!(ran, 0);
    assert!(store.is_empty());
}

#[tokio::test]
async fn slow_but_steady_sender_within_the_deadline_is_processed() {
    // The same composition lets an honest, slow sender through.
    let (status, _, ran, store) = timed_trickle(
        Duration::from_millis(500),
        Duration::from_secs(8),
        Duration::from_millis(2),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(ran, 1);
    assert_eq!(
        store.status(&otp_key(
            "act_1",
            "received",
            "111111",
            "Your code is 111111."
        )),
        Some(true)
    );
}
