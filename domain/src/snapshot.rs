//! Snapshots: a room's state saved at a seq so that replay can start there.
//!
//! A snapshot is split so that no part grows with the room: a small
//! [`SnapshotHead`] (room facts, read markers, a directory of chunks) and
//! [`SnapshotChunk`]s, each holding the live messages whose seq falls in one
//! span of [`CHUNK_SPAN`](crate::chunk::CHUNK_SPAN) seqs. A new snapshot only writes the chunks that
//! changed since the last one (see [`RoomState::snapshot`]); the others keep
//! the version written earlier.
//!
//! A state can be rebuilt from the head and all chunks (complete), or from
//! the head and a contiguous run of chunks (partial), which is enough to show
//! a window of messages at a cost that grows with the window and the tail of
//! events after the snapshot, not with the room.

use crate::chunk::{chunk_bounds, chunk_of};
use crate::event::{ChatEvent, EventKind};
use crate::message::Message;
use crate::messages::MessageLog;
use crate::state::{Coverage, RoomInfo, RoomState};
use crate::time::Timestamp;
use crate::view::{ChatMessageView, Incomplete};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use uuid::Uuid;

/// One entry of a head's chunk directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChunkInfo {
    pub index: u64,
    /// Live messages in the chunk.
    pub live: u32,
    /// Seq of the snapshot that wrote this version of the chunk.
    pub version: u64,
}

/// Everything of a state but its messages, plus where the messages are.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotHead {
    pub room_id: Option<compact_str::CompactString>,
    pub info: Option<RoomInfo>,
    pub seq: u64,
    pub last_timestamp: Option<Timestamp>,
    pub read_markers: BTreeMap<compact_str::CompactString, u64>,
    /// Non-empty chunks, by ascending index; in a delta head, only those
    /// written after its base.
    pub chunks: Vec<ChunkInfo>,
    /// Set on a head stored as a delta: the seq of the complete head it
    /// builds on ([`SnapshotHead::delta_over`], [`SnapshotHead::on_top_of`]),
    /// so that a large room's frequent snapshots do not each rewrite its
    /// whole chunk directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<u64>,
}

/// The live messages of one chunk, in seq order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotChunk {
    pub index: u64,
    pub version: u64,
    pub messages: Vec<Message>,
}

/// A snapshot to store: the head and the chunks written at this seq (those
/// whose `version` is `head.seq`). Older chunk versions named by the head
/// must be kept by the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub head: SnapshotHead,
    pub chunks: Vec<SnapshotChunk>,
}

/// A head and chunks that do not fit together.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("inconsistent snapshot: {0}")]
pub struct SnapshotError(pub String);

impl SnapshotHead {
    /// The head of the empty state (seq 0).
    pub fn empty() -> Self {
        SnapshotHead {
            room_id: None,
            info: None,
            seq: 0,
            last_timestamp: None,
            read_markers: BTreeMap::new(),
            chunks: Vec::new(),
            base: None,
        }
    }

    /// This complete head as a delta over the complete head at seq `base`
    /// whose chunk indices were `base_chunks` (ascending): the same head
    /// with only the chunks written after `base`. `None` when a chunk of
    /// the base is gone (emptied), which a delta cannot say.
    pub fn delta_over(&self, base: u64, base_chunks: &[u64]) -> Option<SnapshotHead> {
        if self.base.is_some() || base > self.seq {
            return None;
        }
        let mut now = self.chunks.iter().map(|c| c.index).peekable();
        for &index in base_chunks {
            while now.next_if(|&i| i < index).is_some() {}
            now.next_if_eq(&index)?;
        }
        Some(SnapshotHead {
            chunks: self
                .chunks
                .iter()
                .filter(|c| c.version > base)
                .copied()
                .collect(),
            base: Some(base),
            ..self.clone()
        })
    }

    /// A delta head made complete with its base: the base's directory with
    /// the delta's chunks in place of theirs.
    pub fn on_top_of(self, base: &SnapshotHead) -> Result<SnapshotHead, SnapshotError> {
        if self.base != Some(base.seq) || base.base.is_some() {
            return Err(SnapshotError(format!(
                "the head at seq {} is not a delta over the complete head at seq {}",
                self.seq, base.seq
            )));
        }
        let mut chunks = Vec::with_capacity(base.chunks.len() + self.chunks.len());
        let mut newer = self.chunks.iter().peekable();
        for old in &base.chunks {
            while let Some(c) = newer.next_if(|c| c.index < old.index) {
                chunks.push(*c);
            }
            match newer.next_if(|c| c.index == old.index) {
                Some(c) => chunks.push(*c),
                None => chunks.push(*old),
            }
        }
        chunks.extend(newer);
        Ok(SnapshotHead {
            chunks,
            base: None,
            ..self
        })
    }

    /// Live messages in the snapshot.
    pub fn message_count(&self) -> u64 {
        self.chunks.iter().map(|c| u64::from(c.live)).sum()
    }

    /// A rough size of the head in bytes, for spacing snapshots.
    pub fn approx_size(&self) -> usize {
        256 + self.chunks.len() * 24
            + self
                .read_markers
                .keys()
                .map(|u| u.len() + 12)
                .sum::<usize>()
    }

    /// The chunks to load for the newest `limit` messages with seq below
    /// `before` (all when `None`), allowing `slack` extra messages for
    /// deletions in the tail: a contiguous run of chunk indices, oldest first.
    pub fn plan_window(&self, limit: usize, before: Option<u64>, slack: usize) -> Vec<u64> {
        let need = (limit as u64).saturating_add(slack as u64);
        let last = match before {
            Some(b) if b <= self.seq => chunk_of(b.saturating_sub(1).max(1)),
            _ => u64::MAX,
        };
        let mut picked = Vec::new();
        let mut have = 0u64;
        for c in self.chunks.iter().rev().filter(|c| c.index <= last) {
            if have >= need && !picked.is_empty() {
                break;
            }
            picked.push(c.index);
            // The chunk that holds `before` may hold newer messages too:
            // count it as contributing nothing, to stay on the safe side.
            if c.index != last {
                have += u64::from(c.live);
            }
        }
        if need == 0 {
            picked.clear();
        }
        picked.reverse();
        picked
    }
}

impl RoomState {
    /// The snapshot of this complete state at its current seq: the head and
    /// the chunks changed since the last [`mark_snapshot_saved`]. `None` for a
    /// partial state, which cannot be snapshotted.
    ///
    /// [`mark_snapshot_saved`]: RoomState::mark_snapshot_saved
    pub fn snapshot(&self) -> Option<Snapshot> {
        if self.coverage.is_some() {
            return None;
        }
        let mut directory: BTreeMap<u64, ChunkInfo> = self
            .chunk_versions
            .iter()
            .map(|(&index, &(version, live))| {
                (
                    index,
                    ChunkInfo {
                        index,
                        live,
                        version,
                    },
                )
            })
            .collect();
        let changed: Vec<u64> = match self.dirty.chunks() {
            Some(dirty) => dirty.collect(),
            None => {
                // Every chunk: those with messages, and those of the last
                // saved head (to drop the ones emptied since).
                let mut all: Vec<u64> = Vec::new();
                for m in self.messages() {
                    let c = chunk_of(m.seq);
                    if all.last() != Some(&c) {
                        all.push(c);
                    }
                }
                all.extend(self.chunk_versions.keys());
                all.sort_unstable();
                all.dedup();
                all
            }
        };
        let mut chunks = Vec::new();
        for index in changed {
            let (lo, hi) = chunk_bounds(index);
            let messages: Vec<Message> = self.messages.range(lo, hi + 1).cloned().collect();
            if messages.is_empty() {
                directory.remove(&index);
                continue;
            }
            let info = ChunkInfo {
                index,
                live: messages.len() as u32,
                version: self.last_seq,
            };
            directory.insert(index, info);
            chunks.push(SnapshotChunk {
                index,
                version: self.last_seq,
                messages,
            });
        }
        Some(Snapshot {
            head: self.head_with(directory.into_values().collect()),
            chunks,
        })
    }

    /// The complete snapshot, every chunk included (for a store that keeps
    /// no older chunk versions, or for shipping a whole state).
    pub fn full_snapshot(&self) -> Option<Snapshot> {
        if self.coverage.is_some() {
            return None;
        }
        let mut chunks: Vec<SnapshotChunk> = Vec::new();
        for m in self.messages.iter() {
            let index = chunk_of(m.seq);
            match chunks.last_mut() {
                Some(c) if c.index == index => c.messages.push(m.clone()),
                _ => chunks.push(SnapshotChunk {
                    index,
                    version: self.last_seq,
                    messages: vec![m.clone()],
                }),
            }
        }
        let directory = chunks
            .iter()
            .map(|c| ChunkInfo {
                index: c.index,
                live: c.messages.len() as u32,
                version: c.version,
            })
            .collect();
        Some(Snapshot {
            head: self.head_with(directory),
            chunks,
        })
    }

    fn head_with(&self, chunks: Vec<ChunkInfo>) -> SnapshotHead {
        SnapshotHead {
            room_id: self.room_id.clone(),
            info: self.info.clone(),
            seq: self.last_seq,
            last_timestamp: self.last_timestamp,
            read_markers: self.read_markers.clone(),
            chunks,
            base: None,
        }
    }

    /// Records that `head` (taken from this state) is stored: its chunk
    /// versions are now the base for the next incremental snapshot. If events
    /// were applied after the snapshot was taken, every chunk stays marked as
    /// changed (writing a chunk again is harmless; missing one is not).
    pub fn mark_snapshot_saved(&mut self, head: &SnapshotHead) {
        self.chunk_versions = head
            .chunks
            .iter()
            .map(|c| (c.index, (c.version, c.live)))
            .collect();
        if head.seq == self.last_seq {
            self.dirty.clear();
        }
    }

    /// Rebuilds a state from a head and chunks: all of the head's chunks
    /// (a complete state) or a contiguous run of them (a partial state that
    /// holds every message in the run's span and everything after the
    /// snapshot once the tail is applied).
    pub fn from_snapshot(
        head: &SnapshotHead,
        chunks: Vec<SnapshotChunk>,
    ) -> Result<RoomState, SnapshotError> {
        let err = |m: String| Err(SnapshotError(m));
        // Heads list their chunks in index order; looking a chunk up by
        // bisection keeps a window's cost off the size of the room.
        if !head.chunks.is_sorted_by(|a, b| a.index < b.index) {
            return err("the head's chunks are not in index order".into());
        }
        let mut positions = Vec::with_capacity(chunks.len());
        for c in &chunks {
            let Ok(p) = head.chunks.binary_search_by_key(&c.index, |i| i.index) else {
                return err(format!("chunk {} is not in the head", c.index));
            };
            let info = head.chunks[p];
            if info.version != c.version || info.live as usize != c.messages.len() {
                return err(format!("chunk {} does not match the head", c.index));
            }
            positions.push(p);
        }
        positions.sort_unstable();
        if positions.windows(2).any(|w| w[1] != w[0] + 1) {
            return err("chunks are not a contiguous run".into());
        }
        let mut state = RoomState {
            room_id: head.room_id.clone(),
            info: head.info.clone(),
            last_seq: head.seq,
            last_timestamp: head.last_timestamp,
            read_markers: head.read_markers.clone(),
            // Only a complete state can be snapshotted again.
            chunk_versions: if positions.len() == head.chunks.len() {
                head.chunks
                    .iter()
                    .map(|c| (c.index, (c.version, c.live)))
                    .collect()
            } else {
                BTreeMap::new()
            },
            ..RoomState::default()
        };
        // In seq order whatever order the chunks came in: the messages are
        // then appended and indexed in one go.
        let mut chunks = chunks;
        chunks.sort_unstable_by_key(|c| c.index);
        let mut messages = Vec::with_capacity(chunks.iter().map(|c| c.messages.len()).sum());
        for mut c in chunks {
            let (lo, hi) = chunk_bounds(c.index);
            if let Some(m) = c
                .messages
                .iter()
                .find(|m| m.seq < lo || m.seq > hi || m.seq > head.seq)
            {
                return err(format!("message seq {} outside chunk {}", m.seq, c.index));
            }
            if !c.messages.is_sorted_by_key(|m| m.seq) {
                c.messages.sort_unstable_by_key(|m| m.seq);
            }
            messages.append(&mut c.messages);
        }
        match MessageLog::from_ascending(messages) {
            Some(log) => state.messages = log,
            None => return err("duplicate message".into()),
        }
        let complete = positions.len() == head.chunks.len();
        if !complete {
            let (from, to) = match (positions.first(), positions.last()) {
                (Some(&first), Some(&last)) => {
                    let from = match first {
                        0 => 1,
                        p => chunk_bounds(head.chunks[p - 1].index).1 + 1,
                    };
                    let to = match head.chunks.get(last + 1) {
                        Some(next) => chunk_bounds(next.index).0 - 1,
                        None => head.seq,
                    };
                    (from, to.min(head.seq))
                }
                // Nothing loaded: only what comes after the snapshot.
                _ => (head.seq + 1, head.seq),
            };
            state.coverage = Some(Coverage {
                from,
                to,
                snapshot_seq: head.seq,
                outside_seqs: HashMap::new(),
            });
        }
        Ok(state)
    }

    /// `MESSAGE_READ` targets in `tail` whose seq a partial state cannot know
    /// (not loaded, not sent in the tail) and that could matter to the loaded
    /// messages. The caller looks their seqs up (a message's id is the
    /// `eventId` of its `MESSAGE_SENT`) and passes them to
    /// [`provide_outside_seqs`](RoomState::provide_outside_seqs) before
    /// applying the tail. Empty for a complete state.
    pub fn unknown_read_targets(&self, tail: &[ChatEvent]) -> Vec<Uuid> {
        let Some(c) = &self.coverage else {
            return Vec::new();
        };
        if c.to >= c.snapshot_seq {
            // Unloaded messages are all older than every loaded one, so a
            // marker pointing at them cannot change a loaded message's readBy.
            return Vec::new();
        }
        let sent_in_tail: HashSet<Uuid> = tail
            .iter()
            .filter(|e| matches!(e.kind, EventKind::MessageSent { .. }))
            .map(|e| e.event_id)
            .collect();
        let mut out: Vec<Uuid> = tail
            .iter()
            .filter_map(|e| match e.kind {
                EventKind::MessageRead { message_id } => Some(message_id),
                _ => None,
            })
            .filter(|id| !self.messages.contains(id) && !sent_in_tail.contains(id))
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Adds a page of older messages to a partial state, as a client scrolls
    /// up: `page` is the answer of `/messages?beforeSeq=before` (oldest
    /// first), and `reaches_start` says it holds every message below
    /// `before` (it was shorter than asked for). The loaded range then
    /// starts at the page's oldest message (or at seq 1), so views and
    /// decisions see those messages like the others. Messages the state
    /// already covers are left as they are. Returns how many were added;
    /// a complete state takes none. `Err(Incomplete)` when `before` is
    /// below the loaded range: the page would leave a gap.
    pub fn add_older(
        &mut self,
        page: &[ChatMessageView],
        before: u64,
        reaches_start: bool,
    ) -> Result<usize, Incomplete> {
        let Some(c) = &self.coverage else {
            return Ok(0);
        };
        if before < c.from {
            return Err(Incomplete);
        }
        let from = c.from;
        let mut older: Vec<Message> = page
            .iter()
            .filter(|v| v.seq >= 1 && v.seq < from && !self.messages.contains(&v.message_id))
            .map(Message::from)
            .collect();
        older.sort_unstable_by_key(|m| m.seq);
        older.dedup_by_key(|m| m.seq);
        let new_from = match page.iter().map(|v| v.seq).min() {
            _ if reaches_start => 1,
            Some(oldest) => oldest.min(from),
            None => 1,
        };
        let added = older.len();
        if added > 0 {
            older.extend(self.messages.iter().cloned());
            match MessageLog::from_ascending(older) {
                Some(log) => self.messages = log,
                // Ids that clash with other seqs: stored data contradicts
                // itself; keep the state as it was.
                None => return Err(Incomplete),
            }
        }
        if let Some(c) = &mut self.coverage {
            c.from = new_from;
        }
        Ok(added)
    }

    /// Drops a partial state's loaded messages older than its newest
    /// `limit`, so that a windowed snapshot carries the messages asked for
    /// and not the rest of the chunks that hold them (up to 256 more each):
    /// its loaded range then starts at the oldest message kept. A complete
    /// state is left whole, as is one holding no more than `limit`.
    /// Returns how many were dropped.
    pub fn keep_newest(&mut self, limit: usize) -> usize {
        let Some(c) = &mut self.coverage else {
            return 0;
        };
        let Some(oldest) = limit
            .checked_sub(1)
            .and_then(|n| self.messages.iter().rev().nth(n))
            .map(|m| m.seq)
        else {
            return 0;
        };
        let kept: Vec<Message> = self.messages.range(oldest, u64::MAX).cloned().collect();
        let dropped = self.messages.len() - kept.len();
        if dropped == 0 {
            return 0;
        }
        match MessageLog::from_ascending(kept) {
            Some(log) => self.messages = log,
            // Taken from a log of unique ids: never, but keep the state then.
            None => return 0,
        }
        c.from = c.from.max(oldest);
        dropped
    }

    /// See [`unknown_read_targets`](RoomState::unknown_read_targets).
    pub fn provide_outside_seqs(&mut self, seqs: impl IntoIterator<Item = (Uuid, u64)>) {
        if let Some(c) = &mut self.coverage {
            c.outside_seqs.extend(seqs);
        }
    }
}
