//! Request and response bodies: users and sessions, rooms, events, message
//! views and snapshots.

use crate::error::ApiError;
use domain::{ChatEvent, ChatMessageView, EventType, RoomState, Submission, Timestamp};
use serde::{Deserialize, Serialize, Serializer};
use std::borrow::{Borrow, Cow};
use std::collections::BTreeMap;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::{IntoParams, PartialSchema, ToSchema};
use uuid::Uuid;

use super::schema::*;

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
#[serde(rename_all = "camelCase")]
pub struct RoomList {
    pub rooms: Vec<RoomBody>,
    /// Present when a `limit` left rooms out: pass it as `after` for the
    /// next page.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<RoomCursor>)]
    pub next_after: Option<String>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api_types::ServerFrame;
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
}
