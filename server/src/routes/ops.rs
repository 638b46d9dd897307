//! Operations: health, metrics, the OpenAPI description, and the contract's
//! answers for unknown routes and wrong methods.

use crate::error::ApiError;
use crate::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

/// Health of the store and the bus.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, body = crate::openapi::Health), (status = 503, description = "the store cannot be reached", body = crate::openapi::Health)))]
pub async fn healthz(State(state): State<AppState>) -> Response {
    let fields = json!({
        "store": state.store.kind(),
        "bus": state.bus.kind(),
        "busConnected": state.bus.connected(),
    });
    match tokio::time::timeout(crate::appender::STORE_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => {
            let mut body = fields;
            body["status"] = json!("ok");
            Json(body).into_response()
        }
        _ => {
            let mut body = fields;
            body["status"] = json!("unavailable");
            body["error"] = ApiError::unavailable("the store cannot be reached").body();
            (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
        }
    }
}

/// Prometheus metrics (text format).
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus text", content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

/// This document.
#[utoipa::path(get, path = "/api/openapi.json", tag = "operations", responses((status = 200, description = "OpenAPI 3")))]
pub async fn openapi() -> Json<Value> {
    Json(crate::openapi::document())
}

pub async fn not_found() -> ApiError {
    ApiError::not_found()
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed()
}
