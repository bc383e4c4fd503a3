//! Reading a provider's top-level JSON object: each known field captured once
//! as borrowed raw JSON, a field given twice (under either casing) detected
//! rather than silently overwritten, unknown fields skipped.
//!
//! Keys are compared after JSON unescaping, so `"\u0069d"` is `id`.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::Rejection;

/// Why an envelope could not be read.
pub(crate) enum EnvelopeError {
    /// Not UTF-8, not JSON, or not an object.
    Invalid(Rejection),
    /// The field in this slot appeared more than once.
    Repeated(usize),
}

/// Reads `body` as one JSON object whose keys are looked up in `fields`
/// (name → slot). Returns the raw value of each slot, if present.
pub(crate) fn read<'de, const N: usize>(
    body: &'de [u8],
    fields: &[(&str, usize)],
) -> Result<[Option<&'de RawValue>; N], EnvelopeError> {
    let text = std::str::from_utf8(body).map_err(|_| EnvelopeError::Invalid(Rejection::NotUtf8))?;
    let mut de = serde_json::Deserializer::from_str(text);
    let seed = Seed::<N> { fields };
    let result = seed.deserialize(&mut de).and_then(|slots| {
        de.end()?;
        Ok(slots)
    });
    match result {
        Ok(Ok(slots)) => Ok(slots),
        Ok(Err(slot)) => Err(EnvelopeError::Repeated(slot)),
        Err(e) if e.is_data() => Err(EnvelopeError::Invalid(Rejection::InvalidPayload)),
        Err(_) => Err(EnvelopeError::Invalid(Rejection::InvalidJson)),
    }
}

/// The event id from its raw slot: absent or `null` → missing; anything but
/// a string → invalid. The string is unescaped (`"\u0065vt"` is `evt`).
pub(crate) fn id(raw: Option<&RawValue>) -> Result<String, Rejection> {
    match raw.map(RawValue::get) {
        None | Some("null") => Err(Rejection::MissingId),
        Some(json) => serde_json::from_str::<String>(json).map_err(|_| Rejection::InvalidId),
    }
}

/// A text field, accepting a string, a number or a boolean (providers are not
/// always consistent about quoting); `null` or absent → `None`.
///
/// # Errors
///
/// [`Rejection::InvalidPayload`] for an object or an array.
pub(crate) fn text(raw: Option<&RawValue>) -> Result<Option<String>, Rejection> {
    let Some(json) = raw.map(RawValue::get) else {
        return Ok(None);
    };
    match json.as_bytes().first() {
        Some(b'"') => serde_json::from_str(json)
            .map(Some)
            .map_err(|_| Rejection::InvalidPayload),
        Some(b'{' | b'[') => Err(Rejection::InvalidPayload),
        _ if json == "null" => Ok(None),
        _ => Ok(Some(json.to_owned())),
    }
}

struct Seed<'f, const N: usize> {
    fields: &'f [(&'f str, usize)],
}

impl<'de, const N: usize> DeserializeSeed<'de> for Seed<'_, N> {
    // The inner error names a repeated slot; serde's error type cannot carry it.
    type Value = Result<[Option<&'de RawValue>; N], usize>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, const N: usize> Visitor<'de> for Seed<'_, N> {
    type Value = Result<[Option<&'de RawValue>; N], usize>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut slots = [None; N];
        let mut repeated = None;
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            match self.fields.iter().find(|(name, _)| *name == key) {
                Some(&(_, slot)) => {
                    let value: &'de RawValue = map.next_value()?;
                    if slots[slot].replace(value).is_some() {
                        repeated.get_or_insert(slot);
                    }
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(match repeated {
            Some(slot) => Err(slot),
            None => Ok(slots),
        })
    }
}

/// An object key, borrowed from the input unless it had escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: &[(&str, usize)] = &[("id", 0), ("Id", 0), ("x", 1)];

    fn read2(body: &str) -> Result<[Option<&RawValue>; 2], EnvelopeError> {
        read::<2>(body.as_bytes(), FIELDS)
    }

    #[test]
    fn escaped_keys_and_values_compare_decoded() {
        let slots = read2(r#"{"\u0069d":"\u0065vt","y":[1,{"id":2}]}"#)
            .ok()
            .unwrap();
        assert_eq!(id(slots[0]).unwrap(), "evt");
    }

    #[test]
    fn both_casings_of_one_field_are_a_repeat() {
        assert!(matches!(
            read2(r#"{"id":"a","Id":"a"}"#),
            Err(EnvelopeError::Repeated(0))
        ));
        assert!(matches!(
            read2(r#"{"id":"a","id":"b"}"#),
            Err(EnvelopeError::Repeated(0))
        ));
    }

    #[test]
    fn failures_are_classified() {
        let reason = |body: &[u8]| match read::<2>(body, FIELDS) {
            Err(EnvelopeError::Invalid(r)) => r,
            _ => panic!("expected a failure"),
        };
        assert_eq!(reason(b"\xff{}"), Rejection::NotUtf8);
        assert_eq!(reason(b"{"), Rejection::InvalidJson);
        assert_eq!(reason(b"{} x"), Rejection::InvalidJson);
        assert_eq!(reason(b"[1]"), Rejection::InvalidPayload);
        assert_eq!(id(None), Err(Rejection::MissingId));
        let slots = read2(r#"{"id":5}"#).ok().unwrap();
        assert_eq!(id(slots[0]), Err(Rejection::InvalidId));
    }
}
