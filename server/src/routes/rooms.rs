//! Rooms, events, the projection, time travel and snapshots.

use super::{caller, json_body, query_map, read_body, u64_param};
use crate::appender::Appended;
use crate::error::ApiError;
use crate::store::{load_snapshot, RoomRecord};
use crate::AppState;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use domain::validation::{validate_id, validate_text, ROOM_NAME_MAX};
use domain::{ChatMessageView, Incomplete, Point, RoomState, Submission, Timestamp};
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::Instant;

fn room_json(r: &RoomRecord, unread: u64) -> Value {
    json!({
        "roomId": r.room_id, "name": r.name, "createdBy": r.created_by,
        "createdAt": r.created_at, "lastSeq": r.last_seq, "unreadCount": unread,
    })
}

async fn existing_room(state: &AppState, room: &str) -> Result<RoomRecord, ApiError> {
    state
        .store
        .room(room)
        .await?
        .ok_or_else(ApiError::room_not_found)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewRoom {
    room_id: String,
    name: String,
}

/// Create a room; appends its ROOM_CREATED event (seq 1).
#[utoipa::path(post, path = "/api/rooms", tag = "rooms", security(("bearer" = [])), request_body = crate::openapi::NewRoom,
    responses((status = 201, body = crate::openapi::Room), (status = 401, description = "unauthorized", body = crate::openapi::ErrorBody), (status = 429, description = "rate_limited (Retry-After)", body = crate::openapi::ErrorBody), (status = 400, description = "bad_json", body = crate::openapi::ErrorBody),
        (status = 409, description = "room_exists", body = crate::openapi::ErrorBody),
        (status = 422, description = "invalid_id, content_empty, content_too_long", body = crate::openapi::ErrorBody)))]
pub async fn create_room(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let who = caller(&state, &headers, None).await?;
    let r: NewRoom = json_body(&read_body(body).await?)?;
    validate_id("roomId", &r.room_id)?;
    validate_text("name", Some(&r.name), ROOM_NAME_MAX)?;
    let record = state
        .appender
        .create_room(&r.room_id, &r.name, &who.user)
        .await?;
    Ok((StatusCode::CREATED, Json(room_json(&record, 0))))
}

/// Every room, oldest first, with the caller's unread count.
#[utoipa::path(get, path = "/api/rooms", tag = "rooms", security(("bearer" = [])),
    responses((status = 200, body = crate::openapi::Rooms), (status = 401, description = "unauthorized", body = crate::openapi::ErrorBody), (status = 429, description = "rate_limited (Retry-After)", body = crate::openapi::ErrorBody)))]
pub async fn list_rooms(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let who = caller(&state, &headers, None).await?;
    let mut rooms = Vec::new();
    for r in state.store.rooms().await? {
        let unread = state.store.unread_count(&r.room_id, &who.user).await?;
        rooms.push(room_json(&r, unread));
    }
    Ok(Json(json!({ "rooms": rooms })))
}

/// One room.
#[utoipa::path(get, path = "/api/rooms/{roomId}", tag = "rooms", security(("bearer" = [])), params(("roomId" = String, Path, description = "room id")),
    responses((status = 200, body = crate::openapi::Room), (status = 401, description = "unauthorized", body = crate::openapi::ErrorBody), (status = 429, description = "rate_limited (Retry-After)", body = crate::openapi::ErrorBody), (status = 404, description = "room_not_found", body = crate::openapi::ErrorBody)))]
pub async fn get_room(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(room): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let who = caller(&state, &headers, None).await?;
    let r = existing_room(&state, &room).await?;
    let unread = state.store.unread_count(&room, &who.user).await?;
    Ok(Json(room_json(&r, unread)))
}

/// Append an event: 201 once durable; a retry of a stored eventId gets 200 and the stored event.
#[utoipa::path(post, path = "/api/rooms/{roomId}/events", tag = "events", security(("bearer" = [])), params(("roomId" = String, Path, description = "room id")),
    request_body = crate::openapi::Submission,
    responses((status = 201, body = crate::openapi::ChatEvent), (status = 200, description = "a retry", body = crate::openapi::ChatEvent),
        (status = 401, description = "unauthorized", body = crate::openapi::ErrorBody), (status = 429, description = "rate_limited (Retry-After)", body = crate::openapi::ErrorBody), (status = 413, description = "payload_too_large", body = crate::openapi::ErrorBody), (status = 400, description = "bad_json", body = crate::openapi::ErrorBody), (status = 404, description = "room_not_found", body = crate::openapi::ErrorBody),
        (status = 422, description = "invalid_event, content_empty, content_too_long", body = crate::openapi::ErrorBody),
        (status = 409, description = "event_id_conflict, seq_conflict (with lastSeq)", body = crate::openapi::ErrorBody),
        (status = 404, description = "message_not_found", body = crate::openapi::ErrorBody),
        (status = 403, description = "forbidden", body = crate::openapi::ErrorBody),
        (status = 503, description = "unavailable: retry with the same eventId", body = crate::openapi::ErrorBody)))]
pub async fn post_event(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(room): Path<String>,
    body: Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let who = caller(&state, &headers, None).await?;
    let bytes = read_body(body).await?;
    let submission = Submission::from_json(&bytes)?;
    existing_room(&state, &room).await?;
    let cmd = submission.validate()?;
    let started = Instant::now();
    let r = state.appender.append(&room, &who.user, cmd).await;
    state
        .metrics
        .append_seconds
        .observe(started.elapsed().as_secs_f64());
    match r? {
        Appended::New(e) => Ok((
            StatusCode::CREATED,
            Json(serde_json::to_value(&*e).expect("event")),
        )),
        Appended::Existing(e) => Ok((
            StatusCode::OK,
            Json(serde_json::to_value(&e).expect("event")),
        )),
    }
}

/// Events with seq above afterSeq, ascending.
#[utoipa::path(get, path = "/api/rooms/{roomId}/events", tag = "events", security(("bearer" = [])),
    params(("roomId" = String, Path, description = "room id"), crate::openapi::EventsQuery),
    responses((status = 200, body = crate::openapi::EventPage), (status = 401, description = "unauthorized", body = crate::openapi::ErrorBody), (status = 429, description = "rate_limited (Retry-After)", body = crate::openapi::ErrorBody), (status = 400, description = "bad_query", body = crate::openapi::ErrorBody), (status = 404, description = "room_not_found", body = crate::openapi::ErrorBody)))]
pub async fn get_events(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(room): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    caller(&state, &headers, None).await?;
    let q = query_map(raw.as_deref());
    let after = u64_param(&q, "afterSeq")?.unwrap_or(0);
    let limit = u64_param(&q, "limit")?.unwrap_or(500).min(5000) as usize;
    existing_room(&state, &room).await?;
    let (events, last_seq) = state.store.events(&room, after, limit).await?;
    Ok(Json(json!({ "events": events, "lastSeq": last_seq })))
}

/// A page of the projection, or the room as it was at a past seq or time (time travel).
#[utoipa::path(get, path = "/api/rooms/{roomId}/messages", tag = "messages", security(("bearer" = [])),
    params(("roomId" = String, Path, description = "room id"), crate::openapi::MessagesQuery),
    responses((status = 200, body = crate::openapi::MessagePage), (status = 401, description = "unauthorized", body = crate::openapi::ErrorBody), (status = 429, description = "rate_limited (Retry-After)", body = crate::openapi::ErrorBody), (status = 400, description = "bad_query", body = crate::openapi::ErrorBody), (status = 404, description = "room_not_found", body = crate::openapi::ErrorBody)))]
pub async fn get_messages(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(room): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    caller(&state, &headers, None).await?;
    let q = query_map(raw.as_deref());
    let limit = u64_param(&q, "limit")?.unwrap_or(50).min(500) as usize;
    let before = u64_param(&q, "beforeSeq")?;
    let at_seq = u64_param(&q, "atSeq")?;
    let at = match q.get("at") {
        None => None,
        Some(v) => Some(
            Timestamp::parse_rfc3339(v)
                .ok_or_else(|| ApiError::bad_query("at must be an RFC 3339 time"))?,
        ),
    };
    if at_seq.is_some() && at.is_some() {
        return Err(ApiError::bad_query("give atSeq or at, not both"));
    }
    let record = existing_room(&state, &room).await?;
    let point = match (at_seq, at) {
        (Some(k), _) => Some(Point::Seq(k)),
        (_, Some(t)) => Some(Point::Time(t)),
        _ => None,
    };
    let Some(point) = point else {
        let page = state.store.views(&room, limit, before).await?;
        let views: Vec<ChatMessageView> = page
            .messages
            .iter()
            .map(|m| ChatMessageView::build(&room, m, &page.read_markers))
            .collect();
        return Ok(Json(json!({ "messages": views, "lastSeq": page.last_seq })));
    };
    let (views, as_of, last_seq) =
        time_travel(&state, &room, record.last_seq, point, limit, before).await?;
    Ok(Json(
        json!({ "messages": views, "lastSeq": last_seq, "asOfSeq": as_of }),
    ))
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
) -> Result<(Vec<ChatMessageView>, u64, u64), ApiError> {
    let k = match point {
        Point::Seq(k) if k > last_seq => {
            return Err(ApiError::bad_query(format!(
                "atSeq is beyond lastSeq {last_seq}"
            )))
        }
        Point::Seq(k) => k,
        Point::Time(t) => state.store.seq_at_time(room, t).await?,
    };
    let head = state.store.snapshot_head(room, k).await?;
    let base = head.as_ref().map_or(0, |h| h.seq);
    let mut tail = Vec::new();
    while base + (tail.len() as u64) < k {
        let after = base + tail.len() as u64;
        let want = (k - after).min(5000) as usize;
        let (events, _) = state.store.events(room, after, want).await?;
        if events.is_empty() {
            break;
        }
        tail.extend(events);
    }
    let corrupt = |e: String| ApiError::unavailable(format!("stored state is inconsistent: {e}"));
    let deletes = tail
        .iter()
        .filter(|e| e.event_type() == domain::EventType::MessageDeleted)
        .count();
    let mut slack = deletes;
    for _ in 0..8 {
        let mut s = match &head {
            Some(h) => {
                let plan = h.plan_window(limit, before, slack);
                load_snapshot(&*state.store, room, h, |i| plan.contains(&i)).await?
            }
            None => RoomState::new(),
        };
        let unknown = s.unknown_read_targets(&tail);
        if !unknown.is_empty() {
            s.provide_outside_seqs(state.store.seqs_of(room, &unknown).await?);
        }
        s.apply_all(tail.clone())
            .map_err(|e| corrupt(e.to_string()))?;
        match s.window_views(limit, before) {
            Ok(v) => return Ok((v, k, last_seq)),
            Err(Incomplete) => slack = slack * 2 + limit + 256,
        }
    }
    Err(corrupt("the window could not be built".into()))
}

/// The latest stored snapshot with seq ≤ atSeq.
#[utoipa::path(get, path = "/api/rooms/{roomId}/snapshot", tag = "messages", security(("bearer" = [])),
    params(("roomId" = String, Path, description = "room id"), crate::openapi::SnapshotQuery),
    responses((status = 200, body = crate::openapi::SnapshotBody), (status = 401, description = "unauthorized", body = crate::openapi::ErrorBody), (status = 429, description = "rate_limited (Retry-After)", body = crate::openapi::ErrorBody), (status = 400, description = "bad_query", body = crate::openapi::ErrorBody), (status = 404, description = "room_not_found", body = crate::openapi::ErrorBody)))]
pub async fn get_snapshot(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(room): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    caller(&state, &headers, None).await?;
    let q = query_map(raw.as_deref());
    let at = u64_param(&q, "atSeq")?;
    let r = existing_room(&state, &room).await?;
    if at.is_some_and(|n| n > r.last_seq) {
        return Err(ApiError::bad_query(format!(
            "atSeq is beyond lastSeq {}",
            r.last_seq
        )));
    }
    let n = at.unwrap_or(r.last_seq);
    let Some(head) = state.store.snapshot_head(&room, n).await? else {
        return Ok(Json(json!({ "seq": 0, "state": RoomState::new() })));
    };
    let s = load_snapshot(&*state.store, &room, &head, |_| true).await?;
    Ok(Json(json!({ "seq": head.seq, "state": s })))
}
