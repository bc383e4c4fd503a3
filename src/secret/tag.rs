//! [`Tag`]: one candidate signature from a header, decoded into exactly its
//! algorithm's length.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use subtle::ConstantTimeEq;

use super::Algorithm;

/// Length in bytes of an HMAC-SHA256 tag (the default algorithm).
pub const TAG_LEN: usize = 32;

/// Length in bytes of the longest tag of any [`Algorithm`] (HMAC-SHA512 and
/// Ed25519: 64).
pub const MAX_TAG_LEN: usize = 64;

/// A tag as decoded from a signature header, with its [`Algorithm`]: exactly
/// [`Algorithm::tag_len`] bytes.
///
/// The constructors without an algorithm ([`Tag::from_bytes`],
/// [`Tag::from_hex`], [`Tag::from_base64`]) make HMAC-SHA256 tags.
///
/// `==` compares in constant time (after the algorithm, which is public), so
/// comparing tags directly is as safe as [`SecretSet::verify`](super::SecretSet::verify).
#[derive(Clone, Copy, Eq)]
pub struct Tag {
    algorithm: Algorithm,
    bytes: [u8; MAX_TAG_LEN],
}

impl PartialEq for Tag {
    fn eq(&self, other: &Self) -> bool {
        self.algorithm == other.algorithm && bool::from(self.as_bytes().ct_eq(other.as_bytes()))
    }
}

/// A tag that is not exactly its algorithm's length in the expected encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidTag;

impl fmt::Display for InvalidTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a tag of the expected length in the expected encoding")
    }
}

impl std::error::Error for InvalidTag {}

impl Tag {
    /// Wraps 32 raw bytes as an HMAC-SHA256 tag.
    pub fn from_bytes(bytes: [u8; TAG_LEN]) -> Self {
        Self::from_slice(Algorithm::HmacSha256, &bytes).expect("32 bytes is HMAC-SHA256's length")
    }

    /// Wraps raw bytes as a tag of `algorithm`.
    ///
    /// # Errors
    ///
    /// [`InvalidTag`] unless `bytes` is exactly [`Algorithm::tag_len`] long.
    pub fn from_slice(algorithm: Algorithm, bytes: &[u8]) -> Result<Self, InvalidTag> {
        if bytes.len() != algorithm.tag_len() {
            return Err(InvalidTag);
        }
        let mut out = [0; MAX_TAG_LEN];
        out[..bytes.len()].copy_from_slice(bytes);
        Ok(Self {
            algorithm,
            bytes: out,
        })
    }

    /// Decodes exactly 64 hex digits, in either case, as an HMAC-SHA256 tag.
    ///
    /// # Errors
    ///
    /// [`InvalidTag`] for any other length or a non-hex byte.
    pub fn from_hex(hex_digits: &[u8]) -> Result<Self, InvalidTag> {
        Self::decode_hex(Algorithm::HmacSha256, hex_digits)
    }

    /// Decodes standard, padded, canonical base64 of exactly 32 bytes
    /// (44 characters) as an HMAC-SHA256 tag.
    ///
    /// # Errors
    ///
    /// [`InvalidTag`] for any other length, a missing or extra pad, a
    /// non-canonical final character, or a byte outside the alphabet.
    pub fn from_base64(text: &[u8]) -> Result<Self, InvalidTag> {
        Self::decode_base64(Algorithm::HmacSha256, text)
    }

    /// Decodes exactly twice [`Algorithm::tag_len`] hex digits, in either
    /// case, as a tag of `algorithm`.
    ///
    /// # Errors
    ///
    /// [`InvalidTag`] for any other length or a non-hex byte.
    pub fn decode_hex(algorithm: Algorithm, hex_digits: &[u8]) -> Result<Self, InvalidTag> {
        let mut out = [0; MAX_TAG_LEN];
        let len = algorithm.tag_len();
        hex::decode_to_slice(hex_digits, &mut out[..len]).map_err(|_| InvalidTag)?;
        Ok(Self {
            algorithm,
            bytes: out,
        })
    }

    /// Decodes standard, padded, canonical base64 of exactly
    /// [`Algorithm::tag_len`] bytes as a tag of `algorithm`.
    ///
    /// # Errors
    ///
    /// [`InvalidTag`] for any other length, a missing or extra pad, a
    /// non-canonical final character, or a byte outside the alphabet.
    pub fn decode_base64(algorithm: Algorithm, text: &[u8]) -> Result<Self, InvalidTag> {
        let len = algorithm.tag_len();
        // Checking the encoded length first also keeps the decode below from
        // ever writing past `out`.
        if text.len() != len.div_ceil(3) * 4 {
            return Err(InvalidTag);
        }
        // Room for the decoder's worst case, three bytes per four symbols.
        let mut out = [0; MAX_TAG_LEN + 2];
        match STANDARD.decode_slice(text, &mut out) {
            Ok(n) if n == len => Self::from_slice(algorithm, &out[..len]),
            _ => Err(InvalidTag),
        }
    }

    /// The algorithm this tag is for.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The raw bytes: exactly [`Algorithm::tag_len`] of them.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.algorithm.tag_len()]
    }

    /// Lower-case hex, as `sha256=` headers carry it.
    pub fn to_hex(&self) -> String {
        hex::encode(self.as_bytes())
    }

    /// Standard padded base64.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.as_bytes())
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A tag is not secret, but printing it in full invites logging the
        // expected tag next to a forged one; the prefix is enough to debug.
        write!(f, "Tag({}, {}…)", self.algorithm, &self.to_hex()[..8])
    }
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
    fn every_algorithm_decodes_exactly_its_length() {
        for algorithm in [
            Algorithm::HmacSha256,
            Algorithm::HmacSha512,
            Algorithm::HmacSha1,
            Algorithm::Ed25519,
            Algorithm::SharedToken,
        ] {
            let len = algorithm.tag_len();
            let raw: Vec<u8> = (0..len as u8).collect();
            let tag = Tag::from_slice(algorithm, &raw).unwrap();
            assert_eq!(tag.as_bytes(), &raw[..]);
            let hex = tag.to_hex();
            assert_eq!(Tag::decode_hex(algorithm, hex.as_bytes()), Ok(tag));
            assert!(Tag::decode_hex(algorithm, &hex.as_bytes()[2..]).is_err());
            assert!(Tag::decode_hex(algorithm, format!("{hex}00").as_bytes()).is_err());
            let b64 = tag.to_base64();
            assert_eq!(Tag::decode_base64(algorithm, b64.as_bytes()), Ok(tag));
            let longer = STANDARD.encode([&raw[..], &[0]].concat());
            assert!(Tag::decode_base64(algorithm, longer.as_bytes()).is_err());
            let shorter = STANDARD.encode(&raw[1..]);
            assert!(Tag::decode_base64(algorithm, shorter.as_bytes()).is_err());
            assert!(Tag::from_slice(algorithm, &raw[1..]).is_err());
        }
        // Equal bytes under two algorithms are two different tags.
        let a = Tag::from_slice(Algorithm::HmacSha256, &[1; 32]).unwrap();
        let b = Tag::from_slice(Algorithm::SharedToken, &[1; 32]).unwrap();
        assert_ne!(a, b);
    }
}
