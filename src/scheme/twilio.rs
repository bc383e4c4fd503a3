//! Twilio: `X-Twilio-Signature: <base64>`, **HMAC-SHA1** over the public
//! URL and the sorted form parameters (or, for JSON bodies, the URL with a
//! `bodySHA256` query parameter).
//!
//! Twilio still signs with HMAC-SHA1, keyed with the account's Auth Token
//! as raw bytes; it is accepted here for Twilio only. (SHA-1's collisions
//! do not help a forger against HMAC.)
//!
//! # What is signed
//!
//! * The URL Twilio requested, exactly: give its public form (scheme, host,
//!   any port, path) to [`Twilio::new`], since behind a proxy the URL this
//!   server sees differs. The request's query string, as received, is
//!   appended to it (`?` + query) when there is one. Twilio's own libraries
//!   also try the URL with the default port added or removed; this scheme
//!   signs exactly the configured URL, so configure it as Twilio has it.
//! * Form bodies (`application/x-www-form-urlencoded`): after the URL, each
//!   parameter's name followed by its value, percent-decoded, sorted by
//!   name and then value, a pair given twice counted once — as
//!   `RequestValidator.compute_signature` does.
//! * JSON bodies: when the query holds `bodySHA256`, only the URL (with
//!   that query) is signed, and the body's SHA-256 in lower-case hex must
//!   equal `bodySHA256` (else 401 `signature_mismatch`).
//! * The tag is standard padded base64 of the 20-byte HMAC-SHA1.
//! * `X-Twilio-Webhooks-Signature-Settings` (SharedKey signatures, which
//!   may name another algorithm) is not supported: a request carrying it
//!   with an algorithm other than `HMAC_SHA1` is 401 malformed.
//!
//! # The idempotency key
//!
//! Twilio signs no event id. What it signs is the whole request: the URL
//! with its query, and every form parameter. The key is the SHA-256 (hex)
//! of exactly those signed bytes, after the resource sid the callback
//! names, when it names one (the first present of `MessageSid`, `SmsSid`,
//! `RecordingSid`, `CallSid`): `<sid name>`, `<sid>`, `<digest>`,
//! length-prefixed ([`EventId::from_parts`]); without a sid, `sha256`,
//! `<digest>`. A sid given twice with different values is ambiguous (400).
//!
//! The sid and its status do not name one callback: every in-call request
//! of a call (each Gather, Dial, Record action) carries the same `CallSid`
//! with `CallStatus=in-progress`, and a message's status may be reported
//! with different details. The signed bytes do: two callbacks that differ
//! in any parameter (other `Digits`) or in the query (another action URL)
//! are two events, and a retry, which Twilio sends with the same
//! parameters to the same URL, is one. Only a request whose signed bytes
//! are exactly equal — the same URL and the same parameters — is the same
//! event, and then nothing signed tells the two apart. A JSON body signs
//! only the URL, whose `bodySHA256` binds the body, so its key is the
//! digest of that URL.

use bytes::Bytes;
use http::header::HeaderName;
use http::{HeaderMap, Uri};
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

use super::headers::{signature_header, single_header};
use super::json::Json;
use super::{EventId, Parsed, Scheme, digest, headers};
use crate::secret::{Algorithm, Signature, Tag};
use crate::{LayerAnswer, Text};

/// The signature header.
pub const SIGNATURE_HEADER: HeaderName = HeaderName::from_static("x-twilio-signature");
/// The SharedKey settings header (not supported beyond `HMAC_SHA1`).
pub const SETTINGS_HEADER: HeaderName =
    HeaderName::from_static("x-twilio-webhooks-signature-settings");
/// The query parameter carrying a JSON body's SHA-256.
pub const BODY_SHA256_PARAM: &str = "bodySHA256";

/// The Twilio scheme for one public URL. Secrets are the raw bytes of the
/// Auth Token.
#[derive(Debug, Clone)]
pub struct Twilio {
    url: String,
}

impl Twilio {
    /// The scheme for requests Twilio sends to `public_url` (scheme, host,
    /// any port, path; a query or fragment in it is dropped: the query is
    /// taken from each request).
    pub fn new(public_url: impl Into<String>) -> Self {
        let mut url = public_url.into();
        if let Some(at) = url.find(['?', '#']) {
            url.truncate(at);
        }
        Self { url }
    }

    /// The configured public URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The URL Twilio signed for a request with `query`.
    fn signed_url(&self, query: Option<&str>) -> String {
        match query {
            Some(query) => format!("{}?{query}", self.url),
            None => self.url.clone(),
        }
    }
}

/// A verified Twilio request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct TwilioEvent {
    /// The resource sid the key begins with (`MessageSid`, `SmsSid`,
    /// `RecordingSid` or `CallSid`, signed); `None` when the request names
    /// none.
    pub sid: Option<Text>,
    /// Its status (`MessageStatus`, …), signed, when sent.
    pub status: Option<Text>,
    /// `AccountSid` (signed).
    pub account_sid: Option<Text>,
    /// SHA-256 (hex) of the body.
    pub digest: Text,
    /// SHA-256 (hex) of the signed bytes (the URL with its query, then the
    /// sorted form parameters): what the key is made of.
    pub signed_digest: Text,
}

/// Name and value of every form parameter, percent-decoded.
fn params(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

/// The bytes Twilio signs after the URL for a form body.
fn sorted_params(body: &[u8]) -> Vec<u8> {
    let mut pairs = params(body);
    pairs.sort_unstable();
    pairs.dedup();
    pairs
        .iter()
        .flat_map(|(name, value)| [name.as_bytes(), value.as_bytes()])
        .flatten()
        .copied()
        .collect()
}

/// Whether the request's query carries a JSON body's SHA-256, so that only
/// the URL is signed.
///
/// # Errors
///
/// [`LayerAnswer::MalformedSignature`] for `bodySHA256` given twice.
fn body_sha256(query: Option<&str>) -> Result<Option<String>, LayerAnswer> {
    query_param(query, BODY_SHA256_PARAM)
}

/// The one value of query parameter `name`, if any.
fn query_param(query: Option<&str>, name: &str) -> Result<Option<String>, LayerAnswer> {
    let mut values = query
        .into_iter()
        .flat_map(|query| form_urlencoded::parse(query.as_bytes()))
        .filter(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned());
    let first = values.next();
    if values.next().is_some() {
        return Err(LayerAnswer::MalformedSignature);
    }
    Ok(first)
}

const SIDS: [(&str, &str); 4] = [
    ("MessageSid", "MessageStatus"),
    ("SmsSid", "SmsStatus"),
    ("RecordingSid", "RecordingStatus"),
    ("CallSid", "CallStatus"),
];

impl Scheme for Twilio {
    type Event = TwilioEvent;

    fn name(&self) -> &'static str {
        "twilio"
    }

    /// Twilio's documented sample Auth Token, `12345`.
    fn min_secret_len(&self) -> usize {
        5
    }

    fn algorithm(&self) -> Algorithm {
        Algorithm::HmacSha1
    }

    fn signature(&self, headers: &HeaderMap) -> Result<Signature, LayerAnswer> {
        self.request_signature(&Uri::from_static("/"), headers)
    }

    fn request_signature(&self, uri: &Uri, headers: &HeaderMap) -> Result<Signature, LayerAnswer> {
        let value = signature_header(headers, &SIGNATURE_HEADER)?;
        let tag = Tag::decode_base64(Algorithm::HmacSha1, value)
            .map_err(|_| LayerAnswer::MalformedSignature)?;
        if let Some(settings) = single_header(headers, &SETTINGS_HEADER)? {
            let algorithm = settings.as_bytes().split(|&b| b == b',').find_map(|part| {
                let (name, value) = headers::split_at_byte(part, b'=')?;
                (name.trim_ascii() == b"algorithm").then(|| value.trim_ascii())
            });
            if algorithm.is_some_and(|algorithm| algorithm != b"HMAC_SHA1") {
                return Err(LayerAnswer::MalformedSignature);
            }
        }
        let query = uri.query();
        let signature = Signature::over_body(tag).with_prefix(self.signed_url(query));
        Ok(match body_sha256(query)? {
            Some(expected) => signature.with_content(move |body| {
                let actual = hex::encode(Sha256::digest(body));
                bool::from(actual.as_bytes().ct_eq(expected.as_bytes())).then(Vec::new)
            }),
            None => signature.with_content(|body| Some(sorted_params(body))),
        })
    }

    fn parse(&self, headers: &HeaderMap, body: &Bytes) -> Result<Parsed<TwilioEvent>, LayerAnswer> {
        self.parse_request(&Uri::from_static("/"), headers, body)
    }

    fn parse_request(
        &self,
        uri: &Uri,
        _headers: &HeaderMap,
        body: &Bytes,
    ) -> Result<Parsed<TwilioEvent>, LayerAnswer> {
        // The bytes `request_signature` had verified, digested: the key
        // names what Twilio signed, and so one request of Twilio's.
        let query = uri.query();
        let mut signed = self.signed_url(query).into_bytes();
        if body_sha256(query)?.is_none() {
            signed.extend_from_slice(&sorted_params(body));
        }
        let signed_digest = digest(&signed);
        let mut event = TwilioEvent {
            sid: None,
            status: None,
            account_sid: None,
            digest: digest(body),
            signed_digest: signed_digest.clone(),
        };
        let mut id = EventId::from_parts([Some("sha256"), Some(&*signed_digest)])?;
        if body.trim_ascii_start().first() == Some(&b'{') {
            Json::new(body)?.check_object()?;
            return Ok(Parsed { event, id });
        }
        let params = params(body);
        let one = |name: &str| -> Result<Option<Text>, LayerAnswer> {
            let mut values = params.iter().filter(|(key, _)| key == name).map(|(_, v)| v);
            let first = values.next();
            if values.any(|other| Some(other) != first) {
                return Err(LayerAnswer::AmbiguousId);
            }
            Ok(first.map(|value| Text::from(value.as_str())))
        };
        event.account_sid = one("AccountSid")?;
        for (sid_name, status_name) in SIDS {
            if let Some(sid) = one(sid_name)? {
                event.status = one(status_name)?;
                id = EventId::from_parts([Some(sid_name), Some(&*sid), Some(&*signed_digest)])?;
                event.sid = Some(sid);
                break;
            }
        }
        Ok(Parsed { event, id })
    }
}

impl super::Builtin for Twilio {
    const SECRET_VAR: &'static str = "TWILIO_AUTH_TOKEN";
    const URL_VAR: Option<&'static str> = Some("TWILIO_WEBHOOK_URL");

    fn from_settings(url: &str) -> Self {
        Self::new(url)
    }

    fn shown_id(event: &TwilioEvent) -> Text {
        event.digest.clone()
    }

    fn shown_fields(event: &TwilioEvent) -> Vec<(&'static str, String)> {
        super::builtin::present([("sid", event.sid.as_deref()), ("status", event.status.as_deref())])
    }
}

/// `X-Twilio-Signature` for a form request to `url` (query included) with
/// `params`: base64 of the HMAC-SHA1 of the URL followed by each name and
/// value, sorted (pairs given twice counted once).
pub fn sign(auth_token: &[u8], url: &str, params: &[(&str, &str)]) -> String {
    let mut pairs = params.to_vec();
    pairs.sort_unstable();
    pairs.dedup();
    let mut content = url.as_bytes().to_vec();
    for (name, value) in pairs {
        content.extend_from_slice(name.as_bytes());
        content.extend_from_slice(value.as_bytes());
    }
    crate::secret::hmac(crate::secret::Algorithm::HmacSha1, auth_token, &content).to_base64()
}

/// A Twilio request with a JSON `body` to `url` (without `bodySHA256`):
/// the URL with `bodySHA256=<hex SHA-256 of body>` added to its query, and
/// its `X-Twilio-Signature`.
pub fn sign_json(auth_token: &[u8], url: &str, body: &[u8]) -> (String, String) {
    use sha2::Digest as _;
    let separator = if url.contains('?') { '&' } else { '?' };
    let url = format!(
        "{url}{separator}bodySHA256={}",
        hex::encode(sha2::Sha256::digest(body))
    );
    let signature = sign(auth_token, &url, &[]);
    (url, signature)
}
