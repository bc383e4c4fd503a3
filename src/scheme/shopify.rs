//! Shopify: `X-Shopify-Hmac-Sha256: <base64>` over the raw body.
//!
//! # Format
//!
//! * The header holds standard padded base64 (44 characters) of the
//!   HMAC-SHA256 of the raw body. The secret is the app's client secret
//!   (or the store's webhook signing secret), used as raw bytes.
//! * The body must be a JSON object (else 400).
//!
//! # The idempotency key
//!
//! Shopify signs no id: `X-Shopify-Webhook-Id` and `X-Shopify-Event-Id`
//! are headers outside the signature, which a replayer could change. So the
//! key is the SHA-256 (hex) of the signed body, as for GitHub: a retry is
//! byte-identical and deduplicates. `X-Shopify-Topic`,
//! `X-Shopify-Shop-Domain`, `X-Shopify-Webhook-Id` and
//! `X-Shopify-Triggered-At` are reported on the event, **unsigned**: hints,
//! not proof.
//!
//! ```
//! use tower_webhook::{WebhookLayer, shopify::Shopify};
//!
//! let layer = WebhookLayer::new(Shopify, "shpss_client_secret")?;
//! let header = tower_webhook::shopify::sign(b"shpss_client_secret", br#"{"id":1}"#);
//! assert_eq!(header.len(), 44);
//! # Ok::<(), tower_webhook::SecretError>(())
//! ```

use bytes::Bytes;
use http::HeaderMap;
use http::header::HeaderName;
use serde::Serialize;

use super::json::Json;
use super::{EventId, Parsed, Scheme, digest, headers};
use crate::secret::{Signature, Tag};
use crate::{LayerAnswer, Text};

/// The signature header.
pub const SIGNATURE_HEADER: HeaderName = HeaderName::from_static("x-shopify-hmac-sha256");
/// The topic header (`orders/create`, …): unsigned.
pub const TOPIC_HEADER: HeaderName = HeaderName::from_static("x-shopify-topic");
/// The shop's domain: unsigned.
pub const SHOP_DOMAIN_HEADER: HeaderName = HeaderName::from_static("x-shopify-shop-domain");
/// The delivery's webhook id: unsigned, never the key.
pub const WEBHOOK_ID_HEADER: HeaderName = HeaderName::from_static("x-shopify-webhook-id");
/// When the event was triggered: unsigned.
pub const TRIGGERED_AT_HEADER: HeaderName = HeaderName::from_static("x-shopify-triggered-at");

/// The Shopify scheme. Secrets are the raw bytes of the client secret.
#[derive(Debug, Clone, Copy, Default)]
pub struct Shopify;

/// A verified Shopify webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ShopifyEvent {
    /// SHA-256 (hex) of the signed body: the idempotency key.
    pub digest: Text,
    /// `X-Shopify-Topic`, such as `orders/create`. **Unsigned**.
    pub topic: Option<Text>,
    /// `X-Shopify-Shop-Domain`. **Unsigned**.
    pub shop_domain: Option<Text>,
    /// `X-Shopify-Webhook-Id`. **Unsigned**; never the key.
    pub webhook_id: Option<Text>,
    /// `X-Shopify-Triggered-At`, as sent. **Unsigned**.
    pub triggered_at: Option<Text>,
}

impl Scheme for Shopify {
    type Event = ShopifyEvent;

    fn name(&self) -> &'static str {
        "shopify"
    }

    fn signature(&self, headers: &HeaderMap) -> Result<Signature, LayerAnswer> {
        headers::prefixed_tag(headers, &SIGNATURE_HEADER, b"", Tag::from_base64)
    }

    fn parse(&self, headers: &HeaderMap, body: &Bytes) -> Result<Parsed<ShopifyEvent>, LayerAnswer> {
        Json::new(body)?.check_object()?;
        let digest = digest(body);
        Ok(Parsed {
            id: EventId::from_text(digest.clone())?,
            event: ShopifyEvent {
                digest,
                topic: headers::unsigned_header(headers, &TOPIC_HEADER)?,
                shop_domain: headers::unsigned_header(headers, &SHOP_DOMAIN_HEADER)?,
                webhook_id: headers::unsigned_header(headers, &WEBHOOK_ID_HEADER)?,
                triggered_at: headers::unsigned_header(headers, &TRIGGERED_AT_HEADER)?,
            },
        })
    }
}

super::builtin::builtin!(Shopify, "SHOPIFY_WEBHOOK_SECRET", Shopify, digest [topic, shop_domain]);

/// `X-Shopify-Hmac-Sha256` for `body`: standard padded base64.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    crate::secret::hmac_sha256(secret, body).to_base64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_tag_over_the_body_and_digest_key() {
        let body = br#"{"id":820982911946154508,"email":"jon@example.com"}"#;
        let header = crate::shopify::sign(b"secret", body);
        let mut h = HeaderMap::new();
        h.insert(SIGNATURE_HEADER, header.parse().unwrap());
        h.insert(TOPIC_HEADER, "orders/create".parse().unwrap());
        let set = crate::SecretSet::from_keys(["secret"]).unwrap();
        assert!(set.verify(&Shopify.signature(&h).unwrap(), body).is_ok());
        assert!(set.verify(&Shopify.signature(&h).unwrap(), b"{}").is_err());
        let parsed = Shopify.parse(&h, &Bytes::from_static(body)).unwrap();
        assert_eq!(parsed.id.as_str(), crate::scheme::digest(body));
        assert_eq!(parsed.event.topic.as_deref(), Some("orders/create"));
        h.insert(SIGNATURE_HEADER, header[..43].parse().unwrap());
        assert_eq!(
            Shopify.signature(&h).unwrap_err(),
            LayerAnswer::MalformedSignature
        );
        assert_eq!(
            Shopify.parse(&h, &Bytes::from_static(b"[]")).unwrap_err(),
            LayerAnswer::InvalidPayload
        );
    }
}
