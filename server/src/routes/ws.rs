//! The live WebSocket of a room: the backlog then live events, each exactly
//! once and in seq order for the life of the connection, and submits
//! answered with `ack` or `error` frames in the order they came.
//!
//! One loop owns each connection and does one thing at a time: whichever
//! of these is ready first (chosen at random among the ready ones, so that
//! none starves the others): shutdown, a logout, the timer (a ping, or the
//! session's end), the next answer, the next event, the next client frame.
//! The loop polls each of them on every turn, so each is as cheap to poll
//! as it can be: one timer, and a logout signal of the socket's own session
//! rather than a channel every socket shares.
//!
//! - No race between backlog and live: the socket subscribes to the bus
//!   before it reads the backlog, remembers the last seq it sent, skips what
//!   it already sent, and fills any gap (a lagging subscription, a missed
//!   publish) from the store, a page at a time. Nothing is silently skipped.
//! - Submits: a frame's append is queued at once (the log keeps the order of
//!   the frames) and the wait for its answer joins a FIFO, so answers leave
//!   in the order of the submits. At most [`MAX_IN_FLIGHT`] wait; beyond
//!   that the loop reads no frame, which pushes back on the client's TCP.
//! - Nothing waits on a queue that only it drains: frames are sent by the
//!   loop itself, each within [`SEND_TIMEOUT`]; a client that takes nothing
//!   for that long does not keep up and is closed (4008). A socket that fell
//!   behind the live feed sends the events waiting for it together, in one
//!   write where they fit: under load, one system call carries several
//!   events instead of one each.
//! - The session is checked on every submit: its expiry is known from the
//!   start (and the timer closes an idle socket then, 4001); a logout (from
//!   any instance) signals the session's sockets, which close (4001). The
//!   socket watches for that signal from before it looks its session up,
//!   so no logout falls in between. When logouts may be lost (a bus between
//!   instances: then on a submit at most once a second, and on every ping)
//!   the store says whether the session still exists.
//! - Pings every `WS_PING_INTERVAL`; a peer heard nothing from for two
//!   intervals is closed (1001). Protocol errors close with RFC 6455's codes
//!   (1002, 1007, 1009 for a frame over 64 KiB); a client's close is
//!   answered with a close frame.

use super::{caller, room_id, MAX_BODY};
use crate::api_types::{NewEvent, RoomPath, ServerFrame, WsQuery};
use crate::appender::{Appended, STORE_TIMEOUT};
use crate::auth::now_ms;
use crate::bus::{Live, SessionWatch, Subscription};
use crate::error::{ApiError, ErrorBody};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use domain::{ChatEvent, Submission};
use futures_util::future::{poll_immediate, BoxFuture};
use futures_util::stream::{
    FuturesOrdered, FuturesUnordered, SplitSink, SplitStream, StreamFuture,
};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::watch;
use tokio::time::{timeout, Instant};
use tungstenite::error::{Error as WsError, ProtocolError};

/// Submits of one socket waiting for their answers at once; while this
/// many wait, no frame is read.
const MAX_IN_FLIGHT: usize = 256;
/// How long a frame may take to be sent: a client that takes nothing for
/// this long does not keep up (4008).
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a close frame may take to leave, and the client's close frame
/// to come back.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
/// How often a submit looks the session up in the store when logouts may
/// be lost on the way from another instance.
const SESSION_RECHECK: Duration = Duration::from_secs(1);
/// Open sockets a user may have at once (the next is answered 429).
const MAX_SOCKETS_PER_USER: usize = 32;
/// Events read from the store at once when catching up.
const PAGE: usize = 256;
/// Live events a socket sends at once when it fell behind (see [`deliver`]).
const COALESCE: usize = 16;
/// What a socket's frames fill before they are written out: the events
/// sent at once share writes of up to this size (plus a frame).
const WRITE_BUFFER: usize = 4 * 1024;
/// The read buffer of a socket: client frames are small submits (the whole
/// frame is read into a larger buffer only when a larger one comes, up to
/// 64 KiB), so an idle socket holds 4 KiB, not tungstenite's 128 KiB.
const READ_BUFFER: usize = 4 * 1024;
/// The most a socket buffers for sending: the frames of one write (up to
/// [`WRITE_BUFFER`] and one more frame; an event of 4,000 characters is at
/// most about 25 KB of JSON) and control frames.
const MAX_WRITE_BUFFER: usize = 4 * MAX_BODY;

/// WebSocket: every event after afterSeq (backlog, then live), and submits.
///
/// Frames are described by the `ServerFrame` schema (server → client) and
/// `{"type": "submit", "event": NewEvent}` (client → server). Close codes:
/// 1009 a frame over 64 KiB; 1007 a text frame that is not UTF-8; 1002
/// another protocol error; 4008 a connection that cannot keep up (takes no
/// frame for 10 s); 4001 logged out or the session expired; 1001 the server
/// is shutting down, or the connection was silent (no pong, no frame) for
/// two ping intervals. A user has at most 32 sockets open at once.
#[utoipa::path(get, path = "/api/rooms/{roomId}/ws", tag = "events", security(("bearer" = [])),
    params(RoomPath, WsQuery),
    responses(
        (status = 101, description = "switching to the WebSocket protocol"),
        (status = 401, description = "unauthorized: no token, unknown token, or expired token (header or `token`)", body = ErrorBody),
        (status = 429, description = "rate_limited: too many requests, or the user has 32 sockets open", headers(("Retry-After" = u64, description = "seconds to wait")), body = ErrorBody),
        (status = 400, description = "bad_query: afterSeq not a non-negative integer", body = ErrorBody),
        (status = 404, description = "room_not_found", body = ErrorBody),
        (status = 426, description = "upgrade_required: a plain GET without the WebSocket upgrade", body = ErrorBody),
        (status = 500, description = "internal: a bug", body = ErrorBody),
        (status = 503, description = "unavailable: the store cannot be reached", body = ErrorBody)))]
pub async fn connect(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<RoomPath>, PathRejection>,
    RawQuery(raw): RawQuery,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    // 401 comes before a bad parameter: read the token on its own.
    let who = caller(&state, &headers, WsQuery::token(raw.as_deref())).await?;
    // Watched before it is looked up: a logout from now on is signalled.
    let logout = state.bus.here().watch_session(&who.token_hash);
    // When the session ends, to close the socket then (4001).
    let Some((_, session_end)) = state.stores.accounts.session(&who.token_hash).await? else {
        return Err(ApiError::unauthorized());
    };
    let place = Place::take(&state, &who.user).ok_or_else(too_many_sockets)?;
    let after = WsQuery::from_query(raw.as_deref())?.after_seq.unwrap_or(0);
    let room = room_id(path)?;
    if state.stores.events.room(&room).await?.is_none() {
        return Err(ApiError::room_not_found());
    }
    let Ok(upgrade) = upgrade else {
        return Err(ApiError::upgrade_required());
    };
    Ok(upgrade
        .read_buffer_size(READ_BUFFER)
        // Frames sent together share writes; each send ends with a flush,
        // so nothing waits in the buffer for more.
        .write_buffer_size(WRITE_BUFFER)
        .max_write_buffer_size(MAX_WRITE_BUFFER)
        .max_message_size(MAX_BODY)
        .max_frame_size(MAX_BODY)
        .on_upgrade(move |socket| async move {
            let _place = place;
            let _open = Open::count(&state);
            let session = Session {
                token_hash: who.token_hash,
                end_ms: session_end,
                logout,
            };
            let (mut sink, stream) = socket.split();
            let mut incoming = Incoming::new(stream);
            let end = serve(
                &mut sink,
                &mut incoming,
                &state,
                &room,
                &who.user,
                &session,
                after,
            )
            .await;
            goodbye(sink, incoming, end).await;
        })
        .into_response())
}

/// The 429 of a user who has [`MAX_SOCKETS_PER_USER`] sockets open.
fn too_many_sockets() -> ApiError {
    let mut e = ApiError::rate_limited(1);
    e.message = format!(
        "a user has at most {MAX_SOCKETS_PER_USER} WebSockets open at once; close one first"
    );
    e
}

/// Open sockets per user.
type OpenSockets = Arc<Mutex<HashMap<String, usize>>>;

/// A user's place among their open sockets, given back when dropped.
struct Place {
    open: OpenSockets,
    user: String,
}

impl Place {
    fn take(state: &AppState, user: &str) -> Option<Place> {
        let mut open = state.ws_open.lock().unwrap_or_else(PoisonError::into_inner);
        let n = open.entry(user.to_owned()).or_insert(0);
        if *n >= MAX_SOCKETS_PER_USER {
            return None;
        }
        *n += 1;
        Some(Place {
            open: state.ws_open.clone(),
            user: user.to_owned(),
        })
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = open.get_mut(&self.user) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.user);
            }
        }
    }
}

/// Counts an open connection in `chat_ws_connections` while it lives.
struct Open(prometheus::IntGauge);

impl Open {
    fn count(state: &AppState) -> Open {
        state.metrics.ws_connections.inc();
        Open(state.metrics.ws_connections.clone())
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The session a socket was opened with.
struct Session {
    token_hash: String,
    /// When it expires, in milliseconds since the epoch.
    end_ms: i64,
    logout: SessionWatch,
}

/// Why a socket ends, which says how it takes leave.
enum End {
    /// The client sent its close frame: answer it.
    ClientClosed,
    /// The connection is gone or broken: nothing more can be sent.
    Gone,
    /// A frame could not be sent within [`SEND_TIMEOUT`] (4008).
    Stuck,
    /// Nothing was heard from the client for two ping intervals (1001):
    /// no answer to the close frame is awaited either.
    Silent,
    /// The server closes with this code and reason.
    Close(u16, &'static str),
}

const SHUTTING_DOWN: End = End::Close(1001, "the server is shutting down");
const LOGGED_OUT: End = End::Close(4001, "logged out");
const EXPIRED: End = End::Close(4001, "the session expired");

/// The sending half of a socket.
type Sink = SplitSink<WebSocket, Message>;

/// The client's frames, read only once the socket has something for them.
/// Reading polls tungstenite, which clears its read buffer's free space
/// (4 KiB) each time: polled on every turn of the loop, as a plain
/// `recv()` in the `select!` was, that took a tenth of the server's CPU at
/// a thousand sockets that only listen. The stream waits in a
/// `FuturesUnordered`, which polls it again only after its waker fired.
struct Incoming(FuturesUnordered<StreamFuture<SplitStream<WebSocket>>>);

impl Incoming {
    fn new(stream: SplitStream<WebSocket>) -> Incoming {
        let waiting = FuturesUnordered::new();
        waiting.push(stream.into_future());
        Incoming(waiting)
    }

    /// The next frame; `None` once the connection ended. Cancel-safe: the
    /// stream is back in place before this returns.
    async fn recv(&mut self) -> Option<Result<Message, axum::Error>> {
        let (frame, stream) = self.0.next().await?;
        self.0.push(stream.into_future());
        frame
    }
}

/// Serves one socket until it ends, and says why it ended.
async fn serve(
    ws: &mut Sink,
    incoming: &mut Incoming,
    state: &AppState,
    room: &str,
    user: &str,
    session: &Session,
    after: u64,
) -> End {
    // Subscribe first, then read the backlog: nothing falls in between.
    let mut live = state.bus.subscribe(room);
    let mut logged_out = pin!(session.logout.logged_out());
    // Made once, and shared with each send (see deliver).
    let mut stop = pin!(shutdown(state.shutting_down.clone()));
    let mut feed = Feed {
        last: after,
        backlog: VecDeque::new(),
        behind: true,
    };
    let mut answers: FuturesOrdered<BoxFuture<'static, String>> = FuturesOrdered::new();
    let period = state.config.ws_ping_interval;
    let expires = session_deadline(session.end_ms);
    // One timer for the next ping and the session's end, whichever is first.
    let timer = tokio::time::sleep_until(soonest(Instant::now() + period, expires));
    tokio::pin!(timer);
    let mut heard = Instant::now();
    // When the session was last looked up in the store (see session_over).
    let mut checked = Instant::now();
    loop {
        let out: Message = tokio::select! {
            _ = &mut stop => return SHUTTING_DOWN,
            _ = &mut logged_out => return LOGGED_OUT,
            _ = &mut timer => {
                let now = Instant::now();
                if expires.is_some_and(|at| now >= at) {
                    return EXPIRED;
                }
                timer.as_mut().reset(soonest(now + period, expires));
                if heard.elapsed() >= 2 * period {
                    return End::Silent;
                }
                // A socket that only listens looks its session up too,
                // when a logout from another instance may have been lost.
                if state.bus.may_lose() && checked.elapsed() >= SESSION_RECHECK {
                    checked = Instant::now();
                    if let Some(end) = recheck(state, session).await {
                        return end;
                    }
                }
                Message::Ping(Bytes::new())
            }
            Some(answer) = answers.next(), if !answers.is_empty() => Message::Text(answer.into()),
            event = live.recv() => match feed.live(event, state) {
                Ok(Some(text)) => {
                    // The events that came meanwhile go out in the same write.
                    let more = Some((&mut feed, &mut live, state));
                    if let Err(end) = deliver(ws, Message::Text(text), more, stop.as_mut()).await {
                        return end;
                    }
                    continue;
                }
                Ok(None) => continue,
                Err(end) => return end,
            },
            _ = std::future::ready(()), if feed.behind => match feed.backlog.pop_front() {
                Some(e) => {
                    feed.last = e.seq;
                    Message::Text(ServerFrame::event_text(&e).into())
                }
                None => {
                    match read_page(state, room, feed.last).await {
                        Ok(events) if events.is_empty() => feed.behind = false,
                        Ok(events) => feed.backlog = events.into(),
                        Err(end) => return end,
                    }
                    continue;
                }
            },
            frame = incoming.recv(), if answers.len() < MAX_IN_FLIGHT => {
                heard = Instant::now();
                match frame {
                    Some(Ok(Message::Text(text))) => {
                        // The session is checked on every submit.
                        if let Some(end) = session_over(state, session, &mut checked).await {
                            return end;
                        }
                        answers.push_back(submit(state, room, user, text.as_str()).await);
                    }
                    Some(Ok(Message::Binary(_))) => {
                        let err = ApiError::bad_json("frames must be JSON text");
                        answers.push_back(answered(ServerFrame::error_text(None, &err)));
                    }
                    Some(Ok(Message::Close(_))) => return End::ClientClosed,
                    // Pings are answered by tungstenite; pongs only say the client is there.
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    Some(Err(e)) => return protocol_error(e),
                    None => return End::Gone,
                }
                continue;
            }
        };
        if let Err(end) = deliver(ws, out, None, stop.as_mut()).await {
            return end;
        }
    }
}

/// Resolves once the server starts shutting down (or has stopped).
async fn shutdown(mut shutting_down: watch::Receiver<bool>) {
    let _ = shutting_down.wait_for(|down| *down).await;
}

/// Sends `msg`, then (after a live event) the live events that are already
/// waiting, up to [`COALESCE`] of them, in as few writes as the write
/// buffer allows: a socket that fell behind catches up with one write, not
/// one per event. Fails when the client takes nothing for [`SEND_TIMEOUT`]
/// or the server starts shutting down meanwhile.
async fn deliver(
    ws: &mut Sink,
    msg: Message,
    more: Option<(&mut Feed, &mut Subscription, &AppState)>,
    stop: Pin<&mut impl Future<Output = ()>>,
) -> Result<(), End> {
    // Each frame, and the flush, within SEND_TIMEOUT of its own: a client
    // that takes frames slowly keeps up, one that takes nothing does not.
    // Most steps are done at once (the socket's buffer has room): the timer
    // is made only for a step that has to wait.
    async fn step(sent: impl Future<Output = Result<(), axum::Error>>) -> Result<(), End> {
        let mut sent = pin!(sent);
        let done = match poll_immediate(sent.as_mut()).await {
            Some(done) => done,
            None => timeout(SEND_TIMEOUT, sent).await.map_err(|_| End::Stuck)?,
        };
        done.map_err(|_| End::Gone)
    }
    let send = async {
        step(ws.feed(msg)).await?;
        if let Some((feed, live, state)) = more {
            for _ in 1..COALESCE {
                // Nothing newer was published: no need to ask the channel.
                if live.newest() <= feed.last {
                    break;
                }
                let event = match live.try_recv() {
                    Ok(e) => Ok(e),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Lagged(n)) => Err(RecvError::Lagged(n)),
                    Err(TryRecvError::Closed) => Err(RecvError::Closed),
                };
                if let Some(text) = feed.live(event, state)? {
                    step(ws.feed(Message::Text(text))).await?;
                }
            }
        }
        step(ws.flush()).await
    };
    // The send first: when it is done at once, nothing else is polled.
    tokio::select! {
        biased;
        sent = send => sent,
        _ = stop => Err(SHUTTING_DOWN),
    }
}

/// Takes leave of the client as `end` says, each step within
/// [`CLOSE_TIMEOUT`] (the close frame of a client that does not read may
/// never get through: then the connection is just dropped).
async fn goodbye(mut ws: Sink, mut incoming: Incoming, end: End) {
    match end {
        End::Gone => {}
        // tungstenite has queued the answer to the client's close frame:
        // closing sends it.
        End::ClientClosed => {
            let _ = timeout(CLOSE_TIMEOUT, ws.close()).await;
        }
        // The client takes nothing, or says nothing: its answer to the
        // close frame is not awaited.
        End::Stuck => {
            let too_slow = close(4008, "too slow: reconnect with afterSeq");
            let _ = timeout(CLOSE_TIMEOUT, ws.send(too_slow)).await;
        }
        End::Silent => {
            let silent = close(1001, "nothing heard from the client");
            let _ = timeout(CLOSE_TIMEOUT, ws.send(silent)).await;
        }
        End::Close(code, reason) => {
            if let Ok(Ok(())) = timeout(CLOSE_TIMEOUT, ws.send(close(code, reason))).await {
                // Read what the client still sends until its close frame, so
                // that the connection ends cleanly (unread data would make
                // the kernel reset it, and the client could lose the close).
                let _ = timeout(CLOSE_TIMEOUT, async {
                    while let Some(Ok(m)) = incoming.recv().await {
                        if matches!(m, Message::Close(_)) {
                            break;
                        }
                    }
                })
                .await;
            }
        }
    }
}

fn close(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
}

/// How a read error ends the socket: RFC 6455's close codes for what the
/// client did wrong, nothing to send when the connection is gone.
fn protocol_error(e: axum::Error) -> End {
    let Ok(e) = e.into_inner().downcast::<WsError>() else {
        return End::Gone;
    };
    match *e {
        WsError::Capacity(_) => End::Close(1009, "a frame over 64 KiB"),
        WsError::Utf8(_) => End::Close(1007, "a text frame that is not UTF-8"),
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => End::Gone,
        WsError::Protocol(_) => End::Close(1002, "a WebSocket protocol error"),
        _ => End::Gone,
    }
}

/// When the session ends (`None` if that is beyond what the clock can
/// count).
fn session_deadline(end_ms: i64) -> Option<Instant> {
    let left = u64::try_from(end_ms.saturating_sub(now_ms())).unwrap_or(0);
    Instant::now().checked_add(Duration::from_millis(left))
}

/// The earlier of a ping's time and the session's end.
fn soonest(ping: Instant, expires: Option<Instant>) -> Instant {
    expires.map_or(ping, |at| at.min(ping))
}

/// Whether the session is over, checked before a submit: expired, or
/// logged out. Behind a bus that may lose logouts (another instance's
/// logout over Redis), the store is asked too, at most every
/// [`SESSION_RECHECK`].
async fn session_over(state: &AppState, session: &Session, checked: &mut Instant) -> Option<End> {
    if now_ms() >= session.end_ms {
        return Some(EXPIRED);
    }
    if session.logout.is_logged_out() {
        return Some(LOGGED_OUT);
    }
    if state.bus.may_lose() && checked.elapsed() >= SESSION_RECHECK {
        *checked = Instant::now();
        return recheck(state, session).await;
    }
    None
}

/// When logouts may have been lost: whether the store still has the
/// session (`None`), or how the socket ends.
async fn recheck(state: &AppState, session: &Session) -> Option<End> {
    match timeout(
        STORE_TIMEOUT,
        state.stores.accounts.session(&session.token_hash),
    )
    .await
    {
        Ok(Ok(Some((_, end_ms)))) if end_ms > now_ms() => None,
        Ok(Ok(_)) => Some(LOGGED_OUT),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "session check failed; closing the socket");
            Some(End::Close(1011, "the session could not be checked"))
        }
        Err(_) => {
            tracing::warn!("session check timed out; closing the socket");
            Some(End::Close(1011, "the session could not be checked"))
        }
    }
}

/// Where the socket is in the room's log.
struct Feed {
    /// The last seq sent.
    last: u64,
    /// Events read from the store, to send before anything else.
    backlog: VecDeque<ChatEvent>,
    /// Whether the store may hold events after `last` that the live
    /// subscription will not bring: read from it until a read finds none.
    behind: bool,
}

impl Feed {
    /// A live event: the frame to send, if it is the next one. Anything
    /// else is skipped when already sent or while catching up (every
    /// published event is in the store already), or starts a catch-up (a
    /// gap, or events dropped for a slow reader).
    fn live(
        &mut self,
        event: Result<Arc<Live>, RecvError>,
        state: &AppState,
    ) -> Result<Option<Utf8Bytes>, End> {
        match event {
            Ok(e) if self.behind || e.seq <= self.last => Ok(None),
            Ok(e) if e.seq == self.last + 1 => {
                self.last = e.seq;
                Ok(Some(e.encoded(|e| ServerFrame::event_text(e).into())))
            }
            Ok(_) | Err(RecvError::Lagged(_)) => {
                if !self.behind {
                    state.metrics.ws_resyncs.inc();
                    self.behind = true;
                }
                Ok(None)
            }
            Err(RecvError::Closed) => Err(End::Close(1011, "the live feed ended")),
        }
    }
}

/// The next page of stored events after `last`.
async fn read_page(state: &AppState, room: &str, last: u64) -> Result<Vec<ChatEvent>, End> {
    match timeout(STORE_TIMEOUT, state.stores.events.events(room, last, PAGE)).await {
        Ok(Ok((events, _))) => Ok(events),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "catch-up read failed; closing the socket");
            Err(End::Close(1011, "the event log could not be read"))
        }
        Err(_) => {
            tracing::warn!("catch-up read timed out; closing the socket");
            Err(End::Close(1011, "the event log could not be read"))
        }
    }
}

/// An answer known at once.
fn answered(frame: String) -> BoxFuture<'static, String> {
    Box::pin(std::future::ready(frame))
}

/// Handles one text frame: a submit, queued for the writer at once; the
/// wait for its `ack` or `error` frame (the frame itself when the submit is
/// refused before it is queued).
async fn submit(
    state: &AppState,
    room: &str,
    user: &str,
    text: &str,
) -> BoxFuture<'static, String> {
    let frame: Value = match serde_json::from_str(text) {
        Ok(v @ Value::Object(_)) => v,
        _ => {
            let err = ApiError::bad_json("the frame is not a JSON object");
            return answered(ServerFrame::error_text(None, &err));
        }
    };
    let event_id = frame
        .get("event")
        .and_then(|e| e.get("eventId"))
        .and_then(Value::as_str)
        .map(|s| s.to_lowercase());
    let queued = async {
        if frame.get("type").and_then(Value::as_str) != Some("submit") {
            return Err(ApiError::bad_json("the frame's type must be \"submit\""));
        }
        state.rate.check(user).map_err(ApiError::rate_limited)?;
        let cmd = Submission::from(NewEvent::from_value(frame.get("event"))?).validate()?;
        Ok::<_, ApiError>(state.appender.enqueue(room, user, cmd).await?)
    }
    .await;
    match queued {
        Ok(answer) => Box::pin(async move {
            match answer.await {
                Ok(Appended::New(e)) => ServerFrame::ack_text(&e),
                Ok(Appended::Existing(e)) => ServerFrame::ack_text(&e),
                Err(err) => ServerFrame::error_text(event_id, &ApiError::from(err)),
            }
        }),
        Err(err) => answered(ServerFrame::error_text(event_id, &err)),
    }
}
