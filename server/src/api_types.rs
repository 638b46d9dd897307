//! The API's JSON bodies, query strings and WebSocket frames as typed values:
//! handlers decode requests into these and return these, and the OpenAPI
//! document (`crate::openapi`) is generated from the same types, so the
//! description says what is sent, constraints included.
//!
//! Domain types that are sent (`ChatEvent`, `ChatMessageView`) get a wire
//! type here that is built from them and writes the same JSON; the domain
//! crate stays free of OpenAPI.

use crate::error::{ApiError, ErrorObject};
use domain::validation::{ID_MAX, PASSWORD_MAX, PASSWORD_MIN, ROOM_NAME_MAX};
use domain::{ChatEvent, ChatMessageView, EventType, RoomState, Submission, Timestamp};
use serde::{Deserialize, Serialize, Serializer};
use std::borrow::{Borrow, Cow};
use std::collections::{BTreeMap, HashMap};
use utoipa::openapi::schema::{
    KnownFormat, Object, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, SchemaType, Type,
};
use utoipa::openapi::RefOr;
use utoipa::{IntoParams, PartialSchema, ToSchema};
use uuid::Uuid;

// ---------------------------------------------------------------------------
// The constraints of the contract, as JSON Schema (ECMA-262 patterns).

/// A user id or room id: `^[A-Za-z0-9_.-]{1,32}$`, and not `.` or `..`
/// (what `domain::validation::validate_id` checks).
pub const ID_PATTERN: &str = r"^(?!\.\.?$)[A-Za-z0-9_.-]{1,32}$";

/// A UUID in the 36-character hyphenated form, any case (what
/// `domain::event::parse_uuid` reads).
pub const UUID_PATTERN: &str =
    "^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$";

/// A UUID as the server writes it: hyphenated, lowercase.
pub const LOWER_UUID_PATTERN: &str =
    "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$";

/// Not blank: at least one character outside Unicode `White_Space`, the set
/// `str::trim` removes before the domain's emptiness check. Spelled out
/// because ECMA's `\s` differs from it (it has U+FEFF and lacks U+0085).
pub const NOT_BLANK_PATTERN: &str =
    r"[^\t-\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]";

/// A time as the server writes it: RFC 3339, UTC, milliseconds.
pub const TIME_PATTERN: &str = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$";

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

fn nullable(t: Type) -> SchemaType {
    SchemaType::Array(vec![t, Type::Null])
}

fn id_schema() -> Object {
    string()
        .pattern(Some(ID_PATTERN))
        .min_length(Some(1))
        .max_length(Some(ID_MAX))
        .description(Some(
            "1 to 32 of A-Z a-z 0-9 _ . - (not `.` or `..`); case-sensitive",
        ))
        .examples(["general"])
        .build()
}

fn password_schema() -> Object {
    string()
        .min_length(Some(PASSWORD_MIN))
        .max_length(Some(PASSWORD_MAX))
        .description(Some("8 to 1024 characters (Unicode scalar values)"))
        .build()
}

/// Text the domain checks with `validate_text`: present, not blank after
/// trimming Unicode white space, at most `max` Unicode scalar values.
fn text_schema(max: usize) -> ObjectBuilder {
    string()
        .min_length(Some(1))
        .max_length(Some(max))
        .pattern(Some(NOT_BLANK_PATTERN))
}

fn room_name_schema() -> Object {
    text_schema(ROOM_NAME_MAX)
        .description(Some(
            "1 to 100 characters, not blank (empty after trimming Unicode white space)",
        ))
        .build()
}

fn uuid_schema() -> ObjectBuilder {
    string()
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
        .pattern(Some(UUID_PATTERN))
}

fn lower_uuid_schema() -> Object {
    string()
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
        .pattern(Some(LOWER_UUID_PATTERN))
        .build()
}

fn nullable_lower_uuid_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(nullable(Type::String))
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
        .pattern(Some(LOWER_UUID_PATTERN))
        .build()
}

fn time_schema() -> Object {
    string()
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
        .pattern(Some(TIME_PATTERN))
        .build()
}

fn nullable_time_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(nullable(Type::String))
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
        .pattern(Some(TIME_PATTERN))
        .build()
}

/// The schema of a seq or count in a query string: any non-negative
/// integer. No upper bound and no `int64` format: larger values read as the
/// largest (and clamp).
pub struct NonNegativeInteger;

impl PartialSchema for NonNegativeInteger {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(0))
            .description(Some(
                "Decimal digits; values beyond 2^64-1 read as the largest.",
            ))
            .into()
    }
}

impl ToSchema for NonNegativeInteger {}

/// The schema of a user or room id in a path.
pub struct Id;

impl PartialSchema for Id {
    fn schema() -> RefOr<Schema> {
        id_schema().into()
    }
}

impl ToSchema for Id {}

// ---------------------------------------------------------------------------
// Users and sessions.

/// Sign-up.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignUp {
    #[schema(schema_with = id_schema)]
    pub user_id: String,
    #[schema(schema_with = password_schema)]
    pub password: String,
}

/// Sign-in. The id format is not checked here: a wrong pair is 401.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignIn {
    pub user_id: String,
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserCreated {
    pub user_id: String,
}

/// A bearer token for `Authorization: Bearer <token>`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    pub token: String,
    pub user_id: String,
}

// ---------------------------------------------------------------------------
// Rooms.

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NewRoom {
    #[schema(schema_with = id_schema)]
    pub room_id: String,
    #[schema(schema_with = room_name_schema)]
    pub name: String,
}

/// A room, with the calling user's unread count.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Room)]
pub struct RoomBody {
    pub room_id: String,
    pub name: String,
    pub created_by: String,
    #[schema(schema_with = time_schema)]
    pub created_at: Timestamp,
    pub last_seq: u64,
    /// Messages of others above the caller's read marker.
    pub unread_count: u64,
}

impl RoomBody {
    pub fn new(r: crate::store::RoomRecord, unread_count: u64) -> Self {
        RoomBody {
            room_id: r.room_id,
            name: r.name,
            created_by: r.created_by,
            created_at: r.created_at,
            last_seq: r.last_seq,
            unread_count,
        }
    }
}

/// Every room, oldest first (by `createdAt`, then `roomId`).
#[derive(Debug, Serialize, ToSchema)]
pub struct RoomList {
    pub rooms: Vec<RoomBody>,
}

/// The path of every room route.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Path)]
pub struct RoomPath {
    /// The room's id.
    #[param(value_type = Id, inline)]
    pub room_id: String,
}

// ---------------------------------------------------------------------------
// Events.

/// An `eventType` of the contract (all seven occur in a room's log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WireEventType(pub EventType);

impl Serialize for WireEventType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.as_str())
    }
}

impl PartialSchema for WireEventType {
    fn schema() -> RefOr<Schema> {
        string()
            .enum_values(Some(EventType::all().map(EventType::as_str)))
            .into()
    }
}

impl ToSchema for WireEventType {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("EventType")
    }
}

/// One event of a room's log as the API writes it: all eight fields, those
/// the type does not use `null`. Borrows the event it is built from.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventBody<'a> {
    /// The client's idempotency key; a `MESSAGE_SENT`'s message id.
    #[schema(schema_with = lower_uuid_schema)]
    pub event_id: Uuid,
    pub room_id: &'a str,
    /// From 1 per room, no gaps.
    #[schema(minimum = 1)]
    pub seq: u64,
    pub event_type: WireEventType,
    pub sender_id: &'a str,
    /// Text, emoji or room name; `null` for `MESSAGE_DELETED` and `MESSAGE_READ`.
    #[schema(required = true)]
    pub content: Option<&'a str>,
    /// The message acted on; `null` for `ROOM_CREATED` and `MESSAGE_SENT`.
    #[schema(schema_with = nullable_lower_uuid_schema, required = true)]
    pub target_message_id: Option<Uuid>,
    #[schema(schema_with = time_schema)]
    pub timestamp: Timestamp,
}

impl<'a> From<&'a ChatEvent> for EventBody<'a> {
    fn from(e: &'a ChatEvent) -> Self {
        EventBody {
            event_id: e.event_id,
            room_id: &e.room_id,
            seq: e.seq,
            event_type: WireEventType(e.event_type()),
            sender_id: &e.sender_id,
            content: e.kind.content(),
            target_message_id: e.kind.target(),
            timestamp: e.timestamp,
        }
    }
}

/// A `ChatEvent` in a response, owned or shared: written as [`EventBody`].
#[derive(Debug, Clone)]
pub struct Event<E = ChatEvent>(pub E);

impl<E: Borrow<ChatEvent>> Serialize for Event<E> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        EventBody::from(self.0.borrow()).serialize(s)
    }
}

impl<E> PartialSchema for Event<E> {
    fn schema() -> RefOr<Schema> {
        <EventBody as PartialSchema>::schema()
    }
}

impl<E> ToSchema for Event<E> {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("ChatEvent")
    }
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        <EventBody as ToSchema>::schemas(schemas);
    }
}

/// Events with seq above `afterSeq`, ascending, and the room's last seq
/// read together with them.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventPage {
    pub events: Vec<Event>,
    pub last_seq: u64,
}

/// A submitted event: the body of `POST /api/rooms/{roomId}/events` and the
/// `event` of a WebSocket submit. The domain's [`Submission`] decodes it
/// (400 `bad_json` only for a wrong JSON type or a missing
/// `eventId`/`eventType`) and checks it (422); this type adds its schema.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct NewEvent(pub Submission);

impl NewEvent {
    /// Decodes a body, which must be a JSON object (400 `bad_json`
    /// otherwise).
    pub fn from_json(bytes: &[u8]) -> Result<Self, ApiError> {
        Ok(NewEvent(Submission::from_json(bytes)?))
    }

    /// Decodes the `event` of a WebSocket frame, which must be an object.
    pub fn from_value(v: Option<&serde_json::Value>) -> Result<Self, ApiError> {
        match v {
            Some(v @ serde_json::Value::Object(_)) => {
                NewEvent::deserialize(v).map_err(|e| ApiError::bad_json(e.to_string()))
            }
            _ => Err(ApiError::bad_json(
                "the frame's event must be a JSON object",
            )),
        }
    }
}

impl From<NewEvent> for Submission {
    fn from(e: NewEvent) -> Self {
        e.0
    }
}

impl PartialSchema for NewEvent {
    /// One alternative per `eventType` a client may send, built from the
    /// domain's rules (which fields a type uses, its content limit).
    /// `ROOM_CREATED` is not among them: the server writes it (422
    /// `invalid_event` when posted).
    fn schema() -> RefOr<Schema> {
        let mut one_of = OneOfBuilder::new().description(Some(
            "One alternative per eventType a client may send. ROOM_CREATED is \
             written by the server only (422 invalid_event when posted). Fields \
             a type does not use are ignored (but must be a string or null).",
        ));
        for t in EventType::all() {
            if t == EventType::RoomCreated {
                continue;
            }
            let mut v = ObjectBuilder::new()
                .title(Some(t.as_str()))
                .property("eventId", uuid_schema().description(Some(
                    "A UUID chosen by the client (36 characters, hyphenated, any case): the idempotency key within the room",
                )))
                .required("eventId")
                .property("eventType", string().enum_values(Some([t.as_str()])))
                .required("eventType")
                .property(
                    "expectedSeq",
                    ObjectBuilder::new()
                        .schema_type(nullable(Type::Integer))
                        .minimum(Some(0))
                        .description(Some(
                            "When present, must equal the room's last seq (409 seq_conflict \
                             otherwise). Any JSON integer, as JSON Schema counts them: 2.0 and \
                             2e0 are 2; 2.5 or -1 is 400 bad_json.",
                        )),
                );
            let unused = || {
                ObjectBuilder::new()
                    .schema_type(nullable(Type::String))
                    .description(Some("not used by this type: ignored"))
            };
            v = if t.uses_content() {
                let what = match t {
                    EventType::ReactionAdded | EventType::ReactionRemoved => "the emoji",
                    _ => "the text",
                };
                v.property(
                    "content",
                    text_schema(t.content_limit()).description(Some(format!(
                        "{what}: 1 to {} characters, not blank",
                        t.content_limit()
                    ))),
                )
                .required("content")
            } else {
                v.property("content", unused())
            };
            v = if t.uses_target() {
                v.property(
                    "targetMessageId",
                    uuid_schema().description(Some("the message acted on")),
                )
                .required("targetMessageId")
            } else {
                v.property("targetMessageId", unused())
            };
            one_of = one_of.item(v);
        }
        one_of.into()
    }
}

impl ToSchema for NewEvent {}

// ---------------------------------------------------------------------------
// Messages and snapshots.

/// One message as readers see it (`ChatMessageView`), as the API writes it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ChatMessageView)]
pub struct MessageBody {
    /// The eventId of its `MESSAGE_SENT`.
    #[schema(schema_with = lower_uuid_schema)]
    pub message_id: Uuid,
    pub room_id: String,
    /// The seq of its `MESSAGE_SENT`, kept for ever.
    #[schema(minimum = 1)]
    pub seq: u64,
    pub sender_id: String,
    pub content: String,
    #[schema(schema_with = time_schema)]
    pub sent_at: Timestamp,
    #[schema(schema_with = nullable_time_schema, required = true)]
    pub edited_at: Option<Timestamp>,
    /// Emoji → its users, sorted; `{}` when none.
    pub reactions: BTreeMap<String, Vec<String>>,
    /// Users other than the sender whose read marker is ≥ this seq, sorted.
    pub read_by: Vec<String>,
}

impl From<ChatMessageView> for MessageBody {
    fn from(v: ChatMessageView) -> Self {
        MessageBody {
            message_id: v.message_id,
            room_id: v.room_id,
            seq: v.seq,
            sender_id: v.sender_id,
            content: v.content,
            sent_at: v.sent_at,
            edited_at: v.edited_at,
            reactions: v.reactions,
            read_by: v.read_by,
        }
    }
}

/// A page of messages, oldest first, and the room's last seq.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessagePage {
    pub messages: Vec<MessageBody>,
    pub last_seq: u64,
    /// Time travel only: the room is shown right after this seq.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, minimum = 0)]
    pub as_of_seq: Option<u64>,
}

/// The latest stored snapshot at or before a seq.
#[derive(Debug, Serialize, ToSchema)]
pub struct SnapshotBody {
    /// The seq the state is at (0 with the empty state when none).
    #[schema(minimum = 0)]
    pub seq: u64,
    /// The domain crate's own serialized room state: the web app replays
    /// from it plus `/events?afterSeq=seq`; other clients treat it as opaque.
    #[schema(value_type = Object)]
    pub state: RoomState,
}

// ---------------------------------------------------------------------------
// Query strings. Each is read by the handler through `from_query`, which
// answers the contract's 400 `bad_query`.

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

// ---------------------------------------------------------------------------
// WebSocket frames and operations.

/// A frame the server sends on the WebSocket, one JSON text frame each.
/// (A client sends `{"type": "submit", "event": NewEvent}`.)
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ServerFrame<'a> {
    /// An event of the room: the backlog, then live, in seq order.
    Event {
        #[schema(value_type = Event)]
        event: EventBody<'a>,
    },
    /// The answer to a submit.
    Ack {
        #[serde(rename = "eventId")]
        #[schema(schema_with = lower_uuid_schema)]
        event_id: Uuid,
        #[schema(value_type = Event)]
        event: EventBody<'a>,
    },
    /// A refused submit (the HTTP route's codes), or a bad frame
    /// (`bad_json`, `eventId` null).
    Error {
        #[serde(rename = "eventId")]
        event_id: Option<String>,
        error: ErrorObject,
    },
}

impl ServerFrame<'_> {
    /// The frame as the text of a WebSocket message.
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).expect("frames always serialize")
    }
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    Ok,
    Unavailable,
}

/// Health of the store and the bus; with a 503 also the error object.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    pub status: HealthStatus,
    /// `embedded` or `mongodb`.
    pub store: &'static str,
    /// `local` or `redis`.
    pub bus: &'static str,
    /// Redis being down is not a 503.
    pub bus_connected: bool,
    /// With a 503: `unavailable`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub error: Option<ErrorObject>,
}

// ---------------------------------------------------------------------------

/// Decodes a JSON object body into `T` (400 `bad_json` otherwise), as the
/// domain decodes submissions.
pub fn json_object<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    Ok(domain::event::decode_object(bytes)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::{EventKind, Message};

    fn event(kind: EventKind) -> ChatEvent {
        ChatEvent {
            event_id: Uuid::from_u128(0xABCDEF),
            room_id: "general".into(),
            seq: 7,
            sender_id: "alice".into(),
            timestamp: Timestamp::parse_rfc3339("2026-11-25T08:00:00.123Z").unwrap(),
            kind,
        }
    }

    #[test]
    fn events_are_written_byte_for_byte_as_the_domain_writes_them() {
        let target = Uuid::from_u128(0xFEED);
        for kind in [
            EventKind::RoomCreated { name: "R".into() },
            EventKind::MessageSent {
                content: "hello \"you\" 🎉".into(),
            },
            EventKind::MessageDeleted { message_id: target },
            EventKind::ReactionAdded {
                message_id: target,
                emoji: "👍".into(),
            },
        ] {
            let e = event(kind);
            let ours = serde_json::to_string(&Event(&e)).unwrap();
            assert_eq!(ours, e.to_json());
            let frame = ServerFrame::Event {
                event: EventBody::from(&e),
            };
            assert_eq!(
                frame.to_text(),
                format!(r#"{{"type":"event","event":{}}}"#, e.to_json())
            );
        }
        let sample = r#"{"eventId":"6f1c0a56-0d4c-4c1e-9a55-6a3f5f3c2b11","roomId":"general","seq":7,"eventType":"MESSAGE_SENT","senderId":"alice","content":"hello","targetMessageId":null,"timestamp":"2026-11-25T08:00:00.123Z"}"#;
        let e = ChatEvent::from_json(sample.as_bytes()).unwrap();
        assert_eq!(serde_json::to_string(&Event(e)).unwrap(), sample);
    }

    #[test]
    fn message_views_are_written_as_the_domain_writes_them() {
        let mut state = RoomState::new();
        state
            .apply(event(EventKind::RoomCreated { name: "R".into() }).with_seq(1))
            .unwrap();
        let sent = event(EventKind::MessageSent {
            content: "hi".into(),
        })
        .with_seq(2);
        let id = sent.event_id;
        state.apply(sent).unwrap();
        let m: &Message = state.message(id).unwrap();
        let view = state.view_of(m);
        let domain_json = serde_json::to_string(&view).unwrap();
        assert_eq!(
            serde_json::to_string(&MessageBody::from(view)).unwrap(),
            domain_json
        );
        assert!(domain_json.contains(r#""reactions":{}"#), "{domain_json}");
        assert!(domain_json.contains(r#""editedAt":null"#), "{domain_json}");
    }

    trait WithSeq {
        fn with_seq(self, seq: u64) -> Self;
    }
    impl WithSeq for ChatEvent {
        fn with_seq(mut self, seq: u64) -> Self {
            self.seq = seq;
            self.event_id = Uuid::from_u128(u128::from(seq));
            self
        }
    }

    #[test]
    fn a_new_event_is_the_domains_submission_of_a_json_object() {
        let body = br#"{"eventId": "x", "eventType": "y", "expectedSeq": 75856.0}"#;
        let e = NewEvent::from_json(body).unwrap();
        assert_eq!(e.0, Submission::from_json(body).unwrap());
        assert_eq!(e.0.expected_seq, Some(75856));
        let bad = NewEvent::from_json(br#"{"eventId": "x", "eventType": "y", "expectedSeq": -1}"#);
        assert_eq!(bad.unwrap_err().code.as_str(), "bad_json");
        assert!(NewEvent::from_json(br#"["x", "y"]"#).is_err());
        assert!(NewEvent::from_value(Some(&serde_json::json!(["x", "y"]))).is_err());
        assert!(NewEvent::from_value(None).is_err());
    }

    #[test]
    fn the_not_blank_pattern_names_exactly_what_trim_removes() {
        // Every char `char::is_whitespace` accepts is in the pattern's class.
        let class: Vec<char> = {
            let mut v = vec!['\t', '\n', '\u{b}', '\u{c}', '\r', ' '];
            v.extend(['\u{85}', '\u{a0}', '\u{1680}']);
            v.extend('\u{2000}'..='\u{200a}');
            v.extend(['\u{2028}', '\u{2029}', '\u{202f}', '\u{205f}', '\u{3000}']);
            v
        };
        let all: Vec<char> = (0..=0x10FFFFu32)
            .filter_map(char::from_u32)
            .filter(|c| c.is_whitespace())
            .collect();
        assert_eq!(all, class);
        assert!(NOT_BLANK_PATTERN.contains(r"\t-\r \u0085\u00A0\u1680\u2000-\u200A"));
    }
}
