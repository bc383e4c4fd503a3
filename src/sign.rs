//! What senders and tests sign with: HMAC tags, Ed25519 public keys and
//! RFC 3339 times. Each provider's exact signature header is a `sign`
//! function in its own module ([`crate::numberotp::sign`],
//! [`crate::stripe::sign`], …).
//!
//! ```
//! let header = tower_webhook::numberotp::sign(b"secret", br#"{"id":"act_1"}"#);
//! assert!(header.starts_with("sha256="));
//! assert_eq!(tower_webhook::sign::tag(b"secret", b"body").to_hex().len(), 64);
//! ```

use crate::secret::{Algorithm, Tag};

/// The HMAC-SHA256 tag of `content` under `key`.
pub fn tag(key: &[u8], content: &[u8]) -> Tag {
    crate::secret::hmac_sha256(key, content)
}

/// The HMAC tag of `content` under `key`, for an HMAC `algorithm`.
///
/// # Panics
///
/// When `algorithm` is not an HMAC ([`Algorithm::is_hmac`]).
pub fn hmac(algorithm: Algorithm, key: &[u8], content: &[u8]) -> Tag {
    crate::secret::hmac(algorithm, key, content)
}

/// The Ed25519 public key (lower-case hex, as Discord shows it) of the
/// signing key `seed` (feature `ed25519`).
#[cfg(feature = "ed25519")]
pub fn ed25519_public_key_hex(seed: &[u8; 32]) -> String {
    hex::encode(
        ed25519_dalek::SigningKey::from_bytes(seed)
            .verifying_key()
            .as_bytes(),
    )
}

/// `time` in RFC 3339, UTC, whole seconds (`2025-07-10T05:10:55Z`): the form
/// Numero signs as `created_at`. A sample payload must carry a recent one,
/// or the layer's replay window refuses it
/// ([`WebhookLayerBuilder::replay_window`](crate::WebhookLayerBuilder::replay_window)).
pub fn rfc3339(time: std::time::SystemTime) -> String {
    crate::scheme::timestamp::rfc3339::format(time)
}
