//! Reading a provider's JSON body: [`Json`] checks the verified body as
//! UTF-8 once, then reads the top-level object's known fields in one pass,
//! each captured once as borrowed raw JSON, a field given twice (under
//! either casing) detected rather than silently overwritten, unknown fields
//! skipped. Each text field is then a [`Text`] view into the body, which
//! allocates only when its JSON string holds an escape.
//!
//! Keys are compared after JSON unescaping, so `"\u0069d"` is `id`.
//!
//! ```ignore
//! let json = Json::new(bytes)?;
//! let [id, kind] = json.fields::<2>(&[("id", 0), ("type", 1)], &[0])?;
//! let id: Text = json.id(id)?;
//! let event_type: Option<Text> = json.text(kind)?;
//! let key = EventId::from_text(id.clone())?; // a reference count, no copy
//! ```

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;
use serde::Deserialize as _;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::{LayerAnswer, Text};

/// A verified JSON body, checked as UTF-8 once; its fields, nested
/// objects' included, are [`Text`] views into it.
pub(crate) struct Json {
    text: Text,
}

impl Json {
    /// The verified body as JSON text.
    ///
    /// # Errors
    ///
    /// [`LayerAnswer::NotUtf8`].
    pub(crate) fn new(body: &Bytes) -> Result<Self, LayerAnswer> {
        Text::from_utf8(body.clone())
            .map(|text| Self { text })
            .map_err(|_| LayerAnswer::NotUtf8)
    }

    /// The body as text.
    pub(crate) fn as_text(&self) -> &Text {
        &self.text
    }

    /// The raw JSON of each known field of the top-level object, `fields`
    /// naming each key's slot (several keys may share one: casings).
    ///
    /// # Errors
    ///
    /// [`LayerAnswer::InvalidJson`], or [`LayerAnswer::InvalidPayload`] for a
    /// body that is not one object; a field given twice (under either
    /// casing) is [`LayerAnswer::AmbiguousId`] when its slot is one of
    /// `id_slots` (what the key is made of), else
    /// [`LayerAnswer::InvalidPayload`].
    pub(crate) fn fields<const N: usize>(
        &self,
        fields: &[(impl AsRef<str>, usize)],
        id_slots: &[usize],
    ) -> Result<[Option<&RawValue>; N], LayerAnswer> {
        read_slots(self.text.as_str(), fields, id_slots, &NoInline).map(|(slots, _)| slots)
    }

    /// Checks that the body is one JSON object, reading none of its fields.
    ///
    /// # Errors
    ///
    /// As [`Json::fields`].
    pub(crate) fn check_object(&self) -> Result<(), LayerAnswer> {
        self.fields::<0>(&[] as &[(&str, usize)], &[]).map(drop)
    }

    /// As [`Json::fields`], typing `inline`'s field during the pass when
    /// it can; the typed value is then returned beside the slots (whose
    /// slot for it stays empty).
    ///
    /// # Errors
    ///
    /// As [`Json::fields`].
    pub(crate) fn fields_with<'b, const N: usize, I: Inline<'b>>(
        &'b self,
        fields: &[(impl AsRef<str>, usize)],
        id_slots: &[usize],
        inline: &I,
    ) -> Result<Read<'b, N, I::Value>, LayerAnswer> {
        read_slots(self.text.as_str(), fields, id_slots, inline)
    }

    /// The fields of a nested object: an absent or `null` value has none.
    ///
    /// # Errors
    ///
    /// [`LayerAnswer::InvalidPayload`] for anything but an object, or a field
    /// twice.
    pub(crate) fn nested<'a, const N: usize>(
        &'a self,
        raw: Option<&'a RawValue>,
        fields: &[(&str, usize)],
    ) -> Result<[Option<&'a RawValue>; N], LayerAnswer> {
        match raw.map(RawValue::get) {
            None | Some("null") => Ok([None; N]),
            Some(json) if json.starts_with('{') => read_slots(json, fields, &[], &NoInline)
                .map(|(slots, _)| slots)
                .map_err(|_| LayerAnswer::InvalidPayload),
            Some(_) => Err(LayerAnswer::InvalidPayload),
        }
    }

    /// A text field (see [`text`]): a view unless escaped.
    ///
    /// # Errors
    ///
    /// [`LayerAnswer::InvalidPayload`] for an object or an array.
    pub(crate) fn text(&self, raw: Option<&RawValue>) -> Result<Option<Text>, LayerAnswer> {
        text(&self.text, raw)
    }

    /// The event id: absent or `null` → missing; anything but a string →
    /// invalid. Unescaped (`"\u0065vt"` is `evt`); a view into the body
    /// unless it had escapes.
    ///
    /// # Errors
    ///
    /// [`LayerAnswer::MissingId`] or [`LayerAnswer::InvalidId`].
    pub(crate) fn id(&self, raw: Option<&RawValue>) -> Result<Text, LayerAnswer> {
        match raw.map(RawValue::get) {
            None | Some("null") => Err(LayerAnswer::MissingId),
            Some(json) if json.starts_with('"') => {
                string(&self.text, json).map_err(|_| LayerAnswer::InvalidId)
            }
            Some(_) => Err(LayerAnswer::InvalidId),
        }
    }

    /// An integer field; `null` or absent → `None`.
    ///
    /// # Errors
    ///
    /// [`LayerAnswer::InvalidPayload`] for anything but an integer.
    pub(crate) fn integer(raw: Option<&RawValue>) -> Result<Option<i64>, LayerAnswer> {
        match raw.map(RawValue::get) {
            None | Some("null") => Ok(None),
            Some(json) => json
                .parse()
                .map(Some)
                .map_err(|_| LayerAnswer::InvalidPayload),
        }
    }
}

/// A field a scheme types during the envelope's one pass, when the fields
/// it depends on came before it (Numero's `data` after its `event`), so
/// that its bytes are read once; otherwise it is captured raw like any
/// other, for the scheme to type afterwards.
pub(crate) trait Inline<'de> {
    /// The typed field.
    type Value;

    /// The field's slot.
    fn slot(&self) -> usize;

    /// Whether to type the field now, given the fields read before it.
    fn now(&self, before: &[Option<&'de RawValue>]) -> bool;

    /// Types the field's value. A data error (a wrong type, a repeated
    /// field) is [`LayerAnswer::InvalidPayload`], as for any field.
    ///
    /// # Errors
    ///
    /// The deserializer's.
    fn deserialize<D: Deserializer<'de>>(&self, deserializer: D) -> Result<Self::Value, D::Error>;
}

/// No field typed during the pass.
struct NoInline;

impl<'de> Inline<'de> for NoInline {
    type Value = ();

    fn slot(&self) -> usize {
        usize::MAX
    }

    fn now(&self, _: &[Option<&'de RawValue>]) -> bool {
        false
    }

    fn deserialize<D: Deserializer<'de>>(&self, deserializer: D) -> Result<(), D::Error> {
        IgnoredAny::deserialize(deserializer).map(drop)
    }
}

/// The one pass under [`Json::fields`], [`Json::fields_with`] and
/// [`Json::nested`].
fn read_slots<'b, const N: usize, F: AsRef<str>, I: Inline<'b>>(
    json: &'b str,
    fields: &[(F, usize)],
    id_slots: &[usize],
    inline: &I,
) -> Result<Read<'b, N, I::Value>, LayerAnswer> {
    let mut de = serde_json::Deserializer::from_str(json);
    let seed = Seed::<N, F, I> { fields, inline };
    let result = seed.deserialize(&mut de).and_then(|slots| {
        de.end()?;
        Ok(slots)
    });
    match result {
        Ok(Ok(slots)) => Ok(slots),
        Ok(Err(slot)) if id_slots.contains(&slot) => Err(LayerAnswer::AmbiguousId),
        Ok(Err(_)) => Err(LayerAnswer::InvalidPayload),
        Err(e) if e.is_data() => Err(LayerAnswer::InvalidPayload),
        Err(_) => Err(LayerAnswer::InvalidJson),
    }
}

/// A text field, accepting a string, a number or a boolean (providers are not
/// always consistent about quoting; a number is kept as its JSON text);
/// `null` or absent → `None`. A view into `body` unless the string had
/// escapes; `raw` must be a slice of `body`.
///
/// # Errors
///
/// [`LayerAnswer::InvalidPayload`] for an object or an array.
#[inline]
pub(crate) fn text(body: &Text, raw: Option<&RawValue>) -> Result<Option<Text>, LayerAnswer> {
    let Some(json) = raw.map(RawValue::get) else {
        return Ok(None);
    };
    match json.as_bytes().first() {
        Some(b'"') => string(body, json)
            .map(Some)
            .map_err(|_| LayerAnswer::InvalidPayload),
        Some(b'{' | b'[') | None => Err(LayerAnswer::InvalidPayload),
        _ if json == "null" => Ok(None),
        _ => Ok(Some(body.slice_ref(json))),
    }
}

/// The value of `json`, a JSON string token captured from `body` by serde
/// (so already valid: no raw `"` or control character inside): a view when
/// it holds no `\\`, else its unescaped copy. Cheaper than
/// [`Text::json_string`], which checks for a stray `"` too.
pub(crate) fn string(body: &Text, json: &str) -> Result<Text, serde_json::Error> {
    match json.get(1..json.len().saturating_sub(1)) {
        Some(inner) if json.len() >= 2 && !inner.as_bytes().contains(&b'\\') => {
            Ok(body.slice_ref(inner))
        }
        _ => serde_json::from_str::<String>(json).map(Text::from),
    }
}

struct Seed<'f, const N: usize, F, I> {
    fields: &'f [(F, usize)],
    inline: &'f I,
}

/// The raw JSON of each slot, and the field typed during the pass
/// ([`Json::fields_with`]).
pub(crate) type Read<'de, const N: usize, T> = ([Option<&'de RawValue>; N], Option<T>);

/// What the pass read; or, as the error, a repeated slot (serde's error
/// type cannot carry it).
type Slots<'de, const N: usize, T> = Result<Read<'de, N, T>, usize>;

impl<'de, const N: usize, F: AsRef<str>, I: Inline<'de>> DeserializeSeed<'de>
    for Seed<'_, N, F, I>
{
    type Value = Slots<'de, N, I::Value>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, const N: usize, F: AsRef<str>, I: Inline<'de>> Visitor<'de> for Seed<'_, N, F, I> {
    type Value = Slots<'de, N, I::Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut slots = [None; N];
        let mut typed = None;
        let mut repeated = None;
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            match self.fields.iter().find(|(name, _)| name.as_ref() == key) {
                Some(&(_, slot))
                    if slot == self.inline.slot()
                        && slots[slot].is_none()
                        && typed.is_none()
                        && self.inline.now(&slots) =>
                {
                    typed = Some(map.next_value_seed(InlineSeed(self.inline))?);
                }
                Some(&(_, slot)) => {
                    let value: &'de RawValue = map.next_value()?;
                    let typed_before = slot == self.inline.slot() && typed.is_some();
                    if slots[slot].replace(value).is_some() || typed_before {
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
            None => Ok((slots, typed)),
        })
    }
}

/// Types the inline field's value.
struct InlineSeed<'i, I>(&'i I);

impl<'de, I: Inline<'de>> DeserializeSeed<'de> for InlineSeed<'_, I> {
    type Value = I::Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<I::Value, D::Error> {
        self.0.deserialize(deserializer)
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

    fn json(body: &str) -> Json {
        Json::new(&Bytes::copy_from_slice(body.as_bytes())).unwrap()
    }

    fn read2(json: &Json) -> Result<[Option<&RawValue>; 2], LayerAnswer> {
        json.fields::<2>(FIELDS, &[0])
    }

    #[test]
    fn escaped_keys_and_values_compare_decoded() {
        let body = json(r#"{"\u0069d":"\u0065vt","y":[1,{"id":2}]}"#);
        let fields = read2(&body).unwrap();
        assert_eq!(body.id(fields[0]).unwrap(), "evt");
    }

    #[test]
    fn fields_are_views_into_the_body() {
        let body = json(r#"{"id":"evt_1","x":12.50}"#);
        let fields = read2(&body).unwrap();
        let start = body.as_text().as_ptr() as usize;
        let id = body.id(fields[0]).unwrap();
        assert_eq!((id.as_ptr() as usize - start, id.as_str()), (7, "evt_1"));
        let x = body.text(fields[1]).unwrap().unwrap();
        assert_eq!((x.as_ptr() as usize - start, x.as_str()), (18, "12.50"));
    }

    #[test]
    fn a_repeated_field_is_ambiguous_for_ids_and_invalid_otherwise() {
        let reason = |body: &str| read2(&json(body)).err().unwrap();
        assert_eq!(reason(r#"{"id":"a","Id":"a"}"#), LayerAnswer::AmbiguousId);
        assert_eq!(reason(r#"{"id":"a","id":"b"}"#), LayerAnswer::AmbiguousId);
        assert_eq!(reason(r#"{"x":1,"x":1}"#), LayerAnswer::InvalidPayload);
    }

    #[test]
    fn failures_are_classified() {
        let reason = |body: &str| read2(&json(body)).err().unwrap();
        assert_eq!(
            Json::new(&Bytes::from_static(b"\xff{}")).err(),
            Some(LayerAnswer::NotUtf8)
        );
        assert_eq!(reason("{"), LayerAnswer::InvalidJson);
        assert_eq!(reason("{} x"), LayerAnswer::InvalidJson);
        assert_eq!(reason("[1]"), LayerAnswer::InvalidPayload);
        let empty = json("{}");
        assert_eq!(
            empty.id(read2(&empty).unwrap()[0]),
            Err(LayerAnswer::MissingId)
        );
        let number = json(r#"{"id":5,"x":{}}"#);
        let fields = read2(&number).unwrap();
        assert_eq!(number.id(fields[0]), Err(LayerAnswer::InvalidId));
        assert_eq!(number.text(fields[1]), Err(LayerAnswer::InvalidPayload));
    }

    #[test]
    fn nested_objects_and_integers_read() {
        let body = json(r#"{"a":"x","n":5,"o":{"b":"\u0079"},"l":[1]}"#);
        let slots = body
            .fields::<4>(&[("a", 0), ("n", 1), ("o", 2), ("l", 3)], &[])
            .unwrap();
        assert_eq!(body.text(slots[0]).unwrap().unwrap(), "x");
        assert_eq!(body.text(slots[1]).unwrap().unwrap(), "5");
        assert_eq!(Json::integer(slots[1]), Ok(Some(5)));
        let inner = body.nested::<1>(slots[2], &[("b", 0)]).unwrap();
        assert_eq!(body.text(inner[0]).unwrap().unwrap(), "y");
        assert_eq!(
            body.nested::<1>(slots[3], &[("b", 0)]).unwrap_err(),
            LayerAnswer::InvalidPayload
        );
        assert_eq!(
            body.text(slots[3]).unwrap_err(),
            LayerAnswer::InvalidPayload
        );
        assert_eq!(body.id(None).unwrap_err(), LayerAnswer::MissingId);
        assert_eq!(body.id(slots[1]).unwrap_err(), LayerAnswer::InvalidId);
    }
}
