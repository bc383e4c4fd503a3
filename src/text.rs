//! [`Text`]: a string field of an event that shares the verified body's
//! bytes instead of copying them.
//!
//! The body is checked as UTF-8 once; every field that needs no unescaping
//! is then a view into it (a reference count, no copy). A JSON string with
//! escapes (`"\u0065vt"`) is unescaped into a buffer of its own: one
//! allocation, only then.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

use bytes::Bytes;
use bytestring::ByteString;
use serde::{Serialize, Serializer};

/// An immutable, cheaply cloned UTF-8 string, usually a view into the
/// verified webhook body. Use it as a `&str` (`Deref`), print it
/// (`Display`), serialize it as a JSON string, or compare it with any
/// string.
///
/// # Keeping a `Text` keeps its whole body
///
/// A view holds a reference count on the body it points into, so a `Text`
/// kept after the request (in a cache, a log, a map of recent ids) keeps
/// that whole body in memory, however short the text: a thousand kept
/// 6-byte ids of one-MiB deliveries hold a GiB. To keep one, copy it:
/// [`String::from(text)`](String::from) or `text.to_string()` for a
/// `String`, [`Text::from(text.as_str())`](Text::from) for a `Text` of its
/// own, [`EventId::new(id.as_str())`](crate::EventId::new) for a
/// single-part [`EventId`](crate::EventId). Within the request, and in
/// what lives no longer than its event (a queued job's handler run), use
/// it as it is.
///
/// ```
/// use bytes::Bytes;
/// use tower_webhook::Text;
///
/// let body = Text::from_utf8(Bytes::from_static(br#"{"id":"evt_1"}"#)).unwrap();
/// let id = body.slice_ref(&body[7..12]); // a view: keeps all of `body`
/// let kept = Text::from(id.as_str()); // a copy: keeps five bytes
/// assert_eq!(kept, id);
/// assert_ne!(kept.as_bytes().as_ptr(), id.as_bytes().as_ptr());
/// ```
#[derive(Clone, Default, PartialOrd, Ord)]
pub struct Text(ByteString);

impl Text {
    /// A text over a string constant, without allocating.
    pub const fn from_static(text: &'static str) -> Self {
        Self(ByteString::from_static(text))
    }

    /// The text as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The bytes the text shares.
    pub fn as_bytes(&self) -> &Bytes {
        self.0.as_bytes()
    }

    /// Checks `bytes` as UTF-8 once; the text then shares them.
    ///
    /// # Errors
    ///
    /// The bytes back, when they are not UTF-8.
    pub fn from_utf8(bytes: Bytes) -> Result<Self, Bytes> {
        // One check: `try_from` validates; the clone is a reference count.
        ByteString::try_from(bytes.clone())
            .map(Self)
            .map_err(|_| bytes)
    }

    /// The part `subset` of this text, sharing its bytes.
    ///
    /// # Panics
    ///
    /// When `subset` is not a slice of `self` (as `Bytes::slice_ref`).
    pub fn slice_ref(&self, subset: &str) -> Self {
        Self(self.0.slice_ref(subset))
    }

    /// The value of the JSON string `raw` (quotes included), which must be
    /// a slice of this text: a view when it holds no escape, else its
    /// unescaped copy.
    ///
    /// # Errors
    ///
    /// When `raw` is not a JSON string.
    pub fn json_string(&self, raw: &str) -> Result<Self, serde_json::Error> {
        // `[u8]::contains` runs a word-at-a-time memchr; a `char` pattern
        // set would test each character in turn.
        let inner = raw
            .strip_prefix('"')
            .and_then(|rest| rest.strip_suffix('"'))
            .filter(|inner| {
                !inner.as_bytes().contains(&b'\\') && !inner.as_bytes().contains(&b'"')
            });
        match inner {
            Some(inner) => Ok(self.slice_ref(inner)),
            None => serde_json::from_str::<String>(raw).map(Self::from),
        }
    }
}

impl Deref for Text {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for Text {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl From<String> for Text {
    /// Takes over `text`'s buffer (shrunk to its length, so that no second
    /// allocation is needed to track spare capacity).
    fn from(text: String) -> Self {
        Self(ByteString::from(text.into_boxed_str()))
    }
}

impl From<&str> for Text {
    /// Copies `text`.
    fn from(text: &str) -> Self {
        Self(ByteString::from(text))
    }
}

impl From<Text> for String {
    fn from(text: Text) -> Self {
        text.as_str().to_owned()
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Text {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Text {}

impl Hash for Text {
    // As `str` hashes, so that `Borrow<str>` lookups agree.
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for Text {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<Text> for str {
    fn eq(&self, other: &Text) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<Text> for &str {
    fn eq(&self, other: &Text) -> bool {
        *self == other.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_strings_are_views_and_escaped_ones_are_unescaped() {
        let body =
            Text::from_utf8(Bytes::from_static(br#"{"id":"evt_1","x":"\u0065vt"}"#)).unwrap();
        let id = body.json_string(&body[6..13]).unwrap();
        assert_eq!(id, "evt_1");
        let start = body.as_bytes().as_ptr() as usize;
        assert_eq!(
            id.as_bytes().as_ptr() as usize,
            start + 7,
            "a view, not a copy"
        );
        let escaped = body.json_string(&body[18..28]).unwrap();
        assert_eq!(escaped, "evt");
        assert!(body.json_string("12").is_err());
        assert_eq!(format!("{id} {id:?}"), r#"evt_1 "evt_1""#);
        assert_eq!(serde_json::to_string(&id).unwrap(), r#""evt_1""#);
        assert!(Text::from_utf8(Bytes::from_static(b"\xff")).is_err());
    }
}
