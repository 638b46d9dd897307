//! The embedded store: redb, a crash-safe, transactional key-value store on
//! local disk (see docs/0002-embedded-store.md). Every commit of events is
//! durable (fsync) when it returns, with its projection in the same
//! transaction unless that cannot be written (a lagging room, a failed
//! write); a projection written on its own is not synced on its own
//! (redb's `Durability::None`: the next commit of events syncs it; lost in
//! a crash, it is caught up from the events). redb is synchronous, so each
//! call runs on the blocking thread pool, or in place on a thread that does
//! nothing else (an append writer's:
//! `super::block_in_place_on_this_thread`). A room's events and views are
//! packed 64 seqs at a time ([`packed`]); the newest are one row each
//! until then.

mod ids;
mod packed;
mod views;

use super::compressed;
use super::heads::HeadCache;
use super::{
    AccountStore, Commit, EventStore, ProjectionChanges, ProjectionStore, RoomProjection,
    RoomRecord, SnapshotStore, StoreError, UnreadChange, ViewChange, ViewPage, WithProjection,
};
use async_trait::async_trait;
use domain::CompactString;
use domain::{ChatEvent, Message, SnapshotChunk, SnapshotHead, Timestamp};
use ids::{Ids, EVENT_IDS, STAGED_IDS};
use redb::{Database, ReadableTable, TableDefinition};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use uuid::Uuid;

const USERS: TableDefinition<&str, &str> = TableDefinition::new("users");
const SESSIONS: TableDefinition<&str, (&str, i64)> = TableDefinition::new("sessions");
const ROOMS: TableDefinition<&str, &[u8]> = TableDefinition::new("rooms");
const EVENTS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("chat_events");
const VIEWS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("chat_message_views");
const MARKERS: TableDefinition<(&str, &str), u64> = TableDefinition::new("read_markers");
const SNAP_HEADS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("snapshot_heads");
/// Rooms in list order: (createdAt in ms, roomId).
const ROOM_ORDER: TableDefinition<(i64, &str), ()> = TableDefinition::new("room_order");
/// Live messages per room, and per (room, sender).
const ROOM_LIVE: TableDefinition<&str, u64> = TableDefinition::new("room_live");
const SENDER_LIVE: TableDefinition<(&str, &str), u64> = TableDefinition::new("sender_live");
/// Unread counts of the users who have a read marker in a room.
const UNREAD: TableDefinition<(&str, &str), u64> = TableDefinition::new("unread_counts");
/// The seq each room's projection is at (its checkpoint).
const PROJECTED: TableDefinition<&str, u64> = TableDefinition::new("projected");
/// What the store's layout has: `counts` = 1 once the tables above are
/// filled, `projected` = 1 once the checkpoints are, `derived` = 1 once
/// each room's `views::STORED_THROUGH` is, `format` ([`FORMAT`]).
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// The store's format, kept in META: a server refuses a store of a later
/// format than its own (one written by a newer server: a rollback). Servers
/// from before it (format 0) do not look; format 1 derives views of new
/// messages from their events (`views`), which a format-0 server would miss.
const FORMAT: u64 = 1;
const SNAP_CHUNKS: TableDefinition<(&str, u64, u64), &[u8]> =
    TableDefinition::new("snapshot_chunks");
/// Events and message views of sealed blocks, packed (see [`packed`]).
const EVENT_BLOCKS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("chat_event_blocks");
const VIEW_BLOCKS: TableDefinition<(&str, u64), &[u8]> =
    TableDefinition::new("chat_message_view_blocks");

pub struct EmbeddedStore {
    db: Arc<Database>,
    /// The eventIds staged for the index (see [`ids`]).
    ids: Arc<Ids>,
    bases: HeadCache,
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// Decodes a stored value. The error names the type and the place, never
/// the value: serde's message may quote stored content.
fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| {
        StoreError::Corrupt(format!(
            "a stored {} does not decode ({:?} error at line {}, column {})",
            std::any::type_name::<T>(),
            e.classify(),
            e.line(),
            e.column()
        ))
    })
}

fn encode<T: serde::Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("store values always serialize")
}

/// A snapshot chunk as stored: its JSON, compressed. A chunk repeats its
/// field names 256 times; written at every snapshot of its span, chunks
/// were a fifth of a room's bytes on disk.
fn encode_chunk(ch: &SnapshotChunk) -> Vec<u8> {
    compressed::compress(&encode(ch))
}

/// A chunk stored compressed, or as plain JSON (before chunks were
/// compressed; JSON never starts with the compressed values' tag).
fn decode_chunk(bytes: &[u8]) -> Result<SnapshotChunk, StoreError> {
    match bytes.first() {
        Some(&compressed::ZSTD) => decode(&compressed::decompress(bytes, "a snapshot chunk")?),
        _ => decode(bytes),
    }
}

impl EmbeddedStore {
    /// Opens (or creates) the store under `dir`, with a page cache of 64 MiB.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Self::open_with_cache(dir, 64 << 20)
    }

    /// Opens (or creates) the store under `dir`, keeping at most
    /// `cache_bytes` of the data file in memory (redb's own default is
    /// 1 GiB, which a write flood fills).
    pub fn open_with_cache(dir: &Path, cache_bytes: usize) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(unavailable)?;
        let db = redb::Builder::new()
            .set_cache_size(cache_bytes)
            .create(dir.join("chat.redb"))
            .map_err(unavailable)?;
        // Create every table once so that readers never meet a missing one.
        let tx = db.begin_write().map_err(unavailable)?;
        {
            tx.open_table(USERS).map_err(unavailable)?;
            tx.open_table(SESSIONS).map_err(unavailable)?;
            tx.open_table(ROOMS).map_err(unavailable)?;
            tx.open_table(EVENTS).map_err(unavailable)?;
            tx.open_table(EVENT_IDS).map_err(unavailable)?;
            for t in STAGED_IDS {
                tx.open_table(t).map_err(unavailable)?;
            }
            tx.open_table(VIEWS).map_err(unavailable)?;
            tx.open_table(MARKERS).map_err(unavailable)?;
            tx.open_table(SNAP_HEADS).map_err(unavailable)?;
            tx.open_table(SNAP_CHUNKS).map_err(unavailable)?;
            tx.open_table(EVENT_BLOCKS).map_err(unavailable)?;
            tx.open_table(VIEW_BLOCKS).map_err(unavailable)?;
            tx.open_table(ROOM_ORDER).map_err(unavailable)?;
            tx.open_table(ROOM_LIVE).map_err(unavailable)?;
            tx.open_table(SENDER_LIVE).map_err(unavailable)?;
            tx.open_table(UNREAD).map_err(unavailable)?;
            tx.open_table(PROJECTED).map_err(unavailable)?;
            tx.open_table(views::STORED_THROUGH).map_err(unavailable)?;
            let mut meta = tx.open_table(META).map_err(unavailable)?;
            let format = meta.get("format").map_err(unavailable)?.map(|v| v.value());
            if let Some(later) = format.filter(|f| *f > FORMAT) {
                return Err(StoreError::Unavailable(format!(
                    "the store in {} was written by a newer server (format {later}; this one reads {FORMAT} and before)",
                    dir.display()
                )));
            }
            meta.insert("format", FORMAT).map_err(unavailable)?;
            if meta.get("counts").map_err(unavailable)?.is_none() {
                // A store written before the counts were kept: fill them once.
                fill_counts(&tx)?;
                meta.insert("counts", 1).map_err(unavailable)?;
            }
            if meta.get("projected").map_err(unavailable)?.is_none() {
                // A store written when events and projection were one
                // commit: every projection is at its room's last seq.
                fill_checkpoints(&tx)?;
                meta.insert("projected", 1).map_err(unavailable)?;
            }
            if meta.get("derived").map_err(unavailable)?.is_none() {
                // A store written before views were derived from events:
                // each room's views up to its projection are rows.
                views::fill(&tx)?;
                meta.insert("derived", 1).map_err(unavailable)?;
            }
        }
        let filling = {
            let meta = tx.open_table(META).map_err(unavailable)?;
            let filling = meta.get(ids::FILLING).map_err(unavailable)?;
            filling.map_or(0, |v| v.value())
        };
        tx.commit().map_err(unavailable)?;
        let ids = Arc::new(Ids::load(&db, filling)?);
        Ok(EmbeddedStore {
            db: Arc::new(db),
            ids,
            bases: HeadCache::default(),
        })
    }

    /// Where the data file's bytes go, for `examples/store_sizes.rs`: per
    /// table its stored, metadata and fragmented bytes, then the pages the
    /// file has allocated in all (as "allocated", in bytes).
    pub fn sizes(&self) -> Result<Vec<(String, u64, u64, u64)>, StoreError> {
        use redb::ReadableTableMetadata;
        fn of<K: redb::Key + 'static, V: redb::Value + 'static>(
            tx: &redb::ReadTransaction,
            def: TableDefinition<K, V>,
        ) -> Result<(String, u64, u64, u64), StoreError> {
            let s = tx
                .open_table(def)
                .map_err(unavailable)?
                .stats()
                .map_err(unavailable)?;
            Ok((
                def.to_string(),
                s.stored_bytes(),
                s.metadata_bytes(),
                s.fragmented_bytes(),
            ))
        }
        let tx = self.db.begin_read().map_err(unavailable)?;
        let mut out = vec![
            of(&tx, EVENTS)?,
            of(&tx, EVENT_BLOCKS)?,
            of(&tx, EVENT_IDS)?,
            of(&tx, STAGED_IDS[0])?,
            of(&tx, STAGED_IDS[1])?,
            of(&tx, VIEWS)?,
            of(&tx, VIEW_BLOCKS)?,
            of(&tx, SNAP_HEADS)?,
            of(&tx, SNAP_CHUNKS)?,
            of(&tx, ROOMS)?,
            of(&tx, MARKERS)?,
            of(&tx, UNREAD)?,
            of(&tx, ROOM_LIVE)?,
            of(&tx, SENDER_LIVE)?,
        ];
        let w = self.db.begin_write().map_err(unavailable)?;
        let all = w.stats().map_err(unavailable)?;
        out.push((
            "allocated".to_owned(),
            all.allocated_pages() * all.page_size() as u64,
            0,
            all.fragmented_bytes(),
        ));
        w.abort().map_err(unavailable)?;
        Ok(out)
    }

    async fn blocking<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    {
        if super::blocks_in_place() {
            // A panic is answered as the blocking pool's would be, and
            // leaves the writer's thread standing.
            return std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&self.db)))
                .unwrap_or_else(|_| Err(StoreError::Unavailable("a store call panicked".into())));
        }
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(unavailable)?
    }
}

/// Writes a group commit's events, new rooms and last seqs into `tx`
/// (see [`EventStore::commit`]); an error leaves `tx` to be dropped.
fn write_events(
    tx: &redb::WriteTransaction,
    staged: &ids::Staged,
    c: &Commit,
) -> Result<(), StoreError> {
    let mut fresh: HashSet<(&str, u128)> = HashSet::new();
    {
        let mut rooms = tx.open_table(ROOMS).map_err(unavailable)?;
        for r in &c.new_rooms {
            if rooms
                .get(r.room_id.as_str())
                .map_err(unavailable)?
                .is_some()
            {
                // Dropping the transaction aborts it: nothing is written.
                return Err(StoreError::Exists);
            }
            rooms
                .insert(r.room_id.as_str(), encode(r).as_slice())
                .map_err(unavailable)?;
            tx.open_table(ROOM_ORDER)
                .map_err(unavailable)?
                .insert((r.created_at.as_millis(), r.room_id.as_str()), ())
                .map_err(unavailable)?;
        }
        // Returning an error drops the transaction: nothing is written.
        for a in &c.advances {
            let room = a.room.as_str();
            let mut rec: RoomRecord = match rooms.get(room).map_err(unavailable)? {
                Some(v) => decode(v.value())?,
                None => return Err(StoreError::Corrupt(format!("no room {room}"))),
            };
            if rec.last_seq != a.expected {
                return Err(StoreError::Conflict(format!(
                    "room {room} is at seq {}, not {}",
                    rec.last_seq, a.expected
                )));
            }
            rec.last_seq = a.last;
            rooms
                .insert(room, encode(&rec).as_slice())
                .map_err(unavailable)?;
        }
        let mut events = tx.open_table(EVENTS).map_err(unavailable)?;
        let mut blocks = tx.open_table(EVENT_BLOCKS).map_err(unavailable)?;
        let index = tx.open_table(EVENT_IDS).map_err(unavailable)?;
        let mut new_ids = staged.table(tx)?;
        // Events never change: a block is packed once it is full.
        // A block this commit holds whole is packed straight from
        // it (never written as rows); others from their rows.
        let filled: HashMap<&str, std::ops::Range<u64>> = c
            .advances
            .iter()
            .map(|a| (a.room.as_str(), packed::wholly_in(a.expected, a.last)))
            .collect();
        let mut direct: BTreeMap<(&str, u64), Vec<packed::Row>> = BTreeMap::new();
        // The rest, one row per block they are in (a run if more
        // than one event).
        let mut partial: BTreeMap<(&str, u64), Vec<packed::Row>> = BTreeMap::new();
        // Each room's events must be the seqs its advance names (a
        // new room's from 1), in order: rows, runs and blocks rely
        // on it.
        let mut next_seq: HashMap<&str, u64> = c
            .advances
            .iter()
            .map(|a| (a.room.as_str(), a.expected + 1))
            .chain(c.new_rooms.iter().map(|r| (r.room_id.as_str(), 1)))
            .collect();
        for (n, e) in (0..).zip(&c.events) {
            let room = e.room_id.as_str();
            match next_seq.get_mut(room) {
                Some(next) if *next == e.seq => *next += 1,
                _ => {
                    return Err(StoreError::Corrupt(format!(
                        "a commit's event {} of room {room} is not the seq its advance names",
                        e.seq
                    )))
                }
            }
            let block = packed::block_of(e.seq);
            let json = e.to_json().into_bytes();
            if filled.get(room).is_some_and(|f| f.contains(&block)) {
                direct.entry((room, block)).or_default().push((e.seq, json));
            } else {
                partial
                    .entry((room, block))
                    .or_default()
                    .push((e.seq, json));
            }
            let id = e.event_id.as_u128();
            let duplicate = !fresh.insert((room, id))
                || staged.staged_seq(room, id).is_some()
                || ids::seq_in(&index, room, id)?.is_some();
            let overwritten = new_ids
                .insert(staged.key(n), (room, id, e.seq))
                .map_err(unavailable)?
                .is_some();
            if overwritten {
                return Err(StoreError::Corrupt(
                    "a staged eventId's key is taken".into(),
                ));
            }
            if duplicate {
                return Err(StoreError::Conflict(format!(
                    "room {room} has event {}",
                    e.event_id
                )));
            }
        }
        let ends = (c.advances.iter().map(|a| (a.room.as_str(), a.last)))
            .chain(c.new_rooms.iter().map(|r| (r.room_id.as_str(), r.last_seq)));
        let mut reached: HashMap<&str, u64> = HashMap::new();
        for (room, last) in ends {
            let at = reached.entry(room).or_default();
            *at = (*at).max(last);
        }
        if reached
            .iter()
            .any(|(room, last)| next_seq[room] != last + 1)
        {
            return Err(StoreError::Corrupt(
                "a commit's events do not reach the seqs its advances name".into(),
            ));
        }
        // In seq order already (checked above).
        for ((room, _), mut rows) in partial {
            let first = rows[0].0;
            let value = match rows.len() {
                1 => rows.pop().expect("one row").1,
                _ => packed::run(&rows),
            };
            let taken = events
                .insert((room, first), value.as_slice())
                .map_err(unavailable)?
                .is_some();
            if taken {
                return Err(StoreError::Conflict(format!("room {room} has seq {first}")));
            }
        }
        // Each is exactly its block's 64 seqs (checked above).
        for ((room, block), rows) in direct {
            // Events are at most 4,000 characters: 64 always pack.
            let packed = packed::pack(&rows).ok_or_else(|| {
                StoreError::Corrupt(format!("block {block} of room {room} is too big"))
            })?;
            let taken = blocks
                .insert((room, block), packed.as_slice())
                .map_err(unavailable)?
                .is_some();
            if taken {
                return Err(StoreError::Conflict(format!(
                    "room {room} has block {block}"
                )));
            }
        }
        for a in &c.advances {
            let filled = &filled[a.room.as_str()];
            for block in packed::ending_in(a.expected, a.last) {
                if !filled.contains(&block) {
                    packed::seal(&mut events, &mut blocks, &a.room, block)?;
                }
            }
        }
    }
    Ok(())
}

/// The (room, eventId, seq) of each of a commit's events.
fn committed_ids(c: &Commit) -> impl Iterator<Item = (&str, u128, u64)> {
    c.events
        .iter()
        .map(|e| (e.room_id.as_str(), e.event_id.as_u128(), e.seq))
}

/// Writes projection changes into `tx` (see [`ProjectionStore::apply`]):
/// the rooms left behind.
fn write_projection(
    tx: &redb::WriteTransaction,
    changes: &ProjectionChanges,
    events: Option<&[Arc<ChatEvent>]>,
) -> Result<Vec<String>, StoreError> {
    let (keep, behind) = {
        let mut projected = tx.open_table(PROJECTED).map_err(unavailable)?;
        let mut at = HashMap::new();
        for r in &changes.rooms {
            let now = projected.get(r.room.as_str()).map_err(unavailable)?;
            at.insert(r.room.clone(), now.map_or(0, |v| v.value()));
        }
        let (keep, behind) = changes.decide(|room| at[room]);
        for r in changes.rooms.iter().filter(|r| keep.contains(&r.room)) {
            projected
                .insert(r.room.as_str(), r.to)
                .map_err(unavailable)?;
        }
        (keep, behind)
    };
    let filtered;
    let c = if keep.len() == changes.rooms.len() {
        changes
    } else {
        filtered = changes.only(&keep);
        &filtered
    };
    views::write(tx, c, events)?;
    // A table is opened only for what it gets: each one opened costs a
    // commit a lookup in redb's table of tables.
    if !c.markers.is_empty() {
        let mut markers = tx.open_table(MARKERS).map_err(unavailable)?;
        for (room, user, seq) in &c.markers {
            markers
                .insert((room.as_str(), user.as_str()), *seq)
                .map_err(unavailable)?;
        }
    }
    if !c.counts.live.is_empty() {
        let mut room_live = tx.open_table(ROOM_LIVE).map_err(unavailable)?;
        let mut sender_live = tx.open_table(SENDER_LIVE).map_err(unavailable)?;
        for ((room, sender), delta) in &c.counts.live {
            add_count(&mut room_live, room.as_str(), *delta)?;
            add_count(&mut sender_live, (room.as_str(), sender.as_str()), *delta)?;
        }
    }
    if !c.counts.unread.is_empty() {
        let mut unread = tx.open_table(UNREAD).map_err(unavailable)?;
        for ((room, user), change) in &c.counts.unread {
            match *change {
                UnreadChange::By(delta) => {
                    add_count(&mut unread, (room.as_str(), user.as_str()), delta)?
                }
                UnreadChange::Set(0) => {
                    unread
                        .remove((room.as_str(), user.as_str()))
                        .map_err(unavailable)?;
                }
                UnreadChange::Set(n) => {
                    unread
                        .insert((room.as_str(), user.as_str()), n)
                        .map_err(unavailable)?;
                }
            }
        }
    }
    if !c.snapshots.is_empty() {
        let mut heads = tx.open_table(SNAP_HEADS).map_err(unavailable)?;
        let mut chunks = tx.open_table(SNAP_CHUNKS).map_err(unavailable)?;
        for (room, s) in &c.snapshots {
            heads
                .insert((room.as_str(), s.head.seq), encode(&s.head).as_slice())
                .map_err(unavailable)?;
            for ch in &s.chunks {
                chunks
                    .insert(
                        (room.as_str(), ch.index, ch.version),
                        encode_chunk(ch).as_slice(),
                    )
                    .map_err(unavailable)?;
            }
        }
    }
    Ok(behind)
}

/// Sets every room's checkpoint to its last seq.
fn fill_checkpoints(tx: &redb::WriteTransaction) -> Result<(), StoreError> {
    let rooms = tx.open_table(ROOMS).map_err(unavailable)?;
    let mut projected = tx.open_table(PROJECTED).map_err(unavailable)?;
    for row in rooms.iter().map_err(unavailable)? {
        let (_, v) = row.map_err(unavailable)?;
        let r: RoomRecord = decode(v.value())?;
        projected
            .insert(r.room_id.as_str(), r.last_seq)
            .map_err(unavailable)?;
    }
    Ok(())
}

/// Fills the room order and the counts behind unread counts from the rooms,
/// the projection and the read markers (for a store written before they
/// were kept; empty tables otherwise).
fn fill_counts(tx: &redb::WriteTransaction) -> Result<(), StoreError> {
    let rooms = tx.open_table(ROOMS).map_err(unavailable)?;
    let views = tx.open_table(VIEWS).map_err(unavailable)?;
    let view_blocks = tx.open_table(VIEW_BLOCKS).map_err(unavailable)?;
    let markers = tx.open_table(MARKERS).map_err(unavailable)?;
    let mut order = tx.open_table(ROOM_ORDER).map_err(unavailable)?;
    let mut room_live = tx.open_table(ROOM_LIVE).map_err(unavailable)?;
    let mut sender_live = tx.open_table(SENDER_LIVE).map_err(unavailable)?;
    let mut unread = tx.open_table(UNREAD).map_err(unavailable)?;
    for row in rooms.iter().map_err(unavailable)? {
        let (_, v) = row.map_err(unavailable)?;
        let r: RoomRecord = decode(v.value())?;
        let room = r.room_id.as_str();
        order
            .insert((r.created_at.as_millis(), room), ())
            .map_err(unavailable)?;
        // (seq, sender) of every live message, in seq order.
        let mut live: Vec<(u64, CompactString)> = Vec::new();
        // Only for a store from before the counts, whose views are all
        // stored (see `views`).
        for row in packed::merged(&views, &view_blocks, room, 1, u64::MAX, true)? {
            let (seq, v) = row?;
            if v.as_slice() == packed::TOMBSTONE {
                continue;
            }
            let m: Message = decode(&v)?;
            live.push((seq, m.sender_id));
        }
        room_live
            .insert(room, live.len() as u64)
            .map_err(unavailable)?;
        let mut by_sender: HashMap<&str, u64> = HashMap::new();
        for (_, sender) in &live {
            *by_sender.entry(sender.as_str()).or_default() += 1;
        }
        for (sender, n) in by_sender {
            sender_live.insert((room, sender), n).map_err(unavailable)?;
        }
        for row in markers.range((room, "")..).map_err(unavailable)? {
            let (k, v) = row.map_err(unavailable)?;
            let (r, user) = k.value();
            if r != room {
                break;
            }
            let marker = v.value();
            let start = live.partition_point(|(seq, _)| *seq <= marker);
            let n = live[start..].iter().filter(|(_, s)| s != user).count();
            unread.insert((room, user), n as u64).map_err(unavailable)?;
        }
    }
    Ok(())
}

/// `user`'s unread count in `room`: messages of others above the user's
/// read marker, read from the counts.
fn unread_in(tx: &redb::ReadTransaction, room: &str, user: &str) -> Result<u64, StoreError> {
    let markers = tx.open_table(MARKERS).map_err(unavailable)?;
    if markers.get((room, user)).map_err(unavailable)?.is_some() {
        let unread = tx.open_table(UNREAD).map_err(unavailable)?;
        return Ok(unread
            .get((room, user))
            .map_err(unavailable)?
            .map_or(0, |v| v.value()));
    }
    // No marker: every live message of others is unread.
    let all = tx.open_table(ROOM_LIVE).map_err(unavailable)?;
    let own = tx.open_table(SENDER_LIVE).map_err(unavailable)?;
    let all = all.get(room).map_err(unavailable)?.map_or(0, |v| v.value());
    let own = own
        .get((room, user))
        .map_err(unavailable)?
        .map_or(0, |v| v.value());
    Ok(all.saturating_sub(own))
}

/// Adds `delta` to the count under `key`; a count that reaches 0 is removed.
fn add_count<K: redb::Key + 'static>(
    table: &mut redb::Table<K, u64>,
    key: K::SelfType<'_>,
    delta: i64,
) -> Result<(), StoreError>
where
    for<'a> K::SelfType<'a>: Clone,
{
    let now = table
        .get(key.clone())
        .map_err(unavailable)?
        .map_or(0, |v| v.value());
    match now.checked_add_signed(delta) {
        Some(0) => {
            table.remove(key).map_err(unavailable)?;
        }
        Some(n) => {
            table.insert(key, n).map_err(unavailable)?;
        }
        None => return Err(StoreError::Corrupt("a count went below zero".into())),
    }
    Ok(())
}

fn last_seq_in(
    rooms: &impl ReadableTable<&'static str, &'static [u8]>,
    room: &str,
) -> Result<u64, StoreError> {
    match rooms.get(room).map_err(unavailable)? {
        Some(v) => Ok(decode::<RoomRecord>(v.value())?.last_seq),
        None => Ok(0),
    }
}

#[async_trait]
impl AccountStore for EmbeddedStore {
    async fn create_user(&self, user: &str, password_hash: &str) -> Result<(), StoreError> {
        let (user, hash) = (user.to_owned(), password_hash.to_owned());
        self.blocking(move |db| {
            let tx = db.begin_write().map_err(unavailable)?;
            {
                let mut t = tx.open_table(USERS).map_err(unavailable)?;
                if t.get(user.as_str()).map_err(unavailable)?.is_some() {
                    return Err(StoreError::Exists);
                }
                t.insert(user.as_str(), hash.as_str())
                    .map_err(unavailable)?;
            }
            tx.commit().map_err(unavailable)
        })
        .await
    }

    async fn password_hash(&self, user: &str) -> Result<Option<String>, StoreError> {
        let user = user.to_owned();
        self.blocking(move |db| {
            let tx = db.begin_read().map_err(unavailable)?;
            let t = tx.open_table(USERS).map_err(unavailable)?;
            Ok(t.get(user.as_str())
                .map_err(unavailable)?
                .map(|v| v.value().to_owned()))
        })
        .await
    }

    async fn put_session(
        &self,
        token_hash: &str,
        user: &str,
        expires_ms: i64,
    ) -> Result<(), StoreError> {
        let (h, user) = (token_hash.to_owned(), user.to_owned());
        self.blocking(move |db| {
            let tx = db.begin_write().map_err(unavailable)?;
            {
                let mut t = tx.open_table(SESSIONS).map_err(unavailable)?;
                t.insert(h.as_str(), (user.as_str(), expires_ms))
                    .map_err(unavailable)?;
            }
            tx.commit().map_err(unavailable)
        })
        .await
    }

    async fn session(&self, token_hash: &str) -> Result<Option<(String, i64)>, StoreError> {
        let h = token_hash.to_owned();
        self.blocking(move |db| {
            let tx = db.begin_read().map_err(unavailable)?;
            let t = tx.open_table(SESSIONS).map_err(unavailable)?;
            Ok(t.get(h.as_str()).map_err(unavailable)?.map(|v| {
                let (u, e) = v.value();
                (u.to_owned(), e)
            }))
        })
        .await
    }

    async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError> {
        let h = token_hash.to_owned();
        self.blocking(move |db| {
            let tx = db.begin_write().map_err(unavailable)?;
            {
                let mut t = tx.open_table(SESSIONS).map_err(unavailable)?;
                t.remove(h.as_str()).map_err(unavailable)?;
            }
            tx.commit().map_err(unavailable)
        })
        .await
    }

    /// One pass over the sessions table (reading), then one write
    /// transaction deleting what expired, at most `max` rows.
    async fn purge_expired_sessions(&self, now_ms: i64, max: usize) -> Result<usize, StoreError> {
        self.blocking(move |db| {
            let expired: Vec<String> = {
                let tx = db.begin_read().map_err(unavailable)?;
                let t = tx.open_table(SESSIONS).map_err(unavailable)?;
                let mut expired = Vec::new();
                for row in t.iter().map_err(unavailable)? {
                    if expired.len() >= max {
                        break;
                    }
                    let (k, v) = row.map_err(unavailable)?;
                    if v.value().1 <= now_ms {
                        expired.push(k.value().to_owned());
                    }
                }
                expired
            };
            if expired.is_empty() {
                return Ok(0);
            }
            let tx = db.begin_write().map_err(unavailable)?;
            let mut deleted = 0;
            {
                let mut t = tx.open_table(SESSIONS).map_err(unavailable)?;
                for h in &expired {
                    // Checked again: the row may have changed since the read.
                    let still_expired = t
                        .get(h.as_str())
                        .map_err(unavailable)?
                        .is_some_and(|v| v.value().1 <= now_ms);
                    if still_expired {
                        t.remove(h.as_str()).map_err(unavailable)?;
                        deleted += 1;
                    }
                }
            }
            tx.commit().map_err(unavailable)?;
            Ok(deleted)
        })
        .await
    }
}

#[async_trait]
impl EventStore for EmbeddedStore {
    fn kind(&self) -> &'static str {
        "embedded"
    }

    fn blocks(&self) -> bool {
        true
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.blocking(|db| db.begin_read().map(|_| ()).map_err(unavailable))
            .await
    }

    async fn last_seqs(&self, rooms: &[String]) -> Result<HashMap<String, u64>, StoreError> {
        let rooms = rooms.to_vec();
        self.blocking(move |db| {
            let tx = db.begin_read().map_err(unavailable)?;
            let t = tx.open_table(ROOMS).map_err(unavailable)?;
            let mut lasts = HashMap::with_capacity(rooms.len());
            for room in rooms {
                if let Some(v) = t.get(room.as_str()).map_err(unavailable)? {
                    let last = decode::<RoomRecord>(v.value())?.last_seq;
                    lasts.insert(room, last);
                }
            }
            Ok(lasts)
        })
        .await
    }

    async fn room(&self, room: &str) -> Result<Option<RoomRecord>, StoreError> {
        let room = room.to_owned();
        self.blocking(move |db| {
            let tx = db.begin_read().map_err(unavailable)?;
            let t = tx.open_table(ROOMS).map_err(unavailable)?;
            t.get(room.as_str())
                .map_err(unavailable)?
                .map(|v| decode(v.value()))
                .transpose()
        })
        .await
    }

    async fn events(
        &self,
        room: &str,
        after: u64,
        limit: usize,
    ) -> Result<(Vec<ChatEvent>, u64), StoreError> {
        let room = room.to_owned();
        self.blocking(move |db| {
            let tx = db.begin_read().map_err(unavailable)?;
            let last = last_seq_in(&tx.open_table(ROOMS).map_err(unavailable)?, &room)?;
            let t = tx.open_table(EVENTS).map_err(unavailable)?;
            let blocks = tx.open_table(EVENT_BLOCKS).map_err(unavailable)?;
            let mut out = Vec::new();
            if limit > 0 && after < last {
                for row in packed::merged(&t, &blocks, &room, after + 1, last, true)?.take(limit) {
                    out.push(decode(&row?.1)?);
                }
            }
            Ok((out, last))
        })
        .await
    }

    async fn event_by_id(&self, room: &str, id: Uuid) -> Result<Option<ChatEvent>, StoreError> {
        let (room, staged) = (room.to_owned(), self.ids.clone());
        self.blocking(move |db| {
            // Memory read with the snapshot's beginning: see `ids`.
            let (tx, seq) = {
                let staged = staged.lock();
                let tx = db.begin_read().map_err(unavailable)?;
                let seq = staged.staged_seq(&room, id.as_u128());
                (tx, seq)
            };
            let seq = match seq {
                Some(seq) => seq,
                None => {
                    let index = tx.open_table(EVENT_IDS).map_err(unavailable)?;
                    match ids::seq_in(&index, &room, id.as_u128())? {
                        Some(seq) => seq,
                        None => return Ok(None),
                    }
                }
            };
            let t = tx.open_table(EVENTS).map_err(unavailable)?;
            let blocks = tx.open_table(EVENT_BLOCKS).map_err(unavailable)?;
            packed::get(&t, &blocks, &room, seq)?
                .map(|v| decode(&v))
                .transpose()
        })
        .await
    }

    async fn seqs_of(&self, room: &str, ids: &[Uuid]) -> Result<Vec<(Uuid, u64)>, StoreError> {
        let found = self
            .seqs_in_rooms(vec![(room.to_owned(), ids.to_vec())])
            .await?;
        Ok(found.into_iter().map(|(_, id, seq)| (id, seq)).collect())
    }

    async fn seqs_in_rooms(
        &self,
        wanted: Vec<(String, Vec<Uuid>)>,
    ) -> Result<Vec<(String, Uuid, u64)>, StoreError> {
        let staged = self.ids.clone();
        self.blocking(move |db| {
            // Memory read with the snapshot's beginning: see `ids`.
            let mut out = Vec::new();
            let mut misses = Vec::new();
            let tx = {
                let staged = staged.lock();
                let tx = db.begin_read().map_err(unavailable)?;
                for (room, ids) in &wanted {
                    for id in ids {
                        match staged.staged_seq(room, id.as_u128()) {
                            Some(seq) => out.push((room.clone(), *id, seq)),
                            None => misses.push((room, *id)),
                        }
                    }
                }
                tx
            };
            let index = tx.open_table(EVENT_IDS).map_err(unavailable)?;
            for (room, id) in misses {
                if let Some(seq) = ids::seq_in(&index, room, id.as_u128())? {
                    out.push((room.clone(), id, seq));
                }
            }
            Ok(out)
        })
        .await
    }

    async fn seq_at_time(&self, room: &str, at: Timestamp) -> Result<u64, StoreError> {
        let room = room.to_owned();
        self.blocking(move |db| {
            let tx = db.begin_read().map_err(unavailable)?;
            let last = last_seq_in(&tx.open_table(ROOMS).map_err(unavailable)?, &room)?;
            let t = tx.open_table(EVENTS).map_err(unavailable)?;
            let blocks = tx.open_table(EVENT_BLOCKS).map_err(unavailable)?;
            // Timestamps never decrease within a room: binary search the seqs.
            let ts_of = |seq: u64| -> Result<Timestamp, StoreError> {
                let v = packed::get(&t, &blocks, &room, seq)?
                    .ok_or_else(|| StoreError::Corrupt(format!("missing event {seq}")))?;
                Ok(decode::<ChatEvent>(&v)?.timestamp)
            };
            let (mut lo, mut hi) = (0u64, last); // answer in lo..=hi
            while lo < hi {
                let mid = lo + (hi - lo).div_ceil(2);
                if ts_of(mid)? <= at {
                    lo = mid;
                } else {
                    hi = mid - 1;
                }
            }
            Ok(lo)
        })
        .await
    }

    async fn commit(&self, c: Commit) -> Result<(), StoreError> {
        let staged = self.ids.clone();
        self.blocking(move |db| {
            let tx = db.begin_write().map_err(unavailable)?;
            // Locked after the write begins, kept until it is recorded.
            let mut staged = staged.lock();
            write_events(&tx, &staged, &c)?;
            // Projection writes take the merge steps; past a cap (they
            // keep failing), appends do.
            let step = staged.merge_if_over_cap(&tx)?;
            tx.commit().map_err(unavailable)?;
            // This commit's ids first: they are in the table a started
            // merge drains.
            staged.record_committed(committed_ids(&c));
            staged.record_step(step);
            Ok(())
        })
        .await
    }

    async fn commit_with_projection(
        &self,
        c: Commit,
        proj: Arc<ProjectionChanges>,
    ) -> Result<WithProjection, StoreError> {
        let staged = self.ids.clone();
        let written = self
            .blocking(move |db| {
                let tx = db.begin_write().map_err(unavailable)?;
                let mut staged = staged.lock();
                write_events(&tx, &staged, &c)?;
                // What only the projection needs must not cost the events:
                // then they are committed alone (dropping the transaction
                // aborts it), and the projection is left to the caller.
                let projected = write_projection(&tx, &proj, Some(&c.events))
                    .and_then(|behind| Ok((behind, staged.merge(&tx)?)));
                let (behind, step) = match projected {
                    Ok(written) => written,
                    Err(e) => {
                        tracing::warn!(error = %e, "the projection could not go with the events");
                        return Ok(Err(c));
                    }
                };
                tx.commit().map_err(unavailable)?;
                staged.record_committed(committed_ids(&c));
                staged.record_step(step);
                Ok(Ok(behind))
            })
            .await?;
        match written {
            Ok(behind) => Ok(WithProjection::Written { behind }),
            Err(c) => self.commit(c).await.map(|()| WithProjection::Left),
        }
    }
}

#[async_trait]
impl ProjectionStore for EmbeddedStore {
    async fn room_list(
        &self,
        user: &str,
        after: Option<(i64, &str)>,
        limit: usize,
    ) -> Result<Vec<(RoomRecord, u64)>, StoreError> {
        let user = user.to_owned();
        let after = after.map(|(t, id)| (t, id.to_owned()));
        self.blocking(move |db| {
            let tx = db.begin_read().map_err(unavailable)?;
            let rooms = tx.open_table(ROOMS).map_err(unavailable)?;
            let order = tx.open_table(ROOM_ORDER).map_err(unavailable)?;
            let range = match &after {
                Some((t, id)) => order.range((*t, id.as_str())..),
                None => order.range::<(i64, &str)>(..),
            }
            .map_err(unavailable)?;
            let mut out = Vec::new();
            for row in range {
                if out.len() >= limit {
                    break;
                }
                let (k, _) = row.map_err(unavailable)?;
                let (t, id) = k.value();
                if after
                    .as_ref()
                    .is_some_and(|(at, aid)| (*at, aid.as_str()) == (t, id))
                {
                    continue;
                }
                let r: RoomRecord = match rooms.get(id).map_err(unavailable)? {
                    Some(v) => decode(v.value())?,
                    None => {
                        return Err(StoreError::Corrupt(format!(
                            "room order names no room {id}"
                        )))
                    }
                };
                let unread = unread_in(&tx, id, &user)?;
                out.push((r, unread));
            }
            Ok(out)
        })
        .await
    }

    async fn views(
        &self,
        room: &str,
        limit: usize,
        before: Option<u64>,
    ) -> Result<ViewPage, StoreError> {
        let room = room.to_owned();
        self.blocking(move |db| {
            let tx = db.begin_read().map_err(unavailable)?;
            let last_seq = last_seq_in(&tx.open_table(ROOMS).map_err(unavailable)?, &room)?;
            let projected = (tx.open_table(PROJECTED).map_err(unavailable)?)
                .get(room.as_str())
                .map_err(unavailable)?
                .map_or(0, |v| v.value());
            let upper = before.unwrap_or(u64::MAX);
            let mut messages = views::newest(&tx, &room, projected, upper, limit)?;
            messages.reverse();
            let m = tx.open_table(MARKERS).map_err(unavailable)?;
            let mut read_markers = BTreeMap::new();
            for row in m.range((room.as_str(), "")..).map_err(unavailable)? {
                let (k, v) = row.map_err(unavailable)?;
                let (r, user) = k.value();
                if r != room {
                    break;
                }
                read_markers.insert(CompactString::from(user), v.value());
            }
            Ok(ViewPage {
                messages,
                read_markers,
                last_seq,
                projected,
            })
        })
        .await
    }

    async fn unread_count(&self, room: &str, user: &str) -> Result<u64, StoreError> {
        let (room, user) = (room.to_owned(), user.to_owned());
        self.blocking(move |db| {
            let tx = db.begin_read().map_err(unavailable)?;
            unread_in(&tx, &room, &user)
        })
        .await
    }

    async fn apply(&self, changes: Arc<ProjectionChanges>) -> Result<Vec<String>, StoreError> {
        let staged = self.ids.clone();
        self.blocking(move |db| {
            let mut tx = db.begin_write().map_err(unavailable)?;
            // Not synced on its own: see the module's comment.
            tx.set_durability(redb::Durability::None);
            let behind = write_projection(&tx, &changes, None)?;
            // Projection writes take the staged eventIds' merge steps.
            let mut staged = staged.lock();
            let step = staged.merge(&tx)?;
            tx.commit().map_err(unavailable)?;
            staged.record_step(step);
            Ok(behind)
        })
        .await
    }

    async fn projected(&self, rooms: &[String]) -> Result<HashMap<String, u64>, StoreError> {
        let rooms = rooms.to_vec();
        self.blocking(move |db| {
            let tx = db.begin_read().map_err(unavailable)?;
            let t = tx.open_table(PROJECTED).map_err(unavailable)?;
            rooms
                .into_iter()
                .map(|r| {
                    let at = t
                        .get(r.as_str())
                        .map_err(unavailable)?
                        .map_or(0, |v| v.value());
                    Ok((r, at))
                })
                .collect()
        })
        .await
    }

    async fn replace_projection(
        &self,
        room: &str,
        p: RoomProjection,
        at: u64,
    ) -> Result<bool, StoreError> {
        let room = room.to_owned();
        self.blocking(move |db| {
            let tx = db.begin_write().map_err(unavailable)?;
            {
                let room = room.as_str();
                let mut projected = tx.open_table(PROJECTED).map_err(unavailable)?;
                if projected
                    .get(room)
                    .map_err(unavailable)?
                    .is_some_and(|v| v.value() > at)
                {
                    return Ok(false);
                }
                projected.insert(room, at).map_err(unavailable)?;
                let mut views = tx.open_table(VIEWS).map_err(unavailable)?;
                let mut blocks = tx.open_table(VIEW_BLOCKS).map_err(unavailable)?;
                for t in [&mut views, &mut blocks] {
                    t.retain_in((room, 0)..=(room, u64::MAX), |_, _| false)
                        .map_err(unavailable)?;
                }
                for m in &p.messages {
                    views
                        .insert((room, m.seq), encode(m).as_slice())
                        .map_err(unavailable)?;
                }
                for block in views::to_seal(0, at) {
                    packed::seal(&mut views, &mut blocks, room, block)?;
                }
                views::set_stored_through(&tx, room, at)?;
                let mut markers = tx.open_table(MARKERS).map_err(unavailable)?;
                let mut sender_live = tx.open_table(SENDER_LIVE).map_err(unavailable)?;
                let mut unread = tx.open_table(UNREAD).map_err(unavailable)?;
                // Every (room, user) key of the room: from "" up to the next room.
                let users =
                    |t: &redb::Table<(&str, &str), u64>| -> Result<Vec<String>, StoreError> {
                        let mut out = Vec::new();
                        for row in t.range((room, "")..).map_err(unavailable)? {
                            let (k, _) = row.map_err(unavailable)?;
                            let (r, u) = k.value();
                            if r != room {
                                break;
                            }
                            out.push(u.to_owned());
                        }
                        Ok(out)
                    };
                for t in [&mut markers, &mut sender_live, &mut unread] {
                    for u in users(t)? {
                        t.remove((room, u.as_str())).map_err(unavailable)?;
                    }
                }
                for (u, seq) in &p.read_markers {
                    markers
                        .insert((room, u.as_str()), *seq)
                        .map_err(unavailable)?;
                }
                for (u, n) in &p.live_by_sender {
                    sender_live
                        .insert((room, u.as_str()), *n)
                        .map_err(unavailable)?;
                }
                for (u, n) in &p.unread {
                    if *n > 0 {
                        unread.insert((room, u.as_str()), *n).map_err(unavailable)?;
                    }
                }
                let total: u64 = p.live_by_sender.values().sum();
                tx.open_table(ROOM_LIVE)
                    .map_err(unavailable)?
                    .insert(room, total)
                    .map_err(unavailable)?;
            }
            tx.commit().map_err(unavailable)?;
            Ok(true)
        })
        .await
    }
}

#[async_trait]
impl SnapshotStore for EmbeddedStore {
    fn head_cache(&self) -> Option<&HeadCache> {
        Some(&self.bases)
    }

    async fn stored_head(
        &self,
        room: &str,
        at_most: u64,
    ) -> Result<Option<SnapshotHead>, StoreError> {
        let room = room.to_owned();
        self.blocking(move |db| {
            let tx = db.begin_read().map_err(unavailable)?;
            let t = tx.open_table(SNAP_HEADS).map_err(unavailable)?;
            let mut it = t
                .range((room.as_str(), 0)..=(room.as_str(), at_most))
                .map_err(unavailable)?;
            match it.next_back() {
                Some(row) => {
                    let (_, v) = row.map_err(unavailable)?;
                    Ok(Some(decode(v.value())?))
                }
                None => Ok(None),
            }
        })
        .await
    }

    async fn snapshot_chunks(
        &self,
        room: &str,
        which: &[(u64, u64)],
    ) -> Result<Vec<SnapshotChunk>, StoreError> {
        let (room, which) = (room.to_owned(), which.to_vec());
        self.blocking(move |db| {
            let tx = db.begin_read().map_err(unavailable)?;
            let t = tx.open_table(SNAP_CHUNKS).map_err(unavailable)?;
            let mut out = Vec::with_capacity(which.len());
            for (index, version) in which {
                let v = t
                    .get((room.as_str(), index, version))
                    .map_err(unavailable)?
                    .ok_or_else(|| {
                        StoreError::Corrupt(format!("missing chunk {index}@{version}"))
                    })?;
                out.push(decode_chunk(v.value())?);
            }
            Ok(out)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Projected, SeqAdvance};
    use super::*;
    use domain::Reactions;

    fn message(seq: u64, sender: &str) -> Message {
        Message {
            id: Uuid::from_u128(seq.into()),
            seq,
            sender_id: sender.into(),
            content: "hi".into(),
            sent_at: Timestamp::from_millis(seq as i64).unwrap(),
            edited_at: None,
            reactions: Reactions::new(),
        }
    }

    /// A delta head is served complete, on top of its base; one whose base
    /// is missing gives way to an older head that loads.
    #[tokio::test]
    async fn delta_heads_are_served_complete_or_not_at_all() {
        use domain::{ChunkInfo, SnapshotHead};
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let info = |index, version| ChunkInfo {
            index,
            live: 1,
            version,
        };
        let head = |seq, base, chunks| SnapshotHead {
            seq,
            base,
            chunks,
            ..SnapshotHead::empty()
        };
        let complete = head(10, None, vec![info(0, 10), info(1, 10)]);
        let orphan = head(20, Some(15), vec![info(1, 20)]);
        let delta = head(30, Some(10), vec![info(1, 30), info(2, 30)]);
        {
            let tx = store.db.begin_write().unwrap();
            {
                let mut heads = tx.open_table(SNAP_HEADS).unwrap();
                for h in [&complete, &orphan, &delta] {
                    heads.insert(("r", h.seq), encode(h).as_slice()).unwrap();
                }
            }
            tx.commit().unwrap();
        }
        let latest = store.snapshot_head("r", 100).await.unwrap().unwrap();
        assert_eq!(
            latest,
            head(30, None, vec![info(0, 10), info(1, 30), info(2, 30)])
        );
        // The base is kept decoded: asked again, the same head.
        assert_eq!(store.bases.len(), 1);
        assert_eq!(store.snapshot_head("r", 100).await.unwrap(), Some(latest));
        let at_25 = store.snapshot_head("r", 25).await.unwrap().unwrap();
        assert_eq!(at_25, complete, "the orphan delta gives way");
        assert_eq!(store.snapshot_head("r", 9).await.unwrap(), None);
    }

    /// Chunks are stored compressed; chunks stored as plain JSON before
    /// still load.
    #[test]
    fn snapshot_chunks_round_trip_compressed_and_plain() {
        let chunk = SnapshotChunk {
            index: 3,
            version: 900,
            messages: (769..=1024).map(|seq| message(seq, "alice")).collect(),
        };
        let stored = encode_chunk(&chunk);
        assert_eq!(stored[0], compressed::ZSTD);
        assert!(
            stored.len() * 4 < encode(&chunk).len(),
            "{} bytes",
            stored.len()
        );
        assert_eq!(decode_chunk(&stored).unwrap(), chunk);
        assert_eq!(decode_chunk(&encode(&chunk)).unwrap(), chunk);
        assert!(matches!(
            decode_chunk(&[compressed::ZSTD, 1, 2, 3]),
            Err(StoreError::Corrupt(_))
        ));
    }

    /// A distinct eventId per seq, spread over the id space.
    fn id_of(seq: u64) -> Uuid {
        Uuid::from_u128(u128::from(seq).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835))
    }

    fn event_in(room: &str, seq: u64) -> ChatEvent {
        ChatEvent {
            event_id: id_of(seq),
            room_id: room.into(),
            seq,
            sender_id: "alice".into(),
            timestamp: Timestamp::from_millis(seq as i64 * 10).unwrap(),
            kind: domain::EventKind::MessageSent {
                content: format!("text {seq}").into(),
            },
        }
    }

    fn new_room(room: &str) -> RoomRecord {
        RoomRecord {
            room_id: room.into(),
            name: "R".into(),
            created_by: "alice".into(),
            created_at: Timestamp::from_millis(0).unwrap(),
            last_seq: 0,
        }
    }

    /// A commit of `room`'s events `at + 1 ..= at + n` (creating the room
    /// when `at` is 0).
    fn commit_of(room: &str, at: u64, n: u64) -> Commit {
        Commit {
            new_rooms: if at == 0 {
                vec![new_room(room)]
            } else {
                vec![]
            },
            events: (at + 1..=at + n)
                .map(|s| Arc::new(event_in(room, s)))
                .collect(),
            advances: vec![SeqAdvance {
                room: room.into(),
                expected: at,
                last: at + n,
            }],
        }
    }

    /// A commit of `n` events of room "r" after `at`, one of them (the
    /// last) with the eventId of `seq` instead of its own.
    fn commit_reusing(at: u64, n: u64, seq: u64) -> Commit {
        let mut c = commit_of("r", at, n);
        let last = at + n;
        c.events[n as usize - 1] = Arc::new(ChatEvent {
            event_id: id_of(seq),
            ..event_in("r", last)
        });
        c
    }

    /// One projection write of nothing: one merge step of the staged ids.
    async fn merge_step(store: &EmbeddedStore) {
        let changes = ProjectionChanges {
            rooms: vec![Projected {
                room: "r".into(),
                from: 0,
                to: 0,
            }],
            ..ProjectionChanges::default()
        };
        store.apply(Arc::new(changes)).await.unwrap();
    }

    /// Staged and index rows on disk, against the ids in memory.
    fn staged_on_disk(store: &EmbeddedStore) -> (u64, u64) {
        use redb::ReadableTableMetadata;
        let tx = store.db.begin_read().unwrap();
        let len = |t| tx.open_table(t).unwrap().len().unwrap();
        let staged = len(STAGED_IDS[0]) + len(STAGED_IDS[1]);
        let indexed = tx.open_table(EVENT_IDS).unwrap().len().unwrap();
        assert_eq!(store.ids.lock().len() as u64, staged, "memory = disk");
        (staged, indexed)
    }

    /// Every id of room "r" up to `last` is found, and refuses a second
    /// event; nothing is written by the refused commits.
    async fn all_found_and_refused(store: &EmbeddedStore, last: u64) {
        let wanted: Vec<Uuid> = (1..=last + 1).map(id_of).collect();
        let found = store.seqs_of("r", &wanted).await.unwrap();
        let mut found: Vec<u64> = found.into_iter().map(|(_, s)| s).collect();
        found.sort();
        assert_eq!(found, (1..=last).collect::<Vec<_>>());
        for seq in [1, last / 2, last] {
            let e = store.event_by_id("r", id_of(seq)).await.unwrap();
            assert_eq!(e, Some(event_in("r", seq)), "{seq}");
            let again = store.commit(commit_reusing(last, 2, seq)).await;
            assert!(matches!(again, Err(StoreError::Conflict(_))), "{seq}");
        }
        let twice = store.commit(commit_reusing(last, 2, last + 1)).await;
        assert!(matches!(twice, Err(StoreError::Conflict(_))));
        assert_eq!(store.events("r", last, 10).await.unwrap().0, vec![]);
        staged_on_disk(store);
    }

    /// The projection of `room`'s events `at + 1 ..= at + n`: a view row
    /// each.
    fn projection_of(room: &str, at: u64, n: u64) -> Arc<ProjectionChanges> {
        Arc::new(ProjectionChanges {
            rooms: vec![Projected {
                room: room.into(),
                from: at,
                to: at + n,
            }],
            views: (at + 1..=at + n)
                .map(|s| (room.to_owned(), ViewChange::Put(message(s, "alice"))))
                .collect(),
            ..ProjectionChanges::default()
        })
    }

    /// On a thread that runs the store's calls in place (an append
    /// writer's), a call that panics in the middle of a write is answered
    /// `Unavailable`, the thread goes on, and the store works after it,
    /// without what the call began.
    #[test]
    fn a_panic_in_a_call_run_in_place_is_answered_and_the_store_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let on_writer = std::thread::spawn(move || {
            crate::store::block_in_place_on_this_thread();
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                store.commit(commit_of("r", 0, 2)).await.unwrap();
                let ids = store.ids.clone();
                let panicked = store
                    .blocking(move |db| -> Result<(), StoreError> {
                        let tx = db.begin_write().map_err(unavailable)?;
                        write_events(&tx, &ids.lock(), &commit_of("r", 2, 1))?;
                        panic!("a bug in a store call");
                    })
                    .await;
                assert!(
                    matches!(panicked, Err(StoreError::Unavailable(_))),
                    "{panicked:?}"
                );
                assert_eq!(store.events("r", 0, 10).await.unwrap().0.len(), 2);
                store.commit(commit_of("r", 2, 1)).await.unwrap();
                assert_eq!(store.events("r", 0, 10).await.unwrap().0.len(), 3);
            });
        });
        on_writer.join().expect("the writer's thread goes on");
    }

    /// A store written by a newer server (a later format) is refused, not
    /// read as if it were this one's.
    #[test]
    fn a_store_of_a_later_format_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        {
            let tx = store.db.begin_write().unwrap();
            tx.open_table(META)
                .unwrap()
                .insert("format", FORMAT + 1)
                .unwrap();
            tx.commit().unwrap();
        }
        drop(store);
        match EmbeddedStore::open(dir.path()) {
            Err(StoreError::Unavailable(why)) => assert!(why.contains("newer server"), "{why}"),
            Err(e) => panic!("another error: {e}"),
            Ok(_) => panic!("a store of a later format was opened"),
        }
    }

    /// Events and their projection go in one transaction: both are there
    /// after it, or neither. A room whose projection lags is left behind
    /// (its events written, its views not), and a refused commit writes
    /// neither.
    #[tokio::test]
    async fn a_commit_writes_its_projection_with_it_or_leaves_it_behind() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let seqs = |page: ViewPage| page.messages.iter().map(|m| m.seq).collect::<Vec<_>>();

        let behind = store
            .commit_with_projection(commit_of("r", 0, 3), projection_of("r", 0, 3))
            .await
            .unwrap();
        assert_eq!(behind, WithProjection::Written { behind: vec![] });
        assert_eq!(store.events("r", 0, 10).await.unwrap().0.len(), 3);
        let page = store.views("r", 10, None).await.unwrap();
        assert_eq!((page.last_seq, page.projected), (3, 3));
        assert_eq!(seqs(page), vec![1, 2, 3]);

        // Room "s" has events without their projection.
        store.commit(commit_of("s", 0, 2)).await.unwrap();
        let behind = store
            .commit_with_projection(commit_of("s", 2, 1), projection_of("s", 2, 1))
            .await
            .unwrap();
        let behind_s = WithProjection::Written {
            behind: vec!["s".to_owned()],
        };
        assert_eq!(behind, behind_s);
        assert_eq!(store.events("s", 0, 10).await.unwrap().0.len(), 3);
        let page = store.views("s", 10, None).await.unwrap();
        assert_eq!((page.last_seq, page.projected), (3, 0));
        assert_eq!(seqs(page), Vec::<u64>::new());

        // Another writer moved "r" on: nothing of this commit is written.
        let refused = store
            .commit_with_projection(commit_of("r", 2, 2), projection_of("r", 3, 1))
            .await;
        assert!(matches!(refused, Err(StoreError::Conflict(_))));
        let page = store.views("r", 10, None).await.unwrap();
        assert_eq!((page.last_seq, page.projected), (3, 3));
        assert_eq!(seqs(page), vec![1, 2, 3]);

        // A projection that cannot be written leaves the events to be
        // committed alone: room "t" as a store from before views were
        // derived could have it, its projection at 1 and the view of seq 1
        // in a block that does not decode, which an edit of it rewrites.
        store.commit(commit_of("t", 0, 1)).await.unwrap();
        {
            let tx = store.db.begin_write().unwrap();
            let mut blocks = tx.open_table(VIEW_BLOCKS).unwrap();
            blocks
                .insert(("t", 0), &[compressed::ZSTD, 1, 2, 3][..])
                .unwrap();
            drop(blocks);
            tx.open_table(PROJECTED).unwrap().insert("t", 1).unwrap();
            views::set_stored_through(&tx, "t", 1).unwrap();
            tx.commit().unwrap();
        }
        let projection = ProjectionChanges {
            rooms: vec![Projected {
                room: "t".into(),
                from: 1,
                to: 2,
            }],
            views: vec![("t".into(), ViewChange::Put(message(1, "alice")))],
            ..ProjectionChanges::default()
        };
        let left = store
            .commit_with_projection(commit_of("t", 1, 1), Arc::new(projection))
            .await
            .unwrap();
        assert_eq!(left, WithProjection::Left);
        assert_eq!(store.events("t", 0, 10).await.unwrap().0.len(), 2);
        let at = store.projected(&["t".to_owned()]).await.unwrap();
        assert_eq!(at["t"], 1);
    }

    /// Staged eventIds are found, and refuse a second event, in every phase
    /// of a merge into the index and after a reopen in the middle of one;
    /// the same id in another room is another event.
    #[tokio::test]
    async fn event_ids_are_found_in_every_phase_of_a_merge() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        store.ids.lock().set_merge_at(20, 8);
        store.commit(commit_of("r", 0, 15)).await.unwrap();
        merge_step(&store).await;
        assert_eq!(store.ids.lock().phase(), (0, None), "filling");
        all_found_and_refused(&store, 15).await;
        store.commit(commit_of("s", 0, 1)).await.unwrap();
        store.commit(commit_of("r", 15, 10)).await.unwrap();
        merge_step(&store).await;
        assert_eq!(store.ids.lock().phase(), (1, Some((0, 26))), "started");
        all_found_and_refused(&store, 25).await;
        store.commit(commit_of("r", 25, 5)).await.unwrap();
        merge_step(&store).await;
        assert_eq!(store.ids.lock().phase(), (1, Some((10, 26))), "moved");
        assert_eq!(staged_on_disk(&store), (31, 10));
        all_found_and_refused(&store, 30).await;

        // Reopened in the middle: the draining table moves again, whole.
        drop(store);
        let store = EmbeddedStore::open(dir.path()).unwrap();
        store.ids.lock().set_merge_at(20, 8);
        assert_eq!(store.ids.lock().phase(), (1, Some((0, 26))), "reopened");
        all_found_and_refused(&store, 30).await;
        store.commit(commit_of("r", 30, 3)).await.unwrap();
        assert_eq!(staged_on_disk(&store), (34, 10));
        while store.ids.lock().phase().1.is_some() {
            merge_step(&store).await;
        }
        assert_eq!(staged_on_disk(&store), (8, 26), "the drained table is gone");
        all_found_and_refused(&store, 33).await;
        let s1 = store.event_by_id("s", id_of(1)).await.unwrap();
        assert_eq!(s1, Some(event_in("s", 1)));
    }

    /// Blocks filled by one commit are packed from it, others from the
    /// rows of several commits; the log reads back whole either way.
    #[tokio::test]
    async fn events_read_back_across_packed_blocks_and_rows() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let event = |seq: u64| event_in("r", seq);
        let mut at = 0;
        // Commits of 100, 1 (x 30), 170 and 5 events.
        let sizes: Vec<u64> = [100].into_iter().chain([1; 30]).chain([170, 5]).collect();
        for n in sizes {
            store.commit(commit_of("r", at, n)).await.unwrap();
            at += n;
        }
        // A commit that moves a room from where it no longer is writes
        // nothing, though it would fill a block of its own.
        let stale = Commit {
            new_rooms: vec![],
            events: (257..=320).map(|s| Arc::new(event(s))).collect(),
            advances: vec![SeqAdvance {
                room: "r".into(),
                expected: 256,
                last: 320,
            }],
        };
        assert!(matches!(
            store.commit(stale).await,
            Err(StoreError::Conflict(_))
        ));
        // Events that are not the seqs the advance names: refused whole.
        for seqs in [vec![306, 306], vec![306, 308], vec![306]] {
            let mut c = commit_of("r", 305, 2);
            c.events = seqs.iter().map(|s| Arc::new(event(*s))).collect();
            let refused = store.commit(c).await;
            assert!(matches!(refused, Err(StoreError::Corrupt(_))), "{seqs:?}");
        }
        let (all, last) = store.events("r", 0, 1000).await.unwrap();
        assert_eq!(last, 305);
        assert_eq!(all, (1..=305).map(event).collect::<Vec<_>>());
        let (page, _) = store.events("r", 120, 7).await.unwrap();
        assert_eq!(page, (121..=127).map(event).collect::<Vec<_>>());
        for seq in [1, 64, 65, 130, 200, 305] {
            let found = store.event_by_id("r", id_of(seq)).await;
            assert_eq!(found.unwrap(), Some(event(seq)), "{seq}");
        }
        assert_eq!(
            store
                .seq_at_time("r", Timestamp::from_millis(1_505).unwrap())
                .await
                .unwrap(),
            150
        );
        // One commit over two rooms, one of them new.
        let both = Commit {
            new_rooms: vec![new_room("s")],
            events: (306..=400)
                .map(|s| Arc::new(event(s)))
                .chain((1..=70).map(|s| Arc::new(event_in("s", s))))
                .collect(),
            advances: vec![
                SeqAdvance {
                    room: "r".into(),
                    expected: 305,
                    last: 400,
                },
                SeqAdvance {
                    room: "s".into(),
                    expected: 0,
                    last: 70,
                },
            ],
        };
        store.commit(both).await.unwrap();
        let (all, _) = store.events("r", 0, 1000).await.unwrap();
        assert_eq!(all, (1..=400).map(event).collect::<Vec<_>>());
        let (all, _) = store.events("s", 0, 1000).await.unwrap();
        assert_eq!(all, (1..=70).map(|s| event_in("s", s)).collect::<Vec<_>>());
        let tx = store.db.begin_read().unwrap();
        use redb::ReadableTableMetadata;
        assert_eq!(tx.open_table(EVENT_BLOCKS).unwrap().len().unwrap(), 6 + 1);
        // r's 385..=400 and s's 65..=70: one run each.
        assert_eq!(tx.open_table(EVENTS).unwrap().len().unwrap(), 2);
    }

    /// A store written before the counts were kept gets them on open.
    #[tokio::test]
    async fn counts_are_filled_for_a_store_that_had_none() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        {
            let tx = store.db.begin_write().unwrap();
            {
                let room = RoomRecord {
                    room_id: "r".into(),
                    name: "R".into(),
                    created_by: "alice".into(),
                    created_at: Timestamp::from_millis(0).unwrap(),
                    last_seq: 9,
                };
                let mut rooms = tx.open_table(ROOMS).unwrap();
                rooms.insert("r", encode(&room).as_slice()).unwrap();
                let mut views = tx.open_table(VIEWS).unwrap();
                for (seq, who) in [
                    (2, "alice"),
                    (3, "bob"),
                    (5, "alice"),
                    (7, "alice"),
                    (8, "bob"),
                ] {
                    views
                        .insert(("r", seq), encode(&message(seq, who)).as_slice())
                        .unwrap();
                }
                let mut markers = tx.open_table(MARKERS).unwrap();
                markers.insert(("r", "bob"), 4).unwrap();
                markers.insert(("r", "dave"), 9).unwrap();
                tx.open_table(META).unwrap().remove("counts").unwrap();
            }
            tx.commit().unwrap();
        }
        drop(store);
        let store = EmbeddedStore::open(dir.path()).unwrap();
        for (user, unread) in [("bob", 2), ("alice", 2), ("carol", 5), ("dave", 0)] {
            assert_eq!(
                store.unread_count("r", user).await.unwrap(),
                unread,
                "{user}"
            );
        }
        let list = store.room_list("bob", None, 10).await.unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!((list[0].0.room_id.as_str(), list[0].1), ("r", 2));
    }
}
