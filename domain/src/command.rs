//! The decision step: a client's submission is decoded ([`Submission`],
//! 400 `bad_json` on failure), checked on its own ([`Command`], 422 codes),
//! and finally decided against the room's state ([`RoomState::decide`],
//! 404 `message_not_found` / 403 `forbidden`). The server and the browser
//! call the same functions, in the contract's order.

use crate::error::{DecodeError, ErrorCode, Refusal};
use crate::event::{decode_object, parse_uuid, ChatEvent, EventKind, EventType};
use crate::state::RoomState;
use crate::validation::validate_text;
use compact_str::CompactString;
use serde::de::{self, Deserializer};
use serde::Deserialize;
use std::fmt;
use uuid::Uuid;

/// The body of `POST /api/rooms/{roomId}/events` (and the `event` of a
/// WebSocket submit), as sent. Unknown fields are ignored.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Submission {
    pub event_id: String,
    pub event_type: String,
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub target_message_id: Option<String>,
    /// Any non-negative JSON integer, as JSON Schema counts them: `2.0` and
    /// `2e0` are 2; beyond `u64` it saturates (and then never matches a
    /// room's last seq). `2.5` or `-1` is `bad_json`.
    #[serde(default, deserialize_with = "non_negative_integer")]
    pub expected_seq: Option<u64>,
}

/// Reads `null` or a non-negative integer written in any JSON number form.
fn non_negative_integer<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    struct NonNegative;
    impl<'de> de::Visitor<'de> for NonNegative {
        type Value = Option<u64>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a non-negative integer or null")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_any(NonNegative)
        }
        fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
            Ok(Some(n))
        }
        fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
            u64::try_from(n)
                .map(Some)
                .map_err(|_| E::invalid_value(de::Unexpected::Signed(n), &self))
        }
        fn visit_f64<E: de::Error>(self, n: f64) -> Result<Self::Value, E> {
            if n.is_finite() && n >= 0.0 && n.fract() == 0.0 {
                // `as` saturates: beyond u64 reads as u64::MAX.
                Ok(Some(n as u64))
            } else {
                Err(E::invalid_value(de::Unexpected::Float(n), &self))
            }
        }
    }
    d.deserialize_option(NonNegative)
}

impl Submission {
    /// Decodes a submission; every failure is `bad_json`.
    pub fn from_json(bytes: &[u8]) -> Result<Self, DecodeError> {
        decode_object(bytes)
    }

    /// The 422 checks, in the contract's order: type, ids, content.
    pub fn validate(self) -> Result<Command, Refusal> {
        let invalid = |m: String| Refusal::new(ErrorCode::InvalidEvent, m);
        let event_type = EventType::parse(&self.event_type)
            .ok_or_else(|| invalid(format!("unknown eventType {:?}", self.event_type)))?;
        if event_type == EventType::RoomCreated {
            return Err(invalid(
                "ROOM_CREATED is written by the server when a room is created".into(),
            ));
        }
        let event_id = parse_uuid(&self.event_id).ok_or_else(|| {
            invalid(format!(
                "eventId {:?} is not a UUID (36 characters, hyphenated)",
                self.event_id
            ))
        })?;
        let target = if event_type.uses_target() {
            let t = self
                .target_message_id
                .ok_or_else(|| invalid(format!("{event_type} needs targetMessageId")))?;
            // A UUID is normalized to lowercase; anything else can name no
            // message and is answered with 404 when decided.
            Some(match parse_uuid(&t) {
                Some(u) => u.hyphenated().to_string(),
                None => t,
            })
        } else {
            None
        };
        let content = if event_type.uses_content() {
            let what = match event_type {
                EventType::ReactionAdded | EventType::ReactionRemoved => "emoji",
                _ => "content",
            };
            validate_text(what, self.content.as_deref(), event_type.content_limit())?;
            self.content
        } else {
            None
        };
        Ok(Command {
            event_id,
            event_type,
            content,
            target,
            expected_seq: self.expected_seq,
        })
    }
}

/// A submission that passed the state-free checks. Fields a type does not
/// use are `None`; `target` is lowercase when it is a UUID.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    pub event_id: Uuid,
    pub event_type: EventType,
    pub content: Option<String>,
    pub target: Option<String>,
    pub expected_seq: Option<u64>,
}

impl Command {
    /// Whether `stored` is this same request, for idempotent retries: same
    /// sender and same payload (`eventType`, `content`, `targetMessageId`).
    pub fn is_retry_of(&self, stored: &ChatEvent, sender: &str) -> bool {
        stored.event_id == self.event_id
            && stored.sender_id == sender
            && stored.event_type() == self.event_type
            && stored.kind.content() == self.content.as_deref()
            && stored.kind.target().map(|t| t.hyphenated().to_string()) == self.target
    }

    /// Builds the command for a kind of event (used by clients that create
    /// events in code, such as the web app).
    pub fn from_kind(event_id: Uuid, kind: &EventKind) -> Self {
        Command {
            event_id,
            event_type: kind.event_type(),
            content: kind.content().map(str::to_owned),
            target: kind.target().map(|t| t.hyphenated().to_string()),
            expected_seq: None,
        }
    }
}

impl RoomState {
    /// Decides a command of `sender` against this state: the event kind to
    /// append, or the refusal (`message_not_found`, `forbidden`).
    pub fn decide(&self, cmd: &Command, sender: &str) -> Result<EventKind, Refusal> {
        let content = || CompactString::from(cmd.content.as_deref().unwrap_or_default());
        let target = || -> Result<&crate::message::Message, Refusal> {
            cmd.target
                .as_deref()
                .and_then(parse_uuid)
                .and_then(|id| self.message(id))
                .ok_or_else(|| {
                    Refusal::new(
                        ErrorCode::MessageNotFound,
                        "the target message does not exist or was deleted",
                    )
                })
        };
        let own = |verb: &str| -> Result<Uuid, Refusal> {
            let m = target()?;
            if m.sender_id != sender {
                return Err(Refusal::new(
                    ErrorCode::Forbidden,
                    format!("only the sender of a message may {verb} it"),
                ));
            }
            Ok(m.id)
        };
        Ok(match cmd.event_type {
            EventType::RoomCreated => {
                return Err(Refusal::new(
                    ErrorCode::InvalidEvent,
                    "ROOM_CREATED is written by the server when a room is created",
                ))
            }
            EventType::MessageSent => EventKind::MessageSent { content: content() },
            EventType::MessageEdited => EventKind::MessageEdited {
                message_id: own("edit")?,
                content: content(),
            },
            EventType::MessageDeleted => EventKind::MessageDeleted {
                message_id: own("delete")?,
            },
            EventType::MessageRead => EventKind::MessageRead {
                message_id: target()?.id,
            },
            EventType::ReactionAdded => EventKind::ReactionAdded {
                message_id: target()?.id,
                emoji: content(),
            },
            EventType::ReactionRemoved => EventKind::ReactionRemoved {
                message_id: target()?.id,
                emoji: content(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expected_seq(json: &str) -> Result<Option<u64>, DecodeError> {
        let doc =
            format!(r#"{{"eventId": "x", "eventType": "MESSAGE_SENT", "expectedSeq": {json}}}"#);
        Submission::from_json(doc.as_bytes()).map(|s| s.expected_seq)
    }

    #[test]
    fn expected_seq_is_any_non_negative_json_integer() {
        assert_eq!(expected_seq("7"), Ok(Some(7)));
        assert_eq!(expected_seq("75856.0"), Ok(Some(75856)));
        assert_eq!(expected_seq("1e3"), Ok(Some(1000)));
        assert_eq!(expected_seq("null"), Ok(None));
        assert_eq!(expected_seq("1e40"), Ok(Some(u64::MAX)));
        assert_eq!(expected_seq("18446744073709551615"), Ok(Some(u64::MAX)));
        assert_eq!(expected_seq("-0"), Ok(Some(0)));
        for bad in ["2.5", "-1", "-1.0", "\"3\"", "true", "[]", "{}"] {
            assert!(
                matches!(expected_seq(bad), Err(DecodeError::BadJson(_))),
                "{bad}"
            );
        }
        let absent = Submission::from_json(br#"{"eventId": "x", "eventType": "MESSAGE_SENT"}"#);
        assert_eq!(absent.unwrap().expected_seq, None);
    }
}
