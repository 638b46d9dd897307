//! [`MessageLog`]: the live messages of a state, in seq order, with an index
//! by id.
//!
//! Messages arrive in ascending seq, so they are kept in a vector (appends
//! are O(1), ranges by seq are a binary search). A deletion leaves a hole
//! (which keeps its seq, so the search still works) that is compacted away
//! once holes outnumber live messages.

use crate::message::Message;
use hashbrown::HashTable;
use std::hash::BuildHasher;
use uuid::Uuid;

/// foldhash: several times faster than SipHash on 16-byte keys and seeded
/// per process, so client-chosen ids cannot be crafted to collide. The seed
/// only affects the map's internal order, which nothing observes.
type Hasher = foldhash::fast::RandomState;

#[derive(Clone, Debug, Default)]
pub(crate) struct MessageLog {
    /// Ascending by seq.
    slots: Vec<Slot>,
    /// Position in `slots` of each live message, found by the hash of its
    /// id. Only the position is stored (4 bytes, plus hashbrown's control
    /// byte), and the id is compared in the message itself: a table of
    /// `(Uuid, usize)` pairs is five times larger, and past a few hundred
    /// thousand messages a larger table means a cache miss on most lookups.
    index: HashTable<u32>,
    hasher: Hasher,
}

/// A message, or the hole a deleted one left. The same size as the message
/// alone: the hole's seq fits beside the message's niche.
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

    fn live_mut(&mut self) -> Option<&mut Message> {
        match self {
            Slot::Live(m) => Some(m),
            Slot::Deleted { .. } => None,
        }
    }
}

impl MessageLog {
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// A log of `messages`, which must be in strictly ascending seq with
    /// distinct ids (`None` otherwise).
    pub fn from_ascending(messages: Vec<Message>) -> Option<MessageLog> {
        if !messages.is_sorted_by(|a, b| a.seq < b.seq) {
            return None;
        }
        let mut log = MessageLog {
            slots: Vec::with_capacity(messages.len()),
            ..MessageLog::default()
        };
        log.index.reserve(messages.len(), |_| 0);
        for m in messages {
            if !log.insert(m) {
                return None;
            }
        }
        Some(log)
    }

    /// Room for `additional` more messages without reallocating.
    pub fn reserve(&mut self, additional: usize) {
        self.slots.reserve(additional);
    }

    fn hash(&self, id: &Uuid) -> u64 {
        self.hasher.hash_one(id)
    }

    /// The position of the live message `id`.
    fn position(&self, id: &Uuid) -> Option<usize> {
        let slots = &self.slots;
        let is_it = |&pos: &u32| slots[pos as usize].live().is_some_and(|m| m.id == *id);
        self.index
            .find(self.hash(id), is_it)
            .map(|&pos| pos as usize)
    }

    pub fn contains(&self, id: &Uuid) -> bool {
        self.position(id).is_some()
    }

    pub fn get(&self, id: &Uuid) -> Option<&Message> {
        self.slots[self.position(id)?].live()
    }

    pub fn get_mut(&mut self, id: &Uuid) -> Option<&mut Message> {
        let pos = self.position(id)?;
        self.slots[pos].live_mut()
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
        // One probe both checks the id and finds its place.
        let hash = self.hash(&m.id);
        let (slots, hasher) = (&self.slots, &self.hasher);
        let is_it = |&p: &u32| slots[p as usize].live().is_some_and(|s| s.id == m.id);
        match self.index.entry(hash, is_it, |&p| rehash(slots, hasher, p)) {
            hashbrown::hash_table::Entry::Occupied(_) => false,
            hashbrown::hash_table::Entry::Vacant(place) => {
                place.insert(slots.len() as u32);
                self.slots.push(Slot::Live(m));
                true
            }
        }
    }

    /// Records that the message `id` is at `pos`.
    fn index_at(&mut self, pos: usize, id: &Uuid) {
        let (slots, hasher) = (&self.slots, &self.hasher);
        let hash = hasher.hash_one(id);
        self.index
            .insert_unique(hash, pos as u32, |&p| rehash(slots, hasher, p));
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
        let pos = self.position(id)?;
        let hash = self.hash(id);
        if let Ok(entry) = self.index.find_entry(hash, |&p| p as usize == pos) {
            entry.remove();
        }
        let seq = self.slots[pos].seq();
        let removed = match std::mem::replace(&mut self.slots[pos], Slot::Deleted { seq }) {
            Slot::Live(m) => Some(m),
            Slot::Deleted { .. } => None,
        };
        self.compact_if_sparse();
        removed
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
        let holes = self.slots.len() - self.index.len();
        if holes > 1024 && holes > self.index.len() {
            self.slots.retain(|s| s.live().is_some());
            self.reindex();
        }
    }

    /// Rebuilds the index after slots moved.
    fn reindex(&mut self) {
        self.index.clear();
        for pos in 0..self.slots.len() {
            if let Slot::Live(m) = &self.slots[pos] {
                let id = m.id;
                self.index_at(pos, &id);
            }
        }
    }
}

/// The hash of the message at `pos`, for the index when it grows.
fn rehash(slots: &[Slot], hasher: &Hasher, pos: u32) -> u64 {
    match &slots[pos as usize] {
        Slot::Live(m) => hasher.hash_one(m.id),
        Slot::Deleted { .. } => unreachable!("only live messages are indexed"),
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
    fn finds_every_live_message_through_compaction() {
        let n = 3 * (1 << 14);
        let mut log = MessageLog::default();
        for i in 1..=n {
            assert!(log.insert(msg(i)));
        }
        assert!(!log.insert(msg(n - 1)), "a recent id is refused again");
        assert!(!log.insert(msg(7)), "an old id is refused again");
        // Deleting two thirds compacts; the index must follow the moved slots.
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
