//! Packed blocks: a room's events and message views, `BLOCK` seqs at a
//! time, in one zstd-compressed value once their block is done. One row per
//! event left redb's leaves half full and repeated every field name; a
//! packed block takes a fraction of those bytes on disk. The newest seqs
//! are rows until their block is sealed (a row holds one seq, or a run of
//! them: one commit's events of the block), and readers see rows and
//! blocks merged in seq order (a store written before blocks existed is all
//! rows, and reads the same). `BLOCK` is part of the format on disk.

use super::{unavailable, StoreError};
use crate::store::compressed::{compress, decompress};
use redb::{ReadableTable, Table};
use std::collections::VecDeque;
use std::iter::Peekable;

/// Seqs per block. Block `k` holds seqs `k * BLOCK + 1 ..= (k + 1) * BLOCK`.
pub const BLOCK: u64 = 64;

/// The tag byte of a run: consecutive rows of one block stored as one
/// row under the first one's seq, not compressed (a commit's events of a
/// block it does not fill whole, one row instead of one each). A single
/// row is JSON, which never starts with it.
const RUN: u8 = 0x02;
/// A row that says its seq holds nothing (a view's, when a view that was
/// not stored, one derived from its event, is deleted: see `views`).
/// [`seal_with`] leaves them out of the block it packs.
pub const TOMBSTONE: &[u8] = &[0x03];
/// A block is packed only up to this size before compression; a bigger one
/// (views with very many reactions) stays rows. 64 events of at most 4,000
/// characters each take under 2 MiB.
const MAX_BLOCK: usize = 4 << 20;

/// A table of rows keyed by (room, seq), or of blocks keyed by (room, block).
pub type SeqTable<'txn> = Table<'txn, (&'static str, u64), &'static [u8]>;
/// One row: its seq and its stored bytes.
pub type Row = (u64, Vec<u8>);
/// One stored block: its number and its packed bytes.
type Block = (u64, Vec<u8>);

/// The block that holds `seq` (≥ 1).
pub fn block_of(seq: u64) -> u64 {
    seq.saturating_sub(1) / BLOCK
}

pub fn first_of(block: u64) -> u64 {
    block.saturating_mul(BLOCK).saturating_add(1)
}

pub fn last_of(block: u64) -> u64 {
    block.saturating_add(1).saturating_mul(BLOCK)
}

/// The blocks whose last seq is in `from + 1 ..= to`: those a log's move
/// from `from` to `to` completes.
pub fn ending_in(from: u64, to: u64) -> std::ops::Range<u64> {
    from / BLOCK..(to / BLOCK).max(from / BLOCK)
}

/// The blocks wholly in `from + 1 ..= to`: those a log's move from `from`
/// to `to` fills from their first seq to their last.
pub fn wholly_in(from: u64, to: u64) -> std::ops::Range<u64> {
    from.div_ceil(BLOCK)..(to / BLOCK).max(from.div_ceil(BLOCK))
}

/// Rows (in seq order) packed into one value: each row's seq (8 bytes),
/// length (4 bytes) and bytes, compressed together; `None` if that is more
/// than [`MAX_BLOCK`] before compression.
pub fn pack(rows: &[Row]) -> Option<Vec<u8>> {
    let raw = lay_out(rows, None);
    (raw.len() <= MAX_BLOCK).then(|| compress(&raw))
}

/// Rows one after another, each its seq (8 bytes), length (4 bytes) and
/// bytes, after `tag` if given: what [`pack`] compresses and [`run`] stores.
fn lay_out(rows: &[Row], tag: Option<u8>) -> Vec<u8> {
    let size: usize = rows.iter().map(|(_, v)| v.len() + 12).sum();
    let mut out = Vec::with_capacity(1 + size);
    out.extend(tag);
    for (seq, v) in rows {
        out.extend_from_slice(&seq.to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        out.extend_from_slice(v);
    }
    out
}

/// The rows of `block`, packed: in seq order, each in the block's range
/// (else the block is corrupt).
pub fn unpack(block: u64, packed: &[u8]) -> Result<Vec<Row>, StoreError> {
    parse(block, &decompress(packed, "a packed block")?)
}

/// Rows (in seq order) as one run, for the row of the first one's seq.
pub fn run(rows: &[Row]) -> Vec<u8> {
    lay_out(rows, Some(RUN))
}

/// The rows a stored row under `seq` holds: itself, or the run it starts.
fn expand(seq: u64, value: &[u8]) -> Result<Vec<Row>, StoreError> {
    match value.split_first() {
        Some((&RUN, raw)) => {
            let rows = parse(block_of(seq), raw)?;
            if rows.first().is_none_or(|(first, _)| *first != seq) {
                return Err(StoreError::Corrupt(format!(
                    "the run at {seq} starts elsewhere"
                )));
            }
            Ok(rows)
        }
        _ => Ok(vec![(seq, value.to_vec())]),
    }
}

/// Rows as [`pack`] and [`run`] lay them out, all in `block`.
fn parse(block: u64, raw: &[u8]) -> Result<Vec<Row>, StoreError> {
    let corrupt = |why: &str| StoreError::Corrupt(format!("packed block {block}: {why}"));
    let mut rows: Vec<Row> = Vec::new();
    let mut rest = raw;
    while !rest.is_empty() {
        let cut = || corrupt("cut short");
        let (seq, tail) = rest.split_first_chunk::<8>().ok_or_else(cut)?;
        let (len, tail) = tail.split_first_chunk::<4>().ok_or_else(cut)?;
        let (seq, len) = (u64::from_le_bytes(*seq), u32::from_le_bytes(*len) as usize);
        if tail.len() < len {
            return Err(cut());
        }
        let in_order = rows.last().is_none_or(|(last, _)| *last < seq);
        if !in_order || block_of(seq) != block || seq == 0 {
            return Err(corrupt("a seq out of order or out of range"));
        }
        rows.push((seq, tail[..len].to_vec()));
        rest = &tail[len..];
    }
    Ok(rows)
}

/// The rows of `room` in `lo..=hi`, one list per stored row or run, in
/// key order; a list may be empty (a row of `lo`'s block before `lo`).
fn stored_rows<'a>(
    rows: &'a impl ReadableTable<(&'static str, u64), &'static [u8]>,
    room: &str,
    lo: u64,
    hi: u64,
) -> Result<impl DoubleEndedIterator<Item = Result<Vec<Row>, StoreError>> + 'a, StoreError> {
    // A run never crosses a block: one that holds `lo` starts in its block
    // (`min` for `lo` = 0, whose block 0 starts at 1).
    let from = first_of(block_of(lo)).min(lo);
    let range = rows.range((room, from)..=(room, hi)).map_err(unavailable)?;
    Ok(range.map(move |row| {
        let (k, v) = row.map_err(unavailable)?;
        let mut all = expand(k.value().1, v.value())?;
        all.retain(|(s, _)| (lo..=hi).contains(s));
        Ok(all)
    }))
}

/// Stores `all`, the rows of `room`'s `block`, packed; as rows if they are
/// too big to pack, and nothing if there are none.
fn store_block(
    rows: &mut SeqTable,
    blocks: &mut SeqTable,
    room: &str,
    block: u64,
    all: &[Row],
) -> Result<(), StoreError> {
    match pack(all) {
        _ if all.is_empty() => {
            blocks.remove((room, block)).map_err(unavailable)?;
        }
        Some(packed) => {
            blocks
                .insert((room, block), packed.as_slice())
                .map_err(unavailable)?;
        }
        None => {
            blocks.remove((room, block)).map_err(unavailable)?;
            for (seq, v) in all {
                rows.insert((room, *seq), v.as_slice())
                    .map_err(unavailable)?;
            }
        }
    }
    Ok(())
}

/// The stored bytes of `room`'s `seq`, from its row or its block.
pub fn get(
    rows: &impl ReadableTable<(&'static str, u64), &'static [u8]>,
    blocks: &impl ReadableTable<(&'static str, u64), &'static [u8]>,
    room: &str,
    seq: u64,
) -> Result<Option<Vec<u8>>, StoreError> {
    if let Some(found) = stored_rows(rows, room, seq, seq)?.next_back() {
        if let Some((_, v)) = found?.pop() {
            return Ok(Some(v));
        }
    }
    let block = block_of(seq);
    match blocks.get((room, block)).map_err(unavailable)? {
        Some(b) => Ok(unpack(block, b.value())?
            .into_iter()
            .find(|(s, _)| *s == seq)
            .map(|(_, v)| v)),
        None => Ok(None),
    }
}

/// Moves the rows of `room`'s `block` into its packed value.
pub fn seal(
    rows: &mut SeqTable,
    blocks: &mut SeqTable,
    room: &str,
    block: u64,
) -> Result<(), StoreError> {
    seal_with(rows, blocks, room, block, |_| Ok(Vec::new()))
}

/// Moves the rows of `room`'s `block` into its packed value, less its
/// [`TOMBSTONE`]s, with the rows `more` gives (in seq order) for the seqs
/// that neither a row nor the block's packed value holds (`more` is given
/// those it holds, in seq order). A row wins over the packed value.
pub fn seal_with(
    rows: &mut SeqTable,
    blocks: &mut SeqTable,
    room: &str,
    block: u64,
    more: impl FnOnce(&[u64]) -> Result<Vec<Row>, StoreError>,
) -> Result<(), StoreError> {
    let range = (room, first_of(block))..=(room, last_of(block));
    let mut keys = Vec::new();
    let mut taken: Vec<Row> = Vec::with_capacity(BLOCK as usize);
    for row in rows.range(range).map_err(unavailable)? {
        let (k, v) = row.map_err(unavailable)?;
        let seq = k.value().1;
        keys.push(seq);
        taken.extend(expand(seq, v.value())?);
    }
    // Rows and a block of the same seqs do not happen; if they did, the
    // rows, written last, would win.
    let mut old = match blocks.get((room, block)).map_err(unavailable)? {
        Some(old) => unpack(block, old.value())?,
        None => Vec::new(),
    };
    old.retain(|(s, _)| !taken.iter().any(|(t, _)| t == s));
    let mut held: Vec<u64> = taken.iter().chain(&old).map(|(s, _)| *s).collect();
    held.sort_unstable();
    let more = more(&held)?;
    if keys.is_empty() && more.is_empty() {
        return Ok(());
    }
    taken.retain(|(_, v)| v != TOMBSTONE);
    taken.extend(more);
    taken.extend(old);
    // One by one: redb's `retain_in` takes twice as long for a block.
    for seq in keys {
        rows.remove((room, seq)).map_err(unavailable)?;
    }
    taken.sort_by_key(|(s, _)| *s);
    if taken.windows(2).any(|w| w[0].0 == w[1].0) {
        return Err(StoreError::Corrupt(format!(
            "room {room}'s rows of block {block} hold a seq twice"
        )));
    }
    store_block(rows, blocks, room, block, &taken)
}

/// `room`'s `block` unpacked, if it is packed.
fn unpacked(blocks: &SeqTable, room: &str, block: u64) -> Result<Option<Vec<Row>>, StoreError> {
    match blocks.get((room, block)).map_err(unavailable)? {
        Some(packed) => Ok(Some(unpack(block, packed.value())?)),
        None => Ok(None),
    }
}

/// Puts `room`'s row `seq` where it lives: into its block if that block is
/// packed (which rewrites the block), else as a row. For tables of single
/// rows (views), never runs.
pub fn put(
    rows: &mut SeqTable,
    blocks: &mut SeqTable,
    room: &str,
    seq: u64,
    value: &[u8],
) -> Result<(), StoreError> {
    let block = block_of(seq);
    match unpacked(blocks, room, block)? {
        None => {
            rows.insert((room, seq), value).map_err(unavailable)?;
            Ok(())
        }
        Some(mut all) => {
            match all.binary_search_by_key(&seq, |(s, _)| *s) {
                Ok(i) => all[i].1 = value.to_vec(),
                Err(i) => all.insert(i, (seq, value.to_vec())),
            }
            store_block(rows, blocks, room, block, &all)
        }
    }
}

/// Removes `room`'s row `seq`, from the rows or from its block. For tables
/// of single rows (views), never runs.
pub fn remove(
    rows: &mut SeqTable,
    blocks: &mut SeqTable,
    room: &str,
    seq: u64,
) -> Result<(), StoreError> {
    if rows.remove((room, seq)).map_err(unavailable)?.is_some() {
        return Ok(());
    }
    let block = block_of(seq);
    if let Some(mut all) = unpacked(blocks, room, block)? {
        all.retain(|(s, _)| *s != seq);
        store_block(rows, blocks, room, block, &all)?;
    }
    Ok(())
}

type Rows<'a> = Box<dyn Iterator<Item = Result<Row, StoreError>> + 'a>;
type Blocks<'a> = Box<dyn Iterator<Item = Result<Block, StoreError>> + 'a>;

/// `room`'s rows with seqs in `lo..=hi`, rows and blocks merged, in seq
/// order (`forward`) or its reverse.
pub fn merged<'a>(
    rows: &'a impl ReadableTable<(&'static str, u64), &'static [u8]>,
    blocks: &'a impl ReadableTable<(&'static str, u64), &'static [u8]>,
    room: &'a str,
    lo: u64,
    hi: u64,
    forward: bool,
) -> Result<Merged<'a>, StoreError> {
    let owned = |row: Result<_, redb::StorageError>| -> Result<Block, StoreError> {
        let (k, v): (redb::AccessGuard<(&str, u64)>, redb::AccessGuard<&[u8]>) =
            row.map_err(unavailable)?;
        Ok((k.value().1, v.value().to_vec()))
    };
    // Each stored row's rows, in the reading order, or its error.
    fn flat(stored: Result<Vec<Row>, StoreError>, forward: bool) -> Vec<Result<Row, StoreError>> {
        match stored {
            Ok(mut all) => {
                if !forward {
                    all.reverse();
                }
                all.into_iter().map(Ok).collect()
            }
            Err(e) => vec![Err(e)],
        }
    }
    let (row_it, block_it): (Rows, Blocks) = if lo > hi {
        (Box::new(std::iter::empty()), Box::new(std::iter::empty()))
    } else {
        let r = stored_rows(rows, room, lo, hi)?;
        let b = (blocks.range((room, block_of(lo))..=(room, block_of(hi)))).map_err(unavailable)?;
        if forward {
            let r = r.flat_map(|stored| flat(stored, true));
            (Box::new(r), Box::new(b.map(owned)))
        } else {
            let r = r.rev().flat_map(|stored| flat(stored, false));
            (Box::new(r), Box::new(b.rev().map(owned)))
        }
    };
    Ok(Merged {
        rows: row_it.peekable(),
        blocks: block_it.peekable(),
        current: VecDeque::new(),
        lo,
        hi,
        forward,
    })
}

/// See [`merged`].
pub struct Merged<'a> {
    rows: Peekable<Rows<'a>>,
    blocks: Peekable<Blocks<'a>>,
    /// The rows of the block being read, in the order to give them.
    current: VecDeque<Row>,
    lo: u64,
    hi: u64,
    forward: bool,
}

impl Merged<'_> {
    /// Whether `a` comes before `b` in this reading order.
    fn before(&self, a: u64, b: u64) -> bool {
        if self.forward {
            a < b
        } else {
            a > b
        }
    }
}

impl Iterator for Merged<'_> {
    type Item = Result<Row, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let row_seq = match self.rows.peek() {
                Some(Ok((seq, _))) => Some(*seq),
                Some(Err(_)) => return self.rows.next(),
                None => None,
            };
            if self.current.is_empty() {
                let block = match self.blocks.peek() {
                    Some(Ok((block, _))) => Some(*block),
                    Some(Err(_)) => return self.blocks.next(),
                    None => None,
                };
                if let Some(block) = block {
                    let nearest = if self.forward {
                        first_of(block)
                    } else {
                        last_of(block)
                    };
                    if row_seq.is_none_or(|r| self.before(nearest, r)) {
                        let (block, packed) = self.blocks.next()?.ok()?;
                        let mut rows = match unpack(block, &packed) {
                            Ok(rows) => rows,
                            Err(e) => return Some(Err(e)),
                        };
                        rows.retain(|(s, _)| (self.lo..=self.hi).contains(s));
                        if !self.forward {
                            rows.reverse();
                        }
                        self.current = rows.into();
                        continue;
                    }
                }
            }
            let from_block = match (self.current.front(), row_seq) {
                (Some((c, _)), Some(r)) if *c == r => {
                    // Never written so; if it were, the row wins.
                    self.current.pop_front();
                    false
                }
                (Some((c, _)), Some(r)) => self.before(*c, r),
                (Some(_), None) => true,
                (None, _) => false,
            };
            return if from_block {
                self.current.pop_front().map(Ok)
            } else {
                self.rows.next()
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::{Database, ReadableTableMetadata, TableDefinition};

    const ROWS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("rows");
    const BLOCKS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("blocks");

    fn read(db: &Database, room: &str, lo: u64, hi: u64, forward: bool) -> Vec<u64> {
        let tx = db.begin_read().unwrap();
        let (rows, blocks) = (tx.open_table(ROWS).unwrap(), tx.open_table(BLOCKS).unwrap());
        merged(&rows, &blocks, room, lo, hi, forward)
            .unwrap()
            .map(|r| {
                let (seq, v) = r.unwrap();
                assert_eq!(v, seq.to_string().into_bytes());
                seq
            })
            .collect()
    }

    /// Rows, sealed blocks, and a store's older rows below its blocks all
    /// read back merged, both ways, with puts and removes landing in blocks.
    #[test]
    fn rows_and_blocks_read_as_one_log() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join("t.redb")).unwrap();
        let expected: Vec<u64> = (1..=300).filter(|s| s % 7 != 0).collect();
        let tx = db.begin_write().unwrap();
        {
            let (mut rows, mut blocks) =
                (tx.open_table(ROWS).unwrap(), tx.open_table(BLOCKS).unwrap());
            for room in ["a", "b"] {
                for &s in &expected {
                    rows.insert((room, s), s.to_string().as_bytes()).unwrap();
                }
            }
            // Room "a": blocks 1 and 2 sealed, block 0 left as rows (as a
            // store from before blocks), blocks 3 and 4 still filling.
            for block in ending_in(64, 200) {
                seal(&mut rows, &mut blocks, "a", block).unwrap();
            }
            assert_eq!(ending_in(64, 200), 1..3);
            assert_eq!(ending_in(0, 63), 0..0);
            assert_eq!(wholly_in(64, 200), 1..3);
            assert_eq!(wholly_in(65, 200), 2..3);
            assert_eq!(wholly_in(0, 130), 0..2);
            assert_eq!(wholly_in(70, 100), 2..2);
            assert_eq!(blocks.len().unwrap(), 2);
        }
        tx.commit().unwrap();
        for (lo, hi) in [
            (1, 300),
            (0, u64::MAX),
            (60, 140),
            (130, 130),
            (129, 192),
            (5, 4),
        ] {
            let want: Vec<u64> = expected
                .iter()
                .copied()
                .filter(|s| (lo..=hi).contains(s))
                .collect();
            assert_eq!(read(&db, "a", lo, hi, true), want, "{lo}..={hi}");
            let mut rev = want.clone();
            rev.reverse();
            assert_eq!(read(&db, "a", lo, hi, false), rev, "{lo}..={hi} reversed");
            assert_eq!(read(&db, "b", lo, hi, true), want, "room b");
        }
        let tx = db.begin_write().unwrap();
        {
            let (mut rows, mut blocks) =
                (tx.open_table(ROWS).unwrap(), tx.open_table(BLOCKS).unwrap());
            put(&mut rows, &mut blocks, "a", 70, b"70").unwrap();
            put(&mut rows, &mut blocks, "a", 140, b"140").unwrap();
            remove(&mut rows, &mut blocks, "a", 65).unwrap();
            remove(&mut rows, &mut blocks, "a", 250).unwrap();
            assert!(rows.get(("a", 140)).unwrap().is_none(), "into its block");
            assert_eq!(
                get(&rows, &blocks, "a", 140).unwrap(),
                Some(b"140".to_vec())
            );
            assert_eq!(get(&rows, &blocks, "a", 65).unwrap(), None);
        }
        tx.commit().unwrap();
        let mut want: Vec<u64> = expected
            .iter()
            .copied()
            .filter(|s| *s != 65 && *s != 250)
            .chain([70, 140])
            .collect();
        want.sort();
        assert_eq!(read(&db, "a", 1, 300, true), want);
    }

    /// Runs (several seqs in one row) read like rows, cut by any range,
    /// and are sealed like rows.
    #[test]
    fn runs_read_and_seal_like_rows() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join("t.redb")).unwrap();
        let rows_of = |seqs: std::ops::RangeInclusive<u64>| -> Vec<Row> {
            seqs.map(|s| (s, s.to_string().into_bytes())).collect()
        };
        let tx = db.begin_write().unwrap();
        {
            let (mut rows, mut blocks) =
                (tx.open_table(ROWS).unwrap(), tx.open_table(BLOCKS).unwrap());
            // Block 0 whole as runs and a single row; block 1 in part.
            rows.insert(("a", 1), run(&rows_of(1..=30)).as_slice())
                .unwrap();
            rows.insert(("a", 31), b"31".as_slice()).unwrap();
            rows.insert(("a", 32), run(&rows_of(32..=64)).as_slice())
                .unwrap();
            rows.insert(("a", 65), run(&rows_of(65..=90)).as_slice())
                .unwrap();
            for (lo, hi) in [
                (1, 90),
                (0, u64::MAX),
                (5, 40),
                (31, 31),
                (33, 70),
                (64, 65),
            ] {
                let want: Vec<u64> = (lo.max(1)..=hi.min(90)).collect();
                let got: Vec<u64> = merged(&rows, &blocks, "a", lo, hi, true)
                    .unwrap()
                    .map(|r| r.unwrap().0)
                    .collect();
                assert_eq!(got, want, "{lo}..={hi}");
                let mut back: Vec<u64> = merged(&rows, &blocks, "a", lo, hi, false)
                    .unwrap()
                    .map(|r| r.unwrap().0)
                    .collect();
                back.reverse();
                assert_eq!(back, want, "{lo}..={hi} reversed");
            }
            for seq in [1, 17, 31, 32, 64, 80] {
                let v = get(&rows, &blocks, "a", seq).unwrap();
                assert_eq!(v, Some(seq.to_string().into_bytes()), "{seq}");
            }
            assert_eq!(get(&rows, &blocks, "a", 91).unwrap(), None);
            seal(&mut rows, &mut blocks, "a", 0).unwrap();
            assert_eq!((rows.len().unwrap(), blocks.len().unwrap()), (1, 1));
            let all: Vec<Row> = merged(&rows, &blocks, "a", 1, 90, true)
                .unwrap()
                .map(Result::unwrap)
                .collect();
            assert_eq!(all, rows_of(1..=90));
        }
        tx.commit().unwrap();
        assert!(matches!(
            expand(5, &run(&rows_of(6..=7))),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            expand(60, &run(&rows_of(60..=70))),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn bad_packed_values_are_corrupt_not_panics() {
        for bad in [&b""[..], b"{}", &[crate::store::compressed::ZSTD, 1, 2, 3]] {
            assert!(matches!(unpack(0, bad), Err(StoreError::Corrupt(_))));
        }
        let raw = |rows: &[(u64, u32, &[u8])]| {
            let mut raw = Vec::new();
            for (seq, len, v) in rows {
                raw.extend(seq.to_le_bytes());
                raw.extend(len.to_le_bytes());
                raw.extend(*v);
            }
            compress(&raw)
        };
        for (block, bad) in [
            (0, raw(&[(7, 100, b"short")])),
            (0, raw(&[(9, 1, b"x"), (3, 1, b"y")])),
            (1, raw(&[(3, 1, b"x")])),
            (0, raw(&[(0, 1, b"x")])),
        ] {
            assert!(matches!(unpack(block, &bad), Err(StoreError::Corrupt(_))));
        }
        let rows = vec![(3, b"x".to_vec()), (9, vec![])];
        assert_eq!(unpack(0, &pack(&rows).unwrap()).unwrap(), rows);
        assert_eq!(pack(&[(1, vec![0; MAX_BLOCK])]), None);
    }

    /// A block that a change would grow past `MAX_BLOCK` goes back to
    /// rows, and reads the same.
    #[test]
    fn an_oversized_block_goes_back_to_rows() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join("t.redb")).unwrap();
        let big = vec![b'a'; MAX_BLOCK];
        let tx = db.begin_write().unwrap();
        {
            let (mut rows, mut blocks) =
                (tx.open_table(ROWS).unwrap(), tx.open_table(BLOCKS).unwrap());
            for seq in 1..=64u64 {
                rows.insert(("a", seq), seq.to_string().as_bytes()).unwrap();
            }
            seal(&mut rows, &mut blocks, "a", 0).unwrap();
            assert_eq!((rows.len().unwrap(), blocks.len().unwrap()), (0, 1));
            put(&mut rows, &mut blocks, "a", 5, &big).unwrap();
            assert_eq!((rows.len().unwrap(), blocks.len().unwrap()), (64, 0));
        }
        tx.commit().unwrap();
        let tx = db.begin_read().unwrap();
        let (rows, blocks) = (tx.open_table(ROWS).unwrap(), tx.open_table(BLOCKS).unwrap());
        let all: Vec<Row> = merged(&rows, &blocks, "a", 1, 64, true)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(all.len(), 64);
        assert_eq!(all[4], (5, big));
        assert_eq!(all[5], (6, b"6".to_vec()));
    }
}
