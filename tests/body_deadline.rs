//! The layer's body deadline (`WebhookLayerBuilder::body_timeout`): a total
//! time from the first read of the body to its end, past which the layer
//! answers `408 {"error":"body_timeout"}` with `Connection: close`.
//!
//! Senders that trickle, stall or send slowly but in time go through a real
//! server on 127.0.0.1 with raw `TcpStream` writes; each case asserts what a
//! user sees: the status, whether the handler ran, what the store holds, and
//! whether the server closed the connection. Every wait is bounded.

mod harness;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::post;
use bytes::Bytes;
use harness::{RawReply as Reply, read_reply as read_response};
use http::{Request, Response, StatusCode};
use http_body::{Body, Frame};
use http_body_util::{BodyExt as _, Full};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tower::{Layer as _, Service as _, ServiceExt as _};
use tower_webhook::numero::Numero;
use tower_webhook::{EventId, IdempotencyKey, MemoryStore, WebhookLayer, WebhookLayerBuilder};

const SECRET: &str = "whsec_deadline0123456789abcdefghij";
const BODY: &str = r#"{"id":"evt_slow","event":"TRANSFER_NOTIFICATION","data":{"TrxAmount":1000.0,"Reference":"T4898"}}"#;
/// The deadline of the cases that pass it: short, so the suite stays fast.
const DEADLINE: Duration = Duration::from_millis(400);
/// How late past the deadline an answer may come on a loaded machine.
const MARGIN: Duration = Duration::from_secs(2);
/// Every wait in these tests ends by itself.
const LIMIT: Duration = Duration::from_secs(10);

/// One webhook route behind a real server, its store, and how many times
/// the handler ran.
struct Rig {
    addr: SocketAddr,
    store: MemoryStore,
    calls: Arc<AtomicUsize>,
}

impl Rig {
    async fn start(body_timeout: Duration) -> Self {
        let store = MemoryStore::new();
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&calls);
        let handle = move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async { StatusCode::OK }
        };
        let layer = WebhookLayer::builder(Numero)
            .secret(SECRET)
            .body_timeout(body_timeout)
            .store(store.clone())
            .build()
            .unwrap();
        let app = Router::new().route("/hook", post(handle).route_layer(layer));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { addr, store, calls }
    }

    fn ran(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn state(&self) -> Option<bool> {
        self.store.status(&key())
    }

    /// A connection whose writes go out at once (no Nagle batching), split
    /// so a writer task can trickle while the test reads.
    async fn connect(&self) -> (tokio::net::tcp::OwnedReadHalf, OwnedWriteHalf) {
        let stream = TcpStream::connect(self.addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        stream.into_split()
    }

    /// Sends the whole delivery at once on a fresh connection.
    async fn deliver(&self) -> Reply {
        let (mut reader, mut writer) = self.connect().await;
        writer.write_all(&delivery()).await.unwrap();
        read_response(&mut reader).await
    }
}

fn key() -> IdempotencyKey {
    IdempotencyKey::new("numero", &EventId::new("evt_slow").unwrap())
}

/// The request line and headers of a signed delivery of [`BODY`].
fn head() -> Vec<u8> {
    let signature = tower_webhook::numero::sign(SECRET.as_bytes(), BODY.as_bytes());
    format!(
        "POST /hook HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n\
         x-webhook-signature: {signature}\r\ncontent-length: {}\r\n\r\n",
        BODY.len()
    )
    .into_bytes()
}

/// The head and the body, as one prompt sender writes them.
fn delivery() -> Vec<u8> {
    let mut out = head();
    out.extend_from_slice(BODY.as_bytes());
    out
}

/// Asserts `reply` is the body deadline's answer, closing the connection.
fn assert_body_timeout(reply: &Reply) {
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (408, r#"{"error":"body_timeout"}"#),
        "{reply:?}"
    );
    assert!(
        reply.head.contains("\r\nconnection: close\r\n"),
        "{}",
        reply.head
    );
}

/// Asserts the server closes the connection: the next read ends (end of
/// stream, or a reset when the server closed with bytes still unread).
async fn assert_closed_by_server(stream: &mut (impl AsyncRead + Unpin)) {
    let mut rest = [0u8; 1024];
    match tokio::time::timeout(MARGIN, stream.read(&mut rest)).await {
        Ok(Ok(0)) | Ok(Err(_)) => {}
        Ok(Ok(n)) => panic!("more bytes after the answer: {:?}", &rest[..n]),
        Err(_) => panic!("the server kept the connection open"),
    }
}

/// Writes the head, then `body` in pieces of `piece` bytes, `pace` apart;
/// after `stall_after` bytes it stops writing and holds the connection open.
fn spawn_writer(
    mut writer: OwnedWriteHalf,
    piece: usize,
    pace: Duration,
    stall_after: Option<usize>,
) -> tokio::task::JoinHandle<std::io::Result<OwnedWriteHalf>> {
    tokio::spawn(async move {
        writer.write_all(&head()).await?;
        for (i, bytes) in BODY.as_bytes().chunks(piece).enumerate() {
            if stall_after.is_some_and(|n| i * piece >= n) {
                tokio::time::sleep(LIMIT).await;
            }
            tokio::time::sleep(pace).await;
            writer.write_all(bytes).await?;
        }
        Ok(writer)
    })
}

#[tokio::test]
async fn slow_body_within_the_deadline_is_processed() {
    // Five frames 100 ms apart: the body keeps the layer waiting four
    // times, and ends well inside the 1.5 s deadline.
    let rig = Rig::start(Duration::from_millis(1500)).await;
    let (mut reader, writer) = rig.connect().await;
    let piece = BODY.len().div_ceil(5);
    let writing = spawn_writer(writer, piece, Duration::from_millis(100), None);
    let reply = read_response(&mut reader).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert!(!reply.head.contains("connection: close"), "{}", reply.head);
    assert_eq!(rig.ran(), 1);
    assert_eq!(rig.state(), Some(true), "done");
    writing.await.unwrap().unwrap();
}

#[tokio::test]
async fn trickle_past_the_deadline_is_408_and_the_connection_closed() {
    // One byte every 20 ms: the body would take about 3 s.
    let rig = Rig::start(DEADLINE).await;
    let started = Instant::now();
    let (mut reader, writer) = rig.connect().await;
    let writing = spawn_writer(writer, 1, Duration::from_millis(20), None);
    let reply = read_response(&mut reader).await;
    let waited = started.elapsed();
    assert_body_timeout(&reply);
    assert!(
        waited >= DEADLINE,
        "answered before the deadline: {waited:?}"
    );
    assert!(waited < DEADLINE + MARGIN, "answered late: {waited:?}");
    assert_eq!(rig.ran(), 0);
    assert!(rig.store.is_empty(), "nothing recorded");
    assert_closed_by_server(&mut reader).await;
    writing.abort();

    // The sender's retry, sent promptly, is processed.
    let reply = rig.deliver().await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(rig.ran(), 1);
    assert_eq!(rig.state(), Some(true), "done");
}

#[tokio::test]
async fn stalled_sender_is_408_within_the_deadline() {
    // The head and 10 bytes of the body, then nothing: the connection
    // stays open on the sender's side.
    let rig = Rig::start(DEADLINE).await;
    let started = Instant::now();
    let (mut reader, writer) = rig.connect().await;
    let writing = spawn_writer(writer, 10, Duration::ZERO, Some(10));
    let reply = read_response(&mut reader).await;
    let waited = started.elapsed();
    assert_body_timeout(&reply);
    assert!(waited < DEADLINE + MARGIN, "answered late: {waited:?}");
    assert_eq!(rig.ran(), 0);
    assert!(rig.store.is_empty(), "nothing recorded");
    assert_closed_by_server(&mut reader).await;
    writing.abort();
}

#[tokio::test]
async fn slow_headers_do_not_count_against_the_body_deadline() {
    // The head takes twice the body deadline to arrive, the body then comes
    // at once: the layer's deadline starts at its first read of the body,
    // so it is not involved (slow headers are the server's to bound).
    let rig = Rig::start(DEADLINE).await;
    let (mut reader, mut writer) = rig.connect().await;
    let head = head();
    let pieces = 8;
    for piece in head.chunks(head.len().div_ceil(pieces)) {
        writer.write_all(piece).await.unwrap();
        tokio::time::sleep(DEADLINE * 2 / pieces as u32).await;
    }
    writer.write_all(BODY.as_bytes()).await.unwrap();
    let reply = read_response(&mut reader).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(rig.ran(), 1);
    assert_eq!(rig.state(), Some(true), "done");
}

// --- in process --------------------------------------------------------------

/// A request body that answers `Pending` every other poll (waking its task
/// at once), `stall` then never yields again, or yields `BODY` in two
/// frames.
struct Hesitant {
    frames: Vec<Bytes>,
    polls: usize,
    stall: bool,
}

impl Hesitant {
    fn new(stall: bool) -> Self {
        let (a, b) = BODY.as_bytes().split_at(BODY.len() / 2);
        Self {
            frames: vec![Bytes::from_static(b), Bytes::from_static(a)],
            polls: 0,
            stall,
        }
    }
}

impl Body for Hesitant {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.stall {
            return Poll::Pending;
        }
        self.polls += 1;
        if self.polls % 2 == 1 {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        Poll::Ready(self.frames.pop().map(|b| Ok(Frame::data(b))))
    }
}

fn signed(body: Hesitant) -> Request<Hesitant> {
    Request::post("/hook")
        .header(
            "x-webhook-signature",
            tower_webhook::numero::sign(SECRET.as_bytes(), BODY.as_bytes()),
        )
        .body(body)
        .unwrap()
}

/// The builder a test configures: secret and store are already set.
type Builder = WebhookLayerBuilder<Numero, MemoryStore>;
/// What the layered service answers.
type Answer = Response<tower_webhook::ResponseBody<Full<Bytes>>>;

/// The layer around a service that counts its runs, called in process.
struct InProcess {
    store: MemoryStore,
    calls: Arc<AtomicUsize>,
}

impl InProcess {
    fn new() -> Self {
        Self {
            store: MemoryStore::new(),
            calls: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn ran(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// The layer, as `configure` sets it up, around the counting service.
    fn service<C: FnOnce(Builder) -> Builder>(
        &self,
        configure: C,
    ) -> impl tower::Service<Request<Hesitant>, Response = Answer, Error = Infallible> + use<C>
    {
        let builder = WebhookLayer::builder(Numero)
            .secret(SECRET)
            .store(self.store.clone());
        let layer = configure(builder).build().unwrap();
        let counter = Arc::clone(&self.calls);
        layer.layer(tower::service_fn(move |_: Request<Full<Bytes>>| {
            counter.fetch_add(1, Ordering::SeqCst);
            std::future::ready(Ok(Response::new(Full::new(Bytes::new()))))
        }))
    }

    /// Sends a signed delivery with `body` and waits (bounded) for the answer.
    async fn send(&self, configure: impl FnOnce(Builder) -> Builder, body: Hesitant) -> Answer {
        let call = self.service(configure).oneshot(signed(body));
        let answer = tokio::time::timeout(LIMIT, call).await;
        answer.expect("answered in time").unwrap()
    }
}

#[test]
fn without_a_tokio_runtime_the_body_is_collected_with_no_deadline() {
    // Polled by hand, no runtime anywhere: the body keeps the layer waiting
    // long past its 1 ms deadline, and there is no timer to make (making
    // one would panic), so the delivery is processed.
    let rig = InProcess::new();
    let mut service = rig.service(|b| b.body_timeout(Duration::from_millis(1)));
    let mut cx = Context::from_waker(Waker::noop());
    assert!(service.poll_ready(&mut cx).is_ready());
    let mut future = pin!(service.call(signed(Hesitant::new(false))));
    let response = (0..100)
        .find_map(|_| {
            std::thread::sleep(Duration::from_millis(5));
            match future.as_mut().poll(&mut cx) {
                Poll::Ready(response) => Some(response.unwrap()),
                Poll::Pending => None,
            }
        })
        .expect("answered within 100 polls");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(rig.ran(), 1);
    assert_eq!(rig.store.status(&key()), Some(true), "done");
}

#[tokio::test]
async fn a_stalled_body_in_process_is_408() {
    let rig = InProcess::new();
    let response = rig
        .send(|b| b.body_timeout(DEADLINE), Hesitant::new(true))
        .await;
    assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
    assert_eq!(response.headers()["connection"], "close");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], br#"{"error":"body_timeout"}"#);
    assert_eq!(rig.ran(), 0);
    assert!(rig.store.is_empty());
}

#[tokio::test]
async fn a_hesitant_body_in_process_is_processed() {
    // On a runtime, a body that keeps the layer waiting but ends in time.
    let rig = InProcess::new();
    let response = rig
        .send(|b| b.body_timeout(DEADLINE), Hesitant::new(false))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(rig.ran(), 1);
    assert_eq!(rig.store.status(&key()), Some(true), "done");
}

#[tokio::test]
async fn none_and_duration_max_switch_the_deadline_off() {
    // A stalled body is still waited for after twice the short deadline.
    let [none, max] = [None, Some(Duration::MAX)].map(|off| async move {
        let rig = InProcess::new();
        let waiting = rig
            .service(|b| b.body_timeout(off))
            .oneshot(signed(Hesitant::new(true)));
        let outcome = tokio::time::timeout(DEADLINE * 2, waiting).await;
        assert!(outcome.is_err(), "{off:?}: answered {outcome:?}");
        assert_eq!(rig.ran(), 0);
        assert!(rig.store.is_empty());
    });
    tokio::join!(none, max);
}

#[tokio::test]
async fn a_replaced_answer_response_still_closes_the_connection() {
    let rig = InProcess::new();
    let replaced = |b: Builder| {
        b.body_timeout(DEADLINE).answer_response(|rejection| {
            let mut response = Response::new(Full::new(Bytes::from(rejection.code())));
            *response.status_mut() = rejection.status();
            response
        })
    };
    let response = rig.send(replaced, Hesitant::new(true)).await;
    assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
    assert_eq!(response.headers()["connection"], "close");
    assert_eq!(rig.ran(), 0);
    assert!(rig.store.is_empty());
}
