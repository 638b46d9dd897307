//! The accept loop: HTTP/1.1 connections (WebSocket upgrades included) served
//! by hyper with the timeouts axum::serve does not expose, a cap on open
//! connections, and graceful shutdown.
//!
//! - A connection must send a request's headers within `CLIENT_TIMEOUT`, and
//!   an idle keep-alive connection is closed after it (hyper's header read
//!   timeout runs from the end of one response to the next request's head).
//! - A write that the client does not take for `CLIENT_TIMEOUT` fails and
//!   closes the connection ([`StallTimeout`]); request bodies have the same
//!   deadline (`routes::body_deadline`).
//! - A request's head is at most 64 KiB (hyper answers 431 beyond).
//! - At most `MAX_CONNECTIONS` are open; one more is answered `503
//!   unavailable` (the contract's JSON, `Retry-After: 1`) and closed.
//! - On shutdown the listener closes, idle connections close, in-flight
//!   requests finish; connections still open after [`FORCE_AFTER`] are dropped.

use crate::error::{ApiError, ErrorBody};
use crate::metrics::Metrics;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;
use tower::ServiceExt;

/// How long a graceful shutdown waits for open connections before it drops them.
pub const FORCE_AFTER: Duration = Duration::from_secs(30);

/// Refusals being written at once; connections beyond the cap past this many
/// are closed without an answer.
const MAX_REFUSALS: usize = 64;

/// The read buffer of a connection, which bounds a request's head.
const MAX_READ_BUFFER: usize = 64 * 1024;

/// What every connection needs to know.
pub struct Settings {
    pub max_connections: usize,
    pub client_timeout: Duration,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    Serving,
    Draining,
    Force,
}

/// Serves `app` on `listener` until `shutdown` resolves, then shuts down
/// gracefully (see the module's description). `on_shutdown` runs when the
/// signal comes, before connections are asked to close.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    settings: Settings,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_shutdown: impl FnOnce() + Send + 'static,
) {
    let (phase_tx, phase_rx) = watch::channel(Phase::Serving);
    let (done_tx, done_rx) = watch::channel(());
    let slots = Arc::new(Semaphore::new(settings.max_connections));
    let refusals = Arc::new(Semaphore::new(MAX_REFUSALS));
    let refusal = refusal_response();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    accept_error(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            metrics.connections_refused.inc();
            refuse(stream, &refusals, refusal.clone());
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = app
            .clone()
            .map_request(move |req: hyper::Request<Incoming>| {
                let mut req = req.map(Body::new);
                req.extensions_mut().insert(ConnectInfo(peer));
                req
            });
        // The slot goes with the stream, so that it is held as long as the
        // socket is open, after a WebSocket upgrade too.
        let guard = ConnectionGuard::new(slot, metrics.clone());
        let io = TokioIo::new(StallTimeout::new(stream, settings.client_timeout).holding(guard));
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(settings.client_timeout)
            // A request's head in at most 64 KiB (431 beyond): hyper's
            // default (~400 KB) times MAX_CONNECTIONS is a lot of memory.
            .max_buf_size(MAX_READ_BUFFER);
        let (mut drain, mut force) = (phase_rx.clone(), phase_rx.clone());
        let done = done_rx.clone();
        tokio::spawn(async move {
            let conn = builder
                .serve_connection(io, TowerToHyperService::new(service))
                .with_upgrades();
            let mut conn = std::pin::pin!(conn);
            let mut draining = false;
            loop {
                tokio::select! {
                    result = conn.as_mut() => {
                        if let Err(e) = result {
                            tracing::debug!(error = %e, "connection ended with an error");
                        }
                        break;
                    }
                    _ = drain.wait_for(|p| *p != Phase::Serving), if !draining => {
                        conn.as_mut().graceful_shutdown();
                        draining = true;
                    }
                    _ = force.wait_for(|p| *p == Phase::Force) => break,
                }
            }
            drop(done);
        });
    }
    drop(listener);
    on_shutdown();
    let _ = phase_tx.send(Phase::Draining);
    drop(done_rx);
    if tokio::time::timeout(FORCE_AFTER, done_tx.closed())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after {FORCE_AFTER:?}: dropping them");
        let _ = phase_tx.send(Phase::Force);
        done_tx.closed().await;
    }
}

/// Errors of `accept` that concern one connection are skipped; others (out
/// of file descriptors, …) are logged and accepting pauses a moment, so
/// that the loop does not spin.
async fn accept_error(e: io::Error) {
    use io::ErrorKind::*;
    if matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accept failed");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// The answer to a connection over the cap: 503 in the contract's shape.
fn refusal_response() -> Arc<[u8]> {
    let body = serde_json::to_string(&ErrorBody {
        error: ApiError::unavailable("the server has too many open connections; retry").object(),
    })
    .unwrap_or_default();
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
    .into()
}

/// Writes the refusal, then reads what the client sent (so that closing does
/// not reset the connection before the answer is read), for a second at most.
fn refuse(mut stream: TcpStream, refusals: &Arc<Semaphore>, answer: Arc<[u8]>) {
    let Ok(permit) = refusals.clone().try_acquire_owned() else {
        return;
    };
    tokio::spawn(async move {
        let _permit = permit;
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            stream.write_all(&answer).await?;
            stream.shutdown().await?;
            let mut sink = [0u8; 4096];
            let mut left: usize = 64 * 1024;
            while left > 0 {
                match stream.read(&mut sink).await? {
                    0 => break,
                    n => left = left.saturating_sub(n),
                }
            }
            Ok::<_, io::Error>(())
        })
        .await;
    });
}

/// An open connection: its slot under `MAX_CONNECTIONS`, and its count in
/// `chat_connections_open`, both given back when the socket is dropped.
pub struct ConnectionGuard {
    _slot: OwnedSemaphorePermit,
    metrics: Arc<Metrics>,
}

impl ConnectionGuard {
    fn new(slot: OwnedSemaphorePermit, metrics: Arc<Metrics>) -> Self {
        metrics.connections_open.inc();
        ConnectionGuard {
            _slot: slot,
            metrics,
        }
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.metrics.connections_open.dec();
    }
}

/// A stream whose writes fail (`TimedOut`) when the peer takes no bytes for
/// `timeout`: a client that stops reading cannot hold a connection (or a
/// WebSocket) open for ever. Reads are not limited here: hyper's header
/// timeout and the body deadline cover HTTP, and a WebSocket may be quiet.
pub struct StallTimeout<S> {
    inner: S,
    timeout: Duration,
    stalled: Option<Pin<Box<Sleep>>>,
    _guard: Option<ConnectionGuard>,
}

impl<S> StallTimeout<S> {
    pub fn new(inner: S, timeout: Duration) -> Self {
        StallTimeout {
            inner,
            timeout,
            stalled: None,
            _guard: None,
        }
    }

    /// Keeps `guard` for as long as the stream lives.
    pub fn holding(mut self, guard: ConnectionGuard) -> Self {
        self._guard = Some(guard);
        self
    }

    /// After a write that made no progress: fails once it has waited too long.
    fn pending<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        let timeout = self.timeout;
        let stalled = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match stalled.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client took no data within the client timeout",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn progress<T>(&mut self, p: Poll<io::Result<T>>, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        match p {
            Poll::Ready(r) => {
                self.stalled = None;
                Poll::Ready(r)
            }
            Poll::Pending => self.pending(cx),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for StallTimeout<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for StallTimeout<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let p = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.progress(p, cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let p = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.progress(p, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let p = Pin::new(&mut self.inner).poll_flush(cx);
        self.progress(p, cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let p = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.progress(p, cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_write_the_peer_does_not_take_times_out() {
        let (client, server) = tokio::io::duplex(64);
        let mut w = StallTimeout::new(server, Duration::from_millis(50));
        // the duplex buffer holds 64 bytes; the client never reads
        let r = tokio::time::timeout(Duration::from_secs(5), w.write_all(&[0u8; 1024])).await;
        let e = r.expect("the write ends").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        drop(client);
    }

    #[tokio::test]
    async fn writes_that_progress_do_not_time_out() {
        let (mut client, server) = tokio::io::duplex(64);
        let mut w = StallTimeout::new(server, Duration::from_millis(200));
        let reader = tokio::spawn(async move {
            let mut got = 0;
            let mut buf = [0u8; 16];
            while got < 4096 {
                tokio::time::sleep(Duration::from_millis(1)).await;
                got += client.read(&mut buf).await.unwrap();
            }
        });
        w.write_all(&[1u8; 4096]).await.unwrap();
        reader.await.unwrap();
    }
}
