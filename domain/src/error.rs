//! Error codes the domain produces, named exactly as in the API contract,
//! and the two error types callers see: [`DecodeError`] for input that could
//! not be decoded and [`Refusal`] for a well-formed request the rules refuse.

use std::fmt;

/// The contract's error codes that the domain itself can decide on.
/// The HTTP status each maps to is given in brackets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, strum::EnumIter)]
pub enum ErrorCode {
    /// [400] not JSON, a field of the wrong JSON type, or a required field missing.
    BadJson,
    /// [422] unknown `eventType`, `ROOM_CREATED` from a client, `eventId` not a
    /// UUID, `targetMessageId` missing where the type needs it.
    InvalidEvent,
    /// [422] content missing, null or blank where the type needs it.
    ContentEmpty,
    /// [422] content over the type's limit.
    ContentTooLong,
    /// [422] user id / room id not matching the id pattern, or a bad password length.
    InvalidId,
    /// [404] target message unknown or already deleted.
    MessageNotFound,
    /// [403] editing or deleting another user's message.
    Forbidden,
}

impl ErrorCode {
    /// Every code.
    pub fn all() -> impl Iterator<Item = ErrorCode> {
        <ErrorCode as strum::IntoEnumIterator>::iter()
    }

    /// The snake_case code of the contract.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadJson => "bad_json",
            ErrorCode::InvalidEvent => "invalid_event",
            ErrorCode::ContentEmpty => "content_empty",
            ErrorCode::ContentTooLong => "content_too_long",
            ErrorCode::InvalidId => "invalid_id",
            ErrorCode::MessageNotFound => "message_not_found",
            ErrorCode::Forbidden => "forbidden",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A request or event the rules refuse, with the contract's code and a
/// message meant for a person.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Refusal {
    pub code: ErrorCode,
    pub message: String,
}

impl Refusal {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Refusal {
            code,
            message: message.into(),
        }
    }
}

/// Why a JSON document could not be turned into a domain value.
///
/// `BadJson` (400) when the document is malformed, a field has the wrong JSON
/// type or an always-required field is missing; `InvalidEvent` (422) when it is
/// well-formed but its values are not a valid event (unknown `eventType`,
/// `eventId` not a UUID, …).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("bad_json: {0}")]
    BadJson(String),
    #[error("invalid_event: {0}")]
    InvalidEvent(String),
}

impl DecodeError {
    pub fn code(&self) -> ErrorCode {
        match self {
            DecodeError::BadJson(_) => ErrorCode::BadJson,
            DecodeError::InvalidEvent(_) => ErrorCode::InvalidEvent,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            DecodeError::BadJson(m) | DecodeError::InvalidEvent(m) => m,
        }
    }
}

impl From<DecodeError> for Refusal {
    fn from(e: DecodeError) -> Self {
        Refusal::new(e.code(), e.message())
    }
}
