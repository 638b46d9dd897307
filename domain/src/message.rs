//! [`Message`]: one live message of a room as the reducer keeps it, the
//! plain value that states, snapshots and views are made of.

use crate::event::{ChatEvent, EventKind};
use crate::reactions::Reactions;
use crate::time::Timestamp;
use compact_str::CompactString;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A message in the current view (deleted messages are not kept). Its id is
/// the `eventId` of its `MESSAGE_SENT`, and it keeps that event's seq for ever.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub id: Uuid,
    pub seq: u64,
    pub sender_id: CompactString,
    /// Short messages (up to 24 bytes) are kept inline, with no allocation.
    pub content: CompactString,
    pub sent_at: Timestamp,
    pub edited_at: Option<Timestamp>,
    /// Emoji → users who reacted with it; an emoji with no users is removed.
    pub reactions: Reactions,
}

impl Message {
    /// The message a `MESSAGE_SENT` adds, as it is until something changes
    /// it: the reducer's, and the embedded store's views derived from events.
    pub fn sent(
        id: Uuid,
        seq: u64,
        sender_id: CompactString,
        content: CompactString,
        sent_at: Timestamp,
    ) -> Message {
        Message {
            id,
            seq,
            sender_id,
            content,
            sent_at,
            edited_at: None,
            reactions: Reactions::new(),
        }
    }

    /// The message `e` adds, if it is a `MESSAGE_SENT`.
    pub fn sent_by(e: &ChatEvent) -> Option<Message> {
        match &e.kind {
            EventKind::MessageSent { content } => Some(Message::sent(
                e.event_id,
                e.seq,
                e.sender_id.clone(),
                content.clone(),
                e.timestamp,
            )),
            _ => None,
        }
    }
}
