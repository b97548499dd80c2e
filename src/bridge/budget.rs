//! A socket with a read budget: before authentication a peer may make tabmux read only
//! a few KiB, whatever frame sizes its WebSocket headers announce.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Unlimited reading (after authentication).
const UNLIMITED: usize = usize::MAX;

/// The error a read past the budget fails with.
#[derive(Debug)]
pub(crate) struct OverBudget(pub usize);

impl std::fmt::Display for OverBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "more than {} bytes before authenticating", self.0)
    }
}

impl std::error::Error for OverBudget {}

/// Whether `e` is the error of a read past the budget.
pub(crate) fn is_over_budget(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|r| r.is::<OverBudget>())
}

/// A TCP stream that reads at most its budget, until [`Budgeted::lift`].
#[derive(Debug)]
pub(crate) struct Budgeted {
    inner: TcpStream,
    left: Arc<AtomicUsize>,
    limit: usize,
}

/// Lifts the budget of its stream (held while the stream is inside a WebSocket).
#[derive(Debug, Clone)]
pub(crate) struct Lift(Arc<AtomicUsize>);

impl Lift {
    /// From now on, reads are unlimited.
    pub fn lift(&self) {
        self.0.store(UNLIMITED, Ordering::Relaxed);
    }
}

impl Budgeted {
    /// `inner`, allowed to read `limit` more bytes (`already` were read elsewhere and
    /// count against it).
    pub fn new(inner: TcpStream, limit: usize, already: usize) -> (Self, Lift) {
        let left = Arc::new(AtomicUsize::new(limit.saturating_sub(already)));
        (
            Self {
                inner,
                left: left.clone(),
                limit,
            },
            Lift(left),
        )
    }
}

impl AsyncRead for Budgeted {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let left = this.left.load(Ordering::Relaxed);
        if left == UNLIMITED {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        if left == 0 {
            return Poll::Ready(Err(io::Error::other(OverBudget(this.limit))));
        }
        let want = buf.remaining().min(left);
        let mut limited = buf.take(want);
        let r = Pin::new(&mut this.inner).poll_read(cx, &mut limited);
        let n = limited.filled().len();
        if let Poll::Ready(Ok(())) = r {
            // SAFETY: `limited` wrote `n` initialized bytes into `buf`'s unfilled part.
            unsafe { buf.assume_init(n) };
            buf.advance(n);
            // Only this reader subtracts; a concurrent lift wins.
            let _ =
                this.left
                    .compare_exchange(left, left - n, Ordering::Relaxed, Ordering::Relaxed);
        }
        r
    }
}

impl AsyncWrite for Budgeted {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
