//! How one provider signs and shapes its webhooks.
//!
//! A [`Scheme`] answers the layer's questions, each at its place in the
//! pipeline:
//!
//! 1. When the layer is built: how is a secret, as the provider shows it,
//!    turned into a key of which algorithm? ([`Scheme::decode_key`],
//!    [`Scheme::decode_secret`], [`Scheme::algorithm`]).
//! 2. From the headers (and the URI, for Twilio) alone: what tags does the
//!    sender claim, and what did it sign before the body?
//!    ([`Scheme::signature`], [`Scheme::request_signature`]) — malformed →
//!    401 before any body is read.
//! 3. Once the delivery verifies: is it the provider's endpoint check,
//!    answered by the layer itself? ([`Scheme::handshake`]).
//! 4. From the verified bytes: what is the typed event, and what identifies
//!    it across redeliveries? ([`Scheme::parse`], [`Scheme::parse_request`])
//!    — malformed → 400.
//! 5. Is the delivery still fresh, by a time signed inside its body?
//!    ([`Scheme::check_freshness`], [`Scheme::signed_time`]) — once, when
//!    the delivery arrives; stale → 401.
//!
//! The providers share their helpers by what they do: `headers` (the
//! signature and signed headers), `json` (the body's fields as views),
//! `timestamp` (signed times and their tolerance) and `handshake` (the
//! replies to endpoint checks).
//!
//! The HMAC itself, the body cap and the store stay in the layer, so a new
//! provider is one small `impl` and cannot get them wrong.
//!
//! # What may depend on the time
//!
//! Only the checks made when a delivery arrives: [`Scheme::signature`]
//! (a signed timestamp header), [`Scheme::check_freshness`] and the layer's
//! replay window over [`Scheme::signed_time`]. [`Scheme::parse`] must be a
//! pure function of the request's headers and body (and, through
//! [`Scheme::parse_request`], its URI): no clock, no counter, no lookup.
//! In queued mode the worker parses the recorded delivery again before
//! every attempt — seconds, hours or a restart later, or when a dead letter
//! is replayed — and runs none of the arrival checks; a parse whose answer
//! could change would turn an accepted event into a dead letter, or hand
//! the handler another event or key than the one accepted.
//!
//! # The idempotency key
//!
//! [`Parsed::id`] must name one event: two deliveries get the same id only
//! when they carry the same event (a redelivery), so it is built from
//! signed content that tells any two events apart — a signed event id, or
//! else the digest of what was signed. Each scheme's module docs say what
//! its key is made of and why two events cannot share it.

use std::fmt;

use bytes::Bytes;
use http::{HeaderMap, Response, Uri};
use http_body_util::Full;

use crate::secret::{Algorithm, Key, MatchedKey, Signature};
use crate::{LayerAnswer, Text};

/// The built-in providers, one line each: `module::Scheme`, the module
/// named as the scheme ([`Scheme::name`]). From this list follow the
/// modules, their re-exports, the names a custom scheme may not take
/// ([`custom::RESERVED_NAMES`]) and [`for_each_builtin`].
macro_rules! providers {
    ($($(#[$cfg:meta])* $module:ident::$scheme:ident,)*) => {
        $($(#[$cfg])* pub mod $module;)*
        $($(#[$cfg])* pub use $module::$scheme;)*

        /// The built-in providers' modules, re-exported at the crate's root.
        pub mod builtins {
            $($(#[$cfg])* pub use super::$module;)*
        }

        /// Every built-in scheme's name, those behind a crate feature
        /// included.
        pub(crate) const BUILTIN_NAMES: &[&str] = &[$(stringify!($module)),*];

        /// Hands every built-in provider compiled in to `visitor`, in the
        /// list's order.
        pub fn for_each_builtin(visitor: &mut impl BuiltinVisitor) {
            $($(#[$cfg])* visitor.visit::<$module::$scheme>();)*
        }
    };
}

providers! {
    numberotp::NumberOtp,
    numero::Numero,
    github::GitHub,
    standard::Standard,
    stripe::Stripe,
    shopify::Shopify,
    slack::Slack,
    paddle::Paddle,
    linear::Linear,
    zoom::Zoom,
    twitch::Twitch,
    woocommerce::WooCommerce,
    lemonsqueezy::LemonSqueezy,
    flutterwave::Flutterwave,
    paystack::Paystack,
    twilio::Twilio,
    square::Square,
    #[cfg(feature = "ed25519")]
    discord::Discord,
}

pub mod custom;
pub use custom::Custom;

pub(crate) mod builtin;
mod handshake;
mod headers;
mod json;
pub(crate) mod timestamp;

pub use builtin::{Builtin, BuiltinVisitor};

/// Longest event id (or id part) accepted, in bytes. Longer → 400.
pub const MAX_ID_LEN: usize = 255;

/// One provider's signature format and event shape.
pub trait Scheme: Send + Sync + 'static {
    /// The typed event handed to the inner service in the request extensions.
    type Event: Clone + Send + Sync + 'static;

    /// Short lower-case name; namespaces idempotency keys and labels logs.
    /// It holds no `/`, `:`, whitespace or control character, so a key's
    /// text parses back ([`JobKey`](crate::JobKey)); the built-in and
    /// custom schemes use `a-z`, `0-9`, `-` and `_`.
    fn name(&self) -> &'static str;

    /// Turns a secret, as the provider shows it, into HMAC key bytes.
    ///
    /// The default uses the string's bytes as they are. The layer has already
    /// refused empty secrets and secrets that begin or end with whitespace.
    ///
    /// # Errors
    ///
    /// A few words saying what the scheme expected, when it cannot decode.
    fn decode_secret(&self, secret: &str) -> Result<Vec<u8>, &'static str> {
        Ok(secret.as_bytes().to_vec())
    }

    /// The shortest HMAC secret the layer accepts, in bytes of the decoded
    /// key: [`MIN_HMAC_SECRET_LEN`](crate::MIN_HMAC_SECRET_LEN) unless the
    /// provider documents shorter secrets (its published sample, or the
    /// least it lets users choose), which must then keep working.
    fn min_secret_len(&self) -> usize {
        crate::secret::MIN_HMAC_SECRET_LEN
    }

    /// The algorithm the provider signs with (default HMAC-SHA256).
    fn algorithm(&self) -> Algorithm {
        Algorithm::HmacSha256
    }

    /// Turns a secret, as the provider shows it, into a key of some
    /// algorithm; what the layer calls when it is built.
    ///
    /// The default is [`Scheme::decode_secret`]'s bytes for
    /// [`Scheme::algorithm`]. A scheme whose secrets come in several kinds
    /// (Standard Webhooks: `whsec_` HMAC secrets and `whpk_` public keys)
    /// tells them apart here.
    ///
    /// # Errors
    ///
    /// A few words saying what the scheme expected, when it cannot decode.
    fn decode_key(&self, secret: &str) -> Result<Key, &'static str> {
        self.decode_secret(secret)
            .map(|bytes| Key::new(self.algorithm(), bytes))
    }

    /// Reads the sender's claimed tags (and any signed prefix) from the
    /// headers, before any body is read.
    ///
    /// # Errors
    ///
    /// [`LayerAnswer::MissingSignature`], [`LayerAnswer::RepeatedSignature`],
    /// [`LayerAnswer::MalformedSignature`] or [`LayerAnswer::StaleTimestamp`].
    fn signature(&self, headers: &HeaderMap) -> Result<Signature, LayerAnswer>;

    /// As [`Scheme::signature`], for a scheme that also signs the request
    /// URI (Twilio signs the query string); what the layer calls. The
    /// default ignores the URI.
    ///
    /// # Errors
    ///
    /// As [`Scheme::signature`].
    fn request_signature(&self, uri: &Uri, headers: &HeaderMap) -> Result<Signature, LayerAnswer> {
        let _ = uri;
        self.signature(headers)
    }

    /// A provider's endpoint check, answered by the layer itself once the
    /// delivery has verified, before it is parsed or claimed and without
    /// calling the inner service: Slack's `url_verification`, Zoom's
    /// `endpoint.url_validation`, Twitch's `webhook_callback_verification`,
    /// Discord's `PING`. `key` is the secret that verified the delivery.
    ///
    /// The default answers nothing: every verified delivery goes on to
    /// [`Scheme::parse`].
    fn handshake(
        &self,
        headers: &HeaderMap,
        body: &Bytes,
        key: MatchedKey<'_>,
    ) -> Option<Response<Full<Bytes>>> {
        let _ = (headers, body, key);
        None
    }

    /// Parses the verified body into the typed event and its id.
    ///
    /// A pure function of `headers` and `body`: the same delivery parses to
    /// the same event and id every time, whenever it is asked (see
    /// [the module docs](self#what-may-depend-on-the-time)). The worker of
    /// a queued layer calls it again before every attempt. Time windows
    /// belong in [`Scheme::signature`] or [`Scheme::check_freshness`].
    ///
    /// # Errors
    ///
    /// A 400 rejection: not UTF-8, not JSON, no or ambiguous id, an unsigned
    /// header that disagrees with the body.
    fn parse(&self, headers: &HeaderMap, body: &Bytes) -> Result<Parsed<Self::Event>, LayerAnswer>;

    /// As [`Scheme::parse`], for a scheme whose key needs the signed
    /// request URI (Twilio signs the query string); what the layer and the
    /// queued worker call. The default ignores the URI. A pure function of
    /// `uri`, `headers` and `body`, as [`Scheme::parse`] is.
    ///
    /// # Errors
    ///
    /// As [`Scheme::parse`].
    fn parse_request(
        &self,
        uri: &Uri,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> Result<Parsed<Self::Event>, LayerAnswer> {
        let _ = uri;
        self.parse(headers, body)
    }

    /// Whether a parsed delivery is fresh, by a time the provider signs
    /// inside the body and the scheme's own tolerance (Linear's
    /// `webhookTimestamp`, 60 s). The layer calls it once, when the
    /// delivery arrives, after [`Scheme::parse`] and before anything is
    /// claimed or recorded; the queued worker never calls it, so an event
    /// accepted fresh still runs on a retry or a replay after the window.
    ///
    /// The default accepts every event. Schemes that sign a timestamp
    /// header check it in [`Scheme::signature`] instead.
    ///
    /// # Errors
    ///
    /// [`LayerAnswer::StaleTimestamp`] (401) outside the tolerance.
    fn check_freshness(&self, event: &Self::Event) -> Result<(), LayerAnswer> {
        let _ = event;
        Ok(())
    }

    /// When the provider says the event happened, from a time it signs
    /// inside the body (Numero's `created_at`), for the layer's replay
    /// window: a delivery older than the window is refused (401
    /// `stale_timestamp`) before anything is recorded, so a replay captured
    /// and sent again after its key's done TTL cannot run again. Judged
    /// once, when the delivery arrives, as [`Scheme::check_freshness`] is.
    ///
    /// `None` (the default) when the scheme signs no such time, or this
    /// event carries none the scheme can read: then the window cannot
    /// apply. Schemes that sign a timestamp header check it with their own
    /// tolerance in [`Scheme::signature`] instead.
    fn signed_time(&self, event: &Self::Event) -> Option<std::time::SystemTime> {
        let _ = event;
        None
    }
}

/// A typed event and the id that stays the same across its redeliveries.
#[derive(Debug, Clone)]
pub struct Parsed<E> {
    /// The typed event.
    pub event: E,
    /// What identifies the event across redeliveries, and no other event
    /// (see [the module docs](self#the-idempotency-key)).
    pub id: EventId,
}

/// What identifies one event across redeliveries, within one scheme.
///
/// Either one part, kept as it is ([`EventId::from_text`], [`EventId::new`]),
/// or several parts, each length-prefixed ([`EventId::from_parts`]) so that
/// no choice of part contents makes two different lists collide. A scheme
/// uses one form for all its events, and keys are namespaced by scheme, so
/// the two forms never meet.
///
/// A single-part id taken from the body is a view into the verified body
/// ([`Text`]): building it copies nothing, and keeping it keeps the whole
/// body alive. To keep such an id past its request, keep a copy
/// (`EventId::new(id.as_str())`, or `id.as_str().to_owned()`). A
/// several-part id is a buffer of its own and holds no body.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EventId(Text);

impl EventId {
    /// An id made of a single part, copied from `id`.
    ///
    /// # Errors
    ///
    /// [`LayerAnswer::InvalidId`] when the part is empty or longer than
    /// [`MAX_ID_LEN`].
    pub fn new(id: &str) -> Result<Self, LayerAnswer> {
        check_single(id)?;
        Ok(Self(Text::from(id)))
    }

    /// An id made of a single part, sharing `id`'s bytes (no copy): what a
    /// scheme uses for an id read from the body.
    ///
    /// # Errors
    ///
    /// [`LayerAnswer::InvalidId`] when the part is empty or longer than
    /// [`MAX_ID_LEN`].
    pub fn from_text(id: Text) -> Result<Self, LayerAnswer> {
        check_single(&id)?;
        Ok(Self(id))
    }

    /// An id made of several parts, written `<len>:<part>` one after the
    /// other; `None` marks an absent part (written `-`), distinct from every
    /// present one, the empty string included. One allocation.
    ///
    /// # Errors
    ///
    /// [`LayerAnswer::InvalidId`] when the first part is absent or empty, or
    /// any part is longer than [`MAX_ID_LEN`].
    pub fn from_parts<'a, I>(parts: I) -> Result<Self, LayerAnswer>
    where
        I: IntoIterator<Item = Option<&'a str>>,
    {
        use std::fmt::Write as _;
        let mut out = String::with_capacity(64);
        for (i, part) in parts.into_iter().enumerate() {
            match part {
                Some(p) if p.len() > MAX_ID_LEN || (i == 0 && p.is_empty()) => {
                    return Err(LayerAnswer::InvalidId);
                }
                Some(p) => {
                    let _ = write!(out, "{}:{p}", p.len());
                }
                None if i == 0 => return Err(LayerAnswer::InvalidId),
                None => out.push('-'),
            }
        }
        if out.is_empty() {
            return Err(LayerAnswer::InvalidId);
        }
        Ok(Self(Text::from(out)))
    }

    /// The id as text, as it appears in the store key.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as a [`Text`] (a view into the body when read from it).
    pub fn as_text(&self) -> &Text {
        &self.0
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn check_single(id: &str) -> Result<(), LayerAnswer> {
    if id.is_empty() || id.len() > MAX_ID_LEN {
        return Err(LayerAnswer::InvalidId);
    }
    Ok(())
}

/// Lower-case hex SHA-256 of `bytes`: the id of an event whose provider
/// signs no id (64 characters, one allocation).
pub(crate) fn digest(bytes: &[u8]) -> Text {
    use sha2::{Digest as _, Sha256};
    let mut hex = [0; 64];
    hex::encode_to_slice(Sha256::digest(bytes), &mut hex).expect("64 digits for 32 bytes");
    Text::from(std::str::from_utf8(&hex).expect("hex digits are ASCII"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_id_parts_never_collide() {
        let a = EventId::from_parts([Some("a1:b")]).unwrap();
        let b = EventId::from_parts([Some("a"), Some("b")]).unwrap();
        let c = EventId::from_parts([Some("a"), None]).unwrap();
        let d = EventId::from_parts([Some("a"), Some("-")]).unwrap();
        let e = EventId::from_parts([Some("a"), Some("")]).unwrap();
        let all = [&a, &b, &c, &d, &e];
        for (i, x) in all.iter().enumerate() {
            for y in &all[i + 1..] {
                assert_ne!(x, y);
            }
        }
        assert_eq!(EventId::new("evt_1").unwrap().as_str(), "evt_1");
    }

    #[test]
    fn event_id_length_is_capped() {
        assert!(EventId::new(&"x".repeat(MAX_ID_LEN)).is_ok());
        assert_eq!(
            EventId::new(&"x".repeat(MAX_ID_LEN + 1)),
            Err(LayerAnswer::InvalidId)
        );
        assert_eq!(EventId::new(""), Err(LayerAnswer::InvalidId));
    }

    #[test]
    fn each_listed_module_is_named_as_its_scheme() {
        struct Names(Vec<&'static str>);
        impl BuiltinVisitor for Names {
            fn visit<B: Builtin>(&mut self) {
                self.0
                    .push(B::from_settings("https://example.com/hook").name());
            }
        }
        let mut names = Names(Vec::new());
        for_each_builtin(&mut names);
        let compiled: Vec<_> = BUILTIN_NAMES
            .iter()
            .copied()
            .filter(|name| cfg!(feature = "ed25519") || *name != "discord")
            .collect();
        assert_eq!(names.0, compiled);
        assert_eq!(custom::RESERVED_NAMES, BUILTIN_NAMES);
        assert!(BUILTIN_NAMES.contains(&"discord"));
    }

    #[test]
    fn digest_is_sha256_hex() {
        assert_eq!(
            digest(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
