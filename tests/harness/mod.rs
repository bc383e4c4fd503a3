//! A real axum server on 127.0.0.1 with both schemes mounted, handlers whose
//! behaviour a test controls, and real clients (hyper, and raw TCP for
//! malformed HTTP). Every wait is bounded.

#![allow(dead_code)] // each test binary uses a different part

pub mod inline;
pub mod queued;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::routing;
use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tower_webhook::numberotp::{NumberOtp, NumberOtpEvent};
use tower_webhook::numero::{Numero, NumeroEvent};
use tower_webhook::{EventId, IdempotencyKey, JobKey, MemoryStore, VerifiedEvent, WebhookLayer};

pub const NUMERO_SECRET: &str = "whsec_abcdefghijklmnopqrstuvwxyz123456789";
pub const NUMBEROTP_SECRET: &str = "notp_whk_5f2b9c0e7a";
/// Every wait in these tests ends by itself.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// How the handlers answer; a test switches it between deliveries.
#[derive(Clone)]
pub enum Mode {
    Ok,
    Status(StatusCode),
    /// Signal `started`, then wait for `release` (at most [`PATIENCE`]).
    Hold {
        started: Arc<Notify>,
        release: Arc<Notify>,
    },
    Panic,
}

/// What the handlers saw.
pub struct Seen {
    pub runs: AtomicUsize,
    pub ids: Mutex<Vec<String>>,
    pub bodies: Mutex<Vec<Bytes>>,
    pub probe_headers: Mutex<Vec<String>>,
    pub mode: Mutex<Mode>,
}

impl Seen {
    pub fn runs(&self) -> usize {
        self.runs.load(Ordering::SeqCst)
    }
    pub fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }
}

/// A running receiver.
pub struct Receiver {
    pub addr: SocketAddr,
    pub seen: Arc<Seen>,
    pub store: MemoryStore,
}

impl Receiver {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// What the store holds for a Numero event: Some(true) done,
    /// Some(false) in flight, None nothing.
    pub fn numero_state(&self, id: &str) -> Option<bool> {
        self.store
            .status(&IdempotencyKey::new("numero", &EventId::new(id).unwrap()))
    }

    /// Waits until the store holds `want` for a Numero event.
    pub async fn wait_numero_state(&self, id: &str, want: Option<bool>) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while self.numero_state(id) != want {
            assert!(
                tokio::time::Instant::now() < deadline,
                "store never reached {want:?} for {id}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Layer settings a test may change.
pub struct Settings {
    pub numero_secrets: Vec<&'static str>,
    pub max_body_bytes: usize,
    pub store: MemoryStore,
    pub done_ttl: Duration,
    pub lease: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            numero_secrets: vec![NUMERO_SECRET],
            max_body_bytes: 64 * 1024,
            store: MemoryStore::new(),
            done_ttl: tower_webhook::DEFAULT_DONE_TTL,
            lease: tower_webhook::DEFAULT_LEASE,
        }
    }
}

/// Starts a receiver with both schemes, sharing one store.
pub async fn start() -> Receiver {
    start_with(Settings::default()).await
}

pub async fn start_with(settings: Settings) -> Receiver {
    let seen = Arc::new(Seen {
        runs: AtomicUsize::new(0),
        ids: Mutex::default(),
        bodies: Mutex::default(),
        probe_headers: Mutex::default(),
        mode: Mutex::new(Mode::Ok),
    });
    let numero = WebhookLayer::builder(Numero)
        .secrets(settings.numero_secrets)
        .max_body_bytes(settings.max_body_bytes)
        .retry_after(Duration::from_secs(7))
        .done_ttl(settings.done_ttl)
        .lease(settings.lease)
        .store(settings.store.clone())
        .build()
        .unwrap();
    let numberotp = WebhookLayer::builder(NumberOtp)
        .secret(NUMBEROTP_SECRET)
        .max_body_bytes(settings.max_body_bytes)
        .store(settings.store.clone())
        .build()
        .unwrap();
    let (s1, s2, s3) = (seen.clone(), seen.clone(), seen.clone());
    let app = Router::new()
        .route(
            "/numero",
            routing::post(
                move |VerifiedEvent(event): VerifiedEvent<NumeroEvent>,
                      headers: HeaderMap,
                      body: Bytes| {
                    handle(s1.clone(), event.id.into(), headers, body)
                },
            )
            .route_layer(numero.clone()),
        )
        // The same layer (and store) with a catch-panic layer inside it, so
        // a panicking handler becomes a 500 the layer sees.
        .route(
            "/numero/caught",
            routing::post(
                move |VerifiedEvent(event): VerifiedEvent<NumeroEvent>,
                      headers: HeaderMap,
                      body: Bytes| {
                    handle(s3.clone(), event.id.into(), headers, body)
                },
            )
            .layer::<_, std::convert::Infallible>(tower_http::catch_panic::CatchPanicLayer::new())
            .layer(numero),
        )
        .route(
            "/numberotp",
            routing::post(
                move |VerifiedEvent(event): VerifiedEvent<NumberOtpEvent>,
                      headers: HeaderMap,
                      body: Bytes| {
                    handle(s2.clone(), event.id.into(), headers, body)
                },
            )
            .layer(numberotp),
        )
        // The extractor on a route without the layer.
        .route(
            "/unlayered",
            routing::post(|VerifiedEvent(_): VerifiedEvent<NumeroEvent>| async { "unreachable" }),
        );
    let addr = serve(app).await;
    Receiver {
        addr,
        seen,
        store: settings.store,
    }
}

async fn handle(seen: Arc<Seen>, id: String, headers: HeaderMap, body: Bytes) -> StatusCode {
    seen.runs.fetch_add(1, Ordering::SeqCst);
    seen.ids.lock().unwrap().push(id);
    seen.bodies.lock().unwrap().push(body);
    if let Some(probe) = headers.get("x-probe") {
        let probe = probe.to_str().unwrap_or_default().to_owned();
        seen.probe_headers.lock().unwrap().push(probe);
    }
    let mode = seen.mode.lock().unwrap().clone();
    match mode {
        Mode::Ok => StatusCode::OK,
        Mode::Status(status) => status,
        Mode::Hold { started, release } => {
            started.notify_one();
            let _ = tokio::time::timeout(PATIENCE, release.notified()).await;
            StatusCode::OK
        }
        Mode::Panic => panic!("handler panicked on purpose"),
    }
}

/// Serves `app` on a fresh 127.0.0.1 port until the test's runtime ends.
pub async fn serve(app: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

pub fn numero_body(id: &str) -> String {
    format!(
        r#"{{"id":"{id}","event":"TRANSFER_NOTIFICATION","created_at":"{now}","data":{{"TrxAmount":1000.0,"Reference":"T4898"}}}}"#,
        now = recent()
    )
}

/// A recent signed time for sample bodies (inside the layer's replay
/// window), fixed once per process so that a body built twice is the same.
fn recent() -> &'static str {
    static NOW: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NOW.get_or_init(|| tower_webhook::sign::rfc3339(std::time::SystemTime::now()))
}

pub fn numberotp_body(id: &str, otp: &str) -> String {
    format!(
        r#"{{"id":"{id}","phone_number":"14155552671","service":"wa","country":"67","otp":"{otp}","full_sms":"Your code is {otp}.","status":"received"}}"#
    )
}

/// The id of NumberOTP's key, built as its docs say: activation, status,
/// code and the SHA-256 (lower-case hex) of the SMS text, length-prefixed.
pub fn numberotp_key_id(activation: &str, status: &str, otp: &str, full_sms: &str) -> EventId {
    let text_digest: String = ring::digest::digest(&ring::digest::SHA256, full_sms.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    EventId::from_parts([
        Some(activation),
        Some(status),
        Some(otp),
        Some(&text_digest),
    ])
    .unwrap()
}

pub fn numero_signature(body: &[u8]) -> String {
    tower_webhook::numero::sign(NUMERO_SECRET.as_bytes(), body)
}

pub fn numberotp_signature(body: &[u8]) -> String {
    tower_webhook::numberotp::sign(NUMBEROTP_SECRET.as_bytes(), body)
}

/// A response as the client saw it.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }
    /// The reason code of a rejection body, `{"error":"<code>"}`.
    pub fn error(&self) -> String {
        let v: serde_json::Value = serde_json::from_slice(&self.body).unwrap();
        v["error"].as_str().unwrap_or_default().to_owned()
    }
}

pub fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// POSTs `body` with `headers` through a real HTTP client.
pub async fn post(url: &str, headers: &[(&str, &str)], body: impl Into<Bytes>) -> Reply {
    post_with(&client(), url, headers, body).await
}

pub async fn post_with(
    client: &Client<HttpConnector, Full<Bytes>>,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Reply {
    send_with(client, http::Method::POST, url, headers, body).await
}

/// Sends `method url` with `headers` and `body`; the reply in full.
pub async fn send(
    method: http::Method,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Reply {
    send_with(&client(), method, url, headers, body).await
}

pub async fn send_with(
    client: &Client<HttpConnector, Full<Bytes>>,
    method: http::Method,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Reply {
    let mut request = Request::builder().method(method).uri(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Full::new(body.into())).unwrap();
    let response = tokio::time::timeout(PATIENCE, client.request(request))
        .await
        .expect("no answer in time")
        .unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

/// Posts a correctly signed Numero delivery.
pub async fn deliver_numero(receiver: &Receiver, body: &str) -> Reply {
    let sig = numero_signature(body.as_bytes());
    post(
        &receiver.url("/numero"),
        &[
            ("x-webhook-signature", &sig),
            ("content-type", "application/json"),
        ],
        body.to_owned(),
    )
    .await
}

/// Writes raw bytes to the receiver and reads the status line's code,
/// the whole response text, until the server closes or answers.
pub async fn raw(addr: SocketAddr, request: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    read_response(&mut stream).await
}

/// Writes `request` on a fresh connection and reads the first response.
pub async fn raw_reply(addr: SocketAddr, request: &[u8]) -> RawReply {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    read_reply(&mut stream).await
}

/// One response read off a raw connection.
#[derive(Debug)]
pub struct RawReply {
    pub status: u16,
    /// The status line and headers, lower-cased, ending with `\r\n`.
    pub head: String,
    pub body: String,
}

/// Reads one response (head and `Content-Length` body), not waiting for the
/// connection to close; fails after [`PATIENCE`] or on a connection closed
/// before a whole response.
pub async fn read_reply(stream: &mut (impl tokio::io::AsyncRead + Unpin)) -> RawReply {
    match read_reply_or_close(stream).await {
        Ok(reply) => reply,
        Err(partial) => panic!("connection closed before a full response: {partial:?}"),
    }
}

/// As [`read_reply`], but a connection the server closes before a whole
/// response is `Err` with the bytes that came.
pub async fn read_reply_or_close(
    stream: &mut (impl tokio::io::AsyncRead + Unpin),
) -> Result<RawReply, Vec<u8>> {
    tokio::time::timeout(PATIENCE, async {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(end) = find(&buf, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end + 2]).to_ascii_lowercase();
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse().unwrap());
                if buf.len() >= end + 4 + len {
                    return Ok(RawReply {
                        status: head[9..12].parse().unwrap(),
                        body: String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).into_owned(),
                        head,
                    });
                }
            }
            match stream.read(&mut chunk).await {
                Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                _ => return Err(buf),
            }
        }
    })
    .await
    .expect("a response in time")
}

/// [`read_reply_or_close`] as `(status, the whole response as text)`;
/// status 0 when the connection closed before a whole response.
pub async fn read_response(stream: &mut (impl tokio::io::AsyncRead + Unpin)) -> (u16, String) {
    match read_reply_or_close(stream).await {
        Ok(reply) => (reply.status, format!("{}\r\n{}", reply.head, reply.body)),
        Err(partial) => (0, String::from_utf8_lossy(&partial).into_owned()),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A body sent frame by frame with no declared length (hyper's client then
/// sends it chunked): each frame as soon as it is polled.
pub struct Frames(pub std::collections::VecDeque<Bytes>);

impl Frames {
    pub fn new<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> Self {
        Self(chunks.into_iter().map(Bytes::copy_from_slice).collect())
    }
}

impl http_body::Body for Frames {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        std::task::Poll::Ready(
            self.get_mut()
                .0
                .pop_front()
                .map(|b| Ok(http_body::Frame::data(b))),
        )
    }
}

/// The idempotency key of the Numero event `id`.
pub fn numero_key(id: &str) -> IdempotencyKey {
    IdempotencyKey::new("numero", &EventId::new(id).unwrap())
}

/// The same key as a backend lists it and the operator's calls take it.
pub fn numero_job_key(id: &str) -> JobKey {
    JobKey::from(&numero_key(id))
}

/// A signed Numero delivery of the event `id`, as the intake records it.
pub fn numero_delivery(id: &str) -> tower_webhook::queue::Delivery {
    let body = numero_body(id);
    let mut headers = HeaderMap::new();
    headers.insert(
        "x-webhook-signature",
        numero_signature(body.as_bytes()).parse().unwrap(),
    );
    headers.insert(
        http::header::CONTENT_TYPE,
        "application/json".parse().unwrap(),
    );
    tower_webhook::queue::Delivery {
        scheme: "numero".into(),
        event_id: id.into(),
        method: http::Method::POST,
        uri: "/numero".parse().unwrap(),
        headers,
        body: Bytes::from(body),
        order_key: None,
    }
}

#[path = "../support/temp_dir.rs"]
mod temp_dir;
#[allow(unused_imports)] // not every test binary makes one
pub use temp_dir::TempDir;
