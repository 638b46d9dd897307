//! Complete snapshot heads kept decoded, so that opening a large room does
//! not decode its whole chunk directory each time. A large room's
//! snapshots are stored as small deltas over a complete head (its base),
//! and the base names every chunk of the room: about 43 bytes of JSON per
//! 256 messages, 168 KB for a room of 1,000,000. Every windowed open read
//! and decoded it again, a cost that grew with the room. A stored head
//! never changes (a head written again at the same seq describes the same
//! state, and chunks are never deleted), so a decoded one can be kept.
//! The cache is bounded by the heads' size, whatever rooms clients open.

use super::StoreError;
use domain::{ChunkInfo, SnapshotHead};
use std::future::Future;
use std::sync::Arc;

/// What the decoded heads may take in all.
const CAPACITY_BYTES: u64 = 16 << 20;

/// Complete heads by (room, seq), least recently used out first.
pub struct HeadCache(moka::sync::Cache<(String, u64), Arc<SnapshotHead>>);

impl Default for HeadCache {
    fn default() -> Self {
        HeadCache(
            moka::sync::Cache::builder()
                .max_capacity(CAPACITY_BYTES)
                .weigher(|key: &(String, u64), head: &Arc<SnapshotHead>| weight(&key.0, head))
                .build(),
        )
    }
}

/// A head's memory, about: its chunk directory, its read markers, the rest.
fn weight(room: &str, head: &SnapshotHead) -> u32 {
    let bytes = head.chunks.len() * std::mem::size_of::<ChunkInfo>()
        + head.read_markers.len() * 64
        + room.len()
        + 256;
    u32::try_from(bytes).unwrap_or(u32::MAX)
}

impl HeadCache {
    /// The complete head of `room` at exactly `seq`: kept, or read by `read`
    /// (the latest stored head at or before `seq`) and kept if it is that.
    pub async fn complete_at<F>(
        &self,
        room: &str,
        seq: u64,
        read: F,
    ) -> Result<Option<Arc<SnapshotHead>>, StoreError>
    where
        F: Future<Output = Result<Option<SnapshotHead>, StoreError>>,
    {
        let key = (room.to_owned(), seq);
        if let Some(head) = self.0.get(&key) {
            return Ok(Some(head));
        }
        let Some(head) = read.await? else {
            return Ok(None);
        };
        let head = Arc::new(head);
        if head.seq == seq && head.base.is_none() {
            self.0.insert(key, head.clone());
        }
        Ok(Some(head))
    }

    #[cfg(test)]
    pub fn len(&self) -> u64 {
        self.0.run_pending_tasks();
        self.0.entry_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn head(seq: u64, base: Option<u64>, chunks: u64) -> SnapshotHead {
        SnapshotHead {
            room_id: Some("r".into()),
            info: None,
            seq,
            last_timestamp: None,
            read_markers: BTreeMap::new(),
            chunks: (0..chunks)
                .map(|index| ChunkInfo {
                    index,
                    live: 256,
                    version: seq,
                })
                .collect(),
            base,
        }
    }

    #[tokio::test]
    async fn a_complete_head_is_read_once_and_others_every_time() {
        let cache = HeadCache::default();
        let reads = AtomicUsize::new(0);
        // Counts the reads that run: a future not awaited reads nothing.
        let read = |h: Option<SnapshotHead>| {
            let reads = &reads;
            async move {
                reads.fetch_add(1, Ordering::Relaxed);
                Ok(h)
            }
        };
        for _ in 0..3 {
            let got = cache
                .complete_at("r", 100, read(Some(head(100, None, 4))))
                .await
                .unwrap();
            assert_eq!(got.as_deref(), Some(&head(100, None, 4)));
        }
        assert_eq!(reads.load(Ordering::Relaxed), 1, "read once, then kept");
        // A delta, a head at another seq than asked for, and no head at all
        // are answered as read and never kept.
        for found in [
            Some(head(200, Some(100), 1)),
            Some(head(150, None, 4)),
            None,
        ] {
            let before = reads.load(Ordering::Relaxed);
            for _ in 0..2 {
                let got = cache
                    .complete_at("r", 200, read(found.clone()))
                    .await
                    .unwrap();
                assert_eq!(got.as_deref(), found.as_ref());
            }
            assert_eq!(reads.load(Ordering::Relaxed), before + 2);
        }
        assert_eq!(cache.len(), 1);
    }

    #[tokio::test]
    async fn the_cache_stays_within_its_bytes() {
        let cache = HeadCache::default();
        // Heads of 1,000,000-message rooms (3,907 chunks each), far more
        // than fit.
        for room in 0..1000 {
            let room = format!("room{room}");
            let h = head(1_000_000, None, 3907);
            cache
                .complete_at(&room, 1_000_000, async { Ok(Some(h)) })
                .await
                .unwrap();
        }
        let each = u64::from(weight("room0", &head(1_000_000, None, 3907)));
        assert!(
            cache.len() * each <= CAPACITY_BYTES,
            "{} heads of {each} bytes kept",
            cache.len()
        );
        assert!(cache.len() > 0);
    }
}
