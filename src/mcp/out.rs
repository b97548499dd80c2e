//! The MCP transport with a writing side of tabmux's own.
//!
//! rmcp's stdio transport encodes each message into one buffer it keeps for the life of
//! the process, at the size of the biggest message it ever wrote: 2 MB after a full
//! snapshot of a big page, held until exit. Here each message is serialized into a buffer
//! of its own, written whole to stdout by one task and dropped. Reading stays rmcp's
//! (its line limit and its answers to invalid requests, which go through the same queue,
//! so every message leaves in order and whole).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use rmcp::service::{RoleServer, RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use rmcp::transport::async_rw::AsyncRwTransport;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::sync::PollSender;

/// Messages waiting for stdout (a client that stops reading holds up the senders).
const QUEUE: usize = 64;

pub struct Lines<R: AsyncRead> {
    inner: AsyncRwTransport<RoleServer, R, Queued>,
    queue: mpsc::Sender<Vec<u8>>,
}

impl<R: AsyncRead + Send + Unpin + 'static> Lines<R> {
    /// Reads JSON-RPC lines from `input`; writes to `output` from a task of its own.
    pub fn new<W: AsyncWrite + Send + Unpin + 'static>(input: R, mut output: W) -> Self {
        let (queue, mut next) = mpsc::channel::<Vec<u8>>(QUEUE);
        tokio::spawn(async move {
            while let Some(line) = next.recv().await {
                if output.write_all(&line).await.is_err() || output.flush().await.is_err() {
                    break;
                }
            }
        });
        Lines {
            inner: AsyncRwTransport::new(input, Queued(PollSender::new(queue.clone()))),
            queue,
        }
    }
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "stdout is closed")
}

impl<R: AsyncRead + Send + Unpin + 'static> Transport<RoleServer> for Lines<R> {
    type Error = io::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleServer>,
    ) -> impl Future<Output = Result<(), io::Error>> + Send + 'static {
        let queue = self.queue.clone();
        async move {
            let mut line = serde_json::to_vec(&item).map_err(io::Error::other)?;
            line.push(b'\n');
            queue.send(line).await.map_err(|_| closed())
        }
    }

    fn receive(&mut self) -> impl Future<Output = Option<RxJsonRpcMessage<RoleServer>>> + Send {
        self.inner.receive()
    }

    fn close(&mut self) -> impl Future<Output = Result<(), io::Error>> + Send {
        self.inner.close()
    }
}

/// What rmcp's reading side writes (its answers to invalid requests): each flush of its
/// encoder, a whole message, goes into the queue as one piece.
struct Queued(PollSender<Vec<u8>>);

impl AsyncWrite for Queued {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.0.poll_reserve(cx)).map_err(|_| closed())?;
        this.0.send_item(buf.to_vec()).map_err(|_| closed())?;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
