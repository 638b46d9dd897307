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
