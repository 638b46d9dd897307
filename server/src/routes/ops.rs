//! Operations: health, metrics, the OpenAPI description, and the contract's
//! answers for unknown routes and wrong methods.

use crate::error::ApiError;
use crate::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

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

pub async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

pub async fn openapi() -> Json<Value> {
    Json(crate::openapi::document())
}

pub async fn not_found() -> ApiError {
    ApiError::not_found()
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed()
}
