//! Time travel, in the browser: a snapshot's state and the raw events
//! around and after it, from which the room at any seq they reach is
//! replayed with the domain's reducer — no request while the slider moves
//! within them.

use domain::{ChatEvent, Point, RoomState};

/// Events listed on each side of the chosen seq in the event log panel.
pub const LOG_RADIUS: u64 = 8;

/// A snapshot's state (at `base_seq`) and a contiguous run of events, which
/// may start before it (for the event log) and go past it.
#[derive(Clone, Debug)]
pub struct History {
    base: RoomState,
    events: Vec<ChatEvent>,
}

impl History {
    /// `events` must be contiguous and start at or before `base`'s seq + 1;
    /// `None` otherwise.
    pub fn new(base: RoomState, events: Vec<ChatEvent>) -> Option<History> {
        let h = History {
            base,
            events: Vec::new(),
        };
        if let Some(first) = events.first() {
            if first.seq > h.base_seq() + 1 {
                return None;
            }
        }
        let mut h = h;
        h.extend(events).then_some(h)
    }

    pub fn base_seq(&self) -> u64 {
        self.base.last_seq()
    }

    /// The last seq that can be shown.
    pub fn end_seq(&self) -> u64 {
        self.events.last().map_or(0, |e| e.seq).max(self.base_seq())
    }

    /// Appends the next events; `false` (nothing added) if they do not
    /// follow on.
    pub fn extend(&mut self, events: Vec<ChatEvent>) -> bool {
        let mut next = self.events.last().map(|e| e.seq + 1);
        for e in &events {
            if next.is_some_and(|n| n != e.seq) {
                return false;
            }
            next = Some(e.seq + 1);
        }
        self.events.extend(events);
        true
    }

    /// Whether the room after seq `k` can be replayed from what is held.
    pub fn reaches(&self, k: u64) -> bool {
        self.base_seq() <= k && k <= self.end_seq()
    }

    /// The room exactly as after seq `k`: the snapshot's state and the
    /// events up to `k` applied with the domain's reducer.
    pub fn state_at(&self, k: u64) -> Option<RoomState> {
        if !self.reaches(k) {
            return None;
        }
        let mut s = self.base.clone();
        let base = self.base_seq();
        let tail = self.events.iter().filter(|e| e.seq > base).cloned();
        s.apply_until(tail, Point::Seq(k)).ok()?;
        Some(s)
    }

    /// The held events with seq within `radius` of `k`.
    pub fn log_around(&self, k: u64, radius: u64) -> &[ChatEvent] {
        let lo = self
            .events
            .partition_point(|e| e.seq < k.saturating_sub(radius));
        let hi = self
            .events
            .partition_point(|e| e.seq <= k.saturating_add(radius));
        &self.events[lo..hi.max(lo)]
    }

    /// Whether the event log around `k` is all held (up to `last_seq`, the
    /// room's last).
    pub fn log_complete(&self, k: u64, radius: u64, last_seq: u64) -> bool {
        let first = self.events.first().map_or(u64::MAX, |e| e.seq);
        let want_lo = k.saturating_sub(radius).max(1);
        let want_hi = k.saturating_add(radius).min(last_seq);
        (first <= want_lo || want_lo > want_hi) && self.end_seq() >= want_hi
    }
}
