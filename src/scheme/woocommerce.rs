//! WooCommerce: `X-WC-Webhook-Signature: <base64>` over the raw body.
//!
//! # Format
//!
//! * The header holds standard padded base64 of the HMAC-SHA256 of the raw
//!   body, keyed with the webhook's secret as raw bytes.
//! * The body must be a JSON object (else 400); its top-level `id` (the
//!   order's, product's, … id), when present, is reported.
//!
//! # The idempotency key
//!
//! WooCommerce signs no delivery id (`X-WC-Webhook-Delivery-ID` is outside
//! the signature), so the key is the SHA-256 (hex) of the signed body.
//! `X-WC-Webhook-Topic` and `X-WC-Webhook-Delivery-ID` are reported,
//! **unsigned**.
//!
//! WooCommerce pings a new webhook's URL with an unsigned form body
//! (`webhook_id=…`); the layer answers it 401 like any unsigned delivery.

use bytes::Bytes;
use http::HeaderMap;
use http::header::HeaderName;
use serde::Serialize;

use super::json::Json;
use super::{EventId, Parsed, Scheme, digest, headers};
use crate::secret::{Signature, Tag};
use crate::{LayerAnswer, Text};

/// The signature header.
pub const SIGNATURE_HEADER: HeaderName = HeaderName::from_static("x-wc-webhook-signature");
/// The topic header (`order.created`, …): unsigned.
pub const TOPIC_HEADER: HeaderName = HeaderName::from_static("x-wc-webhook-topic");
/// The delivery id header: unsigned, never the key.
pub const DELIVERY_HEADER: HeaderName = HeaderName::from_static("x-wc-webhook-delivery-id");

/// The WooCommerce scheme. Secrets are the raw bytes of the webhook secret.
#[derive(Debug, Clone, Copy, Default)]
pub struct WooCommerce;

/// A verified WooCommerce webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct WooCommerceEvent {
    /// SHA-256 (hex) of the signed body: the idempotency key.
    pub digest: Text,
    /// The resource's top-level `id` (signed), as written.
    pub resource_id: Option<Text>,
    /// `X-WC-Webhook-Topic`, such as `order.created`. **Unsigned**.
    pub topic: Option<Text>,
    /// `X-WC-Webhook-Delivery-ID`. **Unsigned**; never the key.
    pub delivery: Option<Text>,
}

impl Scheme for WooCommerce {
    type Event = WooCommerceEvent;

    fn name(&self) -> &'static str {
        "woocommerce"
    }

    fn signature(&self, headers: &HeaderMap) -> Result<Signature, LayerAnswer> {
        headers::prefixed_tag(headers, &SIGNATURE_HEADER, b"", Tag::from_base64)
    }

    fn parse(
        &self,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> Result<Parsed<WooCommerceEvent>, LayerAnswer> {
        let json = Json::new(body)?;
        let [id] = json.fields::<1>(&[("id", 0)], &[])?;
        let digest = digest(body);
        Ok(Parsed {
            id: EventId::from_text(digest.clone())?,
            event: WooCommerceEvent {
                digest,
                resource_id: json.text(id)?,
                topic: headers::unsigned_header(headers, &TOPIC_HEADER)?,
                delivery: headers::unsigned_header(headers, &DELIVERY_HEADER)?,
            },
        })
    }
}

super::builtin::builtin!(WooCommerce, "WOOCOMMERCE_WEBHOOK_SECRET", WooCommerce, digest [topic, resource_id]);

/// `X-WC-Webhook-Signature` (WooCommerce) for `body`: standard padded
/// base64.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    crate::secret::hmac_sha256(secret, body).to_base64()
}
