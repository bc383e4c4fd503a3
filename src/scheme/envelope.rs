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

/// Reads `body` as one JSON object whose keys are looked up in `fields`
/// (name → slot). Returns the raw value of each slot, if present.
///
/// # Errors
///
/// [`Rejection::NotUtf8`], [`Rejection::InvalidJson`], or
/// [`Rejection::InvalidPayload`] for a body that is not one object; a field
/// given twice (under either casing) is [`Rejection::AmbiguousId`] when its
/// slot is one of `id_slots` (what the key is made of), else
/// [`Rejection::InvalidPayload`].
pub(crate) fn read<'de, const N: usize, F: AsRef<str>>(
    body: &'de [u8],
    fields: &[(F, usize)],
    id_slots: &[usize],
) -> Result<[Option<&'de RawValue>; N], Rejection> {
    let text = std::str::from_utf8(body).map_err(|_| Rejection::NotUtf8)?;
    let mut de = serde_json::Deserializer::from_str(text);
    let seed = Seed::<N, F> { fields };
    let result = seed.deserialize(&mut de).and_then(|slots| {
        de.end()?;
        Ok(slots)
    });
    match result {
        Ok(Ok(slots)) => Ok(slots),
        Ok(Err(slot)) if id_slots.contains(&slot) => Err(Rejection::AmbiguousId),
        Ok(Err(_)) => Err(Rejection::InvalidPayload),
        Err(e) if e.is_data() => Err(Rejection::InvalidPayload),
        Err(_) => Err(Rejection::InvalidJson),
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

struct Seed<'f, const N: usize, F> {
    fields: &'f [(F, usize)],
}

impl<'de, const N: usize, F: AsRef<str>> DeserializeSeed<'de> for Seed<'_, N, F> {
    // The inner error names a repeated slot; serde's error type cannot carry it.
    type Value = Result<[Option<&'de RawValue>; N], usize>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, const N: usize, F: AsRef<str>> Visitor<'de> for Seed<'_, N, F> {
    type Value = Result<[Option<&'de RawValue>; N], usize>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut slots = [None; N];
        let mut repeated = None;
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            match self.fields.iter().find(|(name, _)| name.as_ref() == key) {
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

    fn read2(body: &str) -> Result<[Option<&RawValue>; 2], Rejection> {
        read::<2, _>(body.as_bytes(), FIELDS, &[0])
    }

    #[test]
    fn escaped_keys_and_values_compare_decoded() {
        let slots = read2(r#"{"\u0069d":"\u0065vt","y":[1,{"id":2}]}"#)
            .ok()
            .unwrap();
        assert_eq!(id(slots[0]).unwrap(), "evt");
    }

    #[test]
    fn a_repeated_field_is_ambiguous_for_ids_and_invalid_otherwise() {
        assert_eq!(
            read2(r#"{"id":"a","Id":"a"}"#).unwrap_err(),
            Rejection::AmbiguousId
        );
        assert_eq!(
            read2(r#"{"id":"a","id":"b"}"#).unwrap_err(),
            Rejection::AmbiguousId
        );
        assert_eq!(
            read2(r#"{"x":1,"x":1}"#).unwrap_err(),
            Rejection::InvalidPayload
        );
    }

    #[test]
    fn failures_are_classified() {
        let reason = |body: &[u8]| read::<2, _>(body, FIELDS, &[0]).unwrap_err();
        assert_eq!(reason(b"\xff{}"), Rejection::NotUtf8);
        assert_eq!(reason(b"{"), Rejection::InvalidJson);
        assert_eq!(reason(b"{} x"), Rejection::InvalidJson);
        assert_eq!(reason(b"[1]"), Rejection::InvalidPayload);
        assert_eq!(id(None), Err(Rejection::MissingId));
        let slots = read2(r#"{"id":5}"#).unwrap();
        assert_eq!(id(slots[0]), Err(Rejection::InvalidId));
    }
}
