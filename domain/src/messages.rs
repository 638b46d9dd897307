//! The live messages of a state, in seq order, with an index by id.
//!
//! Messages arrive in ascending seq, so they are kept in a vector (appends
//! are O(1), ranges by seq are a binary search). A deletion leaves a hole
//! that is compacted away once holes outnumber live messages.

use crate::state::Message;
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use uuid::Uuid;

/// foldhash: several times faster than SipHash on 16-byte keys and seeded
/// per process, so client-chosen ids cannot be crafted to collide. The seed
/// only affects the table's internal order, which nothing observes.
type Hasher = foldhash::fast::RandomState;

#[derive(Clone, Debug, Default)]
pub(crate) struct MessageLog {
    /// Seq of every slot, ascending.
    seqs: Vec<u64>,
    /// `None` where a message was deleted.
    slots: Vec<Option<Message>>,
    /// Live message id → slot.
    index: HashMap<Uuid, usize, Hasher>,
}

impl MessageLog {
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn reserve(&mut self, additional: usize) {
        self.seqs.reserve(additional);
        self.slots.reserve(additional);
    }

    pub fn contains(&self, id: &Uuid) -> bool {
        self.index.contains_key(id)
    }

    pub fn get(&self, id: &Uuid) -> Option<&Message> {
        let &slot = self.index.get(id)?;
        self.slots[slot].as_ref()
    }

    pub fn get_mut(&mut self, id: &Uuid) -> Option<&mut Message> {
        let &slot = self.index.get(id)?;
        self.slots[slot].as_mut()
    }

    /// Adds a message; `false` (and nothing changes) if its id or its seq is
    /// already taken.
    pub fn insert(&mut self, m: Message) -> bool {
        let in_order = self.seqs.last().is_none_or(|&last| last < m.seq);
        let slot = self.slots.len();
        match self.index.entry(m.id) {
            Entry::Occupied(_) => return false,
            Entry::Vacant(v) if in_order => {
                v.insert(slot);
                self.seqs.push(m.seq);
                self.slots.push(Some(m));
                return true;
            }
            Entry::Vacant(_) => {}
        }
        // Out of order (only when loading unsorted input): insert in place.
        let pos = self.seqs.partition_point(|&s| s < m.seq);
        if self.seqs.get(pos) == Some(&m.seq) {
            if self.slots[pos].is_some() {
                return false;
            }
            self.index.insert(m.id, pos);
            self.slots[pos] = Some(m);
            return true;
        }
        self.seqs.insert(pos, m.seq);
        self.slots.insert(pos, Some(m));
        self.reindex();
        true
    }

    pub fn remove(&mut self, id: &Uuid) -> Option<Message> {
        let slot = self.index.remove(id)?;
        let m = self.slots[slot].take();
        let holes = self.slots.len() - self.index.len();
        if holes > 1024 && holes > self.index.len() {
            self.compact();
        }
        m
    }

    /// Live messages in seq order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Message> + '_ {
        self.slots.iter().flatten()
    }

    /// Live messages with `lo <= seq < hi`, in seq order.
    pub fn range(&self, lo: u64, hi: u64) -> impl DoubleEndedIterator<Item = &Message> + '_ {
        let a = self.seqs.partition_point(|&s| s < lo);
        let b = self.seqs.partition_point(|&s| s < hi).max(a);
        self.slots[a..b].iter().flatten()
    }

    fn compact(&mut self) {
        let slots = std::mem::take(&mut self.slots);
        self.slots = slots.into_iter().filter(Option::is_some).collect();
        self.seqs = self.slots.iter().flatten().map(|m| m.seq).collect();
        self.reindex();
    }

    fn reindex(&mut self) {
        self.index.clear();
        for (i, m) in self.slots.iter().enumerate() {
            if let Some(m) = m {
                self.index.insert(m.id, i);
            }
        }
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
    use std::collections::BTreeMap;

    fn msg(n: u64) -> Message {
        Message {
            id: Uuid::from_u128(n as u128),
            seq: n,
            sender_id: "a".into(),
            content: "x".into(),
            sent_at: Timestamp::from_millis(0).unwrap(),
            edited_at: None,
            reactions: BTreeMap::new(),
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
}
