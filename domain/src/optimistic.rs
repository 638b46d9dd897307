//! The optimistic layer of the web app: the confirmed state (events the
//! server stored, in seq order) plus the user's pending events (sent, not yet
//! answered). What the user sees is the confirmed state with the pending
//! events applied on top, so their own actions show at once.
//!
//! - A pending event confirmed by the server moves to the confirmed state.
//! - A pending event the server refuses is dropped.
//! - When other users' events arrive first, the pending events are decided
//!   again on top of the new confirmed state (a rebase); those that became
//!   invalid (their target was deleted, …) are dropped and reported.
//!
//! A [`PendingEvent`] serializes to the flat body of a submission plus
//! `submittedAt`, so a client can keep its unsent events (an offline queue)
//! and send them as they are: the server ignores the extra field.

use crate::command::Command;
use crate::error::Refusal;
use crate::event::{ChatEvent, EventKind, EventType};
use crate::state::{ApplyError, RoomState};
use crate::time::Timestamp;
use crate::view::{ChatMessageView, Incomplete};
use compact_str::CompactString;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

/// An event of this user that the server has not answered yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingEvent {
    pub event_id: Uuid,
    pub kind: EventKind,
    /// The client's time at submission; shown until the server's time is known.
    pub submitted_at: Timestamp,
}

impl PendingEvent {
    /// The command to send to the server for this event.
    pub fn command(&self) -> Command {
        Command::from_kind(self.event_id, &self.kind)
    }
}

/// The wire form of a [`PendingEvent`]: `eventId`, `eventType`, `content`,
/// `targetMessageId` (as in a submission) and `submittedAt`.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WirePending {
    event_id: Uuid,
    event_type: EventType,
    #[serde(default)]
    content: Option<CompactString>,
    #[serde(default)]
    target_message_id: Option<Uuid>,
    submitted_at: Timestamp,
}

impl Serialize for PendingEvent {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        WirePending {
            event_id: self.event_id,
            event_type: self.kind.event_type(),
            content: self.kind.content().map(CompactString::from),
            target_message_id: self.kind.target(),
            submitted_at: self.submitted_at,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for PendingEvent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = WirePending::deserialize(d)?;
        let kind = EventKind::from_parts(w.event_type, w.content, w.target_message_id)
            .map_err(serde::de::Error::custom)?;
        Ok(PendingEvent {
            event_id: w.event_id,
            kind,
            submitted_at: w.submitted_at,
        })
    }
}

/// A pending event that was dropped, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dropped {
    pub event: PendingEvent,
    pub reason: Refusal,
}

/// Confirmed state + pending events of one user in one room.
#[derive(Clone, Debug)]
pub struct OptimisticRoom {
    user: String,
    confirmed: RoomState,
    pending: Vec<PendingEvent>,
    /// Confirmed + pending; `None` when nothing is pending.
    shown: Option<RoomState>,
}

impl OptimisticRoom {
    pub fn new(user: impl Into<String>, confirmed: RoomState) -> Self {
        OptimisticRoom {
            user: user.into(),
            confirmed,
            pending: Vec::new(),
            shown: None,
        }
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    /// What the server has confirmed.
    pub fn confirmed(&self) -> &RoomState {
        &self.confirmed
    }

    /// What the user sees: confirmed with pending applied on top.
    pub fn shown(&self) -> &RoomState {
        self.shown.as_ref().unwrap_or(&self.confirmed)
    }

    pub fn pending(&self) -> &[PendingEvent] {
        &self.pending
    }

    pub fn is_pending(&self, event_id: Uuid) -> bool {
        self.pending.iter().any(|p| p.event_id == event_id)
    }

    /// Decides a command against what the user sees and, if accepted, adds
    /// it as pending and shows it. The caller then sends
    /// [`PendingEvent::command`] to the server.
    pub fn submit(&mut self, cmd: &Command, now: Timestamp) -> Result<PendingEvent, Refusal> {
        let kind = self.shown().decide(cmd, &self.user)?;
        let pending = PendingEvent {
            event_id: cmd.event_id,
            kind,
            submitted_at: now,
        };
        let mut shown = self.shown.take().unwrap_or_else(|| self.confirmed.clone());
        apply_pending(&mut shown, &self.user, &pending);
        self.shown = Some(shown);
        self.pending.push(pending.clone());
        Ok(pending)
    }

    /// An event the server stored (an `event` or `ack` frame, or a page of
    /// `/events`). Events already applied are ignored, so a frame may come
    /// twice. A pending event with the same id is confirmed, even when the
    /// event was already applied (an event sent again after a reload, whose
    /// first copy came with the state). Returns the pending events the
    /// rebase dropped. A gap is an error: the caller fetches the missing
    /// events first.
    pub fn receive(&mut self, event: ChatEvent) -> Result<Vec<Dropped>, ApplyError> {
        let id = event.event_id;
        if event.seq <= self.confirmed.last_seq() {
            if !self.is_pending(id) {
                return Ok(Vec::new());
            }
            self.pending.retain(|p| p.event_id != id);
            return Ok(self.rebase());
        }
        self.confirmed.apply(event)?;
        self.pending.retain(|p| p.event_id != id);
        Ok(self.rebase())
    }

    /// Adds a page of older messages to the confirmed state (see
    /// [`RoomState::add_older`]); what is shown follows.
    pub fn add_older(
        &mut self,
        page: &[ChatMessageView],
        before: u64,
        reaches_start: bool,
    ) -> Result<usize, Incomplete> {
        let added = self.confirmed.add_older(page, before, reaches_start)?;
        if added > 0 || self.shown.is_some() {
            // The pending events only act on what the user saw: nothing of
            // them changes, but `shown` is a copy to bring up to date.
            self.rebase();
        }
        Ok(added)
    }

    /// The server refused a pending event: it is dropped.
    pub fn reject(&mut self, event_id: Uuid) -> Vec<Dropped> {
        let before = self.pending.len();
        self.pending.retain(|p| p.event_id != event_id);
        if self.pending.len() == before {
            return Vec::new();
        }
        self.rebase()
    }

    /// Re-decides every pending event on top of the confirmed state.
    fn rebase(&mut self) -> Vec<Dropped> {
        if self.pending.is_empty() {
            self.shown = None;
            return Vec::new();
        }
        let mut shown = self.confirmed.clone();
        let mut dropped = Vec::new();
        let mut kept = Vec::with_capacity(self.pending.len());
        for p in std::mem::take(&mut self.pending) {
            match shown.decide(&p.command(), &self.user) {
                Ok(kind) => {
                    let p = PendingEvent { kind, ..p };
                    apply_pending(&mut shown, &self.user, &p);
                    kept.push(p);
                }
                Err(reason) => dropped.push(Dropped { event: p, reason }),
            }
        }
        self.pending = kept;
        self.shown = if self.pending.is_empty() {
            None
        } else {
            Some(shown)
        };
        dropped
    }
}

/// Applies a pending event at the next seq of `state`, with the client's time.
fn apply_pending(state: &mut RoomState, user: &str, p: &PendingEvent) {
    let event = ChatEvent {
        event_id: p.event_id,
        room_id: state.room_id().unwrap_or_default().into(),
        seq: state.last_seq() + 1,
        sender_id: user.into(),
        timestamp: p.submitted_at,
        kind: p.kind.clone(),
    };
    state
        .apply(event)
        .expect("the next seq of the same room always applies");
}
