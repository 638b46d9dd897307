//! Operations: health, metrics, the OpenAPI description, and the contract's
//! answers for unknown routes and wrong methods.

use crate::api_types::{Health, HealthStatus};
use crate::error::ApiError;
use crate::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

/// Health of the store and the bus.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses(
        (status = 200, description = "status ok", body = Health),
        (status = 503, description = "the store cannot be reached: status unavailable, with the error object", body = Health)))]
pub async fn healthz(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let reachable = matches!(
        tokio::time::timeout(crate::appender::STORE_TIMEOUT, state.stores.events.ping()).await,
        Ok(Ok(()))
    );
    let (status, health, error) = if reachable {
        (StatusCode::OK, HealthStatus::Ok, None)
    } else {
        let e = ApiError::unavailable("the store cannot be reached");
        (e.status(), HealthStatus::Unavailable, Some(e.object()))
    };
    let body = Health {
        status: health,
        store: state.stores.events.kind(),
        bus: state.bus.kind(),
        bus_connected: state.bus.connected(),
        error,
    };
    (status, Json(body))
}

/// Prometheus metrics (text format).
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    state.metrics.bus_rooms.set(state.bus.here().rooms() as i64);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

/// This document.
#[utoipa::path(get, path = "/api/openapi.json", tag = "operations",
    responses((status = 200, description = "OpenAPI 3.1", body = Object)))]
pub async fn openapi(State(state): State<AppState>) -> Response {
    // Serialized once at start (`AppState::openapi_json`).
    (
        [(header::CONTENT_TYPE, "application/json")],
        state.openapi_json.clone(),
    )
        .into_response()
}

pub async fn not_found() -> ApiError {
    ApiError::not_found()
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed()
}
