//! [`ResponseFuture`]: the pipeline after the header checks, one state per
//! arrow of the diagram in the crate docs.
//!
//! ```text
//! Collect ─► (verify, parse) ─► Claim ─► Call ─► Finish
//!    │                │     │     │                 └─ complete on 2xx, else release
//!    └─ 413/400/408   │     │     └─ 200 duplicate / 409 / 503
//!                     │     └─ queued: Accept ─► 202 accepted / 200 duplicate / 503
//!                     ├─ 401 / 400
//!                     └─ Answer: the scheme's handshake reply (no claim, no call)
//! ```
//!
//! A claim taken in `Claim` is held by [`Guard`] until `Call` ends. If the
//! future is dropped before that (the client went away, or a panic unwound
//! through the inner service), the guard's `Drop` releases the claim, so the
//! sender's retry is processed.
//!
//! While `Call` waits for the inner service, [`Renewal`] renews the claim
//! every third of the lease, so a handler slower than the lease keeps its
//! key and a copy arriving meanwhile is 409, not a second run. Its timer is
//! made only once the inner service first keeps the layer waiting. If a
//! renewal fails, the next third tries again; if the store says the claim
//! was lost (the renewals came too late, and another delivery took the key),
//! renewals stop and the handler runs on: cutting it short could leave its
//! work half done, and its answer still goes to the sender. Completing or
//! releasing a lost claim changes nothing in the store (both check the
//! lease), so the newer claim's record stands.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http::request::Parts;
use http::{Request, Response};
use http_body::Body;
use http_body_util::Full;
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};
use tower_service::Service;

use crate::body::{Collector, Deadline, ResponseBody};
use crate::config::Config;
use crate::metrics::Stopwatch;
use crate::secret::Signature;
use crate::store::queue::{Accept, Delivery, OrderKey, QueueFuture};
use crate::store::{Claim, IdempotencyKey, IdempotencyStore, StoreError, StoreErrorKind};
use crate::tenant::TenantEntry;
use crate::{LayerAnswer, Scheme, Verified};

/// What a request carries from the header checks to the body's arrival.
struct Pending<S> {
    parts: Parts,
    signature: Signature,
    inner: S,
    /// With per-tenant secrets: the tenant and its secrets.
    tenant: Option<Arc<TenantEntry>>,
}

/// What a verified request carries while its key is claimed. Inline, the
/// event and its id are already in `parts.extensions` (moved there once,
/// behind a pointer), so the state stays small.
struct Checked<S> {
    parts: Parts,
    body: Bytes,
    inner: S,
}

pin_project! {
    #[project = StateProj]
    enum State<B, S, F, CF, FF, RF, R> {
        Reject { rejection: Option<LayerAnswer> },
        Answer { response: Option<Response<Full<Bytes>>> },
        Collect {
            #[pin] body: B,
            collector: Collector,
            #[pin] deadline: Deadline,
            pending: Option<Pending<S>>,
        },
        Claim { claim: CF, checked: Option<Checked<S>> },
        Accept { accept: QueueFuture<Accept> },
        Call { #[pin] future: F, #[pin] renewal: Renewal<RF> },
        Finish { finish: FF, result: Option<R> },
    }
}

/// Holds the claim while the inner service runs; releases it if dropped
/// still holding it.
struct Guard<Sc, St: IdempotencyStore> {
    config: Arc<Config<Sc, St>>,
    lease: Option<St::Lease>,
    /// When the inner service was called (feature `metrics`).
    called: Stopwatch,
    /// The delivery's span (feature `tracing`; empty without).
    span: crate::trace::DeliverySpan,
}

impl<Sc, St: IdempotencyStore> Drop for Guard<Sc, St> {
    fn drop(&mut self) {
        if let Some(lease) = self.lease.take() {
            self.config.metrics.handler_dropped(&mut self.called);
            self.config.store.release_abandoned(lease);
        }
    }
}

type Output<S> = Result<
    <S as Service<Request<Full<Bytes>>>>::Response,
    <S as Service<Request<Full<Bytes>>>>::Error,
>;

pin_project! {
    /// The response future of [`Webhook`](crate::Webhook).
    pub struct ResponseFuture<S, B, Sc, St>
    where
        S: Service<Request<Full<Bytes>>>,
        Sc: Scheme,
        St: IdempotencyStore,
    {
        #[pin]
        state: State<
            B,
            S,
            S::Future,
            St::ClaimFuture,
            St::FinishFuture,
            St::RenewFuture,
            Output<S>,
        >,
        guard: Guard<Sc, St>,
    }
}

impl<S, B, Sc, St> ResponseFuture<S, B, Sc, St>
where
    S: Service<Request<Full<Bytes>>>,
    Sc: Scheme,
    St: IdempotencyStore,
{
    pub(crate) fn rejected(config: Arc<Config<Sc, St>>, rejection: LayerAnswer) -> Self {
        Self {
            state: State::Reject {
                rejection: Some(rejection),
            },
            guard: Guard {
                span: crate::trace::DeliverySpan::new(config.scheme.name()),
                config,
                lease: None,
                called: Stopwatch::default(),
            },
        }
    }

    pub(crate) fn collecting(
        config: Arc<Config<Sc, St>>,
        inner: S,
        parts: Parts,
        body: B,
        collector: Collector,
        signature: Signature,
        tenant: Option<Arc<TenantEntry>>,
    ) -> Self {
        Self {
            state: State::Collect {
                body,
                collector,
                deadline: Deadline::new(config.body_timeout),
                pending: Some(Pending {
                    parts,
                    signature,
                    inner,
                    tenant,
                }),
            },
            guard: Guard {
                span: crate::trace::DeliverySpan::new(config.scheme.name()),
                config,
                lease: None,
                called: Stopwatch::default(),
            },
        }
    }
}

impl<S, B, Sc, St, ResBody> Future for ResponseFuture<S, B, Sc, St>
where
    S: Service<Request<Full<Bytes>>, Response = Response<ResBody>>,
    B: Body<Data = Bytes>,
    Sc: Scheme,
    St: IdempotencyStore,
{
    type Output = Result<Response<ResponseBody<ResBody>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let guard = this.guard;
        let _entered = guard.span.enter();
        loop {
            let next = match this.state.as_mut().project() {
                StateProj::Reject { rejection } => {
                    let rejection = rejection.take().expect("polled after completion");
                    return Poll::Ready(Ok(reject(&guard.config, rejection)));
                }
                StateProj::Answer { response } => {
                    let response = response.take().expect("polled after completion");
                    return Poll::Ready(Ok(response.map(ResponseBody::layer)));
                }
                StateProj::Collect {
                    body,
                    collector,
                    deadline,
                    pending,
                } => {
                    let collected = ready!(collector.poll_collect(body, deadline, cx));
                    let pending = pending.take().expect("polled after completion");
                    match collected.and_then(|body| verify_and_parse(&guard.config, pending, body))
                    {
                        Ok(Verdict::Answer(response)) => State::Answer {
                            response: Some(response),
                        },
                        Ok(Verdict::Claim(checked, key)) => match &guard.config.intake {
                            Some(intake) => State::Accept {
                                accept: intake.accept(
                                    &key,
                                    Delivery::verified(&key, checked.parts, checked.body),
                                ),
                            },
                            None => State::Claim {
                                claim: guard.config.store.claim(&key, guard.config.lease),
                                checked: Some(checked),
                            },
                        },
                        Err(rejection) => State::Reject {
                            rejection: Some(rejection),
                        },
                    }
                }
                StateProj::Claim { claim, checked } => {
                    let retry_after = guard.config.retry_after;
                    match ready!(Pin::new(claim).poll(cx)) {
                        Ok(Claim::New(lease)) => {
                            let Checked {
                                mut parts,
                                body,
                                mut inner,
                            } = checked.take().expect("polled after completion");
                            let store = &guard.config.store;
                            store.lend_to_handler(&lease, &mut parts.extensions);
                            guard.lease = Some(lease);
                            let request = Request::from_parts(parts, Full::new(body));
                            guard.called = Stopwatch::start();
                            let metrics = &guard.config.metrics;
                            State::Call {
                                future: metrics
                                    .handler_step(&mut guard.called, || inner.call(request)),
                                renewal: Renewal::Unarmed,
                            }
                        }
                        Ok(Claim::Done) => State::Reject {
                            rejection: Some(LayerAnswer::Duplicate),
                        },
                        Ok(Claim::InFlight) => State::Reject {
                            rejection: Some(LayerAnswer::InFlight { retry_after }),
                        },
                        Err(error) => {
                            store_failed("claim", &error);
                            State::Reject {
                                rejection: Some(LayerAnswer::StoreUnavailable { retry_after }),
                            }
                        }
                    }
                }
                StateProj::Accept { accept } => {
                    let retry_after = guard.config.retry_after;
                    let rejection = match ready!(accept.as_mut().poll(cx)) {
                        Ok(Accept::Accepted) => LayerAnswer::Accepted,
                        Ok(Accept::Duplicate) => LayerAnswer::Duplicate,
                        Err(error) => {
                            store_failed("accept", &error);
                            LayerAnswer::StoreUnavailable { retry_after }
                        }
                    };
                    State::Reject {
                        rejection: Some(rejection),
                    }
                }
                StateProj::Call { future, renewal } => {
                    let metrics = &guard.config.metrics;
                    let Poll::Ready(result) =
                        metrics.handler_step(&mut guard.called, || future.poll(cx))
                    else {
                        if let Some(lease) = &guard.lease {
                            renewal.poll_renew(&guard.config, lease, cx);
                        }
                        return Poll::Pending;
                    };
                    let lease = guard.lease.take().expect("a call always holds a lease");
                    let store = &guard.config.store;
                    let processed = matches!(&result, Ok(r) if r.status().is_success());
                    metrics.handler_answered(processed, &mut guard.called);
                    crate::trace::outcome(if processed {
                        "processed"
                    } else {
                        "handler_failed"
                    });
                    let finish = if processed {
                        store.complete(lease, guard.config.done_ttl)
                    } else {
                        store.release(lease)
                    };
                    State::Finish {
                        finish,
                        result: Some(result),
                    }
                }
                StateProj::Finish { finish, result } => {
                    if let Err(error) = ready!(Pin::new(finish).poll(cx)) {
                        store_failed("complete or release", &error);
                        // The handler's writes were undone with the done
                        // mark: the sender must deliver again.
                        if error.kind() == StoreErrorKind::RolledBack {
                            let retry_after = guard.config.retry_after;
                            let rejection = LayerAnswer::StoreUnavailable { retry_after };
                            return Poll::Ready(Ok(reject(&guard.config, rejection)));
                        }
                        // Otherwise the handler's answer stands: turning a
                        // processed event into a 5xx would make the sender
                        // run it again.
                    }
                    let result = result.take().expect("polled after completion");
                    return Poll::Ready(result.map(|r| r.map(ResponseBody::inner)));
                }
            };
            this.state.set(next);
        }
    }
}

/// The shortest time between two renewals, as for the queue's workers.
const MIN_RENEWAL_INTERVAL: Duration = Duration::from_millis(10);

pin_project! {
    /// Renews the claim every third of the lease while the inner service
    /// runs. No timer exists until the inner service first keeps the layer
    /// waiting, so a handler that answers when first polled never makes one.
    #[project = RenewalProj]
    enum Renewal<RF> {
        /// The inner service has not kept the layer waiting yet.
        Unarmed,
        /// The timer to the next renewal, and the renewal on its way to the
        /// store, if one is.
        Armed { #[pin] timer: Sleep, renewing: Option<RF> },
        /// No more renewals: the claim was lost, the lease is too long to
        /// need any, or there is no tokio runtime to time them.
        Off,
    }
}

impl<RF> Renewal<RF>
where
    RF: Future<Output = Result<bool, StoreError>> + Unpin,
{
    /// Called while the inner service keeps the layer waiting: arms the
    /// timer, and renews the claim each time it fires, leaving the task's
    /// waker with the timer or the renewal under way.
    fn poll_renew<Sc: Scheme, St: IdempotencyStore<RenewFuture = RF>>(
        mut self: Pin<&mut Self>,
        config: &Config<Sc, St>,
        lease: &St::Lease,
        cx: &mut Context<'_>,
    ) {
        let every = (config.lease / 3).max(MIN_RENEWAL_INTERVAL);
        loop {
            match self.as_mut().project() {
                RenewalProj::Unarmed => {
                    // `sleep_until` panics outside a tokio runtime: there,
                    // no renewals.
                    let runtime = tokio::runtime::Handle::try_current().is_ok();
                    let next = match Instant::now().checked_add(every) {
                        Some(at) if runtime => Self::Armed {
                            timer: tokio::time::sleep_until(at),
                            renewing: None,
                        },
                        _ => Self::Off,
                    };
                    self.as_mut().set(next);
                }
                RenewalProj::Armed {
                    mut timer,
                    renewing,
                } => {
                    if let Some(renew) = renewing {
                        let Poll::Ready(answer) = Pin::new(renew).poll(cx) else {
                            return;
                        };
                        *renewing = None;
                        match answer {
                            Ok(true) => {}
                            Ok(false) => {
                                claim_lost(config.scheme.name());
                                self.set(Self::Off);
                                return;
                            }
                            // The next third may get through before the
                            // lease runs out.
                            Err(error) => store_failed("renew a claim", &error),
                        }
                        // Counted from when this renewal was sent, not
                        // answered: the store extended the lease from a
                        // moment after the send, so a slow answer must not
                        // push the next renewal later.
                        match timer.deadline().checked_add(every) {
                            Some(at) => timer.as_mut().reset(at),
                            None => {
                                self.set(Self::Off);
                                return;
                            }
                        }
                    }
                    if timer.poll(cx).is_pending() {
                        return;
                    }
                    *renewing = Some(config.store.renew_claim(lease, config.lease));
                }
                RenewalProj::Off => return,
            }
        }
    }
}

fn reject<Sc: Scheme, St, B>(
    config: &Config<Sc, St>,
    rejection: LayerAnswer,
) -> Response<ResponseBody<B>> {
    config.respond(rejection).map(ResponseBody::layer)
}

/// What a verified delivery leads to.
enum Verdict<S> {
    /// The request, ready to claim, and its key.
    Claim(Checked<S>, IdempotencyKey),
    /// The scheme's handshake reply, sent as it is.
    Answer(Response<Full<Bytes>>),
}

/// Verifies the raw bytes, answers a handshake, or parses them; returns
/// the request ready to claim and its key. Inline, the event and its id are
/// handed on here, into the extensions the inner service will see if the
/// claim is new.
fn verify_and_parse<S, Sc: Scheme, St>(
    config: &Config<Sc, St>,
    pending: Pending<S>,
    body: Bytes,
) -> Result<Verdict<S>, LayerAnswer> {
    let Pending {
        mut parts,
        signature,
        inner,
        tenant,
    } = pending;
    config.metrics.body_collected(body.len());
    let secrets = match &tenant {
        Some(entry) => &entry.secrets,
        None => config
            .secrets
            .as_ref()
            .ok_or(LayerAnswer::SignatureMismatch)?,
    };
    let key = secrets
        .verify_key(&signature, &body)
        .map_err(|_| LayerAnswer::SignatureMismatch)?;
    if let Some(response) = config.scheme.handshake(&parts.headers, &body, key) {
        return Ok(Verdict::Answer(response));
    }
    let parsed = config
        .scheme
        .parse_request(&parts.uri, &parts.headers, &body)?;
    check_fresh_on_arrival(config, &parsed.event)?;
    if let Some(order_key) = config.order_key(&parsed.event, &body) {
        parts.extensions.insert(OrderKey(order_key));
    }
    let mut key = IdempotencyKey::new(config.scheme.name(), &parsed.id);
    if let Some(entry) = &tenant {
        key = key.with_tenant(entry.tenant.clone());
    }
    crate::trace::event(key.tenant().map(crate::Tenant::as_str), key.id().as_str());
    if config.intake.is_none() {
        Verified::new(parsed.event, parsed.id).insert_into(&mut parts.extensions);
        if let Some(entry) = tenant {
            parts.extensions.insert(entry.tenant.clone());
        }
    }
    Ok(Verdict::Claim(Checked { parts, body, inner }, key))
}

fn claim_lost(scheme: &str) {
    #[cfg(feature = "tracing")]
    tracing::warn!(
        scheme,
        "an in-flight claim was lost while its handler ran: another delivery of the \
         event may run too, and this one's answer will not mark it done"
    );
    #[cfg(not(feature = "tracing"))]
    let _ = scheme;
}

/// The checks of a signed time in the body: the scheme's own tolerance,
/// then the layer's replay window. Made once, as the delivery arrives; the
/// queued worker's attempts come later by design and make neither.
fn check_fresh_on_arrival<Sc: Scheme, St>(
    config: &Config<Sc, St>,
    event: &Sc::Event,
) -> Result<(), LayerAnswer> {
    config.scheme.check_freshness(event)?;
    if let (Some(window), Some(signed)) = (config.replay_window, config.scheme.signed_time(event))
        && signed.elapsed().is_ok_and(|age| age > window)
    {
        return Err(LayerAnswer::StaleTimestamp);
    }
    Ok(())
}

fn store_failed(operation: &str, error: &StoreError) {
    #[cfg(feature = "tracing")]
    tracing::error!(operation, %error, "idempotency store call failed");
    #[cfg(not(feature = "tracing"))]
    let _ = (operation, error);
}
