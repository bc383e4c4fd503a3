//! A custom HMAC scheme, configured rather than coded: for a provider this
//! crate does not list.
//!
//! The provider must sign the raw body alone with an HMAC — HMAC-SHA256 by
//! default, or HMAC-SHA512 or HMAC-SHA1 when it requires one
//! ([`CustomBuilder::algorithm`]) — and send the tag in one header, as hex
//! (twice the tag length in digits, either case) or standard padded base64,
//! after an optional fixed prefix such as `sha256=`. The secret is used as raw bytes. What identifies an event
//! across redeliveries is either a top-level field of the signed JSON body
//! (the default: `id`), or, when the provider signs no id, the SHA-256 of
//! the body (a redelivery must then be byte-identical, and two events with
//! equal bodies count as one).
//!
//! A provider that signs a timestamp or an id outside the body needs its own
//! [`Scheme`] implementation (see `standard` and `stripe` for models).
//!
//! # Choices made the strict way
//!
//! * The header appears once, the prefix matches exactly (case included),
//!   and the tag is exactly the algorithm's length (32 bytes for
//!   HMAC-SHA256) in the configured encoding; else 401.
//! * With an id field, the body must be a JSON object whose field is a
//!   non-empty string, given once (else 400). With a body digest the body
//!   is not parsed at all, unless an event-type field is configured.
//! * The name namespaces the store keys. It must be 1 to 32 characters of
//!   `a-z`, `0-9`, `-`, `_`, and not a built-in scheme's name, so that a
//!   custom scheme sharing a store with a built-in one can never collide
//!   with its keys.
//!
//! ```
//! use http::HeaderName;
//! use tower_webhook::WebhookLayer;
//! use tower_webhook::custom::{Custom, Encoding};
//!
//! let acme = Custom::builder("acme", HeaderName::from_static("x-acme-signature"))
//!     .prefix("sha256=")
//!     .encoding(Encoding::Hex)
//!     .id_field("event_id")
//!     .event_type_field("kind")
//!     .build()?;
//! let header = tower_webhook::custom::sign(&acme, b"acme_webhook_secret_01", br#"{"event_id":"e1"}"#);
//! assert!(header.starts_with("sha256="));
//! let layer = WebhookLayer::new(acme, "acme_webhook_secret_01")?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;

use bytes::Bytes;
use http::HeaderMap;
use http::header::HeaderName;
use serde::Serialize;

use super::json::Json;
use super::{EventId, Parsed, Scheme, digest, headers};
use crate::secret::{Algorithm, Signature, Tag};
use crate::{LayerAnswer, Text};

/// Names a custom scheme may not take: the built-in schemes'.
pub const RESERVED_NAMES: &[&str] = super::BUILTIN_NAMES;

/// How the tag is written in the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encoding {
    /// 64 hex digits, either case (the default).
    #[default]
    Hex,
    /// Standard, padded, canonical base64 (44 characters).
    Base64,
}

/// What identifies an event across redeliveries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdSource {
    /// A top-level string field of the signed JSON body.
    Field(String),
    /// The SHA-256 (lower-case hex) of the signed body.
    BodyDigest,
}

/// A configured HMAC-SHA256 scheme over the raw body; see the module docs.
#[derive(Debug, Clone)]
pub struct Custom {
    name: &'static str,
    header: HeaderName,
    prefix: String,
    encoding: Encoding,
    algorithm: Algorithm,
    id: IdSource,
    type_field: Option<String>,
    /// The envelope fields to read (id and event type, as configured),
    /// built once by [`CustomBuilder::build`].
    fields: Vec<(String, usize)>,
}

/// A verified event of a custom scheme.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CustomEvent {
    /// The id field's value (a view into the body), or the body's SHA-256
    /// (hex): the key.
    pub id: Text,
    /// The configured event-type field's value, when configured and present;
    /// a view into the body.
    pub event_type: Option<Text>,
}

/// Configures a [`Custom`] scheme; start with [`Custom::builder`].
#[derive(Debug, Clone)]
pub struct CustomBuilder {
    scheme: Custom,
}

/// A custom scheme that cannot be built.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CustomSchemeError {
    /// The name is empty, longer than 32 characters, or holds a character
    /// outside `a-z`, `0-9`, `-`, `_`.
    InvalidName,
    /// The name is a built-in scheme's ([`RESERVED_NAMES`]).
    ReservedName,
    /// The id field or the event-type field is empty.
    EmptyField,
    /// The id field and the event-type field are the same field.
    SameField,
    /// The algorithm is not an HMAC: a custom scheme verifies HMACs only.
    NotHmac,
}

impl fmt::Display for CustomSchemeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::InvalidName => {
                "a custom scheme's name must be 1-32 characters of a-z, 0-9, - or _"
            }
            Self::ReservedName => "a custom scheme cannot take a built-in scheme's name",
            Self::EmptyField => "a custom scheme's id or event-type field name is empty",
            Self::SameField => "a custom scheme's id and event-type fields are the same field",
            Self::NotHmac => "a custom scheme's algorithm must be an HMAC",
        })
    }
}

impl std::error::Error for CustomSchemeError {}

impl Custom {
    /// Starts a scheme called `name` (its store namespace and log label),
    /// whose tag is in `header`: no prefix, hex, id from the `id` field.
    pub fn builder(name: &'static str, header: HeaderName) -> CustomBuilder {
        CustomBuilder {
            scheme: Self {
                name,
                header,
                prefix: String::new(),
                encoding: Encoding::Hex,
                algorithm: Algorithm::HmacSha256,
                id: IdSource::Field("id".to_owned()),
                type_field: None,
                fields: Vec::new(),
            },
        }
    }

    /// The signature header.
    pub fn header(&self) -> &HeaderName {
        &self.header
    }

    /// The text before the tag in the header value (empty for none).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// How the tag is written.
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// The HMAC the provider signs with.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// What identifies an event.
    pub fn id_source(&self) -> &IdSource {
        &self.id
    }
}

impl CustomBuilder {
    /// Text that precedes the tag in the header value, such as `sha256=`;
    /// matched exactly.
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.scheme.prefix = prefix.into();
        self
    }

    /// How the tag is written (default [`Encoding::Hex`]).
    #[must_use]
    pub fn encoding(mut self, encoding: Encoding) -> Self {
        self.scheme.encoding = encoding;
        self
    }

    /// The HMAC the provider signs with (default HMAC-SHA256): also
    /// [`Algorithm::HmacSha512`], or [`Algorithm::HmacSha1`] only for a
    /// provider that requires it.
    #[must_use]
    pub fn algorithm(mut self, algorithm: Algorithm) -> Self {
        self.scheme.algorithm = algorithm;
        self
    }

    /// Takes the id from this top-level field of the signed JSON body
    /// (default `id`).
    #[must_use]
    pub fn id_field(mut self, field: impl Into<String>) -> Self {
        self.scheme.id = IdSource::Field(field.into());
        self
    }

    /// Takes the id from the SHA-256 of the signed body, for providers that
    /// sign no id.
    #[must_use]
    pub fn id_from_body_digest(mut self) -> Self {
        self.scheme.id = IdSource::BodyDigest;
        self
    }

    /// Reports this top-level field of the signed JSON body as the event
    /// type.
    #[must_use]
    pub fn event_type_field(mut self, field: impl Into<String>) -> Self {
        self.scheme.type_field = Some(field.into());
        self
    }

    /// Checks the configuration and builds the scheme.
    ///
    /// # Errors
    ///
    /// [`CustomSchemeError`] for an invalid or reserved name, an empty field
    /// name, the same field as id and event type, or an algorithm that is
    /// not an HMAC.
    pub fn build(self) -> Result<Custom, CustomSchemeError> {
        let mut scheme = self.scheme;
        if !scheme.algorithm.is_hmac() {
            return Err(CustomSchemeError::NotHmac);
        }
        let name_ok = (1..=32).contains(&scheme.name.len())
            && scheme
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !name_ok {
            return Err(CustomSchemeError::InvalidName);
        }
        if RESERVED_NAMES.contains(&scheme.name) {
            return Err(CustomSchemeError::ReservedName);
        }
        let id_field = match &scheme.id {
            IdSource::Field(field) => Some(field.as_str()),
            IdSource::BodyDigest => None,
        };
        let type_field = scheme.type_field.as_deref();
        if id_field == Some("") || type_field == Some("") {
            return Err(CustomSchemeError::EmptyField);
        }
        if id_field.is_some() && id_field == type_field {
            return Err(CustomSchemeError::SameField);
        }
        scheme.fields = id_field
            .map(|field| (field.to_owned(), ID))
            .into_iter()
            .chain(type_field.map(|field| (field.to_owned(), TYPE)))
            .collect();
        Ok(scheme)
    }
}

const ID: usize = 0;
const TYPE: usize = 1;

impl Scheme for Custom {
    type Event = CustomEvent;

    fn name(&self) -> &'static str {
        self.name
    }

    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    fn signature(&self, headers: &HeaderMap) -> Result<Signature, LayerAnswer> {
        let decode = match self.encoding {
            Encoding::Hex => Tag::decode_hex,
            Encoding::Base64 => Tag::decode_base64,
        };
        headers::prefixed_tag(headers, &self.header, self.prefix.as_bytes(), |encoded| {
            decode(self.algorithm, encoded)
        })
    }

    fn parse(
        &self,
        _headers: &HeaderMap,
        body: &Bytes,
    ) -> Result<Parsed<CustomEvent>, LayerAnswer> {
        let json;
        let fields = if self.fields.is_empty() {
            // A body digest and no event type: the body is not parsed at all,
            // so it need not even be UTF-8.
            None
        } else {
            json = Json::new(body)?;
            Some((&json, json.fields::<2>(&self.fields, &[ID])?))
        };
        let id = match self.id {
            // An id field is always among the fields read (see `build`).
            IdSource::Field(_) => fields
                .as_ref()
                .map_or(Err(LayerAnswer::MissingId), |(json, fields)| {
                    json.id(fields[ID])
                })?,
            IdSource::BodyDigest => digest(body),
        };
        Ok(Parsed {
            id: EventId::from_text(id.clone())?,
            event: CustomEvent {
                id,
                event_type: fields
                    .map(|(json, fields)| json.text(fields[TYPE]))
                    .transpose()?
                    .flatten(),
            },
        })
    }
}

/// The signature header value a [`Custom`] scheme
/// expects for `body`: its prefix, then the tag in its encoding.
pub fn sign(scheme: &super::custom::Custom, secret: &[u8], body: &[u8]) -> String {
    let tag = crate::secret::hmac(scheme.algorithm(), secret, body);
    let encoded = match scheme.encoding() {
        super::custom::Encoding::Hex => tag.to_hex(),
        super::custom::Encoding::Base64 => tag.to_base64(),
    };
    format!("{}{encoded}", scheme.prefix())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: HeaderName = HeaderName::from_static("x-acme-signature");

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(HEADER, value.parse().unwrap());
        h
    }

    fn verify(scheme: &Custom, value: &str, body: &[u8]) -> Result<(), LayerAnswer> {
        let set = crate::SecretSet::from_keys([b"acme_webhook_secret_01"]).unwrap();
        let signature = scheme.signature(&headers(value))?;
        set.verify(&signature, body)
            .map_err(|_| LayerAnswer::SignatureMismatch)
    }

    #[test]
    fn hex_with_prefix_and_base64_without() {
        let body = br#"{"id":"e1"}"#;
        let hex = Custom::builder("acme", HEADER)
            .prefix("sha256=")
            .build()
            .unwrap();
        let header = crate::custom::sign(&hex, b"acme_webhook_secret_01", body);
        assert_eq!(
            header,
            format!(
                "sha256={}",
                crate::sign::tag(b"acme_webhook_secret_01", body).to_hex()
            )
        );
        assert_eq!(verify(&hex, &header, body), Ok(()));
        assert_eq!(
            verify(&hex, &header.to_uppercase(), body),
            Err(LayerAnswer::MalformedSignature)
        );
        assert_eq!(
            verify(&hex, &header[7..], body),
            Err(LayerAnswer::MalformedSignature)
        );
        assert_eq!(
            verify(&hex, &header, b"{}"),
            Err(LayerAnswer::SignatureMismatch)
        );

        let b64 = Custom::builder("acme", HEADER)
            .encoding(Encoding::Base64)
            .build()
            .unwrap();
        let header = crate::custom::sign(&b64, b"acme_webhook_secret_01", body);
        assert_eq!(
            header,
            crate::sign::tag(b"acme_webhook_secret_01", body).to_base64()
        );
        assert_eq!(verify(&b64, &header, body), Ok(()));
        assert_eq!(
            verify(&b64, &header[..43], body),
            Err(LayerAnswer::MalformedSignature)
        );
    }

    #[test]
    fn id_from_a_field_or_the_body_digest() {
        let by_field = Custom::builder("acme", HEADER)
            .id_field("event_id")
            .event_type_field("kind")
            .build()
            .unwrap();
        let body = Bytes::from_static(br#"{"event_id":"e1","kind":"order.paid","id":"not-me"}"#);
        let parsed = by_field.parse(&HeaderMap::new(), &body).unwrap();
        assert_eq!(parsed.id.as_str(), "e1");
        assert_eq!(parsed.event.event_type.as_deref(), Some("order.paid"));
        let twice = Bytes::from_static(br#"{"event_id":"e1","event_id":"e2"}"#);
        assert_eq!(
            by_field.parse(&HeaderMap::new(), &twice).unwrap_err(),
            LayerAnswer::AmbiguousId
        );
        let none = Bytes::from_static(br#"{"id":"e1"}"#);
        assert_eq!(
            by_field.parse(&HeaderMap::new(), &none).unwrap_err(),
            LayerAnswer::MissingId
        );

        let by_digest = Custom::builder("acme", HEADER)
            .id_from_body_digest()
            .build()
            .unwrap();
        let form = Bytes::from_static(b"a=1&b=2");
        let parsed = by_digest.parse(&HeaderMap::new(), &form).unwrap();
        assert_eq!(parsed.id.as_str(), digest(b"a=1&b=2"));
        assert_eq!(parsed.event.id, parsed.id.as_str());
    }

    #[test]
    fn configuration_is_checked() {
        let build = |name: &'static str| Custom::builder(name, HEADER).build().map(|_| ());
        assert_eq!(build(""), Err(CustomSchemeError::InvalidName));
        assert_eq!(build("Acme"), Err(CustomSchemeError::InvalidName));
        assert_eq!(build("acme:x"), Err(CustomSchemeError::InvalidName));
        assert_eq!(build("github"), Err(CustomSchemeError::ReservedName));
        assert_eq!(build("acme-2_b"), Ok(()));
        let same = Custom::builder("acme", HEADER)
            .event_type_field("id")
            .build();
        assert_eq!(same.unwrap_err(), CustomSchemeError::SameField);
        let empty = Custom::builder("acme", HEADER).id_field("").build();
        assert_eq!(empty.unwrap_err(), CustomSchemeError::EmptyField);
        let digest_and_type = Custom::builder("acme", HEADER)
            .id_from_body_digest()
            .event_type_field("id")
            .build();
        assert!(digest_and_type.is_ok());
    }

    #[test]
    fn the_algorithm_is_configurable_among_hmacs() {
        let body = br#"{"id":"e1"}"#;
        let sha512 = Custom::builder("acme", HEADER)
            .algorithm(Algorithm::HmacSha512)
            .build()
            .unwrap();
        let header = crate::custom::sign(&sha512, b"acme_webhook_secret_01", body);
        assert_eq!(header.len(), 128);
        let set = crate::SecretSet::from_decoded([crate::Key::new(
            Algorithm::HmacSha512,
            b"acme_webhook_secret_01".to_vec(),
        )])
        .unwrap();
        let signature = sha512.signature(&headers(&header)).unwrap();
        assert_eq!(set.verify(&signature, body), Ok(()));
        // A SHA-256-length tag is malformed for a SHA-512 scheme.
        let short = crate::sign::tag(b"acme_webhook_secret_01", body).to_hex();
        assert_eq!(
            sha512.signature(&headers(&short)).unwrap_err(),
            LayerAnswer::MalformedSignature
        );
        let ed = Custom::builder("acme", HEADER)
            .algorithm(Algorithm::Ed25519)
            .build();
        assert_eq!(ed.unwrap_err(), CustomSchemeError::NotHmac);
        assert_eq!(
            Custom::builder("paystack", HEADER).build().unwrap_err(),
            CustomSchemeError::ReservedName
        );
    }
}
