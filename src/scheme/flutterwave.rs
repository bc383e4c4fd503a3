//! Flutterwave: `flutterwave-signature: <base64>` over the raw body (v4),
//! or, opted into, the legacy `verif-hash` token (v3).
//!
//! # Format
//!
//! * [`Flutterwave::new`] (v4): the header holds standard padded base64 of
//!   the HMAC-SHA256 of the raw body, keyed with the secret hash you set in
//!   the dashboard, as raw bytes.
//! * [`Flutterwave::verif_hash`] (v3): the `verif-hash` header repeats the
//!   secret hash itself. It is compared in constant time (both sides hashed
//!   with SHA-256 first, so neither the length nor a prefix leaks), but it
//!   signs nothing: anyone who sees one delivery can forge any body. Use it
//!   only for an account that cannot send v4 signatures. The two modes are
//!   separate schemes so that a v4 endpoint never downgrades to v3.
//! * The body must be a JSON object (else 400). The event type is `type`
//!   (v4) or `event` (v3); `data.id` and `data.tx_ref` are reported.
//!
//! # The idempotency key
//!
//! Flutterwave signs no delivery id, so the key is the SHA-256 (hex) of the
//! body: a retry is byte-identical and deduplicates. (With `verif-hash` the
//! body is not signed: the key is only as trustworthy as the token.)

use bytes::Bytes;
use http::HeaderMap;
use http::header::HeaderName;
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use super::headers::signature_header;
use super::json::Json;
use super::{EventId, Parsed, Scheme, digest, headers};
use crate::secret::{Algorithm, Signature, Tag};
use crate::{LayerAnswer, Text};

/// The v4 signature header.
pub const SIGNATURE_HEADER: HeaderName = HeaderName::from_static("flutterwave-signature");
/// The v3 token header.
pub const VERIF_HASH_HEADER: HeaderName = HeaderName::from_static("verif-hash");

/// The Flutterwave scheme. Secrets are the raw bytes of the secret hash.
#[derive(Debug, Clone, Copy, Default)]
pub struct Flutterwave {
    legacy: bool,
}

impl Flutterwave {
    /// v4: `flutterwave-signature`, an HMAC-SHA256 of the body.
    pub fn new() -> Self {
        Self::default()
    }

    /// v3: the `verif-hash` token, which signs nothing; see the module docs.
    pub fn verif_hash() -> Self {
        Self { legacy: true }
    }
}

/// A verified Flutterwave event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct FlutterwaveEvent {
    /// SHA-256 (hex) of the body: the idempotency key.
    pub digest: Text,
    /// `type` (v4) or `event` (v3), such as `charge.completed`.
    pub event_type: Option<Text>,
    /// `data.id`, as written.
    pub data_id: Option<Text>,
    /// `data.tx_ref`, your transaction reference.
    pub tx_ref: Option<Text>,
}

impl Scheme for Flutterwave {
    type Event = FlutterwaveEvent;

    fn name(&self) -> &'static str {
        "flutterwave"
    }

    fn algorithm(&self) -> Algorithm {
        if self.legacy {
            Algorithm::SharedToken
        } else {
            Algorithm::HmacSha256
        }
    }

    fn signature(&self, headers: &HeaderMap) -> Result<Signature, LayerAnswer> {
        if !self.legacy {
            return headers::prefixed_tag(headers, &SIGNATURE_HEADER, b"", Tag::from_base64);
        }
        let token = signature_header(headers, &VERIF_HASH_HEADER)?;
        let digest = Sha256::digest(token);
        Tag::from_slice(Algorithm::SharedToken, &digest)
            .map(Signature::over_body)
            .map_err(|_| LayerAnswer::MalformedSignature)
    }

    fn parse(
        &self,
        _headers: &HeaderMap,
        body: &Bytes,
    ) -> Result<Parsed<FlutterwaveEvent>, LayerAnswer> {
        let json = Json::new(body)?;
        let [kind, event, data] =
            json.fields::<3>(&[("type", 0), ("event", 1), ("data", 2)], &[])?;
        let [data_id, tx_ref] = json.nested::<2>(data, &[("id", 0), ("tx_ref", 1)])?;
        let event_type = match json.text(kind)? {
            Some(kind) => Some(kind),
            None => json.text(event)?,
        };
        let digest = digest(body);
        Ok(Parsed {
            id: EventId::from_text(digest.clone())?,
            event: FlutterwaveEvent {
                digest,
                event_type,
                data_id: json.text(data_id)?,
                tx_ref: json.text(tx_ref)?,
            },
        })
    }
}

super::builtin::builtin!(Flutterwave, "FLUTTERWAVE_WEBHOOK_SECRET", Flutterwave::new(), digest [event_type, tx_ref]);

/// `flutterwave-signature` (v4) for `body`: standard padded base64.
pub fn sign(secret_hash: &[u8], body: &[u8]) -> String {
    crate::secret::hmac_sha256(secret_hash, body).to_base64()
}
