//! The OpenAPI 3 description served at `/api/openapi.json`, generated with
//! utoipa from the `#[utoipa::path]` annotations on the handlers. The schema
//! types below describe the JSON shapes of ../shared/API.md; the handlers
//! themselves produce them from the domain crate's types, which stay free
//! of server dependencies.
#![allow(dead_code)] // the types below exist for their schemas

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};

/// `{"error": {"code", "message"}}` (plus `lastSeq` for `seq_conflict`,
/// `retryAfter` on WebSocket `rate_limited` frames).
#[derive(ToSchema)]
pub struct ErrorBody {
    error: ErrorObject,
}

#[derive(ToSchema)]
#[schema(as = ErrorObject)]
pub struct ErrorObject {
    /// snake_case code, e.g. `bad_json`, `room_not_found`, `seq_conflict`.
    code: String,
    message: String,
    #[schema(rename = "lastSeq")]
    last_seq: Option<u64>,
}

#[derive(ToSchema)]
pub struct Credentials {
    #[schema(rename = "userId", pattern = "^[A-Za-z0-9_.-]{1,32}$")]
    user_id: String,
    #[schema(min_length = 8, max_length = 1024)]
    password: String,
}

#[derive(ToSchema)]
pub struct UserCreated {
    #[schema(rename = "userId")]
    user_id: String,
}

#[derive(ToSchema)]
pub struct Session {
    token: String,
    #[schema(rename = "userId")]
    user_id: String,
}

#[derive(ToSchema)]
pub struct NewRoom {
    #[schema(rename = "roomId", pattern = "^[A-Za-z0-9_.-]{1,32}$")]
    room_id: String,
    #[schema(min_length = 1, max_length = 100)]
    name: String,
}

#[derive(ToSchema)]
pub struct Room {
    #[schema(rename = "roomId")]
    room_id: String,
    name: String,
    #[schema(rename = "createdBy")]
    created_by: String,
    #[schema(rename = "createdAt", format = DateTime)]
    created_at: String,
    #[schema(rename = "lastSeq")]
    last_seq: u64,
    #[schema(rename = "unreadCount")]
    unread_count: u64,
}

#[derive(ToSchema)]
pub struct Rooms {
    rooms: Vec<Room>,
}

/// One event of a room's log; fields the type does not use are null.
#[derive(ToSchema)]
pub struct ChatEvent {
    #[schema(rename = "eventId", format = Uuid)]
    event_id: String,
    #[schema(rename = "roomId")]
    room_id: String,
    seq: u64,
    /// ROOM_CREATED, MESSAGE_SENT, MESSAGE_EDITED, MESSAGE_DELETED,
    /// MESSAGE_READ, REACTION_ADDED, REACTION_REMOVED
    #[schema(rename = "eventType")]
    event_type: String,
    #[schema(rename = "senderId")]
    sender_id: String,
    content: Option<String>,
    #[schema(rename = "targetMessageId", format = Uuid)]
    target_message_id: Option<String>,
    #[schema(format = DateTime)]
    timestamp: String,
}

/// A submitted event (body of the append route and of a WebSocket submit).
#[derive(ToSchema)]
pub struct Submission {
    #[schema(rename = "eventId", format = Uuid)]
    event_id: String,
    #[schema(rename = "eventType")]
    event_type: String,
    content: Option<String>,
    #[schema(rename = "targetMessageId", format = Uuid)]
    target_message_id: Option<String>,
    #[schema(rename = "expectedSeq")]
    expected_seq: Option<u64>,
}

#[derive(ToSchema)]
pub struct EventPage {
    events: Vec<ChatEvent>,
    #[schema(rename = "lastSeq")]
    last_seq: u64,
}

/// ChatMessageView.
#[derive(ToSchema)]
pub struct MessageView {
    #[schema(rename = "messageId", format = Uuid)]
    message_id: String,
    #[schema(rename = "roomId")]
    room_id: String,
    seq: u64,
    #[schema(rename = "senderId")]
    sender_id: String,
    content: String,
    #[schema(rename = "sentAt", format = DateTime)]
    sent_at: String,
    #[schema(rename = "editedAt", format = DateTime)]
    edited_at: Option<String>,
    /// emoji → sorted user ids
    reactions: std::collections::HashMap<String, Vec<String>>,
    #[schema(rename = "readBy")]
    read_by: Vec<String>,
}

#[derive(ToSchema)]
pub struct MessagePage {
    messages: Vec<MessageView>,
    #[schema(rename = "lastSeq")]
    last_seq: u64,
    /// Present in time travel: the point shown.
    #[schema(rename = "asOfSeq")]
    as_of_seq: Option<u64>,
}

#[derive(ToSchema)]
pub struct SnapshotBody {
    seq: u64,
    /// The domain crate's serialized room state (opaque to other clients).
    state: serde_json::Value,
}

#[derive(ToSchema)]
pub struct Health {
    /// "ok", or "unavailable" with a 503
    status: String,
    /// "embedded" or "mongodb"
    store: String,
    /// "local" or "redis"
    bus: String,
    #[schema(rename = "busConnected")]
    bus_connected: bool,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Events with seq above this (default 0).
    #[param(rename = "afterSeq")]
    after_seq: Option<u64>,
    /// At most this many (default 500, clamped to 5000).
    limit: Option<u64>,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MessagesQuery {
    /// Newest this many (default 50, clamped to 500).
    limit: Option<u64>,
    /// Only messages with a smaller seq.
    #[param(rename = "beforeSeq")]
    before_seq: Option<u64>,
    /// Time travel: the room right after this seq (not with `at`).
    #[param(rename = "atSeq")]
    at_seq: Option<u64>,
    /// Time travel: right after the last event with timestamp ≤ this RFC 3339 time.
    at: Option<String>,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SnapshotQuery {
    /// The latest snapshot with seq ≤ this (default lastSeq).
    #[param(rename = "atSeq")]
    at_seq: Option<u64>,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WsQuery {
    /// Send every event with seq above this, then live events.
    #[param(rename = "afterSeq")]
    after_seq: Option<u64>,
    /// The bearer token, for browsers (the Authorization header wins).
    token: Option<String>,
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Event-sourced chat", version = "1", description = "The contract of ../shared/API.md."),
    paths(
        crate::routes::users::create_user,
        crate::routes::users::sign_in,
        crate::routes::users::sign_out,
        crate::routes::rooms::create_room,
        crate::routes::rooms::list_rooms,
        crate::routes::rooms::get_room,
        crate::routes::rooms::post_event,
        crate::routes::rooms::get_events,
        crate::routes::rooms::get_messages,
        crate::routes::rooms::get_snapshot,
        crate::routes::ws::connect,
        crate::routes::ops::healthz,
        crate::routes::ops::metrics,
        crate::routes::ops::openapi,
    ),
    components(schemas(ErrorBody, ErrorObject, Credentials, UserCreated, Session, NewRoom, Room, Rooms,
        ChatEvent, Submission, EventPage, MessageView, MessagePage, SnapshotBody, Health)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

pub fn document() -> serde_json::Value {
    serde_json::to_value(ApiDoc::openapi()).expect("the OpenAPI document serializes")
}
