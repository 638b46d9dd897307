//! The accept loop: HTTP/1.1 connections (WebSocket upgrades included) served
//! by hyper with the timeouts axum::serve does not expose, a cap on open
//! connections, and graceful shutdown.
//!
//! - A connection must send a request's headers within `CLIENT_TIMEOUT`, and
//!   an idle keep-alive connection is closed after it (hyper's header read
//!   timeout runs from the end of one response to the next request's head).
//! - A write that the client does not take for `CLIENT_TIMEOUT` fails and
//!   closes the connection ([`StallTimeout`]); a request's body has the same
//!   time from the end of its head (a deadline the router puts on bodies).
//! - A request's head is at most 64 KiB (hyper answers 431 beyond).
//! - At most `MAX_CONNECTIONS` are open. At the cap, a new connection closes
//!   the oldest idle one (waiting for its client to send, no request in
//!   flight; WebSockets are never closed this way) and takes its place, so that a flood of connections
//!   that send nothing cannot keep anyone out; when every connection is busy
//!   the new one is answered `503 unavailable` (the contract's JSON,
//!   `Retry-After: 1`) and closed.
//! - On shutdown the listener closes, idle connections close, in-flight
//!   requests finish; a connection with no request in flight
//!   [`DRAIN_IDLE`] later (a request's head still half sent, which hyper
//!   would wait for until `CLIENT_TIMEOUT`) is closed; connections still
//!   open after [`FORCE_AFTER`] are dropped.

use crate::error::{ApiError, ErrorBody};
use crate::metrics::Metrics;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify, Semaphore};
use tokio::time::Sleep;
use tower::ServiceExt;

/// How long a graceful shutdown waits for open connections before it drops them.
pub const FORCE_AFTER: Duration = Duration::from_secs(30);

/// How long after the start of a graceful shutdown a connection without a
/// request in flight is closed: a head already sent is read and served
/// within it, one still coming (sent slowly, or never finished) is not
/// waited for.
pub const DRAIN_IDLE: Duration = Duration::from_secs(1);

/// Connections evicted and not yet closed: the open connections are at most
/// `MAX_CONNECTIONS` plus this many, for a moment.
pub const MAX_EVICTING: usize = 64;

/// How long accepting waits when [`MAX_EVICTING`] connections are closing.
const EVICTION_WAIT: Duration = Duration::from_secs(1);

/// Refusals being written at once; more connections over the cap are
/// closed without an answer.
const MAX_REFUSALS: usize = 32;

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

/// What every connection task shares.
struct Shared {
    app: Router,
    settings: Settings,
    metrics: Arc<Metrics>,
    /// Open connections (WebSockets included).
    open: Arc<AtomicUsize>,
    registry: Registry,
    phase: watch::Receiver<Phase>,
    /// Dropped by every connection task when it ends: the shutdown waits
    /// until every clone is gone.
    done: watch::Receiver<()>,
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
    let (phase_tx, phase) = watch::channel(Phase::Serving);
    let (done_tx, done) = watch::channel(());
    let shared = Arc::new(Shared {
        app,
        settings,
        metrics,
        open: Arc::new(AtomicUsize::new(0)),
        registry: Registry::default(),
        phase,
        done,
    });
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
        if shared.open.load(Ordering::Relaxed) < shared.settings.max_connections {
            spawn_connection(&shared, stream, peer);
            continue;
        }
        // Every slot is taken: close the connection idle the longest (no
        // request in flight, not a WebSocket) and serve this one at once,
        // over the cap until the evicted one is gone (at most MAX_EVICTING
        // so); when all are busy, refuse.
        let evicted = tokio::select! {
            evicted = shared.registry.evict_oldest_idle() => evicted,
            () = &mut shutdown => break,
        };
        if evicted {
            shared.metrics.connections_evicted.inc();
            spawn_connection(&shared, stream, peer);
            continue;
        }
        shared.metrics.connections_refused.inc();
        if let Ok(permit) = refusals.clone().try_acquire_owned() {
            let refusal = refusal.clone();
            tokio::spawn(async move {
                refuse(stream, refusal).await;
                drop(permit);
            });
        }
        // else dropped: closed without an answer
    }
    drop(listener);
    on_shutdown();
    let _ = phase_tx.send(Phase::Draining);
    drop(shared);
    if tokio::time::timeout(FORCE_AFTER, done_tx.closed())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after {FORCE_AFTER:?}: dropping them");
        let _ = phase_tx.send(Phase::Force);
        done_tx.closed().await;
    }
}

/// Serves one connection in a task of its own, counted open for as long as
/// the socket is.
fn spawn_connection(shared: &Arc<Shared>, stream: TcpStream, peer: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let (entry, tracked) = shared.registry.insert();
    let in_flight = tracked.in_flight.clone();
    let app = shared.app.clone();
    let service = tower::service_fn(move |req: hyper::Request<Incoming>| {
        // In flight from the request's head until its response's body is
        // sent; a WebSocket upgrade for good (never evicted).
        let busy = Busy::new(in_flight.clone());
        if req.headers().contains_key(axum::http::header::UPGRADE) {
            in_flight.fetch_add(1, Ordering::Relaxed);
        }
        let mut req = req.map(Body::new);
        req.extensions_mut().insert(ConnectInfo(peer));
        let app = app.clone();
        async move {
            let res = app.oneshot(req).await?;
            Ok::<_, Infallible>(res.map(|b| {
                Body::new(BusyBody {
                    inner: b,
                    _busy: busy,
                })
            }))
        }
    });
    // The count goes with the stream, so that it holds as long as the
    // socket is open, after a WebSocket upgrade too.
    let guard = ConnectionGuard::new(shared.open.clone(), shared.metrics.clone());
    let timeout = shared.settings.client_timeout;
    let io = StallTimeout::new(stream, timeout)
        .holding(guard)
        .flagging_reads(tracked.awaiting_client.clone());
    let io = TokioIo::new(io);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(timeout)
        // A request's head in at most 64 KiB (431 beyond): hyper's
        // default (~400 KB) times MAX_CONNECTIONS is a lot of memory.
        .max_buf_size(MAX_READ_BUFFER);
    let (mut drain, mut force) = (shared.phase.clone(), shared.phase.clone());
    let done = shared.done.clone();
    tokio::spawn(async move {
        let _entry = entry;
        let conn = builder
            .serve_connection(io, TowerToHyperService::new(service))
            .with_upgrades();
        let mut conn = std::pin::pin!(conn);
        let mut draining = false;
        // Armed when the shutdown starts (see DRAIN_IDLE).
        let idle_close = tokio::time::sleep(FORCE_AFTER);
        let mut idle_close = std::pin::pin!(idle_close);
        let mut idle_armed = false;
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
                    idle_close.as_mut().reset(tokio::time::Instant::now() + DRAIN_IDLE);
                    idle_armed = true;
                }
                () = idle_close.as_mut(), if idle_armed => {
                    // Still no request in flight: nothing to finish.
                    if tracked.in_flight.load(Ordering::Relaxed) == 0 {
                        break;
                    }
                    idle_armed = false;
                }
                _ = force.wait_for(|p| *p == Phase::Force) => break,
                () = tracked.evict.notified() => {
                    // A request may have come in since the choice: let it
                    // finish, then close.
                    if tracked.in_flight.load(Ordering::Relaxed) == 0 {
                        break;
                    }
                    conn.as_mut().graceful_shutdown();
                    draining = true;
                }
            }
        }
        drop(done);
    });
}

/// The open connections that may be evicted, with when they were accepted
/// and how many requests they have in flight. At most `MAX_CONNECTIONS`
/// entries: a connection is in it while its task runs.
#[derive(Default)]
struct Registry {
    next: AtomicU64,
    entries: Arc<Mutex<Entries>>,
    /// Woken when an evicted connection is gone.
    closed: Arc<Notify>,
}

#[derive(Default)]
struct Entries {
    open: HashMap<u64, Tracked>,
    /// Evicted, not yet closed: at most [`MAX_EVICTING`].
    evicting: usize,
}

struct Tracked {
    accepted: Instant,
    conn: Connection,
    evicted: bool,
}

/// What the accept loop and a connection's task share about it.
#[derive(Clone, Default)]
struct Connection {
    /// Requests in flight (a WebSocket upgrade stays counted).
    in_flight: Arc<AtomicUsize>,
    /// Whether the last read found nothing to read: the server is waiting
    /// on the client. A connection just accepted, with its request already
    /// in the socket, is not idle until it has been read.
    awaiting_client: Arc<AtomicBool>,
    /// Tells the task to close the connection.
    evict: Arc<Notify>,
}

impl Connection {
    fn idle(&self) -> bool {
        self.awaiting_client.load(Ordering::Relaxed) && self.in_flight.load(Ordering::Relaxed) == 0
    }
}

impl Registry {
    /// A new connection's entry (removed when the returned guard drops),
    /// its in-flight count and its eviction signal.
    fn insert(&self) -> (Entry, Connection) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let conn = Connection::default();
        let tracked = Tracked {
            accepted: Instant::now(),
            conn: conn.clone(),
            evicted: false,
        };
        lock(&self.entries).open.insert(id, tracked);
        let entry = Entry {
            id,
            entries: self.entries.clone(),
            closed: self.closed.clone(),
        };
        (entry, conn)
    }

    /// Tells the connection idle the longest to close; false when every
    /// connection has a request in flight (or is a WebSocket). While
    /// [`MAX_EVICTING`] are still closing, waits (a second at most, then
    /// false) for one of them to be gone.
    async fn evict_oldest_idle(&self) -> bool {
        let deadline = tokio::time::Instant::now() + EVICTION_WAIT;
        loop {
            let closed = self.closed.notified();
            let mut closed = std::pin::pin!(closed);
            closed.as_mut().enable();
            {
                let mut entries = lock(&self.entries);
                if entries.evicting < MAX_EVICTING {
                    let oldest = entries
                        .open
                        .values_mut()
                        .filter(|t| !t.evicted && t.conn.idle())
                        .min_by_key(|t| t.accepted);
                    let Some(t) = oldest else {
                        return false;
                    };
                    t.evicted = true;
                    t.conn.evict.notify_one();
                    entries.evicting += 1;
                    return true;
                }
            }
            if tokio::time::timeout_at(deadline, closed).await.is_err() {
                return false;
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A connection's place in the [`Registry`], given back when its task ends.
struct Entry {
    id: u64,
    entries: Arc<Mutex<Entries>>,
    closed: Arc<Notify>,
}

impl Drop for Entry {
    fn drop(&mut self) {
        let mut entries = lock(&self.entries);
        if entries.open.remove(&self.id).is_some_and(|t| t.evicted) {
            entries.evicting -= 1;
            self.closed.notify_waiters();
        }
    }
}

/// One request in flight on a connection, until dropped.
struct Busy(Arc<AtomicUsize>);

impl Busy {
    fn new(in_flight: Arc<AtomicUsize>) -> Self {
        in_flight.fetch_add(1, Ordering::Relaxed);
        Busy(in_flight)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A response body that keeps its request counted in flight until hyper
/// has sent it (or dropped it).
struct BusyBody {
    inner: Body,
    _busy: Busy,
}

impl http_body::Body for BusyBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
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
async fn refuse(mut stream: TcpStream, answer: Arc<[u8]>) {
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
}

/// An open connection: its count under `MAX_CONNECTIONS` and in
/// `chat_connections_open`, both given back when the socket is dropped.
pub struct ConnectionGuard {
    open: Arc<AtomicUsize>,
    metrics: Arc<Metrics>,
}

impl ConnectionGuard {
    fn new(open: Arc<AtomicUsize>, metrics: Arc<Metrics>) -> Self {
        open.fetch_add(1, Ordering::Relaxed);
        metrics.connections_open.inc();
        ConnectionGuard { open, metrics }
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
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
    /// Set when a read finds nothing to read, cleared when one returns.
    awaiting_client: Option<Arc<AtomicBool>>,
}

impl<S> StallTimeout<S> {
    pub fn new(inner: S, timeout: Duration) -> Self {
        StallTimeout {
            inner,
            timeout,
            stalled: None,
            _guard: None,
            awaiting_client: None,
        }
    }

    /// Keeps `flag` telling whether the last read found nothing to read.
    pub fn flagging_reads(mut self, flag: Arc<AtomicBool>) -> Self {
        self.awaiting_client = Some(flag);
        self
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
        let p = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Some(flag) = &self.awaiting_client {
            flag.store(p.is_pending(), Ordering::Relaxed);
        }
        p
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
