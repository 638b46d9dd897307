//! Message views that are not stored: a message just sent is all in its
//! event (id, seq, sender, content, time), so its view is read from its
//! event until the message changes or its views' block is packed. Over 64
//! rooms the view rows of new messages were half the pages a commit wrote.
//!
//! A room's **floor** is the larger of its [`STORED_THROUGH`] seq and the
//! last seq of its packed views (never above its projection). Its views
//! at and below the floor are its view rows and blocks, as they always
//! were. Above it, up to the projection, the view of a seq is:
//! - the seq's view row, if it has one (a [`TOMBSTONE`]: no message);
//! - else the message the seq's event sends, if it is a `MESSAGE_SENT`;
//! - else none.
//!
//! [`write`] keeps this true: a new message's first view change is not
//! written when it is the message its event sends, a deletion above the
//! floor writes a tombstone, and a block of views is packed with the views
//! its events give. A room's [`STORED_THROUGH`] seq is its projection when
//! this code first opened the store (until then every view was stored) or
//! when its projection was last rebuilt (which stores every view); 0 if
//! neither. A server from before this must not open a store written since
//! (it would miss the derived views): see `FORMAT` in the parent module.

use super::packed::{self, Row, BLOCK, TOMBSTONE};
use super::{decode, encode, unavailable, EVENTS, EVENT_BLOCKS, VIEWS, VIEW_BLOCKS};
use super::{ProjectionChanges, StoreError, ViewChange, PROJECTED};
use crate::store::Projected;
use domain::{ChatEvent, Message};
use redb::{ReadableTable, TableDefinition};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Room → the seq through which its views are all stored (see the
/// module's comment); 0 for a room with no row.
pub const STORED_THROUGH: TableDefinition<&str, u64> = TableDefinition::new("views_stored_through");

/// The blocks of views to pack when a room's projection moves from `from`
/// to `to`: a block is packed once the projection is a block past it, so
/// that the newest messages, which edits and reactions change most, stay
/// rows (a change in a packed block rewrites the block).
pub fn to_seal(from: u64, to: u64) -> std::ops::Range<u64> {
    packed::ending_in(from.saturating_sub(BLOCK), to.saturating_sub(BLOCK))
}

/// The last seq of a room's packed views when its projection is at
/// `projected` (0: none).
fn packed_end(projected: u64) -> u64 {
    to_seal(0, projected).end * BLOCK
}

/// A room's floor (see the module's comment) and its [`STORED_THROUGH`] seq.
struct Floor {
    floor: u64,
    through: u64,
}

/// `room`'s [`STORED_THROUGH`] seq.
fn stored_through(
    table: &impl ReadableTable<&'static str, u64>,
    room: &str,
) -> Result<u64, StoreError> {
    Ok(table
        .get(room)
        .map_err(unavailable)?
        .map_or(0, |v| v.value()))
}

/// Sets every room's [`STORED_THROUGH`] seq to its projection: for a store
/// whose views are all rows (written before views were derived).
pub fn fill(tx: &redb::WriteTransaction) -> Result<(), StoreError> {
    let projected = tx.open_table(PROJECTED).map_err(unavailable)?;
    let mut from = tx.open_table(STORED_THROUGH).map_err(unavailable)?;
    for row in projected.iter().map_err(unavailable)? {
        let (room, at) = row.map_err(unavailable)?;
        from.insert(room.value(), at.value()).map_err(unavailable)?;
    }
    Ok(())
}

/// After `room`'s projection was rebuilt at `at` with every view a row.
pub fn set_stored_through(
    tx: &redb::WriteTransaction,
    room: &str,
    at: u64,
) -> Result<(), StoreError> {
    (tx.open_table(STORED_THROUGH).map_err(unavailable)?)
        .insert(room, at)
        .map_err(unavailable)?;
    Ok(())
}

/// Writes the view changes of `c`, whose rooms are all to be written, and
/// packs the blocks their projections move past. `events` are the events
/// of those moves when the caller has them (a commit's); else they are
/// read from the store.
pub fn write(
    tx: &redb::WriteTransaction,
    c: &ProjectionChanges,
    events: Option<&[Arc<ChatEvent>]>,
) -> Result<(), StoreError> {
    let mut views = tx.open_table(VIEWS).map_err(unavailable)?;
    let mut blocks = tx.open_table(VIEW_BLOCKS).map_err(unavailable)?;
    let event_rows = tx.open_table(EVENTS).map_err(unavailable)?;
    let event_blocks = tx.open_table(EVENT_BLOCKS).map_err(unavailable)?;
    let stored = tx.open_table(STORED_THROUGH).map_err(unavailable)?;
    // Each room's floor before this move, and its STORED_THROUGH seq.
    let mut floors: HashMap<&str, Floor> = HashMap::new();
    for r in &c.rooms {
        let through = stored_through(&stored, &r.room)?;
        let floor = through.max(packed_end(r.from)).min(r.from);
        floors.insert(&r.room, Floor { floor, through });
    }
    // The messages the moves' events send, by (room, seq).
    let moves: HashMap<&str, &Projected> = c.rooms.iter().map(|r| (r.room.as_str(), r)).collect();
    let mut sent: HashMap<(&str, u64), Message> = HashMap::new();
    match events {
        Some(events) => {
            for e in events.iter() {
                let Some(r) = moves.get(e.room_id.as_str()) else {
                    continue;
                };
                if (r.from + 1..=r.to).contains(&e.seq) {
                    if let Some(m) = Message::sent_by(e) {
                        sent.insert((r.room.as_str(), e.seq), m);
                    }
                }
            }
        }
        None => {
            for r in &c.rooms {
                let rows =
                    packed::merged(&event_rows, &event_blocks, &r.room, r.from + 1, r.to, true)?;
                for row in rows {
                    let (seq, bytes) = row?;
                    if let Some(m) = Message::sent_by(&decode::<ChatEvent>(&bytes)?) {
                        sent.insert((&r.room, seq), m);
                    }
                }
            }
        }
    }
    // The seqs whose views have been changed here.
    let mut changed: HashSet<(&str, u64)> = HashSet::new();
    for (room, change) in &c.views {
        let room = room.as_str();
        // Every change is of a room to be written; else, to be safe, as
        // if nothing were derived.
        let floor = floors.get(room).map_or(u64::MAX, |f| f.floor);
        match change {
            ViewChange::Put(m) => {
                let first = changed.insert((room, m.seq));
                if m.seq <= floor {
                    packed::put(&mut views, &mut blocks, room, m.seq, &encode(m))?;
                } else if !(first && sent.get(&(room, m.seq)) == Some(m)) {
                    // Above the floor, no block is packed: a row.
                    views
                        .insert((room, m.seq), encode(m).as_slice())
                        .map_err(unavailable)?;
                }
            }
            ViewChange::Delete(seq) => {
                changed.insert((room, *seq));
                if *seq <= floor {
                    packed::remove(&mut views, &mut blocks, room, *seq)?;
                } else {
                    views.insert((room, *seq), TOMBSTONE).map_err(unavailable)?;
                }
            }
        }
    }
    // A send whose message was not added (never so: eventIds are unique)
    // must not be read as one.
    for (room, seq) in sent.keys() {
        if !changed.contains(&(*room, *seq)) {
            views
                .insert((*room, *seq), TOMBSTONE)
                .map_err(unavailable)?;
        }
    }
    for r in &c.rooms {
        let through = floors[r.room.as_str()].through;
        for block in to_seal(r.from, r.to) {
            packed::seal_with(&mut views, &mut blocks, &r.room, block, |held| {
                let lo = packed::first_of(block).max(through.saturating_add(1));
                let hi = packed::last_of(block);
                let mut out: Vec<Row> = Vec::new();
                if lo > hi {
                    return Ok(out);
                }
                for row in packed::merged(&event_rows, &event_blocks, &r.room, lo, hi, true)? {
                    let (seq, bytes) = row?;
                    if held.binary_search(&seq).is_ok() {
                        continue;
                    }
                    if let Some(m) = Message::sent_by(&decode::<ChatEvent>(&bytes)?) {
                        out.push((seq, encode(&m)));
                    }
                }
                Ok(out)
            })?;
        }
    }
    Ok(())
}

/// `room`'s newest views below seq `upper`, at most `limit`, newest first,
/// with its projection at `projected`.
pub fn newest(
    tx: &redb::ReadTransaction,
    room: &str,
    projected: u64,
    upper: u64,
    limit: usize,
) -> Result<Vec<Message>, StoreError> {
    let mut out = Vec::new();
    if limit == 0 || upper <= 1 {
        return Ok(out);
    }
    let stored = tx.open_table(STORED_THROUGH).map_err(unavailable)?;
    let floor = stored_through(&stored, room)?
        .max(packed_end(projected))
        .min(projected);
    let views = tx.open_table(VIEWS).map_err(unavailable)?;
    let blocks = tx.open_table(VIEW_BLOCKS).map_err(unavailable)?;
    let top = projected.min(upper - 1);
    if top > floor {
        // At most two blocks' rows.
        let mut rows = HashMap::new();
        for row in packed::merged(&views, &blocks, room, floor + 1, top, false)? {
            let (seq, v) = row?;
            rows.insert(seq, v);
        }
        let event_rows = tx.open_table(EVENTS).map_err(unavailable)?;
        let event_blocks = tx.open_table(EVENT_BLOCKS).map_err(unavailable)?;
        for row in packed::merged(&event_rows, &event_blocks, room, floor + 1, top, false)? {
            let (seq, bytes) = row?;
            let view = match rows.get(&seq) {
                Some(v) if v.as_slice() == TOMBSTONE => None,
                Some(v) => Some(decode::<Message>(v)?),
                None => Message::sent_by(&decode::<ChatEvent>(&bytes)?),
            };
            out.extend(view);
            if out.len() == limit {
                return Ok(out);
            }
        }
    }
    let below = (upper - 1).min(floor);
    if below > 0 {
        for row in packed::merged(&views, &blocks, room, 1, below, false)? {
            let (_, v) = row?;
            if v.as_slice() != TOMBSTONE {
                out.push(decode(&v)?);
                if out.len() == limit {
                    break;
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::{EmbeddedStore, META};
    use super::*;
    use crate::store::{
        Commit, EventStore, ProjectionStore, RoomProjection, RoomRecord, SeqAdvance, WithProjection,
    };
    use domain::{EventKind, RoomState, Timestamp};
    use std::collections::BTreeMap;
    use uuid::Uuid;

    const ROOMS: [&str; 2] = ["r", "q"];

    /// A small deterministic generator.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    /// `n` random events of `room` after its state's last seq (the room
    /// created first), applied to `state`, and the view changes they make
    /// as the appender would write them.
    fn events(
        rng: &mut Rng,
        state: &mut RoomState,
        room: &str,
        n: u64,
    ) -> (Vec<Arc<ChatEvent>>, Vec<(String, ViewChange)>) {
        let (mut events, mut views) = (Vec::new(), Vec::new());
        for _ in 0..n {
            let seq = state.last_seq() + 1;
            let live: Vec<Message> = state.messages().cloned().collect();
            let target =
                (!live.is_empty()).then(|| live[rng.below(live.len() as u64) as usize].clone());
            let mut sender = if rng.below(2) == 0 { "alice" } else { "bob" };
            let kind = match (seq, rng.below(10), &target) {
                (1, _, _) => EventKind::RoomCreated { name: "R".into() },
                (_, 0..=4, _) | (_, _, None) => EventKind::MessageSent {
                    content: format!("text {seq}").into(),
                },
                (_, 5, Some(t)) => {
                    sender = if t.sender_id == "alice" {
                        "alice"
                    } else {
                        "bob"
                    };
                    EventKind::MessageEdited {
                        message_id: t.id,
                        content: format!("edited {seq}").into(),
                    }
                }
                (_, 6 | 7, Some(t)) => {
                    sender = if t.sender_id == "alice" {
                        "alice"
                    } else {
                        "bob"
                    };
                    EventKind::MessageDeleted { message_id: t.id }
                }
                (_, 8, Some(t)) => EventKind::ReactionAdded {
                    message_id: t.id,
                    emoji: "👍".into(),
                },
                (_, _, Some(t)) => EventKind::ReactionRemoved {
                    message_id: t.id,
                    emoji: "👍".into(),
                },
            };
            let e = ChatEvent {
                event_id: Uuid::from_u128(u128::from(seq) << 64 | u128::from(room.as_bytes()[0])),
                room_id: room.into(),
                seq,
                sender_id: sender.into(),
                timestamp: Timestamp::from_millis(seq as i64).unwrap(),
                kind,
            };
            let before: BTreeMap<u64, Message> = live.into_iter().map(|m| (m.seq, m)).collect();
            state.apply(e.clone()).unwrap();
            let after: BTreeMap<u64, &Message> = state.messages().map(|m| (m.seq, m)).collect();
            for (s, m) in &after {
                if before.get(s) != Some(*m) {
                    views.push((room.to_owned(), ViewChange::Put((*m).clone())));
                }
            }
            for s in before.keys().filter(|s| !after.contains_key(s)) {
                views.push((room.to_owned(), ViewChange::Delete(*s)));
            }
            events.push(Arc::new(e));
        }
        (events, views)
    }

    /// Makes `commit` move `room`'s log from `from` to `to`: creating the
    /// room when `from` is 0.
    fn moves(commit: &mut Commit, room: &str, from: u64, to: u64) {
        if from == 0 {
            commit.new_rooms.push(RoomRecord {
                room_id: room.into(),
                name: "R".into(),
                created_by: "alice".into(),
                created_at: Timestamp::from_millis(0).unwrap(),
                last_seq: to,
            });
        } else {
            commit.advances.push(SeqAdvance {
                room: room.into(),
                expected: from,
                last: to,
            });
        }
    }

    /// What the store reads, with every page size and bound, is what the
    /// reducer has; no packed block holds a tombstone, and no view row is
    /// left at or below the packed views.
    async fn check(store: &EmbeddedStore, states: &[RoomState], round: u32) {
        for (room, state) in ROOMS.iter().zip(states) {
            let all: Vec<&Message> = state.messages().collect();
            let last = state.last_seq();
            for before in [
                None,
                Some(last + 5),
                Some(last),
                Some(last / 2 + 1),
                Some(70),
                Some(2),
            ] {
                for limit in [1, 7, 50, 1000] {
                    let page = store.views(room, limit, before).await.unwrap();
                    let upper = before.unwrap_or(u64::MAX);
                    let below: Vec<&Message> =
                        all.iter().copied().filter(|m| m.seq < upper).collect();
                    let want = &below[below.len().saturating_sub(limit)..];
                    let got: Vec<&Message> = page.messages.iter().collect();
                    assert_eq!(
                        got, want,
                        "{room}, round {round}, before {before:?}, limit {limit}"
                    );
                }
            }
            let tx = store.db.begin_read().unwrap();
            let views = tx.open_table(VIEWS).unwrap();
            let end = packed_end(last);
            let left = views.range((*room, 0)..=(*room, end)).unwrap().next();
            let left = left.map(|row| row.unwrap().0.value().1);
            assert_eq!(left, None, "{room}, round {round}: a row, packed to {end}");
            let blocks = tx.open_table(VIEW_BLOCKS).unwrap();
            for row in blocks.range((*room, 0)..=(*room, u64::MAX)).unwrap() {
                let (k, v) = row.unwrap();
                let rows = packed::unpack(k.value().1, v.value()).unwrap();
                assert!(
                    rows.iter().all(|(_, v)| v != TOMBSTONE),
                    "{room}, round {round}"
                );
            }
        }
    }

    /// Views read back as the reducer has them after every commit:
    /// messages sent, edited, reacted to and deleted in two rooms that each
    /// commit moves, over many packed blocks, some commits bigger than a
    /// block; each commit's projection written with its events or on its
    /// own (the events read back); then rebuilt projections, a store that
    /// is reopened, and one as a store from before views were derived.
    #[tokio::test]
    async fn views_read_back_as_the_reducer_has_them() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = EmbeddedStore::open(dir.path()).unwrap();
        let mut states = [RoomState::new(), RoomState::new()];
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        // Blocks packed with views from events, with each projection write.
        let (mut derived_with, mut derived_alone) = (0, 0);
        for round in 0..90 {
            let mut commit = Commit::default();
            let mut changes = ProjectionChanges::default();
            for (room, state) in ROOMS.iter().zip(states.iter_mut()) {
                let from = state.last_seq();
                let n = match rng.below(10) {
                    0 => 65 + rng.below(90),
                    _ => 1 + rng.below(12),
                };
                let (events, views) = events(&mut rng, state, room, n);
                let to = state.last_seq();
                commit.events.extend(events);
                changes.views.extend(views);
                changes.rooms.push(Projected {
                    room: (*room).into(),
                    from,
                    to,
                });
                moves(&mut commit, room, from, to);
                if !to_seal(from, to).is_empty() && to > 300 {
                    if round % 3 == 2 {
                        derived_alone += 1;
                    } else {
                        derived_with += 1;
                    }
                }
            }
            if round % 3 == 2 {
                store.commit(commit).await.unwrap();
                let behind = store.apply(Arc::new(changes)).await.unwrap();
                assert!(behind.is_empty());
            } else {
                let written = store
                    .commit_with_projection(commit, Arc::new(changes))
                    .await
                    .unwrap();
                assert_eq!(written, WithProjection::Written { behind: vec![] });
            }
            check(&store, &states, round).await;
            if round == 30 || round == 70 {
                for (room, state) in ROOMS.iter().zip(&states) {
                    let at = state.last_seq();
                    let rebuilt = store
                        .replace_projection(room, RoomProjection::of(state), at)
                        .await
                        .unwrap();
                    assert!(rebuilt);
                }
                check(&store, &states, round).await;
            }
            if round == 50 {
                drop(store);
                store = EmbeddedStore::open(dir.path()).unwrap();
                check(&store, &states, round).await;
            }
            if round == 70 {
                // Every view is stored now: as a store from before views
                // were derived, which the next open fills in.
                {
                    let tx = store.db.begin_write().unwrap();
                    tx.open_table(META).unwrap().remove("derived").unwrap();
                    let mut through = tx.open_table(STORED_THROUGH).unwrap();
                    for room in ROOMS {
                        through.remove(room).unwrap();
                    }
                    drop(through);
                    tx.commit().unwrap();
                }
                drop(store);
                store = EmbeddedStore::open(dir.path()).unwrap();
                check(&store, &states, round).await;
            }
        }
        assert!(states.iter().all(|s| s.last_seq() > 20 * BLOCK));
        assert!(states.iter().all(|s| s.message_count() > 100));
        assert!(
            derived_with > 5 && derived_alone > 5,
            "{derived_with}, {derived_alone}"
        );
    }

    /// A block of views too big to pack (a message with very many
    /// reactions) stays rows, the derived views of its other messages
    /// with them, and reads back whole.
    #[tokio::test]
    async fn a_block_too_big_to_pack_keeps_its_derived_views_as_rows() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let sent = |seq: u64| {
            Arc::new(ChatEvent {
                event_id: Uuid::from_u128(u128::from(seq) << 64 | 9),
                room_id: "r".into(),
                seq,
                sender_id: "alice".into(),
                timestamp: Timestamp::from_millis(seq as i64).unwrap(),
                kind: EventKind::MessageSent {
                    content: format!("text {seq}").into(),
                },
            })
        };
        let mut want: Vec<Message> = Vec::new();
        let mut from = 0;
        for to in [10, 130] {
            let events: Vec<Arc<ChatEvent>> = (from + 1..=to).map(sent).collect();
            let mut views = Vec::new();
            for e in &events {
                let m = Message::sent_by(e).unwrap();
                views.push(("r".to_owned(), ViewChange::Put(m.clone())));
                want.push(m);
            }
            if from == 0 {
                // Message 5 gets 350,000 reactions: over 4 MiB of JSON.
                let mut big = want[4].clone();
                for u in 0..350_000 {
                    big.reactions.add("👍".into(), format!("user{u}").into());
                }
                views.push(("r".to_owned(), ViewChange::Put(big.clone())));
                want[4] = big;
            }
            let mut commit = Commit {
                events,
                ..Commit::default()
            };
            moves(&mut commit, "r", from, to);
            let changes = ProjectionChanges {
                rooms: vec![Projected {
                    room: "r".into(),
                    from,
                    to,
                }],
                views,
                ..ProjectionChanges::default()
            };
            let written = store
                .commit_with_projection(commit, Arc::new(changes))
                .await
                .unwrap();
            assert_eq!(written, WithProjection::Written { behind: vec![] });
            from = to;
        }
        // Block 0 was sealed (the projection is at 130) but not packed.
        let tx = store.db.begin_read().unwrap();
        let blocks = tx.open_table(VIEW_BLOCKS).unwrap();
        assert!(blocks.get(("r", 0)).unwrap().is_none());
        let rows = tx.open_table(VIEWS).unwrap();
        let stored = rows.range(("r", 1)..=("r", BLOCK)).unwrap().count();
        assert_eq!(stored, BLOCK as usize, "block 0's views are all rows");
        let page = store.views("r", 1000, None).await.unwrap();
        assert_eq!(page.messages, want);
    }
}
