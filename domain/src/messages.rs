//! The live messages of a state, in seq order, with an index by id.
//!
//! Messages arrive in ascending seq, so they are kept in a vector (appends
//! are O(1), ranges by seq are a binary search). A deletion leaves a hole
//! (which keeps its seq, so the search still works) that is compacted away
//! once holes outnumber live messages.

use crate::id_table::{Entry, IdTable, EMPTY};
use crate::message::Message;
use std::hash::BuildHasher;
use uuid::Uuid;

/// foldhash: several times faster than SipHash on 16-byte keys and seeded
/// per process, so client-chosen ids cannot be crafted to collide. The seed
/// only affects the table's internal order, which nothing observes.
type Hasher = foldhash::fast::RandomState;

/// Slot numbers of the live messages by id.
///
/// The table ([`IdTable`]) holds, per live message, its slot and 32 bits of
/// its id's hash: 8 bytes. A table of `(Uuid, usize)` pairs is three times
/// larger: past a few hundred thousand messages it falls out of the caches
/// and every send or lookup pays a miss. The stored hash lets the table grow
/// without reading the messages and filters out nearly every false
/// candidate before a message is touched.
#[derive(Clone, Debug, Default)]
struct IdIndex {
    table: IdTable,
    /// The newest messages by hash, direct-mapped: edits, reads and reactions
    /// mostly target recent messages, and this answers them from the cache
    /// instead of a miss in the large table. An entry is only a hint, checked
    /// against the message it names.
    recent: Box<[Entry]>,
    hasher: Hasher,
}

/// Entries of the recent-message cache (128 KiB), kept once a log has
/// this many slots.
const RECENT: usize = 1 << 14;

impl IdIndex {
    fn with_capacity(n: usize) -> Self {
        IdIndex {
            table: IdTable::with_capacity(n),
            ..IdIndex::default()
        }
    }

    fn len(&self) -> usize {
        self.table.len()
    }

    fn hash(&self, id: &Uuid) -> u32 {
        // Folding keeps entropy from both halves of the 64-bit hash.
        let h = self.hasher.hash_one(id);
        (h ^ (h >> 32)) as u32
    }

    /// The slot of `id`; `message` gives the live message of a slot.
    fn find<'a>(
        &self,
        hash: u32,
        id: &Uuid,
        message: impl Fn(u32) -> Option<&'a Message>,
    ) -> Option<u32> {
        let holds = |slot| message(slot).is_some_and(|m| m.id == *id);
        if let Some(hint) = self.recent.get(hash as usize % RECENT) {
            if hint.hash == hash && holds(hint.slot) {
                return Some(hint.slot);
            }
        }
        self.table.find(hash, holds)
    }

    /// Records a new message for `id` in `slot`, the newest of `slots`,
    /// unless `id` is taken (then `false`).
    fn insert<'a>(
        &mut self,
        hash: u32,
        id: &Uuid,
        slot: u32,
        slots: usize,
        message: impl Fn(u32) -> Option<&'a Message>,
    ) -> bool {
        let holds = |slot| message(slot).is_some_and(|m| m.id == *id);
        if !self.table.insert_unless(hash, slot, holds) {
            return false;
        }
        let entry = Entry { hash, slot };
        if let Some(hint) = self.recent.get_mut(hash as usize % RECENT) {
            *hint = entry;
        } else if slots >= RECENT {
            // Small logs do without: their table is in the caches anyway.
            self.recent = vec![EMPTY; RECENT].into_boxed_slice();
        }
        true
    }

    fn remove(&mut self, hash: u32, slot: u32) {
        self.table.remove(hash, slot);
    }

    /// Rebuilds the index for messages that moved.
    fn rebuild<'a>(&mut self, live: impl Iterator<Item = (u32, &'a Message)>) {
        self.recent = Box::default();
        let mut table = IdTable::with_capacity(self.table.len() + 1);
        for (slot, m) in live {
            let hash = self.hash(&m.id);
            table.insert_unless(hash, slot, |_| false);
        }
        self.table = table;
    }
}

#[derive(Clone, Debug, Default)]
pub(crate) struct MessageLog {
    /// Ascending by seq.
    slots: Vec<Slot>,
    ids: IdIndex,
}

/// A message, or the hole a deleted one left. The same 96 bytes as the
/// message alone: the hole's seq fits beside the message's niche.
#[derive(Clone, Debug)]
enum Slot {
    Live(Message),
    Deleted { seq: u64 },
}

impl Slot {
    fn seq(&self) -> u64 {
        match self {
            Slot::Live(m) => m.seq,
            Slot::Deleted { seq } => *seq,
        }
    }

    fn live(&self) -> Option<&Message> {
        match self {
            Slot::Live(m) => Some(m),
            Slot::Deleted { .. } => None,
        }
    }

    /// Leaves a hole with the same seq; the message that was there, if any.
    fn delete(&mut self) -> Option<Message> {
        let seq = self.seq();
        match std::mem::replace(self, Slot::Deleted { seq }) {
            Slot::Live(m) => Some(m),
            Slot::Deleted { .. } => None,
        }
    }

    fn live_mut(&mut self) -> Option<&mut Message> {
        match self {
            Slot::Live(m) => Some(m),
            Slot::Deleted { .. } => None,
        }
    }
}

fn slot_message(slots: &[Slot], slot: u32) -> Option<&Message> {
    slots.get(slot as usize).and_then(Slot::live)
}

impl MessageLog {
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// A log of `messages`, which must be in strictly ascending seq with
    /// distinct ids (`None` otherwise). The index is built in one go.
    pub fn from_ascending(messages: Vec<Message>) -> Option<MessageLog> {
        if messages.len() >= u32::MAX as usize || !messages.is_sorted_by(|a, b| a.seq < b.seq) {
            return None;
        }
        // Same size and alignment: collected in the same buffer.
        let slots: Vec<Slot> = messages.into_iter().map(Slot::Live).collect();
        let mut ids = IdIndex::with_capacity(slots.len());
        let message = |s| slot_message(&slots, s);
        for (i, m) in slots.iter().filter_map(Slot::live).enumerate() {
            let hash = ids.hash(&m.id);
            if !ids.insert(hash, &m.id, i as u32, i + 1, message) {
                return None;
            }
        }
        Some(MessageLog { slots, ids })
    }

    pub fn reserve(&mut self, additional: usize) {
        self.slots.reserve(additional);
    }

    fn slot_of(&self, id: &Uuid) -> Option<usize> {
        let slots = &self.slots;
        let found = self
            .ids
            .find(self.ids.hash(id), id, |s| slot_message(slots, s));
        found.map(|s| s as usize)
    }

    pub fn contains(&self, id: &Uuid) -> bool {
        self.slot_of(id).is_some()
    }

    pub fn get(&self, id: &Uuid) -> Option<&Message> {
        self.slots[self.slot_of(id)?].live()
    }

    pub fn get_mut(&mut self, id: &Uuid) -> Option<&mut Message> {
        let slot = self.slot_of(id)?;
        self.slots[slot].live_mut()
    }

    /// Adds a message; `false` (and nothing changes) if its id or its seq is
    /// already taken.
    pub fn insert(&mut self, m: Message) -> bool {
        if self.slots.len() >= u32::MAX as usize {
            return false;
        }
        if self.slots.last().is_some_and(|last| last.seq() >= m.seq) {
            // Out of order (only when loading unsorted input).
            return !self.contains(&m.id) && self.insert_in_place(m);
        }
        let hash = self.ids.hash(&m.id);
        let slot = self.slots.len() as u32;
        let slots = &self.slots;
        let message = |s| slot_message(slots, s);
        if !self.ids.insert(hash, &m.id, slot, slots.len() + 1, message) {
            return false;
        }
        self.slots.push(Slot::Live(m));
        true
    }

    fn insert_in_place(&mut self, m: Message) -> bool {
        let pos = self.slots.partition_point(|s| s.seq() < m.seq);
        match self.slots.get(pos) {
            Some(Slot::Live(taken)) if taken.seq == m.seq => return false,
            Some(Slot::Deleted { seq }) if *seq == m.seq => self.slots[pos] = Slot::Live(m),
            _ => self.slots.insert(pos, Slot::Live(m)),
        }
        self.reindex();
        true
    }

    pub fn remove(&mut self, id: &Uuid) -> Option<Message> {
        let slot = self.slot_of(id)?;
        let hash = self.ids.hash(id);
        self.ids.remove(hash, slot as u32);
        let m = self.slots[slot].delete();
        self.compact_if_sparse();
        m
    }

    /// Live messages in seq order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Message> + '_ {
        self.slots.iter().filter_map(Slot::live)
    }

    /// Live messages with `lo <= seq < hi`, in seq order.
    pub fn range(&self, lo: u64, hi: u64) -> impl DoubleEndedIterator<Item = &Message> + '_ {
        let a = self.slots.partition_point(|s| s.seq() < lo);
        let b = self.slots.partition_point(|s| s.seq() < hi).max(a);
        self.slots[a..b].iter().filter_map(Slot::live)
    }

    fn compact_if_sparse(&mut self) {
        let holes = self.slots.len() - self.ids.len();
        if holes > 1024 && holes > self.ids.len() {
            self.slots.retain(|s| s.live().is_some());
            self.reindex();
        }
    }

    /// Rebuilds the index after slots moved.
    fn reindex(&mut self) {
        let live = self.slots.iter().enumerate();
        // Slots fit in u32: `insert` refuses to grow past that.
        let live = live.filter_map(|(i, s)| Some((i as u32, s.live()?)));
        self.ids.rebuild(live);
    }
}

impl PartialEq for MessageLog {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Timestamp;

    fn msg(n: u64) -> Message {
        Message {
            id: Uuid::from_u128(n as u128),
            seq: n,
            sender_id: "a".into(),
            content: "x".into(),
            sent_at: Timestamp::from_millis(0).unwrap(),
            edited_at: None,
            reactions: Default::default(),
        }
    }

    #[test]
    fn keeps_seq_order_through_deletes_and_compaction() {
        let mut log = MessageLog::default();
        for n in 1..=5000 {
            assert!(log.insert(msg(n)));
        }
        assert!(!log.insert(msg(10)), "an id is taken once");
        for n in (1..=5000).filter(|n| n % 4 != 0) {
            assert!(log.remove(&Uuid::from_u128(n)).is_some());
        }
        assert_eq!(log.len(), 1250);
        let seqs: Vec<u64> = log.iter().map(|m| m.seq).collect();
        assert_eq!(seqs, (1..=1250).map(|n| n * 4).collect::<Vec<_>>());
        assert_eq!(log.get(&Uuid::from_u128(4000)).unwrap().seq, 4000);
        let r: Vec<u64> = log.range(10, 21).map(|m| m.seq).collect();
        assert_eq!(r, vec![12, 16, 20]);
        assert!(log.range(30, 10).next().is_none());
    }

    #[test]
    fn finds_every_live_message_through_cache_and_compaction() {
        let n = 3 * RECENT as u64;
        let mut log = MessageLog::default();
        for i in 1..=n {
            assert!(log.insert(msg(i)));
        }
        assert!(!log.insert(msg(n - 1)), "a recent id is refused again");
        assert!(!log.insert(msg(7)), "an old id is refused again");
        // Deleting two thirds compacts; the cache must not name moved slots.
        for i in (1..=n).filter(|i| i % 3 != 0) {
            assert_eq!(log.remove(&Uuid::from_u128(i.into())).unwrap().seq, i);
        }
        for i in 1..=n {
            let found = log.get(&Uuid::from_u128(i.into())).map(|m| m.seq);
            assert_eq!(found, (i % 3 == 0).then_some(i), "message {i}");
        }
        let more = n + 1;
        assert!(log.insert(msg(more)));
        assert_eq!(log.get(&Uuid::from_u128(more.into())).unwrap().seq, more);
        assert_eq!(log.len() as u64, n / 3 + 1);
    }

    #[test]
    fn a_hole_costs_no_more_than_a_message() {
        assert_eq!(std::mem::size_of::<Slot>(), std::mem::size_of::<Message>());
    }

    #[test]
    fn out_of_order_inserts_land_in_place() {
        let mut log = MessageLog::default();
        for n in [5, 1, 3, 9, 7] {
            assert!(log.insert(msg(n)));
        }
        let seqs: Vec<u64> = log.iter().map(|m| m.seq).collect();
        assert_eq!(seqs, vec![1, 3, 5, 7, 9]);
        assert_eq!(log.get(&Uuid::from_u128(3)).unwrap().seq, 3);
        log.remove(&Uuid::from_u128(3));
        assert!(log.insert(msg(3)));
        let mut dup = msg(3);
        dup.id = Uuid::from_u128(99);
        assert!(!log.insert(dup), "a seq is taken once");
    }

    #[test]
    fn from_ascending_refuses_disorder_and_duplicate_ids() {
        assert!(MessageLog::from_ascending(vec![msg(1), msg(2), msg(5)]).is_some());
        assert!(MessageLog::from_ascending(vec![msg(2), msg(1)]).is_none());
        assert!(MessageLog::from_ascending(vec![msg(1), msg(1)]).is_none());
        let mut same_id = msg(3);
        same_id.id = Uuid::from_u128(1);
        assert!(MessageLog::from_ascending(vec![msg(1), same_id]).is_none());
    }
}
