//! Property-based fuzzing of everything that decodes outside input: events,
//! submissions, JSON logs, serialized states and snapshot parts, fed
//! arbitrary bytes, arbitrary JSON and valid documents with one field
//! replaced by anything. The property is that nothing panics, and that what
//! decodes is what it says (it re-encodes to itself, or is refused by the
//! next check with a contract code).
//!
//! Bounded by `PROPTEST_CASES` like the other property tests; a long run:
//!     PROPTEST_CASES=200000 cargo test --release -p domain --test decoding_fuzz

mod support;

use domain::{
    ChatEvent, ErrorCode, RoomState, SnapshotChunk, SnapshotHead, Submission, CHUNK_SPAN,
};
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use support::*;

/// Field names and values the decoders care about, so that arbitrary JSON
/// often comes close to a real document.
const KEYS: [&str; 14] = [
    "eventId",
    "roomId",
    "seq",
    "eventType",
    "senderId",
    "content",
    "targetMessageId",
    "timestamp",
    "expectedSeq",
    "messages",
    "lastSeq",
    "readMarkers",
    "chunks",
    "coverage",
];

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        Just(json!(1.0)),
        Just(json!(-0.0)),
        Just(json!(1e300)),
        ".*".prop_map(Value::String),
        prop::sample::select(vec![
            "MESSAGE_SENT",
            "MESSAGE_EDITED",
            "MESSAGE_DELETED",
            "MESSAGE_READ",
            "REACTION_ADDED",
            "REACTION_REMOVED",
            "ROOM_CREATED",
            "6f1c0a56-0d4c-4c1e-9a55-6a3f5f3c2b11",
            "6F1C0A56-0D4C-4C1E-9A55-6A3F5F3C2B11",
            "2026-11-25T08:00:00.123Z",
            "0000-01-01T00:00:00+01:00",
            "9999-12-31T23:59:59.999-01:00",
            "\u{a0}",
            " \t\n",
            "👍",
        ])
        .prop_map(|s| Value::String(s.to_owned())),
    ]
}

fn arbitrary_json() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(4, 48, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS.to_vec()), inner.clone()), 0..9)
                .prop_map(|kv| {
                    Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
                }),
            prop::collection::vec((".{0,8}", inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Feeds one document to every decoder of outside input.
fn decode_everything(bytes: &[u8]) {
    if let Ok(e) = ChatEvent::from_json(bytes) {
        // What decodes re-encodes to an event that decodes to itself.
        assert_eq!(ChatEvent::from_json(e.to_json().as_bytes()).unwrap(), e);
    }
    if let Ok(s) = Submission::from_json(bytes) {
        match s.validate() {
            Ok(cmd) => {
                // Deciding against a room with messages never panics either.
                let log = small_log();
                let _ = log.state.decide(&cmd, "alice");
                let _ = log.state.decide(&cmd, "bob");
            }
            Err(r) => assert!(matches!(
                r.code,
                ErrorCode::InvalidEvent | ErrorCode::ContentEmpty | ErrorCode::ContentTooLong
            )),
        }
    }
    let _ = RoomState::replay_json(bytes);
    let mut state = small_log().state;
    let _ = state.apply_json(bytes);
    if let Ok(s) = serde_json::from_slice::<RoomState>(bytes) {
        let _ = s.views();
        let _ = s.window_views(50, None);
        let _ = s.snapshot();
    }
    if let Ok(head) = serde_json::from_slice::<SnapshotHead>(bytes) {
        let _ = head.plan_window(50, None, 10);
        let _ = RoomState::from_snapshot(&head, Vec::new());
    }
    if let Ok(chunk) = serde_json::from_slice::<SnapshotChunk>(bytes) {
        let head = small_log().state.full_snapshot().unwrap().head;
        let _ = RoomState::from_snapshot(&head, vec![chunk]);
    }
}

/// A room with a few messages by alice and bob.
fn small_log() -> Log {
    let mut log = Log::new();
    log.send(1, "alice", "one");
    log.send(2, "bob", "two");
    log.send(3, "alice", "three");
    log
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        decode_everything(&bytes);
    }

    #[test]
    fn arbitrary_json_never_panics(v in arbitrary_json()) {
        decode_everything(v.to_string().as_bytes());
        // The same inside the places a log, a state and a head hold lists.
        decode_everything(json!([v.clone(), v.clone()]).to_string().as_bytes());
        decode_everything(json!({"messages": [v.clone()], "lastSeq": 3}).to_string().as_bytes());
        decode_everything(json!({"chunks": [v], "seq": CHUNK_SPAN}).to_string().as_bytes());
    }

    #[test]
    fn a_valid_document_with_one_field_replaced_never_panics(
        log in log_strategy(40),
        pick in any::<prop::sample::Index>(),
        key in prop::sample::select(KEYS.to_vec()),
        value in arbitrary_json(),
    ) {
        let event = &log.events[pick.index(log.events.len())];
        let mut doc: Value = serde_json::from_str(&event.to_json()).unwrap();
        doc[key] = value.clone();
        decode_everything(doc.to_string().as_bytes());
        // A submission, a serialized state and a snapshot head likewise.
        let mut sub = json!({"eventId": event.event_id, "eventType": event.event_type().as_str(),
            "content": event.kind.content(), "targetMessageId": event.kind.target()});
        sub[key] = value.clone();
        decode_everything(sub.to_string().as_bytes());
        let mut state = serde_json::to_value(&log.state).unwrap();
        state[key] = value.clone();
        decode_everything(state.to_string().as_bytes());
        let mut head = serde_json::to_value(log.state.full_snapshot().unwrap().head).unwrap();
        head[key] = value;
        decode_everything(head.to_string().as_bytes());
    }
}
