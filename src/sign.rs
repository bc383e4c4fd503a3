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

/// `X-Hub-Signature-256` for `body` (GitHub): `sha256=<lower-case hex>`.
pub fn github(secret: &[u8], body: &[u8]) -> String {
    format!("sha256={}", tag(secret, body).to_hex())
}

/// A `webhook-signature` entry (Standard Webhooks, Svix) for message `id`
/// sent at `timestamp` (Unix seconds): `v1,<base64>` over
/// `{id}.{timestamp}.{body}`. `key` is the decoded secret: see
/// [`standard::decode_secret`](crate::standard::decode_secret) and
/// [`standard_secret`].
pub fn standard(key: &[u8], id: &str, timestamp: u64, body: &[u8]) -> String {
    let content = [format!("{id}.{timestamp}.").as_bytes(), body].concat();
    format!("v1,{}", tag(key, &content).to_base64())
}

/// A Standard Webhooks secret as providers show it: `whsec_` + base64 of
/// `key` (which should be 24 to 64 random bytes).
pub fn standard_secret(key: &[u8]) -> String {
    use base64::Engine as _;
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )
}

/// `Stripe-Signature` for `body` sent at `timestamp` (Unix seconds):
/// `t=<timestamp>,v1=<hex>` over `{timestamp}.{body}`.
pub fn stripe(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    let content = [format!("{timestamp}.").as_bytes(), body].concat();
    format!("t={timestamp},v1={}", tag(secret, &content).to_hex())
}

/// The signature header value a [`Custom`](crate::custom::Custom) scheme
/// expects for `body`: its prefix, then the tag in its encoding.
pub fn custom(scheme: &crate::custom::Custom, secret: &[u8], body: &[u8]) -> String {
    let tag = tag(secret, body);
    let encoded = match scheme.encoding() {
        crate::custom::Encoding::Hex => tag.to_hex(),
        crate::custom::Encoding::Base64 => tag.to_base64(),
    };
    format!("{}{encoded}", scheme.prefix())
}

/// `time` in RFC 3339, UTC, whole seconds (`2025-07-10T05:10:55Z`): the form
/// Numero signs as `created_at`. A sample payload must carry a recent one,
/// or the layer's replay window refuses it
/// ([`WebhookLayerBuilder::replay_window`](crate::WebhookLayerBuilder::replay_window)).
pub fn rfc3339(time: std::time::SystemTime) -> String {
    crate::scheme::rfc3339::format(time)
}
