//! A response body that holds the request's pool slot and in-flight count until it ends, so
//! that concurrency limits and least-connections count responses still streaming.

use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::body::{Body, Frame, SizeHint};

pin_project_lite::pin_project! {
    /// `inner`, with `guard` dropped when the body is dropped.
    pub struct Guarded<B, G> {
        #[pin]
        inner: B,
        _guard: G,
    }
}

impl<B, G> Guarded<B, G> {
    /// `inner` holding `guard`.
    pub fn new(inner: B, guard: G) -> Self {
        Self {
            inner,
            _guard: guard,
        }
    }
}

impl<B: Body, G> Body for Guarded<B, G> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        self.project().inner.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
