//! The HTTP API (docs/api.md), fetched with gloo-net. Each function is one
//! route; errors come back as [`ApiError`] with the contract's code. Room
//! states are built here from a snapshot and the events after it, replayed
//! as they are decoded by the domain's reducer.

use crate::browser::encode;
use crate::history::{History, LOG_RADIUS};
use crate::session::Session;
use crate::wire::{
    ErrorBody, ErrorInfo, EventsPage, MessagesPage, RawEventsPage, RoomList, RoomSummary,
    SnapshotBody,
};
use domain::{ChatEvent, PendingEvent, RoomState};
use gloo_net::http::{Request, RequestBuilder};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::future::Future;
use std::pin::Pin;

/// Events asked for per page of `/events` (the server's most).
pub const EVENTS_PAGE: u64 = 5000;

/// Why a request failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApiError {
    /// No answer: offline, or the server is down.
    Network,
    /// An error answer (or a body the app could not read: code `bad_body`).
    Http { status: u16, error: ErrorInfo },
}

impl ApiError {
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Network => None,
            ApiError::Http { status, .. } => Some(*status),
        }
    }

    pub fn code(&self) -> &str {
        match self {
            ApiError::Network => "network",
            ApiError::Http { error, .. } => &error.code,
        }
    }

    /// The token is no longer valid: sign in again.
    pub fn is_unauthorized(&self) -> bool {
        self.status() == Some(401) && self.code() == "unauthorized"
    }

    /// A sentence for a person.
    pub fn message(&self) -> String {
        match self {
            ApiError::Network => "The server cannot be reached. Check your connection.".into(),
            ApiError::Http { error, .. } if error.message.is_empty() => {
                format!("The server answered {}.", error.code)
            }
            ApiError::Http { error, .. } => {
                let mut m = error.message.clone();
                if let Some(first) = m.get_mut(0..1) {
                    first.make_ascii_uppercase();
                }
                if !m.ends_with('.') {
                    m.push('.');
                }
                m
            }
        }
    }

    fn bad_body(status: u16, what: impl ToString) -> Self {
        ApiError::Http {
            status,
            error: ErrorInfo {
                code: "bad_body".into(),
                message: what.to_string(),
                ..ErrorInfo::default()
            },
        }
    }
}

fn authed(req: RequestBuilder, token: &str) -> RequestBuilder {
    req.header("Authorization", &format!("Bearer {token}"))
}

/// A request's answer as text, or the error. Boxed, so that the one copy
/// of this future serves every route (a smaller bundle).
type Answer = Pin<Box<dyn Future<Output = Result<String, ApiError>>>>;

fn send(req: Result<Request, ApiError>) -> Answer {
    Box::pin(async move {
        let resp = req?.send().await.map_err(|_| ApiError::Network)?;
        let status = resp.status();
        let body = resp.text().await.map_err(|_| ApiError::Network)?;
        if resp.ok() {
            return Ok(body);
        }
        Err(match serde_json::from_slice::<ErrorBody>(body.as_bytes()) {
            Ok(b) => ApiError::Http {
                status,
                error: b.error,
            },
            Err(_) => ApiError::bad_body(status, format!("status {status}")),
        })
    })
}

/// A GET with the token.
fn get(url: &str, token: &str) -> Answer {
    send(
        authed(Request::get(url), token)
            .build()
            .map_err(|_| ApiError::Network),
    )
}

async fn json<T: DeserializeOwned>(answer: Answer) -> Result<T, ApiError> {
    let body = answer.await?;
    serde_json::from_slice(body.as_bytes()).map_err(|e| ApiError::bad_body(200, e))
}

fn with_body<B: Serialize>(req: RequestBuilder, body: &B) -> Result<Request, ApiError> {
    req.json(body).map_err(|e| ApiError::bad_body(0, e))
}

fn room_url(room: &str, rest: &str) -> String {
    format!("/api/rooms/{}{rest}", encode(room))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Credentials<'a> {
    user_id: &'a str,
    password: &'a str,
}

/// `POST /api/users`.
pub async fn sign_up(user_id: &str, password: &str) -> Result<(), ApiError> {
    let req = with_body(
        Request::post("/api/users"),
        &Credentials { user_id, password },
    );
    send(req).await.map(drop)
}

/// `POST /api/sessions`.
pub async fn sign_in(user_id: &str, password: &str) -> Result<Session, ApiError> {
    let req = with_body(
        Request::post("/api/sessions"),
        &Credentials { user_id, password },
    );
    json(send(req)).await
}

/// `DELETE /api/sessions/current`.
pub async fn sign_out(token: &str) -> Result<(), ApiError> {
    let req = authed(Request::delete("/api/sessions/current"), token);
    send(req.build().map_err(|_| ApiError::Network))
        .await
        .map(drop)
}

/// `GET /api/rooms`: every room, oldest first.
pub async fn rooms(token: &str) -> Result<Vec<RoomSummary>, ApiError> {
    json::<RoomList>(get("/api/rooms", token))
        .await
        .map(|l| l.rooms)
}

/// `GET /api/rooms/{id}`.
pub async fn room(token: &str, room: &str) -> Result<RoomSummary, ApiError> {
    json(get(&room_url(room, ""), token)).await
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NewRoom<'a> {
    room_id: &'a str,
    name: &'a str,
}

/// `POST /api/rooms`.
pub async fn create_room(token: &str, room_id: &str, name: &str) -> Result<RoomSummary, ApiError> {
    let req = with_body(
        authed(Request::post("/api/rooms"), token),
        &NewRoom { room_id, name },
    );
    json(send(req)).await
}

/// `GET /snapshot?window=…` (and `atSeq`): the latest snapshot at or before
/// the point, holding at least the newest `window` messages as of its seq.
pub fn snapshot(
    token: &str,
    room: &str,
    at_seq: Option<u64>,
    window: usize,
) -> Boxed<SnapshotBody> {
    let mut url = room_url(room, &format!("/snapshot?window={window}"));
    if let Some(k) = at_seq {
        url.push_str(&format!("&atSeq={k}"));
    }
    Box::pin(json(get(&url, token)))
}

/// Applies the events after `state` from `/events`, page by page, each
/// decoded and applied at once (no list of events is built), until the
/// room's last seq as of the last page. Returns that last seq.
pub async fn catch_up(token: &str, room: &str, state: &mut RoomState) -> Result<u64, ApiError> {
    loop {
        let after = state.last_seq();
        let url = room_url(
            room,
            &format!("/events?afterSeq={after}&limit={EVENTS_PAGE}"),
        );
        let body = get(&url, token).await?;
        let page: RawEventsPage =
            serde_json::from_slice(body.as_bytes()).map_err(|e| ApiError::bad_body(200, e))?;
        let applied = state
            .apply_json(page.events.get().as_bytes())
            .map_err(|e| ApiError::bad_body(200, e))?;
        if applied == 0 || state.last_seq() >= page.last_seq {
            return Ok(page.last_seq);
        }
    }
}

/// `GET /events?afterSeq=…&limit=…`, decoded.
pub async fn events(
    token: &str,
    room: &str,
    after: u64,
    limit: u64,
) -> Result<EventsPage, ApiError> {
    let url = room_url(room, &format!("/events?afterSeq={after}&limit={limit}"));
    json(get(&url, token)).await
}

/// The events with seq in `after+1..=upto` (fewer if the room ends first).
pub async fn events_range(
    token: &str,
    room: &str,
    mut after: u64,
    upto: u64,
) -> Result<Vec<ChatEvent>, ApiError> {
    let mut out = Vec::new();
    while after < upto {
        let page = events(token, room, after, (upto - after).min(EVENTS_PAGE)).await?;
        let Some(last) = page.events.last().map(|e| e.seq) else {
            break;
        };
        after = last;
        out.extend(page.events);
    }
    Ok(out)
}

/// `GET /messages?beforeSeq=…&limit=…` (and `atSeq` in time travel).
pub async fn messages(
    token: &str,
    room: &str,
    before: u64,
    limit: usize,
    at_seq: Option<u64>,
) -> Result<MessagesPage, ApiError> {
    let mut url = room_url(room, &format!("/messages?beforeSeq={before}&limit={limit}"));
    if let Some(k) = at_seq {
        url.push_str(&format!("&atSeq={k}"));
    }
    json(get(&url, token)).await
}

/// `POST /events`: one queued event, for rooms not open.
pub async fn post_event(
    token: &str,
    room: &str,
    event: &PendingEvent,
) -> Result<ChatEvent, ApiError> {
    let req = with_body(
        authed(Request::post(&room_url(room, "/events")), token),
        event,
    );
    json(send(req)).await
}

/// A future boxed at this boundary, so that callers' futures stay small.
pub type Boxed<T> = Pin<Box<dyn Future<Output = Result<T, ApiError>>>>;

/// A room as it is now, fast at any size: the snapshot holding the newest
/// `window` messages (a partial state for a large room), and the events
/// after it replayed by the domain's reducer.
pub fn load_room(token: String, room: String, window: usize) -> Boxed<RoomState> {
    Box::pin(async move {
        let mut state = snapshot(&token, &room, None, window).await?.state;
        catch_up(&token, &room, &mut state).await?;
        Ok(state)
    })
}

/// What time travel to seq `k` replays from: the nearest snapshot at or
/// before `k` (windowed) and the events from a few before it to a little
/// past `k` (for the event log and for moving the slider without asking
/// again). `None` if the pieces do not fit together.
pub fn load_history(
    token: String,
    room: String,
    k: u64,
    last: u64,
    window: usize,
) -> Boxed<Option<History>> {
    Box::pin(async move {
        let snap = snapshot(&token, &room, Some(k), window).await?;
        let base = snap.state.last_seq();
        let from = base.saturating_sub(LOG_RADIUS + 1);
        let upto = (k + LOG_RADIUS + 256).min(last);
        let events = events_range(&token, &room, from, upto).await?;
        Ok(History::new(snap.state, events))
    })
}
