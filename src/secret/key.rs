//! [`Key`]: one decoded secret with its algorithm, and its prepared form
//! (the keyed HMAC state, the parsed public key), built once per layer.

use std::fmt;

use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest as _, Sha256, Sha512};
use subtle::ConstantTimeEq;

use super::{Algorithm, Tag};

/// A secret decoded from the text a provider shows, with the algorithm it
/// is for: an HMAC key, an Ed25519 public key (32 bytes), or a shared token.
///
/// `Debug` prints the algorithm only.
#[derive(Clone, PartialEq, Eq)]
pub struct Key {
    algorithm: Algorithm,
    bytes: Vec<u8>,
}

impl Key {
    /// Key bytes for `algorithm`; checked when the layer is built.
    pub fn new(algorithm: Algorithm, bytes: impl Into<Vec<u8>>) -> Self {
        Self {
            algorithm,
            bytes: bytes.into(),
        }
    }

    /// An HMAC-SHA256 key (the default algorithm).
    pub fn hmac_sha256(bytes: impl Into<Vec<u8>>) -> Self {
        Self::new(Algorithm::HmacSha256, bytes)
    }

    /// The algorithm the key is for.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The raw key bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// A key ready to use: the HMAC state keyed once (inner and outer pads
/// hashed), the public key decompressed once, the token hashed once.
#[derive(Clone)]
pub(super) enum Prepared {
    HmacSha256(Hmac<Sha256>),
    HmacSha512(Hmac<Sha512>),
    HmacSha1(Hmac<Sha1>),
    #[cfg(feature = "ed25519")]
    Ed25519(ed25519_dalek::VerifyingKey),
    SharedToken([u8; 32]),
}

/// Why a key cannot be prepared, in a few words.
pub(super) type Unusable = &'static str;

impl Prepared {
    /// Prepares `key`; `Err` says what was expected.
    pub(super) fn new(key: &Key) -> Result<Self, Unusable> {
        let bytes = key.as_bytes();
        let hmac = "an HMAC key";
        Ok(match key.algorithm {
            Algorithm::HmacSha256 => {
                Self::HmacSha256(Mac::new_from_slice(bytes).map_err(|_| hmac)?)
            }
            Algorithm::HmacSha512 => {
                Self::HmacSha512(Mac::new_from_slice(bytes).map_err(|_| hmac)?)
            }
            Algorithm::HmacSha1 => Self::HmacSha1(Mac::new_from_slice(bytes).map_err(|_| hmac)?),
            Algorithm::SharedToken => Self::SharedToken(Sha256::digest(bytes).into()),
            Algorithm::Ed25519 => return ed25519(bytes),
        })
    }

    pub(super) fn algorithm(&self) -> Algorithm {
        match self {
            Self::HmacSha256(_) => Algorithm::HmacSha256,
            Self::HmacSha512(_) => Algorithm::HmacSha512,
            Self::HmacSha1(_) => Algorithm::HmacSha1,
            #[cfg(feature = "ed25519")]
            Self::Ed25519(_) => Algorithm::Ed25519,
            Self::SharedToken(_) => Algorithm::SharedToken,
        }
    }

    /// The HMAC tag of `parts` concatenated, for HMAC keys; `None` for keys
    /// that can only check.
    pub(super) fn mac(&self, parts: &[&[u8]]) -> Option<Tag> {
        fn run<M: Mac + Clone>(keyed: &M, parts: &[&[u8]], algorithm: Algorithm) -> Tag {
            let mut mac = keyed.clone();
            for part in parts {
                mac.update(part);
            }
            Tag::from_slice(algorithm, &mac.finalize().into_bytes())
                .expect("the MAC's output length is its algorithm's tag length")
        }
        let algorithm = self.algorithm();
        match self {
            Self::HmacSha256(keyed) => Some(run(keyed, parts, algorithm)),
            Self::HmacSha512(keyed) => Some(run(keyed, parts, algorithm)),
            Self::HmacSha1(keyed) => Some(run(keyed, parts, algorithm)),
            _ => None,
        }
    }

    /// Whether any of `tags` (all of this key's algorithm) is a valid tag of
    /// `prefix ‖ content` under this key. HMAC tags are compared in constant
    /// time, all of them every time.
    pub(super) fn verifies<'t>(
        &self,
        prefix: &[u8],
        content: &[u8],
        tags: impl Iterator<Item = &'t Tag>,
    ) -> bool {
        if let Some(computed) = self.mac(&[prefix, content]) {
            let mut any = subtle::Choice::from(0);
            for tag in tags {
                any |= computed.as_bytes().ct_eq(tag.as_bytes());
            }
            return any.into();
        }
        match self {
            Self::SharedToken(digest) => {
                let mut any = subtle::Choice::from(0);
                for tag in tags {
                    any |= digest.ct_eq(tag.as_bytes());
                }
                any.into()
            }
            #[cfg(feature = "ed25519")]
            Self::Ed25519(public) => {
                // Ed25519 hashes the message whole: one contiguous copy
                // when a prefix precedes the body.
                let joined;
                let message = if prefix.is_empty() {
                    content
                } else {
                    joined = [prefix, content].concat();
                    &joined
                };
                let mut tags = tags;
                tags.any(|tag| {
                    let bytes: &[u8; 64] = tag.as_bytes().try_into().expect("64-byte tag");
                    let signature = ed25519_dalek::Signature::from_bytes(bytes);
                    public.verify_strict(message, &signature).is_ok()
                })
            }
            _ => false,
        }
    }
}

#[cfg(feature = "ed25519")]
fn ed25519(bytes: &[u8]) -> Result<Prepared, Unusable> {
    const EXPECTED: &str = "a 32-byte Ed25519 public key";
    let bytes: &[u8; 32] = bytes.try_into().map_err(|_| EXPECTED)?;
    let public = ed25519_dalek::VerifyingKey::from_bytes(bytes).map_err(|_| EXPECTED)?;
    // A small-order key verifies signatures nobody made; `verify_strict`
    // refuses them too, but a key that can never verify is a configuration
    // error, reported now.
    if public.is_weak() {
        return Err(EXPECTED);
    }
    Ok(Prepared::Ed25519(public))
}

#[cfg(not(feature = "ed25519"))]
fn ed25519(_: &[u8]) -> Result<Prepared, Unusable> {
    Err("an Ed25519 public key, with the crate feature `ed25519` enabled")
}
