//! The replay reducer: [`RoomState`] is what a room looks like after a prefix
//! of its log, and [`RoomState::apply`] is the one place that says what each
//! event does to it. The server's projection, its snapshots, time travel and
//! the browser all go through here.
//!
//! `apply` is total: an event that makes no sense against the state (it
//! targets an unknown message, or edits another user's message) changes
//! nothing. The only error is a seq that is not exactly `last_seq + 1`, or an
//! event of another room, which the caller must see rather than corrupt the
//! state.

use crate::chunk::chunk_of;
use crate::event::{ChatEvent, EventKind};
use crate::message::Message;
use crate::messages::MessageLog;
use crate::time::Timestamp;
use compact_str::CompactString;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use uuid::Uuid;

/// The room's own facts, set by `ROOM_CREATED`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomInfo {
    pub room_id: CompactString,
    pub name: String,
    pub created_by: CompactString,
    pub created_at: Timestamp,
}

/// An event that cannot be applied in order.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    #[error("seq gap: expected {expected}, got {got}")]
    Gap { expected: u64, got: u64 },
    #[error("duplicate or old seq: expected {expected}, got {got}")]
    Duplicate { expected: u64, got: u64 },
    #[error("event of room {got:?} applied to room {expected:?}")]
    WrongRoom { expected: String, got: String },
}

/// Which part of the message log a state holds when it was built from only
/// some chunks of a snapshot (see [`crate::snapshot`]). All messages with seq
/// in `from..=to` or above `snapshot_seq` are present; others may exist but
/// are not loaded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Coverage {
    pub from: u64,
    pub to: u64,
    pub snapshot_seq: u64,
    /// Seqs of messages outside the loaded range, provided by the caller so
    /// that a `MESSAGE_READ` of such a message still moves the marker.
    #[serde(default)]
    pub outside_seqs: HashMap<Uuid, u64>,
}

impl Coverage {
    /// Whether every message with seq in `lo..=hi` is loaded.
    pub fn covers(&self, lo: u64, hi: u64) -> bool {
        if lo > hi {
            return true;
        }
        // Split into the part up to the snapshot and the part after it.
        let hi_old = hi.min(self.snapshot_seq);
        lo > hi_old || (lo >= self.from && hi_old <= self.to)
    }
}

/// The state of one room after a prefix of its log.
#[derive(Clone, Debug, Default)]
pub struct RoomState {
    pub(crate) room_id: Option<CompactString>,
    pub(crate) info: Option<RoomInfo>,
    pub(crate) last_seq: u64,
    pub(crate) last_timestamp: Option<Timestamp>,
    /// Live messages in seq order, indexed by id.
    pub(crate) messages: MessageLog,
    /// User → highest seq they marked read (kept when that message is deleted).
    pub(crate) read_markers: BTreeMap<CompactString, u64>,
    /// `Some` when built from part of a snapshot.
    pub(crate) coverage: Option<Coverage>,
    /// Snapshot bookkeeping: chunk index → (seq of the snapshot that last
    /// wrote it, its live messages then), and the chunks changed since then.
    /// Not part of the logical state.
    pub(crate) chunk_versions: BTreeMap<u64, (u64, u32)>,
    pub(crate) dirty: DirtyChunks,
}

/// The snapshot chunks changed since the last saved snapshot. Changes
/// cluster on the newest few chunks, so a handful of recently marked chunks
/// is remembered to skip the set for most events.
#[derive(Clone, Debug)]
pub(crate) struct DirtyChunks {
    /// Every chunk counts as changed: a state replayed from nothing, never
    /// saved. Spares a long replay the bookkeeping of every event.
    all: bool,
    set: BTreeSet<u64>,
    /// Chunks known to be in `set`; `u64::MAX` is an unused place.
    recent: [u64; 4],
    next: usize,
}

impl Default for DirtyChunks {
    fn default() -> Self {
        DirtyChunks {
            all: false,
            set: BTreeSet::new(),
            recent: [u64::MAX; 4],
            next: 0,
        }
    }
}

impl DirtyChunks {
    fn insert(&mut self, chunk: u64) {
        if self.all || self.recent.contains(&chunk) {
            return;
        }
        self.set.insert(chunk);
        self.recent[self.next] = chunk;
        self.next = (self.next + 1) % self.recent.len();
    }

    pub(crate) fn mark_all(&mut self) {
        *self = DirtyChunks {
            all: true,
            ..Self::default()
        };
    }

    pub(crate) fn clear(&mut self) {
        *self = Self::default();
    }

    /// The changed chunks, or `None` for all of them.
    pub(crate) fn chunks(&self) -> Option<impl Iterator<Item = u64> + '_> {
        (!self.all).then(|| self.set.iter().copied())
    }
}

/// Equality of the logical state: what a reader can observe. Snapshot
/// bookkeeping is left out.
impl PartialEq for RoomState {
    fn eq(&self, other: &Self) -> bool {
        self.room_id == other.room_id
            && self.info == other.info
            && self.last_seq == other.last_seq
            && self.last_timestamp == other.last_timestamp
            && self.messages == other.messages
            && self.read_markers == other.read_markers
            && self.coverage == other.coverage
    }
}

impl Eq for RoomState {}

impl RoomState {
    /// The state before any event.
    pub fn new() -> Self {
        Self::default()
    }

    /// Replays a whole log from the empty state.
    pub fn replay<I>(events: I) -> Result<Self, ApplyError>
    where
        I: IntoIterator<Item = ChatEvent>,
    {
        let mut state = Self::new();
        // Nothing of it was ever saved: every chunk goes in its first snapshot.
        state.dirty.mark_all();
        state.apply_all(events)?;
        Ok(state)
    }

    /// Applies events in order, stopping at the first that does not fit.
    pub fn apply_all<I>(&mut self, events: I) -> Result<(), ApplyError>
    where
        I: IntoIterator<Item = ChatEvent>,
    {
        let events = events.into_iter();
        // At most one message per event: reserving once avoids regrowing
        // (and copying) large vectors while applying long logs.
        self.messages.reserve(events.size_hint().0);
        for e in events {
            self.apply(e)?;
        }
        Ok(())
    }

    pub fn room_id(&self) -> Option<&str> {
        self.room_id.as_deref()
    }

    pub fn info(&self) -> Option<&RoomInfo> {
        self.info.as_ref()
    }

    /// Seq of the last applied event (0 before the first).
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    pub fn last_timestamp(&self) -> Option<Timestamp> {
        self.last_timestamp
    }

    /// Live messages in seq order.
    pub fn messages(&self) -> impl DoubleEndedIterator<Item = &Message> + '_ {
        self.messages.iter()
    }

    /// Live messages with `lo <= seq < hi`, in seq order.
    pub fn messages_in(&self, lo: u64, hi: u64) -> impl DoubleEndedIterator<Item = &Message> + '_ {
        self.messages.range(lo, hi)
    }

    pub fn message_count(&self) -> usize {
        self.messages.len()
    }

    /// A live message by id.
    pub fn message(&self, id: Uuid) -> Option<&Message> {
        self.messages.get(&id)
    }

    pub fn read_markers(&self) -> &BTreeMap<CompactString, u64> {
        &self.read_markers
    }

    pub fn read_marker(&self, user: &str) -> u64 {
        self.read_markers.get(user).copied().unwrap_or(0)
    }

    /// `None` for a state that holds every message.
    pub fn coverage(&self) -> Option<&Coverage> {
        self.coverage.as_ref()
    }

    /// Messages of others with a seq above `user`'s read marker.
    pub fn unread_count(&self, user: &str) -> usize {
        let marker = self.read_marker(user);
        self.messages_in(marker + 1, u64::MAX)
            .filter(|m| m.sender_id != user)
            .count()
    }

    /// Applies one event: the reducer. Its seq must be exactly `last_seq + 1`
    /// and its room the room of the events before it.
    pub fn apply(&mut self, event: ChatEvent) -> Result<(), ApplyError> {
        self.check_order(&event)?;
        let ChatEvent {
            event_id,
            room_id,
            seq,
            sender_id,
            timestamp,
            kind,
        } = event;
        if self.room_id.is_none() {
            self.room_id = Some(room_id.clone());
        }
        self.last_seq = seq;
        self.last_timestamp = Some(timestamp);
        // The seq of the message whose snapshot chunk this event changes.
        let changed = match kind {
            EventKind::RoomCreated { name } => {
                self.info = Some(RoomInfo {
                    room_id,
                    name,
                    created_by: sender_id,
                    created_at: timestamp,
                });
                None
            }
            EventKind::MessageSent { content } => {
                let added = (self.messages)
                    .insert(Message::sent(event_id, seq, sender_id, content, timestamp));
                added.then_some(seq)
            }
            EventKind::MessageEdited {
                message_id,
                content,
            } => match self.own_message_mut(message_id, &sender_id) {
                Some(m) if m.content != content => {
                    m.content = content;
                    m.edited_at = Some(timestamp);
                    Some(m.seq)
                }
                _ => None,
            },
            EventKind::MessageDeleted { message_id } => {
                match self.own_message_mut(message_id, &sender_id) {
                    Some(_) => self.messages.remove(&message_id).map(|m| m.seq),
                    None => None,
                }
            }
            EventKind::MessageRead { message_id } => {
                let target = self.messages.get(&message_id).map(|m| m.seq).or_else(|| {
                    self.coverage
                        .as_ref()
                        .and_then(|c| c.outside_seqs.get(&message_id).copied())
                });
                if let Some(s) = target {
                    let marker = self.read_markers.entry(sender_id).or_insert(0);
                    *marker = (*marker).max(s);
                }
                // Markers live in the snapshot's head, not in a chunk.
                None
            }
            EventKind::ReactionAdded { message_id, emoji } => self
                .messages
                .get_mut(&message_id)
                .and_then(|m| m.reactions.add(emoji, sender_id).then_some(m.seq)),
            EventKind::ReactionRemoved { message_id, emoji } => self
                .messages
                .get_mut(&message_id)
                .and_then(|m| m.reactions.remove(&emoji, &sender_id).then_some(m.seq)),
        };
        if let Some(seq) = changed {
            self.dirty.insert(chunk_of(seq));
        }
        Ok(())
    }

    /// A live message of `sender`: only its sender may edit or delete it.
    fn own_message_mut(&mut self, id: Uuid, sender: &str) -> Option<&mut Message> {
        self.messages.get_mut(&id).filter(|m| m.sender_id == sender)
    }

    fn check_order(&self, event: &ChatEvent) -> Result<(), ApplyError> {
        let expected = self.last_seq + 1;
        if event.seq > expected {
            return Err(ApplyError::Gap {
                expected,
                got: event.seq,
            });
        }
        if event.seq < expected {
            return Err(ApplyError::Duplicate {
                expected,
                got: event.seq,
            });
        }
        match &self.room_id {
            Some(r) if *r != event.room_id => Err(ApplyError::WrongRoom {
                expected: r.to_string(),
                got: event.room_id.to_string(),
            }),
            _ => Ok(()),
        }
    }
}

/// The serialized form of a state: what the `/snapshot` route returns and
/// the web app loads. Indexes are rebuilt on load.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StateRepr {
    room_id: Option<CompactString>,
    info: Option<RoomInfo>,
    last_seq: u64,
    last_timestamp: Option<Timestamp>,
    read_markers: BTreeMap<CompactString, u64>,
    messages: Vec<Message>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    coverage: Option<Coverage>,
}

impl Serialize for RoomState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Borrowing would need a second struct; states are serialized rarely
        // (snapshots), so a clone of the parts is acceptable here.
        StateRepr {
            room_id: self.room_id.clone(),
            info: self.info.clone(),
            last_seq: self.last_seq,
            last_timestamp: self.last_timestamp,
            read_markers: self.read_markers.clone(),
            messages: self.messages.iter().cloned().collect(),
            coverage: self.coverage.clone(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for RoomState {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let r = StateRepr::deserialize(d)?;
        let mut state = RoomState {
            room_id: r.room_id,
            info: r.info,
            last_seq: r.last_seq,
            last_timestamp: r.last_timestamp,
            read_markers: r.read_markers,
            coverage: r.coverage,
            ..RoomState::default()
        };
        let mut messages = r.messages;
        if !messages.is_sorted_by_key(|m| m.seq) {
            messages.sort_unstable_by_key(|m| m.seq);
        }
        let inconsistent = || serde::de::Error::custom("inconsistent message list");
        if messages.first().is_some_and(|m| m.seq == 0)
            || messages.last().is_some_and(|m| m.seq > state.last_seq)
        {
            return Err(inconsistent());
        }
        state.messages = MessageLog::from_ascending(messages).ok_or_else(inconsistent)?;
        Ok(state)
    }
}
