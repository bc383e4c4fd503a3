//! Helpers shared by the bench binaries: realistic signed bodies.

#![allow(dead_code)] // each bench binary uses a different subset

/// The Numero secret every bench signs with.
pub const NUMERO_SECRET: &str = "whsec_abcdefghijklmnopqrstuvwxyz123456789";
/// The NumberOTP secret every bench signs with.
pub const NUMBEROTP_SECRET: &str = "numberotp-demo-secret-0123456789";

/// A Numero `TRANSFER_NOTIFICATION` of exactly `size` bytes (at least ~200)
/// whose id is `evt_<id>`; padded inside a string field so it stays valid
/// JSON of the same shape at every size.
pub fn numero_body(id: u64, size: usize) -> Vec<u8> {
    let head = format!(
        r#"{{"id":"evt_{id:012}","event":"TRANSFER_NOTIFICATION","created_at":"{now}","data":{{"transaction_id":"txn_{id:012}","amount":5000.00,"currency":"NGN","status":"completed","narration":""#,
        now = recent()
    );
    let tail = r#""}}"#;
    let pad = size.saturating_sub(head.len() + tail.len());
    let mut body = Vec::with_capacity(size);
    body.extend_from_slice(head.as_bytes());
    body.resize(head.len() + pad, b'x');
    body.extend_from_slice(tail.as_bytes());
    assert_eq!(body.len(), size.max(head.len() + tail.len()));
    body
}

/// `bytes` as hyper hands a body over: a slice of a shared read buffer
/// (`BytesMut` split and frozen), so cloning it counts a reference.
pub fn shared(bytes: &[u8]) -> bytes::Bytes {
    bytes::BytesMut::from(bytes).split().freeze()
}

/// A signed Numero delivery of `size` bytes with id `evt_<id>`, as the parts
/// of a request (with `Content-Length`) and its body (shared, as hyper's).
pub fn signed_delivery(id: u64, size: usize) -> (http::request::Parts, bytes::Bytes) {
    let body = shared(&numero_body(id, size));
    let signature = tower_webhook::numero::sign(NUMERO_SECRET.as_bytes(), &body);
    let (parts, ()) = http::Request::post("/webhooks/numero")
        .header("content-type", "application/json")
        .header("content-length", body.len())
        .header("x-webhook-signature", signature)
        .body(())
        .expect("a valid request")
        .into_parts();
    (parts, body)
}

/// A NumberOTP activation body of exactly `size` bytes for activation `id`.
pub fn numberotp_body(id: u64, size: usize) -> Vec<u8> {
    let head = format!(
        r#"{{"id":"act_{id:012}","phone_number":"+2348012345678","service":"whatsapp","country":"NG","otp":"482913","status":"received","full_sms":""#
    );
    let tail = r#""}"#;
    let pad = size.saturating_sub(head.len() + tail.len());
    let mut body = Vec::with_capacity(size);
    body.extend_from_slice(head.as_bytes());
    body.resize(head.len() + pad, b'x');
    body.extend_from_slice(tail.as_bytes());
    body
}

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

/// A request body that arrives in several frames, as a slow or chunked
/// sender's would.
#[derive(Debug)]
pub struct Frames(VecDeque<Bytes>);

impl Frames {
    /// `body` split into frames of at most `frame` bytes.
    pub fn new(body: Bytes, frame: usize) -> Self {
        let mut frames = VecDeque::new();
        let mut rest = body;
        while !rest.is_empty() {
            let n = frame.min(rest.len());
            frames.push_back(rest.split_to(n));
        }
        Self(frames)
    }
}

impl Body for Frames {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.pop_front().map(|b| Ok(Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.0.iter().map(|b| b.len() as u64).sum())
    }
}

use std::time::{Duration, Instant};

/// One variant of an interleaved comparison: runs `n` iterations and
/// returns the time they took (setup excluded).
pub type Variant<'a> = (&'static str, Box<dyn FnMut(u64) -> Duration + 'a>);

/// Runs the variants in turn, `batch` iterations each, `rounds` times over,
/// and returns each one's median time per iteration in nanoseconds.
///
/// On a shared, noisy machine this keeps the variants' conditions alike:
/// a burst of load hits a round of all of them, not one variant's whole
/// measurement, so ratios between the medians hold better than ratios
/// between separate criterion runs.
pub fn interleaved(variants: &mut [Variant<'_>], rounds: usize, batch: u64) -> Vec<f64> {
    let mut samples = vec![Vec::with_capacity(rounds); variants.len()];
    for (_, run) in variants.iter_mut() {
        run(batch); // warm up
    }
    for _ in 0..rounds {
        for (i, (_, run)) in variants.iter_mut().enumerate() {
            samples[i].push(run(batch).as_nanos() as f64 / batch as f64);
        }
    }
    samples
        .into_iter()
        .map(|mut s| {
            s.sort_by(f64::total_cmp);
            s[s.len() / 2]
        })
        .collect()
}

/// Times `n` calls of `f`.
pub fn time_n(n: u64, mut f: impl FnMut()) -> Duration {
    let start = Instant::now();
    for _ in 0..n {
        f();
    }
    start.elapsed()
}

/// A recent signed time for sample bodies (inside the layer's replay
/// window), fixed once per process so that a body built twice is the same.
fn recent() -> &'static str {
    static NOW: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NOW.get_or_init(|| tower_webhook::sign::rfc3339(std::time::SystemTime::now()))
}
