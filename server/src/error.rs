//! `ApiError`: every error the API answers, and the one place that maps it
//! to a status code and the contract's JSON shape
//! `{"error": {"code", "message"}}`.

use crate::store::StoreError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use domain::{DecodeError, ErrorCode, Refusal};
use serde_json::{json, Value};

#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Extra fields of the error object (`lastSeq`, `retryAfter`).
    pub extra: Option<(&'static str, Value)>,
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            extra: None,
            retry_after: None,
        }
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid bearer token is required",
        )
    }
    pub fn bad_query(m: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_query", m)
    }
    pub fn bad_json(m: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_json", m)
    }
    pub fn room_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "room_not_found", "no such room")
    }
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such route")
    }
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this route does not take that method",
        )
    }
    pub fn payload_too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the body is over 64 KiB",
        )
    }
    pub fn unavailable(m: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", m)
    }
    pub fn rate_limited(retry_after: u64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many requests",
        );
        e.retry_after = Some(retry_after.max(1));
        e.extra = Some(("retryAfter", json!(retry_after.max(1))));
        e
    }
    pub fn seq_conflict(last_seq: u64) -> Self {
        let mut e = Self::new(
            StatusCode::CONFLICT,
            "seq_conflict",
            "the room has moved on since expectedSeq",
        );
        e.extra = Some(("lastSeq", json!(last_seq)));
        e
    }
    pub fn event_id_conflict() -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "event_id_conflict",
            "an event with this eventId exists with another payload or sender",
        )
    }

    /// The error object (inside `"error"`), as HTTP and WebSocket frames carry it.
    pub fn body(&self) -> Value {
        let mut obj = json!({"code": self.code, "message": self.message});
        if let Some((k, v)) = &self.extra {
            obj[*k] = v.clone();
        }
        obj
    }
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        let (status, code) = match r.code {
            ErrorCode::BadJson => (StatusCode::BAD_REQUEST, "bad_json"),
            ErrorCode::InvalidEvent => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_event"),
            ErrorCode::ContentEmpty => (StatusCode::UNPROCESSABLE_ENTITY, "content_empty"),
            ErrorCode::ContentTooLong => (StatusCode::UNPROCESSABLE_ENTITY, "content_too_long"),
            ErrorCode::InvalidId => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_id"),
            ErrorCode::MessageNotFound => (StatusCode::NOT_FOUND, "message_not_found"),
            ErrorCode::Forbidden => (StatusCode::FORBIDDEN, "forbidden"),
        };
        ApiError::new(status, code, r.message)
    }
}

impl From<DecodeError> for ApiError {
    fn from(e: DecodeError) -> Self {
        Refusal::from(e).into()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::warn!(error = %e, "store error");
        ApiError::unavailable("the store cannot be reached; retry with the same eventId")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = (self.status, Json(json!({"error": self.body()}))).into_response();
        if let Some(s) = self.retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        res
    }
}
