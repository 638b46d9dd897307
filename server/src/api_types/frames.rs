//! WebSocket frames the server sends, and the health report.

use crate::error::{ApiError, ErrorObject};
use domain::ChatEvent;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::bodies::*;
use super::schema::*;

/// A frame the server sends on the WebSocket, one JSON text frame each.
/// (A client sends `{"type": "submit", "event": NewEvent}`.)
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ServerFrame<'a> {
    /// An event of the room: the backlog, then live, in seq order.
    Event {
        #[schema(value_type = Event)]
        event: EventBody<'a>,
    },
    /// The answer to a submit.
    Ack {
        #[serde(rename = "eventId")]
        #[schema(schema_with = lower_uuid_schema)]
        event_id: Uuid,
        #[schema(value_type = Event)]
        event: EventBody<'a>,
    },
    /// A refused submit (the HTTP route's codes), or a bad frame
    /// (`bad_json`, `eventId` null).
    Error {
        #[serde(rename = "eventId")]
        event_id: Option<String>,
        error: ErrorObject,
    },
}

impl ServerFrame<'_> {
    /// The frame as the text of a WebSocket message.
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).expect("frames always serialize")
    }

    /// The `event` frame of an event, as text.
    pub fn event_text(e: &ChatEvent) -> String {
        ServerFrame::Event {
            event: EventBody::from(e),
        }
        .to_text()
    }

    /// The `ack` frame of a stored event, as text.
    pub fn ack_text(e: &ChatEvent) -> String {
        ServerFrame::Ack {
            event_id: e.event_id,
            event: EventBody::from(e),
        }
        .to_text()
    }

    /// The `error` frame of a refused submit (its eventId, when it has one)
    /// or of a bad frame, as text.
    pub fn error_text(event_id: Option<String>, err: &ApiError) -> String {
        ServerFrame::Error {
            event_id,
            error: err.object(),
        }
        .to_text()
    }
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    Ok,
    Unavailable,
}

/// Health of the store and the bus; with a 503 also the error object.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    pub status: HealthStatus,
    /// `embedded` or `mongodb`.
    pub store: &'static str,
    /// `local` or `redis`.
    pub bus: &'static str,
    /// Redis being down is not a 503.
    pub bus_connected: bool,
    /// With a 503: `unavailable`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub error: Option<ErrorObject>,
}
