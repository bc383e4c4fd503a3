//! GitHub: `X-Hub-Signature-256: sha256=<64 hex>` over the raw body.
//!
//! GitHub signs the body alone, with the webhook's secret used as raw bytes.
//! The legacy `X-Hub-Signature` (HMAC-SHA1) header is ignored: only the
//! SHA-256 header is read, and its absence is a 401 even when the SHA-1 one
//! is present.
//!
//! # The idempotency key
//!
//! GitHub signs no id. `X-GitHub-Delivery` (a GUID, kept the same when you
//! redeliver) is a header outside the signature: anyone who captured one
//! signed delivery could replay it under a fresh GUID and have it processed
//! again. So the key is the SHA-256 digest (lower-case hex) of the signed
//! bytes, and `X-GitHub-Delivery` is only reported on the event. A
//! redelivery is byte-identical and deduplicates; two events whose payloads
//! are byte-for-byte equal count as one.
//!
//! # Unsigned headers
//!
//! [`GitHubEvent::event_type`] (from `X-GitHub-Event`) and
//! [`GitHubEvent::delivery`] come from headers GitHub does **not** sign:
//! treat them as hints. The payload's signed `action` is on the event too.
//! Either header given twice, or not visible ASCII, is a 400
//! ([`LayerAnswer::HeaderMismatch`]) rather than a guess between two values.
//!
//! # Content type
//!
//! Configure the webhook with content type `application/json`: the body must
//! be a JSON object (else 400). The `application/x-www-form-urlencoded`
//! form (`payload=…`) is refused.
//!
//! # Secrets
//!
//! GitHub lets you type any secret, spaces included: its own documentation
//! example is `It's a Secret to Everybody`, and the layer takes it as it is.
//! Only an empty secret, one that begins or ends with whitespace (a stray
//! newline from a file or an environment variable), and one shorter than
//! [`MIN_HMAC_SECRET_LEN`](crate::MIN_HMAC_SECRET_LEN) bytes (a word split
//! off a longer secret) are refused.
//!
//! ```
//! use tower_webhook::{WebhookLayer, github::GitHub};
//!
//! // GitHub's documented secret, spaces and all.
//! let layer = WebhookLayer::new(GitHub, "It's a Secret to Everybody")?;
//!
//! // GitHub's published example, signed with that secret.
//! let header = tower_webhook::github::sign(b"It's a Secret to Everybody", b"Hello, World!");
//! assert_eq!(
//!     header,
//!     "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
//! );
//! // A stray newline from a file is refused.
//! assert!(WebhookLayer::new(GitHub, "It's a Secret to Everybody\n").is_err());
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

/// The signature header GitHub sends.
pub const SIGNATURE_HEADER: HeaderName = HeaderName::from_static("x-hub-signature-256");
/// The prefix of the signature value.
pub const SIGNATURE_PREFIX: &str = "sha256=";
/// GitHub's delivery GUID header: unsigned, reported, never the key.
pub const DELIVERY_HEADER: HeaderName = HeaderName::from_static("x-github-delivery");
/// GitHub's event-type header (`push`, `pull_request`, …): unsigned.
pub const EVENT_HEADER: HeaderName = HeaderName::from_static("x-github-event");

/// The GitHub scheme. Secrets are the raw bytes of the webhook's secret.
#[derive(Debug, Clone, Copy, Default)]
pub struct GitHub;

/// A GitHub webhook delivery. `action` is a view into the verified body;
/// the headers' values are copied (one small allocation each).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct GitHubEvent {
    /// SHA-256 (lower-case hex) of the signed body: the idempotency key.
    pub digest: Text,
    /// `X-GitHub-Event`, such as `push`. **Unsigned**: a hint for routing,
    /// not proof of what the payload is.
    pub event_type: Option<Text>,
    /// `X-GitHub-Delivery`, the delivery GUID. **Unsigned**; never the key.
    pub delivery: Option<Text>,
    /// The payload's top-level `action` (`opened`, `created`, …), signed;
    /// absent for events without one, such as `push`.
    pub action: Option<Text>,
}

const ACTION: usize = 0;
const FIELDS: &[(&str, usize)] = &[("action", ACTION)];

impl Scheme for GitHub {
    type Event = GitHubEvent;

    fn name(&self) -> &'static str {
        "github"
    }

    fn signature(&self, headers: &HeaderMap) -> Result<Signature, LayerAnswer> {
        headers::prefixed_tag(
            headers,
            &SIGNATURE_HEADER,
            SIGNATURE_PREFIX.as_bytes(),
            Tag::from_hex,
        )
    }

    fn parse(&self, headers: &HeaderMap, body: &Bytes) -> Result<Parsed<GitHubEvent>, LayerAnswer> {
        let json = Json::new(body)?;
        let fields = json.fields::<1>(FIELDS, &[])?;
        let digest = digest(body);
        Ok(Parsed {
            id: EventId::from_text(digest.clone())?,
            event: GitHubEvent {
                digest,
                event_type: headers::unsigned_header(headers, &EVENT_HEADER)?,
                delivery: headers::unsigned_header(headers, &DELIVERY_HEADER)?,
                action: json.text(fields[ACTION])?,
            },
        })
    }
}

super::builtin::builtin!(GitHub, "GITHUB_WEBHOOK_SECRET", GitHub, digest [event_type, delivery, action]);

/// `X-Hub-Signature-256` for `body` (GitHub): `sha256=<lower-case hex>`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    format!("sha256={}", crate::secret::hmac_sha256(secret, body).to_hex())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"It's a Secret to Everybody";

    fn headers(pairs: &[(&HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(*name, value.parse().unwrap());
        }
        h
    }

    #[test]
    fn published_vector_verifies() {
        let header = crate::github::sign(SECRET, b"Hello, World!");
        assert_eq!(
            header,
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
        let signature = GitHub
            .signature(&headers(&[(&SIGNATURE_HEADER, &header)]))
            .unwrap();
        assert!(signature.prefix().is_empty());
        let set = crate::SecretSet::from_keys([SECRET]).unwrap();
        assert!(set.verify(&signature, b"Hello, World!").is_ok());
        assert!(set.verify(&signature, b"Hello, World?").is_err());
    }

    #[test]
    fn header_format_is_exact() {
        let sig = |v: &str| {
            GitHub
                .signature(&headers(&[(&SIGNATURE_HEADER, v)]))
                .map(|_| ())
        };
        let hex = "ab".repeat(32);
        assert!(sig(&format!("sha256={hex}")).is_ok());
        assert!(sig(&format!("sha256={}", hex.to_uppercase())).is_ok());
        for bad in [hex.clone(), format!("sha1={hex}"), format!("sha256={hex}0")] {
            assert_eq!(sig(&bad), Err(LayerAnswer::MalformedSignature), "{bad}");
        }
        let sha1_only = headers(&[(&HeaderName::from_static("x-hub-signature"), "sha1=00")]);
        assert_eq!(
            GitHub.signature(&sha1_only).unwrap_err(),
            LayerAnswer::MissingSignature
        );
    }

    #[test]
    fn key_is_the_body_digest_never_the_delivery_header() {
        let body = Bytes::from_static(br#"{"action":"opened","number":1}"#);
        let a = headers(&[
            (&DELIVERY_HEADER, "guid-1"),
            (&EVENT_HEADER, "pull_request"),
        ]);
        let b = headers(&[(&DELIVERY_HEADER, "guid-2")]);
        let first = GitHub.parse(&a, &body).unwrap();
        let replay = GitHub.parse(&b, &body).unwrap();
        assert_eq!(first.id, replay.id);
        assert_eq!(first.id.as_str(), digest(&body));
        assert_eq!(first.event.delivery.as_deref(), Some("guid-1"));
        assert_eq!(first.event.event_type.as_deref(), Some("pull_request"));
        assert_eq!(first.event.action.as_deref(), Some("opened"));
        assert_eq!(replay.event.event_type, None);
    }

    #[test]
    fn unsigned_headers_are_single_and_body_is_json() {
        let body = Bytes::from_static(b"{}");
        let twice = headers(&[(&EVENT_HEADER, "push"), (&EVENT_HEADER, "ping")]);
        assert_eq!(
            GitHub.parse(&twice, &body).unwrap_err(),
            LayerAnswer::HeaderMismatch
        );
        let form = Bytes::from_static(b"payload=%7B%7D");
        assert_eq!(
            GitHub.parse(&HeaderMap::new(), &form).unwrap_err(),
            LayerAnswer::InvalidJson
        );
    }
}
