//! The eventId index, (room, eventId) → seq, which makes appends
//! idempotent. eventIds are random, so each one written straight into a
//! B-tree of a million lands on a page of its own: a page (4 KiB) rewritten
//! per event, half of all the bytes an append wrote to disk. So new ids are
//! staged first, in a table keyed by their order of arrival (its pages
//! fill in order, whatever the rooms), and kept in memory for lookups.
//! Once [`MERGE_AT`] are staged, new ids go to the second staging table
//! while the first one's move into the index in key order, a run of them
//! per projection write (the append's own transaction, where the
//! projection goes with the events; each page of the index rewritten takes
//! several ids, and no write pauses long); then the first table is dropped
//! whole.
//!
//! Memory mirrors both staging tables as of the last commit: it changes
//! only after a transaction that wrote them committed, under the lock that
//! writers take after beginning their write transaction. Readers take the
//! lock before beginning theirs and read memory before letting go, so
//! their memory and their snapshot are of the same moment. A draining
//! table's ids stay in memory until the table is dropped. Committed
//! transactions form an ordered chain, so a crash loses at most the last
//! few (never the middle); whatever it loses is redone from the tables.

use super::{unavailable, StoreError, META};
use redb::{Database, ReadableTable, Table, TableDefinition, WriteTransaction};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

pub const EVENT_IDS: TableDefinition<(&str, u128), u64> = TableDefinition::new("chat_event_ids");
/// The two staging tables: n → (room, eventId, seq), n growing in order
/// of arrival (unique in a table; it starts again at 0 when both are empty).
pub const STAGED_IDS: [TableDefinition<u64, (&str, u128, u64)>; 2] = [
    TableDefinition::new("chat_event_ids_staged_0"),
    TableDefinition::new("chat_event_ids_staged_1"),
];
/// The `meta` key that says which staging table new ids go to.
pub const FILLING: &str = "staged_ids_filling";

/// Staged ids that start a merge. With the draining ones, memory holds at
/// most about twice as many (about 10 MiB) while projection writes succeed;
/// if they keep failing, commits take the merge steps past [`CAP`].
const MERGE_AT: usize = 65_536;
const CAP: usize = 2 * MERGE_AT;
/// Ids moved into the index by one merge step, at least: a pause of a few
/// milliseconds.
const MOVE_AT_LEAST: usize = 256;

/// The staged ids, in memory as on disk (see the module's comment).
pub struct Ids(Mutex<Staged>);

/// The ids of one staging table: (room, eventId) → seq, with each room's
/// name kept once (about 40 bytes an id, however the rooms are spread).
#[derive(Default)]
struct StagedMap {
    ids: HashMap<(u32, u128), u64>,
    room_names: Vec<Box<str>>,
    room_numbers: HashMap<Box<str>, u32>,
}

impl StagedMap {
    fn len(&self) -> usize {
        self.ids.len()
    }

    /// Adds `room`'s `id`; false if it was there (never written so).
    fn add(&mut self, room: &str, id: u128, seq: u64) -> bool {
        let n = match self.room_numbers.get(room) {
            Some(n) => *n,
            None => {
                let n = self.room_names.len() as u32;
                self.room_names.push(room.into());
                self.room_numbers.insert(room.into(), n);
                n
            }
        };
        self.ids.insert((n, id), seq).is_none()
    }

    fn get(&self, room: &str, id: u128) -> Option<u64> {
        let n = self.room_numbers.get(room)?;
        self.ids.get(&(*n, id)).copied()
    }

    /// A staging table's ids, and the key after its last.
    fn read(
        t: &impl ReadableTable<u64, (&'static str, u128, u64)>,
    ) -> Result<(Self, u64), StoreError> {
        let mut ids = StagedMap::default();
        let mut next = 0;
        for row in t.iter().map_err(unavailable)? {
            let (k, v) = row.map_err(unavailable)?;
            let (room, id, seq) = v.value();
            if !ids.add(room, id, seq) {
                return Err(StoreError::Corrupt(format!(
                    "an eventId of room {room} is staged twice"
                )));
            }
            next = k.value() + 1;
        }
        Ok((ids, next))
    }
}

/// A staging table whose ids move into the index.
struct Draining {
    ids: StagedMap,
    /// Its (room number, id, seq) in key order; those before `next` moved.
    sorted: Vec<(u32, u128, u64)>,
    next: usize,
}

impl Draining {
    fn of(ids: StagedMap) -> Draining {
        let mut sorted: Vec<(u32, u128, u64)> = ids
            .ids
            .iter()
            .map(|((n, id), seq)| (*n, *id, *seq))
            .collect();
        let names = &ids.room_names;
        sorted
            .sort_unstable_by(|a, b| (&names[a.0 as usize], a.1).cmp(&(&names[b.0 as usize], b.1)));
        Draining {
            ids,
            sorted,
            next: 0,
        }
    }
}

pub struct Staged {
    /// Which of [`STAGED_IDS`] new ids go to.
    filling: usize,
    /// The key of the next id staged.
    next_key: u64,
    filling_ids: StagedMap,
    draining: Option<Draining>,
    merge_at: usize,
    move_at_least: usize,
    /// Ids staged since the merge's last step: a step moves twice as many
    /// at least, so that a merge ends however fast ids come.
    added: usize,
}

/// A merge step taken in a write transaction, for [`Staged::record_step`]
/// once that is committed.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    Nothing,
    /// The filling table became the draining one.
    Started,
    /// The draining table's ids before `next` are in the index.
    Moved {
        next: usize,
    },
    /// The draining table moved whole, and was dropped.
    Done,
}

impl Ids {
    /// The ids staged in the store, `filling` being which table new ids go
    /// to (the `meta` row [`FILLING`]); ids of the other table are moved
    /// into the index again from the start (moving one twice is harmless).
    pub fn load(db: &Database, filling: u64) -> Result<Ids, StoreError> {
        let filling = match filling {
            0 | 1 => filling as usize,
            _ => return Err(StoreError::Corrupt(format!("{FILLING} is {filling}"))),
        };
        let tx = db.begin_read().map_err(unavailable)?;
        let table = |which: usize| tx.open_table(STAGED_IDS[which]).map_err(unavailable);
        let (filling_ids, next) = StagedMap::read(&table(filling)?)?;
        let (other, next_other) = StagedMap::read(&table(1 - filling)?)?;
        Ok(Ids(Mutex::new(Staged {
            filling,
            next_key: next.max(next_other),
            filling_ids,
            draining: (other.len() > 0).then(|| Draining::of(other)),
            merge_at: MERGE_AT,
            move_at_least: MOVE_AT_LEAST,
            added: 0,
        })))
    }

    pub fn lock(&self) -> MutexGuard<'_, Staged> {
        // Memory changes only after a commit, in steps that leave it whole
        // (see `record_step`): a panic elsewhere leaves nothing half-done.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Staged {
    /// How many ids are staged, in both tables.
    pub fn len(&self) -> usize {
        self.filling_ids.len() + self.draining.as_ref().map_or(0, |d| d.ids.len())
    }

    /// The seq of `room`'s event `id` if it is staged (else look in the
    /// index: [`seq_in`]).
    pub fn staged_seq(&self, room: &str, id: u128) -> Option<u64> {
        self.filling_ids
            .get(room, id)
            .or_else(|| self.draining.as_ref()?.ids.get(room, id))
    }

    /// The staging table new ids go to, in `tx`.
    pub fn table<'t>(
        &self,
        tx: &'t WriteTransaction,
    ) -> Result<Table<'t, u64, (&'static str, u128, u64)>, StoreError> {
        tx.open_table(STAGED_IDS[self.filling]).map_err(unavailable)
    }

    /// The key of the `n`th id staged from now (from 0).
    pub fn key(&self, n: u64) -> u64 {
        self.next_key + n
    }

    /// Records ids whose staging (rows of [`Staged::table`]) was committed.
    pub fn record_committed<'a>(&mut self, ids: impl IntoIterator<Item = (&'a str, u128, u64)>) {
        for (room, id, seq) in ids {
            self.filling_ids.add(room, id, seq);
            self.added += 1;
            self.next_key += 1;
        }
    }

    /// One merge step, in `tx`: starts a merge if enough ids are staged
    /// (new ids then go to the other table), or moves a run of the
    /// draining table's ids into the index, or drops that table once all
    /// moved. `tx` must have neither table open.
    pub fn merge(&self, tx: &WriteTransaction) -> Result<Step, StoreError> {
        let Some(d) = &self.draining else {
            if self.filling_ids.len() < self.merge_at {
                return Ok(Step::Nothing);
            }
            let mut meta = tx.open_table(META).map_err(unavailable)?;
            meta.insert(FILLING, 1 - self.filling as u64)
                .map_err(unavailable)?;
            return Ok(Step::Started);
        };
        if d.next == d.sorted.len() {
            let drained = STAGED_IDS[1 - self.filling];
            tx.delete_table(drained).map_err(unavailable)?;
            tx.open_table(drained).map_err(unavailable)?;
            return Ok(Step::Done);
        }
        let at_least = self.move_at_least.max(2 * self.added);
        let next = (d.next + at_least).min(d.sorted.len());
        let mut index = tx.open_table(EVENT_IDS).map_err(unavailable)?;
        for (n, id, seq) in &d.sorted[d.next..next] {
            let room = &d.ids.room_names[*n as usize];
            index.insert((&**room, *id), *seq).map_err(unavailable)?;
        }
        Ok(Step::Moved { next })
    }

    /// [`Staged::merge`], only when the staged ids passed [`CAP`]: for an
    /// append's transaction without its projection, when projection writes
    /// have not taken the steps.
    pub fn merge_if_over_cap(&self, tx: &WriteTransaction) -> Result<Step, StoreError> {
        if self.len() < CAP {
            return Ok(Step::Nothing);
        }
        self.merge(tx)
    }

    /// Records a merge step whose transaction was committed.
    pub fn record_step(&mut self, step: Step) {
        if step != Step::Nothing {
            self.added = 0;
        }
        match step {
            Step::Nothing => {}
            Step::Started => {
                let full = std::mem::take(&mut self.filling_ids);
                self.draining = Some(Draining::of(full));
                self.filling = 1 - self.filling;
            }
            Step::Moved { next } => {
                if let Some(d) = &mut self.draining {
                    d.next = next;
                }
            }
            Step::Done => self.draining = None,
        }
    }

    #[cfg(test)]
    pub fn set_merge_at(&mut self, merge_at: usize, move_at_least: usize) {
        (self.merge_at, self.move_at_least) = (merge_at, move_at_least);
    }

    /// (filling table, draining ids moved, draining ids in all).
    #[cfg(test)]
    pub fn phase(&self) -> (usize, Option<(usize, usize)>) {
        let d = self.draining.as_ref().map(|d| (d.next, d.sorted.len()));
        (self.filling, d)
    }
}

/// The seq of `room`'s event `id` in the index.
pub fn seq_in(
    index: &impl ReadableTable<(&'static str, u128), u64>,
    room: &str,
    id: u128,
) -> Result<Option<u64>, StoreError> {
    Ok(index
        .get((room, id))
        .map_err(unavailable)?
        .map(|v| v.value()))
}
