//! Pieces shared by the schemes of issue 6: a replaceable clock, signed
//! Unix timestamps checked against a tolerance, and body digests used as
//! idempotency keys when a provider signs no id.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderMap;
use http::header::HeaderName;
use sha2::{Digest as _, Sha256};

use super::signature_header;
use crate::secret::{InvalidTag, Signature, Tag};
use crate::{Rejection, Text};

/// Most candidate tags read from one signature header. A sender lists one
/// per active secret, so a handful at most; more is refused as malformed.
pub(crate) const MAX_TAGS: usize = 32;

/// Where a timestamped scheme reads "now": the system clock unless a test
/// injects another.
#[derive(Clone)]
struct Clock(Option<Arc<dyn Fn() -> SystemTime + Send + Sync>>);

impl Clock {
    /// The system clock.
    fn system() -> Self {
        Self(None)
    }

    /// A clock that calls `now`.
    fn from_fn<F>(now: F) -> Self
    where
        F: Fn() -> SystemTime + Send + Sync + 'static,
    {
        Self(Some(Arc::new(now)))
    }

    /// Seconds since the Unix epoch now; 0 before the epoch.
    fn unix_now(&self) -> u64 {
        let now = match &self.0 {
            Some(now) => now(),
            None => SystemTime::now(),
        };
        now.duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_secs())
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.0 {
            Some(_) => "Clock(injected)",
            None => "Clock(system)",
        })
    }
}

/// A signed timestamp: 1 to 19 ASCII digits (no sign, no space, no
/// fraction), so it can never hide a `.` of the signed content.
///
/// # Errors
///
/// [`Rejection::MalformedSignature`] for anything else.
pub(crate) fn parse_timestamp(digits: &[u8]) -> Result<u64, Rejection> {
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(Rejection::MalformedSignature);
    }
    std::str::from_utf8(digits)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or(Rejection::MalformedSignature)
}

/// A timestamped scheme's replay window: a tolerance and a clock.
#[derive(Debug, Clone)]
pub(crate) struct Freshness {
    tolerance: Duration,
    clock: Clock,
}

impl Freshness {
    /// `tolerance` either way, on the system clock.
    pub(crate) fn new(tolerance: Duration) -> Self {
        Self {
            tolerance,
            clock: Clock::system(),
        }
    }

    /// The same window, another tolerance.
    pub(crate) fn with_tolerance(self, tolerance: Duration) -> Self {
        Self { tolerance, ..self }
    }

    /// The same window, read from `now` instead of the system clock.
    pub(crate) fn with_clock<F>(self, now: F) -> Self
    where
        F: Fn() -> SystemTime + Send + Sync + 'static,
    {
        Self {
            clock: Clock::from_fn(now),
            ..self
        }
    }

    /// Accepts `timestamp` when it is at most the tolerance (whole seconds)
    /// away from now, in either direction; the bounds are inclusive.
    ///
    /// # Errors
    ///
    /// [`Rejection::StaleTimestamp`] otherwise.
    pub(crate) fn check(&self, timestamp: u64) -> Result<(), Rejection> {
        if self.clock.unix_now().abs_diff(timestamp) > self.tolerance.as_secs() {
            return Err(Rejection::StaleTimestamp);
        }
        Ok(())
    }
}

/// The constructors of a timestamped scheme holding a `freshness` field:
/// `Default`, `new`, `tolerance` and `clock`, documented with the default
/// tolerance's wording.
macro_rules! timestamped_scheme {
    ($scheme:ident, $default:ident, $default_words:literal) => {
        impl Default for $scheme {
            fn default() -> Self {
                Self::new()
            }
        }

        impl $scheme {
            /// The scheme with the default tolerance and the system clock.
            pub fn new() -> Self {
                Self {
                    freshness: $crate::scheme::support::Freshness::new($default),
                }
            }

            #[doc = concat!(
                        "How far the signed timestamp may be from now, either way (default ",
                        $default_words,
                        "; counted in whole seconds)."
                    )]
            #[must_use]
            pub fn tolerance(self, tolerance: ::std::time::Duration) -> Self {
                Self {
                    freshness: self.freshness.with_tolerance(tolerance),
                }
            }

            /// Reads "now" from `now` instead of the system clock; for tests.
            #[must_use]
            pub fn clock<F>(self, now: F) -> Self
            where
                F: Fn() -> ::std::time::SystemTime + Send + Sync + 'static,
            {
                Self {
                    freshness: self.freshness.with_clock(now),
                }
            }
        }
    };
}

pub(crate) use timestamped_scheme;

/// The one tag of a header `<prefix><tag>` over the body alone, decoded
/// with `decode` ([`Tag::from_hex`], [`Tag::from_base64`], or a decoder
/// for another algorithm).
///
/// # Errors
///
/// [`Rejection::MissingSignature`] or [`Rejection::RepeatedSignature`] for
/// the header, [`Rejection::MalformedSignature`] for a wrong prefix (case
/// included) or tag.
pub(crate) fn prefixed_tag(
    headers: &HeaderMap,
    name: &HeaderName,
    prefix: &[u8],
    decode: impl Fn(&[u8]) -> Result<Tag, InvalidTag>,
) -> Result<Signature, Rejection> {
    let value = signature_header(headers, name)?;
    let encoded = value
        .strip_prefix(prefix)
        .ok_or(Rejection::MalformedSignature)?;
    decode(encoded)
        .map(Signature::over_body)
        .map_err(|_| Rejection::MalformedSignature)
}

/// Lower-case hex SHA-256 of `bytes`: the id of an event whose provider
/// signs no id (64 characters, one allocation).
pub(crate) fn digest_hex(bytes: &[u8]) -> Text {
    let mut hex = [0; 64];
    hex::encode_to_slice(Sha256::digest(bytes), &mut hex).expect("64 digits for 32 bytes");
    Text::from(std::str::from_utf8(&hex).expect("hex digits are ASCII"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_plain_digits() {
        assert_eq!(parse_timestamp(b"1649367553"), Ok(1_649_367_553));
        assert_eq!(parse_timestamp(b"0"), Ok(0));
        for bad in [
            &b""[..],
            b"-1",
            b"+1",
            b" 1",
            b"1.5",
            b"1e9",
            b"99999999999999999999",
        ] {
            assert_eq!(parse_timestamp(bad), Err(Rejection::MalformedSignature));
        }
    }

    #[test]
    fn tolerance_is_inclusive_both_ways() {
        let window = Freshness::new(Duration::from_secs(300))
            .with_clock(|| UNIX_EPOCH + Duration::from_secs(1000));
        assert!(window.check(700).is_ok());
        assert!(window.check(1300).is_ok());
        assert_eq!(window.check(699), Err(Rejection::StaleTimestamp));
        assert_eq!(window.check(1301), Err(Rejection::StaleTimestamp));
        let tight = window.with_tolerance(Duration::from_secs(10));
        assert_eq!(tight.check(989), Err(Rejection::StaleTimestamp));
        assert!(format!("{tight:?}").contains("Clock(injected)"));
        let before_epoch = Freshness::new(Duration::from_secs(5))
            .with_clock(|| UNIX_EPOCH - Duration::from_secs(1));
        assert!(before_epoch.check(5).is_ok());
    }

    #[test]
    fn digest_is_sha256_hex() {
        assert_eq!(
            digest_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
