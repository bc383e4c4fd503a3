//! `Scheme::parse` of both schemes over arbitrary verified bytes.
//!
//! The first input byte picks the unsigned Numero headers (`X-Webhook-Id`,
//! `X-Webhook-Event`), the rest is the body. Invariants, beyond "no panic":
//! every refusal is a 400; an accepted body is UTF-8 and syntactically JSON;
//! the id is non-empty, at most 255 bytes per part and derived from the
//! event's own fields; an unsigned header never changes the key; parsing is
//! deterministic.
#![no_main]

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode};
use libfuzzer_sys::fuzz_target;
use serde::de::IgnoredAny;
use tower_webhook::numberotp::NumberOtp;
use tower_webhook::numero::{EVENT_HEADER, ID_HEADER, Numero};
use tower_webhook::scheme::MAX_ID_LEN;
use tower_webhook::{Parsed, LayerAnswer, Scheme};

fn check_common<E>(body: &Bytes, result: &Result<Parsed<E>, LayerAnswer>) {
    match result {
        Err(rejection) => assert_eq!(
            rejection.status(),
            StatusCode::BAD_REQUEST,
            "{rejection:?} is a sender's fault: 400"
        ),
        Ok(parsed) => {
            let text = std::str::from_utf8(body).expect("accepted bodies are UTF-8");
            serde_json::from_str::<IgnoredAny>(text).expect("accepted bodies are JSON");
            assert!(!parsed.id.as_str().is_empty());
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let body = Bytes::copy_from_slice(body);
    let none = HeaderMap::new();

    // NumberOTP: key = activation id + status + otp + SHA-256 of full_sms,
    // length-prefixed.
    let otp = NumberOtp.parse(&none, &body);
    check_common(&body, &otp);
    if let Ok(parsed) = &otp {
        let event = &parsed.event;
        assert!(!event.id.is_empty() && event.id.len() <= MAX_ID_LEN);
        let head = format!("{}:{}", event.id.len(), event.id);
        assert!(parsed.id.as_str().starts_with(&head), "{:?}", parsed.id);
        let again = NumberOtp.parse(&none, &body).expect("deterministic");
        assert_eq!(again.id, parsed.id);
        assert_eq!(again.event, parsed.event);
    }

    // Numero without the unsigned headers: key = the signed id, verbatim.
    let plain = Numero.parse(&none, &body);
    check_common(&body, &plain);
    if let Ok(parsed) = &plain {
        assert_eq!(parsed.id.as_str(), parsed.event.id);
        assert!(parsed.id.as_str().len() <= MAX_ID_LEN);
    }

    // Numero with unsigned headers: they may only turn an accepted body into
    // a 400 (header_mismatch), never change its key.
    let mut headers = HeaderMap::new();
    let id_value = match selector & 3 {
        0 => None,
        1 => plain.as_ref().ok().map(|p| p.event.id.to_string()),
        2 => Some("evt_123456789".to_owned()),
        _ => Some(String::from_utf8_lossy(&body[..body.len().min(8)]).into_owned()),
    };
    if let Some(value) = id_value.and_then(|v| HeaderValue::from_str(&v).ok()) {
        headers.insert(ID_HEADER, value);
    }
    if selector & 4 != 0 {
        headers.insert(
            EVENT_HEADER,
            HeaderValue::from_static("TRANSFER_NOTIFICATION"),
        );
    }
    let with_headers = Numero.parse(&headers, &body);
    check_common(&body, &with_headers);
    match (&plain, &with_headers) {
        (Ok(a), Ok(b)) => assert_eq!(a.id, b.id),
        (Err(a), Err(b)) => assert!(
            a == b || *b == LayerAnswer::HeaderMismatch,
            "headers turned {a:?} into {b:?}"
        ),
        (Ok(_), Err(e)) => assert_eq!(*e, LayerAnswer::HeaderMismatch),
        (Err(e), Ok(_)) => panic!("a header made a refused body ({e:?}) acceptable"),
    }
});
