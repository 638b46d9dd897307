//! The API's JSON bodies, query strings and WebSocket frames as typed values:
//! handlers decode requests into these and return these, and the OpenAPI
//! document (`crate::openapi`) is generated from the same types, so the
//! description says what is sent, constraints included.
//!
//! Domain types that are sent (`ChatEvent`, `ChatMessageView`) get a wire
//! type here that is built from them and writes the same JSON; the domain
//! crate stays free of OpenAPI.

mod bodies;
mod frames;
mod query;
mod schema;

pub use bodies::*;
pub use frames::*;
pub use query::*;
pub use schema::{
    Id, NonNegativeInteger, RoomCursor, ID_PATTERN, LOWER_UUID_PATTERN, NOT_BLANK_PATTERN,
    ROOM_CURSOR_PATTERN, TIME_PATTERN, UUID_PATTERN,
};

use crate::error::ApiError;

/// Decodes a JSON object body into `T` (400 `bad_json` otherwise), as the
/// domain decodes submissions.
pub fn json_object<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    Ok(domain::event::decode_object(bytes)?)
}
