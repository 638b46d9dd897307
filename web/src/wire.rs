//! The JSON bodies of the HTTP API (docs/api.md) that the app reads, and
//! the WebSocket frames it reads and writes. Events, states and message
//! views are the domain's own types; this module only adds the envelopes.

use domain::{ChatEvent, ChatMessageView, PendingEvent, RoomState, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use uuid::Uuid;

/// The error object of every error answer and `error` frame.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorInfo {
    pub code: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub last_seq: Option<u64>,
    #[serde(default)]
    pub retry_after: Option<u64>,
}

impl ErrorInfo {
    /// Refusals that say "not now" rather than "no": the event is kept and
    /// sent again (rate limit, store unavailable).
    pub fn is_transient(&self) -> bool {
        matches!(
            self.code.as_str(),
            "rate_limited" | "unavailable" | "internal"
        )
    }
}

#[derive(Deserialize)]
pub struct ErrorBody {
    pub error: ErrorInfo,
}

/// One room of `GET /api/rooms`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomSummary {
    pub room_id: String,
    pub name: String,
    pub created_by: String,
    pub created_at: Timestamp,
    pub last_seq: u64,
    pub unread_count: u64,
}

#[derive(Deserialize)]
pub struct RoomList {
    pub rooms: Vec<RoomSummary>,
}

/// `GET /api/rooms/{id}/snapshot`: the domain's state at `seq`.
#[derive(Deserialize)]
pub struct SnapshotBody {
    pub seq: u64,
    pub state: RoomState,
}

/// `GET /api/rooms/{id}/events`, its events left undecoded so that they
/// can be replayed as they are decoded ([`RoomState::apply_json`]).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawEventsPage<'a> {
    #[serde(borrow)]
    pub events: &'a RawValue,
    pub last_seq: u64,
}

/// `GET /api/rooms/{id}/events`, decoded.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventsPage {
    pub events: Vec<ChatEvent>,
    pub last_seq: u64,
}

/// `GET /api/rooms/{id}/messages`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessagesPage {
    pub messages: Vec<ChatMessageView>,
    pub last_seq: u64,
}

/// A frame from the room's WebSocket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerFrame {
    /// An event of the room, in seq order.
    Event(ChatEvent),
    /// The answer to one of our submits: the stored event.
    Ack(ChatEvent),
    /// A refused submit (`event_id` set) or a bad frame of ours.
    Error {
        event_id: Option<Uuid>,
        error: ErrorInfo,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Frame {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    event_id: Option<Uuid>,
    #[serde(default)]
    event: Option<ChatEvent>,
    #[serde(default)]
    error: Option<ErrorInfo>,
}

impl ServerFrame {
    pub fn decode(text: &str) -> Result<ServerFrame, String> {
        let f: Frame = serde_json::from_slice(text.as_bytes()).map_err(|e| e.to_string())?;
        match (f.kind.as_str(), f.event, f.error) {
            ("event", Some(e), _) => Ok(ServerFrame::Event(e)),
            ("ack", Some(e), _) => Ok(ServerFrame::Ack(e)),
            ("error", _, Some(error)) => Ok(ServerFrame::Error {
                event_id: f.event_id,
                error,
            }),
            (kind, _, _) => Err(format!("unexpected frame {kind:?}")),
        }
    }
}

/// The `submit` frame for a pending event.
pub fn submit_frame(event: &PendingEvent) -> String {
    #[derive(Serialize)]
    struct Submit<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        event: &'a PendingEvent,
    }
    serde_json::to_string(&Submit {
        kind: "submit",
        event,
    })
    .expect("a pending event always serializes")
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const EVENT: &str = r#"{"eventId":"6f1c0a56-0d4c-4c1e-9a55-6a3f5f3c2b11","roomId":"general","seq":8,"eventType":"MESSAGE_SENT","senderId":"bob","content":"hi","targetMessageId":null,"timestamp":"2026-11-25T08:00:00.123Z"}"#;

    #[test]
    fn decodes_the_three_frames_of_the_contract() {
        let e = ServerFrame::decode(&format!(r#"{{"type":"event","event":{EVENT}}}"#)).unwrap();
        assert!(matches!(e, ServerFrame::Event(ref ev) if ev.seq == 8));
        let a = ServerFrame::decode(&format!(
            r#"{{"type":"ack","eventId":"6f1c0a56-0d4c-4c1e-9a55-6a3f5f3c2b11","event":{EVENT}}}"#
        ))
        .unwrap();
        assert!(matches!(a, ServerFrame::Ack(ref ev) if ev.sender_id == "bob"));
        let err = ServerFrame::decode(
            r#"{"type":"error","eventId":"6f1c0a56-0d4c-4c1e-9a55-6a3f5f3c2b11","error":{"code":"rate_limited","message":"slow down","retryAfter":2}}"#,
        )
        .unwrap();
        let ServerFrame::Error { event_id, error } = err else {
            panic!("{err:?}")
        };
        assert!(event_id.is_some());
        assert_eq!(error.retry_after, Some(2));
        assert!(error.is_transient());
        let bad = ServerFrame::decode(
            r#"{"type":"error","eventId":null,"error":{"code":"bad_json","message":"x"}}"#,
        )
        .unwrap();
        assert!(matches!(bad, ServerFrame::Error { event_id: None, .. }));
        assert!(ServerFrame::decode(r#"{"type":"hello"}"#).is_err());
        assert!(ServerFrame::decode("nope").is_err());
    }
}
