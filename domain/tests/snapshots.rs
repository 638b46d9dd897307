//! Snapshots, partial states, windows and time travel, given/when/then.

mod support;

use domain::{
    snapshot::SnapshotError, EventKind, EventType, Incomplete, Point, RoomState, SnapshotChunk,
    CHUNK_SPAN,
};
use std::collections::HashMap;
use support::*;

fn log_with_messages(n: u128) -> Log {
    let mut log = Log::new();
    for i in 0..n {
        log.tick(1);
        log.send(100 + i, USERS[(i % 3) as usize], &format!("message {i}"));
    }
    log
}

#[test]
fn a_full_snapshot_restores_the_same_state() {
    let log = log_with_messages(600);
    let snap = log.state.full_snapshot().unwrap();
    assert_eq!(snap.head.seq, 601);
    assert_eq!(snap.head.message_count(), 600);
    // 600 messages at seqs 2..=601 fall into chunks 0, 1, 2.
    let idx: Vec<u64> = snap.chunks.iter().map(|c| c.index).collect();
    assert_eq!(idx, vec![0, 1, 2]);
    assert!(snap
        .chunks
        .iter()
        .all(|c| c.messages.len() as u64 <= CHUNK_SPAN));
    let restored = RoomState::from_snapshot(&snap.head, snap.chunks).unwrap();
    assert_eq!(restored, log.state);
    assert!(restored.coverage().is_none());
}

#[test]
fn an_incremental_snapshot_writes_only_changed_chunks() {
    // given a room with a saved snapshot
    let mut log = log_with_messages(1000);
    let first = log.state.snapshot().unwrap();
    assert_eq!(
        first.chunks.len(),
        4,
        "the first snapshot writes every chunk"
    );
    log.state.mark_snapshot_saved(&first.head);
    // when an old message is edited and a new one is sent
    let old = id(100 + 3);
    log.submit(
        "alice",
        &cmd(
            id(5000),
            EventType::MessageEdited,
            Some("changed"),
            Some(old),
        ),
    )
    .unwrap();
    log.send(5001, "bob", "new");
    let second = log.state.snapshot().unwrap();
    // then only the old message's chunk and the newest chunk are written
    let written: Vec<u64> = second.chunks.iter().map(|c| c.index).collect();
    assert_eq!(written, vec![0, 3]);
    assert_eq!(
        second
            .head
            .chunks
            .iter()
            .find(|c| c.index == 1)
            .unwrap()
            .version,
        first.head.seq
    );
    assert_eq!(
        second
            .head
            .chunks
            .iter()
            .find(|c| c.index == 0)
            .unwrap()
            .version,
        second.head.seq
    );
    // and the head plus the stored versions rebuild the state
    let mut store: HashMap<(u64, u64), SnapshotChunk> = HashMap::new();
    for c in first.chunks.into_iter().chain(second.chunks.clone()) {
        store.insert((c.index, c.version), c);
    }
    let chunks = second
        .head
        .chunks
        .iter()
        .map(|c| store[&(c.index, c.version)].clone())
        .collect();
    assert_eq!(
        RoomState::from_snapshot(&second.head, chunks).unwrap(),
        log.state
    );
}

#[test]
fn a_replayed_state_saved_late_still_drops_an_emptied_chunk() {
    // Given a state replayed from its log (never saved: every chunk is due)
    let log = log_with_messages(300);
    let mut state = RoomState::replay(log.events.clone()).unwrap();
    let first = state.snapshot().unwrap();
    assert_eq!(first.chunks.len(), 2, "messages at seqs 2..=301");
    // whose snapshot is recorded as saved only after more events
    let mut seq = state.last_seq();
    let mut next = |kind: EventKind, sender: &str| {
        seq += 1;
        domain::ChatEvent {
            event_id: id(10_000 + u128::from(seq)),
            room_id: ROOM.into(),
            seq,
            sender_id: sender.into(),
            timestamp: ts(10_000 + seq as i64),
            kind,
        }
    };
    let doomed: Vec<_> = state.messages().filter(|m| m.seq <= 256).cloned().collect();
    let (first_victim, rest) = doomed.split_first().unwrap();
    let delete = |m: &domain::Message| EventKind::MessageDeleted { message_id: m.id };
    state
        .apply(next(delete(first_victim), &first_victim.sender_id))
        .unwrap();
    state.mark_snapshot_saved(&first.head);
    // when every other message of chunk 0 is deleted too
    for m in rest {
        state.apply(next(delete(m), &m.sender_id)).unwrap();
    }
    // then the next snapshot's directory no longer names chunk 0
    let second = state.snapshot().unwrap();
    let listed: Vec<u64> = second.head.chunks.iter().map(|c| c.index).collect();
    assert_eq!(listed, vec![1]);
    let chunks = second.chunks.clone();
    assert_eq!(
        RoomState::from_snapshot(&second.head, chunks).unwrap(),
        state
    );
}

#[test]
fn a_chunk_emptied_by_deletes_leaves_the_directory() {
    let mut log = Log::new();
    let a = log.send(1, "alice", "only one");
    let s = log.state.snapshot().unwrap();
    log.state.mark_snapshot_saved(&s.head);
    log.submit(
        "alice",
        &cmd(id(2), EventType::MessageDeleted, None, Some(a)),
    )
    .unwrap();
    let s = log.state.snapshot().unwrap();
    assert!(s.head.chunks.is_empty());
    assert!(s.chunks.is_empty());
    assert_eq!(
        RoomState::from_snapshot(&s.head, vec![]).unwrap(),
        log.state
    );
}

#[test]
fn a_delta_head_over_a_complete_one_restores_the_same_state() {
    // given a complete head saved at seq 1001
    let mut log = log_with_messages(1000);
    let base = log.state.snapshot().unwrap();
    log.state.mark_snapshot_saved(&base.head);
    let mut written: HashMap<(u64, u64), SnapshotChunk> = base
        .chunks
        .iter()
        .map(|c| ((c.index, c.version), c.clone()))
        .collect();
    let base_chunks: Vec<u64> = base.head.chunks.iter().map(|c| c.index).collect();
    // when an old message is edited and 300 more are sent
    log.submit(
        "alice",
        &cmd(
            id(9000),
            EventType::MessageEdited,
            Some("changed"),
            Some(id(103)),
        ),
    )
    .unwrap();
    for i in 0..300u128 {
        log.tick(1);
        log.send(20_000 + i, "bob", &format!("later {i}"));
    }
    let next = log.state.snapshot().unwrap();
    written.extend(
        next.chunks
            .iter()
            .map(|c| ((c.index, c.version), c.clone())),
    );
    // then the delta lists only the chunks written since the base
    let delta = next.head.delta_over(base.head.seq, &base_chunks).unwrap();
    assert_eq!(delta.base, Some(base.head.seq));
    let changed: Vec<u64> = delta.chunks.iter().map(|c| c.index).collect();
    assert_eq!(
        changed,
        vec![0, 3, 4, 5],
        "the edited chunk and the newest ones"
    );
    // and made complete again with its base, it restores the state
    let whole = delta.clone().on_top_of(&base.head).unwrap();
    assert_eq!(whole, next.head);
    let chunks = whole
        .chunks
        .iter()
        .map(|c| written[&(c.index, c.version)].clone())
        .collect();
    assert_eq!(RoomState::from_snapshot(&whole, chunks).unwrap(), log.state);
    // a delta goes only on top of its own base
    assert!(delta.on_top_of(&next.head).is_err());
}

#[test]
fn a_head_that_lost_a_chunk_of_its_base_is_no_delta() {
    let mut log = log_with_messages(600);
    let base = log.state.snapshot().unwrap();
    log.state.mark_snapshot_saved(&base.head);
    // every message of chunk 0 (seqs 2..=256) deleted
    for i in 0..255u128 {
        log.submit(
            USERS[(i % 3) as usize],
            &cmd(
                id(30_000 + i),
                EventType::MessageDeleted,
                None,
                Some(id(100 + i)),
            ),
        )
        .unwrap();
    }
    let next = log.state.snapshot().unwrap();
    assert_eq!(next.head.chunks[0].index, 1, "chunk 0 is gone");
    let base_chunks: Vec<u64> = base.head.chunks.iter().map(|c| c.index).collect();
    assert!(next.head.delta_over(base.head.seq, &base_chunks).is_none());
}

#[test]
fn mismatched_chunks_are_refused() {
    let log = log_with_messages(600);
    let snap = log.state.full_snapshot().unwrap();
    // not contiguous
    let gap = vec![snap.chunks[0].clone(), snap.chunks[2].clone()];
    assert!(matches!(
        RoomState::from_snapshot(&snap.head, gap),
        Err(SnapshotError(_))
    ));
    // wrong version
    let mut stale = snap.chunks.clone();
    stale[1].version -= 1;
    assert!(RoomState::from_snapshot(&snap.head, stale).is_err());
    // a message outside its chunk
    let mut moved = snap.chunks.clone();
    let m = moved[0].messages.pop().unwrap();
    moved[1].messages.insert(0, m);
    assert!(RoomState::from_snapshot(&snap.head, moved).is_err());
    // the same id twice (in two chunks)
    let mut twice = snap.chunks.clone();
    twice[2].messages[0].id = twice[0].messages[0].id;
    assert!(RoomState::from_snapshot(&snap.head, twice).is_err());
    // a head whose directory is out of order
    let mut head = snap.head.clone();
    head.chunks.swap(0, 1);
    assert!(RoomState::from_snapshot(&head, snap.chunks.clone()).is_err());
    // the same seq twice (within a chunk)
    let mut same_seq = snap.chunks.clone();
    same_seq[1].messages[1].seq = same_seq[1].messages[0].seq;
    assert!(RoomState::from_snapshot(&snap.head, same_seq).is_err());
}

#[test]
fn chunks_and_their_messages_load_in_any_order() {
    // Given a snapshot of 30,000 messages (past the index's recent cache)
    let log = log_with_messages(30_000);
    let snap = log.state.full_snapshot().unwrap();
    // When its chunks come in reverse order, with their messages reversed
    let mut shuffled = snap.chunks.clone();
    shuffled.reverse();
    for c in &mut shuffled {
        c.messages.reverse();
    }
    // Then the state is the same, and every message is found by id
    let restored = RoomState::from_snapshot(&snap.head, shuffled).unwrap();
    assert_eq!(restored, log.state);
    for m in log.state.messages() {
        assert_eq!(restored.message(m.id).map(|r| r.seq), Some(m.seq));
    }
}

#[test]
fn a_window_is_built_from_the_newest_chunks_and_the_tail() {
    // given a 2,000-message room snapshotted, then a tail of events
    let mut log = log_with_messages(2000);
    let snap = log.state.full_snapshot().unwrap();
    let tail_start = log.events.len();
    log.send(9000, "carol", "after the snapshot");
    let newest_old = id(100 + 1999);
    log.submit(
        "alice",
        &cmd(
            id(9001),
            EventType::ReactionAdded,
            Some("👍"),
            Some(newest_old),
        ),
    )
    .unwrap();
    let tail: Vec<_> = log.events[tail_start..].to_vec();
    // when 50 messages are asked for
    let plan = snap.head.plan_window(50, None, 0);
    assert_eq!(plan.len(), 1, "one chunk holds 50 messages: {plan:?}");
    let chunks = snap
        .chunks
        .iter()
        .filter(|c| plan.contains(&c.index))
        .cloned()
        .collect();
    let mut partial = RoomState::from_snapshot(&snap.head, chunks).unwrap();
    assert!(partial.coverage().is_some());
    assert!(partial.unknown_read_targets(&tail).is_empty());
    partial.apply_all(tail).unwrap();
    // then the window equals the full replay's
    assert_eq!(
        partial.window_views(50, None).unwrap(),
        log.state.window_views(50, None).unwrap()
    );
    // but a window reaching past what is loaded is refused, not wrong
    assert_eq!(partial.window_views(1000, None), Err(Incomplete));
}

#[test]
fn a_windowed_state_keeps_only_the_newest_messages_asked_for() {
    // given a 2,000-message room snapshotted, loaded from the chunks that
    // hold its newest 50 messages
    let mut log = log_with_messages(2000);
    let snap = log.state.full_snapshot().unwrap();
    let plan = snap.head.plan_window(50, None, 0);
    let chunks: Vec<SnapshotChunk> = snap
        .chunks
        .iter()
        .filter(|c| plan.contains(&c.index))
        .cloned()
        .collect();
    let mut partial = RoomState::from_snapshot(&snap.head, chunks.clone()).unwrap();
    let loaded = partial.messages().count();
    assert!(loaded > 50, "the chunks hold more: {loaded}");
    // when it keeps the newest 50
    assert_eq!(partial.keep_newest(50), loaded - 50);
    // then it holds those alone, its loaded range starting at the oldest
    let newest: Vec<u64> = log.state.messages().rev().take(50).map(|m| m.seq).collect();
    let kept: Vec<u64> = partial.messages().rev().map(|m| m.seq).collect();
    assert_eq!(kept, newest);
    assert_eq!(partial.coverage().unwrap().from, newest[49]);
    // and with the events after the snapshot (a message, a reaction and an
    // edit on kept messages, a reaction on a dropped one) its window is
    // the full replay's
    let tail_start = log.events.len();
    log.send(9000, "carol", "after the snapshot");
    let reactions = [(9001, 100 + 1999), (9002, 100 + 1000)];
    for (n, target) in reactions {
        log.submit(
            "alice",
            &cmd(
                id(n),
                EventType::ReactionAdded,
                Some("👍"),
                Some(id(target)),
            ),
        )
        .unwrap();
    }
    log.submit(
        USERS[1998 % 3],
        &cmd(
            id(9003),
            EventType::MessageEdited,
            Some("edited"),
            Some(id(100 + 1998)),
        ),
    )
    .unwrap();
    partial
        .apply_all(log.events[tail_start..].to_vec())
        .unwrap();
    assert_eq!(
        partial.window_views(50, None).unwrap(),
        log.state.window_views(50, None).unwrap()
    );
    // deletes then leave fewer than 50 kept (51 with the new message): the
    // window is refused, not short, until a page of older messages comes
    let tail_start = log.events.len();
    for (n, i) in [(9004, 1990), (9005, 1991)] {
        log.submit(
            USERS[(i % 3) as usize],
            &cmd(id(n), EventType::MessageDeleted, None, Some(id(100 + i))),
        )
        .unwrap();
    }
    partial
        .apply_all(log.events[tail_start..].to_vec())
        .unwrap();
    assert_eq!(partial.window_views(50, None), Err(Incomplete));
    let from = partial.coverage().unwrap().from;
    let page = log.state.window_views(10, Some(from)).unwrap();
    assert_eq!(partial.add_older(&page, from, false), Ok(10));
    assert_eq!(
        partial.window_views(50, None).unwrap(),
        log.state.window_views(50, None).unwrap()
    );
    // a complete state, a state of no more than asked for, and a window of
    // nothing are left whole
    let mut whole = log.state.clone();
    assert_eq!(whole.keep_newest(50), 0);
    assert_eq!(whole, log.state);
    let mut partial = RoomState::from_snapshot(&snap.head, chunks).unwrap();
    assert_eq!(partial.keep_newest(loaded), 0);
    assert_eq!(partial.keep_newest(0), 0);
    assert_eq!(partial.messages().count(), loaded);
}

#[test]
fn a_window_before_a_seq_loads_chunks_around_it() {
    let mut log = log_with_messages(3000);
    let snap = log.state.full_snapshot().unwrap();
    let tail_start = log.events.len();
    // bob reads a message between the window and the snapshot point
    let between = id(100 + 2500);
    log.submit(
        "bob",
        &cmd(id(9001), EventType::MessageRead, None, Some(between)),
    )
    .unwrap();
    let tail: Vec<_> = log.events[tail_start..].to_vec();
    let before = Some(1000);
    let plan = snap.head.plan_window(20, before, 0);
    assert!(plan.len() <= 2, "{plan:?}");
    let chunks = snap
        .chunks
        .iter()
        .filter(|c| plan.contains(&c.index))
        .cloned()
        .collect();
    let mut partial = RoomState::from_snapshot(&snap.head, chunks).unwrap();
    let unknown = partial.unknown_read_targets(&tail);
    assert_eq!(unknown, vec![between]);
    let seq_of: HashMap<_, _> = log.events.iter().map(|e| (e.event_id, e.seq)).collect();
    partial.provide_outside_seqs(unknown.iter().map(|u| (*u, seq_of[u])));
    partial.apply_all(tail).unwrap();
    let got = partial.window_views(20, before).unwrap();
    assert_eq!(got, log.state.window_views(20, before).unwrap());
    assert_eq!(got.len(), 20);
    assert!(got
        .iter()
        .filter(|v| v.sender_id != "bob")
        .all(|v| v.read_by.contains(&"bob".to_string())));
}

#[test]
fn time_travel_by_seq_and_by_time() {
    let mut log = Log::new(); // seq 1 at t=0
    log.tick(10);
    let a = log.send(1, "alice", "one"); // seq 2 at t=10
    log.tick(10);
    log.submit(
        "alice",
        &cmd(id(2), EventType::MessageEdited, Some("uno"), Some(a)),
    )
    .unwrap(); // seq 3 at t=20
    log.submit(
        "bob",
        &cmd(id(3), EventType::ReactionAdded, Some("👍"), Some(a)),
    )
    .unwrap(); // seq 4 at t=20
    log.tick(10);
    log.submit(
        "alice",
        &cmd(id(4), EventType::MessageDeleted, None, Some(a)),
    )
    .unwrap(); // seq 5 at t=30

    let at = |p| RoomState::at(log.events.clone(), p).unwrap();
    assert_eq!(at(Point::Seq(0)).last_seq(), 0);
    assert_eq!(at(Point::Seq(2)).message(a).unwrap().content, "one");
    assert_eq!(at(Point::Seq(3)).message(a).unwrap().content, "uno");
    assert!(at(Point::Seq(3)).message(a).unwrap().reactions.is_empty());
    assert!(at(Point::Seq(5)).message(a).is_none());
    // by time: the last event with timestamp ≤ t, both events at t=20 included
    assert_eq!(at(Point::Time(ts(-1))).last_seq(), 0);
    assert_eq!(at(Point::Time(ts(19))).last_seq(), 2);
    let s = at(Point::Time(ts(20)));
    assert_eq!(s.last_seq(), 4);
    assert_eq!(s.message(a).unwrap().reactions.users("👍").count(), 1);
    assert_eq!(at(Point::Time(ts(1_000))).last_seq(), 5);
}

#[test]
fn time_travel_starts_from_an_admitted_snapshot() {
    let mut log = log_with_messages(10); // seqs 1..=11, t = 0..=10
    let snap = log.state.full_snapshot().unwrap();
    log.tick(5);
    let first_new = log.send(50, "bob", "later"); // seq 12 at t=15
    log.tick(5);
    log.submit(
        "bob",
        &cmd(id(51), EventType::MessageDeleted, None, Some(first_new)),
    )
    .unwrap();
    assert!(Point::Time(ts(10)).admits(&snap.head));
    assert!(!Point::Time(ts(9)).admits(&snap.head));
    assert!(Point::Seq(11).admits(&snap.head));
    assert!(!Point::Seq(10).admits(&snap.head));
    let mut s = RoomState::from_snapshot(&snap.head, snap.chunks).unwrap();
    s.apply_until(log.events[11..].to_vec(), Point::Time(ts(17)))
        .unwrap();
    assert_eq!(
        s,
        RoomState::at(log.events.clone(), Point::Seq(12)).unwrap()
    );
    assert!(s.message(first_new).is_some());
}

#[test]
fn a_state_round_trips_through_json() {
    let mut log = log_with_messages(5);
    log.submit(
        "bob",
        &cmd(id(9), EventType::ReactionAdded, Some("👍"), Some(id(101))),
    )
    .unwrap();
    log.submit(
        "bob",
        &cmd(id(10), EventType::MessageRead, None, Some(id(102))),
    )
    .unwrap();
    let json = serde_json::to_string(&log.state).unwrap();
    let back: RoomState = serde_json::from_str(&json).unwrap();
    assert_eq!(back, log.state);
    assert_eq!(serde_json::to_string(&back).unwrap(), json);
    // and a corrupted one is refused, not loaded half-way
    let bad = json.replace("\"seq\":3", "\"seq\":2");
    assert!(serde_json::from_str::<RoomState>(&bad).is_err());
    let twice = json.replace(&id(102).to_string(), &id(101).to_string());
    assert!(serde_json::from_str::<RoomState>(&twice).is_err());
    // messages listed out of order load in seq order
    let mut value: serde_json::Value = serde_json::from_str(&json).unwrap();
    value["messages"].as_array_mut().unwrap().reverse();
    let reordered: RoomState = serde_json::from_value(value).unwrap();
    assert_eq!(reordered, log.state);
    let _ = EventKind::MessageSent {
        content: Default::default(),
    };
}

#[test]
fn pages_of_older_messages_complete_a_partial_state() {
    // given a room with reactions, an edit and a read marker, and a partial
    // state holding only the newest chunk of its snapshot
    let mut log = log_with_messages(700);
    log.submit(
        "bob",
        &cmd(
            id(9001),
            EventType::ReactionAdded,
            Some("👍"),
            Some(id(105)),
        ),
    )
    .unwrap();
    log.submit(
        "alice",
        &cmd(
            id(9002),
            EventType::MessageEdited,
            Some("edited"),
            Some(id(100)),
        ),
    )
    .unwrap();
    log.submit(
        "carol",
        &cmd(id(9003), EventType::MessageRead, None, Some(id(400))),
    )
    .unwrap();
    let snap = log.state.full_snapshot().unwrap();
    let plan = snap.head.plan_window(50, None, 0);
    let chunks = snap
        .chunks
        .iter()
        .filter(|c| plan.contains(&c.index))
        .cloned()
        .collect();
    let mut partial = RoomState::from_snapshot(&snap.head, chunks).unwrap();
    assert!(partial.message(id(105)).is_none());
    // when a client scrolls up, page by page (`/messages?beforeSeq`)
    let limit = 200;
    let mut pages = 0;
    loop {
        let before = partial.coverage().unwrap().from;
        if before <= 1 {
            break;
        }
        let page = log.state.window_views(limit, Some(before)).unwrap();
        let reaches_start = page.len() < limit;
        let added = partial.add_older(&page, before, reaches_start).unwrap();
        assert_eq!(added, page.len());
        pages += 1;
    }
    // then it shows every message as the whole state does, and decides on
    // the older ones too
    assert!(pages >= 3);
    assert_eq!(partial.views(), log.state.views());
    assert_eq!(
        partial.window_views(1000, None).unwrap(),
        log.state.window_views(1000, None).unwrap()
    );
    let edit = cmd(
        id(9004),
        EventType::MessageEdited,
        Some("again"),
        Some(id(103)),
    );
    assert_eq!(
        partial.decide(&edit, "alice"),
        log.state.decide(&edit, "alice")
    );
    // a page that does not reach the loaded range is refused; a complete
    // state takes nothing
    let mut partial = RoomState::from_snapshot(
        &snap.head,
        snap.chunks
            .iter()
            .filter(|c| plan.contains(&c.index))
            .cloned()
            .collect(),
    )
    .unwrap();
    let from = partial.coverage().unwrap().from;
    let early = log.state.window_views(10, Some(from - 100)).unwrap();
    assert_eq!(
        partial.add_older(&early, from - 100, false),
        Err(Incomplete)
    );
    let mut whole = log.state.clone();
    assert_eq!(whole.add_older(&early, 50, false), Ok(0));
    assert_eq!(whole, log.state);
}
