//! The optimistic layer, given/when/then.

mod support;

use domain::{ApplyError, ErrorCode, EventType, OptimisticRoom};
use support::*;

#[test]
fn a_submitted_message_shows_at_once_and_is_confirmed_later() {
    // given alice's view of a room
    let mut server = Log::new();
    let mut room = OptimisticRoom::new("alice", server.state.clone());
    // when she sends a message
    let c = cmd(id(7), EventType::MessageSent, Some("hello"), None);
    let p = room.submit(&c, ts(100)).unwrap();
    // then it shows at once, pending, while the confirmed state is unchanged
    assert_eq!(room.shown().message(id(7)).unwrap().content, "hello");
    assert!(room.is_pending(id(7)));
    assert!(room.confirmed().message(id(7)).is_none());
    assert_eq!(p.command(), c);
    // when the server stores it (with its own time)
    server.tick(3);
    let stored = server.submit("alice", &c).unwrap();
    let dropped = room.receive(stored.clone()).unwrap();
    // then it is confirmed, with the server's time
    assert!(dropped.is_empty());
    assert!(room.pending().is_empty());
    assert_eq!(room.shown(), &server.state);
    assert_eq!(room.shown().message(id(7)).unwrap().sent_at, ts(3));
    // and the ack's copy of the same event changes nothing
    assert!(room.receive(stored).unwrap().is_empty());
    assert_eq!(room.shown(), &server.state);
}

#[test]
fn a_refused_event_is_dropped() {
    let server = Log::new();
    let mut room = OptimisticRoom::new("alice", server.state.clone());
    room.submit(
        &cmd(id(7), EventType::MessageSent, Some("hello"), None),
        ts(1),
    )
    .unwrap();
    assert!(room.reject(id(7)).is_empty());
    assert!(room.pending().is_empty());
    assert!(room.shown().message(id(7)).is_none());
    assert_eq!(room.shown(), &server.state);
    // rejecting an unknown id changes nothing
    assert!(room.reject(id(8)).is_empty());
}

#[test]
fn the_domain_refuses_locally_what_the_server_would_refuse() {
    let mut server = Log::new();
    let m = server.send(1, "bob", "bob's");
    let mut room = OptimisticRoom::new("alice", server.state.clone());
    let r = room.submit(
        &cmd(id(7), EventType::MessageEdited, Some("x"), Some(m)),
        ts(1),
    );
    assert_eq!(r.unwrap_err().code, ErrorCode::Forbidden);
    assert!(room.pending().is_empty());
}

#[test]
fn others_events_arriving_first_are_rebased_under_pending_ones() {
    let mut server = Log::new();
    let mut room = OptimisticRoom::new("alice", server.state.clone());
    let mine = cmd(id(7), EventType::MessageSent, Some("mine"), None);
    room.submit(&mine, ts(1)).unwrap();
    // bob's message reaches the server first
    let bobs = server.send(8, "bob", "bob's");
    room.receive(server.events.last().unwrap().clone()).unwrap();
    // alice still sees her pending message, now after bob's
    let shown: Vec<_> = room.shown().messages().map(|m| m.id).collect();
    assert_eq!(shown, vec![bobs, id(7)]);
    assert!(room.is_pending(id(7)));
    // and once confirmed, she sees exactly the server's state
    let stored = server.submit("alice", &mine).unwrap();
    room.receive(stored).unwrap();
    assert_eq!(room.shown(), &server.state);
}

#[test]
fn a_pending_event_made_invalid_by_a_rebase_is_reported() {
    // given bob's message and alice's pending reaction to it
    let mut server = Log::new();
    let m = server.send(1, "bob", "bob's");
    let mut room = OptimisticRoom::new("alice", server.state.clone());
    let react = cmd(id(7), EventType::ReactionAdded, Some("👍"), Some(m));
    room.submit(&react, ts(1)).unwrap();
    let keep = cmd(id(8), EventType::MessageSent, Some("still here"), None);
    room.submit(&keep, ts(2)).unwrap();
    // when bob's deletion arrives first
    server
        .submit("bob", &cmd(id(9), EventType::MessageDeleted, None, Some(m)))
        .unwrap();
    let dropped = room.receive(server.events.last().unwrap().clone()).unwrap();
    // then the reaction is dropped and reported; the message stays pending
    assert_eq!(dropped.len(), 1);
    assert_eq!(dropped[0].event.event_id, id(7));
    assert_eq!(dropped[0].reason.code, ErrorCode::MessageNotFound);
    assert_eq!(room.pending().len(), 1);
    assert!(room.shown().message(id(8)).is_some());
}

#[test]
fn a_gap_is_an_error_the_caller_sees() {
    let mut server = Log::new();
    let mut room = OptimisticRoom::new("alice", server.state.clone());
    server.send(1, "bob", "one");
    server.send(2, "bob", "two");
    let err = room.receive(server.events[2].clone()).unwrap_err();
    assert_eq!(
        err,
        ApplyError::Gap {
            expected: 2,
            got: 3
        }
    );
}

#[test]
fn an_event_sent_again_after_it_was_stored_is_confirmed_by_its_old_copy() {
    // given a message alice sent that the server stored, and a state loaded
    // after that (a reload) that already holds it
    let mut server = Log::new();
    let c = cmd(id(7), EventType::MessageSent, Some("hello"), None);
    let stored = server.submit("alice", &c).unwrap();
    server.send(8, "bob", "after");
    let mut room = OptimisticRoom::new("alice", server.state.clone());
    // when her queue submits it again
    room.submit(&c, ts(1)).unwrap();
    assert!(room.is_pending(id(7)));
    assert_eq!(
        room.shown().views(),
        server.state.views(),
        "the copy shows no second message"
    );
    // then the server's answer (the stored event, an old seq) confirms it
    assert!(room.receive(stored.clone()).unwrap().is_empty());
    assert!(room.pending().is_empty());
    assert_eq!(room.shown(), &server.state);
    // and an old event nobody waits for changes nothing
    assert!(room.receive(stored).unwrap().is_empty());
}

#[test]
fn a_pending_event_round_trips_through_json_as_a_submission() {
    let mut server = Log::new();
    let m = server.send(1, "bob", "bob's");
    let mut room = OptimisticRoom::new("alice", server.state.clone());
    let sent = room
        .submit(
            &cmd(id(7), EventType::MessageSent, Some("<b>hi</b>"), None),
            ts(5),
        )
        .unwrap();
    let react = room
        .submit(
            &cmd(id(8), EventType::ReactionAdded, Some("👍"), Some(m)),
            ts(6),
        )
        .unwrap();
    let read = room
        .submit(&cmd(id(9), EventType::MessageRead, None, Some(m)), ts(7))
        .unwrap();
    for p in [&sent, &react, &read] {
        let json = serde_json::to_string(p).unwrap();
        let back: domain::PendingEvent = serde_json::from_str(&json).unwrap();
        assert_eq!(&back, p);
        // the same document is a valid submission of the same command
        let s = domain::Submission::from_json(json.as_bytes()).unwrap();
        assert_eq!(s.validate().unwrap(), p.command());
    }
    let v: serde_json::Value = serde_json::to_value(&react).unwrap();
    assert_eq!(v["eventType"], "REACTION_ADDED");
    assert_eq!(v["targetMessageId"], m.hyphenated().to_string());
    assert_eq!(v["submittedAt"], ts(6).to_rfc3339());
    // a document missing what its type needs is refused
    let bad = r#"{"eventId":"00000000-0000-0000-0000-000000000001","eventType":"MESSAGE_EDITED","content":"x","submittedAt":"2026-01-01T00:00:00.000Z"}"#;
    assert!(serde_json::from_str::<domain::PendingEvent>(bad).is_err());
}

#[test]
fn older_messages_added_under_pending_ones_keep_them_pending() {
    // given a partial state (only the newest chunk) with a pending reaction
    let mut server = Log::new();
    for n in 0..600 {
        server.send(100 + n, "bob", "old");
    }
    let snap = server.state.full_snapshot().unwrap();
    let plan = snap.head.plan_window(10, None, 0);
    let chunks = snap
        .chunks
        .iter()
        .filter(|c| plan.contains(&c.index))
        .cloned()
        .collect();
    let partial = domain::RoomState::from_snapshot(&snap.head, chunks).unwrap();
    let mut room = OptimisticRoom::new("alice", partial);
    let newest = id(100 + 599);
    room.submit(
        &cmd(id(7), EventType::ReactionAdded, Some("👍"), Some(newest)),
        ts(1),
    )
    .unwrap();
    // when an older page is added
    let before = room.confirmed().coverage().unwrap().from;
    let page = server.state.window_views(100, Some(before)).unwrap();
    assert_eq!(room.add_older(&page, before, false), Ok(100));
    // then both states hold the older messages and the reaction stays pending
    assert!(room.shown().message(page[0].message_id).is_some());
    assert!(room.confirmed().message(page[0].message_id).is_some());
    assert!(room.is_pending(id(7)));
    let reacted = room.shown().message(newest).unwrap();
    assert_eq!(reacted.reactions.users("👍").collect::<Vec<_>>(), ["alice"]);
}
