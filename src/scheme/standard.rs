//! Standard Webhooks (and Svix, which follows it): `webhook-id`,
//! `webhook-timestamp` and `webhook-signature` headers, or the same three
//! under the `svix-` prefix.
//!
//! # Format
//!
//! * The signed content is `{id}.{timestamp}.{body}`: the id and the
//!   timestamp are signed, so the id is the idempotency key and the
//!   timestamp guards against replays.
//! * `webhook-signature` is a space-separated list of `<version>,<value>`
//!   entries. Every `v1` entry (standard padded base64 of the 32-byte
//!   HMAC-SHA256) and every `v1a` entry (standard padded base64 of the
//!   64-byte Ed25519 signature, the asymmetric version) is a candidate; any
//!   one that verifies under a configured key of its kind passes, so a
//!   delivery may carry both during a move from one to the other. Entries
//!   of other versions are ignored.
//! * Secrets are `whsec_` + base64 (the prefix may be left out): HMAC keys,
//!   decoded when the layer is built; a key shorter than [`MIN_SECRET_LEN`]
//!   bytes is refused then. Public keys are `whpk_` + base64 of a 32-byte
//!   Ed25519 public key (the `whpk_` prefix is required), checked with
//!   `verify_strict`; they need the crate feature `ed25519`. One layer may
//!   hold both kinds.
//! * The timestamp must be within the tolerance ([`DEFAULT_TOLERANCE`],
//!   5 minutes, either way, bounds included) of the scheme's clock, else 401
//!   `stale_timestamp`. Tests inject a clock with [`Standard::clock`].
//!
//! # Points the specification leaves open, resolved the strict way
//!
//! * `webhook-*` and `svix-*` headers may both be sent (Svix can send both);
//!   they must then carry the same three values, else 401. Each header must
//!   appear at most once.
//! * The timestamp is 1 to 19 ASCII digits; the id is 1 to
//!   [`MAX_ID_LEN`] visible ASCII characters **without a
//!   `.`**: with both `.`-free, the signed content splits into id,
//!   timestamp and body one way only, so a signature cannot be replayed
//!   under a different id. Anything else is a 401 before the body is read.
//! * Every `v1` and `v1a` entry must be well-formed, an entry without a `,`
//!   is malformed, at most 32 `v1`/`v1a` entries are read, and a header
//!   with neither is malformed: all 401.
//! * Ed25519 hashes the message whole: a `v1a` check joins
//!   `{id}.{timestamp}.` and the body into one buffer (one copy of the
//!   body).
//! * The body must be a JSON object (else 400); its top-level `type`, when
//!   present, is the event type.
//!
//! ```
//! use std::time::Duration;
//! use tower_webhook::{WebhookLayer, standard::Standard};
//!
//! let scheme = Standard::new().tolerance(Duration::from_secs(60));
//! let layer = WebhookLayer::new(scheme, "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD")?;
//! // Too short once decoded: refused when the layer is built.
//! assert!(WebhookLayer::new(Standard::new(), "whsec_c2hvcnQ=").is_err());
//! # Ok::<(), tower_webhook::SecretError>(())
//! ```

use std::time::Duration;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use bytes::Bytes;
use http::HeaderMap;
use http::header::HeaderName;
use serde::Serialize;

use super::headers::{MAX_TAGS, single_header};
use super::json::Json;
use super::timestamp::Freshness;
use super::{EventId, MAX_ID_LEN, Parsed, Scheme, timestamp};
use crate::secret::{Algorithm, Key, Signature, Tag};
use crate::{LayerAnswer, Text};

/// The id header.
pub const ID_HEADER: HeaderName = HeaderName::from_static("webhook-id");
/// The timestamp header (Unix seconds).
pub const TIMESTAMP_HEADER: HeaderName = HeaderName::from_static("webhook-timestamp");
/// The signature header.
pub const SIGNATURE_HEADER: HeaderName = HeaderName::from_static("webhook-signature");
/// Svix's name for [`ID_HEADER`].
pub const SVIX_ID_HEADER: HeaderName = HeaderName::from_static("svix-id");
/// Svix's name for [`TIMESTAMP_HEADER`].
pub const SVIX_TIMESTAMP_HEADER: HeaderName = HeaderName::from_static("svix-timestamp");
/// Svix's name for [`SIGNATURE_HEADER`].
pub const SVIX_SIGNATURE_HEADER: HeaderName = HeaderName::from_static("svix-signature");

/// The prefix of a secret as providers show it.
pub const SECRET_PREFIX: &str = "whsec_";
/// The prefix of a public key (`v1a`, Ed25519) as providers show it.
pub const PUBLIC_KEY_PREFIX: &str = "whpk_";
/// Shortest key accepted, in bytes after decoding.
pub const MIN_SECRET_LEN: usize = 16;
/// Default timestamp tolerance: 5 minutes, either way.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// Standard base64, with or without padding, canonical.
const SECRET_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The Standard Webhooks scheme (Svix included).
///
/// Its name, and so its keys' namespace, is `standard`.
#[derive(Debug, Clone)]
pub struct Standard {
    freshness: Freshness,
}

timestamp::timestamped_scheme!(Standard, DEFAULT_TOLERANCE, "5 minutes");

/// A verified Standard Webhooks message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct StandardEvent {
    /// `webhook-id` (signed): the idempotency key. Copied from the header
    /// (one small allocation); shared with the [`EventId`].
    pub id: Text,
    /// `webhook-timestamp` (signed), Unix seconds.
    pub timestamp: u64,
    /// The payload's top-level `type`, such as `invoice.paid`, when present;
    /// a view into the verified body.
    pub event_type: Option<Text>,
}

/// Decodes a secret as providers show it: `whsec_` (optional) followed by
/// standard base64, padded or not.
///
/// # Errors
///
/// A few words saying what was expected, when the text is not base64 or
/// decodes to fewer than [`MIN_SECRET_LEN`] bytes.
pub fn decode_secret(secret: &str) -> Result<Vec<u8>, &'static str> {
    const EXPECTED: &str = "`whsec_` followed by base64 of at least 16 bytes";
    let encoded = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
    match SECRET_BASE64.decode(encoded) {
        Ok(key) if key.len() >= MIN_SECRET_LEN => Ok(key),
        _ => Err(EXPECTED),
    }
}

/// The three headers of one delivery, as sent.
#[derive(PartialEq, Eq)]
struct Fields<'h> {
    id: &'h [u8],
    timestamp: &'h [u8],
    signature: &'h [u8],
}

/// The headers of one family (`webhook-` or `svix-`): `None` when its
/// signature header is absent.
fn family<'h>(
    headers: &'h HeaderMap,
    [id, timestamp, signature]: [&HeaderName; 3],
) -> Result<Option<Fields<'h>>, LayerAnswer> {
    let Some(signature) = single_header(headers, signature)? else {
        return Ok(None);
    };
    let id = single_header(headers, id)?.ok_or(LayerAnswer::MalformedSignature)?;
    let timestamp = single_header(headers, timestamp)?.ok_or(LayerAnswer::MalformedSignature)?;
    Ok(Some(Fields {
        id: id.as_bytes(),
        timestamp: timestamp.as_bytes(),
        signature: signature.as_bytes(),
    }))
}

/// The delivery's headers, from whichever family was sent (both must agree).
fn fields(headers: &HeaderMap) -> Result<Fields<'_>, LayerAnswer> {
    let plain = family(headers, [&ID_HEADER, &TIMESTAMP_HEADER, &SIGNATURE_HEADER])?;
    let svix = family(
        headers,
        [
            &SVIX_ID_HEADER,
            &SVIX_TIMESTAMP_HEADER,
            &SVIX_SIGNATURE_HEADER,
        ],
    )?;
    match (plain, svix) {
        (Some(plain), Some(svix)) if plain == svix => Ok(plain),
        (Some(_), Some(_)) => Err(LayerAnswer::MalformedSignature),
        (Some(one), None) | (None, Some(one)) => Ok(one),
        (None, None) => Err(LayerAnswer::MissingSignature),
    }
}

/// The id: 1 to `MAX_ID_LEN` visible ASCII characters, no `.`.
fn id(raw: &[u8]) -> Result<&str, LayerAnswer> {
    let valid = !raw.is_empty()
        && raw.len() <= MAX_ID_LEN
        && raw.iter().all(|&b| b.is_ascii_graphic() && b != b'.');
    if !valid {
        return Err(LayerAnswer::MalformedSignature);
    }
    std::str::from_utf8(raw).map_err(|_| LayerAnswer::MalformedSignature)
}

/// Decodes a public key as providers show it: `whpk_` followed by standard
/// base64 (padded or not) of 32 bytes.
///
/// # Errors
///
/// A few words saying what was expected.
pub fn decode_public_key(key: &str) -> Result<Vec<u8>, &'static str> {
    const EXPECTED: &str = "`whpk_` followed by base64 of a 32-byte Ed25519 public key";
    let encoded = key.strip_prefix(PUBLIC_KEY_PREFIX).ok_or(EXPECTED)?;
    match SECRET_BASE64.decode(encoded) {
        Ok(key) if key.len() == 32 => Ok(key),
        _ => Err(EXPECTED),
    }
}

/// Every `v1` (HMAC-SHA256) and `v1a` (Ed25519) tag of a space-separated
/// signature list.
fn tags(list: &[u8]) -> Result<Vec<Tag>, LayerAnswer> {
    let mut tags = Vec::new();
    for entry in list.split(|&b| b == b' ').filter(|e| !e.is_empty()) {
        let comma = entry
            .iter()
            .position(|&b| b == b',')
            .filter(|&at| at > 0)
            .ok_or(LayerAnswer::MalformedSignature)?;
        let (version, value) = (&entry[..comma], &entry[comma + 1..]);
        let algorithm = match version {
            b"v1" => Algorithm::HmacSha256,
            b"v1a" => Algorithm::Ed25519,
            _ => continue,
        };
        if tags.len() == MAX_TAGS {
            return Err(LayerAnswer::MalformedSignature);
        }
        let tag =
            Tag::decode_base64(algorithm, value).map_err(|_| LayerAnswer::MalformedSignature)?;
        tags.push(tag);
    }
    Ok(tags)
}

impl Scheme for Standard {
    type Event = StandardEvent;

    fn name(&self) -> &'static str {
        "standard"
    }

    fn decode_secret(&self, secret: &str) -> Result<Vec<u8>, &'static str> {
        decode_secret(secret)
    }

    fn decode_key(&self, secret: &str) -> Result<Key, &'static str> {
        if secret.starts_with(PUBLIC_KEY_PREFIX) {
            decode_public_key(secret).map(|key| Key::new(Algorithm::Ed25519, key))
        } else {
            decode_secret(secret).map(Key::hmac_sha256)
        }
    }

    fn signature(&self, headers: &HeaderMap) -> Result<Signature, LayerAnswer> {
        let fields = fields(headers)?;
        let id = id(fields.id)?;
        let timestamp = timestamp::parse_timestamp(fields.timestamp)?;
        let mut tags = tags(fields.signature)?.into_iter();
        let first = tags.next().ok_or(LayerAnswer::MalformedSignature)?;
        self.freshness.check(timestamp)?;
        let prefix = [id.as_bytes(), b".", fields.timestamp, b"."].concat();
        Ok(tags
            .fold(Signature::over_body(first), Signature::or_tag)
            .with_prefix(prefix))
    }

    fn parse(&self, headers: &HeaderMap, body: &Bytes) -> Result<Parsed<StandardEvent>, LayerAnswer> {
        // The layer verified these headers before reading the body.
        let fields = fields(headers)?;
        let id = id(fields.id)?;
        let timestamp = timestamp::parse_timestamp(fields.timestamp)?;
        let json = Json::new(body)?;
        let [event_type] = json.fields::<1>(&[("type", 0)], &[])?;
        let id = Text::from(id);
        Ok(Parsed {
            id: EventId::from_text(id.clone())?,
            event: StandardEvent {
                id,
                timestamp,
                event_type: json.text(event_type)?,
            },
        })
    }
}

impl super::Builtin for Standard {
    const SECRET_VAR: &'static str = "STANDARD_WEBHOOK_SECRET";
    const PUBLIC_KEY_VAR: Option<&'static str> = Some("STANDARD_WEBHOOK_PUBLIC_KEY");

    fn from_settings(_url: &str) -> Self {
        Self::new()
    }

    fn shown_id(event: &StandardEvent) -> Text {
        event.id.clone()
    }

    fn shown_fields(event: &StandardEvent) -> Vec<(&'static str, String)> {
        super::builtin::present([("event_type", event.event_type.as_deref())])
    }
}

/// A `webhook-signature` entry (Standard Webhooks, Svix) for message `id`
/// sent at `timestamp` (Unix seconds): `v1,<base64>` over
/// `{id}.{timestamp}.{body}`. `key` is the decoded secret: see
/// [`decode_secret`] and
/// [`encode_secret`].
pub fn sign(key: &[u8], id: &str, timestamp: u64, body: &[u8]) -> String {
    let content = [format!("{id}.{timestamp}.").as_bytes(), body].concat();
    format!("v1,{}", crate::secret::hmac_sha256(key, &content).to_base64())
}

/// A Standard Webhooks secret as providers show it: `whsec_` + base64 of
/// `key` (which should be 24 to 64 random bytes).
pub fn encode_secret(key: &[u8]) -> String {
    use base64::Engine as _;
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )
}

/// A `webhook-signature` `v1a` entry (Standard Webhooks, Ed25519) for
/// message `id` sent at `timestamp` under the signing key `seed` (feature
/// `ed25519`): `v1a,<base64>` over `{id}.{timestamp}.{body}`.
#[cfg(feature = "ed25519")]
pub fn sign_v1a(seed: &[u8; 32], id: &str, timestamp: u64, body: &[u8]) -> String {
    use base64::Engine as _;
    let content = [format!("{id}.{timestamp}.").as_bytes(), body].concat();
    let signature = crate::secret::ed25519_sign(seed, &content);
    format!(
        "v1a,{}",
        base64::engine::general_purpose::STANDARD.encode(signature)
    )
}

/// The Standard Webhooks public key of the signing key `seed`, as providers
/// show it: `whpk_` + base64 (feature `ed25519`).
#[cfg(feature = "ed25519")]
pub fn encode_public_key(seed: &[u8; 32]) -> String {
    use base64::Engine as _;
    let public = ed25519_dalek::SigningKey::from_bytes(seed).verifying_key();
    format!(
        "whpk_{}",
        base64::engine::general_purpose::STANDARD.encode(public.as_bytes())
    )
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;
    use base64::engine::general_purpose::STANDARD;

    const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const TS: u64 = 1_649_367_553;
    const BODY: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;
    const EXPECTED: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";

    fn at(secs: u64) -> Standard {
        Standard::new().clock(move || UNIX_EPOCH + Duration::from_secs(secs))
    }

    fn headers(family: [&HeaderName; 3], id: &str, ts: &str, sig: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(family[0].clone(), id.parse().unwrap());
        h.insert(family[1].clone(), ts.parse().unwrap());
        h.insert(family[2].clone(), sig.parse().unwrap());
        h
    }

    fn plain(id: &str, ts: &str, sig: &str) -> HeaderMap {
        headers(
            [&ID_HEADER, &TIMESTAMP_HEADER, &SIGNATURE_HEADER],
            id,
            ts,
            sig,
        )
    }

    fn verify(scheme: &Standard, h: &HeaderMap, body: &[u8]) -> Result<(), LayerAnswer> {
        let set = crate::SecretSet::from_keys([decode_secret(SECRET).unwrap()]).unwrap();
        let signature = scheme.signature(h)?;
        set.verify(&signature, body)
            .map_err(|_| LayerAnswer::SignatureMismatch)
    }

    #[test]
    fn svix_published_example() {
        let key = decode_secret(SECRET).unwrap();
        assert_eq!(key.len(), 24);
        assert_eq!(crate::standard::sign(&key, ID, TS, BODY), EXPECTED);
        let scheme = at(TS);
        assert_eq!(
            verify(&scheme, &plain(ID, "1649367553", EXPECTED), BODY),
            Ok(())
        );
        let svix = headers(
            [
                &SVIX_ID_HEADER,
                &SVIX_TIMESTAMP_HEADER,
                &SVIX_SIGNATURE_HEADER,
            ],
            ID,
            "1649367553",
            EXPECTED,
        );
        assert_eq!(verify(&scheme, &svix, BODY), Ok(()));
        // The id and the timestamp are signed.
        let other_id = plain("msg_other", "1649367553", EXPECTED);
        assert_eq!(
            verify(&scheme, &other_id, BODY),
            Err(LayerAnswer::SignatureMismatch)
        );
        let other_ts = plain(ID, "1649367554", EXPECTED);
        assert_eq!(
            verify(&scheme, &other_ts, BODY),
            Err(LayerAnswer::SignatureMismatch)
        );
        let parsed = scheme.parse(&svix, &Bytes::from_static(BODY)).unwrap();
        assert_eq!(parsed.id.as_str(), ID);
        assert_eq!(parsed.event.timestamp, TS);
        assert_eq!(parsed.event.event_type, None);
    }

    /// A well-formed `v1a` entry that no configured key checks.
    fn unchecked_v1a() -> String {
        format!("v1a,{}", STANDARD.encode([7u8; 64]))
    }

    #[test]
    fn any_v1_entry_passes_other_versions_ignored() {
        let scheme = at(TS);
        let wrong = format!("v1,{}", crate::Tag::from_bytes([9; 32]).to_base64());
        let v1a = unchecked_v1a();
        let list = format!("{v1a} {wrong}  {EXPECTED} v2,anything");
        assert_eq!(
            verify(&scheme, &plain(ID, "1649367553", &list), BODY),
            Ok(())
        );
        let v1_only_wrong = format!("{wrong} {v1a}");
        assert_eq!(
            verify(&scheme, &plain(ID, "1649367553", &v1_only_wrong), BODY),
            Err(LayerAnswer::SignatureMismatch)
        );
        // A v1a entry alone is a candidate, not a malformed header.
        assert!(scheme.signature(&plain(ID, "1649367553", &v1a)).is_ok());
    }

    #[cfg(feature = "ed25519")]
    #[test]
    fn v1a_verifies_under_a_public_key_next_to_an_hmac_secret() {
        let seed = [42u8; 32];
        let public = crate::standard::encode_public_key(&seed);
        assert!(public.starts_with("whpk_"));
        let layer_keys = [
            Standard::new().decode_key(SECRET).unwrap(),
            Standard::new().decode_key(&public).unwrap(),
        ];
        let set = crate::SecretSet::from_decoded(layer_keys).unwrap();
        let scheme = at(TS);
        let v1a = crate::standard::sign_v1a(&seed, ID, TS, BODY);
        let check = |list: &str, body: &[u8]| {
            let signature = scheme.signature(&plain(ID, "1649367553", list)).unwrap();
            set.verify_key(&signature, body).map(|key| key.algorithm())
        };
        assert_eq!(check(&v1a, BODY), Ok(Algorithm::Ed25519));
        // Both verify; the first configured key that does answers.
        assert_eq!(
            check(&format!("{v1a} {EXPECTED}"), BODY),
            Ok(Algorithm::HmacSha256)
        );
        assert_eq!(
            check(&format!("{} {EXPECTED}", unchecked_v1a()), BODY),
            Ok(Algorithm::HmacSha256)
        );
        assert!(check(&v1a, b"{}").is_err());
        // The id is signed under v1a too.
        let moved = scheme
            .signature(&plain("msg_other", "1649367553", &v1a))
            .unwrap();
        assert!(set.verify(&moved, BODY).is_err());
        // Only `whpk_` keys are public keys, and they must be 32 bytes.
        assert!(decode_public_key(&public.replace("whpk_", "")).is_err());
        assert!(decode_public_key("whpk_AAAA").is_err());
    }

    #[test]
    fn malformed_headers_are_refused_before_the_body() {
        let scheme = at(TS);
        let sig =
            |id: &str, ts: &str, list: &str| scheme.signature(&plain(id, ts, list)).map(|_| ());
        let bad = [
            (ID, "1649367553", "v2,only-other-versions"),
            (ID, "1649367553", "v1a,c29tZSBlZDI1NTE5"),
            (
                ID,
                "1649367553",
                "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw",
            ),
            (
                ID,
                "1649367553",
                "tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
            ),
            (
                ID,
                "1649367553",
                ",tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
            ),
            (ID, "1649367553.0", EXPECTED),
            (ID, "-1649367553", EXPECTED),
            ("msg.1", "1649367553", EXPECTED),
        ];
        for (id, ts, list) in bad {
            assert_eq!(
                sig(id, ts, list),
                Err(LayerAnswer::MalformedSignature),
                "{id} {ts} {list}"
            );
        }
        let too_many = vec![EXPECTED; MAX_TAGS + 1].join(" ");
        assert_eq!(
            sig(ID, "1649367553", &too_many),
            Err(LayerAnswer::MalformedSignature)
        );
        assert_eq!(
            scheme.signature(&HeaderMap::new()).unwrap_err(),
            LayerAnswer::MissingSignature
        );
        let mut no_id = plain(ID, "1649367553", EXPECTED);
        no_id.remove(ID_HEADER);
        assert_eq!(
            scheme.signature(&no_id).unwrap_err(),
            LayerAnswer::MalformedSignature
        );
        let mut twice = plain(ID, "1649367553", EXPECTED);
        twice.append(SIGNATURE_HEADER, EXPECTED.parse().unwrap());
        assert_eq!(
            scheme.signature(&twice).unwrap_err(),
            LayerAnswer::RepeatedSignature
        );
    }

    #[test]
    fn both_families_must_agree() {
        let scheme = at(TS);
        let mut both = plain(ID, "1649367553", EXPECTED);
        both.insert(SVIX_ID_HEADER, ID.parse().unwrap());
        both.insert(SVIX_TIMESTAMP_HEADER, "1649367553".parse().unwrap());
        both.insert(SVIX_SIGNATURE_HEADER, EXPECTED.parse().unwrap());
        assert_eq!(verify(&scheme, &both, BODY), Ok(()));
        both.insert(SVIX_ID_HEADER, "msg_other".parse().unwrap());
        assert_eq!(
            scheme.signature(&both).unwrap_err(),
            LayerAnswer::MalformedSignature
        );
    }

    #[test]
    fn timestamp_tolerance_either_way() {
        let tolerance = |now: u64| {
            at(now)
                .signature(&plain(ID, "1649367553", EXPECTED))
                .map(|_| ())
        };
        assert_eq!(tolerance(TS + 300), Ok(()));
        assert_eq!(tolerance(TS - 300), Ok(()));
        assert_eq!(tolerance(TS + 301), Err(LayerAnswer::StaleTimestamp));
        assert_eq!(tolerance(TS - 301), Err(LayerAnswer::StaleTimestamp));
        let tight = at(TS + 11).tolerance(Duration::from_secs(10));
        assert_eq!(
            tight
                .signature(&plain(ID, "1649367553", EXPECTED))
                .unwrap_err(),
            LayerAnswer::StaleTimestamp
        );
    }

    #[test]
    fn secrets_are_decoded_and_short_keys_refused() {
        assert_eq!(
            decode_secret("C2FVsBQIhrscChlQIMV+b5sSYspob7oD")
                .unwrap()
                .len(),
            24
        );
        // 16 bytes, unpadded and padded.
        assert_eq!(
            decode_secret("whsec_AAAAAAAAAAAAAAAAAAAAAA").unwrap().len(),
            16
        );
        assert_eq!(
            decode_secret("whsec_AAAAAAAAAAAAAAAAAAAAAA==")
                .unwrap()
                .len(),
            16
        );
        assert!(decode_secret("whsec_AAAAAAAAAAAAAAAAAAAA").is_err()); // 15 bytes
        assert!(decode_secret("whsec_not*base64*at*all*not*base64").is_err());
        let error = crate::WebhookLayer::new(Standard::new(), "whsec_c2hvcnQ=").unwrap_err();
        assert!(error.to_string().contains("whsec_"), "{error}");
    }

    #[test]
    fn event_type_comes_from_the_signed_body() {
        let h = plain(ID, "1649367553", EXPECTED);
        let body = Bytes::from_static(br#"{"type":"invoice.paid","data":{}}"#);
        let parsed = at(TS).parse(&h, &body).unwrap();
        assert_eq!(parsed.event.event_type.as_deref(), Some("invoice.paid"));
        let twice = Bytes::from_static(br#"{"type":"a","type":"b"}"#);
        assert_eq!(
            at(TS).parse(&h, &twice).unwrap_err(),
            LayerAnswer::InvalidPayload
        );
    }
}
