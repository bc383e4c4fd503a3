//! Spans that follow one event (feature `tracing`): `webhook.delivery`,
//! one per delivery the layer receives (fields `scheme`, `tenant`,
//! `event_id`, `outcome`), and `webhook.attempt`, one per run the queued
//! worker makes (`scheme`, `tenant`, `event_id`, `attempt`, `outcome`).
//! Intake and every attempt of one event carry the same `event_id`, so an
//! exporter (`tracing-opentelemetry`) can show them together. Without the
//! feature every type here is empty and every call does nothing.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;

/// The span of one delivery; entered while its response future is polled.
pub(crate) struct DeliverySpan(#[cfg(feature = "tracing")] tracing::Span);

/// The span entered, until dropped.
pub(crate) struct Entered<'a>(
    // Held for its drop, which leaves the span.
    #[cfg(feature = "tracing")]
    #[allow(dead_code)]
    tracing::span::Entered<'a>,
    PhantomData<&'a ()>,
);

impl DeliverySpan {
    #[inline]
    pub(crate) fn new(scheme: &'static str) -> Self {
        #[cfg(feature = "tracing")]
        {
            use tracing::field::Empty;
            Self(tracing::info_span!(
                "webhook.delivery",
                scheme,
                tenant = Empty,
                event_id = Empty,
                outcome = Empty
            ))
        }
        #[cfg(not(feature = "tracing"))]
        {
            let _ = scheme;
            Self()
        }
    }

    #[inline]
    pub(crate) fn enter(&self) -> Entered<'_> {
        Entered(
            #[cfg(feature = "tracing")]
            self.0.enter(),
            PhantomData,
        )
    }
}

/// Records the event on the current (delivery) span, once it is known.
#[inline]
pub(crate) fn event(tenant: Option<&str>, event_id: &str) {
    #[cfg(feature = "tracing")]
    {
        let span = tracing::Span::current();
        span.record("event_id", event_id);
        if let Some(tenant) = tenant {
            span.record("tenant", tenant);
        }
    }
    #[cfg(not(feature = "tracing"))]
    let _ = (tenant, event_id);
}

/// Records how the current delivery or attempt ended.
#[inline]
pub(crate) fn outcome(outcome: &'static str) {
    #[cfg(feature = "tracing")]
    tracing::Span::current().record("outcome", outcome);
    #[cfg(not(feature = "tracing"))]
    let _ = outcome;
}

/// One attempt's future, run inside its `webhook.attempt` span.
pub(crate) type Attempt<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// The span of one worker attempt.
pub(crate) struct AttemptSpan(#[cfg(feature = "tracing")] tracing::Span);

impl AttemptSpan {
    #[inline]
    pub(crate) fn new(tenant: Option<&str>, scheme: &str, event_id: &str, attempt: u32) -> Self {
        #[cfg(feature = "tracing")]
        {
            Self(tracing::info_span!(
                "webhook.attempt",
                scheme,
                tenant,
                event_id,
                attempt,
                outcome = tracing::field::Empty
            ))
        }
        #[cfg(not(feature = "tracing"))]
        {
            let _ = (tenant, scheme, event_id, attempt);
            Self()
        }
    }

    /// `attempt`, run inside the span.
    #[inline]
    pub(crate) fn instrument<T: 'static>(&self, attempt: Attempt<T>) -> Attempt<T> {
        #[cfg(feature = "tracing")]
        {
            use tracing::Instrument as _;
            Box::pin(attempt.instrument(self.0.clone()))
        }
        #[cfg(not(feature = "tracing"))]
        attempt
    }

    /// Records how the attempt ended.
    #[inline]
    pub(crate) fn ended(&self, outcome: &'static str) {
        #[cfg(feature = "tracing")]
        self.0.record("outcome", outcome);
        #[cfg(not(feature = "tracing"))]
        let _ = outcome;
    }
}
