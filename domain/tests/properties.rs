//! Property tests over random valid logs. The number of cases comes from
//! `PROPTEST_CASES` (the test command bounds it; see the README).

#![allow(clippy::needless_range_loop)]

mod support;

use domain::{ChatEvent, EventKind, Incomplete, OptimisticRoom, Point, RoomState, SnapshotChunk};
use proptest::prelude::*;
use std::collections::{HashMap, VecDeque};
use support::*;

proptest! {
    #[test]
    fn snapshot_at_any_k_plus_tail_equals_full_replay(log in log_strategy(300), k in any::<usize>()) {
        let k = k % (log.events.len() + 1);
        let prefix = RoomState::replay(log.events[..k].to_vec()).unwrap();
        let snap = prefix.full_snapshot().unwrap();
        // the parts survive JSON, as they do in a store
        let head = serde_json::from_str(&serde_json::to_string(&snap.head).unwrap()).unwrap();
        let chunks: Vec<SnapshotChunk> =
            serde_json::from_str(&serde_json::to_string(&snap.chunks).unwrap()).unwrap();
        let mut restored = RoomState::from_snapshot(&head, chunks).unwrap();
        restored.apply_all(log.events[k..].to_vec()).unwrap();
        prop_assert_eq!(&restored, &log.state);
    }

    #[test]
    fn incremental_snapshots_rebuild_the_state(
        log in log_strategy(1500),
        every in 1usize..200,
        start in any::<prop::sample::Index>(),
        late in any::<bool>(),
    ) {
        // The state may begin as a replay of a prefix (never saved, so all
        // of it is due), then go on event by event; a snapshot may be
        // recorded as saved only after one more event was applied.
        let start = start.index(log.events.len() + 1);
        let mut state = RoomState::replay(log.events[..start].to_vec()).unwrap();
        let mut store: HashMap<(u64, u64), SnapshotChunk> = HashMap::new();
        let mut head = None;
        let mut saved_late = None;
        for (n, e) in log.events.iter().enumerate() {
            if n < start {
                continue;
            }
            state.apply(e.clone()).unwrap();
            if let Some(h) = saved_late.take() {
                state.mark_snapshot_saved(&h);
            }
            if (n + 1) % every == 0 {
                let s = state.snapshot().unwrap();
                for c in s.chunks {
                    store.insert((c.index, c.version), c);
                }
                if late {
                    saved_late = Some(s.head.clone());
                } else {
                    state.mark_snapshot_saved(&s.head);
                }
                head = Some(s.head);
            }
        }
        if let Some(head) = head {
            let chunks = head.chunks.iter().map(|c| store[&(c.index, c.version)].clone()).collect();
            let mut restored = RoomState::from_snapshot(&head, chunks).unwrap();
            restored.apply_all(log.events[head.seq as usize..].to_vec()).unwrap();
            prop_assert_eq!(&restored, &log.state);
        }
    }

    #[test]
    fn a_window_from_part_of_a_snapshot_equals_the_full_replay(
        log in log_strategy(1200),
        k in any::<usize>(),
        limit in 0usize..80,
        before in proptest::option::of(any::<u64>()),
    ) {
        let k = 1 + k % log.events.len();
        let before = before.map(|b| b % (log.state.last_seq() + 2));
        let prefix = RoomState::replay(log.events[..k].to_vec()).unwrap();
        let snap = prefix.full_snapshot().unwrap();
        let tail = &log.events[k..];
        let seq_of: HashMap<_, _> = log.events.iter().map(|e| (e.event_id, e.seq)).collect();
        let deletes = tail.iter().filter(|e| matches!(e.kind, EventKind::MessageDeleted { .. })).count();
        let expected = log.state.window_views(limit, before).unwrap();
        // Load as the server does: plan, and plan with more slack while incomplete.
        let mut slack = deletes;
        loop {
            let plan = snap.head.plan_window(limit, before, slack);
            let chunks = snap.chunks.iter().filter(|c| plan.contains(&c.index)).cloned().collect();
            let mut partial = RoomState::from_snapshot(&snap.head, chunks).unwrap();
            let unknown = partial.unknown_read_targets(tail);
            partial.provide_outside_seqs(unknown.iter().map(|u| (*u, seq_of[u])));
            partial.apply_all(tail.to_vec()).unwrap();
            match partial.window_views(limit, before) {
                Ok(got) => {
                    prop_assert_eq!(got, expected);
                    break;
                }
                Err(Incomplete) => {
                    prop_assert!(plan.len() < snap.chunks.len(), "incomplete with every chunk loaded");
                    slack = slack * 2 + limit + 1;
                }
            }
        }
    }

    #[test]
    fn replay_equals_applying_one_event_at_a_time(log in log_strategy(400), pick in any::<prop::sample::Index>()) {
        let mut events = log.events.clone();
        // And a send that reuses an earlier message's id (live or deleted):
        // both paths must refuse it alike.
        let sent: Vec<_> = events
            .iter()
            .filter(|e| matches!(e.kind, EventKind::MessageSent { .. }))
            .map(|e| e.event_id)
            .collect();
        if !sent.is_empty() {
            let last = events[events.len() - 1].clone();
            events.push(ChatEvent {
                event_id: sent[pick.index(sent.len())],
                seq: last.seq + 1,
                kind: EventKind::MessageSent { content: "again".into() },
                ..last
            });
        }
        let mut one_by_one = RoomState::new();
        for e in events.clone() {
            one_by_one.apply(e).unwrap();
        }
        // The log as bytes, decoded and applied event by event.
        let from_bytes = RoomState::replay_json(&serde_json::to_vec(&events).unwrap()).unwrap();
        let replayed = RoomState::replay(events).unwrap();
        prop_assert_eq!(&replayed, &one_by_one);
        prop_assert_eq!(replayed.views(), one_by_one.views());
        prop_assert_eq!(replayed.snapshot(), one_by_one.snapshot());
        prop_assert_eq!(&from_bytes, &one_by_one);
        prop_assert_eq!(from_bytes.snapshot(), one_by_one.snapshot());
    }

    #[test]
    fn replay_is_deterministic(log in log_strategy(300)) {
        let a = RoomState::replay(log.events.clone()).unwrap();
        let b = RoomState::replay(log.events.clone()).unwrap();
        prop_assert_eq!(&a, &b);
        prop_assert_eq!(serde_json::to_string(&a).unwrap(), serde_json::to_string(&b).unwrap());
        prop_assert_eq!(a.views(), b.views());
    }

    #[test]
    fn events_and_states_round_trip_through_json(log in log_strategy(200)) {
        for e in &log.events {
            let json = e.to_json();
            let back = ChatEvent::from_json(json.as_bytes()).unwrap();
            prop_assert_eq!(&back, e);
            prop_assert_eq!(back.to_json(), json);
        }
        let json = serde_json::to_string(&log.state).unwrap();
        let back: RoomState = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(&back, &log.state);
        let views = log.state.views();
        let back: Vec<domain::ChatMessageView> =
            serde_json::from_str(&serde_json::to_string(&views).unwrap()).unwrap();
        prop_assert_eq!(back, views);
    }

    #[test]
    fn time_travel_equals_replay_of_the_prefix(log in log_strategy(300), k in any::<usize>(), t in -5i64..700) {
        let k = k % (log.events.len() + 1);
        let by_seq = RoomState::at(log.events.clone(), Point::Seq(k as u64)).unwrap();
        prop_assert_eq!(&by_seq, &RoomState::replay(log.events[..k].to_vec()).unwrap());
        let at = ts(t);
        let n = log.events.iter().take_while(|e| e.timestamp <= at).count();
        let by_time = RoomState::at(log.events.clone(), Point::Time(at)).unwrap();
        prop_assert_eq!(by_time.last_seq(), n as u64);
        // from the latest admitted snapshot, too
        let snap = by_seq.full_snapshot().unwrap();
        if Point::Time(at).admits(&snap.head) {
            let mut s = RoomState::from_snapshot(&snap.head, snap.chunks).unwrap();
            s.apply_until(log.events[k..].to_vec(), Point::Time(at)).unwrap();
            prop_assert_eq!(&s, &by_time);
        }
    }

    #[test]
    fn optimistic_rooms_converge_on_the_servers_order(steps in prop::collection::vec((0usize..3, 0u8..10, intent()), 0..250)) {
        let users = ["alice", "bob", "carol"];
        let mut server = Log::new();
        let mut clients: Vec<OptimisticRoom> =
            users.iter().map(|u| OptimisticRoom::new(*u, server.state.clone())).collect();
        let mut outbox: Vec<VecDeque<domain::Command>> = vec![VecDeque::new(); 3];
        let mut delivered = [1usize; 3];
        let mut next_id = 10_000u128;
        let deliver_one = |c: &mut OptimisticRoom, server: &Log, d: &mut usize| {
            if *d < server.events.len() {
                c.receive(server.events[*d].clone()).unwrap();
                *d += 1;
            }
        };
        let serve_one = |server: &mut Log, clients: &mut [OptimisticRoom], who: usize, q: &mut VecDeque<domain::Command>| {
            if let Some(c) = q.pop_front() {
                if server.submit(users[who], &c).is_err() {
                    clients[who].reject(c.event_id);
                }
            }
        };
        for (who, op, i) in steps {
            match op {
                // the user acts on what they see
                0..=3 => {
                    next_id += 1;
                    let c = intent_command(clients[who].shown(), &i, id(next_id));
                    if let Ok(p) = clients[who].submit(&c, ts(i.tick)) {
                        prop_assert!(clients[who].is_pending(p.event_id));
                        outbox[who].push_back(p.command());
                    }
                }
                // the server takes the oldest submit of that user
                4..=6 => {
                    server.tick(1);
                    serve_one(&mut server, &mut clients, who, &mut outbox[who]);
                }
                // the next stored event reaches that user
                _ => deliver_one(&mut clients[who], &server, &mut delivered[who]),
            }
        }
        for who in 0..3 {
            while !outbox[who].is_empty() {
                serve_one(&mut server, &mut clients, who, &mut outbox[who]);
            }
        }
        for who in 0..3 {
            while delivered[who] < server.events.len() {
                deliver_one(&mut clients[who], &server, &mut delivered[who]);
            }
            prop_assert!(clients[who].pending().is_empty());
            prop_assert_eq!(clients[who].shown(), &server.state);
            prop_assert_eq!(clients[who].shown(), &RoomState::replay(server.events.clone()).unwrap());
        }
    }
}
