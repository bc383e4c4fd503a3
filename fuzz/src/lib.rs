//! Oracles shared by the fuzz targets: independent, deliberately simple
//! re-statements of what each scheme accepts, written from the provider
//! documents and DESIGN.md rather than from the crate's code.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderName, HeaderValue};
use sha2::Sha256;

/// Builds a header map with `name` given once per value; values that are not
/// valid header bytes (control characters) are skipped, as an HTTP parser
/// would never produce them.
pub fn headers_with(name: &HeaderName, values: &[&[u8]]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for value in values {
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.append(name.clone(), value);
        }
    }
    headers
}

/// Splits fuzz input into header values at `\n`.
pub fn split_values(data: &[u8]) -> Vec<&[u8]> {
    if data.is_empty() {
        Vec::new()
    } else {
        data.split(|&b| b == b'\n').collect()
    }
}

/// Why the oracle refuses a signature header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigRefusal {
    Missing,
    Repeated,
    Malformed,
}

fn exactly_64_hex(text: &[u8]) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let mut out = [0; 32];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

fn canonical_base64_32(text: &[u8]) -> Option<[u8; 32]> {
    let decoded = STANDARD.decode(text).ok()?;
    let bytes: [u8; 32] = decoded.try_into().ok()?;
    // Canonical: re-encoding gives back exactly the text (padded, no
    // stray trailing bits).
    (STANDARD.encode(bytes).as_bytes() == text).then_some(bytes)
}

fn single<'h>(headers: &'h HeaderMap, name: &str) -> Result<&'h [u8], SigRefusal> {
    let values: Vec<_> = headers.get_all(name).iter().collect();
    match values.as_slice() {
        [] => Err(SigRefusal::Missing),
        [one] => Ok(one.as_bytes()),
        _ => Err(SigRefusal::Repeated),
    }
}

/// The tag a NumberOTP header carries: `sha256=` + 64 hex digits, once.
pub fn numberotp_tag(headers: &HeaderMap) -> Result<[u8; 32], SigRefusal> {
    let value = single(headers, "x-numberotp-signature")?;
    value
        .strip_prefix(b"sha256=")
        .and_then(exactly_64_hex)
        .ok_or(SigRefusal::Malformed)
}

/// The tag a Numero header carries: 64 hex digits or canonical padded
/// standard base64 of 32 bytes, once.
pub fn numero_tag(headers: &HeaderMap) -> Result<[u8; 32], SigRefusal> {
    let value = single(headers, "x-webhook-signature")?;
    exactly_64_hex(value)
        .or_else(|| canonical_base64_32(value))
        .ok_or(SigRefusal::Malformed)
}

/// HMAC-SHA256 of `body` under `key`.
pub fn hmac(key: &[u8], body: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    mac.update(body);
    mac.finalize().into_bytes().into()
}

/// Checks a scheme's answer for `headers` against the oracle's: the same
/// 32 bytes over the body alone, or the same 401 reason.
pub fn check_signature(
    oracle: Result<[u8; 32], SigRefusal>,
    got: Result<tower_webhook::Signature, tower_webhook::LayerAnswer>,
) {
    use tower_webhook::LayerAnswer;
    match (oracle, got) {
        (Ok(expected), Ok(signature)) => {
            assert!(signature.prefix().is_empty(), "signs the body alone");
            let tags: Vec<_> = signature.tags().collect();
            assert_eq!(tags.len(), 1);
            assert_eq!(tags[0].as_bytes(), &expected);
        }
        (Err(refusal), Err(rejection)) => {
            assert_eq!(rejection.status(), http::StatusCode::UNAUTHORIZED);
            let want = match refusal {
                SigRefusal::Missing => LayerAnswer::MissingSignature,
                SigRefusal::Repeated => LayerAnswer::RepeatedSignature,
                SigRefusal::Malformed => LayerAnswer::MalformedSignature,
            };
            assert_eq!(rejection, want);
        }
        (want, got) => panic!("oracle {want:?}, crate {got:?}"),
    }
}
