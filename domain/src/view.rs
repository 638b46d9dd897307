//! [`ChatMessageView`], the contract's read model of one message, and the
//! range-limited window of the newest messages built from a state.

use crate::message::Message;
use crate::reactions::Reactions;
use crate::state::RoomState;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

/// One message as readers see it (`/messages`, the projection).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatMessageView {
    pub message_id: Uuid,
    pub room_id: String,
    pub seq: u64,
    pub sender_id: String,
    pub content: String,
    pub sent_at: Timestamp,
    pub edited_at: Option<Timestamp>,
    /// Emoji → its users, sorted; only emoji that have users.
    pub reactions: BTreeMap<String, Vec<String>>,
    /// Users other than the sender whose read marker is ≥ this seq, sorted.
    pub read_by: Vec<String>,
}

/// A window that a partial state cannot answer exactly: more chunks of the
/// snapshot must be loaded (ask [`crate::SnapshotHead::plan_window`] with
/// more slack).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the loaded part of the room does not cover the window")]
pub struct Incomplete;

impl ChatMessageView {
    /// The view of `message`, with `readBy` from `read_markers`.
    pub fn build(
        room_id: &str,
        message: &Message,
        read_markers: &BTreeMap<compact_str::CompactString, u64>,
    ) -> Self {
        let read_by = read_markers
            .iter()
            .filter(|(user, &marker)| marker >= message.seq && **user != message.sender_id)
            .map(|(user, _)| user.to_string())
            .collect();
        ChatMessageView {
            message_id: message.id,
            room_id: room_id.to_owned(),
            seq: message.seq,
            sender_id: message.sender_id.to_string(),
            content: message.content.to_string(),
            sent_at: message.sent_at,
            edited_at: message.edited_at,
            reactions: message
                .reactions
                .iter()
                .map(|(emoji, users)| (emoji.to_owned(), users.map(str::to_owned).collect()))
                .collect(),
            read_by,
        }
    }
}

impl From<&ChatMessageView> for Message {
    /// The message a view shows (its `readBy` aside, which comes from the
    /// read markers): how a client adds a page of `/messages` to a state.
    fn from(view: &ChatMessageView) -> Message {
        let mut reactions = Reactions::new();
        for (emoji, users) in &view.reactions {
            for user in users {
                reactions.add(emoji.as_str().into(), user.as_str().into());
            }
        }
        Message {
            id: view.message_id,
            seq: view.seq,
            sender_id: view.sender_id.as_str().into(),
            content: view.content.as_str().into(),
            sent_at: view.sent_at,
            edited_at: view.edited_at,
            reactions,
        }
    }
}

impl RoomState {
    /// The view of one live message.
    pub fn view_of(&self, message: &Message) -> ChatMessageView {
        ChatMessageView::build(self.room_id().unwrap_or(""), message, &self.read_markers)
    }

    /// Views of all live messages, in seq order.
    pub fn views(&self) -> Vec<ChatMessageView> {
        self.messages().map(|m| self.view_of(m)).collect()
    }

    /// The newest `limit` messages with seq below `before` (all when `None`),
    /// oldest first. A partial state answers only when what it holds is
    /// enough to be exact.
    pub fn window(&self, limit: usize, before: Option<u64>) -> Result<Vec<&Message>, Incomplete> {
        let upper = before.unwrap_or(u64::MAX);
        let mut out: Vec<&Message> = self.messages.range(0, upper).rev().take(limit).collect();
        if let Some(c) = &self.coverage {
            let hi = upper.saturating_sub(1).min(self.last_seq);
            let lo = match out.last() {
                Some(m) if out.len() == limit => m.seq,
                _ => 1,
            };
            if limit > 0 && !c.covers(lo, hi) {
                return Err(Incomplete);
            }
        }
        out.reverse();
        Ok(out)
    }

    /// [`window`](RoomState::window) as views.
    pub fn window_views(
        &self,
        limit: usize,
        before: Option<u64>,
    ) -> Result<Vec<ChatMessageView>, Incomplete> {
        Ok(self
            .window(limit, before)?
            .into_iter()
            .map(|m| self.view_of(m))
            .collect())
    }
}
