//! Message views that are not stored: a message just sent is all in its
//! event (id, seq, sender, content, time), so its view is read from its
//! event until the message changes or its views' block is packed. Over 64
//! rooms the view rows of new messages were half the pages a commit wrote.
//!
//! A room's views of the seqs in `(floor, projected]` read so, where
//! `floor` is the larger of the room's [`DERIVED_FROM`] seq and the last
//! seq of its packed views:
//! - the seq's view row, if it has one (a [`TOMBSTONE`]: no message);
//! - else the message the seq's event sends, if it is a `MESSAGE_SENT`;
//! - else no message.
//!
//! At and below `floor`, rows and blocks are the views, as they always
//! were. [`write`] keeps this true: a new message's first view change is
//! not written when it is the message its event sends, a deletion above
//! the floor writes a tombstone, and a block is packed with the views its
//! events give. A room's [`DERIVED_FROM`] seq is its projection when this
//! code first opened the store (until then every view was a row) or when
//! its projection was last rebuilt (which writes every view); 0 if none.

use super::packed::{self, Row, BLOCK, TOMBSTONE};
use super::{decode, encode, unavailable, EVENTS, EVENT_BLOCKS, VIEWS, VIEW_BLOCKS};
use super::{ProjectionChanges, StoreError, ViewChange, PROJECTED};
use crate::store::Projected;
use domain::{ChatEvent, Message};
use redb::{ReadableTable, TableDefinition};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Room → the seq at and below which its views are all stored (see the
/// module's comment).
pub const DERIVED_FROM: TableDefinition<&str, u64> = TableDefinition::new("views_derived_from");

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

/// `room`'s [`DERIVED_FROM`] seq.
fn derived_from(
    table: &impl ReadableTable<&'static str, u64>,
    room: &str,
) -> Result<u64, StoreError> {
    Ok(table
        .get(room)
        .map_err(unavailable)?
        .map_or(0, |v| v.value()))
}

/// Sets every room's [`DERIVED_FROM`] seq to its projection: for a store
/// whose views are all rows (written before views were derived).
pub fn fill(tx: &redb::WriteTransaction) -> Result<(), StoreError> {
    let projected = tx.open_table(PROJECTED).map_err(unavailable)?;
    let mut from = tx.open_table(DERIVED_FROM).map_err(unavailable)?;
    for row in projected.iter().map_err(unavailable)? {
        let (room, at) = row.map_err(unavailable)?;
        from.insert(room.value(), at.value()).map_err(unavailable)?;
    }
    Ok(())
}

/// After `room`'s projection was rebuilt at `at` with every view a row.
pub fn all_stored(tx: &redb::WriteTransaction, room: &str, at: u64) -> Result<(), StoreError> {
    (tx.open_table(DERIVED_FROM).map_err(unavailable)?)
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
    let derived = tx.open_table(DERIVED_FROM).map_err(unavailable)?;
    // Each room's derived-from seq, and its floor before this move.
    let mut floors: HashMap<&str, (u64, u64)> = HashMap::new();
    for r in &c.rooms {
        let from = derived_from(&derived, &r.room)?;
        floors.insert(&r.room, (from, from.max(packed_end(r.from))));
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
        let floor = floors.get(room).map_or(u64::MAX, |f| f.1);
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
        let from = floors[r.room.as_str()].0;
        for block in to_seal(r.from, r.to) {
            packed::seal_with(&mut views, &mut blocks, &r.room, block, |stored| {
                let lo = packed::first_of(block).max(from.saturating_add(1));
                let hi = packed::last_of(block);
                let mut out: Vec<Row> = Vec::new();
                if lo > hi {
                    return Ok(out);
                }
                for row in packed::merged(&event_rows, &event_blocks, &r.room, lo, hi, true)? {
                    let (seq, bytes) = row?;
                    if stored.contains(&seq) {
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
    let derived = tx.open_table(DERIVED_FROM).map_err(unavailable)?;
    let floor = derived_from(&derived, room)?.max(packed_end(projected));
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
    use super::super::EmbeddedStore;
    use crate::store::{
        Commit, EventStore, Projected, ProjectionChanges, ProjectionStore, RoomProjection,
        RoomRecord, SeqAdvance, ViewChange,
    };
    use domain::{ChatEvent, EventKind, Message, RoomState, Timestamp};
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use uuid::Uuid;

    /// What the store reads, with every page size and bound, is what the
    /// reducer has.
    async fn check(store: &EmbeddedStore, state: &RoomState, round: u32) {
        let all: Vec<&Message> = state.messages().collect();
        let last = state.last_seq();
        for before in [None, Some(last), Some(last / 2 + 1), Some(70), Some(2)] {
            for limit in [1, 7, 50, 1000] {
                let page = store.views("r", limit, before).await.unwrap();
                let upper = before.unwrap_or(u64::MAX);
                let below: Vec<&Message> = all.iter().copied().filter(|m| m.seq < upper).collect();
                let want = &below[below.len().saturating_sub(limit)..];
                let got: Vec<&Message> = page.messages.iter().collect();
                assert_eq!(got, want, "round {round}, before {before:?}, limit {limit}");
            }
        }
    }

    /// Views read back as the reducer has them after every commit:
    /// messages sent, edited, reacted to and deleted over several packed
    /// blocks, each commit's projection written with its events or on its
    /// own, then a rebuilt projection and a reopened store.
    #[tokio::test]
    async fn views_read_back_as_the_reducer_has_them() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = EmbeddedStore::open(dir.path()).unwrap();
        let mut state = RoomState::new();
        let mut rng: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let mut seq = 0;
        for round in 0..80 {
            let n = 1 + next(12);
            let from = seq;
            let mut events = Vec::new();
            let mut views = Vec::new();
            for _ in 0..n {
                seq += 1;
                let live: Vec<Message> = state.messages().cloned().collect();
                let target =
                    (!live.is_empty()).then(|| live[next(live.len() as u64) as usize].clone());
                let mut sender = if next(2) == 0 { "alice" } else { "bob" };
                let kind = match (seq, next(10), &target) {
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
                    event_id: Uuid::from_u128(u128::from(seq) << 64 | 7),
                    room_id: "r".into(),
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
                        views.push(("r".to_owned(), ViewChange::Put((*m).clone())));
                    }
                }
                for s in before.keys().filter(|s| !after.contains_key(s)) {
                    views.push(("r".to_owned(), ViewChange::Delete(*s)));
                }
                events.push(Arc::new(e));
            }
            let commit = Commit {
                new_rooms: (from == 0)
                    .then(|| RoomRecord {
                        room_id: "r".into(),
                        name: "R".into(),
                        created_by: "alice".into(),
                        created_at: Timestamp::from_millis(0).unwrap(),
                        last_seq: 0,
                    })
                    .into_iter()
                    .collect(),
                events,
                advances: (from > 0)
                    .then(|| SeqAdvance {
                        room: "r".into(),
                        expected: from,
                        last: seq,
                    })
                    .into_iter()
                    .collect(),
            };
            if from == 0 {
                // A new room's record carries its last seq.
                let mut commit = commit;
                commit.new_rooms[0].last_seq = seq;
                let changes = ProjectionChanges {
                    rooms: vec![Projected {
                        room: "r".into(),
                        from,
                        to: seq,
                    }],
                    views,
                    ..ProjectionChanges::default()
                };
                store
                    .commit_with_projection(commit, Arc::new(changes))
                    .await
                    .unwrap();
                check(&store, &state, round).await;
                continue;
            }
            let changes = Arc::new(ProjectionChanges {
                rooms: vec![Projected {
                    room: "r".into(),
                    from,
                    to: seq,
                }],
                views,
                ..ProjectionChanges::default()
            });
            if round % 4 == 3 {
                // The projection on its own: the events are read back.
                store.commit(commit).await.unwrap();
                assert_eq!(store.apply(changes).await.unwrap(), Vec::<String>::new());
            } else {
                store.commit_with_projection(commit, changes).await.unwrap();
            }
            check(&store, &state, round).await;
            if round == 40 {
                let rebuilt = store
                    .replace_projection("r", RoomProjection::of(&state), seq)
                    .await
                    .unwrap();
                assert!(rebuilt);
                check(&store, &state, round).await;
            }
            if round == 60 {
                drop(store);
                store = EmbeddedStore::open(dir.path()).unwrap();
                check(&store, &state, round).await;
            }
        }
        assert!(seq > 4 * super::BLOCK, "several blocks packed: {seq}");
        assert!(state.message_count() > 50);
    }
}
