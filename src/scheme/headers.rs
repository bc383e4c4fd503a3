//! Reading a scheme's headers before any body is read: the one value of a
//! header given at most once, the signature header and the signed headers
//! beside it, unsigned informational headers, and the encoded tag of the
//! common `<prefix><tag>` form.
//!
//! What each kind of header answers when it is absent or repeated:
//!
//! | helper | absent | repeated |
//! |---|---|---|
//! | [`single_header`] | `Ok(None)` | [`LayerAnswer::RepeatedSignature`] |
//! | [`signature_header`] | [`LayerAnswer::MissingSignature`] | [`LayerAnswer::RepeatedSignature`] |
//! | [`signed_header`] | [`LayerAnswer::MalformedSignature`] | [`LayerAnswer::RepeatedSignature`] |
//! | [`unsigned_header`] | `Ok(None)` | [`LayerAnswer::HeaderMismatch`] (400) |

use http::header::HeaderName;
use http::{HeaderMap, HeaderValue};

use super::timestamp::{Freshness, parse_timestamp};
use crate::secret::{InvalidTag, Signature, Tag};
use crate::{LayerAnswer, Text};

/// Most candidate tags read from one signature header. A sender lists one
/// per active secret, so a handful at most; more is refused as malformed.
pub(crate) const MAX_TAGS: usize = 32;

/// The single value of a header that must appear at most once.
///
/// # Errors
///
/// [`LayerAnswer::RepeatedSignature`] when repeated.
pub(crate) fn single_header<'h>(
    headers: &'h HeaderMap,
    name: &HeaderName,
) -> Result<Option<&'h HeaderValue>, LayerAnswer> {
    let mut values = headers.get_all(name).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(LayerAnswer::RepeatedSignature);
    }
    Ok(first)
}

/// The single signature header value.
///
/// # Errors
///
/// [`LayerAnswer::MissingSignature`] when absent,
/// [`LayerAnswer::RepeatedSignature`] when repeated.
pub(crate) fn signature_header<'h>(
    headers: &'h HeaderMap,
    name: &HeaderName,
) -> Result<&'h [u8], LayerAnswer> {
    required(headers, name, LayerAnswer::MissingSignature)
}

/// A signed header beside the signature (a timestamp, a message id): the
/// signature cannot be checked without it.
///
/// # Errors
///
/// [`LayerAnswer::MalformedSignature`] when absent,
/// [`LayerAnswer::RepeatedSignature`] when repeated.
pub(crate) fn signed_header<'h>(
    headers: &'h HeaderMap,
    name: &HeaderName,
) -> Result<&'h [u8], LayerAnswer> {
    required(headers, name, LayerAnswer::MalformedSignature)
}

/// The single value of a header the scheme cannot do without; `absent`
/// when it is not given.
fn required<'h>(
    headers: &'h HeaderMap,
    name: &HeaderName,
    absent: LayerAnswer,
) -> Result<&'h [u8], LayerAnswer> {
    single_header(headers, name)?
        .map(HeaderValue::as_bytes)
        .ok_or(absent)
}

/// An unsigned informational header, reported as a hint: absent → `None`.
///
/// # Errors
///
/// [`LayerAnswer::HeaderMismatch`] (400) when repeated or not visible ASCII.
pub(crate) fn unsigned_header(
    headers: &HeaderMap,
    name: &HeaderName,
) -> Result<Option<Text>, LayerAnswer> {
    match single_header(headers, name) {
        Ok(None) => Ok(None),
        Ok(Some(value)) => value
            .to_str()
            .map(|text| Some(Text::from(text)))
            .map_err(|_| LayerAnswer::HeaderMismatch),
        Err(_) => Err(LayerAnswer::HeaderMismatch),
    }
}

/// The one tag of a header `<prefix><tag>` over the body alone, decoded
/// with `decode` ([`Tag::from_hex`], [`Tag::from_base64`], or a decoder
/// for another algorithm).
///
/// # Errors
///
/// As [`signature_header`] for the header; [`LayerAnswer::MalformedSignature`]
/// for a wrong prefix (case included) or tag.
pub(crate) fn prefixed_tag(
    headers: &HeaderMap,
    name: &HeaderName,
    prefix: &[u8],
    decode: impl Fn(&[u8]) -> Result<Tag, InvalidTag>,
) -> Result<Signature, LayerAnswer> {
    let value = signature_header(headers, name)?;
    let encoded = value
        .strip_prefix(prefix)
        .ok_or(LayerAnswer::MalformedSignature)?;
    decode(encoded)
        .map(Signature::over_body)
        .map_err(|_| LayerAnswer::MalformedSignature)
}

/// `text` split around the first `byte`, which neither side holds.
pub(crate) fn split_at_byte(text: &[u8], byte: u8) -> Option<(&[u8], &[u8])> {
    let at = text.iter().position(|&b| b == byte)?;
    Some((&text[..at], &text[at + 1..]))
}

/// The `v0` signature of Slack and Zoom: `<sig header>: v0=<64 hex>` over
/// `v0:{timestamp}:{body}`, the timestamp (Unix seconds) in its own header
/// and within `freshness`. Returns the signature and the timestamp.
///
/// # Errors
///
/// [`LayerAnswer::MissingSignature`] without the signature header;
/// [`LayerAnswer::RepeatedSignature`] for either header given twice;
/// [`LayerAnswer::MalformedSignature`] for a missing timestamp, or either
/// value out of format; [`LayerAnswer::StaleTimestamp`].
pub(crate) fn v0_signature(
    headers: &HeaderMap,
    [timestamp_header, signature_header]: [&HeaderName; 2],
    freshness: &Freshness,
) -> Result<(Signature, u64), LayerAnswer> {
    let signature = prefixed_tag(headers, signature_header, b"v0=", Tag::from_hex)?;
    let raw = signed_header(headers, timestamp_header)?;
    let timestamp = parse_timestamp(raw)?;
    freshness.check(timestamp)?;
    let prefix = [&b"v0:"[..], raw, b":"].concat();
    Ok((signature.with_prefix(prefix), timestamp))
}

/// The header value of the `v0` signature ([`v0_signature`]): `v0=<hex>`
/// over `v0:{timestamp}:{body}`; what Slack's and Zoom's `sign` write.
pub(crate) fn sign_v0(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    let content = [format!("v0:{timestamp}:").as_bytes(), body].concat();
    format!(
        "v0={}",
        crate::secret::hmac_sha256(secret, &content).to_hex()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_header_answers_absence_and_repetition_as_documented() {
        let name = HeaderName::from_static("x-h");
        let none = HeaderMap::new();
        let mut twice = HeaderMap::new();
        twice.append(&name, HeaderValue::from_static("a"));
        twice.append(&name, HeaderValue::from_static("b"));
        assert_eq!(single_header(&none, &name), Ok(None));
        assert_eq!(
            single_header(&twice, &name),
            Err(LayerAnswer::RepeatedSignature)
        );
        assert_eq!(
            signature_header(&none, &name),
            Err(LayerAnswer::MissingSignature)
        );
        assert_eq!(
            signed_header(&none, &name),
            Err(LayerAnswer::MalformedSignature)
        );
        assert_eq!(
            signed_header(&twice, &name),
            Err(LayerAnswer::RepeatedSignature)
        );
        assert_eq!(unsigned_header(&none, &name), Ok(None));
        assert_eq!(
            unsigned_header(&twice, &name),
            Err(LayerAnswer::HeaderMismatch)
        );
    }
}
