//! The whole layer over arbitrary deliveries: headers, a body split into
//! arbitrary frames (some polls `Pending`, an optional read error or
//! trailers), and an inner service that answers any status, fails, panics, or
//! never answers (the future is then dropped, as when a client goes away).
//!
//! Input layout (each control byte is taken from the front, the rest is the
//! body, so seeds are a few control bytes plus a known-answer body):
//!
//! | byte | meaning |
//! |---|---|
//! | 0 | bit 0 scheme (0 NumberOTP, 1 Numero); bit 1 pre-claim the key (in flight elsewhere); bit 2 `Pending` between frames; bit 3 read error after the frames; bits 4–5 deliveries − 1; bit 6 trailers; bit 7 `X-Webhook-Id: evt_1` |
//! | 1 | bits 0–2 signature mode (valid, one bit flipped, raw bytes, missing, valid twice, valid + raw, raw + valid, whitespace around); bits 3–4 signing key (configured #0, configured #1, removed from rotation, unknown); bits 5–6 encoding (hex, HEX, base64, mixed-case hex); bit 7 the other scheme's format |
//! | 2 | which bit of the tag to flip |
//! | 3 | inner service behaviour |
//! | 4 | `Content-Length`: none, exact, one short, one over, overflowing, given twice, huge |
//! | 5–6 | body cap, little endian (0 = the 1 MiB default) |
//! | 7 | frame size − 1 (0 = one frame) |
//! | 8.. | raw signature: one length byte, then that many bytes (modes 2, 5, 6 only) |
//! | rest | the body |
//!
//! The expected outcome of every delivery is computed independently (the
//! signature oracles of `src/lib.rs`, HMAC over the frames' bytes, the body
//! cap) and checked against what the layer did: the status and body of the
//! DESIGN table, whether the inner service ran (only when the tag verifies
//! under a configured secret), and what the store holds (the model's keys,
//! nothing for an unverified request).
#![no_main]

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode, header};
use http_body::{Body, Frame};
use http_body_util::Full;
use libfuzzer_sys::fuzz_target;
use tower_layer::Layer;
use tower_service::Service;
use tower_webhook::numberotp::{self, NumberOtp};
use tower_webhook::numero::{self, Numero};
use tower_webhook::{Claim, IdempotencyKey, IdempotencyStore, MemoryStore, Scheme, WebhookLayer};
use tower_webhook_fuzz::{SigRefusal, hmac, numberotp_tag, numero_tag};

const SECRETS: [&str; 2] = ["whsec_current_0123456789abcdef", "numberotp-old-secret"];
const REMOVED: &str = "whsec_removed_from_rotation";
const UNKNOWN: &str = "k";
const PANIC_MESSAGE: &str = "fuzz: the inner service panicked on purpose";
const MAX_POLLS: usize = 200_000;

/// A request body that yields the given frames, optionally `Pending` before
/// each one, then an error or trailers.
struct FuzzBody {
    frames: VecDeque<Bytes>,
    pending: bool,
    parity: bool,
    error_at_end: bool,
    trailers: bool,
}

impl Body for FuzzBody {
    type Data = Bytes;
    type Error = &'static str;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if this.pending {
            this.parity = !this.parity;
            if this.parity {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
        if let Some(frame) = this.frames.pop_front() {
            return Poll::Ready(Some(Ok(Frame::data(frame))));
        }
        if std::mem::take(&mut this.error_at_end) {
            return Poll::Ready(Some(Err("connection reset")));
        }
        if std::mem::take(&mut this.trailers) {
            let mut trailers = HeaderMap::new();
            trailers.insert("x-trailer", HeaderValue::from_static("unsigned"));
            return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
        }
        Poll::Ready(None)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    Status(u16),
    Error,
    Panic,
    Pending,
}

const STATUSES: [u16; 10] = [200, 201, 202, 204, 299, 301, 400, 422, 500, 503];

impl Behaviour {
    fn from_byte(b: u8) -> Self {
        match b % 13 {
            10 => Self::Error,
            11 => Self::Panic,
            12 => Self::Pending,
            n => Self::Status(STATUSES[usize::from(n)]),
        }
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// The inner service: counts its calls, records the body it received and
/// checks the typed event is in the extensions.
#[derive(Clone)]
struct Inner<E> {
    behaviour: Behaviour,
    calls: Arc<AtomicUsize>,
    bodies: Arc<Mutex<Vec<Bytes>>>,
    _event: std::marker::PhantomData<fn() -> E>,
}

impl<E: Send + Sync + 'static> Service<Request<Full<Bytes>>> for Inner<E> {
    type Response = Response<Full<Bytes>>;
    type Error = &'static str;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Full<Bytes>>) -> Self::Future {
        self.calls.fetch_add(1, Ordering::SeqCst);
        assert!(
            request
                .extensions()
                .get::<tower_webhook::Verified<E>>()
                .is_some(),
            "the typed event and its id are in the extensions"
        );
        let body = read_body(request.into_body()).expect("Full never fails");
        self.bodies.lock().unwrap().push(body);
        match self.behaviour {
            Behaviour::Status(status) => {
                let response = Response::builder()
                    .status(status)
                    .body(Full::new(Bytes::from_static(b"inner")))
                    .unwrap();
                Box::pin(std::future::ready(Ok(response)))
            }
            Behaviour::Error => Box::pin(std::future::ready(Err("inner failed"))),
            Behaviour::Panic => Box::pin(async { std::panic::panic_any(PANIC_MESSAGE) }),
            Behaviour::Pending => Box::pin(std::future::pending()),
        }
    }
}

fn read_body<B: Body<Data = Bytes>>(body: B) -> Result<Bytes, B::Error> {
    let mut body = std::pin::pin!(body);
    let mut cx = Context::from_waker(Waker::noop());
    let mut out = BytesMut::new();
    for _ in 0..MAX_POLLS {
        match body.as_mut().poll_frame(&mut cx) {
            Poll::Ready(None) => return Ok(out.freeze()),
            Poll::Ready(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    out.extend_from_slice(&data);
                }
            }
            Poll::Ready(Some(Err(e))) => return Err(e),
            Poll::Pending => {}
        }
    }
    panic!("response body never ended");
}

enum Driven<T> {
    Ready(T),
    Panicked,
    /// Still pending after the inner service was called: the client "goes
    /// away" and the future is dropped.
    Abandoned,
}

fn drive<F: Future>(future: F, inner_called: impl Fn() -> bool) -> Driven<F::Output> {
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..MAX_POLLS {
        match catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(&mut cx))) {
            Err(payload) => {
                assert_eq!(
                    payload.downcast_ref::<&str>(),
                    Some(&PANIC_MESSAGE),
                    "only the inner service may panic"
                );
                return Driven::Panicked;
            }
            Ok(Poll::Ready(output)) => return Driven::Ready(output),
            Ok(Poll::Pending) if inner_called() => return Driven::Abandoned,
            Ok(Poll::Pending) => {}
        }
    }
    panic!("the layer made no progress on an always-ready input");
}

/// What one delivery should produce.
#[derive(Debug, PartialEq, Eq)]
enum Expected {
    /// The layer answers itself with this status and reason code.
    Layer(StatusCode, &'static str),
    /// The inner service runs, with this behaviour.
    Inner(Behaviour),
}

struct Control {
    numero: bool,
    preclaim: bool,
    pending: bool,
    error_at_end: bool,
    deliveries: u8,
    trailers: bool,
    id_header: bool,
    sig_mode: u8,
    key: &'static str,
    encoding: u8,
    other_format: bool,
    flip_bit: u8,
    behaviour: Behaviour,
    content_length: u8,
    cap: usize,
    frame_size: usize,
}

fn take<'a>(data: &mut &'a [u8], n: usize) -> &'a [u8] {
    let n = n.min(data.len());
    let (head, tail) = data.split_at(n);
    *data = tail;
    head
}

fn byte(data: &mut &[u8]) -> u8 {
    take(data, 1).first().copied().unwrap_or(0)
}

fn encode(tag: &[u8; 32], control: &Control) -> Vec<u8> {
    let hex = hex::encode(tag);
    let text = match control.encoding & 3 {
        0 => hex,
        1 => hex.to_uppercase(),
        2 => STANDARD.encode(tag),
        _ => hex
            .char_indices()
            .map(|(i, c)| {
                if i % 2 == 0 {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect(),
    };
    // NumberOTP prefixes `sha256=`; "the other format" swaps the conventions.
    let prefixed = control.numero == control.other_format && control.encoding & 3 != 2;
    let text = if prefixed {
        format!("sha256={text}")
    } else {
        text
    };
    text.into_bytes()
}

fuzz_target!(|data: &[u8]| {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        // libfuzzer-sys aborts on any panic; let the deliberate one through
        // to `catch_unwind`, keep every other panic fatal.
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<&str>() != Some(&PANIC_MESSAGE) {
                previous(info);
            }
        }));
    });

    let mut data = data;
    let flags = byte(&mut data);
    let sig = byte(&mut data);
    let flip_bit = byte(&mut data);
    let behaviour = Behaviour::from_byte(byte(&mut data));
    let content_length = byte(&mut data);
    let cap = u16::from_le_bytes([byte(&mut data), byte(&mut data)]);
    let frame_size = usize::from(byte(&mut data));
    let control = Control {
        numero: flags & 1 != 0,
        preclaim: flags & 2 != 0,
        pending: flags & 4 != 0,
        error_at_end: flags & 8 != 0,
        deliveries: ((flags >> 4) & 3) + 1,
        trailers: flags & 64 != 0,
        id_header: flags & 128 != 0,
        sig_mode: sig & 7,
        key: [SECRETS[0], SECRETS[1], REMOVED, UNKNOWN][usize::from((sig >> 3) & 3)],
        encoding: (sig >> 5) & 3,
        other_format: sig & 128 != 0,
        flip_bit,
        behaviour,
        content_length,
        cap: if cap == 0 {
            tower_webhook::DEFAULT_MAX_BODY_BYTES
        } else {
            usize::from(cap)
        },
        frame_size,
    };
    let raw_sig = if matches!(control.sig_mode, 2 | 5 | 6) {
        let len = usize::from(byte(&mut data));
        take(&mut data, len).to_vec()
    } else {
        Vec::new()
    };
    let body = data;
    if control.numero {
        run(Numero, &numero::SIGNATURE_HEADER, &control, &raw_sig, body);
    } else {
        run(
            NumberOtp,
            &numberotp::SIGNATURE_HEADER,
            &control,
            &raw_sig,
            body,
        );
    }
});

fn build_request(
    name: &HeaderName,
    control: &Control,
    raw_sig: &[u8],
    body: &[u8],
) -> Request<FuzzBody> {
    let mut tag = hmac(control.key.as_bytes(), body);
    if control.sig_mode == 1 {
        tag[usize::from(control.flip_bit / 8)] ^= 1 << (control.flip_bit % 8);
    }
    let valid = encode(&tag, control);
    let values: Vec<Vec<u8>> = match control.sig_mode {
        0 | 1 => vec![valid],
        2 => vec![raw_sig.to_vec()],
        3 => vec![],
        4 => vec![valid.clone(), valid],
        5 => vec![valid, raw_sig.to_vec()],
        6 => vec![raw_sig.to_vec(), valid],
        _ => vec![[b" ".as_slice(), &valid, b"\t"].concat()],
    };
    let mut request = Request::post("/webhook");
    for value in values {
        // Bytes an HTTP parser would never hand over (control characters)
        // cannot be a header value; the request is sent without them.
        if let Ok(value) = HeaderValue::from_bytes(&value) {
            request = request.header(name, value);
        }
    }
    let len = body.len() as u64;
    match control.content_length % 7 {
        0 => {}
        1 => request = request.header(header::CONTENT_LENGTH, len),
        2 => request = request.header(header::CONTENT_LENGTH, len.saturating_sub(1)),
        3 => request = request.header(header::CONTENT_LENGTH, len + 1),
        4 => request = request.header(header::CONTENT_LENGTH, "18446744073709551616"),
        5 => {
            request = request
                .header(header::CONTENT_LENGTH, len)
                .header(header::CONTENT_LENGTH, len)
        }
        _ => request = request.header(header::CONTENT_LENGTH, u64::from(u32::MAX)),
    }
    if control.id_header {
        request = request.header(numero::ID_HEADER, "evt_1");
    }
    let frames = if control.frame_size == 0 {
        VecDeque::from([Bytes::copy_from_slice(body)])
    } else {
        body.chunks(control.frame_size)
            .map(Bytes::copy_from_slice)
            .collect()
    };
    request
        .body(FuzzBody {
            frames,
            pending: control.pending,
            parity: false,
            error_at_end: control.error_at_end,
            trailers: control.trailers,
        })
        .unwrap()
}

/// The declared length the layer may act on: exactly one value, a `u64`.
fn declared(headers: &HeaderMap) -> Option<u64> {
    let values: Vec<_> = headers.get_all(header::CONTENT_LENGTH).iter().collect();
    match values.as_slice() {
        [one] => one.to_str().ok()?.parse().ok(),
        _ => None,
    }
}

fn run<Sc: Scheme + Clone>(
    scheme: Sc,
    name: &HeaderName,
    control: &Control,
    raw_sig: &[u8],
    body: &[u8],
) {
    let store = MemoryStore::new();
    let layer = WebhookLayer::builder(scheme.clone())
        .secrets(SECRETS)
        .max_body_bytes(control.cap)
        // The seeds' signed times are fixed dates: the model has no clock.
        .replay_window(None)
        .store(store.clone())
        .build()
        .expect("valid secrets");
    let calls = Arc::new(AtomicUsize::new(0));
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let mut service = layer.layer(Inner::<Sc::Event> {
        behaviour: control.behaviour,
        calls: Arc::clone(&calls),
        bodies: Arc::clone(&bodies),
        _event: std::marker::PhantomData,
    });

    // The model of the store: key → done (true) or in flight (false).
    let mut model: HashMap<IdempotencyKey, bool> = HashMap::new();
    let probe = build_request(name, control, raw_sig, body);
    let key = scheme
        .parse(probe.headers(), &Bytes::copy_from_slice(body))
        .ok()
        .map(|parsed| IdempotencyKey::new(scheme.name(), &parsed.id));
    if control.preclaim {
        if let Some(key) = &key {
            let claim = drive(store.claim(key, Duration::from_secs(300)), || false);
            assert!(matches!(claim, Driven::Ready(Ok(Claim::New(_)))));
            model.insert(key.clone(), false);
        }
    }

    for _ in 0..control.deliveries {
        let request = build_request(name, control, raw_sig, body);
        let expected = expect(&scheme, control, &request, body, key.as_ref(), &model);
        if std::env::var_os("FUZZ_TRACE").is_some() {
            eprintln!("expected {expected:?}");
        }
        let before = calls.load(Ordering::SeqCst);
        let mut cx = Context::from_waker(Waker::noop());
        assert!(Service::<Request<FuzzBody>>::poll_ready(&mut service, &mut cx).is_ready());
        let future = service.call(request);
        let outcome = drive(future, || calls.load(Ordering::SeqCst) > before);
        let ran = calls.load(Ordering::SeqCst) > before;

        match expected {
            Expected::Layer(status, code) => {
                assert!(!ran, "the inner service ran; expected {status} {code}");
                let Driven::Ready(Ok(response)) = outcome else {
                    panic!("the layer itself must answer {status} {code}");
                };
                assert_eq!(response.status(), status, "expected {code}");
                let retry = response.headers().get(header::RETRY_AFTER).is_some();
                assert_eq!(retry, status == StatusCode::CONFLICT, "Retry-After");
                let text = read_body(response.into_body()).unwrap();
                let want = if code == "duplicate" {
                    r#"{"status":"duplicate"}"#.to_owned()
                } else {
                    format!(r#"{{"error":"{code}"}}"#)
                };
                assert_eq!(text, want.as_bytes());
            }
            Expected::Inner(behaviour) => {
                assert!(ran, "a verified new event must reach the inner service");
                assert_eq!(
                    bodies.lock().unwrap().last().unwrap().as_ref(),
                    body,
                    "the inner service gets the raw bytes"
                );
                let key = key.clone().expect("a verified event has a key");
                let done = match (behaviour, outcome) {
                    (Behaviour::Status(status), Driven::Ready(Ok(response))) => {
                        assert_eq!(response.status().as_u16(), status);
                        assert_eq!(read_body(response.into_body()).unwrap(), "inner");
                        (200..300).contains(&status)
                    }
                    (Behaviour::Error, Driven::Ready(Err(e))) => {
                        assert_eq!(e, "inner failed");
                        false
                    }
                    (Behaviour::Panic, Driven::Panicked) => false,
                    (Behaviour::Pending, Driven::Abandoned) => false,
                    (behaviour, _) => panic!("the layer changed the {behaviour:?} outcome"),
                };
                if done {
                    model.insert(key, true);
                } else {
                    model.remove(&key);
                }
            }
        }

        // The store holds exactly the model's keys: nothing for a request
        // that was not verified, released claims gone, completed ones done.
        assert_eq!(store.len(), model.len(), "store keys vs model");
        if let Some(key) = &key {
            assert_eq!(store.status(key), model.get(key).copied(), "{key}");
        }
    }
}

fn expect<Sc: Scheme>(
    scheme: &Sc,
    control: &Control,
    request: &Request<FuzzBody>,
    body: &[u8],
    key: Option<&IdempotencyKey>,
    model: &HashMap<IdempotencyKey, bool>,
) -> Expected {
    let headers = request.headers();
    let cap = control.cap;
    if declared(headers).is_some_and(|len| len > cap as u64) {
        return Expected::Layer(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large");
    }
    let tag = if control.numero {
        numero_tag(headers)
    } else {
        numberotp_tag(headers)
    };
    let tag = match tag {
        Ok(tag) => tag,
        Err(SigRefusal::Missing) => {
            return Expected::Layer(StatusCode::UNAUTHORIZED, "missing_signature");
        }
        Err(SigRefusal::Repeated) => {
            return Expected::Layer(StatusCode::UNAUTHORIZED, "repeated_signature");
        }
        Err(SigRefusal::Malformed) => {
            return Expected::Layer(StatusCode::UNAUTHORIZED, "malformed_signature");
        }
    };
    if body.len() > cap {
        return Expected::Layer(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large");
    }
    if control.error_at_end {
        return Expected::Layer(StatusCode::BAD_REQUEST, "body_unreadable");
    }
    if !SECRETS.iter().any(|s| hmac(s.as_bytes(), body) == tag) {
        return Expected::Layer(StatusCode::UNAUTHORIZED, "signature_mismatch");
    }
    if let Err(rejection) = scheme.parse(headers, &Bytes::copy_from_slice(body)) {
        return Expected::Layer(rejection.status(), rejection.code());
    }
    let key = key.expect("a parsed event has a key");
    match model.get(key) {
        Some(true) => Expected::Layer(StatusCode::OK, "duplicate"),
        Some(false) => Expected::Layer(StatusCode::CONFLICT, "in_flight"),
        None => Expected::Inner(control.behaviour),
    }
}
