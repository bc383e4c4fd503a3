//! [`Algorithm`]: how a scheme's senders sign, and so how long a tag is.

use std::fmt;

/// How a delivery is signed. A [`Tag`](super::Tag) and a [`Key`](super::Key)
/// each carry one; the layer only ever compares a tag with a key of the same
/// algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Algorithm {
    /// HMAC-SHA256: 32-byte tags. Most providers, and the default.
    #[default]
    HmacSha256,
    /// HMAC-SHA512: 64-byte tags (Paystack).
    HmacSha512,
    /// HMAC-SHA1: 20-byte tags. Only for a provider that requires it
    /// (Twilio); SHA-1 is kept for HMAC, where its collisions do not help a
    /// forger, never offered as a choice elsewhere.
    HmacSha1,
    /// Ed25519 signatures (64 bytes) checked against a public key (Discord,
    /// Standard Webhooks `v1a`); needs the crate feature `ed25519`.
    Ed25519,
    /// No signature at all: the sender repeats a shared token in a header
    /// (Flutterwave's legacy `verif-hash`). The tag is the SHA-256 of the
    /// header value and is compared, in constant time, with the SHA-256 of
    /// the configured secret; the body is not covered.
    SharedToken,
}

impl Algorithm {
    /// The length of one tag in bytes, which a tag is decoded into exactly
    /// before any comparison.
    pub const fn tag_len(self) -> usize {
        match self {
            Self::HmacSha256 | Self::SharedToken => 32,
            Self::HmacSha512 | Self::Ed25519 => 64,
            Self::HmacSha1 => 20,
        }
    }

    /// A short lower-case name, as in the README's provider table.
    pub const fn name(self) -> &'static str {
        match self {
            Self::HmacSha256 => "hmac-sha256",
            Self::HmacSha512 => "hmac-sha512",
            Self::HmacSha1 => "hmac-sha1",
            Self::Ed25519 => "ed25519",
            Self::SharedToken => "shared-token",
        }
    }

    /// Whether a key of this algorithm can compute tags (an HMAC), rather
    /// than only check them (a public key, a token).
    pub const fn is_hmac(self) -> bool {
        matches!(self, Self::HmacSha256 | Self::HmacSha512 | Self::HmacSha1)
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
