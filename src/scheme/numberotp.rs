//! NumberOTP: `x-numberotp-signature: sha256=<64 hex>` over the raw body.
//!
//! # The idempotency key
//!
//! NumberOTP's payload carries no event id: its `id` is the *activation*,
//! and one activation can receive several SMSes. The payload documents
//! seven fields: the activation `id`, `phone_number`, `service` and
//! `country` (the same for every SMS of an activation), and `otp`,
//! `full_sms` and `status` (what one SMS brought). The key is made of the
//! activation `id`, `status`, `otp` and the SHA-256 (hex) of `full_sms`,
//! each part length-prefixed ([`EventId::from_parts`]), an absent or null
//! field distinct from every present one:
//!
//! * two SMSes whose texts differ are two events, whether the code could
//!   be extracted (`otp: null`) or not, and a code re-sent in a new text is
//!   a new event; a redelivery (the same fields, in any key order or JSON
//!   escaping) is not.
//! * Two SMSes with the same text, code and status on one activation are
//!   one event: nothing in what NumberOTP signs tells them apart (it sends
//!   no SMS id and no time), and the second brings the handler nothing new.
//! * `full_sms` is hashed, so a long text cannot make the key too long;
//!   `id`, `status` and `otp`, like `full_sms`, may each be given once
//!   (twice is 400 `ambiguous_id`).
//!
//! NumberOTP's own Node example hashes `JSON.stringify(req.body)`, a
//! re-serialisation that breaks on whitespace, key order and escapes. This
//! scheme hashes the bytes that arrived, nothing else.

use bytes::Bytes;
use http::HeaderMap;
use http::header::HeaderName;
use serde::Serialize;

use super::json::Json;
use super::{EventId, Parsed, Scheme, digest, headers};
use crate::secret::{Signature, Tag};
use crate::{LayerAnswer, Text};

/// The signature header NumberOTP sends.
pub const SIGNATURE_HEADER: HeaderName = HeaderName::from_static("x-numberotp-signature");

/// The prefix of the signature value.
pub const SIGNATURE_PREFIX: &str = "sha256=";

/// The NumberOTP scheme. Secrets are the raw bytes of the dashboard's
/// Webhook Secret.
#[derive(Debug, Clone, Copy, Default)]
pub struct NumberOtp;

/// An SMS NumberOTP caught for one of your activations.
///
/// Every field but `id` may be absent; numbers sent unquoted are kept as
/// their JSON text. Every field is a view into the verified body ([`Text`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct NumberOtpEvent {
    /// The activation id (`act_…`), not an event id.
    pub id: Text,
    /// The virtual number that received the SMS.
    pub phone_number: Option<Text>,
    /// Service code (`wa` for WhatsApp, …).
    pub service: Option<Text>,
    /// Country code.
    pub country: Option<Text>,
    /// The code extracted from the SMS.
    pub otp: Option<Text>,
    /// The whole SMS text.
    pub full_sms: Option<Text>,
    /// Activation status (`received`, …).
    pub status: Option<Text>,
}

const ID: usize = 0;
const PHONE: usize = 1;
const SERVICE: usize = 2;
const COUNTRY: usize = 3;
const OTP: usize = 4;
const FULL_SMS: usize = 5;
const STATUS: usize = 6;

const FIELDS: &[(&str, usize)] = &[
    ("id", ID),
    ("phone_number", PHONE),
    ("service", SERVICE),
    ("country", COUNTRY),
    ("otp", OTP),
    ("full_sms", FULL_SMS),
    ("status", STATUS),
];

impl Scheme for NumberOtp {
    type Event = NumberOtpEvent;

    fn name(&self) -> &'static str {
        "numberotp"
    }

    fn signature(&self, headers: &HeaderMap) -> Result<Signature, LayerAnswer> {
        headers::prefixed_tag(
            headers,
            &SIGNATURE_HEADER,
            SIGNATURE_PREFIX.as_bytes(),
            Tag::from_hex,
        )
    }

    fn parse(
        &self,
        _headers: &HeaderMap,
        body: &Bytes,
    ) -> Result<Parsed<NumberOtpEvent>, LayerAnswer> {
        let json = Json::new(body)?;
        let fields = json.fields::<7>(FIELDS, &[ID, STATUS, OTP, FULL_SMS])?;
        let event = NumberOtpEvent {
            id: json.id(fields[ID])?,
            phone_number: json.text(fields[PHONE])?,
            service: json.text(fields[SERVICE])?,
            country: json.text(fields[COUNTRY])?,
            otp: json.text(fields[OTP])?,
            full_sms: json.text(fields[FULL_SMS])?,
            status: json.text(fields[STATUS])?,
        };
        // What one SMS brought, on top of the activation: see the module
        // docs for why this names one event.
        let text_digest = event
            .full_sms
            .as_deref()
            .map(|text| digest(text.as_bytes()));
        let id = EventId::from_parts([
            Some(event.id.as_str()),
            event.status.as_deref(),
            event.otp.as_deref(),
            text_digest.as_deref(),
        ])?;
        Ok(Parsed { event, id })
    }
}

super::builtin::builtin!(NumberOtp, "NUMBEROTP_WEBHOOK_SECRET", NumberOtp, id [status, otp, service]);

/// `x-numberotp-signature` for `body`: `sha256=<lower-case hex>`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    format!("sha256={}", crate::secret::hmac_sha256(secret, body).to_hex())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheme::MAX_ID_LEN;

    fn parse(body: &str) -> Result<Parsed<NumberOtpEvent>, LayerAnswer> {
        NumberOtp.parse(&HeaderMap::new(), &Bytes::copy_from_slice(body.as_bytes()))
    }

    #[test]
    fn documented_payload_parses() {
        let parsed = parse(
            r#"{"id":"act_8f7d98x","phone_number":"14155552671","service":"wa","country":"67",
                "otp":"482910","full_sms":"Your WhatsApp code is 482910.","status":"received"}"#,
        )
        .unwrap();
        assert_eq!(parsed.event.id, "act_8f7d98x");
        assert_eq!(parsed.event.otp.as_deref(), Some("482910"));
        assert_eq!(
            parsed.id.as_str(),
            format!(
                "11:act_8f7d98x8:received6:48291064:{}",
                digest(b"Your WhatsApp code is 482910.")
            )
        );
    }

    #[test]
    fn each_text_is_its_own_event() {
        let id = |body: &str| parse(body).unwrap().id;
        let no_code = id(r#"{"id":"act_1","otp":null,"full_sms":"Welcome","status":"received"}"#);
        let other = id(r#"{"id":"act_1","otp":null,"full_sms":"Goodbye","status":"received"}"#);
        let absent = id(r#"{"id":"act_1","otp":null,"status":"received"}"#);
        let empty = id(r#"{"id":"act_1","otp":null,"full_sms":"","status":"received"}"#);
        let escaped =
            id(r#"{"full_sms":"W\u0065lcome","status":"received","otp":null,"id":"act_1"}"#);
        assert_ne!(no_code, other);
        assert_ne!(no_code, absent);
        assert_ne!(absent, empty);
        assert_eq!(no_code, escaped, "a redelivery, escaped otherwise");
        let long = format!(
            r#"{{"id":"act_1","otp":"1","full_sms":"{}","status":"received"}}"#,
            "x".repeat(4 * MAX_ID_LEN)
        );
        assert!(parse(&long).is_ok(), "a long text still makes a key");
        assert_eq!(
            parse(r#"{"id":"act_1","full_sms":"a","full_sms":"b"}"#).unwrap_err(),
            LayerAnswer::AmbiguousId
        );
    }

    #[test]
    fn second_code_is_a_new_event_redelivery_is_not() {
        let first = parse(r#"{"id":"act_1","otp":"111111","status":"received"}"#).unwrap();
        let again = parse(r#"{"status":"received","otp":"111111","id":"act_1"}"#).unwrap();
        let second = parse(r#"{"id":"act_1","otp":"222222","status":"received"}"#).unwrap();
        assert_eq!(first.id, again.id);
        assert_ne!(first.id, second.id);
    }

    #[test]
    fn header_format_is_exact() {
        let sig = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(SIGNATURE_HEADER, v.parse().unwrap());
            NumberOtp.signature(&h).map(|_| ())
        };
        let hex = "ab".repeat(32);
        assert!(sig(&format!("sha256={hex}")).is_ok());
        assert!(sig(&format!("sha256={}", hex.to_uppercase())).is_ok());
        assert_eq!(sig(&hex), Err(LayerAnswer::MalformedSignature));
        assert_eq!(
            sig(&format!("SHA256={hex}")),
            Err(LayerAnswer::MalformedSignature)
        );
        assert_eq!(
            sig(&format!("sha256={hex}0")),
            Err(LayerAnswer::MalformedSignature)
        );
        assert_eq!(
            sig(&format!("sha256= {hex}")),
            Err(LayerAnswer::MalformedSignature)
        );
    }
}
