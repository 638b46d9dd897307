//! The chat domain, shared by the server and the web app: the [`ChatEvent`]
//! log entry, the replay reducer ([`RoomState`]), the decision step that
//! accepts or refuses a submitted event, chunked snapshots, time travel,
//! range-limited views and the optimistic layer used by the browser.
//!
//! Everything here is pure and deterministic: no I/O, no clock, no
//! randomness. The server and the browser run the same code on the same
//! events and must reach the same state.

#![forbid(unsafe_code)]

pub mod chunk;
pub mod command;
pub mod error;
pub mod event;
mod id_table;
pub mod message;
mod messages;
pub mod optimistic;
pub mod reactions;
pub mod replay;
pub mod snapshot;
pub mod state;
pub mod time;
pub mod timetravel;
pub mod validation;
pub mod view;

pub use chunk::CHUNK_SPAN;
pub use command::{Command, Submission};
pub use compact_str::CompactString;
pub use error::{DecodeError, ErrorCode, Refusal};
pub use event::{ChatEvent, EventKind, EventType};
pub use message::Message;
pub use optimistic::{Dropped, OptimisticRoom, PendingEvent};
pub use reactions::Reactions;
pub use replay::ReplayError;
pub use snapshot::{ChunkInfo, Snapshot, SnapshotChunk, SnapshotHead};
pub use state::{ApplyError, RoomInfo, RoomState};
pub use time::Timestamp;
pub use timetravel::Point;
pub use view::{ChatMessageView, Incomplete};
