//! Header values for senders and tests: the exact signature header each
//! scheme expects for a body.
//!
//! ```
//! let header = tower_webhook::sign::numberotp(b"secret", br#"{"id":"act_1"}"#);
//! assert!(header.starts_with("sha256="));
//! ```

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::secret::Tag;

/// The HMAC-SHA256 tag of `content` under `key`.
pub fn tag(key: &[u8], content: &[u8]) -> Tag {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(content);
    Tag::from_bytes(mac.finalize().into_bytes().into())
}

/// `x-numberotp-signature` for `body`: `sha256=<lower-case hex>`.
pub fn numberotp(secret: &[u8], body: &[u8]) -> String {
    format!("sha256={}", tag(secret, body).to_hex())
}

/// `X-Webhook-Signature` for `body`, in standard padded base64.
pub fn numero(secret: &[u8], body: &[u8]) -> String {
    tag(secret, body).to_base64()
}

/// `X-Webhook-Signature` for `body`, in lower-case hex (Numero's other
/// accepted form).
pub fn numero_hex(secret: &[u8], body: &[u8]) -> String {
    tag(secret, body).to_hex()
}
