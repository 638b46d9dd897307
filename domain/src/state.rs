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

use crate::event::{ChatEvent, EventKind};
use crate::messages::{InPlace, MessageLog, MessageStore, PREFETCH_AHEAD};
use crate::reactions::Reactions;
use crate::snapshot::chunk_of;
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

/// A message in the current view (deleted messages are not kept).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub id: Uuid,
    pub seq: u64,
    pub sender_id: CompactString,
    /// Short messages (up to 24 bytes) are kept inline, with no allocation.
    pub content: CompactString,
    pub sent_at: Timestamp,
    pub edited_at: Option<Timestamp>,
    /// Emoji → users who reacted with it; an emoji with no users is removed.
    pub reactions: Reactions,
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
    #[error("more than 4,294,967,294 events replayed at once")]
    TooLong,
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

    fn mark_all(&mut self) {
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
    ///
    /// Equal to applying each event to [`RoomState::new`], but faster on
    /// long logs: each message is written over events already applied, in
    /// the buffer of an owned `Vec` of events (other iterators are collected
    /// first), instead of in fresh memory; and the index lines each event
    /// will probe are fetched a few events ahead (see `messages::InPlace`).
    pub fn replay<I>(events: I) -> Result<Self, ApplyError>
    where
        I: IntoIterator<Item = ChatEvent>,
    {
        let mut state = Self::new();
        // Nothing of it was ever saved: every chunk goes in its first snapshot.
        state.dirty.mark_all();
        let Some(mut messages) = InPlace::new(events) else {
            return Err(ApplyError::TooLong);
        };
        loop {
            messages.prefetch(PREFETCH_AHEAD);
            let Some(event) = messages.take() else { break };
            state.apply_to(&mut messages, event)?;
        }
        state.messages = messages.finish();
        Ok(state)
    }

    /// Applies events in order, stopping at the first that does not fit.
    pub fn apply_all<I>(&mut self, events: I) -> Result<(), ApplyError>
    where
        I: IntoIterator<Item = ChatEvent>,
    {
        let events = events.into_iter();
        let mut messages = std::mem::take(&mut self.messages);
        // At most one message per event: reserving once avoids regrowing
        // (and re-faulting) large vectors while applying long logs.
        messages.reserve(events.size_hint().0);
        let mut result = Ok(());
        for e in events {
            result = self.apply_to(&mut messages, e);
            if result.is_err() {
                break;
            }
        }
        self.messages = messages;
        result
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
        self.messages
            .range(marker + 1, u64::MAX)
            .filter(|m| m.sender_id != user)
            .count()
    }

    /// Applies one event. Its seq must be exactly `last_seq + 1` and its room
    /// the room of the events before it.
    pub fn apply(&mut self, event: ChatEvent) -> Result<(), ApplyError> {
        self.apply_all(std::iter::once(event))
    }

    /// What `event` does, with the messages kept in `messages` (the state's
    /// own are moved out meanwhile, by `apply_all`).
    fn apply_to<M: MessageStore>(
        &mut self,
        messages: &mut M,
        event: ChatEvent,
    ) -> Result<(), ApplyError> {
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
        match kind {
            EventKind::RoomCreated { name } => {
                self.info = Some(RoomInfo {
                    room_id,
                    name,
                    created_by: sender_id,
                    created_at: timestamp,
                });
            }
            EventKind::MessageSent { content } => {
                let added = messages.insert(Message {
                    id: event_id,
                    seq,
                    sender_id,
                    content,
                    sent_at: timestamp,
                    edited_at: None,
                    reactions: Reactions::new(),
                });
                if added {
                    self.touch(seq);
                }
            }
            EventKind::MessageEdited {
                message_id,
                content,
            } => {
                if let Some(m) = own_message_mut(messages, message_id, &sender_id) {
                    if m.content != content {
                        m.content = content;
                        m.edited_at = Some(timestamp);
                        let s = m.seq;
                        self.touch(s);
                    }
                }
            }
            EventKind::MessageDeleted { message_id } => {
                if own_message_mut(messages, message_id, &sender_id).is_some() {
                    if let Some(m) = messages.remove(&message_id) {
                        self.touch(m.seq);
                    }
                }
            }
            EventKind::MessageRead { message_id } => {
                let target = messages.get(&message_id).map(|m| m.seq).or_else(|| {
                    self.coverage
                        .as_ref()
                        .and_then(|c| c.outside_seqs.get(&message_id).copied())
                });
                if let Some(s) = target {
                    let marker = self.read_markers.entry(sender_id).or_insert(0);
                    *marker = (*marker).max(s);
                }
            }
            EventKind::ReactionAdded { message_id, emoji } => {
                if let Some(m) = messages.get_mut(&message_id) {
                    if m.reactions.add(emoji, sender_id) {
                        let s = m.seq;
                        self.touch(s);
                    }
                }
            }
            EventKind::ReactionRemoved { message_id, emoji } => {
                if let Some(m) = messages.get_mut(&message_id) {
                    if m.reactions.remove(&emoji, &sender_id) {
                        let s = m.seq;
                        self.touch(s);
                    }
                }
            }
        }
        Ok(())
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

    /// Records that the chunk holding message `seq` changed.
    fn touch(&mut self, seq: u64) {
        self.dirty.insert(chunk_of(seq));
    }
}

fn own_message_mut<'a, M: MessageStore>(
    messages: &'a mut M,
    id: Uuid,
    sender: &str,
) -> Option<&'a mut Message> {
    messages.get_mut(&id).filter(|m| m.sender_id == sender)
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
