//! The live WebSocket: backlog then live events of a room, each exactly once
//! and in seq order for the life of the connection, and submits answered
//! with `ack` or `error` frames.
//!
//! No race between backlog and live: the socket subscribes to the bus
//! before it reads the backlog, remembers the last seq it sent, skips what
//! it already sent, and fills any gap (a lagging subscription, a missed
//! publish) from the store. Nothing is ever silently skipped.

use super::{caller, room_id, MAX_BODY};
use crate::api_types::{EventBody, NewEvent, RoomPath, ServerFrame, WsQuery};
use crate::appender::Appended;
use crate::error::{ApiError, ErrorBody};
use crate::AppState;
use axum::extract::rejection::PathRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use domain::{ChatEvent, Submission};
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

/// WebSocket: every event after afterSeq (backlog, then live), and submits.
///
/// Frames are described by the `ServerFrame` schema (server → client) and
/// `{"type": "submit", "event": NewEvent}` (client → server). A frame over
/// 64 KiB closes the socket (1009); a connection that cannot keep up is
/// closed (4008); logging out closes it (4001).
#[utoipa::path(get, path = "/api/rooms/{roomId}/ws", tag = "events", security(("bearer" = [])),
    params(RoomPath, WsQuery),
    responses(
        (status = 101, description = "switching to the WebSocket protocol"),
        (status = 401, description = "unauthorized: no token, unknown token, or expired token (header or `token`)", body = ErrorBody),
        (status = 429, description = "rate_limited", headers(("Retry-After" = u64, description = "seconds to wait")), body = ErrorBody),
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
    let after = WsQuery::from_query(raw.as_deref())?.after_seq.unwrap_or(0);
    let room = room_id(path)?;
    if state.store.room(&room).await?.is_none() {
        return Err(ApiError::room_not_found());
    }
    let Ok(upgrade) = upgrade else {
        return Err(ApiError::upgrade_required());
    };
    Ok(upgrade
        .max_message_size(MAX_BODY)
        .max_frame_size(MAX_BODY)
        .on_upgrade(move |socket| async move {
            state.metrics.ws_connections.inc();
            run(socket, &state, &room, &who.user, &who.token_hash, after).await;
            state.metrics.ws_connections.dec();
        })
        .into_response())
}

type Tx = SplitSink<WebSocket, Message>;

struct Closed;

async fn send_text(tx: &mut Tx, text: String) -> Result<(), Closed> {
    tx.send(Message::Text(text.into()))
        .await
        .map_err(|_| Closed)
}

async fn send_event(tx: &mut Tx, e: &ChatEvent) -> Result<(), Closed> {
    let frame = ServerFrame::Event {
        event: EventBody::from(e),
    };
    send_text(tx, frame.to_text()).await
}

/// The error frame of a refused submit or a bad frame.
fn error_frame(event_id: Option<String>, err: &ApiError) -> String {
    ServerFrame::Error {
        event_id,
        error: err.object(),
    }
    .to_text()
}

/// Sends every stored event after `last`, advancing `last`.
async fn catch_up(state: &AppState, room: &str, last: &mut u64, tx: &mut Tx) -> Result<(), Closed> {
    loop {
        let events = match state.store.events(room, *last, 1000).await {
            Ok((events, _)) => events,
            Err(e) => {
                tracing::warn!(error = %e, "catch-up read failed; closing the socket");
                close(tx, 1011, "store unavailable").await;
                return Err(Closed);
            }
        };
        if events.is_empty() {
            return Ok(());
        }
        for e in &events {
            send_event(tx, e).await?;
            *last = e.seq;
        }
    }
}

async fn close(tx: &mut Tx, code: u16, reason: &'static str) {
    let _ = tx
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        })))
        .await;
}

/// Submits of one socket waiting for the store at once; more wait for a
/// place before the next frame is read.
const MAX_IN_FLIGHT: usize = 256;

async fn run(
    socket: WebSocket,
    state: &AppState,
    room: &str,
    user: &str,
    token_hash: &str,
    after: u64,
) {
    let (mut tx, mut rx) = socket.split();
    // Answers of submits in flight come back here, to be sent in between
    // event frames.
    let (answers_tx, mut answers) = mpsc::channel::<String>(MAX_IN_FLIGHT);
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    // Subscribe first, then read the backlog: nothing falls in between.
    let mut live = state.bus.subscribe(room);
    let mut logouts = state.logouts.subscribe();
    let mut shutting_down = state.shutting_down.clone();
    let mut last = after;
    if catch_up(state, room, &mut last, &mut tx).await.is_err() {
        return;
    }
    loop {
        let step: Result<(), Closed> = tokio::select! {
            ev = live.recv() => match ev {
                Ok(e) if e.seq <= last => Ok(()),
                Ok(e) if e.seq == last + 1 => {
                    last = e.seq;
                    send_event(&mut tx, &e).await
                }
                // A gap, or events dropped for a slow reader: resync from the store.
                Ok(_) | Err(RecvError::Lagged(_)) => {
                    state.metrics.ws_resyncs.inc();
                    catch_up(state, room, &mut last, &mut tx).await
                }
                Err(RecvError::Closed) => Err(Closed),
            },
            msg = rx.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    let permit = in_flight.clone().acquire_owned().await.expect("never closed");
                    submit(state, room, user, t.as_str(), answers_tx.clone(), permit).await;
                    Ok(())
                }
                Some(Ok(Message::Binary(_))) => {
                    let err = ApiError::bad_json("frames must be JSON text");
                    send_text(&mut tx, error_frame(None, &err)).await
                }
                Some(Ok(Message::Close(_))) | None => Err(Closed),
                Some(Ok(_)) => Ok(()),
                Some(Err(_)) => {
                    // Most often a frame over 64 KiB.
                    close(&mut tx, 1009, "frame too large or malformed").await;
                    Err(Closed)
                }
            },
            Some(frame) = answers.recv() => send_text(&mut tx, frame).await,
            _ = async { shutting_down.wait_for(|down| *down).await.map(|_| ()) } => {
                close(&mut tx, 1001, "the server is shutting down").await;
                Err(Closed)
            }
            out = logouts.recv() => match out {
                Ok(h) if h == token_hash => {
                    close(&mut tx, 4001, "logged out").await;
                    Err(Closed)
                }
                _ => Ok(()),
            },
        };
        if step.is_err() {
            break;
        }
    }
}

/// Handles one client frame: a submit, answered with `ack` or `error`
/// through `answers` once the store has answered. Submits are queued in the
/// order their frames came, so the log keeps that order.
async fn submit(
    state: &AppState,
    room: &str,
    user: &str,
    text: &str,
    answers: mpsc::Sender<String>,
    permit: OwnedSemaphorePermit,
) {
    let frame: Value = match serde_json::from_str(text) {
        Ok(v @ Value::Object(_)) => v,
        _ => {
            let err = ApiError::bad_json("the frame is not a JSON object");
            let _ = answers.send(error_frame(None, &err)).await;
            return;
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
    let answer = match queued {
        Ok(wait) => wait,
        Err(err) => {
            let _ = answers.send(error_frame(event_id, &err)).await;
            return;
        }
    };
    tokio::spawn(async move {
        let ack = |e: &ChatEvent| {
            ServerFrame::Ack {
                event_id: e.event_id,
                event: EventBody::from(e),
            }
            .to_text()
        };
        let frame = match answer.await {
            Ok(Appended::New(e)) => ack(&e),
            Ok(Appended::Existing(e)) => ack(&e),
            Err(err) => error_frame(event_id, &ApiError::from(err)),
        };
        let _ = answers.send(frame).await;
        drop(permit);
    });
}
