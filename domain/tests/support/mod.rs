//! Test helpers: building events and logs, and generating random valid logs
//! by interpreting random "intents" through the domain's own decision step.
#![allow(dead_code)]

use domain::{ChatEvent, Command, EventKind, EventType, RoomState, Timestamp};
use proptest::prelude::*;
use uuid::Uuid;

pub const ROOM: &str = "general";
pub const T0: i64 = 1_795_000_000_000;

pub fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

pub fn ts(ms: i64) -> Timestamp {
    Timestamp::from_millis(T0 + ms).unwrap()
}

/// A room's log being written, as the server would: every event is decided
/// against the state first, then given the next seq and a time.
#[derive(Debug)]
pub struct Log {
    pub events: Vec<ChatEvent>,
    pub state: RoomState,
    pub clock: i64,
}

impl Log {
    pub fn new() -> Self {
        let mut log = Log {
            events: Vec::new(),
            state: RoomState::new(),
            clock: 0,
        };
        log.push_kind(
            id(0),
            "owner",
            EventKind::RoomCreated {
                name: "General".into(),
            },
        );
        log
    }

    /// Appends an already decided event.
    pub fn push_kind(&mut self, event_id: Uuid, sender: &str, kind: EventKind) -> ChatEvent {
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

    /// Decides and appends; the refusal if the domain refuses.
    pub fn submit(&mut self, sender: &str, cmd: &Command) -> Result<ChatEvent, domain::Refusal> {
        let kind = self.state.decide(cmd, sender)?;
        Ok(self.push_kind(cmd.event_id, sender, kind))
    }

    pub fn send(&mut self, n: u128, sender: &str, text: &str) -> Uuid {
        self.push_kind(
            id(n),
            sender,
            EventKind::MessageSent {
                content: text.into(),
            },
        );
        id(n)
    }

    pub fn tick(&mut self, ms: i64) {
        self.clock += ms;
    }
}

impl Default for Log {
    fn default() -> Self {
        Self::new()
    }
}

pub fn cmd(event_id: Uuid, t: EventType, content: Option<&str>, target: Option<Uuid>) -> Command {
    Command {
        event_id,
        event_type: t,
        content: content.map(str::to_owned),
        target: target.map(|t| t.hyphenated().to_string()),
        expected_seq: None,
    }
}

pub const USERS: [&str; 4] = ["alice", "bob", "carol", "dave"];
const TEXTS: [&str; 4] = ["hello", "hi there", "édition ✓", "👋"];
const EMOJI: [&str; 3] = ["👍", "🎉", "❤️"];

/// One random step: who acts, what they do, on which message, with what.
#[derive(Clone, Debug)]
pub struct Intent {
    pub user: usize,
    pub action: u8,
    pub target: usize,
    pub choice: usize,
    pub tick: i64,
}

pub fn intent() -> impl Strategy<Value = Intent> {
    (
        0..USERS.len(),
        0u8..100,
        any::<usize>(),
        any::<usize>(),
        0i64..3,
    )
        .prop_map(|(user, action, target, choice, tick)| Intent {
            user,
            action,
            target,
            choice,
            tick,
        })
}

/// The command an intent stands for, given the state it is decided on.
/// May be refused (acting on another's message): that is part of the test.
pub fn intent_command(state: &RoomState, i: &Intent, event_id: Uuid) -> Command {
    let live: Vec<Uuid> = state.messages().map(|m| m.id).collect();
    // Mostly sends; otherwise act on a live message (or a random id).
    let target = if live.is_empty() || i.target.is_multiple_of(13) {
        Uuid::from_u128(i.target as u128 | 1 << 100)
    } else {
        live[i.target % live.len()]
    };
    let text = TEXTS[i.choice % TEXTS.len()];
    let emoji = EMOJI[i.choice % EMOJI.len()];
    match i.action {
        0..=44 => cmd(event_id, EventType::MessageSent, Some(text), None),
        45..=54 => cmd(event_id, EventType::MessageEdited, Some(text), Some(target)),
        55..=62 => cmd(event_id, EventType::MessageDeleted, None, Some(target)),
        63..=77 => cmd(event_id, EventType::MessageRead, None, Some(target)),
        78..=91 => cmd(
            event_id,
            EventType::ReactionAdded,
            Some(emoji),
            Some(target),
        ),
        _ => cmd(
            event_id,
            EventType::ReactionRemoved,
            Some(emoji),
            Some(target),
        ),
    }
}

/// A valid log: ROOM_CREATED, then every intent the domain accepts.
pub fn build_log(intents: &[Intent]) -> Log {
    let mut log = Log::new();
    for (n, i) in intents.iter().enumerate() {
        log.tick(i.tick);
        let c = intent_command(&log.state, i, id(1_000 + n as u128));
        let _ = log.submit(USERS[i.user], &c);
    }
    log
}

pub fn log_strategy(max: usize) -> impl Strategy<Value = Log> {
    prop::collection::vec(intent(), 0..max).prop_map(|v| build_log(&v))
}
