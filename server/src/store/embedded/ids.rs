//! The eventId index, (room, eventId) → seq, which makes appends
//! idempotent. eventIds are random, so each one written straight into a
//! B-tree of a million lands on a page of its own: a page (4 KiB) rewritten
//! per event, half of all the bytes an append wrote to disk. So new ids are
//! staged first, in a table keyed (room, seq) that fills its pages in
//! order, and kept in memory for lookups. Once [`MERGE_AT`] are staged, new
//! ids go to a second staging table while the first one's move into the
//! index, in key order and a few 256ths of the id space per projection
//! write (so that each page of the index rewritten takes several ids, and
//! no write pauses long); then the first table is dropped whole.

use super::{unavailable, StoreError};
use redb::{Database, ReadableTable, Table, TableDefinition, WriteTransaction};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

pub const EVENT_IDS: TableDefinition<(&str, u128), u64> = TableDefinition::new("chat_event_ids");
/// The two staging tables: (room, seq) → eventId.
pub const STAGED_IDS: [TableDefinition<(&str, u64), u128>; 2] = [
    TableDefinition::new("chat_event_ids_staged_0"),
    TableDefinition::new("chat_event_ids_staged_1"),
];
/// The `meta` key that says which staging table new ids go to.
pub const FILLING: &str = "staged_ids_filling";

/// Staged ids that start a merge (a few MiB in memory).
const MERGE_AT: usize = 65_536;
/// Ids moved into the index by one projection write, at least (whole
/// slices, so a little more): a pause of a few milliseconds.
const MOVE_AT_LEAST: usize = 256;

/// The staged ids, in memory as on disk. Writers lock it after beginning
/// their write transaction and keep it until the transaction is committed
/// and this is updated; readers lock it before beginning theirs, so they
/// never see an id staged here that their transaction cannot see.
pub struct Ids(Mutex<Staged>);

/// The ids of one staging table: room → eventId → seq.
#[derive(Default)]
struct StagedTable {
    by_room: HashMap<String, HashMap<u128, u64>>,
    len: usize,
}

impl StagedTable {
    fn add(&mut self, room: &str, id: u128, seq: u64) {
        let ids = match self.by_room.get_mut(room) {
            Some(ids) => ids,
            None => self.by_room.entry(room.to_owned()).or_default(),
        };
        if ids.insert(id, seq).is_none() {
            self.len += 1;
        }
    }

    fn get(&self, room: &str, id: u128) -> Option<u64> {
        self.by_room.get(room)?.get(&id).copied()
    }
}

/// A staging table whose ids move into the index.
struct Draining {
    ids: StagedTable,
    /// Its ids by the top eight bits of the eventId, sorted; the next
    /// slice to move is the first one left.
    slices: Vec<Vec<(String, u128, u64)>>,
    next_slice: usize,
}

pub struct Staged {
    /// Which of [`STAGED_IDS`] new ids go to.
    filling: usize,
    new: StagedTable,
    draining: Option<Draining>,
    merge_at: usize,
    move_at_least: usize,
    /// Ids staged since the merge's last step: a move takes twice as
    /// many at least, so that a merge ends however fast ids come.
    added: usize,
}

/// What a write transaction did to the staged ids, for [`Staged::merged`]
/// once it is committed.
pub enum Merge {
    Nothing,
    /// The filling table became the draining one.
    Started,
    /// These slices of the draining table moved into the index.
    Moved(usize),
    /// The draining table moved whole, and was dropped.
    Done,
}

fn read_table(db: &Database, which: usize) -> Result<StagedTable, StoreError> {
    let tx = db.begin_read().map_err(unavailable)?;
    let t = tx.open_table(STAGED_IDS[which]).map_err(unavailable)?;
    let mut ids = StagedTable::default();
    for row in t.iter().map_err(unavailable)? {
        let (k, v) = row.map_err(unavailable)?;
        let (room, seq) = k.value();
        ids.add(room, v.value(), seq);
    }
    Ok(ids)
}

impl Draining {
    fn of(ids: StagedTable) -> Draining {
        let mut slices = vec![Vec::new(); 256];
        for (room, of_room) in &ids.by_room {
            for (id, seq) in of_room {
                slices[(id >> 120) as usize].push((room.clone(), *id, *seq));
            }
        }
        for s in &mut slices {
            // In key order: neighbours share the index's pages.
            s.sort_unstable();
        }
        Draining {
            ids,
            slices,
            next_slice: 0,
        }
    }
}

impl Ids {
    /// The ids staged in the store, `filling` being which table new ids go
    /// to (the `meta` row [`FILLING`]); ids of the other table are moved
    /// into the index again from the start (moving one twice is harmless).
    pub fn load(db: &Database, filling: usize) -> Result<Ids, StoreError> {
        let new = read_table(db, filling)?;
        let other = read_table(db, 1 - filling)?;
        let draining = (other.len > 0).then(|| Draining::of(other));
        Ok(Ids(Mutex::new(Staged {
            filling,
            new,
            draining,
            merge_at: MERGE_AT,
            move_at_least: MOVE_AT_LEAST,
            added: 0,
        })))
    }

    pub fn lock(&self) -> MutexGuard<'_, Staged> {
        // A panic while locked leaves nothing half-done here: the memory
        // is updated only after a commit.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Staged {
    /// How many ids are staged, in both tables.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.new.len + self.draining.as_ref().map_or(0, |d| d.ids.len)
    }

    #[cfg(test)]
    pub fn set_merge_at(&mut self, merge_at: usize, move_at_least: usize) {
        (self.merge_at, self.move_at_least) = (merge_at, move_at_least);
    }

    /// The seq of `room`'s event `id`: staged, or in the index.
    pub fn seq_of(
        &self,
        index: &impl ReadableTable<(&'static str, u128), u64>,
        room: &str,
        id: u128,
    ) -> Result<Option<u64>, StoreError> {
        let staged = self
            .new
            .get(room, id)
            .or_else(|| self.draining.as_ref()?.ids.get(room, id));
        if let Some(seq) = staged {
            return Ok(Some(seq));
        }
        Ok(index
            .get((room, id))
            .map_err(unavailable)?
            .map(|v| v.value()))
    }

    /// The staging table new ids go to, in `tx`.
    pub fn table<'t>(
        &self,
        tx: &'t WriteTransaction,
    ) -> Result<Table<'t, (&'static str, u64), u128>, StoreError> {
        tx.open_table(STAGED_IDS[self.filling]).map_err(unavailable)
    }

    /// Records ids whose staging (rows of [`Staged::table`]) was committed.
    pub fn staged<'a>(&mut self, ids: impl IntoIterator<Item = (&'a str, u128, u64)>) {
        for (room, id, seq) in ids {
            self.new.add(room, id, seq);
            self.added += 1;
        }
    }

    /// One step of a merge, in `tx`: starts one if enough ids are staged
    /// (new ids then go to the other table), or moves some slices of the
    /// draining table into the index, or drops that table once all moved.
    pub fn merge(&mut self, tx: &WriteTransaction) -> Result<Merge, StoreError> {
        let Some(d) = &mut self.draining else {
            if self.new.len < self.merge_at {
                return Ok(Merge::Nothing);
            }
            let mut meta = tx.open_table(super::META).map_err(unavailable)?;
            meta.insert(FILLING, 1 - self.filling as u64)
                .map_err(unavailable)?;
            return Ok(Merge::Started);
        };
        if d.next_slice == d.slices.len() {
            tx.delete_table(STAGED_IDS[1 - self.filling])
                .map_err(unavailable)?;
            tx.open_table(STAGED_IDS[1 - self.filling])
                .map_err(unavailable)?;
            return Ok(Merge::Done);
        }
        let at_least = self.move_at_least.max(2 * self.added);
        let mut index = tx.open_table(EVENT_IDS).map_err(unavailable)?;
        let (mut slice, mut moved) = (d.next_slice, 0);
        while slice < d.slices.len() && moved < at_least {
            for (room, id, seq) in &d.slices[slice] {
                index
                    .insert((room.as_str(), *id), *seq)
                    .map_err(unavailable)?;
            }
            moved += d.slices[slice].len();
            slice += 1;
        }
        Ok(Merge::Moved(slice))
    }

    /// Records a merge step whose transaction was committed.
    pub fn merged(&mut self, step: Merge) {
        if !matches!(step, Merge::Nothing) {
            self.added = 0;
        }
        match step {
            Merge::Nothing => {}
            Merge::Started => {
                let full = std::mem::take(&mut self.new);
                self.draining = Some(Draining::of(full));
                self.filling = 1 - self.filling;
            }
            Merge::Moved(next) => {
                if let Some(d) = &mut self.draining {
                    for slice in &mut d.slices[d.next_slice..next] {
                        // Its ids stay for lookups until the table goes.
                        *slice = Vec::new();
                    }
                    d.next_slice = next;
                }
            }
            Merge::Done => self.draining = None,
        }
    }
}
