//! Bounded, zero-copy body collection, and the response body type.
//!
//! A body that arrives as one frame is handed on as the very same `Bytes`. A
//! body in several frames is copied once, into a buffer sized from
//! `Content-Length` when the sender gave one. Reading stops at the first frame
//! that takes the total past the cap, so at most cap + one frame is read.
//!
//! The time is bounded too: a [`Deadline`] counted from the first read of the
//! body, whose clock read and tokio timer are only made once the body keeps
//! the layer waiting, so a body that is all there when first read never
//! touches either.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

use crate::LayerAnswer;

/// Accumulates data frames under a cap.
#[derive(Debug)]
pub(crate) struct Collector {
    cap: usize,
    expected: Option<usize>,
    state: Collected,
}

#[derive(Debug)]
enum Collected {
    Empty,
    One(Bytes),
    Many(BytesMut),
}

impl Collector {
    /// `expected` is the declared `Content-Length`, already checked ≤ `cap`.
    pub(crate) fn new(cap: usize, expected: Option<usize>) -> Self {
        Self {
            cap,
            expected,
            state: Collected::Empty,
        }
    }

    fn push(&mut self, chunk: Bytes) -> Result<(), LayerAnswer> {
        if chunk.is_empty() {
            return Ok(());
        }
        let held = match &self.state {
            Collected::Empty => 0,
            Collected::One(b) => b.len(),
            Collected::Many(b) => b.len(),
        };
        if chunk.len() > self.cap - held {
            return Err(LayerAnswer::BodyTooLarge);
        }
        self.state = match std::mem::replace(&mut self.state, Collected::Empty) {
            Collected::Empty => Collected::One(chunk),
            Collected::One(first) => {
                let wanted = first.len() + chunk.len();
                let capacity = self.expected.unwrap_or(0).clamp(wanted, self.cap);
                let mut buf = BytesMut::with_capacity(capacity);
                buf.extend_from_slice(&first);
                buf.extend_from_slice(&chunk);
                Collected::Many(buf)
            }
            Collected::Many(mut buf) => {
                buf.extend_from_slice(&chunk);
                Collected::Many(buf)
            }
        };
        Ok(())
    }

    /// Polls `body` until it ends, collecting its data frames (trailers are
    /// ignored: no provider signs them), or until `deadline` passes while the
    /// body keeps it waiting.
    pub(crate) fn poll_collect<B>(
        &mut self,
        mut body: Pin<&mut B>,
        deadline: Pin<&mut Deadline>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Bytes, LayerAnswer>>
    where
        B: Body<Data = Bytes>,
    {
        loop {
            let Poll::Ready(frame) = body.as_mut().poll_frame(cx) else {
                ready!(deadline.poll_passed(cx));
                return Poll::Ready(Err(LayerAnswer::BodyTimeout));
            };
            match frame {
                None => return Poll::Ready(Ok(self.take())),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data()
                        && let Err(rejection) = self.push(data)
                    {
                        return Poll::Ready(Err(rejection));
                    }
                }
                Some(Err(_)) => return Poll::Ready(Err(LayerAnswer::BodyUnreadable)),
            }
        }
    }

    fn take(&mut self) -> Bytes {
        match std::mem::replace(&mut self.state, Collected::Empty) {
            Collected::Empty => Bytes::new(),
            Collected::One(bytes) => bytes,
            Collected::Many(buf) => buf.freeze(),
        }
    }
}

pin_project! {
    /// The body deadline: no clock is read and no timer exists until the
    /// body first keeps the layer waiting, so a body that is all there when
    /// first read costs nothing. Every frame before that first wait was
    /// answered at once within the same poll, so the deadline still counts
    /// from the first read, to within that poll.
    #[project = DeadlineProj]
    pub(crate) enum Deadline {
        /// The body has not kept the layer waiting yet; `None` is no
        /// deadline.
        Unstarted { limit: Option<Duration> },
        /// The body kept the layer waiting: the timer that wakes it.
        Armed { #[pin] timer: Sleep },
        /// No deadline: switched off, or no tokio runtime to time it.
        Off,
    }
}

impl Deadline {
    /// `limit` counts from the first read; `None` (or a limit too large to
    /// add to now, such as `Duration::MAX`) is no deadline.
    pub(crate) fn new(limit: Option<Duration>) -> Self {
        Self::Unstarted { limit }
    }

    /// Called while the body is pending: `Ready` once the deadline has
    /// passed, otherwise `Pending` with the task's waker on the timer.
    fn poll_passed(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if let Self::Unstarted { limit } = *self {
            let at = limit.and_then(|limit| Instant::now().checked_add(limit));
            // `sleep_until` panics outside a tokio runtime: there, no timer.
            let next = match (at, tokio::runtime::Handle::try_current()) {
                (Some(at), Ok(_)) => Self::Armed {
                    timer: tokio::time::sleep_until(at),
                },
                _ => Self::Off,
            };
            self.set(next);
        }
        match self.project() {
            DeadlineProj::Armed { timer } => timer.poll(cx),
            _ => Poll::Pending,
        }
    }
}

pin_project! {
    /// The layer's response body: the inner service's body, untouched, or
    /// the layer's own small JSON answer.
    pub struct ResponseBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<B> {
        Inner { #[pin] body: B },
        Layer { #[pin] body: Full<Bytes> },
    }
}

impl<B> ResponseBody<B> {
    pub(crate) fn inner(body: B) -> Self {
        Self {
            kind: Kind::Inner { body },
        }
    }

    pub(crate) fn layer(body: Full<Bytes>) -> Self {
        Self {
            kind: Kind::Layer { body },
        }
    }
}

impl<B> Body for ResponseBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.project().kind.project() {
            KindProj::Inner { body } => body.poll_frame(cx),
            KindProj::Layer { body } => match ready!(body.poll_frame(cx)) {
                Some(Ok(frame)) => Poll::Ready(Some(Ok(frame))),
                Some(Err(never)) => match never {},
                None => Poll::Ready(None),
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Inner { body } => body.is_end_stream(),
            Kind::Layer { body } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Inner { body } => body.size_hint(),
            Kind::Layer { body } => body.size_hint(),
        }
    }
}

impl<B> std::fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.kind {
            Kind::Inner { .. } => "Inner",
            Kind::Layer { .. } => "Layer",
        };
        f.debug_tuple("ResponseBody").field(&kind).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_frame_is_not_copied_and_many_are_bounded() {
        let mut c = Collector::new(10, None);
        let frame = Bytes::from_static(b"abcdef");
        c.push(frame.clone()).unwrap();
        assert_eq!(c.take().as_ptr(), frame.as_ptr());

        let mut c = Collector::new(10, Some(9));
        c.push(Bytes::from_static(b"abcd")).unwrap();
        c.push(Bytes::from_static(b"efghij")).unwrap();
        assert_eq!(
            c.push(Bytes::from_static(b"k")),
            Err(LayerAnswer::BodyTooLarge)
        );
        assert_eq!(&c.take()[..], b"abcdefghij");
    }
}
