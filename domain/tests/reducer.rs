//! Given/when/then tests of the reducer and the decision step, one or more
//! per event type and per refusal.

mod support;

use domain::{ApplyError, ChatEvent, ErrorCode, EventKind, EventType, RoomState, Submission};
use support::*;

fn submission(json: &str) -> Result<domain::Command, domain::Refusal> {
    Submission::from_json(json.as_bytes())
        .map_err(domain::Refusal::from)?
        .validate()
}

fn refused(r: Result<ChatEvent, domain::Refusal>) -> ErrorCode {
    r.expect_err("expected a refusal").code
}

// ---- ROOM_CREATED -------------------------------------------------------

#[test]
fn room_created_sets_the_room_facts() {
    // given nothing, when the room is created
    let log = Log::new();
    // then
    let info = log.state.info().unwrap();
    assert_eq!(info.room_id, ROOM);
    assert_eq!(info.name, "General");
    assert_eq!(info.created_by, "owner");
    assert_eq!(info.created_at, ts(0));
    assert_eq!(log.state.last_seq(), 1);
    assert_eq!(log.state.message_count(), 0);
}

#[test]
fn room_created_cannot_be_submitted_by_a_client() {
    let r = submission(
        r#"{"eventId":"6f1c0a56-0d4c-4c1e-9a55-6a3f5f3c2b11","eventType":"ROOM_CREATED","content":"x"}"#,
    );
    assert_eq!(r.unwrap_err().code, ErrorCode::InvalidEvent);
}

// ---- MESSAGE_SENT -------------------------------------------------------

#[test]
fn message_sent_adds_a_message() {
    let mut log = Log::new();
    log.tick(5);
    let e = log
        .submit(
            "alice",
            &cmd(id(7), EventType::MessageSent, Some("hello"), None),
        )
        .unwrap();
    assert_eq!(e.seq, 2);
    let m = log.state.message(id(7)).unwrap();
    assert_eq!(
        (m.seq, m.sender_id.as_str(), m.content.as_str()),
        (2, "alice", "hello")
    );
    assert_eq!(m.sent_at, ts(5));
    assert_eq!(m.edited_at, None);
    assert!(m.reactions.is_empty());
}

#[test]
fn message_sent_refuses_blank_and_missing_content() {
    for body in [
        r#"{"eventId":"6f1c0a56-0d4c-4c1e-9a55-6a3f5f3c2b11","eventType":"MESSAGE_SENT"}"#,
        r#"{"eventId":"6f1c0a56-0d4c-4c1e-9a55-6a3f5f3c2b11","eventType":"MESSAGE_SENT","content":null}"#,
        r#"{"eventId":"6f1c0a56-0d4c-4c1e-9a55-6a3f5f3c2b11","eventType":"MESSAGE_SENT","content":" \n\t\u3000 "}"#,
    ] {
        assert_eq!(
            submission(body).unwrap_err().code,
            ErrorCode::ContentEmpty,
            "{body}"
        );
    }
}

#[test]
fn message_sent_limits_content_to_4000_characters() {
    let ok = format!(
        r#"{{"eventId":"6f1c0a56-0d4c-4c1e-9a55-6a3f5f3c2b11","eventType":"MESSAGE_SENT","content":"{}"}}"#,
        "é".repeat(4000)
    );
    assert!(submission(&ok).is_ok());
    let long = ok.replace("\"é", "\"éé");
    assert_eq!(
        submission(&long).unwrap_err().code,
        ErrorCode::ContentTooLong
    );
}

#[test]
fn submission_decoding_separates_bad_json_from_invalid_events() {
    for body in [
        "",
        "nope",
        "[]",
        r#"["6f1c0a56-0d4c-4c1e-9a55-6a3f5f3c2b11","MESSAGE_SENT"]"#,
        r#"{"eventType":"MESSAGE_SENT","content":"x"}"#,
        r#"{"eventId":"6f1c0a56-0d4c-4c1e-9a55-6a3f5f3c2b11","content":"x"}"#,
        r#"{"eventId":5,"eventType":"MESSAGE_SENT","content":"x"}"#,
        r#"{"eventId":"6f1c0a56-0d4c-4c1e-9a55-6a3f5f3c2b11","eventType":"MESSAGE_SENT","content":5}"#,
        r#"{"eventId":"6f1c0a56-0d4c-4c1e-9a55-6a3f5f3c2b11","eventType":"MESSAGE_SENT","content":"x","expectedSeq":-1}"#,
        r#"{"eventId":"6f1c0a56-0d4c-4c1e-9a55-6a3f5f3c2b11","eventType":"MESSAGE_SENT","content":"x","expectedSeq":"3"}"#,
        r#"{"eventId":"6f1c0a56-0d4c-4c1e-9a55-6a3f5f3c2b11","eventType":"MESSAGE_EDITED","content":"x","targetMessageId":7}"#,
        r#"{"eventId":null,"eventType":"MESSAGE_SENT","content":"x"}"#,
    ] {
        let e = Submission::from_json(body.as_bytes()).unwrap_err();
        assert_eq!(e.code(), ErrorCode::BadJson, "{body}");
    }
    for body in [
        r#"{"eventId":"6f1c0a56-0d4c-4c1e-9a55-6a3f5f3c2b11","eventType":"MESSAGE_SHOUTED","content":"x"}"#,
        r#"{"eventId":"not-a-uuid","eventType":"MESSAGE_SENT","content":"x"}"#,
        r#"{"eventId":"{6f1c0a56-0d4c-4c1e-9a55-6a3f5f3c2b11}","eventType":"MESSAGE_SENT","content":"x"}"#,
        r#"{"eventId":"6f1c0a56-0d4c-4c1e-9a55-6a3f5f3c2b11","eventType":"MESSAGE_EDITED","content":"x"}"#,
        r#"{"eventId":"6f1c0a56-0d4c-4c1e-9a55-6a3f5f3c2b11","eventType":"MESSAGE_READ","targetMessageId":null}"#,
    ] {
        assert_eq!(
            submission(body).unwrap_err().code,
            ErrorCode::InvalidEvent,
            "{body}"
        );
    }
}

#[test]
fn checks_run_in_the_contract_order() {
    // Unknown type wins over a bad eventId and empty content.
    let r = submission(r#"{"eventId":"x","eventType":"NOPE"}"#);
    assert_eq!(r.unwrap_err().code, ErrorCode::InvalidEvent);
    // A bad eventId wins over empty content.
    let r = submission(r#"{"eventId":"x","eventType":"MESSAGE_SENT","content":""}"#);
    assert_eq!(r.unwrap_err().code, ErrorCode::InvalidEvent);
    // A missing target wins over empty content.
    let r = submission(
        r#"{"eventId":"6f1c0a56-0d4c-4c1e-9a55-6a3f5f3c2b11","eventType":"REACTION_ADDED"}"#,
    );
    assert_eq!(r.unwrap_err().code, ErrorCode::InvalidEvent);
}

#[test]
fn unknown_fields_and_unused_fields_are_ignored() {
    let c = submission(r#"{"eventId":"6F1C0A56-0D4C-4C1E-9A55-6A3F5F3C2B11","eventType":"MESSAGE_DELETED","content":"ignored","senderId":"mallory","seq":99,"targetMessageId":"00000000-0000-0000-0000-00000000000A"}"#).unwrap();
    assert_eq!(c.content, None);
    assert_eq!(
        c.event_id.to_string(),
        "6f1c0a56-0d4c-4c1e-9a55-6a3f5f3c2b11"
    );
    assert_eq!(
        c.target.as_deref(),
        Some("00000000-0000-0000-0000-00000000000a")
    );
}

// ---- MESSAGE_EDITED -----------------------------------------------------

#[test]
fn message_edited_replaces_content_and_sets_edited_at() {
    let mut log = Log::new();
    let m = log.send(7, "alice", "hello");
    log.tick(10);
    log.submit(
        "alice",
        &cmd(id(8), EventType::MessageEdited, Some("hello!"), Some(m)),
    )
    .unwrap();
    let msg = log.state.message(m).unwrap();
    assert_eq!(msg.content, "hello!");
    assert_eq!(msg.edited_at, Some(ts(10)));
    assert_eq!(msg.seq, 2, "a message keeps the seq of its MESSAGE_SENT");
}

#[test]
fn editing_to_the_same_text_changes_nothing() {
    let mut log = Log::new();
    let m = log.send(7, "alice", "hello");
    let before = log.state.message(m).unwrap().clone();
    log.tick(10);
    log.submit(
        "alice",
        &cmd(id(8), EventType::MessageEdited, Some("hello"), Some(m)),
    )
    .unwrap();
    assert_eq!(log.state.message(m).unwrap(), &before);
}

#[test]
fn only_the_sender_may_edit() {
    let mut log = Log::new();
    let m = log.send(7, "alice", "hello");
    let r = log.submit(
        "bob",
        &cmd(id(8), EventType::MessageEdited, Some("pwned"), Some(m)),
    );
    assert_eq!(refused(r), ErrorCode::Forbidden);
    assert_eq!(log.state.message(m).unwrap().content, "hello");
}

#[test]
fn editing_an_unknown_or_deleted_message_is_not_found() {
    let mut log = Log::new();
    let m = log.send(7, "alice", "hello");
    log.submit(
        "alice",
        &cmd(id(8), EventType::MessageDeleted, None, Some(m)),
    )
    .unwrap();
    for target in [m, id(999)] {
        let r = log.submit(
            "alice",
            &cmd(id(9), EventType::MessageEdited, Some("x"), Some(target)),
        );
        assert_eq!(refused(r), ErrorCode::MessageNotFound);
    }
    // A target that is not even a UUID names no message.
    let mut c = cmd(id(9), EventType::MessageEdited, Some("x"), None);
    c.target = Some("nope".into());
    assert_eq!(refused(log.submit("alice", &c)), ErrorCode::MessageNotFound);
}

#[test]
fn edited_content_is_limited_too() {
    let body = format!(
        r#"{{"eventId":"6f1c0a56-0d4c-4c1e-9a55-6a3f5f3c2b11","eventType":"MESSAGE_EDITED","targetMessageId":"6f1c0a56-0d4c-4c1e-9a55-6a3f5f3c2b12","content":"{}"}}"#,
        "a".repeat(4001)
    );
    assert_eq!(
        submission(&body).unwrap_err().code,
        ErrorCode::ContentTooLong
    );
    let body = r#"{"eventId":"6f1c0a56-0d4c-4c1e-9a55-6a3f5f3c2b11","eventType":"MESSAGE_EDITED","targetMessageId":"6f1c0a56-0d4c-4c1e-9a55-6a3f5f3c2b12","content":"  "}"#;
    assert_eq!(submission(body).unwrap_err().code, ErrorCode::ContentEmpty);
}

// ---- MESSAGE_DELETED ----------------------------------------------------

#[test]
fn message_deleted_removes_the_message_from_the_view() {
    let mut log = Log::new();
    let a = log.send(7, "alice", "one");
    let b = log.send(8, "alice", "two");
    log.submit(
        "alice",
        &cmd(id(9), EventType::MessageDeleted, None, Some(a)),
    )
    .unwrap();
    assert!(log.state.message(a).is_none());
    let ids: Vec<_> = log.state.messages().map(|m| m.id).collect();
    assert_eq!(ids, vec![b]);
}

#[test]
fn only_the_sender_may_delete() {
    let mut log = Log::new();
    let a = log.send(7, "alice", "one");
    let r = log.submit("bob", &cmd(id(9), EventType::MessageDeleted, None, Some(a)));
    assert_eq!(refused(r), ErrorCode::Forbidden);
    assert!(log.state.message(a).is_some());
}

#[test]
fn deleting_twice_is_not_found() {
    let mut log = Log::new();
    let a = log.send(7, "alice", "one");
    log.submit(
        "alice",
        &cmd(id(9), EventType::MessageDeleted, None, Some(a)),
    )
    .unwrap();
    let r = log.submit(
        "alice",
        &cmd(id(10), EventType::MessageDeleted, None, Some(a)),
    );
    assert_eq!(refused(r), ErrorCode::MessageNotFound);
}

// ---- MESSAGE_READ -------------------------------------------------------

#[test]
fn message_read_moves_the_marker_and_fills_read_by() {
    let mut log = Log::new();
    let a = log.send(7, "alice", "one"); // seq 2
    let b = log.send(8, "alice", "two"); // seq 3
    let c = log.send(9, "bob", "three"); // seq 4
    log.submit("bob", &cmd(id(10), EventType::MessageRead, None, Some(b)))
        .unwrap();
    assert_eq!(log.state.read_marker("bob"), 3);
    let views = log.state.views();
    assert_eq!(views[0].read_by, vec!["bob"]);
    assert_eq!(views[1].read_by, vec!["bob"]);
    assert!(
        views[2].read_by.is_empty(),
        "bob sent it; his own read does not count"
    );
    // A marker only moves forward.
    log.submit("bob", &cmd(id(11), EventType::MessageRead, None, Some(a)))
        .unwrap();
    assert_eq!(log.state.read_marker("bob"), 3);
    // readBy is sorted and excludes the sender.
    log.submit("carol", &cmd(id(12), EventType::MessageRead, None, Some(c)))
        .unwrap();
    log.submit("alice", &cmd(id(13), EventType::MessageRead, None, Some(c)))
        .unwrap();
    let views = log.state.views();
    assert_eq!(views[0].read_by, vec!["bob", "carol"]);
    assert_eq!(views[2].read_by, vec!["alice", "carol"]);
}

#[test]
fn a_read_marker_survives_the_deletion_of_its_message() {
    let mut log = Log::new();
    let a = log.send(7, "alice", "one");
    let b = log.send(8, "alice", "two");
    log.submit("bob", &cmd(id(10), EventType::MessageRead, None, Some(b)))
        .unwrap();
    log.submit(
        "alice",
        &cmd(id(11), EventType::MessageDeleted, None, Some(b)),
    )
    .unwrap();
    assert_eq!(log.state.read_marker("bob"), 3);
    assert_eq!(
        log.state.view_of(log.state.message(a).unwrap()).read_by,
        vec!["bob"]
    );
}

#[test]
fn reading_an_unknown_message_is_not_found() {
    let mut log = Log::new();
    let r = log.submit(
        "bob",
        &cmd(id(10), EventType::MessageRead, None, Some(id(3))),
    );
    assert_eq!(refused(r), ErrorCode::MessageNotFound);
}

#[test]
fn unread_count_counts_others_messages_above_the_marker() {
    let mut log = Log::new();
    log.send(7, "alice", "one");
    let b = log.send(8, "alice", "two");
    log.send(9, "bob", "mine");
    log.send(10, "alice", "three");
    assert_eq!(log.state.unread_count("bob"), 3);
    log.submit("bob", &cmd(id(11), EventType::MessageRead, None, Some(b)))
        .unwrap();
    assert_eq!(log.state.unread_count("bob"), 1);
    assert_eq!(log.state.unread_count("alice"), 1);
}

// ---- REACTION_ADDED / REACTION_REMOVED ---------------------------------

#[test]
fn reactions_add_and_remove_users() {
    let mut log = Log::new();
    let a = log.send(7, "alice", "one");
    log.submit(
        "carol",
        &cmd(id(8), EventType::ReactionAdded, Some("👍"), Some(a)),
    )
    .unwrap();
    log.submit(
        "bob",
        &cmd(id(9), EventType::ReactionAdded, Some("👍"), Some(a)),
    )
    .unwrap();
    log.submit(
        "bob",
        &cmd(id(10), EventType::ReactionAdded, Some("🎉"), Some(a)),
    )
    .unwrap();
    let v = log.state.view_of(log.state.message(a).unwrap());
    assert_eq!(v.reactions["👍"], vec!["bob", "carol"]);
    assert_eq!(v.reactions["🎉"], vec!["bob"]);
    log.submit(
        "bob",
        &cmd(id(11), EventType::ReactionRemoved, Some("🎉"), Some(a)),
    )
    .unwrap();
    let v = log.state.view_of(log.state.message(a).unwrap());
    assert!(
        !v.reactions.contains_key("🎉"),
        "an emoji with no users is gone"
    );
    assert_eq!(v.reactions.len(), 1);
}

#[test]
fn reacting_twice_or_removing_a_missing_reaction_changes_nothing() {
    let mut log = Log::new();
    let a = log.send(7, "alice", "one");
    log.submit(
        "bob",
        &cmd(id(8), EventType::ReactionAdded, Some("👍"), Some(a)),
    )
    .unwrap();
    let before = log.state.message(a).unwrap().clone();
    log.submit(
        "bob",
        &cmd(id(9), EventType::ReactionAdded, Some("👍"), Some(a)),
    )
    .unwrap();
    log.submit(
        "bob",
        &cmd(id(10), EventType::ReactionRemoved, Some("🎉"), Some(a)),
    )
    .unwrap();
    log.submit(
        "carol",
        &cmd(id(11), EventType::ReactionRemoved, Some("👍"), Some(a)),
    )
    .unwrap();
    assert_eq!(log.state.message(a).unwrap(), &before);
    assert_eq!(log.state.last_seq(), 6, "accepted events still take a seq");
}

#[test]
fn reactions_need_a_live_target_and_a_short_emoji() {
    let mut log = Log::new();
    let r = log.submit(
        "bob",
        &cmd(id(8), EventType::ReactionAdded, Some("👍"), Some(id(1))),
    );
    assert_eq!(refused(r), ErrorCode::MessageNotFound);
    let r = log.submit(
        "bob",
        &cmd(id(8), EventType::ReactionRemoved, Some("👍"), Some(id(1))),
    );
    assert_eq!(refused(r), ErrorCode::MessageNotFound);
    let body = format!(
        r#"{{"eventId":"6f1c0a56-0d4c-4c1e-9a55-6a3f5f3c2b11","eventType":"REACTION_ADDED","targetMessageId":"6f1c0a56-0d4c-4c1e-9a55-6a3f5f3c2b12","content":"{}"}}"#,
        "👍".repeat(17)
    );
    assert_eq!(
        submission(&body).unwrap_err().code,
        ErrorCode::ContentTooLong
    );
    let body = r#"{"eventId":"6f1c0a56-0d4c-4c1e-9a55-6a3f5f3c2b11","eventType":"REACTION_REMOVED","targetMessageId":"6f1c0a56-0d4c-4c1e-9a55-6a3f5f3c2b12"}"#;
    assert_eq!(submission(body).unwrap_err().code, ErrorCode::ContentEmpty);
}

// ---- ordering -----------------------------------------------------------

#[test]
fn a_gap_or_a_duplicate_seq_is_an_error_and_changes_nothing() {
    let mut log = Log::new();
    log.send(7, "alice", "one");
    let before = log.state.clone();
    let mut e = log.events[1].clone();
    e.seq = 5;
    assert_eq!(
        log.state.apply(e.clone()),
        Err(ApplyError::Gap {
            expected: 3,
            got: 5
        })
    );
    e.seq = 2;
    assert_eq!(
        log.state.apply(e),
        Err(ApplyError::Duplicate {
            expected: 3,
            got: 2
        })
    );
    assert_eq!(log.state, before);
}

#[test]
fn a_replay_stops_at_a_gap_and_reports_it() {
    // Long contents live on the heap: a replay that stops halfway keeps
    // what it applied and reports where it stopped.
    let mut log = Log::new();
    let text = "a message long enough to be stored on the heap";
    for n in 0..50 {
        log.send(100 + n, "alice", text);
    }
    let mut events = log.events.clone();
    events.remove(20);
    assert_eq!(
        RoomState::replay(events),
        Err(ApplyError::Gap {
            expected: 21,
            got: 22
        })
    );
    // Any iterator replays, not only an owned vector, and so does a vector
    // with room to spare.
    assert_eq!(
        RoomState::replay(log.events.iter().cloned()),
        Ok(log.state.clone())
    );
    let mut spare = Vec::with_capacity(1000);
    spare.extend(log.events.iter().cloned());
    assert_eq!(RoomState::replay(spare), Ok(log.state.clone()));
    assert_eq!(RoomState::replay(Vec::new()), Ok(RoomState::new()));
}

#[test]
fn an_event_of_another_room_is_an_error() {
    let mut log = Log::new();
    let mut e = log.events[0].clone();
    e.seq = 2;
    e.room_id = "other".into();
    e.kind = EventKind::MessageSent {
        content: "x".into(),
    };
    assert!(matches!(
        log.state.apply(e),
        Err(ApplyError::WrongRoom { .. })
    ));
}

#[test]
fn the_reducer_ignores_events_it_cannot_honour() {
    // Stored logs are validated, but apply stays total: another user's edit
    // or an unknown target changes nothing but the seq.
    let mut log = Log::new();
    let a = log.send(7, "alice", "one");
    let before: Vec<_> = log.state.messages().cloned().collect();
    log.push_kind(
        id(8),
        "bob",
        EventKind::MessageEdited {
            message_id: a,
            content: "x".into(),
        },
    );
    log.push_kind(id(9), "bob", EventKind::MessageDeleted { message_id: a });
    log.push_kind(
        id(10),
        "bob",
        EventKind::ReactionAdded {
            message_id: id(404),
            emoji: "x".into(),
        },
    );
    let after: Vec<_> = log.state.messages().cloned().collect();
    assert_eq!(before, after);
    assert_eq!(log.state.last_seq(), 5);
}

#[test]
fn is_retry_of_compares_sender_and_payload() {
    let mut log = Log::new();
    let c = cmd(id(7), EventType::MessageSent, Some("hello"), None);
    let stored = log.submit("alice", &c).unwrap();
    assert!(c.is_retry_of(&stored, "alice"));
    assert!(!c.is_retry_of(&stored, "bob"));
    let other = cmd(id(7), EventType::MessageSent, Some("hello!"), None);
    assert!(!other.is_retry_of(&stored, "alice"));
    let mut with_seq = c.clone();
    with_seq.expected_seq = Some(42);
    assert!(
        with_seq.is_retry_of(&stored, "alice"),
        "expectedSeq is not part of the payload"
    );
}

#[test]
fn replay_of_the_log_equals_the_live_state() {
    let mut log = Log::new();
    let a = log.send(7, "alice", "one");
    log.submit(
        "bob",
        &cmd(id(8), EventType::ReactionAdded, Some("👍"), Some(a)),
    )
    .unwrap();
    log.submit("bob", &cmd(id(9), EventType::MessageRead, None, Some(a)))
        .unwrap();
    let replayed = RoomState::replay(log.events.clone()).unwrap();
    assert_eq!(replayed, log.state);
}
