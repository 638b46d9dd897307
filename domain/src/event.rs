//! [`ChatEvent`]: one entry of a room's append-only log, and its JSON wire
//! format from the API contract (eight camelCase fields, unused ones `null`).
//!
//! In Rust an event is a common header plus an [`EventKind`] that carries
//! exactly the data its type needs; the wire format is produced and read by
//! hand-written serde impls through a flat [`WireEvent`].

use crate::error::DecodeError;
use crate::time::Timestamp;
use compact_str::CompactString;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Cow;
use std::fmt;
use uuid::Uuid;

/// The `eventType` values of the contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, strum::EnumIter)]
pub enum EventType {
    RoomCreated,
    MessageSent,
    MessageEdited,
    MessageDeleted,
    MessageRead,
    ReactionAdded,
    ReactionRemoved,
}

impl EventType {
    /// Every type, in the contract's order.
    pub fn all() -> impl Iterator<Item = EventType> {
        <EventType as strum::IntoEnumIterator>::iter()
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::RoomCreated => "ROOM_CREATED",
            EventType::MessageSent => "MESSAGE_SENT",
            EventType::MessageEdited => "MESSAGE_EDITED",
            EventType::MessageDeleted => "MESSAGE_DELETED",
            EventType::MessageRead => "MESSAGE_READ",
            EventType::ReactionAdded => "REACTION_ADDED",
            EventType::ReactionRemoved => "REACTION_REMOVED",
        }
    }

    /// Exact, case-sensitive match of the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        EventType::all().find(|t| t.as_str() == s)
    }

    /// Whether events of this type carry `content` (text, emoji or room name).
    pub fn uses_content(self) -> bool {
        !matches!(self, EventType::MessageDeleted | EventType::MessageRead)
    }

    /// Whether events of this type act on a message (`targetMessageId`).
    pub fn uses_target(self) -> bool {
        !matches!(self, EventType::RoomCreated | EventType::MessageSent)
    }

    /// Longest allowed content, in Unicode scalar values.
    pub fn content_limit(self) -> usize {
        match self {
            EventType::RoomCreated => crate::validation::ROOM_NAME_MAX,
            EventType::MessageSent | EventType::MessageEdited => crate::validation::MESSAGE_MAX,
            EventType::ReactionAdded | EventType::ReactionRemoved => crate::validation::EMOJI_MAX,
            EventType::MessageDeleted | EventType::MessageRead => 0,
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for EventType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        EventType::parse(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown eventType {s:?}")))
    }
}

/// What happened, with exactly the data that kind of event needs.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    RoomCreated {
        name: String,
    },
    MessageSent {
        content: CompactString,
    },
    MessageEdited {
        message_id: Uuid,
        content: CompactString,
    },
    MessageDeleted {
        message_id: Uuid,
    },
    MessageRead {
        message_id: Uuid,
    },
    ReactionAdded {
        message_id: Uuid,
        emoji: CompactString,
    },
    ReactionRemoved {
        message_id: Uuid,
        emoji: CompactString,
    },
}

impl EventKind {
    pub fn event_type(&self) -> EventType {
        match self {
            EventKind::RoomCreated { .. } => EventType::RoomCreated,
            EventKind::MessageSent { .. } => EventType::MessageSent,
            EventKind::MessageEdited { .. } => EventType::MessageEdited,
            EventKind::MessageDeleted { .. } => EventType::MessageDeleted,
            EventKind::MessageRead { .. } => EventType::MessageRead,
            EventKind::ReactionAdded { .. } => EventType::ReactionAdded,
            EventKind::ReactionRemoved { .. } => EventType::ReactionRemoved,
        }
    }

    /// The wire `content` field.
    pub fn content(&self) -> Option<&str> {
        match self {
            EventKind::RoomCreated { name } => Some(name),
            EventKind::MessageSent { content } | EventKind::MessageEdited { content, .. } => {
                Some(content)
            }
            EventKind::ReactionAdded { emoji, .. } | EventKind::ReactionRemoved { emoji, .. } => {
                Some(emoji)
            }
            EventKind::MessageDeleted { .. } | EventKind::MessageRead { .. } => None,
        }
    }

    /// The wire `targetMessageId` field.
    pub fn target(&self) -> Option<Uuid> {
        match self {
            EventKind::RoomCreated { .. } | EventKind::MessageSent { .. } => None,
            EventKind::MessageEdited { message_id, .. }
            | EventKind::MessageDeleted { message_id }
            | EventKind::MessageRead { message_id }
            | EventKind::ReactionAdded { message_id, .. }
            | EventKind::ReactionRemoved { message_id, .. } => Some(*message_id),
        }
    }

    /// Builds a kind from the wire's flat fields. Fields the type does not use
    /// are ignored; a missing field the type needs is an error message.
    pub fn from_parts(
        event_type: EventType,
        content: Option<CompactString>,
        target: Option<Uuid>,
    ) -> Result<Self, String> {
        let need_content =
            |c: Option<CompactString>| c.ok_or_else(|| format!("{event_type} needs content"));
        let need_target =
            |t: Option<Uuid>| t.ok_or_else(|| format!("{event_type} needs targetMessageId"));
        Ok(match event_type {
            EventType::RoomCreated => EventKind::RoomCreated {
                name: need_content(content)?.into(),
            },
            EventType::MessageSent => EventKind::MessageSent {
                content: need_content(content)?,
            },
            EventType::MessageEdited => EventKind::MessageEdited {
                message_id: need_target(target)?,
                content: need_content(content)?,
            },
            EventType::MessageDeleted => EventKind::MessageDeleted {
                message_id: need_target(target)?,
            },
            EventType::MessageRead => EventKind::MessageRead {
                message_id: need_target(target)?,
            },
            EventType::ReactionAdded => EventKind::ReactionAdded {
                message_id: need_target(target)?,
                emoji: need_content(content)?,
            },
            EventType::ReactionRemoved => EventKind::ReactionRemoved {
                message_id: need_target(target)?,
                emoji: need_content(content)?,
            },
        })
    }
}

/// One entry of a room's log. `seq` starts at 1 per room with no gaps;
/// `senderId` always comes from the authenticated user.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ChatEvent {
    pub event_id: Uuid,
    pub room_id: CompactString,
    pub seq: u64,
    pub sender_id: CompactString,
    pub timestamp: Timestamp,
    pub kind: EventKind,
}

impl ChatEvent {
    pub fn event_type(&self) -> EventType {
        self.kind.event_type()
    }

    /// Decodes one event from JSON, saying whether the document was
    /// malformed ([`DecodeError::BadJson`]) or well-formed but not a valid
    /// event ([`DecodeError::InvalidEvent`]). Never panics.
    pub fn from_json(bytes: &[u8]) -> Result<Self, DecodeError> {
        let wire: WireEvent = decode_object(bytes)?;
        wire.try_into().map_err(DecodeError::InvalidEvent)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a ChatEvent always serializes")
    }
}

/// Parses a JSON object into `T`, mapping every failure to `BadJson`.
/// A top-level value that is not an object is refused too (serde would
/// otherwise accept a positional array for a struct).
pub fn decode_object<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, DecodeError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err(DecodeError::BadJson(
            "the body must be a JSON object".into(),
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| DecodeError::BadJson(e.to_string()))
}

/// Parses a UUID in the contract's 36-character hyphenated form, any case.
pub fn parse_uuid(s: &str) -> Option<Uuid> {
    if s.len() != 36 {
        return None;
    }
    Uuid::try_parse(s).ok()
}

/// The flat wire form of a [`ChatEvent`]: every field present, strings as
/// sent, borrowed from the input where they have no escapes. Decoding into
/// it fails only for malformed documents.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireEvent<'a> {
    #[serde(borrow)]
    event_id: Cow<'a, str>,
    room_id: CompactString,
    seq: u64,
    #[serde(borrow)]
    event_type: Cow<'a, str>,
    sender_id: CompactString,
    #[serde(default)]
    content: Option<CompactString>,
    #[serde(default, borrow)]
    target_message_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    timestamp: Cow<'a, str>,
}

impl TryFrom<WireEvent<'_>> for ChatEvent {
    type Error = String;

    fn try_from(w: WireEvent<'_>) -> Result<Self, String> {
        let event_type = EventType::parse(&w.event_type)
            .ok_or_else(|| format!("unknown eventType {:?}", w.event_type))?;
        let event_id = parse_uuid(&w.event_id)
            .ok_or_else(|| format!("eventId {:?} is not a UUID", w.event_id))?;
        let target = match (event_type.uses_target(), w.target_message_id) {
            (true, Some(t)) => {
                Some(parse_uuid(&t).ok_or_else(|| format!("targetMessageId {t:?} is not a UUID"))?)
            }
            _ => None,
        };
        let timestamp = Timestamp::parse_rfc3339(&w.timestamp)
            .ok_or_else(|| format!("timestamp {:?} is not an RFC 3339 time", w.timestamp))?;
        let kind = EventKind::from_parts(event_type, w.content, target)?;
        Ok(ChatEvent {
            event_id,
            room_id: w.room_id,
            seq: w.seq,
            sender_id: w.sender_id,
            timestamp,
            kind,
        })
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WireEventRef<'a> {
    event_id: uuid::fmt::Hyphenated,
    room_id: &'a str,
    seq: u64,
    event_type: EventType,
    sender_id: &'a str,
    content: Option<&'a str>,
    target_message_id: Option<uuid::fmt::Hyphenated>,
    timestamp: Timestamp,
}

impl Serialize for ChatEvent {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        WireEventRef {
            event_id: self.event_id.hyphenated(),
            room_id: &self.room_id,
            seq: self.seq,
            event_type: self.event_type(),
            sender_id: &self.sender_id,
            content: self.kind.content(),
            target_message_id: self.kind.target().map(|t| t.hyphenated()),
            timestamp: self.timestamp,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for ChatEvent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        WireEvent::deserialize(d)?
            .try_into()
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{"eventId":"6f1c0a56-0d4c-4c1e-9a55-6a3f5f3c2b11","roomId":"general","seq":7,"eventType":"MESSAGE_SENT","senderId":"alice","content":"hello","targetMessageId":null,"timestamp":"2026-11-25T08:00:00.123Z"}"#;

    #[test]
    fn decodes_and_writes_the_contract_sample_exactly() {
        let e = ChatEvent::from_json(SAMPLE.as_bytes()).unwrap();
        assert_eq!(e.seq, 7);
        assert_eq!(
            e.kind,
            EventKind::MessageSent {
                content: "hello".into()
            }
        );
        assert_eq!(e.to_json(), SAMPLE);
    }

    #[test]
    fn content_of_any_length_and_escapes_survives_decoding() {
        let contents = [
            "",
            "ok",
            "exactly twenty-four byte",
            "well past the inline size of a string",
        ];
        for content in contents {
            let escaped = format!(r#"{content} \"quoted\" \u00e9 \\ 🎉"#);
            for text in [content.to_owned(), escaped] {
                let field = format!("\"content\":\"{text}\"");
                let json = SAMPLE.replace("\"content\":\"hello\"", &field);
                let e = ChatEvent::from_json(json.as_bytes()).unwrap();
                let want: String = serde_json::from_str(&format!("\"{text}\"")).unwrap();
                assert_eq!(e.kind.content(), Some(want.as_str()));
                assert_eq!(ChatEvent::from_json(e.to_json().as_bytes()).unwrap(), e);
            }
        }
    }

    #[test]
    fn every_field_is_written_even_when_null() {
        let e = ChatEvent {
            event_id: Uuid::from_u128(1),
            room_id: "r".into(),
            seq: 2,
            sender_id: "bob".into(),
            timestamp: Timestamp::from_millis(0).unwrap(),
            kind: EventKind::MessageDeleted {
                message_id: Uuid::from_u128(2),
            },
        };
        let v: serde_json::Value = serde_json::from_str(&e.to_json()).unwrap();
        let obj = v.as_object().unwrap();
        assert_eq!(obj.len(), 8);
        assert!(obj["content"].is_null());
        assert_eq!(
            obj["targetMessageId"],
            "00000000-0000-0000-0000-000000000002"
        );
        assert_eq!(obj["eventType"], "MESSAGE_DELETED");
    }

    #[test]
    fn uppercase_ids_are_accepted_and_written_lowercase() {
        let upper = SAMPLE.replace(
            "6f1c0a56-0d4c-4c1e-9a55-6a3f5f3c2b11",
            "6F1C0A56-0D4C-4C1E-9A55-6A3F5F3C2B11",
        );
        let e = ChatEvent::from_json(upper.as_bytes()).unwrap();
        assert_eq!(e.to_json(), SAMPLE);
    }

    #[test]
    fn malformed_documents_are_bad_json() {
        for doc in [
            "",
            "not json",
            "[1,2]",
            "{\"eventId\": 5}",
            &SAMPLE.replace("\"seq\":7", "\"seq\":-7"),
            &SAMPLE.replace("\"seq\":7", "\"seq\":\"7\""),
            &SAMPLE.replace("\"content\":\"hello\"", "\"content\":3"),
            &SAMPLE.replace(",\"roomId\":\"general\"", ""),
            &SAMPLE[..SAMPLE.len() - 1],
        ] {
            match ChatEvent::from_json(doc.as_bytes()) {
                Err(DecodeError::BadJson(_)) => {}
                other => panic!("{doc:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn well_formed_but_invalid_events_are_invalid_event() {
        for doc in [
            SAMPLE.replace("MESSAGE_SENT", "MESSAGE_SHOUTED"),
            SAMPLE.replace("MESSAGE_SENT", "message_sent"),
            SAMPLE.replace("6f1c0a56-0d4c-4c1e-9a55-6a3f5f3c2b11", "not-a-uuid"),
            SAMPLE.replace(
                "6f1c0a56-0d4c-4c1e-9a55-6a3f5f3c2b11",
                "6f1c0a560d4c4c1e9a556a3f5f3c2b11",
            ),
            SAMPLE.replace("2026-11-25T08:00:00.123Z", "yesterday"),
            SAMPLE.replace("MESSAGE_SENT", "MESSAGE_EDITED"),
            SAMPLE.replace("\"content\":\"hello\"", "\"content\":null"),
        ] {
            match ChatEvent::from_json(doc.as_bytes()) {
                Err(DecodeError::InvalidEvent(_)) => {}
                other => panic!("{doc:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn unused_fields_are_dropped_on_decode() {
        let doc = SAMPLE.replace(
            "\"targetMessageId\":null",
            "\"targetMessageId\":\"6f1c0a56-0d4c-4c1e-9a55-6a3f5f3c2b12\"",
        );
        let e = ChatEvent::from_json(doc.as_bytes()).unwrap();
        assert_eq!(e.kind.target(), None);
    }

    #[test]
    fn event_type_names_round_trip() {
        for t in EventType::all() {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
        }
    }
}
