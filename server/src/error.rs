//! `ApiError`: every error the API answers, and the one place that maps
//! errors of the layers below (domain refusals, the append pipeline, the
//! store) to a status code and the contract's body
//! `{"error": {"code", "message"}}`.
//!
//! Every code string is spelled once: the domain's codes by
//! [`ErrorCode::as_str`], the server's own by [`ServerCode::as_str`]; the
//! status follows from the code.

use crate::appender::AppendError;
use crate::auth::AuthError;
use crate::store::StoreError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use domain::{DecodeError, ErrorCode, Refusal};
use serde::{Serialize, Serializer};
use std::borrow::Cow;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

/// The body of every error response: `{"error": {"code", "message"}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorObject,
}

/// What went wrong. `seq_conflict` adds `lastSeq`; `rate_limited` adds
/// `retryAfter` in WebSocket error frames (HTTP sets `Retry-After`, and the
/// field too).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorObject {
    pub code: Code,
    /// What went wrong, for a person.
    pub message: String,
    /// `seq_conflict`: the room's current last seq.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, minimum = 0)]
    pub last_seq: Option<u64>,
    /// `rate_limited`: seconds to wait before retrying.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, minimum = 1)]
    pub retry_after: Option<u64>,
}

/// The contract's error codes that only the server decides on (the domain
/// crate has the others, [`ErrorCode`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, strum::EnumIter)]
pub enum ServerCode {
    /// [401] no token, unknown token, or expired token.
    Unauthorized,
    /// [401] wrong user id or password at sign-in.
    InvalidCredentials,
    /// [400] a query parameter that is not what the route reads.
    BadQuery,
    /// [404] unknown room.
    RoomNotFound,
    /// [404] no such route under `/api`.
    NotFound,
    /// [405] known route, wrong method.
    MethodNotAllowed,
    /// [409] user id taken.
    UserExists,
    /// [409] room id taken.
    RoomExists,
    /// [409] `expectedSeq` is not the room's last seq.
    SeqConflict,
    /// [409] the eventId is stored with another payload or sender.
    EventIdConflict,
    /// [413] body over 64 KiB.
    PayloadTooLarge,
    /// [429] too many requests.
    RateLimited,
    /// [503] the store cannot be reached in time; nothing was acknowledged.
    Unavailable,
    /// [426] a plain GET on the WebSocket route.
    UpgradeRequired,
    /// [500] a bug, such as stored data that contradicts itself.
    Internal,
}

impl ServerCode {
    /// The snake_case code of the contract.
    pub fn as_str(self) -> &'static str {
        match self {
            ServerCode::Unauthorized => "unauthorized",
            ServerCode::InvalidCredentials => "invalid_credentials",
            ServerCode::BadQuery => "bad_query",
            ServerCode::RoomNotFound => "room_not_found",
            ServerCode::NotFound => "not_found",
            ServerCode::MethodNotAllowed => "method_not_allowed",
            ServerCode::UserExists => "user_exists",
            ServerCode::RoomExists => "room_exists",
            ServerCode::SeqConflict => "seq_conflict",
            ServerCode::EventIdConflict => "event_id_conflict",
            ServerCode::PayloadTooLarge => "payload_too_large",
            ServerCode::RateLimited => "rate_limited",
            ServerCode::Unavailable => "unavailable",
            ServerCode::UpgradeRequired => "upgrade_required",
            ServerCode::Internal => "internal",
        }
    }

    fn status(self) -> StatusCode {
        match self {
            ServerCode::Unauthorized | ServerCode::InvalidCredentials => StatusCode::UNAUTHORIZED,
            ServerCode::BadQuery => StatusCode::BAD_REQUEST,
            ServerCode::RoomNotFound | ServerCode::NotFound => StatusCode::NOT_FOUND,
            ServerCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ServerCode::UserExists
            | ServerCode::RoomExists
            | ServerCode::SeqConflict
            | ServerCode::EventIdConflict => StatusCode::CONFLICT,
            ServerCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ServerCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ServerCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ServerCode::UpgradeRequired => StatusCode::UPGRADE_REQUIRED,
            ServerCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

fn domain_status(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::BadJson => StatusCode::BAD_REQUEST,
        ErrorCode::InvalidEvent
        | ErrorCode::ContentEmpty
        | ErrorCode::ContentTooLong
        | ErrorCode::InvalidId => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::MessageNotFound => StatusCode::NOT_FOUND,
        ErrorCode::Forbidden => StatusCode::FORBIDDEN,
    }
}

/// An error code of the contract: the domain's or the server's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Code {
    Domain(ErrorCode),
    Server(ServerCode),
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Domain(c) => c.as_str(),
            Code::Server(c) => c.as_str(),
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Code::Domain(c) => domain_status(c),
            Code::Server(c) => c.status(),
        }
    }

    /// Every code the API can answer with.
    pub fn all() -> impl Iterator<Item = Code> {
        let server = <ServerCode as strum::IntoEnumIterator>::iter();
        ErrorCode::all()
            .map(Code::Domain)
            .chain(server.map(Code::Server))
    }
}

impl From<ErrorCode> for Code {
    fn from(c: ErrorCode) -> Self {
        Code::Domain(c)
    }
}

impl From<ServerCode> for Code {
    fn from(c: ServerCode) -> Self {
        Code::Server(c)
    }
}

impl Serialize for Code {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl PartialSchema for Code {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(Code::all().map(Code::as_str)))
            .description(Some(
                "What went wrong, for a program; the status code follows from it.",
            ))
            .into()
    }
}

impl ToSchema for Code {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("ErrorCode")
    }
}

/// An error answer: its code (which fixes the status), a message for a
/// person, and the extra fields some codes carry.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub code: Code,
    pub message: String,
    /// `seq_conflict`: the room's last seq.
    pub last_seq: Option<u64>,
    /// `rate_limited`: seconds to wait (`Retry-After`, and `retryAfter` in
    /// WebSocket error frames).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(code: impl Into<Code>, message: impl Into<String>) -> Self {
        ApiError {
            code: code.into(),
            message: message.into(),
            last_seq: None,
            retry_after: None,
        }
    }

    pub fn status(&self) -> StatusCode {
        self.code.status()
    }

    pub fn unauthorized() -> Self {
        Self::new(ServerCode::Unauthorized, "a valid bearer token is required")
    }
    pub fn invalid_credentials() -> Self {
        Self::new(ServerCode::InvalidCredentials, "wrong user id or password")
    }
    pub fn bad_query(m: impl Into<String>) -> Self {
        Self::new(ServerCode::BadQuery, m)
    }
    pub fn bad_json(m: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadJson, m)
    }
    pub fn room_not_found() -> Self {
        Self::new(ServerCode::RoomNotFound, "no such room")
    }
    pub fn not_found() -> Self {
        Self::new(ServerCode::NotFound, "no such route")
    }
    pub fn method_not_allowed() -> Self {
        Self::new(
            ServerCode::MethodNotAllowed,
            "this route does not take that method",
        )
    }
    pub fn user_exists() -> Self {
        Self::new(ServerCode::UserExists, "this user id is taken")
    }
    pub fn payload_too_large() -> Self {
        Self::new(ServerCode::PayloadTooLarge, "the body is over 64 KiB")
    }
    pub fn upgrade_required() -> Self {
        Self::new(ServerCode::UpgradeRequired, "this route is a WebSocket")
    }
    pub fn unavailable(m: impl Into<String>) -> Self {
        Self::new(ServerCode::Unavailable, m)
    }
    pub fn rate_limited(retry_after: u64) -> Self {
        let mut e = Self::new(ServerCode::RateLimited, "too many requests");
        e.retry_after = Some(retry_after.max(1));
        e
    }
    pub fn seq_conflict(last_seq: u64) -> Self {
        let mut e = Self::new(
            ServerCode::SeqConflict,
            "the room has moved on since expectedSeq",
        );
        e.last_seq = Some(last_seq);
        e
    }

    /// A bug (500): `detail` is logged, the client learns nothing of it.
    /// `detail` must not carry user content (messages, passwords).
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(ServerCode::Internal, "internal error; this is a bug")
    }

    /// The error object (inside `"error"`), as HTTP bodies and WebSocket
    /// error frames carry it.
    pub fn object(&self) -> ErrorObject {
        ErrorObject {
            code: self.code,
            message: self.message.clone(),
            last_seq: self.last_seq,
            retry_after: self.retry_after,
        }
    }
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        ApiError::new(r.code, r.message)
    }
}

impl From<DecodeError> for ApiError {
    fn from(e: DecodeError) -> Self {
        Refusal::from(e).into()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(detail) => {
                tracing::warn!(error = %detail, "store unavailable");
                ApiError::unavailable("the store cannot be reached; retry")
            }
            StoreError::Corrupt(detail) => ApiError::internal(format!("corrupt data: {detail}")),
            // Only the appender writes conditionally, and it decides again.
            StoreError::Conflict(detail) => {
                tracing::warn!(%detail, "a write conflict reached the HTTP layer");
                ApiError::unavailable("the store is busy; retry")
            }
            // Callers that create something handle `Exists` themselves.
            StoreError::Exists => {
                ApiError::internal("unexpected \"already exists\" from the store")
            }
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Unauthorized => ApiError::unauthorized(),
            AuthError::Store(e) => e.into(),
        }
    }
}

impl From<AppendError> for ApiError {
    fn from(e: AppendError) -> Self {
        match e {
            AppendError::Refused(r) => r.into(),
            AppendError::RoomNotFound => ApiError::room_not_found(),
            AppendError::RoomExists => {
                ApiError::new(ServerCode::RoomExists, "a room with this id exists")
            }
            AppendError::EventIdConflict => ApiError::new(
                ServerCode::EventIdConflict,
                "an event with this eventId exists with another payload or sender",
            ),
            AppendError::SeqConflict { last_seq } => ApiError::seq_conflict(last_seq),
            AppendError::Unavailable(why) => {
                ApiError::unavailable(format!("{why}; retry with the same eventId"))
            }
            AppendError::Corrupt(detail) => ApiError::internal(format!("corrupt data: {detail}")),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.object(),
        };
        let mut res = (self.status(), Json(body)).into_response();
        if let Some(s) = self.retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_code_is_spelled_once_in_snake_case() {
        let codes: Vec<&str> = Code::all().map(Code::as_str).collect();
        let unique: HashSet<&str> = codes.iter().copied().collect();
        assert_eq!(unique.len(), codes.len(), "{codes:?}");
        assert!(codes
            .iter()
            .all(|c| c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')));
    }

    #[test]
    fn errors_of_the_append_pipeline_map_to_the_contract() {
        let cases = [
            (AppendError::RoomNotFound, 404, "room_not_found"),
            (AppendError::RoomExists, 409, "room_exists"),
            (AppendError::EventIdConflict, 409, "event_id_conflict"),
            (
                AppendError::SeqConflict { last_seq: 7 },
                409,
                "seq_conflict",
            ),
            (AppendError::Unavailable("timed out"), 503, "unavailable"),
            (AppendError::Corrupt("seq gap".into()), 500, "internal"),
            (
                AppendError::Refused(Refusal::new(ErrorCode::Forbidden, "not yours")),
                403,
                "forbidden",
            ),
        ];
        for (e, status, code) in cases {
            let api = ApiError::from(e);
            assert_eq!((api.status().as_u16(), api.code.as_str()), (status, code));
        }
        assert_eq!(
            ApiError::from(AppendError::SeqConflict { last_seq: 7 }).last_seq,
            Some(7)
        );
    }

    #[test]
    fn corrupt_data_is_a_500_and_an_unreachable_store_a_503() {
        let e = ApiError::from(StoreError::Corrupt("missing event 3".into()));
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(
            !e.message.contains("missing event"),
            "details stay in the log"
        );
        let e = ApiError::from(StoreError::Unavailable("disk gone".into()));
        assert_eq!(
            (e.status(), e.code.as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
        );
    }
}
