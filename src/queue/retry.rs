//! [`RetryPolicy`]: when a failed job runs again, and when it becomes a
//! dead letter.

use std::hash::{BuildHasher, RandomState};
use std::time::{Duration, SystemTime};

/// Exponential backoff with jitter, bounded by attempts and by age.
///
/// The delay before attempt `n + 1` is `base × 2^(n−1)`, capped at `cap`,
/// then scaled by a random factor in `[0.5, 1.0)` so that jobs that failed
/// together do not all come back together. A job becomes a dead letter when
/// its attempt `max_attempts` fails, or when an attempt fails and the next
/// one would start more than `max_age` after the delivery was accepted.
///
/// The defaults cover the providers' own 24-hour retry horizon: 1 s, 2 s,
/// 4 s, … up to one attempt an hour, for 60 attempts or 48 hours, whichever
/// ends first. Even with every jitter factor at its lowest, 60 attempts span
/// more than 24 hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay before the second attempt (before jitter).
    pub base: Duration,
    /// Longest delay between two attempts (before jitter).
    pub cap: Duration,
    /// Attempts before a job is a dead letter (at least 1).
    pub max_attempts: u32,
    /// Longest time from acceptance to the start of a retry.
    pub max_age: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(3600),
            max_attempts: 60,
            max_age: Duration::from_secs(48 * 3600),
        }
    }
}

impl RetryPolicy {
    /// When attempt `attempt + 1` should run, after attempt `attempt`
    /// failed at `now`; `None` when the job is dead instead.
    pub fn next_due(
        &self,
        attempt: u32,
        accepted_at: SystemTime,
        now: SystemTime,
    ) -> Option<SystemTime> {
        if attempt >= self.max_attempts.max(1) {
            return None;
        }
        let due = now + self.delay(attempt);
        let age = due.duration_since(accepted_at).unwrap_or_default();
        (age <= self.max_age).then_some(due)
    }

    /// The jittered delay after failed attempt `attempt` (1-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(62);
        let full = self
            .base
            .checked_mul(1u32 << doublings.min(31))
            .unwrap_or(self.cap)
            .min(self.cap);
        // A factor in [0.5, 1.0) from the standard library's randomly keyed
        // hasher: no crate needed for jitter.
        let random = RandomState::new().hash_one(attempt) >> 11; // 53 bits
        let factor = 0.5 + (random as f64 / (1u64 << 53) as f64) / 2.0;
        full.mul_f64(factor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_are_capped_and_jittered_into_the_upper_half() {
        let policy = RetryPolicy {
            base: Duration::from_millis(100),
            cap: Duration::from_secs(1),
            ..RetryPolicy::default()
        };
        for (attempt, full_ms) in [
            (1, 100),
            (2, 200),
            (3, 400),
            (4, 800),
            (5, 1000),
            (60, 1000),
        ] {
            let delay = policy.delay(attempt).as_millis();
            assert!(
                delay >= full_ms / 2 && delay < full_ms,
                "attempt {attempt}: {delay}"
            );
        }
    }

    #[test]
    fn attempts_and_age_end_in_a_dead_letter() {
        let policy = RetryPolicy {
            max_attempts: 3,
            max_age: Duration::from_secs(10),
            ..RetryPolicy::default()
        };
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert!(policy.next_due(1, t0, t0).is_some());
        assert!(policy.next_due(2, t0, t0).is_some());
        assert_eq!(policy.next_due(3, t0, t0), None);
        assert_eq!(policy.next_due(1, t0, t0 + Duration::from_secs(10)), None);
    }

    #[test]
    fn the_defaults_outlast_the_providers_day_of_retries() {
        let policy = RetryPolicy::default();
        let undelayed: Duration = (1..policy.max_attempts)
            .map(|n| {
                let doublings = (n - 1).min(31);
                (policy.base * (1u32 << doublings)).min(policy.cap)
            })
            .sum();
        // Even with every jitter factor at its lowest (0.5) the retries
        // span more than a day.
        assert!(undelayed / 2 > Duration::from_secs(24 * 3600));
    }
}
