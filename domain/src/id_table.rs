//! The table behind the message index: slot numbers by 32-bit hash, with
//! linear probing.
//!
//! A hand-written table rather than `hashbrown`'s, because replaying a long
//! log misses the cache on nearly every new id, and the fewer lines a table
//! touches per probe the faster a replay goes: in alternating runs, a
//! million-event replay takes a quarter less time on this table than on a
//! `hashbrown::HashTable` of positions, and bytes to state (decode + apply)
//! 7–9% less (BENCHMARKS.md).
//!
//! Entries are 8 bytes (a slot number and 32 bits of the id's hash), with no
//! separate control bytes. The bucket of a hash is its top bits, so buckets
//! are in the order of the hashes and growing copies the old table to the
//! new one front to back. Deletion shifts the entries after it back, so
//! there are no tombstones and lookups never slow down with churn.

/// One entry: `slot` names the message, `hash` is 32 bits of its id's hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub hash: u32,
    pub slot: u32,
}

/// Marks an empty bucket (slot numbers stay below `u32::MAX`).
pub(crate) const EMPTY: Entry = Entry {
    hash: 0,
    slot: u32::MAX,
};

impl Entry {
    fn is_empty(&self) -> bool {
        self.slot == u32::MAX
    }
}

#[derive(Clone, Debug)]
pub(crate) struct IdTable {
    /// A power-of-two number of buckets (at least [`MIN_BUCKETS`]), or none
    /// before the first insert.
    buckets: Box<[Entry]>,
    /// `32 - log2(buckets)`: the bucket of a hash is `hash >> shift`.
    shift: u32,
    len: usize,
}

const MIN_BUCKETS: usize = 8;

/// Most entries a table takes: 3/4 of 2^32 buckets, the most a 32-bit hash
/// can address. Far above what fits in memory in messages.
const MAX_LEN: usize = 3 << 30;

/// Empty, without allocating: most states of small rooms (and the copies
/// the browser makes) never need more than a few buckets, many none.
impl Default for IdTable {
    fn default() -> Self {
        IdTable {
            buckets: Box::default(),
            shift: 32,
            len: 0,
        }
    }
}

impl IdTable {
    fn with_buckets(n: usize) -> Self {
        debug_assert!(n.is_power_of_two() && n >= MIN_BUCKETS);
        IdTable {
            buckets: vec![EMPTY; n].into_boxed_slice(),
            shift: 32 - n.trailing_zeros(),
            len: 0,
        }
    }

    /// A table that holds `n` entries without growing.
    pub fn with_capacity(n: usize) -> Self {
        if n == 0 {
            return Self::default();
        }
        let buckets = (n + n / 3 + 1).next_power_of_two().max(MIN_BUCKETS);
        Self::with_buckets(buckets)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// The bucket where a probe for `hash` starts. Only for a table with
    /// buckets (`shift` is then at most 29).
    fn home(&self, hash: u32) -> usize {
        (hash >> self.shift) as usize
    }

    fn next(&self, i: usize) -> usize {
        (i + 1) & (self.buckets.len() - 1)
    }

    /// The slot of the entry with `hash` for which `is` holds.
    pub fn find(&self, hash: u32, mut is: impl FnMut(u32) -> bool) -> Option<u32> {
        if self.buckets.is_empty() {
            return None;
        }
        let mut i = self.home(hash);
        loop {
            let e = self.buckets[i];
            if e.is_empty() {
                return None;
            }
            if e.hash == hash && is(e.slot) {
                return Some(e.slot);
            }
            i = self.next(i);
        }
    }

    /// Adds `slot` under `hash` unless an entry with `hash` for which `is`
    /// holds is there already; `false` (and nothing changes) in that case.
    /// One probe does both. Also `false` for a table at [`MAX_LEN`].
    pub fn insert_unless(&mut self, hash: u32, slot: u32, mut is: impl FnMut(u32) -> bool) -> bool {
        debug_assert_ne!(slot, u32::MAX);
        if self.len >= MAX_LEN {
            return false;
        }
        // At most 3/4 full: the probe of a new id stays within a line or two.
        if (self.len + 1) * 4 > self.buckets.len() * 3 {
            self.grow();
        }
        let mut i = self.home(hash);
        loop {
            let e = self.buckets[i];
            if e.is_empty() {
                self.buckets[i] = Entry { hash, slot };
                self.len += 1;
                return true;
            }
            if e.hash == hash && is(e.slot) {
                return false;
            }
            i = self.next(i);
        }
    }

    /// Removes the entry of `slot` (stored under `hash`), if any.
    pub fn remove(&mut self, hash: u32, slot: u32) {
        if self.buckets.is_empty() {
            return;
        }
        let mut i = self.home(hash);
        loop {
            let e = self.buckets[i];
            if e.is_empty() {
                return;
            }
            if e.slot == slot && e.hash == hash {
                break;
            }
            i = self.next(i);
        }
        // Shift back the entries of the run after `i` that may move to it:
        // those whose home is not in the cyclic range (i, j].
        let mut j = i;
        loop {
            j = self.next(j);
            let e = self.buckets[j];
            if e.is_empty() {
                break;
            }
            let home = self.home(e.hash);
            let stays = if i <= j {
                i < home && home <= j
            } else {
                i < home || home <= j
            };
            if !stays {
                self.buckets[i] = e;
                i = j;
            }
        }
        self.buckets[i] = EMPTY;
        self.len -= 1;
    }

    fn grow(&mut self) {
        if self.buckets.is_empty() {
            *self = Self::with_buckets(MIN_BUCKETS);
            return;
        }
        let mut bigger = Self::with_buckets(self.buckets.len() * 2);
        // The buckets are in hash order except for the run that wraps around
        // the end; starting after an empty bucket keeps that run in order,
        // so the new table is written front to back.
        let start = self
            .buckets
            .iter()
            .position(Entry::is_empty)
            .expect("a table below 3/4 full has an empty bucket");
        let n = self.buckets.len();
        for k in 1..=n {
            let e = self.buckets[(start + k) & (n - 1)];
            if !e.is_empty() {
                bigger.place(e);
            }
        }
        *self = bigger;
    }

    /// Puts an entry known not to be there.
    fn place(&mut self, e: Entry) {
        let mut i = self.home(e.hash);
        while !self.buckets[i].is_empty() {
            i = self.next(i);
        }
        self.buckets[i] = e;
        self.len += 1;
    }

    /// Every entry, in no particular order.
    #[cfg(test)]
    pub fn entries(&self) -> impl Iterator<Item = Entry> + '_ {
        self.buckets.iter().copied().filter(|e| !e.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A model check: random inserts, duplicate inserts and removes with
    /// hashes drawn from a small set (long runs, many equal hashes, runs
    /// that wrap around the end) agree with a `HashMap`.
    #[test]
    fn agrees_with_a_map_under_collisions_and_wraparound() {
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        // slot -> hash; the hashes crowd the ends of the range so runs wrap.
        let hashes = [0u32, 1, 5, u32::MAX, u32::MAX - 1, 1 << 31, 77, 3 << 30];
        let mut model: HashMap<u32, u32> = HashMap::new();
        let mut table = IdTable::default();
        let mut next_slot = 0u32;
        for step in 0..20_000 {
            let r = next();
            if r % 3 != 0 || model.is_empty() {
                let hash = hashes[(r >> 8) as usize % hashes.len()];
                let slot = next_slot;
                next_slot += 1;
                assert!(table.insert_unless(hash, slot, |_| false));
                model.insert(slot, hash);
                // The same slot again is refused.
                assert!(!table.insert_unless(hash, slot + 1, |s| s == slot));
            } else {
                let slots: Vec<u32> = model.keys().copied().collect();
                let slot = slots[(r >> 8) as usize % slots.len()];
                let hash = model.remove(&slot).unwrap();
                table.remove(hash, slot);
            }
            if step % 997 == 0 {
                assert_eq!(table.len(), model.len());
                for (&slot, &hash) in &model {
                    assert_eq!(table.find(hash, |s| s == slot), Some(slot), "step {step}");
                }
                let mut listed: Vec<u32> = table.entries().map(|e| e.slot).collect();
                listed.sort_unstable();
                let mut expected: Vec<u32> = model.keys().copied().collect();
                expected.sort_unstable();
                assert_eq!(listed, expected);
            }
        }
        for (&slot, &hash) in &model {
            table.remove(hash, slot);
            assert_eq!(table.find(hash, |s| s == slot), None);
        }
        assert_eq!(table.len(), 0);
    }

    #[test]
    fn removing_an_absent_entry_changes_nothing() {
        let mut table = IdTable::default();
        assert_eq!(table.find(9, |_| true), None);
        table.remove(9, 1);
        assert!(table.insert_unless(9, 1, |_| false));
        table.remove(9, 2);
        table.remove(10, 1);
        assert_eq!(table.len(), 1);
        assert_eq!(table.find(9, |s| s == 1), Some(1));
    }

    #[test]
    fn grows_and_keeps_every_entry() {
        let mut table = IdTable::with_capacity(0);
        for slot in 0..100_000u32 {
            let hash = slot.wrapping_mul(0x9e37_79b9);
            assert!(table.insert_unless(hash, slot, |s| s == slot));
        }
        assert!(table.buckets.len() >= 100_000 * 4 / 3);
        for slot in 0..100_000u32 {
            let hash = slot.wrapping_mul(0x9e37_79b9);
            assert_eq!(table.find(hash, |s| s == slot), Some(slot));
        }
    }
}
