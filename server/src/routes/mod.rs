//! The HTTP routes, one file per group, and what they share: body reading
//! with the contract's errors, authentication plus rate limiting. The
//! bodies and query strings themselves are typed in `crate::api_types`.

pub(crate) mod ops;
pub(crate) mod rooms;
pub(crate) mod users;
pub(crate) mod ws;

use crate::api_types::RoomPath;
use crate::auth::{self, Caller};
use crate::error::ApiError;
use crate::AppState;
use axum::body::{Body, Bytes};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{any, get, post};
use axum::Router;
use http_body_util::{BodyExt, Limited};
use tower_http::compression::CompressionLayer;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::trace::TraceLayer;

/// Largest request body (and WebSocket frame).
pub const MAX_BODY: usize = 64 * 1024;

pub fn router(state: AppState) -> Router {
    let static_dir = state.config.static_dir.clone();
    let web_app =
        ServeDir::new(&static_dir).fallback(ServeFile::new(static_dir.join("index.html")));
    Router::new()
        .route("/api/users", post(users::create_user))
        .route("/api/sessions", post(users::sign_in))
        .route("/api/sessions/current", axum::routing::delete(users::sign_out))
        .route("/api/rooms", get(rooms::list_rooms).post(rooms::create_room))
        .route("/api/rooms/{roomId}", get(rooms::get_room))
        .route("/api/rooms/{roomId}/events", get(rooms::get_events).post(rooms::post_event))
        .route("/api/rooms/{roomId}/messages", get(rooms::get_messages))
        .route("/api/rooms/{roomId}/snapshot", get(rooms::get_snapshot))
        .route("/api/rooms/{roomId}/ws", get(ws::connect))
        .route("/api/openapi.json", get(ops::openapi))
        .route("/api", any(ops::not_found))
        .route("/api/{*rest}", any(ops::not_found))
        .route("/healthz", get(ops::healthz))
        .route("/metrics", get(ops::metrics))
        .method_not_allowed_fallback(ops::method_not_allowed)
        .fallback_service(web_app)
        // gzip or br when the request's Accept-Encoding allows it.
        .layer(CompressionLayer::new())
        .layer(middleware::from_fn_with_state(state.clone(), count_requests))
        .layer(
            // Paths only: the WebSocket token travels in the query string.
            TraceLayer::new_for_http().make_span_with(|req: &Request| {
                tracing::info_span!("http", method = %req.method(), path = %req.uri().path())
            }),
        )
        .with_state(state)
}

async fn count_requests(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let res = next.run(req).await;
    state
        .metrics
        .requests
        .with_label_values(&[method.as_str(), res.status().as_str()])
        .inc();
    res
}

/// The bearer token of a request: the `Authorization` header wins over the
/// `token` query parameter (which only the WebSocket route reads).
pub fn bearer(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
        .filter(|t| !t.is_empty())
}

/// Authenticates and applies the per-user rate limit (401, then 429).
pub async fn caller(
    state: &AppState,
    headers: &HeaderMap,
    query_token: Option<String>,
) -> Result<Caller, ApiError> {
    let token = bearer(headers).or(query_token);
    let caller = auth::authenticate(&*state.store, token).await?;
    state
        .rate
        .check(&caller.user)
        .map_err(ApiError::rate_limited)?;
    Ok(caller)
}

/// Reads a body of at most 64 KiB (413 beyond).
pub async fn read_body(body: Body) -> Result<Bytes, ApiError> {
    match Limited::new(body, MAX_BODY).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(ApiError::payload_too_large())
        }
        Err(e) => Err(ApiError::bad_json(format!(
            "the body could not be read: {e}"
        ))),
    }
}

/// Reads a body (413 beyond 64 KiB) and decodes it as a JSON object into `T`
/// (400 `bad_json` otherwise).
pub async fn read_json<T: serde::de::DeserializeOwned>(body: Body) -> Result<T, ApiError> {
    crate::api_types::json_object(&read_body(body).await?)
}

/// The `{roomId}` of a room route, read after authentication (401 comes
/// first): a path that is not UTF-8 names no room (404 `room_not_found`).
pub fn room_id(path: Result<Path<RoomPath>, PathRejection>) -> Result<String, ApiError> {
    path.map(|Path(p)| p.room_id)
        .map_err(|_| ApiError::room_not_found())
}
