//! The HTTP API (docs/api.md), fetched with gloo-net. Each function is one
//! route; errors come back as [`ApiError`] with the contract's code. Room
//! states are built here from a snapshot and the events after it, replayed
//! as they are decoded by the domain's reducer.

use crate::browser::encode;
use crate::session::Session;
use crate::wire::{
    ErrorBody, ErrorInfo, EventsPage, MessagesPage, RawEventsPage, RoomList, RoomSummary,
    SnapshotBody,
};
use domain::{ChatEvent, PendingEvent, RoomState};
use gloo_net::http::{Request, RequestBuilder, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;

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
                if let Some(first) = m.get(0..1) {
                    let upper = first.to_uppercase();
                    m.replace_range(0..1, &upper);
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

/// The body of a successful answer as text, or the error.
async fn text(resp: Result<Response, gloo_net::Error>) -> Result<String, ApiError> {
    let resp = resp.map_err(|_| ApiError::Network)?;
    let status = resp.status();
    let body = resp.text().await.map_err(|_| ApiError::Network)?;
    if resp.ok() {
        return Ok(body);
    }
    Err(match serde_json::from_str::<ErrorBody>(&body) {
        Ok(b) => ApiError::Http {
            status,
            error: b.error,
        },
        Err(_) => ApiError::bad_body(status, format!("status {status}")),
    })
}

async fn json<T: DeserializeOwned>(resp: Result<Response, gloo_net::Error>) -> Result<T, ApiError> {
    let body = text(resp).await?;
    serde_json::from_str(&body).map_err(|e| ApiError::bad_body(200, e))
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
    )?;
    text(req.send().await).await.map(drop)
}

/// `POST /api/sessions`.
pub async fn sign_in(user_id: &str, password: &str) -> Result<Session, ApiError> {
    let req = with_body(
        Request::post("/api/sessions"),
        &Credentials { user_id, password },
    )?;
    json(req.send().await).await
}

/// `DELETE /api/sessions/current`.
pub async fn sign_out(token: &str) -> Result<(), ApiError> {
    let req = authed(Request::delete("/api/sessions/current"), token);
    text(req.send().await).await.map(drop)
}

/// `GET /api/rooms`: every room, oldest first.
pub async fn rooms(token: &str) -> Result<Vec<RoomSummary>, ApiError> {
    let req = authed(Request::get("/api/rooms"), token);
    json::<RoomList>(req.send().await).await.map(|l| l.rooms)
}

/// `GET /api/rooms/{id}`.
pub async fn room(token: &str, room: &str) -> Result<RoomSummary, ApiError> {
    json(
        authed(Request::get(&room_url(room, "")), token)
            .send()
            .await,
    )
    .await
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
    )?;
    json(req.send().await).await
}

/// `GET /snapshot?window=…` (and `atSeq`): the latest snapshot at or before
/// the point, holding at least the newest `window` messages as of its seq.
pub async fn snapshot(
    token: &str,
    room: &str,
    at_seq: Option<u64>,
    window: usize,
) -> Result<SnapshotBody, ApiError> {
    let mut url = room_url(room, &format!("/snapshot?window={window}"));
    if let Some(k) = at_seq {
        url.push_str(&format!("&atSeq={k}"));
    }
    json(authed(Request::get(&url), token).send().await).await
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
        let body = text(authed(Request::get(&url), token).send().await).await?;
        let page: RawEventsPage =
            serde_json::from_str(&body).map_err(|e| ApiError::bad_body(200, e))?;
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
    json(authed(Request::get(&url), token).send().await).await
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
    json(authed(Request::get(&url), token).send().await).await
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
    )?;
    json(req.send().await).await
}
