//! Property tests of the signature check, through the whole layer: what a
//! sender signs verifies whatever the secret, the body and its framing; any
//! single flipped bit in the body or the tag is a 401; hex is case-blind;
//! base64 must be canonical.

mod harness;

use harness::Frames;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::Full;
use proptest::prelude::*;
use tower::{Layer as _, ServiceExt as _, service_fn};
use tower_webhook::numberotp::NumberOtp;
use tower_webhook::numero::{self, Numero};
use tower_webhook::{LayerAnswer, MemoryStore, Scheme, Tag, WebhookLayer, sign};

/// Splits `body` at the given cut points (taken modulo its length).
fn split(body: &[u8], cuts: &[usize]) -> VecDeque<Bytes> {
    let mut cuts: Vec<usize> = cuts
        .iter()
        .map(|c| if body.is_empty() { 0 } else { c % body.len() })
        .collect();
    cuts.push(0);
    cuts.push(body.len());
    cuts.sort_unstable();
    cuts.dedup();
    cuts.windows(2)
        .map(|w| Bytes::copy_from_slice(&body[w[0]..w[1]]))
        .collect()
}

/// What a delivery did: the status, and the bodies the handler received.
struct Seen {
    status: StatusCode,
    handled: Vec<Bytes>,
    store: MemoryStore,
}

fn deliver<Sc: Scheme>(
    scheme: Sc,
    secret: &str,
    header: &str,
    value: &[u8],
    frames: VecDeque<Bytes>,
) -> Seen {
    let store = MemoryStore::new();
    let layer = WebhookLayer::builder(scheme)
        .secret(secret)
        .store(store.clone())
        .build()
        .expect("a valid secret");
    let handled = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&handled);
    let inner = service_fn(move |request: Request<Full<Bytes>>| {
        let seen = Arc::clone(&seen);
        async move {
            let body = http_body_util::BodyExt::collect(request.into_body())
                .await
                .unwrap()
                .to_bytes();
            seen.lock().unwrap().push(body);
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
        }
    });
    let service = layer.layer(inner);
    let request = Request::post("/hook")
        .header(header, value)
        .body(Frames(frames))
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let response = runtime.block_on(service.oneshot(request)).unwrap();
    let handled = handled.lock().unwrap().clone();
    Seen {
        status: response.status(),
        handled,
        store,
    }
}

/// A secret as providers show them: printable, no whitespace.
fn secret() -> impl Strategy<Value = String> {
    // From the shortest HMAC secret a layer takes (16 bytes) up.
    "[!-~]{16,64}"
}

/// A JSON event whose id and padding are arbitrary text.
fn event_body() -> impl Strategy<Value = String> {
    ("[a-zA-Z0-9_\\-]{1,40}", any::<String>(), 0usize..3).prop_map(|(id, pad, spaces)| {
        let ws = " ".repeat(spaces);
        serde_json::json!({ "pad": pad }).to_string().replacen(
            '{',
            &format!("{{{ws}\"id\":{ws}\"{id}\",{ws}"),
            1,
        )
    })
}

fn config() -> ProptestConfig {
    ProptestConfig::with_cases(64)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn signed_events_round_trip_whatever_the_framing(
        secret in secret(),
        body in event_body(),
        cuts in prop::collection::vec(any::<usize>(), 0..12),
        encoding in 0u8..3,
    ) {
        let bytes = body.as_bytes();
        let frames = split(bytes, &cuts);
        let seen = match encoding {
            0 => deliver(NumberOtp, &secret, "x-numberotp-signature",
                         tower_webhook::numberotp::sign(secret.as_bytes(), bytes).as_bytes(), frames),
            1 => deliver(Numero, &secret, "x-webhook-signature",
                         tower_webhook::numero::sign(secret.as_bytes(), bytes).as_bytes(), frames),
            _ => deliver(Numero, &secret, "x-webhook-signature",
                         tower_webhook::numero::sign_hex(secret.as_bytes(), bytes).as_bytes(), frames),
        };
        prop_assert_eq!(seen.status, StatusCode::OK);
        prop_assert_eq!(seen.handled.len(), 1);
        prop_assert_eq!(&seen.handled[0][..], bytes, "the handler gets the raw bytes");
        prop_assert_eq!(seen.store.len(), 1);
    }

    #[test]
    fn any_signed_bytes_verify(
        secret in secret(),
        body in prop::collection::vec(any::<u8>(), 0..512),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        // Arbitrary bytes verify; whether they are an event is the parser's
        // question (400), never the signature's (401).
        let tag = tower_webhook::numero::sign(secret.as_bytes(), &body);
        let seen = deliver(Numero, &secret, "x-webhook-signature", tag.as_bytes(),
                           split(&body, &cuts));
        prop_assert_ne!(seen.status, StatusCode::UNAUTHORIZED);
        prop_assert!(seen.status == StatusCode::OK || seen.status == StatusCode::BAD_REQUEST);
        prop_assert_eq!(seen.handled.len(), usize::from(seen.status == StatusCode::OK));
    }

    #[test]
    fn one_flipped_body_bit_is_401(
        secret in secret(),
        body in event_body(),
        bit in any::<prop::sample::Index>(),
        cuts in prop::collection::vec(any::<usize>(), 0..6),
    ) {
        let tag = tower_webhook::numberotp::sign(secret.as_bytes(), body.as_bytes());
        let mut forged = body.into_bytes();
        let bit = bit.index(forged.len() * 8);
        forged[bit / 8] ^= 1 << (bit % 8);
        let seen = deliver(NumberOtp, &secret, "x-numberotp-signature", tag.as_bytes(),
                           split(&forged, &cuts));
        prop_assert_eq!(seen.status, StatusCode::UNAUTHORIZED);
        prop_assert!(seen.handled.is_empty());
        prop_assert!(seen.store.is_empty());
    }

    #[test]
    fn one_flipped_tag_bit_is_401(
        secret in secret(),
        body in event_body(),
        bit in 0usize..256,
        base64 in any::<bool>(),
    ) {
        let mut tag: [u8; 32] = sign::tag(secret.as_bytes(), body.as_bytes()).as_bytes().try_into().unwrap();
        tag[bit / 8] ^= 1 << (bit % 8);
        let tag = Tag::from_bytes(tag);
        let value = if base64 { tag.to_base64() } else { tag.to_hex() };
        let seen = deliver(Numero, &secret, "x-webhook-signature", value.as_bytes(),
                           split(body.as_bytes(), &[]));
        prop_assert_eq!(seen.status, StatusCode::UNAUTHORIZED);
        prop_assert!(seen.handled.is_empty());
        prop_assert!(seen.store.is_empty());
    }

    #[test]
    fn upper_and_lower_case_hex_are_the_same_tag(
        secret in secret(),
        body in event_body(),
        mask in any::<u64>(),
    ) {
        let lower = tower_webhook::numero::sign_hex(secret.as_bytes(), body.as_bytes());
        let upper = lower.to_uppercase();
        // Any mixture of cases, too.
        let mixed: String = lower
            .chars()
            .enumerate()
            .map(|(i, c)| if mask >> (i % 64) & 1 == 1 { c.to_ascii_uppercase() } else { c })
            .collect();
        let decoded: Vec<Tag> = [&lower, &upper, &mixed]
            .iter()
            .map(|v| Tag::from_hex(v.as_bytes()).unwrap())
            .collect();
        prop_assert!(decoded.windows(2).all(|w| w[0] == w[1]));
        for value in [&upper, &mixed] {
            let seen = deliver(Numero, &secret, "x-webhook-signature", value.as_bytes(),
                               split(body.as_bytes(), &[]));
            prop_assert_eq!(seen.status, StatusCode::OK);
            let otp = format!("sha256={value}");
            let seen = deliver(NumberOtp, &secret, "x-numberotp-signature", otp.as_bytes(),
                               split(body.as_bytes(), &[]));
            prop_assert_eq!(seen.status, StatusCode::OK);
        }
    }

    #[test]
    fn non_canonical_base64_is_refused(
        secret in secret(),
        body in event_body(),
        junk_bits in 1u8..4,
    ) {
        // 32 bytes leave 2 unused bits in the last base64 symbol; setting
        // any of them spells the same bytes non-canonically.
        const ALPHABET: &[u8] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let canonical = tower_webhook::numero::sign(secret.as_bytes(), body.as_bytes());
        let mut bent = canonical.into_bytes();
        let index = ALPHABET.iter().position(|&c| c == bent[42]).unwrap();
        prop_assert_eq!(index & 3, 0, "canonical leaves the unused bits clear");
        bent[42] = ALPHABET[index | usize::from(junk_bits)];
        prop_assert!(Tag::from_base64(&bent).is_err());
        let mut headers = HeaderMap::new();
        headers.insert(numero::SIGNATURE_HEADER, bent.as_slice().try_into().unwrap());
        prop_assert_eq!(Numero.signature(&headers).unwrap_err(), LayerAnswer::MalformedSignature);
        let seen = deliver(Numero, &secret, "x-webhook-signature", &bent,
                           split(body.as_bytes(), &[]));
        prop_assert_eq!(seen.status, StatusCode::UNAUTHORIZED);
        prop_assert!(seen.handled.is_empty());
        prop_assert!(seen.store.is_empty());
    }
}
