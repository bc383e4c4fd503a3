//! Secrets, rotation sets, and HMAC-SHA256 verification in constant time.
//!
//! The keyed HMAC state (the hashed inner and outer pads) is computed once per
//! secret when the set is built; a request clones that state instead of
//! re-keying. Tags are decoded into exactly 32 bytes before any comparison, so
//! a truncated or overlong tag never reaches the compare.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// Length in bytes of an HMAC-SHA256 tag.
pub const TAG_LEN: usize = 32;

/// A 32-byte HMAC-SHA256 tag, as decoded from a signature header.
///
/// `==` compares in constant time, so comparing tags directly is as safe as
/// [`SecretSet::verify`].
#[derive(Clone, Copy, Eq)]
pub struct Tag([u8; TAG_LEN]);

impl PartialEq for Tag {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

/// A tag that is not exactly 32 bytes in the expected encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidTag;

impl fmt::Display for InvalidTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a 32-byte tag in the expected encoding")
    }
}

impl std::error::Error for InvalidTag {}

impl Tag {
    /// Wraps 32 raw bytes.
    pub fn from_bytes(bytes: [u8; TAG_LEN]) -> Self {
        Self(bytes)
    }

    /// Decodes exactly 64 hex digits, in either case.
    ///
    /// # Errors
    ///
    /// [`InvalidTag`] for any other length or a non-hex byte.
    pub fn from_hex(hex_digits: &[u8]) -> Result<Self, InvalidTag> {
        let mut out = [0u8; TAG_LEN];
        hex::decode_to_slice(hex_digits, &mut out).map_err(|_| InvalidTag)?;
        Ok(Self(out))
    }

    /// Decodes standard, padded, canonical base64 of exactly 32 bytes
    /// (44 characters).
    ///
    /// # Errors
    ///
    /// [`InvalidTag`] for any other length, a missing or extra pad, a
    /// non-canonical final character, or a byte outside the alphabet.
    pub fn from_base64(text: &[u8]) -> Result<Self, InvalidTag> {
        // 32 bytes encode to 43 characters plus one pad; checking the length
        // first also keeps the decode below from ever writing past `out`.
        if text.len() != 44 {
            return Err(InvalidTag);
        }
        let mut out = [0u8; TAG_LEN];
        match STANDARD.decode_slice(text, &mut out) {
            Ok(TAG_LEN) => Ok(Self(out)),
            _ => Err(InvalidTag),
        }
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; TAG_LEN] {
        &self.0
    }

    /// Lower-case hex, as `sha256=` headers carry it.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Standard padded base64.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A tag is not secret, but printing it in full invites logging the
        // expected tag next to a forged one; the prefix is enough to debug.
        write!(f, "Tag({}…)", &self.to_hex()[..8])
    }
}

/// What a sender's headers claim: one or more candidate tags, and the bytes
/// the sender signed before the body (empty for schemes that sign the body
/// alone; `"{id}.{timestamp}."` for Standard Webhooks, for example).
///
/// A [`Scheme`](crate::Scheme) builds it from the headers alone; the layer
/// verifies it over `prefix ‖ body` once the body has arrived.
#[derive(Debug, Clone)]
pub struct Signature {
    prefix: Vec<u8>,
    first: Tag,
    more: Vec<Tag>,
}

impl Signature {
    /// One tag over the body alone.
    pub fn over_body(tag: Tag) -> Self {
        Self {
            prefix: Vec::new(),
            first: tag,
            more: Vec::new(),
        }
    }

    /// Adds another candidate tag; any one that verifies passes.
    #[must_use]
    pub fn or_tag(mut self, tag: Tag) -> Self {
        self.more.push(tag);
        self
    }

    /// Sets the bytes the sender signed before the body.
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<Vec<u8>>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The signed bytes that precede the body.
    pub fn prefix(&self) -> &[u8] {
        &self.prefix
    }

    /// Every candidate tag, first one first.
    pub fn tags(&self) -> impl Iterator<Item = &Tag> {
        std::iter::once(&self.first).chain(&self.more)
    }
}

/// No configured secret produced any of the given tags.
///
/// Zero-sized, like `hmac::digest::MacError`: it says nothing about which
/// secret or byte differed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MacMismatch;

impl fmt::Display for MacMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("no configured secret produced the given tag")
    }
}

impl std::error::Error for MacMismatch {}

/// A secret that cannot be used, reported when the layer is built.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SecretError {
    /// No secret was configured.
    NoSecrets,
    /// Secret number `index` (from 0) is empty.
    Empty {
        /// Position of the secret in the order it was given.
        index: usize,
    },
    /// Secret number `index` contains whitespace, which no provider puts in
    /// a secret: most often a stray newline from a file or an env var.
    Whitespace {
        /// Position of the secret in the order it was given.
        index: usize,
    },
    /// The scheme could not decode secret number `index`.
    Undecodable {
        /// Position of the secret in the order it was given.
        index: usize,
        /// What the scheme expected, in a few words.
        expected: &'static str,
    },
}

impl fmt::Display for SecretError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoSecrets => f.write_str("no webhook secret configured"),
            Self::Empty { index } => write!(f, "webhook secret #{index} is empty"),
            Self::Whitespace { index } => write!(
                f,
                "webhook secret #{index} contains whitespace (a stray newline?)"
            ),
            Self::Undecodable { index, expected } => {
                write!(f, "webhook secret #{index} is not {expected}")
            }
        }
    }
}

impl std::error::Error for SecretError {}

/// The secrets one scheme accepts: several during a rotation, old and new.
///
/// `Debug` prints only how many secrets there are.
#[derive(Clone)]
pub struct SecretSet {
    keyed: Vec<HmacSha256>,
}

impl SecretSet {
    /// Builds a set from raw key bytes, keying each HMAC once.
    ///
    /// # Errors
    ///
    /// [`SecretError::NoSecrets`] for no keys, [`SecretError::Empty`] for an
    /// empty one.
    pub fn from_keys<I, K>(keys: I) -> Result<Self, SecretError>
    where
        I: IntoIterator<Item = K>,
        K: AsRef<[u8]>,
    {
        let mut keyed = Vec::new();
        for (index, key) in keys.into_iter().enumerate() {
            let key = key.as_ref();
            if key.is_empty() {
                return Err(SecretError::Empty { index });
            }
            keyed.push(HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length"));
        }
        if keyed.is_empty() {
            return Err(SecretError::NoSecrets);
        }
        Ok(Self { keyed })
    }

    /// How many secrets the set holds.
    pub fn len(&self) -> usize {
        self.keyed.len()
    }

    /// Always false: a set holds at least one secret.
    pub fn is_empty(&self) -> bool {
        self.keyed.is_empty()
    }

    /// Checks that some secret's HMAC of `prefix ‖ body` equals some tag of
    /// `signature`, comparing in constant time.
    ///
    /// # Errors
    ///
    /// [`MacMismatch`] when no pair matches.
    pub fn verify(&self, signature: &Signature, body: &[u8]) -> Result<(), MacMismatch> {
        for keyed in &self.keyed {
            let mut mac = keyed.clone();
            mac.update(signature.prefix());
            mac.update(body);
            let computed = mac.finalize().into_bytes();
            let mut any = subtle::Choice::from(0);
            for tag in signature.tags() {
                any |= computed.as_slice().ct_eq(tag.as_bytes());
            }
            if bool::from(any) {
                return Ok(());
            }
        }
        Err(MacMismatch)
    }

    /// The tag the first (newest-listed) secret gives `prefix ‖ body`; for
    /// signing helpers and tests.
    pub fn sign(&self, prefix: &[u8], body: &[u8]) -> Tag {
        let mut mac = self.keyed[0].clone();
        mac.update(prefix);
        mac.update(body);
        Tag(mac.finalize().into_bytes().into())
    }
}

impl fmt::Debug for SecretSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretSet")
            .field("secrets", &self.keyed.len())
            .finish_non_exhaustive()
    }
}

/// Checks a secret as the provider shows it: not empty, no whitespace.
pub(crate) fn check_secret_text(index: usize, secret: &str) -> Result<(), SecretError> {
    if secret.is_empty() {
        return Err(SecretError::Empty { index });
    }
    if secret.chars().any(char::is_whitespace) {
        return Err(SecretError::Whitespace { index });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_rejects_wrong_lengths_and_non_canonical_base64() {
        assert_eq!(Tag::from_hex(&[b'a'; 62]), Err(InvalidTag));
        assert_eq!(Tag::from_hex(&[b'a'; 66]), Err(InvalidTag));
        let good = Tag::from_bytes([7; 32]).to_base64();
        assert!(Tag::from_base64(good.as_bytes()).is_ok());
        // Same bytes with non-zero trailing bits in the last symbol.
        let mut bent = good.into_bytes();
        bent[42] = if bent[42] == b'c' { b'd' } else { b'c' };
        assert_eq!(Tag::from_base64(&bent), Err(InvalidTag));
        // Unpadded.
        assert_eq!(Tag::from_base64(&bent[..43]), Err(InvalidTag));
    }

    #[test]
    fn debug_never_prints_key_material() {
        let set = SecretSet::from_keys(["super-secret-value"]).unwrap();
        let printed = format!("{set:?}");
        assert!(!printed.contains("super"), "{printed}");
    }
}
