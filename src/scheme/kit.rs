//! Pieces the provider schemes of issue 12 share: one encoded tag in one
//! header, a JSON body read into [`Text`] fields that share its bytes, the
//! body digest as the key of providers that sign no id, handshake replies,
//! and RFC 3339 timestamps.

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderName};
use http::{HeaderMap, HeaderValue, Response};
use http_body_util::Full;
use serde_json::value::RawValue;

use super::{envelope, single_header, support};
use crate::Rejection;
use crate::Text;
use crate::secret::{Signature, Tag};

/// `text` split around the first `byte`, which neither side holds.
pub(crate) fn split_at_byte(text: &[u8], byte: u8) -> Option<(&[u8], &[u8])> {
    let at = text.iter().position(|&b| b == byte)?;
    Some((&text[..at], &text[at + 1..]))
}

/// A header that must be given at most once: absent → `None`; repeated →
/// [`Rejection::MalformedSignature`] (for the signed headers of a scheme).
pub(crate) fn signed_header<'h>(
    headers: &'h HeaderMap,
    name: &HeaderName,
) -> Result<&'h [u8], Rejection> {
    single_header(headers, name)?
        .map(HeaderValue::as_bytes)
        .ok_or(Rejection::MalformedSignature)
}

/// An unsigned informational header, reported as a hint: absent → `None`;
/// repeated or not visible ASCII → 400 ([`Rejection::HeaderMismatch`]).
pub(crate) fn unsigned_header(
    headers: &HeaderMap,
    name: &HeaderName,
) -> Result<Option<Text>, Rejection> {
    match single_header(headers, name) {
        Ok(None) => Ok(None),
        Ok(Some(value)) => value
            .to_str()
            .map(|text| Some(Text::from(text)))
            .map_err(|_| Rejection::HeaderMismatch),
        Err(_) => Err(Rejection::HeaderMismatch),
    }
}

/// The SHA-256 (lower-case hex) of the signed bytes: the key of a provider
/// that signs no id.
pub(crate) fn digest(body: &[u8]) -> Text {
    support::digest_hex(body)
}

/// The `v0` signature of Slack and Zoom: `<sig header>: v0=<64 hex>` over
/// `v0:{timestamp}:{body}`, the timestamp (Unix seconds) in its own header
/// and within `freshness`. Returns the signature and the timestamp.
///
/// # Errors
///
/// [`Rejection::MissingSignature`] without the signature header;
/// [`Rejection::RepeatedSignature`] for either header given twice;
/// [`Rejection::MalformedSignature`] for a missing timestamp, or either
/// value out of format; [`Rejection::StaleTimestamp`].
pub(crate) fn v0_signature(
    headers: &HeaderMap,
    [timestamp_header, signature_header]: [&HeaderName; 2],
    freshness: &support::Freshness,
) -> Result<(Signature, u64), Rejection> {
    let signature = support::prefixed_tag(headers, signature_header, b"v0=", Tag::from_hex)?;
    let raw = signed_header(headers, timestamp_header)?;
    let timestamp = support::parse_timestamp(raw)?;
    freshness.check(timestamp)?;
    let prefix = [&b"v0:"[..], raw, b":"].concat();
    Ok((signature.with_prefix(prefix), timestamp))
}

/// A verified JSON body, checked as UTF-8 once ([`envelope::body`]); its
/// fields, nested objects' included, are [`Text`] views into it.
pub(crate) struct Json {
    text: Text,
}

impl Json {
    /// # Errors
    ///
    /// [`Rejection::NotUtf8`].
    pub(crate) fn new(body: &Bytes) -> Result<Self, Rejection> {
        envelope::body(body).map(|text| Self { text })
    }

    /// The top-level object's fields (see [`envelope::read`]).
    ///
    /// # Errors
    ///
    /// As [`envelope::read`]: not JSON, not an object, a field twice.
    pub(crate) fn fields<const N: usize>(
        &self,
        fields: &[(&str, usize)],
        id_slots: &[usize],
    ) -> Result<[Option<&RawValue>; N], Rejection> {
        envelope::read_slots(self.text.as_str(), fields, id_slots)
    }

    /// The fields of a nested object: an absent or `null` value has none.
    ///
    /// # Errors
    ///
    /// [`Rejection::InvalidPayload`] for anything but an object, or a field
    /// twice.
    pub(crate) fn nested<'a, const N: usize>(
        &'a self,
        raw: Option<&'a RawValue>,
        fields: &[(&str, usize)],
    ) -> Result<[Option<&'a RawValue>; N], Rejection> {
        match raw.map(RawValue::get) {
            None | Some("null") => Ok([None; N]),
            Some(json) if json.starts_with('{') => {
                envelope::read_slots(json, fields, &[]).map_err(|_| Rejection::InvalidPayload)
            }
            Some(_) => Err(Rejection::InvalidPayload),
        }
    }

    /// A text field (see [`envelope::text`]): a view unless escaped.
    ///
    /// # Errors
    ///
    /// [`Rejection::InvalidPayload`] for an object or an array.
    pub(crate) fn text(&self, raw: Option<&RawValue>) -> Result<Option<Text>, Rejection> {
        envelope::text(&self.text, raw)
    }

    /// The event id: a non-empty string, a view unless escaped.
    ///
    /// # Errors
    ///
    /// [`Rejection::MissingId`] when absent or `null`,
    /// [`Rejection::InvalidId`] when not a string.
    pub(crate) fn id(&self, raw: Option<&RawValue>) -> Result<Text, Rejection> {
        match raw.map(RawValue::get) {
            None | Some("null") => Err(Rejection::MissingId),
            Some(json) if json.starts_with('"') => self
                .text
                .json_string(json)
                .map_err(|_| Rejection::InvalidId),
            Some(_) => Err(Rejection::InvalidId),
        }
    }

    /// An integer field; `null` or absent → `None`.
    ///
    /// # Errors
    ///
    /// [`Rejection::InvalidPayload`] for anything but an integer.
    pub(crate) fn integer(raw: Option<&RawValue>) -> Result<Option<i64>, Rejection> {
        match raw.map(RawValue::get) {
            None | Some("null") => Ok(None),
            Some(json) => json
                .parse()
                .map(Some)
                .map_err(|_| Rejection::InvalidPayload),
        }
    }
}

/// A `200` reply with `body` as `content_type`.
pub(crate) fn reply(content_type: &'static str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// A `200` JSON reply.
pub(crate) fn json_reply(value: &serde_json::Value) -> Response<Full<Bytes>> {
    reply("application/json", value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_fields_are_views_and_nested_objects_read() {
        let body = Bytes::from_static(br#"{"a":"x","n":5,"o":{"b":"\u0079"},"l":[1]}"#);
        let json = Json::new(&body).unwrap();
        let slots = json
            .fields::<4>(&[("a", 0), ("n", 1), ("o", 2), ("l", 3)], &[])
            .unwrap();
        assert_eq!(json.text(slots[0]).unwrap().unwrap(), "x");
        assert_eq!(json.text(slots[1]).unwrap().unwrap(), "5");
        assert_eq!(Json::integer(slots[1]), Ok(Some(5)));
        let inner = json.nested::<1>(slots[2], &[("b", 0)]).unwrap();
        assert_eq!(json.text(inner[0]).unwrap().unwrap(), "y");
        assert_eq!(
            json.nested::<1>(slots[3], &[("b", 0)]).unwrap_err(),
            Rejection::InvalidPayload
        );
        assert_eq!(json.text(slots[3]).unwrap_err(), Rejection::InvalidPayload);
        assert_eq!(json.id(None).unwrap_err(), Rejection::MissingId);
        assert_eq!(json.id(slots[1]).unwrap_err(), Rejection::InvalidId);
    }
}
