//! The store: where events, users, sessions, rooms, the `ChatMessageView`
//! projection and snapshots live. One trait per concern ([`EventStore`],
//! [`ProjectionStore`], [`SnapshotStore`], [`AccountStore`], gathered in
//! [`Stores`]), so that the embedded store (redb, on local disk) and
//! MongoDB are interchangeable behind the same server.
//!
//! The events of the append path go through [`EventStore::commit`], which
//! must be atomic and durable when it returns: acknowledged means it
//! survives a crash the next moment. It is conditional, so that several
//! writers (of one server or of several instances) can share a store: it
//! writes nothing and reports a conflict when a room's log is no longer
//! where the writer saw it, and it never overwrites an event. What the
//! events change in the projection goes in the same transaction
//! ([`EventStore::commit_with_projection`], both stores), or, where it
//! cannot go with them, follows through [`ProjectionStore::apply`]; either
//! way behind a per-room checkpoint (the seq the projection is at), so
//! that it can lag the events (after a crash, or a failed write) and be
//! caught up from them.

mod compressed;
pub mod embedded;
mod heads;
pub mod mongo;

use async_trait::async_trait;
use domain::CompactString;
use domain::{ChatEvent, Message, RoomState, Snapshot, SnapshotChunk, SnapshotHead, Timestamp};
use serde::{Deserialize, Serialize};
use std::cell::Cell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use uuid::Uuid;

thread_local! {
    static IN_PLACE: Cell<bool> = const { Cell::new(false) };
}

/// Marks this thread as one that does nothing but wait on the store (an
/// append writer's own thread): a store whose calls block (the embedded
/// store) then runs them here, in place, instead of handing each to the
/// blocking pool and waiting to be woken twice. Such a call cannot be
/// timed out on this thread; whoever waits on this thread's work must
/// bound the wait itself.
pub fn block_in_place_on_this_thread() {
    IN_PLACE.with(|c| c.set(true));
}

/// Whether [`block_in_place_on_this_thread`] was called on this thread.
fn blocks_in_place() -> bool {
    IN_PLACE.with(Cell::get)
}

/// A room's row: its facts and its last seq.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomRecord {
    pub room_id: String,
    pub name: String,
    pub created_by: String,
    pub created_at: Timestamp,
    pub last_seq: u64,
}

/// A page of the projection, read in one consistent view of the store.
#[derive(Clone, Debug, Default)]
pub struct ViewPage {
    pub messages: Vec<Message>,
    pub read_markers: BTreeMap<CompactString, u64>,
    pub last_seq: u64,
    /// The seq the projection is at: below `last_seq` when it lags the
    /// events (a crash between the two), until caught up.
    pub projected: u64,
}

/// One change to the projection.
#[derive(Debug, Clone)]
pub enum ViewChange {
    /// Insert or replace the message's row.
    Put(Message),
    /// Remove the row of the message with this seq.
    Delete(u64),
}

/// The events of one group commit, written atomically and durably: the
/// commit point. What they change in the projection goes with them where
/// the store can, else follows separately ([`ProjectionChanges`]).
#[derive(Debug, Default)]
pub struct Commit {
    pub new_rooms: Vec<RoomRecord>,
    /// Shared with the replies and the bus, so they need no copies.
    pub events: Vec<std::sync::Arc<ChatEvent>>,
    /// The rooms whose logs this commit extends.
    pub advances: Vec<SeqAdvance>,
}

/// What a group commit's events change in the projection and the
/// snapshots, written with the events or after them. Each room's
/// projection changes are written only if the room's projection is at
/// `from` of its [`Projected`] range (and then moved to `to`): re-applying
/// is a no-op, and a room whose projection is behind is left to be caught
/// up from its events. Snapshots are written in any case.
#[derive(Debug, Default)]
pub struct ProjectionChanges {
    pub rooms: Vec<Projected>,
    /// Changes to view rows, applied in order.
    pub views: Vec<(String, ViewChange)>,
    /// (room, user, seq): the user's read marker.
    pub markers: Vec<(String, String, u64)>,
    pub snapshots: Vec<(String, Snapshot)>,
    /// Changes to the counts that unread counts are read from.
    pub counts: CountChanges,
}

/// A room's projection moving from the state after seq `from` to `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Projected {
    pub room: String,
    pub from: u64,
    pub to: u64,
}

impl ProjectionChanges {
    /// The changes of the rooms in `keep` only, and every snapshot: a
    /// snapshot is the state after its seq's events, right whether or not
    /// the projection is there (and writing it again writes the same).
    pub fn only(&self, keep: &HashSet<String>) -> ProjectionChanges {
        let kept = |room: &String| keep.contains(room);
        ProjectionChanges {
            rooms: self
                .rooms
                .iter()
                .filter(|p| kept(&p.room))
                .cloned()
                .collect(),
            views: self
                .views
                .iter()
                .filter(|(r, _)| kept(r))
                .cloned()
                .collect(),
            markers: self
                .markers
                .iter()
                .filter(|(r, _, _)| kept(r))
                .cloned()
                .collect(),
            snapshots: self.snapshots.clone(),
            counts: CountChanges {
                live: (self.counts.live.iter())
                    .filter(|((r, _), _)| kept(r))
                    .map(|(k, v)| (k.clone(), *v))
                    .collect(),
                unread: (self.counts.unread.iter())
                    .filter(|((r, _), _)| kept(r))
                    .map(|(k, v)| (k.clone(), *v))
                    .collect(),
            },
        }
    }

    /// Which rooms' changes to write, given the seq each room's projection
    /// is at: those at the `from` of their range; and the rooms behind it.
    pub fn decide(&self, at: impl Fn(&str) -> u64) -> (HashSet<String>, Vec<String>) {
        let (mut keep, mut behind) = (HashSet::new(), Vec::new());
        for r in &self.rooms {
            let now = at(&r.room);
            if now == r.from {
                keep.insert(r.room.clone());
            } else if now < r.from {
                behind.push(r.room.clone());
            }
        }
        (keep, behind)
    }
}

/// What [`EventStore::commit_with_projection`] wrote besides the events.
#[derive(Debug, PartialEq, Eq)]
pub enum WithProjection {
    /// The projection changes too, as [`ProjectionStore::apply`] writes
    /// them: these rooms' projections were behind, and are left as they
    /// are (to be caught up from their events).
    Written { behind: Vec<String> },
    /// The events alone (a store that keeps its projection apart, or one
    /// whose projection write failed): the caller applies the projection.
    Left,
}

/// A room's log moving on: written only if its last seq in the store is
/// still `expected` (else [`StoreError::Conflict`]); `last` after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeqAdvance {
    pub room: String,
    pub expected: u64,
    pub last: u64,
}

/// Changes to the counts behind unread counts, gathered over a commit so
/// that each count is written once. A user's unread count in a room is read
/// from them in O(1): the room's live messages less the user's own while
/// the user has no read marker there, and a count kept per (room, user) once
/// they have one.
#[derive(Debug, Default, Clone)]
pub struct CountChanges {
    /// (room, sender) → change in the live messages of that sender (the
    /// room's total changes by the sum over its senders).
    pub live: HashMap<(String, String), i64>,
    /// (room, user) → the user's unread count, for users with a marker.
    pub unread: HashMap<(String, String), UnreadChange>,
}

/// A change to one unread count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnreadChange {
    By(i64),
    Set(u64),
}

impl CountChanges {
    /// Adds `delta` to the live messages of `sender` in `room`.
    pub fn live(&mut self, room: &str, sender: &str, delta: i64) {
        *self
            .live
            .entry((room.to_owned(), sender.to_owned()))
            .or_default() += delta;
    }

    /// Adds `delta` to `user`'s unread count in `room`.
    pub fn unread_by(&mut self, room: &str, user: &str, delta: i64) {
        let key = (room.to_owned(), user.to_owned());
        let change = self.unread.entry(key).or_insert(UnreadChange::By(0));
        *change = match *change {
            UnreadChange::By(d) => UnreadChange::By(d + delta),
            UnreadChange::Set(n) => UnreadChange::Set(n.saturating_add_signed(delta)),
        };
    }

    /// Sets `user`'s unread count in `room`.
    pub fn unread_set(&mut self, room: &str, user: &str, count: u64) {
        self.unread
            .insert((room.to_owned(), user.to_owned()), UnreadChange::Set(count));
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("already exists")]
    Exists,
    #[error("corrupt data: {0}")]
    Corrupt(String),
    /// A conditional write found the data moved on (another writer): nothing
    /// was written; decide again on what is stored now.
    #[error("conflict: {0}")]
    Conflict(String),
}

/// Users and sessions.
#[async_trait]
pub trait AccountStore: Send + Sync + 'static {
    async fn create_user(&self, user: &str, password_hash: &str) -> Result<(), StoreError>;
    async fn password_hash(&self, user: &str) -> Result<Option<String>, StoreError>;
    async fn put_session(
        &self,
        token_hash: &str,
        user: &str,
        expires_ms: i64,
    ) -> Result<(), StoreError>;
    /// (user, expiry in ms since the epoch).
    async fn session(&self, token_hash: &str) -> Result<Option<(String, i64)>, StoreError>;
    async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError>;
    /// Deletes at most `max` sessions that expired before `now_ms`; how many
    /// it deleted. A store that expires sessions by itself (a TTL index)
    /// keeps this default, which deletes nothing.
    async fn purge_expired_sessions(&self, now_ms: i64, max: usize) -> Result<usize, StoreError> {
        let _ = (now_ms, max);
        Ok(0)
    }
}

/// The rooms and their logs of events: the source of truth, and the one
/// write path ([`EventStore::commit`]).
#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// `"embedded"` or `"mongodb"`.
    fn kind(&self) -> &'static str;
    /// How many writers should append at once by default (`APPEND_WRITERS`
    /// overrides it): more only help a store that commits several
    /// transactions at once.
    fn writers(&self) -> usize {
        1
    }
    /// Whether a commit holding an event whose `eventId` is stored in its
    /// room already fails with [`StoreError::Conflict`] and writes nothing
    /// (a unique index): the appender then skips looking a batch's ids up
    /// before deciding it, and looks them up when it decides again after
    /// the conflict. A store without such a check keeps this default, and
    /// every batch's ids are looked up first.
    fn refuses_stored_ids(&self) -> bool {
        false
    }
    /// Whether the store's calls block a thread while they wait (redb):
    /// the append writers then get threads of their own, where its calls
    /// run in place (see [`block_in_place_on_this_thread`]). A store that
    /// awaits its I/O (MongoDB's driver, bound to the server's runtime)
    /// keeps its writers as tasks there.
    fn blocks(&self) -> bool {
        false
    }
    async fn ping(&self) -> Result<(), StoreError>;

    async fn room(&self, room: &str) -> Result<Option<RoomRecord>, StoreError>;
    /// The last seq of each of `rooms` that exists. A store that can read
    /// them in one query overrides this default, which reads them one by one.
    async fn last_seqs(&self, rooms: &[String]) -> Result<HashMap<String, u64>, StoreError> {
        let mut lasts = HashMap::with_capacity(rooms.len());
        for room in rooms {
            if let Some(r) = self.room(room).await? {
                lasts.insert(r.room_id, r.last_seq);
            }
        }
        Ok(lasts)
    }
    /// Events with seq > `after`, ascending, at most `limit`, and the room's last seq.
    async fn events(
        &self,
        room: &str,
        after: u64,
        limit: usize,
    ) -> Result<(Vec<ChatEvent>, u64), StoreError>;
    async fn event_by_id(&self, room: &str, id: Uuid) -> Result<Option<ChatEvent>, StoreError>;
    /// Seq of the event whose id is `id`, for each id found.
    async fn seqs_of(&self, room: &str, ids: &[Uuid]) -> Result<Vec<(Uuid, u64)>, StoreError>;
    /// [`EventStore::seqs_of`] for several rooms at once (a batch of
    /// appends over many rooms): (room, id, seq) for each id found. A store
    /// that can read them together overrides this.
    async fn seqs_in_rooms(
        &self,
        wanted: Vec<(String, Vec<Uuid>)>,
    ) -> Result<Vec<(String, Uuid, u64)>, StoreError> {
        let mut out = Vec::new();
        for (room, ids) in wanted {
            for (id, seq) in self.seqs_of(&room, &ids).await? {
                out.push((room.clone(), id, seq));
            }
        }
        Ok(out)
    }
    /// Seq of the last event with timestamp ≤ `t` (0 when none).
    async fn seq_at_time(&self, room: &str, t: Timestamp) -> Result<u64, StoreError>;

    /// Writes a group commit's events durably (conditionally, see
    /// [`SeqAdvance`]): the commit point. Fails with `Exists` (and writes
    /// nothing) if a new room's id is taken, with `Conflict` (and writes
    /// nothing) if another writer moved one of the rooms on.
    async fn commit(&self, commit: Commit) -> Result<(), StoreError>;

    /// [`EventStore::commit`], with the commit's projection changes written
    /// in the same transaction where the store keeps both (one write to
    /// disk per batch instead of two). A store that cannot keeps this
    /// default, which writes the events alone.
    async fn commit_with_projection(
        &self,
        commit: Commit,
        projection: Arc<ProjectionChanges>,
    ) -> Result<WithProjection, StoreError> {
        let _ = projection;
        self.commit(commit).await.map(|()| WithProjection::Left)
    }

    /// Readies `writer` to decide on `rooms` (each with the last seq of
    /// its state in memory, if it holds one) where several writers (server
    /// instances) share the store, and says which of them another writer
    /// may have appended to since: their states must be caught up first. A store
    /// with one writer keeps this default: nothing moves behind its back.
    ///
    /// While writers are `contended` (this one's commit lost to another's
    /// lately), or another writer is taking turns on one of the rooms, this
    /// waits for `writer`'s turn on each room: a short lease, handed to a
    /// waiting writer after each batch, so that two busy writers take turns
    /// instead of one losing every conflict. Otherwise it only reads where
    /// the rooms' logs are. Correctness never rests on either (commits stay
    /// conditional).
    async fn ready(
        &self,
        rooms: &[(&str, Option<u64>)],
        writer: Uuid,
        contended: bool,
    ) -> Result<Vec<String>, StoreError> {
        let _ = (rooms, writer, contended);
        Ok(Vec::new())
    }
}

/// The read side kept from the events: `ChatMessageView` rows, read
/// markers, and the counts behind the room list's unread counts.
#[async_trait]
pub trait ProjectionStore: Send + Sync + 'static {
    /// Up to `limit` rooms in list order (by `createdAt` in ms, then
    /// `roomId`) after the place `after` (from the first when `None`; no
    /// room need be there), each with `user`'s unread count.
    async fn room_list(
        &self,
        user: &str,
        after: Option<(i64, &str)>,
        limit: usize,
    ) -> Result<Vec<(RoomRecord, u64)>, StoreError>;
    /// The newest `limit` view rows with seq < `before`, oldest first, with
    /// the room's read markers and last seq.
    async fn views(
        &self,
        room: &str,
        limit: usize,
        before: Option<u64>,
    ) -> Result<ViewPage, StoreError>;
    /// Messages of others above `user`'s read marker, in O(1).
    async fn unread_count(&self, room: &str, user: &str) -> Result<u64, StoreError>;
    /// Writes `projection` (the room's state after seq `at`) in place of
    /// everything stored for the room's projection (rows, markers, counts),
    /// unless the stored projection is past `at` already. Whether it wrote.
    async fn replace_projection(
        &self,
        room: &str,
        projection: RoomProjection,
        at: u64,
    ) -> Result<bool, StoreError>;
    /// Writes the changes of each room whose projection is at the `from` of
    /// its range (see [`ProjectionChanges`]); the rooms whose projection is
    /// behind, which are left as they are. Need not be durable: a projection
    /// lost in a crash is caught up from the events.
    async fn apply(&self, changes: Arc<ProjectionChanges>) -> Result<Vec<String>, StoreError>;
    /// The seq each of `rooms` is projected up to (rooms without one: 0).
    async fn projected(&self, rooms: &[String]) -> Result<HashMap<String, u64>, StoreError>;
}

/// A room's whole projection, computed from its state (the replay of its
/// events): what `server rebuild-projections` writes in place of the stored one.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RoomProjection {
    pub messages: Vec<Message>,
    pub read_markers: BTreeMap<String, u64>,
    /// Live messages per sender.
    pub live_by_sender: BTreeMap<String, u64>,
    /// Unread count of each user with a read marker.
    pub unread: BTreeMap<String, u64>,
}

impl RoomProjection {
    pub fn of(state: &RoomState) -> RoomProjection {
        let messages: Vec<Message> = state.messages().cloned().collect();
        let mut live_by_sender: BTreeMap<String, u64> = BTreeMap::new();
        for m in &messages {
            *live_by_sender.entry(m.sender_id.to_string()).or_default() += 1;
        }
        let read_markers: BTreeMap<String, u64> = state
            .read_markers()
            .iter()
            .map(|(u, s)| (u.to_string(), *s))
            .collect();
        let unread = read_markers
            .iter()
            .map(|(user, marker)| {
                let n = state
                    .messages_in(marker + 1, u64::MAX)
                    .filter(|m| m.sender_id != user.as_str())
                    .count();
                (user.clone(), n as u64)
            })
            .collect();
        RoomProjection {
            messages,
            read_markers,
            live_by_sender,
            unread,
        }
    }
}

/// Snapshots of room states, so that replay starts late.
#[async_trait]
pub trait SnapshotStore: Send + Sync + 'static {
    /// The latest stored snapshot head with seq ≤ `at_most`, as stored
    /// (maybe a delta: see [`SnapshotStore::snapshot_head`]).
    async fn stored_head(
        &self,
        room: &str,
        at_most: u64,
    ) -> Result<Option<SnapshotHead>, StoreError>;

    /// Where this store keeps complete heads decoded, if it does.
    fn head_cache(&self) -> Option<&heads::HeadCache> {
        None
    }

    /// The complete head a delta names as its base: the latest stored head
    /// at or before `seq`, which the caller checks is the one; kept decoded
    /// when the store has a [`SnapshotStore::head_cache`].
    async fn base_head(
        &self,
        room: &str,
        seq: u64,
    ) -> Result<Option<Arc<SnapshotHead>>, StoreError> {
        let read = self.stored_head(room, seq);
        match self.head_cache() {
            Some(cache) => cache.complete_at(room, seq, read).await,
            None => Ok(read.await?.map(Arc::new)),
        }
    }

    /// The latest snapshot head with seq ≤ `at_most`, complete: a delta
    /// head (`base` set) is put on top of its base. Should the base be
    /// missing, the latest complete or resolvable head before it is taken,
    /// or none (a replay from the start), never a head that cannot load.
    async fn snapshot_head(
        &self,
        room: &str,
        at_most: u64,
    ) -> Result<Option<SnapshotHead>, StoreError> {
        let mut at = at_most;
        for _ in 0..MAX_HEADS_BACK {
            let Some(head) = self.stored_head(room, at).await? else {
                return Ok(None);
            };
            let Some(base) = head.base else {
                return Ok(Some(head));
            };
            let found = self.base_head(room, base).await?;
            if let Some(whole) = found.and_then(|b| head.clone().on_top_of(&b).ok()) {
                return Ok(Some(whole));
            }
            tracing::warn!(
                room,
                seq = head.seq,
                base,
                "a delta snapshot head without its base; taking an older head"
            );
            match head.seq.checked_sub(1) {
                Some(before) => at = before,
                None => return Ok(None),
            }
        }
        Ok(None)
    }
    /// The named (index, version) chunks.
    async fn snapshot_chunks(
        &self,
        room: &str,
        which: &[(u64, u64)],
    ) -> Result<Vec<SnapshotChunk>, StoreError>;
}

/// Heads looked at before [`SnapshotStore::snapshot_head`] gives up on
/// finding one that loads (and the state is replayed from the start).
const MAX_HEADS_BACK: usize = 16;

/// The stores the server uses, each behind its trait; which implementation
/// each is comes from one place, `crate::open_backends`.
#[derive(Clone)]
pub struct Stores {
    pub events: Arc<dyn EventStore>,
    pub views: Arc<dyn ProjectionStore>,
    pub snapshots: Arc<dyn SnapshotStore>,
    pub accounts: Arc<dyn AccountStore>,
}

impl Stores {
    /// All four from one value that implements them all (the embedded store).
    pub fn all_in_one<S>(store: Arc<S>) -> Stores
    where
        S: EventStore + ProjectionStore + SnapshotStore + AccountStore,
    {
        Stores {
            events: store.clone(),
            views: store.clone(),
            snapshots: store.clone(),
            accounts: store,
        }
    }
}

/// Rebuilds a state from a stored snapshot: its head and the chunks whose
/// index `wanted` accepts (all of them for a complete state).
pub async fn load_snapshot(
    store: &dyn SnapshotStore,
    room: &str,
    head: &SnapshotHead,
    wanted: impl Fn(u64) -> bool,
) -> Result<RoomState, StoreError> {
    let which: Vec<_> = head
        .chunks
        .iter()
        .filter(|c| wanted(c.index))
        .map(|c| (c.index, c.version))
        .collect();
    let chunks = store.snapshot_chunks(room, &which).await?;
    RoomState::from_snapshot(head, chunks).map_err(|e| StoreError::Corrupt(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A room left behind keeps its snapshot: a snapshot is the state after
    /// its events, whether or not the projection is there, and the writer
    /// counts it saved once the write succeeds (a delta is then built on
    /// it).
    #[test]
    fn the_changes_of_some_rooms_keep_every_snapshot() {
        let snapshot = || Snapshot {
            head: SnapshotHead::empty(),
            chunks: Vec::new(),
        };
        let room = |r: &str| Projected {
            room: r.into(),
            from: 0,
            to: 1,
        };
        let changes = ProjectionChanges {
            rooms: vec![room("a"), room("b")],
            snapshots: vec![("a".into(), snapshot()), ("b".into(), snapshot())],
            ..ProjectionChanges::default()
        };
        let kept = changes.only(&HashSet::from(["a".to_owned()]));
        assert_eq!(kept.rooms, vec![room("a")]);
        let rooms: Vec<&str> = kept.snapshots.iter().map(|(r, _)| r.as_str()).collect();
        assert_eq!(rooms, vec!["a", "b"]);
    }
}
