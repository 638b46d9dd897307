//! The app's state handling, given/when/then, against a fake server that
//! decides with the domain as the real one does: own actions pending →
//! confirmed or rolled back, rebase under others' events, the offline queue
//! across a reload, reconnecting with `afterSeq`, time travel and older
//! pages. Runs natively (`cargo test -p web`) and in headless Chromium
//! (`cargo test -p web --target wasm32-unknown-unknown`), where the queue
//! lives in the browser's real `localStorage`.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use domain::{ChatEvent, EventKind, EventType, PendingEvent, RoomState, Submission, Timestamp};
use serde_json::Value;
use uuid::Uuid;
use web::history::History;
use web::link::{AfterClose, LinkState, Status};
use web::live_room::{LiveRoom, RowState};
use web::outbox::Outbox;
use web::store::SharedStore;
#[cfg(target_arch = "wasm32")]
use web::store::Store;
use web::wire::MessagesPage;

const ROOM: &str = "general";

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn ts(ms: i64) -> Timestamp {
    Timestamp::from_millis(1_795_000_000_000 + ms).unwrap()
}

/// A store for the test: the browser's localStorage in the browser (under
/// a prefix of the test's own, cleared first), memory natively.
fn store(name: &str) -> SharedStore {
    #[cfg(target_arch = "wasm32")]
    {
        let s = Prefixed(format!("test.{name}."));
        for k in web::store::LocalStore.keys_with_prefix(&s.0) {
            web::store::LocalStore.remove(&k);
        }
        std::sync::Arc::new(s)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = name;
        web::store::MemoryStore::shared()
    }
}

/// The browser's localStorage, each key under a prefix.
#[cfg(target_arch = "wasm32")]
struct Prefixed(String);

#[cfg(target_arch = "wasm32")]
impl web::store::Store for Prefixed {
    fn get(&self, key: &str) -> Option<String> {
        web::store::LocalStore.get(&format!("{}{key}", self.0))
    }
    fn set(&self, key: &str, value: &str) {
        web::store::LocalStore.set(&format!("{}{key}", self.0), value)
    }
    fn remove(&self, key: &str) {
        web::store::LocalStore.remove(&format!("{}{key}", self.0))
    }
    fn keys_with_prefix(&self, prefix: &str) -> Vec<String> {
        let full = format!("{}{prefix}", self.0);
        web::store::LocalStore
            .keys_with_prefix(&full)
            .into_iter()
            .map(|k| k[self.0.len()..].to_owned())
            .collect()
    }
}

/// The server, as far as a room's socket goes: it decides each submit with
/// the domain, stores it once per `eventId`, and answers with frames.
struct Server {
    state: RoomState,
    events: Vec<ChatEvent>,
    clock: i64,
}

impl Server {
    fn new() -> Self {
        let mut s = Server {
            state: RoomState::new(),
            events: Vec::new(),
            clock: 0,
        };
        s.append(
            id(1),
            "owner",
            EventKind::RoomCreated {
                name: "General".into(),
            },
        );
        s
    }

    fn append(&mut self, event_id: Uuid, sender: &str, kind: EventKind) -> ChatEvent {
        self.clock += 10;
        let e = ChatEvent {
            event_id,
            room_id: ROOM.into(),
            seq: self.state.last_seq() + 1,
            sender_id: sender.into(),
            timestamp: ts(self.clock),
            kind,
        };
        self.state.apply(e.clone()).unwrap();
        self.events.push(e.clone());
        e
    }

    fn say(&mut self, n: u128, sender: &str, text: &str) -> ChatEvent {
        self.append(
            id(n),
            sender,
            EventKind::MessageSent {
                content: text.into(),
            },
        )
    }

    /// Handles a `submit` frame of `user`: the ack (or error) frame, and the
    /// event frame when a new event was stored.
    fn submit(&mut self, user: &str, frame: &str) -> (String, Option<String>) {
        let v: Value = serde_json::from_str(frame).unwrap();
        assert_eq!(v["type"], "submit");
        let body = serde_json::to_vec(&v["event"]).unwrap();
        let cmd = Submission::from_json(&body).unwrap().validate().unwrap();
        if let Some(stored) = self.events.iter().find(|e| e.event_id == cmd.event_id) {
            assert!(cmd.is_retry_of(stored, user));
            return (ack(stored), None);
        }
        match self.state.decide(&cmd, user) {
            Ok(kind) => {
                let e = self.append(cmd.event_id, user, kind);
                (ack(&e), Some(event(&e)))
            }
            Err(r) => (error(cmd.event_id, r.code.as_str(), &r.message), None),
        }
    }
}

fn event(e: &ChatEvent) -> String {
    format!(r#"{{"type":"event","event":{}}}"#, e.to_json())
}

fn ack(e: &ChatEvent) -> String {
    format!(
        r#"{{"type":"ack","eventId":"{}","event":{}}}"#,
        e.event_id,
        e.to_json()
    )
}

fn error(event_id: Uuid, code: &str, message: &str) -> String {
    serde_json::json!({"type": "error", "eventId": event_id, "error": {"code": code, "message": message}})
        .to_string()
}

fn opened(room: &mut LiveRoom) -> Vec<String> {
    room.link_mut().connecting();
    room.socket_opened(0.0)
}

fn state_of(room: &LiveRoom, message: Uuid) -> Option<RowState> {
    room.rows(1000)
        .into_iter()
        .find(|r| r.view.message_id == message)
        .map(|r| r.state)
}

#[test]
fn an_own_message_shows_at_once_as_pending_and_is_confirmed_by_the_ack() {
    // given alice in a room with a live socket
    let mut server = Server::new();
    let mut room = LiveRoom::new("alice", ROOM, server.state.clone(), store("t1"));
    assert!(opened(&mut room).is_empty());
    // when she sends a message
    let frames = room.send_text(id(7), "hello", ts(1)).unwrap();
    // then it shows at once, pending, and one submit frame goes out
    assert_eq!(state_of(&room, id(7)), Some(RowState::Pending));
    assert_eq!(room.shown().message(id(7)).unwrap().content, "hello");
    assert_eq!(frames.len(), 1);
    assert_eq!(room.queued().len(), 1);
    // when the server acks it (the event frame follows)
    let (ack, event) = server.submit("alice", &frames[0]);
    room.receive_frame(&ack);
    // then it is confirmed, with the server's seq and time, and unqueued
    assert_eq!(state_of(&room, id(7)), Some(RowState::Confirmed));
    assert!(room.queued().is_empty());
    room.receive_frame(&event.unwrap());
    assert_eq!(room.confirmed(), &server.state);
    assert_eq!(room.shown(), &server.state);
}

#[test]
fn the_event_frame_before_the_ack_confirms_too() {
    let mut server = Server::new();
    let mut room = LiveRoom::new("alice", ROOM, server.state.clone(), store("t2"));
    opened(&mut room);
    let frames = room.send_text(id(7), "hi", ts(1)).unwrap();
    let (ack, event) = server.submit("alice", &frames[0]);
    room.receive_frame(&event.unwrap());
    assert_eq!(state_of(&room, id(7)), Some(RowState::Confirmed));
    assert!(room.queued().is_empty(), "the stored event unqueues it");
    room.receive_frame(&ack);
    assert_eq!(room.shown(), &server.state);
}

#[test]
fn a_refused_message_fails_visibly_and_can_be_retried_or_discarded() {
    let server = Server::new();
    let mut room = LiveRoom::new("alice", ROOM, server.state.clone(), store("t3"));
    opened(&mut room);
    let frames = room.send_text(id(7), "hello", ts(1)).unwrap();
    // when the server refuses it (a refusal the client could not foresee)
    room.receive_frame(&error(
        id(7),
        "event_id_conflict",
        "an event with this eventId exists",
    ));
    // then it shows as failed, with the reason, and is no longer queued
    let rows = room.rows(50);
    let failed = rows.iter().find(|r| r.view.message_id == id(7)).unwrap();
    assert_eq!(failed.state, RowState::Failed);
    assert!(failed
        .error
        .as_deref()
        .unwrap()
        .contains("event_id_conflict"));
    assert!(room.queued().is_empty());
    assert!(room.confirmed().message(id(7)).is_none());
    // when she retries, it is pending again and goes out with the same id
    let again = room.retry_failed(id(7), ts(2)).unwrap();
    let event_of = |f: &str| serde_json::from_str::<Value>(f).unwrap()["event"].clone();
    assert_eq!(again.len(), 1);
    assert_eq!(
        event_of(&again[0])["eventId"],
        event_of(&frames[0])["eventId"]
    );
    assert_eq!(event_of(&again[0])["content"], "hello");
    assert_eq!(state_of(&room, id(7)), Some(RowState::Pending));
    assert!(room.failed().is_empty());
    // and a discarded failure disappears
    room.receive_frame(&error(id(7), "event_id_conflict", "again"));
    room.discard_failed(id(7));
    assert_eq!(state_of(&room, id(7)), None);
}

#[test]
fn a_refused_edit_rolls_back_with_a_notice() {
    // given alice's confirmed message
    let mut server = Server::new();
    server.say(10, "alice", "original");
    let mut room = LiveRoom::new("alice", ROOM, server.state.clone(), store("t4"));
    opened(&mut room);
    // when she edits it and, before her edit arrives, the message is gone
    // for the server (here: it refuses with message_not_found)
    room.act(
        id(11),
        EventType::MessageEdited,
        Some("changed"),
        id(10),
        ts(1),
    )
    .unwrap();
    assert_eq!(room.shown().message(id(10)).unwrap().content, "changed");
    assert_eq!(state_of(&room, id(10)), Some(RowState::Pending));
    room.receive_frame(&error(id(11), "message_not_found", "gone"));
    // then the edit is rolled back and a notice says why
    assert_eq!(room.shown().message(id(10)).unwrap().content, "original");
    assert_eq!(state_of(&room, id(10)), Some(RowState::Confirmed));
    assert_eq!(room.notices().len(), 1);
    assert!(room.notices()[0].text.contains("edit"));
    let n = room.notices()[0].id;
    room.dismiss(n);
    assert!(room.notices().is_empty());
}

#[test]
fn the_domain_refuses_locally_what_the_server_would() {
    let mut server = Server::new();
    server.say(10, "bob", "bob's");
    let mut room = LiveRoom::new("alice", ROOM, server.state.clone(), store("t5"));
    let r = room.act(
        id(11),
        EventType::MessageEdited,
        Some("mine now"),
        id(10),
        ts(1),
    );
    assert_eq!(r.unwrap_err().code, domain::ErrorCode::Forbidden);
    let r = room.send_text(id(12), "   ", ts(1));
    assert_eq!(r.unwrap_err().code, domain::ErrorCode::ContentEmpty);
    let r = room.send_text(id(13), &"x".repeat(4001), ts(1));
    assert_eq!(r.unwrap_err().code, domain::ErrorCode::ContentTooLong);
    assert!(room.pending().is_empty() && room.queued().is_empty());
}

#[test]
fn others_events_arriving_first_are_rebased_under_pending_ones() {
    let mut server = Server::new();
    server.say(10, "bob", "bob's first");
    let mut room = LiveRoom::new("alice", ROOM, server.state.clone(), store("t6"));
    opened(&mut room);
    // alice sends a message and reacts to bob's
    let sent = room.send_text(id(20), "mine", ts(1)).unwrap();
    let reacted = room
        .act(id(21), EventType::ReactionAdded, Some("👍"), id(10), ts(2))
        .unwrap();
    // bob's new message reaches the server first
    let bobs = server.say(30, "bob", "bob's second");
    room.receive_frame(&event(&bobs));
    // her pending message now shows after bob's, still pending
    let order: Vec<Uuid> = room.rows(50).iter().map(|r| r.view.message_id).collect();
    assert_eq!(order, vec![id(10), id(30), id(20)]);
    assert_eq!(state_of(&room, id(20)), Some(RowState::Pending));
    // then bob deletes the message she reacted to: the reaction is undone,
    // said so, and unqueued; her message stays
    let delete = server.append(
        id(31),
        "bob",
        EventKind::MessageDeleted { message_id: id(10) },
    );
    room.receive_frame(&event(&delete));
    assert!(room.notices().iter().any(|n| n.text.contains("reaction")));
    assert!(!room.queued().iter().any(|p| p.event_id == id(21)));
    assert_eq!(state_of(&room, id(20)), Some(RowState::Pending));
    // the server refuses the reaction as well, which changes nothing more
    let (answer, _) = server.submit("alice", &reacted[0]);
    room.receive_frame(&answer);
    assert_eq!(room.notices().len(), 1);
    // and once her message is stored she sees exactly the server's state
    let (ack, ev) = server.submit("alice", &sent[0]);
    room.receive_frame(&ev.unwrap());
    room.receive_frame(&ack);
    assert_eq!(room.shown(), &server.state);
    assert!(room.pending().is_empty() && room.queued().is_empty());
}

#[test]
fn offline_actions_queue_in_storage_survive_a_reload_and_go_once_on_reconnect() {
    let shared = store("t7");
    let mut server = Server::new();
    server.say(10, "bob", "hello alice");
    // given alice offline (the socket closed, the browser offline)
    let mut room = LiveRoom::new("alice", ROOM, server.state.clone(), shared.clone());
    opened(&mut room);
    assert_eq!(room.socket_closed(1006, false, 1.0), AfterClose::WaitOnline);
    assert_eq!(
        Status::of(false, Some(true), Some(room.link())).label(),
        "Offline"
    );
    // when she sends, reacts and edits nothing goes out, all shows pending
    assert!(room
        .send_text(id(20), "queued one", ts(1))
        .unwrap()
        .is_empty());
    assert!(room
        .act(id(21), EventType::ReactionAdded, Some("🎉"), id(10), ts(2))
        .unwrap()
        .is_empty());
    assert!(room
        .act(
            id(22),
            EventType::MessageEdited,
            Some("queued, edited"),
            id(20),
            ts(3)
        )
        .unwrap()
        .is_empty());
    assert_eq!(state_of(&room, id(20)), Some(RowState::Pending));
    // and the queue is in storage, in order
    let stored = Outbox::open(shared.clone(), "alice", ROOM);
    let ids: Vec<Uuid> = stored.events().iter().map(|p| p.event_id).collect();
    assert_eq!(ids, vec![id(20), id(21), id(22)]);
    assert_eq!(
        Outbox::rooms_with_events(&shared, "alice"),
        vec![ROOM.to_owned()]
    );
    // when the page reloads (a new room from the server's state, same storage)
    drop(room);
    let mut room = LiveRoom::new("alice", ROOM, server.state.clone(), shared.clone());
    // then her queued actions show again, pending
    assert_eq!(
        room.shown().message(id(20)).unwrap().content,
        "queued, edited"
    );
    assert_eq!(state_of(&room, id(20)), Some(RowState::Pending));
    // when the socket opens, the whole queue goes, in order
    let frames = opened(&mut room);
    assert_eq!(frames.len(), 3);
    for f in &frames {
        let (ack, ev) = server.submit("alice", f);
        if let Some(ev) = ev {
            room.receive_frame(&ev);
        }
        room.receive_frame(&ack);
    }
    // then everything is confirmed, stored once, and the queue is empty
    assert_eq!(room.shown(), &server.state);
    assert_eq!(server.events.len(), 2 + 3);
    assert!(room.queued().is_empty());
    assert!(Outbox::open(shared.clone(), "alice", ROOM).is_empty());
    assert!(Outbox::rooms_with_events(&shared, "alice").is_empty());
}

#[test]
fn a_queued_event_stored_before_the_reload_is_not_stored_twice() {
    // given an event the server stored but whose ack never came
    let shared = store("t8");
    let mut server = Server::new();
    server.say(10, "bob", "hi");
    let mut room = LiveRoom::new("alice", ROOM, server.state.clone(), shared.clone());
    let frames = opened(&mut room);
    assert!(frames.is_empty());
    let del = room.send_text(id(20), "to delete", ts(1)).unwrap();
    let (_, ev) = server.submit("alice", &del[0]);
    room.receive_frame(&ev.unwrap());
    let gone = room
        .act(id(21), EventType::MessageDeleted, None, id(20), ts(2))
        .unwrap();
    server.submit("alice", &gone[0]); // stored; the socket drops before any answer
                                      // when the page reloads with a state that already holds both
    let mut room = LiveRoom::new("alice", ROOM, server.state.clone(), shared.clone());
    assert!(room.shown().message(id(20)).is_none());
    // then the queue is sent again and the server's answers clear it, with
    // no error shown and nothing stored twice
    let frames = opened(&mut room);
    assert_eq!(frames.len(), 1);
    let before = server.events.len();
    let (ack, ev) = server.submit("alice", &frames[0]);
    assert!(ev.is_none());
    room.receive_frame(&ack);
    assert_eq!(server.events.len(), before);
    assert!(room.queued().is_empty() && room.pending().is_empty());
    assert!(room.notices().is_empty());
    assert_eq!(room.shown(), &server.state);
}

#[test]
fn a_dropped_socket_reconnects_from_the_last_seq_with_backoff_and_resends() {
    let mut server = Server::new();
    let mut room = LiveRoom::new("alice", ROOM, server.state.clone(), store("t9"));
    assert_eq!(room.socket_path(), "/api/rooms/general/ws?afterSeq=1");
    opened(&mut room);
    // events arrive live
    for n in 0..3 {
        let e = server.say(10 + n, "bob", "live");
        room.receive_frame(&event(&e));
    }
    assert_eq!(room.confirmed().last_seq(), 4);
    // a message goes out, then the connection drops before its answer
    let frames = room.send_text(id(20), "in flight", ts(1)).unwrap();
    assert_eq!(frames.len(), 1);
    assert_eq!(
        room.socket_closed(1001, true, 60_000.0),
        AfterClose::Retry { delay_ms: 0 }
    );
    assert_eq!(room.link().state(), LinkState::Reconnecting);
    assert_eq!(
        Status::of(true, Some(true), Some(room.link())).label(),
        "Reconnecting…"
    );
    // the reconnect asks for what came after the last seq held
    assert_eq!(room.socket_path(), "/api/rooms/general/ws?afterSeq=4");
    room.link_mut().connecting();
    assert_eq!(
        room.socket_closed(1006, true, 61_000.0),
        AfterClose::Retry { delay_ms: 500 }
    );
    room.link_mut().connecting();
    assert_eq!(
        room.socket_closed(1006, true, 62_000.0),
        AfterClose::Retry { delay_ms: 1000 }
    );
    // meanwhile the server stored the in-flight message and bob wrote
    let (_, _) = server.submit("alice", &frames[0]);
    let bobs = server.say(30, "bob", "while you were away");
    // when it opens, the queue goes again; the backlog after seq 4 arrives
    let resent = opened(&mut room);
    assert_eq!(resent, frames);
    assert_eq!(
        Status::of(true, Some(true), Some(room.link())).label(),
        "Online"
    );
    for e in &server.events[4..] {
        room.receive_frame(&event(e));
    }
    let (ack, ev) = server.submit("alice", &resent[0]);
    assert!(ev.is_none(), "stored once");
    room.receive_frame(&ack);
    assert_eq!(room.shown(), &server.state);
    assert!(room.shown().message(bobs.event_id).is_some());
    assert!(room.queued().is_empty());
    // a 4001 close means signing in again
    assert_eq!(room.socket_closed(4001, true, 1.0), AfterClose::SignIn);
}

#[test]
fn a_not_now_answer_keeps_the_event_and_asks_for_a_resend() {
    let server = Server::new();
    let mut room = LiveRoom::new("alice", ROOM, server.state.clone(), store("t10"));
    opened(&mut room);
    let frames = room.send_text(id(20), "hi", ts(1)).unwrap();
    let limited = serde_json::json!({"type": "error", "eventId": id(20),
        "error": {"code": "rate_limited", "message": "slow down", "retryAfter": 2}});
    let out = room.receive_frame(&limited.to_string());
    assert_eq!(out.resend_after, Some((id(20), 2000)));
    assert_eq!(state_of(&room, id(20)), Some(RowState::Pending));
    assert_eq!(room.resend(id(20)), Some(frames[0].clone()));
}

#[test]
fn a_gap_in_the_live_events_asks_for_a_resync() {
    let mut server = Server::new();
    let mut room = LiveRoom::new("alice", ROOM, server.state.clone(), store("t11"));
    opened(&mut room);
    server.say(10, "bob", "one");
    let two = server.say(11, "bob", "two");
    let out = room.receive_frame(&event(&two));
    assert!(out.resync);
    assert_eq!(room.confirmed().last_seq(), 1);
}

#[test]
fn reading_marks_the_newest_visible_message_of_others_once() {
    let mut server = Server::new();
    server.say(10, "bob", "one");
    server.say(11, "alice", "mine");
    server.say(12, "bob", "two");
    server.say(13, "bob", "three");
    let mut room = LiveRoom::new("alice", ROOM, server.state.clone(), store("t12"));
    opened(&mut room);
    // of the visible messages, the newest from someone else
    let visible = [id(10), id(11), id(12)];
    let cmd = room.read_command(&visible, id(50)).unwrap();
    assert_eq!(cmd.event_type, EventType::MessageRead);
    assert_eq!(
        cmd.target.as_deref(),
        Some(id(12).hyphenated().to_string().as_str())
    );
    // own messages alone never need a read
    assert!(room.read_command(&[id(11)], id(51)).is_none());
    // once sent (pending), the same view asks for nothing more
    let frames = room.submit(&cmd, ts(1)).unwrap();
    assert!(room.read_command(&visible, id(52)).is_none());
    // the stored read is reported, so that unread counts are fetched again
    let (ack, _) = server.submit("alice", &frames[0]);
    assert!(room.receive_frame(&ack).read_stored);
    assert_eq!(room.confirmed().read_marker("alice"), 4);
    // bob's message 13 scrolled into view: read up to it
    let next = room.read_command(&[id(12), id(13)], id(53)).unwrap();
    assert_eq!(
        next.target.as_deref(),
        Some(id(13).hyphenated().to_string().as_str())
    );
    // and bob sees alice in readBy of his messages up to that one
    let view = room.shown().view_of(room.shown().message(id(12)).unwrap());
    assert_eq!(view.read_by, vec!["alice".to_owned()]);
}

/// A room of `n` messages, and a partial state of it holding only its
/// newest `window` messages (what `/snapshot?window=` gives: loaded from
/// the chunks that hold them, the rest dropped).
fn big_room(n: u128, window: usize) -> (Server, RoomState) {
    let mut server = Server::new();
    for i in 0..n {
        server.say(
            100 + i,
            if i % 2 == 0 { "bob" } else { "carol" },
            &format!("m{i}"),
        );
    }
    let snap = server.state.full_snapshot().unwrap();
    let plan = snap.head.plan_window(window, None, 0);
    let chunks = snap
        .chunks
        .iter()
        .filter(|c| plan.contains(&c.index))
        .cloned()
        .collect();
    let mut partial = RoomState::from_snapshot(&snap.head, chunks).unwrap();
    partial.keep_newest(window);
    (server, partial)
}

#[test]
fn a_large_room_opens_from_a_window_and_pages_older_messages_in() {
    let (mut server, partial) = big_room(2000, 50);
    // the snapshot goes through JSON as the server sends it
    let json = serde_json::to_string(&partial).unwrap();
    let loaded: RoomState = serde_json::from_str(&json).unwrap();
    assert_eq!(loaded.message_count(), 50);
    let mut room = LiveRoom::new("alice", ROOM, loaded, store("t13"));
    // newest messages at once; older ones to read from the server
    let rows = room.rows(50);
    assert_eq!(rows.len(), 50);
    assert_eq!(rows.last().unwrap().view.content, "m1999");
    assert!(room.has_older(50));
    let mut pages = 0;
    while let Some(before) = room.older_before() {
        let messages = server.state.window_views(100, Some(before)).unwrap();
        let page = MessagesPage {
            messages,
            last_seq: server.state.last_seq(),
        };
        assert!(room.add_older(&page, before, 100));
        pages += 1;
    }
    assert!(pages > 10);
    assert_eq!(room.shown().views(), server.state.views());
    assert!(!room.has_older(5000));
    // live events still apply on top
    let e = server.say(9999, "bob", "new");
    room.receive_frame(&event(&e));
    assert_eq!(room.shown().views(), server.state.views());
}

#[test]
fn time_travel_replays_the_room_exactly_as_after_any_seq() {
    let mut server = Server::new();
    for i in 0..40u128 {
        let m = server.say(100 + i, "bob", &format!("m{i}"));
        if i % 5 == 0 {
            server.append(
                id(500 + i),
                "alice",
                EventKind::ReactionAdded {
                    message_id: m.event_id,
                    emoji: "👍".into(),
                },
            );
        }
        if i % 7 == 0 {
            server.append(
                id(700 + i),
                "bob",
                EventKind::MessageDeleted {
                    message_id: m.event_id,
                },
            );
        }
    }
    let last = server.state.last_seq();
    // a snapshot at seq 20 and the events from a few before it to the end
    let base = RoomState::replay(server.events[..20].iter().cloned()).unwrap();
    let history = History::new(base, server.events[12..].to_vec()).unwrap();
    for k in 20..=last {
        let want = RoomState::replay(server.events[..k as usize].iter().cloned()).unwrap();
        assert_eq!(history.state_at(k).unwrap(), want, "at seq {k}");
    }
    assert!(history.state_at(19).is_none());
    let log: Vec<u64> = history.log_around(25, 3).iter().map(|e| e.seq).collect();
    assert_eq!(log, (22..=28).collect::<Vec<_>>());
    assert!(history.log_complete(25, 8, last));
    assert!(
        !history.log_complete(20, 8, last),
        "seqs 12 and below are not held"
    );
    assert!(History::new(RoomState::new(), server.events[3..].to_vec()).is_none());
}

#[test]
fn queues_of_dotted_ids_and_two_holders_of_one_queue_stay_apart() {
    let shared = store("outbox-keys");
    let pending = |n: u128| PendingEvent {
        event_id: id(n),
        kind: EventKind::MessageSent {
            content: "queued".into(),
        },
        submitted_at: ts(0),
    };
    // given user "a" in room "b.c" and user "a.b" in room "c"
    let mut first = Outbox::open(shared.clone(), "a", "b.c");
    first.push(pending(1));
    let mut second = Outbox::open(shared.clone(), "a.b", "c");
    second.push(pending(2));
    // then each sees only their own
    assert_eq!(
        Outbox::rooms_with_events(&shared, "a"),
        vec!["b.c".to_owned()]
    );
    assert_eq!(
        Outbox::rooms_with_events(&shared, "a.b"),
        vec!["c".to_owned()]
    );
    let ids = |user: &str, room: &str| -> Vec<Uuid> {
        Outbox::open(shared.clone(), user, room)
            .events()
            .iter()
            .map(|p| p.event_id)
            .collect()
    };
    assert_eq!(ids("a", "b.c"), vec![id(1)]);
    assert_eq!(ids("a.b", "c"), vec![id(2)]);

    // given two holders of one queue (the open room and a flush over HTTP)
    let mut room = Outbox::open(shared.clone(), "a", "r");
    let mut flush = Outbox::open(shared.clone(), "a", "r");
    room.push(pending(3));
    flush.push(pending(4));
    // when one takes out an event, the other's stays
    assert!(flush.remove(id(3)));
    room.push(pending(5));
    assert_eq!(ids("a", "r"), vec![id(4), id(5)]);
}
