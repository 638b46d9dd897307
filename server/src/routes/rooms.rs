//! Rooms, events, the projection, time travel and snapshots.

use super::{caller, read_body, read_json, room_id};
use crate::api_types::{
    Event, EventPage, EventsQuery, MessageBody, MessagePage, MessagesQuery, NewEvent, NewRoom,
    RoomBody, RoomCursor, RoomList, RoomPath, RoomsQuery, SnapshotBody, SnapshotQuery,
    ROOM_PAGE_MAX,
};
use crate::appender::Appended;
use crate::error::{ApiError, ErrorBody};
use crate::store::{load_snapshot, RoomRecord, ViewPage};
use crate::AppState;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use domain::validation::{validate_id, validate_text, ROOM_NAME_MAX};
use domain::{ChatEvent, ChatMessageView, Incomplete, Point, RoomState, Submission};
use std::sync::Arc;
use std::time::{Duration, Instant};

async fn existing_room(state: &AppState, room: &str) -> Result<RoomRecord, ApiError> {
    state
        .stores
        .events
        .room(room)
        .await?
        .ok_or_else(ApiError::room_not_found)
}

/// Create a room; appends its ROOM_CREATED event (seq 1).
#[utoipa::path(post, path = "/api/rooms", tag = "rooms", security(("bearer" = [])), request_body = NewRoom,
    responses(
        (status = 201, description = "created", body = RoomBody),
        (status = 401, description = "unauthorized: no token, unknown token, or expired token", body = ErrorBody),
        (status = 429, description = "rate_limited", headers(("Retry-After" = u64, description = "seconds to wait")), body = ErrorBody),
        (status = 413, description = "payload_too_large: body over 64 KiB", body = ErrorBody),
        (status = 400, description = "bad_json: not JSON, a wrong JSON type, or roomId/name missing", body = ErrorBody),
        (status = 422, description = "invalid_id (roomId), content_empty or content_too_long (name)", body = ErrorBody),
        (status = 409, description = "room_exists", body = ErrorBody),
        (status = 500, description = "internal: a bug", body = ErrorBody),
        (status = 503, description = "unavailable: the store cannot be reached in time", body = ErrorBody)))]
pub async fn create_room(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<RoomBody>), ApiError> {
    let who = caller(&state, &headers, None).await?;
    let r: NewRoom = read_json(body).await?;
    validate_id("roomId", &r.room_id)?;
    validate_text("name", Some(&r.name), ROOM_NAME_MAX)?;
    let record = state
        .appender
        .create_room(&r.room_id, &r.name, &who.user)
        .await?;
    Ok((StatusCode::CREATED, Json(RoomBody::new(record, 0))))
}

/// Every room, oldest first, with the caller's unread count; a page of them
/// with `limit` (and `after`).
#[utoipa::path(get, path = "/api/rooms", tag = "rooms", security(("bearer" = [])), params(RoomsQuery),
    responses(
        (status = 200, description = "every room, or a page of them", body = RoomList),
        (status = 401, description = "unauthorized: no token, unknown token, or expired token", body = ErrorBody),
        (status = 429, description = "rate_limited", headers(("Retry-After" = u64, description = "seconds to wait")), body = ErrorBody),
        (status = 400, description = "bad_query: limit not a non-negative integer, or after not a place in the list", body = ErrorBody),
        (status = 500, description = "internal: a bug", body = ErrorBody),
        (status = 503, description = "unavailable: the store cannot be reached", body = ErrorBody)))]
pub async fn list_rooms(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Json<RoomList>, ApiError> {
    let who = caller(&state, &headers, None).await?;
    let q = RoomsQuery::from_query(raw.as_deref())?;
    let limit = match q.limit {
        Some(n) => n.min(ROOM_PAGE_MAX as u64) as usize,
        None => usize::MAX,
    };
    // One more than asked tells whether there is a next page.
    let want = limit.saturating_add(1);
    let after = q.after.as_ref().map(|(t, id)| (*t, id.as_str()));
    let mut page = state.stores.views.room_list(&who.user, after, want).await?;
    let more = page.len() > limit;
    page.truncate(limit);
    let next_after = match page.last() {
        Some((r, _)) if more => Some(RoomCursor::of(r.created_at.as_millis(), &r.room_id)),
        _ => None,
    };
    let rooms = page
        .into_iter()
        .map(|(r, unread)| RoomBody::new(r, unread))
        .collect();
    Ok(Json(RoomList { rooms, next_after }))
}

/// One room.
#[utoipa::path(get, path = "/api/rooms/{roomId}", tag = "rooms", security(("bearer" = [])), params(RoomPath),
    responses(
        (status = 200, description = "the room", body = RoomBody),
        (status = 401, description = "unauthorized: no token, unknown token, or expired token", body = ErrorBody),
        (status = 429, description = "rate_limited", headers(("Retry-After" = u64, description = "seconds to wait")), body = ErrorBody),
        (status = 404, description = "room_not_found", body = ErrorBody),
        (status = 500, description = "internal: a bug", body = ErrorBody),
        (status = 503, description = "unavailable: the store cannot be reached", body = ErrorBody)))]
pub async fn get_room(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<RoomPath>, PathRejection>,
) -> Result<Json<RoomBody>, ApiError> {
    let who = caller(&state, &headers, None).await?;
    let room = room_id(path)?;
    let r = existing_room(&state, &room).await?;
    let unread = state.stores.views.unread_count(&room, &who.user).await?;
    Ok(Json(RoomBody::new(r, unread)))
}

/// Append an event: 201 once durable; a retry of a stored eventId gets 200 and the stored event.
#[utoipa::path(post, path = "/api/rooms/{roomId}/events", tag = "events", security(("bearer" = [])), params(RoomPath),
    request_body = NewEvent,
    responses(
        (status = 201, description = "stored (durable)", body = Event),
        (status = 200, description = "a retry of a stored event: the event as first stored", body = Event),
        (status = 401, description = "unauthorized: no token, unknown token, or expired token", body = ErrorBody),
        (status = 429, description = "rate_limited", headers(("Retry-After" = u64, description = "seconds to wait")), body = ErrorBody),
        (status = 413, description = "payload_too_large: body over 64 KiB", body = ErrorBody),
        (status = 400, description = "bad_json: not JSON, a wrong JSON type, or eventId/eventType missing", body = ErrorBody),
        (status = 404, description = "room_not_found; message_not_found (target unknown or deleted)", body = ErrorBody),
        (status = 422, description = "invalid_event (unknown eventType, ROOM_CREATED, eventId not a UUID, targetMessageId missing), content_empty, content_too_long", body = ErrorBody),
        (status = 409, description = "event_id_conflict; seq_conflict (with lastSeq)", body = ErrorBody),
        (status = 403, description = "forbidden: editing or deleting another user's message", body = ErrorBody),
        (status = 500, description = "internal: a bug", body = ErrorBody),
        (status = 503, description = "unavailable: not acknowledged; retry with the same eventId", body = ErrorBody)))]
pub async fn post_event(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<RoomPath>, PathRejection>,
    body: Body,
) -> Result<(StatusCode, Json<Event<Arc<ChatEvent>>>), ApiError> {
    let who = caller(&state, &headers, None).await?;
    let bytes = read_body(body).await?;
    let submission = Submission::from(NewEvent::from_json(&bytes)?);
    let room = room_id(path)?;
    if !state.appender.room_exists(&room).await? {
        return Err(ApiError::room_not_found());
    }
    let cmd = submission.validate()?;
    let started = Instant::now();
    let r = state.appender.append(&room, &who.user, cmd).await;
    state
        .metrics
        .append_seconds
        .observe(started.elapsed().as_secs_f64());
    Ok(match r? {
        Appended::New(e) => (StatusCode::CREATED, Json(Event(e))),
        Appended::Existing(e) => (StatusCode::OK, Json(Event(Arc::new(e)))),
    })
}

/// Events with seq above afterSeq, ascending.
#[utoipa::path(get, path = "/api/rooms/{roomId}/events", tag = "events", security(("bearer" = [])),
    params(RoomPath, EventsQuery),
    responses(
        (status = 200, description = "a page of the log", body = EventPage),
        (status = 401, description = "unauthorized: no token, unknown token, or expired token", body = ErrorBody),
        (status = 429, description = "rate_limited", headers(("Retry-After" = u64, description = "seconds to wait")), body = ErrorBody),
        (status = 400, description = "bad_query: afterSeq or limit not a non-negative integer", body = ErrorBody),
        (status = 404, description = "room_not_found", body = ErrorBody),
        (status = 500, description = "internal: a bug", body = ErrorBody),
        (status = 503, description = "unavailable: the store cannot be reached", body = ErrorBody)))]
pub async fn get_events(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<RoomPath>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> Result<Json<EventPage>, ApiError> {
    caller(&state, &headers, None).await?;
    let q = EventsQuery::from_query(raw.as_deref())?;
    let after = q.after_seq.unwrap_or(0);
    let limit = q.limit.unwrap_or(500).min(5000) as usize;
    let room = room_id(path)?;
    existing_room(&state, &room).await?;
    let (events, last_seq) = state.stores.events.events(&room, after, limit).await?;
    Ok(Json(EventPage {
        events: events.into_iter().map(Event).collect(),
        last_seq,
    }))
}

/// A page of the projection, or the room as it was at a past seq or time (time travel).
#[utoipa::path(get, path = "/api/rooms/{roomId}/messages", tag = "messages", security(("bearer" = [])),
    params(RoomPath, MessagesQuery),
    responses(
        (status = 200, description = "the newest messages below beforeSeq, oldest first; asOfSeq in time travel", body = MessagePage),
        (status = 401, description = "unauthorized: no token, unknown token, or expired token", body = ErrorBody),
        (status = 429, description = "rate_limited", headers(("Retry-After" = u64, description = "seconds to wait")), body = ErrorBody),
        (status = 400, description = "bad_query: a parameter not a non-negative integer / not an RFC 3339 time, atSeq and at together, or atSeq above lastSeq", body = ErrorBody),
        (status = 404, description = "room_not_found", body = ErrorBody),
        (status = 500, description = "internal: a bug, such as stored data that does not replay", body = ErrorBody),
        (status = 503, description = "unavailable: the store cannot be reached", body = ErrorBody)))]
pub async fn get_messages(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<RoomPath>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> Result<Json<MessagePage>, ApiError> {
    caller(&state, &headers, None).await?;
    let q = MessagesQuery::from_query(raw.as_deref())?;
    let limit = q.limit.unwrap_or(50).min(500) as usize;
    let before = q.before_seq;
    if q.at_seq.is_some() && q.at.is_some() {
        return Err(ApiError::bad_query("give atSeq or at, not both"));
    }
    let room = room_id(path)?;
    let record = existing_room(&state, &room).await?;
    let point = match (q.at_seq, q.at) {
        (Some(k), _) => Some(Point::Seq(k)),
        (_, Some(t)) => Some(Point::Time(t)),
        _ => None,
    };
    let Some(point) = point else {
        let page = caught_up_views(&state, &room, limit, before).await?;
        if page.projected < page.last_seq {
            // Still lagging: the views would miss events before lastSeq.
            return Err(ApiError::unavailable(
                "the room's messages are being rebuilt from its events; retry",
            ));
        }
        let messages = page
            .messages
            .iter()
            .map(|m| ChatMessageView::build(&room, m, &page.read_markers).into())
            .collect();
        return Ok(Json(MessagePage {
            messages,
            last_seq: page.last_seq,
            as_of_seq: None,
        }));
    };
    let (views, as_of) = time_travel(&state, &room, record.last_seq, point, limit, before).await?;
    Ok(Json(MessagePage {
        messages: views.into_iter().map(MessageBody::from).collect(),
        last_seq: record.last_seq,
        as_of_seq: Some(as_of),
    }))
}

/// The room's newest `limit` views (below `before`) as of `point`: from the
/// latest snapshot at or before it, only the chunks the window needs, plus
/// the events from the snapshot to the point.
async fn time_travel(
    state: &AppState,
    room: &str,
    last_seq: u64,
    point: Point,
    limit: usize,
    before: Option<u64>,
) -> Result<(Vec<ChatMessageView>, u64), ApiError> {
    let k = match point {
        Point::Seq(k) if k > last_seq => {
            return Err(ApiError::bad_query(format!(
                "atSeq is beyond lastSeq {last_seq}"
            )))
        }
        Point::Seq(k) => k,
        Point::Time(t) => state.stores.events.seq_at_time(room, t).await?,
    };
    let head = state.stores.snapshots.snapshot_head(room, k).await?;
    let base = head.as_ref().map_or(0, |h| h.seq);
    let mut tail = Vec::new();
    while base + (tail.len() as u64) < k {
        let after = base + tail.len() as u64;
        let want = (k - after).min(5000) as usize;
        let (events, _) = state.stores.events.events(room, after, want).await?;
        if events.is_empty() {
            break;
        }
        tail.extend(events);
    }
    // Stored data that does not replay is a bug (500), not a reason to retry.
    let corrupt = |e: String| ApiError::internal(format!("stored state is inconsistent: {e}"));
    let deletes = tail
        .iter()
        .filter(|e| e.event_type() == domain::EventType::MessageDeleted)
        .count();
    let mut slack = deletes;
    for _ in 0..8 {
        let mut s = match &head {
            Some(h) => {
                let plan = h.plan_window(limit, before, slack);
                load_snapshot(&*state.stores.snapshots, room, h, |i| plan.contains(&i)).await?
            }
            None => RoomState::new(),
        };
        let unknown = s.unknown_read_targets(&tail);
        if !unknown.is_empty() {
            s.provide_outside_seqs(state.stores.events.seqs_of(room, &unknown).await?);
        }
        s.apply_all(tail.clone())
            .map_err(|e| corrupt(e.to_string()))?;
        match s.window_views(limit, before) {
            Ok(v) => return Ok((v, k)),
            Err(Incomplete) => slack = slack * 2 + limit + 256,
        }
    }
    Err(corrupt("the window could not be built".into()))
}

/// How long a read waits for a projection that lags the events.
const LAG_WAIT: Duration = Duration::from_secs(2);
/// How long it waits before it starts catching the projection up itself.
const LAG_GRACE: Duration = Duration::from_millis(100);

/// A page of the projection; when the projection lags the events, read
/// again until it does not (for at most [`LAG_WAIT`]). A write is answered
/// only once its projection is written, so a lag is a write in flight (gone
/// in milliseconds) or a projection left behind (a crash, a failed write),
/// which, after [`LAG_GRACE`], this starts catching up (one catch-up per
/// room at a time, however many read it).
async fn caught_up_views(
    state: &AppState,
    room: &str,
    limit: usize,
    before: Option<u64>,
) -> Result<ViewPage, ApiError> {
    let started = Instant::now();
    let mut caught_up = false;
    loop {
        let page = state.stores.views.views(room, limit, before).await?;
        if page.projected >= page.last_seq || started.elapsed() >= LAG_WAIT {
            return Ok(page);
        }
        if !caught_up && started.elapsed() >= LAG_GRACE {
            state.appender.catch_ups().start(&state.stores, room);
            caught_up = true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The latest stored snapshot with seq ≤ atSeq.
#[utoipa::path(get, path = "/api/rooms/{roomId}/snapshot", tag = "messages", security(("bearer" = [])),
    params(RoomPath, SnapshotQuery),
    responses(
        (status = 200, description = "the snapshot: its seq and the domain's serialized state", body = SnapshotBody),
        (status = 401, description = "unauthorized: no token, unknown token, or expired token", body = ErrorBody),
        (status = 429, description = "rate_limited", headers(("Retry-After" = u64, description = "seconds to wait")), body = ErrorBody),
        (status = 400, description = "bad_query: atSeq or window not a non-negative integer, or atSeq above lastSeq", body = ErrorBody),
        (status = 404, description = "room_not_found", body = ErrorBody),
        (status = 500, description = "internal: a bug, such as a snapshot that does not load", body = ErrorBody),
        (status = 503, description = "unavailable: the store cannot be reached", body = ErrorBody)))]
pub async fn get_snapshot(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<RoomPath>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> Result<Json<SnapshotBody>, ApiError> {
    caller(&state, &headers, None).await?;
    let q = SnapshotQuery::from_query(raw.as_deref())?;
    let room = room_id(path)?;
    let r = existing_room(&state, &room).await?;
    if q.at_seq.is_some_and(|n| n > r.last_seq) {
        return Err(ApiError::bad_query(format!(
            "atSeq is beyond lastSeq {}",
            r.last_seq
        )));
    }
    let n = q.at_seq.unwrap_or(r.last_seq);
    let Some(head) = state.stores.snapshots.snapshot_head(&room, n).await? else {
        return Ok(Json(SnapshotBody {
            seq: 0,
            state: RoomState::new(),
        }));
    };
    let s = match q.window {
        // The newest `w` messages as of the snapshot, from the chunks
        // that hold them.
        Some(w) => {
            let plan = head.plan_window(w, None, 0);
            let mut s = load_snapshot(&*state.stores.snapshots, &room, &head, |i| {
                plan.contains(&i)
            })
            .await?;
            s.keep_newest(w);
            s
        }
        None => load_snapshot(&*state.stores.snapshots, &room, &head, |_| true).await?,
    };
    Ok(Json(SnapshotBody {
        seq: head.seq,
        state: s,
    }))
}
