//! Signed times: Unix timestamps read from a header and checked against a
//! tolerance on a replaceable clock ([`Freshness`]), the constructors every
//! timestamped scheme shares, and RFC 3339 date-times ([`rfc3339`]) for the
//! times providers sign inside their bodies.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::LayerAnswer;

pub(crate) mod rfc3339;

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
/// [`LayerAnswer::MalformedSignature`] for anything else.
pub(crate) fn parse_timestamp(digits: &[u8]) -> Result<u64, LayerAnswer> {
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(LayerAnswer::MalformedSignature);
    }
    std::str::from_utf8(digits)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or(LayerAnswer::MalformedSignature)
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
    /// [`LayerAnswer::StaleTimestamp`] otherwise.
    pub(crate) fn check(&self, timestamp: u64) -> Result<(), LayerAnswer> {
        if self.clock.unix_now().abs_diff(timestamp) > self.tolerance.as_secs() {
            return Err(LayerAnswer::StaleTimestamp);
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
                    freshness: $crate::scheme::timestamp::Freshness::new($default),
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
            assert_eq!(parse_timestamp(bad), Err(LayerAnswer::MalformedSignature));
        }
    }

    #[test]
    fn tolerance_is_inclusive_both_ways() {
        let window = Freshness::new(Duration::from_secs(300))
            .with_clock(|| UNIX_EPOCH + Duration::from_secs(1000));
        assert!(window.check(700).is_ok());
        assert!(window.check(1300).is_ok());
        assert_eq!(window.check(699), Err(LayerAnswer::StaleTimestamp));
        assert_eq!(window.check(1301), Err(LayerAnswer::StaleTimestamp));
        let tight = window.with_tolerance(Duration::from_secs(10));
        assert_eq!(tight.check(989), Err(LayerAnswer::StaleTimestamp));
        assert!(format!("{tight:?}").contains("Clock(injected)"));
        let before_epoch = Freshness::new(Duration::from_secs(5))
            .with_clock(|| UNIX_EPOCH - Duration::from_secs(1));
        assert!(before_epoch.check(5).is_ok());
    }
}
