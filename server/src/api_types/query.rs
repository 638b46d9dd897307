//! Query strings, each read by its handler through `from_query` (400
//! `bad_query` for a value that is not what the route reads).

use crate::error::ApiError;
use domain::Timestamp;
use std::collections::HashMap;
use utoipa::IntoParams;

use super::schema::*;

/// Query parameters; the last value of a repeated name wins.
fn query_map(raw: Option<&str>) -> HashMap<String, String> {
    form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

/// A non-negative integer parameter (400 `bad_query` otherwise). Digits
/// beyond u64 are still a non-negative integer: they read as u64::MAX.
fn u64_param(q: &HashMap<String, String>, name: &str) -> Result<Option<u64>, ApiError> {
    match q.get(name) {
        None => Ok(None),
        Some(v) => match v.parse::<u64>() {
            Ok(n) => Ok(Some(n)),
            Err(_) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => Ok(Some(u64::MAX)),
            Err(_) => Err(ApiError::bad_query(format!(
                "{name} must be a non-negative integer"
            ))),
        },
    }
}

/// The room list's paging (the list is whole without `limit`).
#[derive(Debug, Default, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RoomsQuery {
    /// At most this many rooms (larger values are clamped to 1000; 0 gives
    /// an empty page). Without it, every room.
    #[param(value_type = Option<NonNegativeInteger>, inline)]
    pub limit: Option<u64>,
    /// Where the page starts: the `nextAfter` of the previous page (the
    /// rooms after that place in the list's order).
    #[param(value_type = Option<RoomCursor>, inline)]
    pub after: Option<(i64, String)>,
}

/// The largest page of the room list.
pub const ROOM_PAGE_MAX: usize = 1000;

impl RoomsQuery {
    pub fn from_query(raw: Option<&str>) -> Result<Self, ApiError> {
        let q = query_map(raw);
        let after = match q.get("after") {
            None => None,
            Some(c) => Some(
                RoomCursor::parse(c)
                    .ok_or_else(|| ApiError::bad_query("after must be a nextAfter of the list"))?,
            ),
        };
        Ok(RoomsQuery {
            limit: u64_param(&q, "limit")?,
            after,
        })
    }
}

#[derive(Debug, Default, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Events with seq above this (default 0).
    #[param(rename = "afterSeq", value_type = Option<NonNegativeInteger>, inline)]
    pub after_seq: Option<u64>,
    /// At most this many (default 500; larger values are clamped to 5000;
    /// 0 gives an empty list).
    #[param(value_type = Option<NonNegativeInteger>, inline)]
    pub limit: Option<u64>,
}

impl EventsQuery {
    pub fn from_query(raw: Option<&str>) -> Result<Self, ApiError> {
        let q = query_map(raw);
        Ok(EventsQuery {
            after_seq: u64_param(&q, "afterSeq")?,
            limit: u64_param(&q, "limit")?,
        })
    }
}

#[derive(Debug, Default, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MessagesQuery {
    /// The newest this many (default 50; larger values are clamped to 500).
    #[param(value_type = Option<NonNegativeInteger>, inline)]
    pub limit: Option<u64>,
    /// Only messages with a smaller seq.
    #[param(rename = "beforeSeq", value_type = Option<NonNegativeInteger>, inline)]
    pub before_seq: Option<u64>,
    /// Time travel: the room right after this seq. Not with `at`; above the
    /// room's lastSeq it is 400 `bad_query`.
    #[param(rename = "atSeq", value_type = Option<NonNegativeInteger>, inline)]
    pub at_seq: Option<u64>,
    /// Time travel: right after the last event with timestamp ≤ this RFC 3339
    /// time (any offset and precision). Not with `atSeq`.
    #[param(value_type = Option<String>, format = DateTime)]
    pub at: Option<Timestamp>,
}

impl MessagesQuery {
    pub fn from_query(raw: Option<&str>) -> Result<Self, ApiError> {
        let q = query_map(raw);
        let at = match q.get("at") {
            None => None,
            Some(v) => Some(
                Timestamp::parse_rfc3339_clamped(v)
                    .ok_or_else(|| ApiError::bad_query("at must be an RFC 3339 time"))?,
            ),
        };
        Ok(MessagesQuery {
            limit: u64_param(&q, "limit")?,
            before_seq: u64_param(&q, "beforeSeq")?,
            at_seq: u64_param(&q, "atSeq")?,
            at,
        })
    }
}

#[derive(Debug, Default, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SnapshotQuery {
    /// The latest snapshot with seq ≤ this (default: the room's lastSeq);
    /// above lastSeq it is 400 `bad_query`.
    #[param(rename = "atSeq", value_type = Option<NonNegativeInteger>, inline)]
    pub at_seq: Option<u64>,
    /// Hold only the newest this many messages as of the snapshot (besides
    /// the room's facts and read markers), for opening a large room at a
    /// cost that grows with the window; values outside 1–500 are clamped.
    /// Without it, the whole state.
    #[param(value_type = Option<NonNegativeInteger>, inline)]
    pub window: Option<usize>,
}

/// The largest `window` of the snapshot route.
pub const SNAPSHOT_WINDOW_MAX: usize = 500;

impl SnapshotQuery {
    pub fn from_query(raw: Option<&str>) -> Result<Self, ApiError> {
        let q = query_map(raw);
        let window = u64_param(&q, "window")?;
        Ok(SnapshotQuery {
            at_seq: u64_param(&q, "atSeq")?,
            window: window.map(|w| w.clamp(1, SNAPSHOT_WINDOW_MAX as u64) as usize),
        })
    }
}

#[derive(Debug, Default, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WsQuery {
    /// Send every event with seq above this (default 0), then live events.
    #[param(rename = "afterSeq", value_type = Option<NonNegativeInteger>, inline)]
    pub after_seq: Option<u64>,
    /// The bearer token, for browsers, which cannot set headers on a
    /// WebSocket (the `Authorization` header wins when both are sent).
    pub token: Option<String>,
}

impl WsQuery {
    pub fn from_query(raw: Option<&str>) -> Result<Self, ApiError> {
        let mut q = query_map(raw);
        Ok(WsQuery {
            after_seq: u64_param(&q, "afterSeq")?,
            token: q.remove("token"),
        })
    }

    /// The `token` alone, which authentication reads before the rest.
    pub fn token(raw: Option<&str>) -> Option<String> {
        query_map(raw).remove("token")
    }
}
