//! Metrics for dashboards and alerts (feature `metrics`), through the
//! [`metrics`](https://docs.rs/metrics/0.24) facade: any exporter that
//! installs a `metrics` recorder receives them (Prometheus, StatsD,
//! OpenTelemetry, …). Without the feature every hook compiles to nothing.
//!
//! | name | type | labels | what it counts or measures |
//! |---|---|---|---|
//! | [`webhook_deliveries_total`](DELIVERIES_TOTAL) | counter | `scheme`, `outcome` | one per delivery answered, by how it ended (below) |
//! | [`webhook_handler_duration_seconds`](HANDLER_DURATION_SECONDS) | histogram | `scheme` | how long the handler ran: the inline call (until its response, its panic or its cancellation), or one queued attempt |
//! | [`webhook_body_bytes`](BODY_BYTES) | histogram | `scheme` | the size of each body collected in full (forged ones included: it is measured before the signature is checked) |
//! | [`webhook_queue_jobs`](QUEUE_JOBS) | gauge | `scheme`, `state` | queued mode: jobs `pending`, `running` and `dead` (dead letters), in the whole backend (every replica's, for a shared one) |
//! | [`webhook_job_attempts_total`](JOB_ATTEMPTS_TOTAL) | counter | `scheme`, `result` | queued mode: one per attempt a worker made, by how it ended (below) |
//!
//! `scheme` is the scheme's [`name`](crate::Scheme::name) (`numero`,
//! `numberotp`, `github`, …).
//!
//! # `outcome`: how a delivery ended
//!
//! * every [`LayerAnswer::code`](crate::LayerAnswer::code), for the answers the
//!   layer gives itself: `signature_mismatch`, `missing_signature`,
//!   `malformed_signature`, `repeated_signature`, `stale_timestamp`,
//!   `body_too_large`, `body_unreadable`, `body_timeout`, `not_utf8`,
//!   `invalid_json`, `missing_id`, `ambiguous_id`, `invalid_id`,
//!   `header_mismatch`, `invalid_payload`, `duplicate`, `in_flight`,
//!   `store_unavailable`, and `accepted` (queued mode: recorded durably,
//!   answered 202);
//! * `processed`: inline, the handler answered 2xx (the event is done);
//! * `handler_failed`: inline, the handler answered non-2xx, its service
//!   returned an error, or it panicked (the claim is released, so the
//!   sender's retry runs it again);
//! * `cancelled`: inline, the request was dropped while the handler ran
//!   (the client went away, or a timeout outside the layer gave up on it);
//!   the claim is released as for a failure.
//!
//! Each delivery the layer answers counts once. Every outcome of a scheme is
//! registered with its first delivery, so each starts at 0 (`rate()` and
//! `increase()` see the first increment).
//!
//! # `result`: how a queued attempt ended
//!
//! One per attempt, exactly one of:
//!
//! * `succeeded`: the handler answered 2xx; the event is done;
//! * `failed`: the handler answered non-2xx, failed or panicked, and the job
//!   is pending again for a retry;
//! * `timed_out`: the attempt ran past the worker's
//!   [`attempt_timeout`](crate::queue::WorkerBuilder::attempt_timeout) and
//!   was stopped; the job is pending again for a retry;
//! * `dead_lettered`: the attempt failed (in any of those ways, or the
//!   recorded delivery no longer parses) and the job is now a dead letter:
//!   its last attempt, or its retry horizon passed;
//! * `lost_lease`: the job's lease ran out before the attempt ended and
//!   another worker took it; this attempt's result is not recorded;
//! * `aborted`: the worker shut down during the attempt and put the job
//!   back, due now.
//!
//! # How fresh the gauges are
//!
//! The `webhook_queue_jobs` gauges are set by each running
//! [`Worker`](crate::Worker) from one [`QueueAdmin::counts_by_scheme`](crate::QueueAdmin::counts_by_scheme) call,
//! made in the background (the worker does not wait for it) at most once
//! per [`QUEUE_GAUGE_INTERVAL`] (1 s): after a change through this worker
//! (a delivery accepted, an attempt finished, a replay) the gauges show it
//! within about 1 s; a change made elsewhere (another replica on a shared
//! Redis, a lease that ran out) within the worker's
//! [`idle_poll`](crate::queue::WorkerBuilder::idle_poll) plus 1 s. Every
//! scheme the worker runs, and every scheme it has seen, is set, at 0 when
//! it has no job in that state. When the backend cannot answer, the gauges
//! keep their last values.
//!
//! # Installing an exporter
//!
//! The layer registers its metrics with the recorder installed when the
//! scheme's first delivery arrives: install the recorder at start, before
//! serving. With
//! [`metrics-exporter-prometheus`](https://docs.rs/metrics-exporter-prometheus),
//! give the two histograms buckets, so that they render as Prometheus
//! histograms (`_bucket`, `_sum`, `_count`) rather than the exporter's
//! default summaries:
//!
//! ```
//! use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
//! use tower_webhook::metrics::{
//!     BODY_BYTES, BODY_BYTES_BUCKETS, HANDLER_DURATION_BUCKETS, HANDLER_DURATION_SECONDS,
//! };
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Installs itself as the process's recorder.
//! let handle = PrometheusBuilder::new()
//!     .set_buckets_for_metric(
//!         Matcher::Full(HANDLER_DURATION_SECONDS.into()),
//!         HANDLER_DURATION_BUCKETS,
//!     )?
//!     .set_buckets_for_metric(Matcher::Full(BODY_BYTES.into()), BODY_BYTES_BUCKETS)?
//!     .install_recorder()?;
//! // Then build the layers and serve, with `handle.render()` on
//! // `GET /metrics` and `handle.run_upkeep()` every few seconds (as the
//! // example receiver does).
//! # let _ = handle.render();
//! # Ok(())
//! # }
//! ```
//!
//! # Cost
//!
//! Without the feature: nothing. With it, inline, a delivery costs one
//! atomic load (the scheme's registered handles) and, with the Prometheus
//! exporter, an atomic add per counter and a few per histogram sample, plus
//! two clock reads around the handler; labels are registered once per
//! scheme, so a delivery allocates nothing for them. The worker's side
//! (attempts and gauges) registers its labels per attempt and per refresh.

use std::sync::Arc;
use std::time::Duration;

use crate::LayerAnswer;
use crate::store::queue::QueueCounts;

/// Counter `webhook_deliveries_total{scheme, outcome}`: deliveries answered.
pub const DELIVERIES_TOTAL: &str = "webhook_deliveries_total";
/// Histogram `webhook_handler_duration_seconds{scheme}`: handler run time,
/// inline and per queued attempt.
pub const HANDLER_DURATION_SECONDS: &str = "webhook_handler_duration_seconds";
/// Histogram `webhook_body_bytes{scheme}`: the size of each collected body.
pub const BODY_BYTES: &str = "webhook_body_bytes";
/// Gauge `webhook_queue_jobs{scheme, state}`: queued jobs by state
/// (`pending`, `running`, `dead`).
pub const QUEUE_JOBS: &str = "webhook_queue_jobs";
/// Counter `webhook_job_attempts_total{scheme, result}`: queued attempts.
pub const JOB_ATTEMPTS_TOTAL: &str = "webhook_job_attempts_total";

/// Suggested bucket bounds for [`HANDLER_DURATION_SECONDS`], in seconds:
/// from 1 ms to the worker's default 5-minute attempt timeout. The example
/// receiver uses them.
pub const HANDLER_DURATION_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];
/// Suggested bucket bounds for [`BODY_BYTES`], in bytes: from 128 B to
/// 4 MiB (the default body cap is 1 MiB). The example receiver uses them.
pub const BODY_BYTES_BUCKETS: &[f64] = &[
    128.0,
    512.0,
    1024.0,
    4096.0,
    16384.0,
    65536.0,
    262_144.0,
    1_048_576.0,
    4_194_304.0,
];

/// The longest a worker waits between two refreshes of the
/// [`QUEUE_JOBS`] gauges when something changed, and the shortest time
/// between two refreshes. See [how fresh the gauges are](self#how-fresh-the-gauges-are).
pub const QUEUE_GAUGE_INTERVAL: Duration = Duration::from_secs(1);

/// A layer's metrics: the scheme's handles, registered with its first
/// delivery. Zero-sized without the feature.
#[derive(Debug)]
pub(crate) struct LayerMetrics {
    #[cfg(feature = "metrics")]
    scheme: &'static str,
    #[cfg(feature = "metrics")]
    handles: std::sync::OnceLock<imp::Handles>,
}

impl LayerMetrics {
    /// Metrics labelled with `scheme`.
    pub(crate) fn new(scheme: &'static str) -> Self {
        #[cfg(not(feature = "metrics"))]
        let _ = scheme;
        Self {
            #[cfg(feature = "metrics")]
            scheme,
            #[cfg(feature = "metrics")]
            handles: std::sync::OnceLock::new(),
        }
    }

    #[cfg(feature = "metrics")]
    fn handles(&self) -> &imp::Handles {
        self.handles.get_or_init(|| imp::Handles::new(self.scheme))
    }

    /// A delivery the layer answered itself.
    #[inline]
    pub(crate) fn answered(&self, rejection: &LayerAnswer) {
        #[cfg(feature = "metrics")]
        self.handles().answered(rejection);
        #[cfg(not(feature = "metrics"))]
        let _ = rejection;
    }

    /// A body collected in full, `len` bytes long.
    #[inline]
    pub(crate) fn body_collected(&self, len: usize) {
        #[cfg(feature = "metrics")]
        self.handles().body_bytes.record(len as f64);
        #[cfg(not(feature = "metrics"))]
        let _ = len;
    }

    /// The inline handler timed by `run` answered; `processed` when with a
    /// 2xx.
    #[inline]
    pub(crate) fn handler_answered(&self, processed: bool, run: &mut Stopwatch) {
        #[cfg(feature = "metrics")]
        {
            let outcome = if processed {
                imp::Outcome::Processed
            } else {
                imp::Outcome::HandlerFailed
            };
            self.handles().handler_ended(outcome, run);
        }
        #[cfg(not(feature = "metrics"))]
        let _ = (processed, run);
    }

    /// The inline handler timed by `run` never answered: its request was
    /// dropped (cancelled), or dropped while a panic unwinds (failed). A
    /// run already counted by [`Self::handler_step`] is not counted again.
    #[inline]
    pub(crate) fn handler_dropped(&self, run: &mut Stopwatch) {
        #[cfg(feature = "metrics")]
        {
            let outcome = if std::thread::panicking() {
                imp::Outcome::HandlerFailed
            } else {
                imp::Outcome::Cancelled
            };
            self.handles().handler_ended(outcome, run);
        }
        #[cfg(not(feature = "metrics"))]
        let _ = run;
    }

    /// Runs `step` (the inner service's `call`, or one poll of its future).
    /// With the feature, a panic out of it counts the run timed by `run` as
    /// `handler_failed`, then goes on unwinding as before. The drop alone
    /// cannot tell: a catch-panic layer outside this one catches the panic
    /// and drops the request only after the unwinding stopped (tokio drops
    /// a panicked task's future while unwinding, which the drop does see).
    /// Without the feature: `step()`.
    #[inline]
    pub(crate) fn handler_step<T>(&self, run: &mut Stopwatch, step: impl FnOnce() -> T) -> T {
        #[cfg(feature = "metrics")]
        {
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(step)) {
                Ok(value) => value,
                Err(panic) => {
                    self.handles()
                        .handler_ended(imp::Outcome::HandlerFailed, run);
                    std::panic::resume_unwind(panic)
                }
            }
        }
        #[cfg(not(feature = "metrics"))]
        {
            let _ = run;
            step()
        }
    }
}

/// When a handler run started, until its outcome is counted; zero-sized
/// without the feature, and reads no clock then.
#[derive(Debug, Default)]
pub(crate) struct Stopwatch {
    #[cfg(feature = "metrics")]
    started: Option<std::time::Instant>,
}

impl Stopwatch {
    /// Starts now.
    #[inline]
    pub(crate) fn start() -> Self {
        Self {
            #[cfg(feature = "metrics")]
            started: Some(std::time::Instant::now()),
        }
    }
}

/// How a queued attempt ended: the `result` label of
/// [`JOB_ATTEMPTS_TOTAL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AttemptResult {
    Succeeded,
    Failed,
    TimedOut,
    DeadLettered,
    LostLease,
    Aborted,
}

/// Records a queued attempt at a job of `scheme` and, when its handler ran,
/// how long since `handler` started.
#[inline]
pub(crate) fn attempt_ended(scheme: &str, result: AttemptResult, handler: Option<&Stopwatch>) {
    #[cfg(feature = "metrics")]
    imp::attempt_ended(scheme, result, handler);
    #[cfg(not(feature = "metrics"))]
    let _ = (scheme, result, handler);
}

/// A worker's `webhook_queue_jobs` gauges; zero-sized without the feature.
#[derive(Debug, Default)]
pub(crate) struct QueueGauges {
    #[cfg(feature = "metrics")]
    state: Arc<imp::GaugeState>,
}

impl QueueGauges {
    /// Starts a refresh in the background from the counts per scheme that
    /// `read` starts reading, unless one ran less than
    /// [`QUEUE_GAUGE_INTERVAL`] ago or is still running: then answers how
    /// soon to ask again. `schemes` (the worker's) are set even when they
    /// have no job. Without the feature: `None`, and `read` is not called.
    #[inline]
    pub(crate) fn refresh<R, F, E>(&self, read: R, schemes: &Arc<[Box<str>]>) -> Option<Duration>
    where
        R: FnOnce() -> F,
        F: Future<Output = Result<Vec<(String, QueueCounts)>, E>> + Send + 'static,
    {
        #[cfg(feature = "metrics")]
        return imp::GaugeState::refresh(&self.state, read, schemes);
        #[cfg(not(feature = "metrics"))]
        {
            let _ = (read, schemes);
            None
        }
    }
}

#[cfg(feature = "metrics")]
mod imp {
    //! The recorder side, compiled with the feature only.

    use std::collections::BTreeSet;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex, Once, PoisonError};
    use std::time::{Duration, Instant};

    use ::metrics::{Counter, Histogram, Unit};

    use super::{
        AttemptResult, BODY_BYTES, DELIVERIES_TOTAL, HANDLER_DURATION_SECONDS, JOB_ATTEMPTS_TOTAL,
        QUEUE_GAUGE_INTERVAL, QUEUE_JOBS, Stopwatch,
    };
    use crate::LayerAnswer;
    use std::future::Future;

    use super::QueueCounts;

    /// Every rejection, in the order of [`slot`].
    pub(super) const REJECTIONS: [LayerAnswer; 21] = [
        LayerAnswer::BodyTooLarge,
        LayerAnswer::BodyUnreadable,
        LayerAnswer::BodyTimeout,
        LayerAnswer::MissingSignature,
        LayerAnswer::RepeatedSignature,
        LayerAnswer::MalformedSignature,
        LayerAnswer::StaleTimestamp,
        LayerAnswer::SignatureMismatch,
        LayerAnswer::NotUtf8,
        LayerAnswer::InvalidJson,
        LayerAnswer::MissingId,
        LayerAnswer::AmbiguousId,
        LayerAnswer::InvalidId,
        LayerAnswer::HeaderMismatch,
        LayerAnswer::InvalidPayload,
        LayerAnswer::Duplicate,
        LayerAnswer::Accepted,
        LayerAnswer::InFlight {
            retry_after: Duration::ZERO,
        },
        LayerAnswer::StoreUnavailable {
            retry_after: Duration::ZERO,
        },
        LayerAnswer::UnknownTenant,
        LayerAnswer::QueueFull {
            retry_after: Duration::ZERO,
        },
    ];

    /// A rejection's index in [`REJECTIONS`] (and its counter's in
    /// [`Handles`]). A new variant fails to compile here until it has its
    /// place in both.
    pub(super) fn slot(rejection: &LayerAnswer) -> usize {
        match rejection {
            LayerAnswer::BodyTooLarge => 0,
            LayerAnswer::BodyUnreadable => 1,
            LayerAnswer::BodyTimeout => 2,
            LayerAnswer::MissingSignature => 3,
            LayerAnswer::RepeatedSignature => 4,
            LayerAnswer::MalformedSignature => 5,
            LayerAnswer::StaleTimestamp => 6,
            LayerAnswer::SignatureMismatch => 7,
            LayerAnswer::NotUtf8 => 8,
            LayerAnswer::InvalidJson => 9,
            LayerAnswer::MissingId => 10,
            LayerAnswer::AmbiguousId => 11,
            LayerAnswer::InvalidId => 12,
            LayerAnswer::HeaderMismatch => 13,
            LayerAnswer::InvalidPayload => 14,
            LayerAnswer::Duplicate => 15,
            LayerAnswer::Accepted => 16,
            LayerAnswer::InFlight { .. } => 17,
            LayerAnswer::StoreUnavailable { .. } => 18,
            LayerAnswer::UnknownTenant => 19,
            LayerAnswer::QueueFull { .. } => 20,
        }
    }

    /// The outcomes that are not rejections, after them in [`Handles`].
    #[derive(Clone, Copy)]
    pub(super) enum Outcome {
        Processed,
        HandlerFailed,
        Cancelled,
    }

    impl Outcome {
        const ALL: [Self; 3] = [Self::Processed, Self::HandlerFailed, Self::Cancelled];

        fn code(self) -> &'static str {
            match self {
                Self::Processed => "processed",
                Self::HandlerFailed => "handler_failed",
                Self::Cancelled => "cancelled",
            }
        }

        fn slot(self) -> usize {
            REJECTIONS.len() + self as usize
        }
    }

    const OUTCOMES: usize = REJECTIONS.len() + Outcome::ALL.len();

    /// The `outcome` label of counter `index`.
    pub(super) fn outcome_code(index: usize) -> &'static str {
        match index.checked_sub(REJECTIONS.len()) {
            None => REJECTIONS[index].code(),
            Some(other) => Outcome::ALL[other].code(),
        }
    }

    /// One scheme's registered metrics.
    #[derive(Debug)]
    pub(super) struct Handles {
        outcomes: [Counter; OUTCOMES],
        handler_duration: Histogram,
        pub(super) body_bytes: Histogram,
    }

    impl Handles {
        pub(super) fn new(scheme: &'static str) -> Self {
            describe();
            Self {
                outcomes: std::array::from_fn(|index| {
                    ::metrics::counter!(
                        DELIVERIES_TOTAL,
                        "scheme" => scheme,
                        "outcome" => outcome_code(index)
                    )
                }),
                handler_duration: ::metrics::histogram!(HANDLER_DURATION_SECONDS, "scheme" => scheme),
                body_bytes: ::metrics::histogram!(BODY_BYTES, "scheme" => scheme),
            }
        }

        pub(super) fn answered(&self, rejection: &LayerAnswer) {
            self.outcomes[slot(rejection)].increment(1);
        }

        /// Counts the run timed by `run` once: its first ending stops it.
        pub(super) fn handler_ended(&self, outcome: Outcome, run: &mut Stopwatch) {
            if let Some(started) = run.started.take() {
                self.handler_duration.record(started.elapsed());
                self.outcomes[outcome.slot()].increment(1);
            }
        }
    }

    impl AttemptResult {
        fn code(self) -> &'static str {
            match self {
                Self::Succeeded => "succeeded",
                Self::Failed => "failed",
                Self::TimedOut => "timed_out",
                Self::DeadLettered => "dead_lettered",
                Self::LostLease => "lost_lease",
                Self::Aborted => "aborted",
            }
        }
    }

    pub(super) fn attempt_ended(scheme: &str, result: AttemptResult, handler: Option<&Stopwatch>) {
        describe();
        let scheme = scheme.to_owned();
        if let Some(started) = handler.and_then(|h| h.started) {
            ::metrics::histogram!(HANDLER_DURATION_SECONDS, "scheme" => scheme.clone())
                .record(started.elapsed());
        }
        ::metrics::counter!(JOB_ATTEMPTS_TOTAL, "scheme" => scheme, "result" => result.code())
            .increment(1);
    }

    /// What a worker's gauges share with their background refresh.
    #[derive(Debug, Default)]
    pub(super) struct GaugeState {
        /// When the last refresh started.
        last: Mutex<Option<Instant>>,
        refreshing: AtomicBool,
        /// Every scheme set so far: one that loses its last job goes to 0.
        known: Mutex<BTreeSet<String>>,
    }

    impl GaugeState {
        pub(super) fn refresh<R, F, E>(
            this: &Arc<Self>,
            read: R,
            schemes: &Arc<[Box<str>]>,
        ) -> Option<Duration>
        where
            R: FnOnce() -> F,
            F: Future<Output = Result<Vec<(String, QueueCounts)>, E>> + Send + 'static,
        {
            let now = Instant::now();
            {
                let mut last = this.last.lock().unwrap_or_else(PoisonError::into_inner);
                let since = last.map(|at| now.duration_since(at));
                if this.refreshing.load(Ordering::Acquire) {
                    return Some(QUEUE_GAUGE_INTERVAL);
                }
                if let Some(since) = since.filter(|since| *since < QUEUE_GAUGE_INTERVAL) {
                    return Some((QUEUE_GAUGE_INTERVAL - since).max(Duration::from_millis(10)));
                }
                *last = Some(now);
                this.refreshing.store(true, Ordering::Release);
            }
            let counts = read();
            let state = Arc::clone(this);
            let schemes = Arc::clone(schemes);
            tokio::spawn(async move {
                // On an error the gauges keep their last values.
                if let Ok(counts) = counts.await {
                    state.publish(&counts, &schemes);
                }
                state.refreshing.store(false, Ordering::Release);
            });
            None
        }

        fn publish(&self, counts: &[(String, QueueCounts)], schemes: &[Box<str>]) {
            let mut known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
            known.extend(schemes.iter().map(|scheme| scheme.to_string()));
            known.extend(counts.iter().map(|(scheme, _)| scheme.clone()));
            for scheme in known.iter() {
                let found = counts.iter().find(|(name, _)| name == scheme);
                let counts = found.map(|(_, counts)| *counts).unwrap_or_default();
                for (state, value) in [
                    ("pending", counts.pending),
                    ("running", counts.running),
                    ("dead", counts.dead),
                ] {
                    ::metrics::gauge!(QUEUE_JOBS, "scheme" => scheme.clone(), "state" => state)
                        .set(value as f64);
                }
            }
        }
    }

    /// Describes every metric to the recorder, once per process.
    fn describe() {
        static DESCRIBED: Once = Once::new();
        DESCRIBED.call_once(|| {
            ::metrics::describe_counter!(
                DELIVERIES_TOTAL,
                Unit::Count,
                "Webhook deliveries answered, by scheme and outcome (a rejection's reason code, processed, handler_failed, cancelled or accepted)."
            );
            ::metrics::describe_histogram!(
                HANDLER_DURATION_SECONDS,
                Unit::Seconds,
                "How long the webhook handler ran: the inline call, or one queued attempt."
            );
            ::metrics::describe_histogram!(
                BODY_BYTES,
                Unit::Bytes,
                "The size of each webhook body collected in full."
            );
            ::metrics::describe_gauge!(
                QUEUE_JOBS,
                Unit::Count,
                "Queued webhook jobs by scheme and state (pending, running, dead)."
            );
            ::metrics::describe_counter!(
                JOB_ATTEMPTS_TOTAL,
                Unit::Count,
                "Queued webhook attempts by scheme and result (succeeded, failed, timed_out, dead_lettered, lost_lease, aborted)."
            );
        });
    }
}

#[cfg(all(test, feature = "metrics"))]
mod tests {
    use super::imp::{REJECTIONS, outcome_code, slot};

    #[test]
    fn every_rejection_has_its_own_counter_named_by_its_code() {
        for (index, rejection) in REJECTIONS.iter().enumerate() {
            assert_eq!(slot(rejection), index, "{rejection:?}");
            assert_eq!(outcome_code(index), rejection.code());
        }
        let others: Vec<_> = (REJECTIONS.len()..REJECTIONS.len() + 3)
            .map(outcome_code)
            .collect();
        assert_eq!(others, ["processed", "handler_failed", "cancelled"]);
    }
}
