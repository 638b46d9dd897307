//! Time travel: the room exactly as it was right after event k, or right
//! after the last event with timestamp ≤ t. Because timestamps never
//! decrease within a room, both are a prefix of the log, so a state at a
//! point is an earlier snapshot plus the events up to that point.

use crate::event::ChatEvent;
use crate::snapshot::SnapshotHead;
use crate::state::{ApplyError, RoomState};
use crate::time::Timestamp;

/// A point in a room's history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Point {
    /// Right after the event with this seq (0: before the first event).
    Seq(u64),
    /// Right after the last event with timestamp ≤ this time.
    Time(Timestamp),
}

impl Point {
    /// Whether the event belongs to the prefix of the log up to this point.
    pub fn includes(&self, event: &ChatEvent) -> bool {
        match *self {
            Point::Seq(k) => event.seq <= k,
            Point::Time(t) => event.timestamp <= t,
        }
    }

    /// Whether a snapshot taken with this head can start a replay to this point.
    pub fn admits(&self, head: &SnapshotHead) -> bool {
        match *self {
            Point::Seq(k) => head.seq <= k,
            Point::Time(t) => head.last_timestamp.is_none_or(|ts| ts <= t),
        }
    }
}

impl RoomState {
    /// Applies events in order while they are within `point`, and stops at
    /// the first that is not. Returns how many were applied.
    pub fn apply_until<I>(&mut self, events: I, point: Point) -> Result<usize, ApplyError>
    where
        I: IntoIterator<Item = ChatEvent>,
    {
        let mut n = 0;
        for e in events {
            if !point.includes(&e) {
                break;
            }
            self.apply(e)?;
            n += 1;
        }
        Ok(n)
    }

    /// The state at `point`, replayed from the whole log.
    pub fn at<I>(events: I, point: Point) -> Result<RoomState, ApplyError>
    where
        I: IntoIterator<Item = ChatEvent>,
    {
        let mut s = RoomState::new();
        s.apply_until(events, point)?;
        Ok(s)
    }
}
