//! Bounded, zero-copy body collection, and the response body type.
//!
//! A body that arrives as one frame is handed on as the very same `Bytes`. A
//! body in several frames is copied once, into a buffer sized from
//! `Content-Length` when the sender gave one. Reading stops at the first frame
//! that takes the total past the cap, so at most cap + one frame is read.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use pin_project_lite::pin_project;

use crate::Rejection;

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

    fn push(&mut self, chunk: Bytes) -> Result<(), Rejection> {
        if chunk.is_empty() {
            return Ok(());
        }
        let held = match &self.state {
            Collected::Empty => 0,
            Collected::One(b) => b.len(),
            Collected::Many(b) => b.len(),
        };
        if chunk.len() > self.cap - held {
            return Err(Rejection::BodyTooLarge);
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
    /// ignored: no provider signs them).
    pub(crate) fn poll_collect<B>(
        &mut self,
        mut body: Pin<&mut B>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Bytes, Rejection>>
    where
        B: Body<Data = Bytes>,
    {
        loop {
            match ready!(body.as_mut().poll_frame(cx)) {
                None => return Poll::Ready(Ok(self.take())),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data()
                        && let Err(rejection) = self.push(data)
                    {
                        return Poll::Ready(Err(rejection));
                    }
                }
                Some(Err(_)) => return Poll::Ready(Err(Rejection::BodyUnreadable)),
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
            Err(Rejection::BodyTooLarge)
        );
        assert_eq!(&c.take()[..], b"abcdefghij");
    }
}
