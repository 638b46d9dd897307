//! Users and sessions: sign-up, sign-in, sign-out.

use super::{json_body, read_body};
use crate::auth::{self, hash_password, new_token, verify_password};
use crate::error::ApiError;
use crate::store::StoreError;
use crate::AppState;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::net::SocketAddr;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Credentials {
    user_id: String,
    password: String,
}

/// Create a user.
#[utoipa::path(post, path = "/api/users", tag = "users", request_body = crate::openapi::Credentials,
    responses((status = 201, body = crate::openapi::UserCreated), (status = 400, description = "bad_json", body = crate::openapi::ErrorBody), (status = 413, description = "payload_too_large", body = crate::openapi::ErrorBody),
        (status = 409, description = "user_exists", body = crate::openapi::ErrorBody), (status = 422, description = "invalid_id", body = crate::openapi::ErrorBody)))]
pub async fn create_user(
    State(state): State<AppState>,
    body: Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let c: Credentials = json_body(&read_body(body).await?)?;
    domain::validation::validate_id("userId", &c.user_id)?;
    domain::validation::validate_password(&c.password)?;
    let hash = tokio::task::spawn_blocking(move || hash_password(&c.password))
        .await
        .map_err(|_| ApiError::unavailable("hashing failed"))??;
    match state.store.create_user(&c.user_id, &hash).await {
        Ok(()) => Ok((StatusCode::CREATED, Json(json!({"userId": c.user_id})))),
        Err(StoreError::Exists) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "user_exists",
            "this user id is taken",
        )),
        Err(e) => Err(e.into()),
    }
}

/// Sign in: a bearer token.
#[utoipa::path(post, path = "/api/sessions", tag = "users", request_body = crate::openapi::Credentials,
    responses((status = 200, body = crate::openapi::Session), (status = 400, description = "bad_json", body = crate::openapi::ErrorBody),
        (status = 401, description = "invalid_credentials", body = crate::openapi::ErrorBody),
        (status = 429, description = "too many failed sign-ins (Retry-After)", body = crate::openapi::ErrorBody)))]
pub async fn sign_in(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let c: Credentials = json_body(&read_body(body).await?)?;
    let ip = addr.ip();
    if let Some(wait) = state.sign_ins.blocked(&c.user_id, ip) {
        return Err(ApiError::rate_limited(wait));
    }
    let hash = state.store.password_hash(&c.user_id).await?;
    let password = c.password.clone();
    let ok = match hash {
        Some(h) => tokio::task::spawn_blocking(move || verify_password(&password, &h))
            .await
            .unwrap_or(false),
        None => false,
    };
    if !ok {
        state.sign_ins.failed(&c.user_id, ip);
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "wrong user id or password",
        ));
    }
    let (token, token_hash) = new_token();
    let ttl_ms = i64::try_from(state.config.session_ttl.as_millis()).unwrap_or(i64::MAX);
    state
        .store
        .put_session(
            &token_hash,
            &c.user_id,
            auth::now_ms().saturating_add(ttl_ms),
        )
        .await?;
    Ok(Json(json!({"token": token, "userId": c.user_id})))
}

/// Sign out: the token stops working and its sockets close (4001).
#[utoipa::path(delete, path = "/api/sessions/current", tag = "users", security(("bearer" = [])),
    responses((status = 204, description = "signed out"), (status = 401, description = "unauthorized", body = crate::openapi::ErrorBody)))]
pub async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let caller = auth::authenticate(&state, auth::bearer(&headers)).await?;
    state.store.delete_session(&caller.token_hash).await?;
    // Close that token's open sockets (4001).
    let _ = state.logouts.send(caller.token_hash);
    Ok(StatusCode::NO_CONTENT)
}
