//! The live messages of a state, in seq order, with an index by id.
//!
//! Messages arrive in ascending seq, so they are kept in a vector (appends
//! are O(1), ranges by seq are a binary search). A deletion leaves a hole
//! that is compacted away once holes outnumber live messages.

use crate::state::Message;
use hashbrown::HashTable;
use std::hash::BuildHasher;
use uuid::Uuid;

/// foldhash: several times faster than SipHash on 16-byte keys and seeded
/// per process, so client-chosen ids cannot be crafted to collide. The seed
/// only affects the table's internal order, which nothing observes.
type Hasher = foldhash::fast::RandomState;

/// The id index holds only slot numbers (4 bytes per message, plus one
/// control byte) and compares ids through the slots. A table of `(Uuid,
/// usize)` pairs is 6× larger: past a few hundred thousand messages it falls
/// out of the caches and every send or lookup pays a miss. The table is
/// grown by rebuilding it from the slots in order, never by rehashing in
/// place, which would read the slots at random.
#[derive(Clone, Debug, Default)]
pub(crate) struct MessageLog {
    /// Seq of every slot, ascending.
    seqs: Vec<u64>,
    /// `None` where a message was deleted.
    slots: Vec<Option<Message>>,
    /// Slots of the live messages, by id.
    index: HashTable<u32>,
    hasher: Hasher,
}

impl MessageLog {
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn reserve(&mut self, additional: usize) {
        self.seqs.reserve(additional);
        self.slots.reserve(additional);
    }

    fn hash(&self, id: &Uuid) -> u64 {
        self.hasher.hash_one(id)
    }

    fn slot_of(&self, id: &Uuid) -> Option<usize> {
        let slots = &self.slots;
        self.index
            .find(self.hash(id), |&s| holds(slots, s, id))
            .map(|&s| s as usize)
    }

    pub fn contains(&self, id: &Uuid) -> bool {
        self.slot_of(id).is_some()
    }

    pub fn get(&self, id: &Uuid) -> Option<&Message> {
        self.slots[self.slot_of(id)?].as_ref()
    }

    pub fn get_mut(&mut self, id: &Uuid) -> Option<&mut Message> {
        let slot = self.slot_of(id)?;
        self.slots[slot].as_mut()
    }

    /// Adds a message; `false` (and nothing changes) if its id or its seq is
    /// already taken.
    pub fn insert(&mut self, m: Message) -> bool {
        let hash = self.hash(&m.id);
        if self
            .index
            .find(hash, |&s| holds(&self.slots, s, &m.id))
            .is_some()
        {
            return false;
        }
        if self.slots.len() >= u32::MAX as usize {
            return false;
        }
        if self.seqs.last().is_some_and(|&last| last >= m.seq) {
            // Out of order (only when loading unsorted input).
            return self.insert_in_place(m);
        }
        let slot = self.slots.len() as u32;
        if self.index.len() == self.index.capacity() {
            self.rebuild_index(self.index.len() + 1);
        }
        let (hasher, slots) = (&self.hasher, &self.slots);
        self.index
            .insert_unique(hash, slot, |&s| hash_slot(hasher, slots, s));
        self.seqs.push(m.seq);
        self.slots.push(Some(m));
        true
    }

    fn insert_in_place(&mut self, m: Message) -> bool {
        let pos = self.seqs.partition_point(|&s| s < m.seq);
        if self.seqs.get(pos) == Some(&m.seq) {
            if self.slots[pos].is_some() {
                return false;
            }
            self.slots[pos] = Some(m);
        } else {
            self.seqs.insert(pos, m.seq);
            self.slots.insert(pos, Some(m));
        }
        self.rebuild_index(self.index.len() + 1);
        true
    }

    pub fn remove(&mut self, id: &Uuid) -> Option<Message> {
        let hash = self.hash(id);
        let slots = &self.slots;
        let entry = self.index.find_entry(hash, |&s| holds(slots, s, id)).ok()?;
        let (slot, _) = entry.remove();
        let m = self.slots[slot as usize].take();
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
        self.slots.retain(Option::is_some);
        self.seqs = self.slots.iter().flatten().map(|m| m.seq).collect();
        self.rebuild_index(self.index.len());
    }

    /// Rebuilds the index from the slots, with room for at least `wanted`
    /// messages (the table rounds up to twice the buckets it had).
    fn rebuild_index(&mut self, wanted: usize) {
        let mut index = HashTable::with_capacity(wanted.max(8));
        let (hasher, slots) = (&self.hasher, &self.slots);
        for (i, m) in slots.iter().enumerate() {
            if let Some(m) = m {
                // Slots fit in u32: `insert` refuses to grow past that.
                let slot = i as u32;
                index.insert_unique(hasher.hash_one(m.id), slot, |&s| {
                    hash_slot(hasher, slots, s)
                });
            }
        }
        self.index = index;
    }
}

fn holds(slots: &[Option<Message>], slot: u32, id: &Uuid) -> bool {
    slots[slot as usize].as_ref().is_some_and(|m| m.id == *id)
}

fn hash_slot(hasher: &Hasher, slots: &[Option<Message>], slot: u32) -> u64 {
    slots[slot as usize]
        .as_ref()
        .map_or(0, |m| hasher.hash_one(m.id))
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
