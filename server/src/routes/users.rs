//! Users and sessions: sign-up, sign-in, sign-out.

use super::{client_ip, read_json};
use crate::api_types::{Session, SignIn, SignUp, UserCreated};
use crate::auth::{self, new_token, PoolBusy};
use crate::error::{ApiError, ErrorBody};
use crate::store::StoreError;
use crate::AppState;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use std::net::SocketAddr;

/// The password pool is full: come back in a second.
fn busy(_: PoolBusy) -> ApiError {
    ApiError::rate_limited(1)
}

/// Create a user.
///
/// Limited per client address (`SIGN_UPS_PER_MINUTE`, 20 a minute by
/// default). A taken id answers 409 before any hashing; the password is
/// hashed on a small pool, and when too many sign-ups and sign-ins wait for
/// it the answer is 429 with `Retry-After: 1`.
#[utoipa::path(post, path = "/api/users", tag = "users", request_body = SignUp,
    responses(
        (status = 201, description = "created", body = UserCreated),
        (status = 429, description = "rate_limited: too many sign-ups from this address, or too many password checks at once",
            headers(("Retry-After" = u64, description = "seconds to wait")), body = ErrorBody),
        (status = 413, description = "payload_too_large: body over 64 KiB", body = ErrorBody),
        (status = 400, description = "bad_json: not JSON, a wrong JSON type, or userId/password missing", body = ErrorBody),
        (status = 422, description = "invalid_id: userId not matching the id pattern, or a password outside 8–1024 characters", body = ErrorBody),
        (status = 409, description = "user_exists", body = ErrorBody),
        (status = 500, description = "internal: a bug", body = ErrorBody),
        (status = 503, description = "unavailable: the store cannot be reached", body = ErrorBody)))]
pub async fn create_user(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<UserCreated>), ApiError> {
    let ip = client_ip(&state, peer, &headers);
    state.sign_ups.check(ip).map_err(ApiError::rate_limited)?;
    let c: SignUp = read_json(body).await?;
    domain::validation::validate_id("userId", &c.user_id)?;
    domain::validation::validate_password(&c.password)?;
    // No argon2 for an id that is taken (create_user below still refuses
    // atomically when two sign-ups race for the same id).
    if state
        .stores
        .accounts
        .password_hash(&c.user_id)
        .await?
        .is_some()
    {
        return Err(ApiError::user_exists());
    }
    let hash = state
        .passwords
        .hash(c.password)
        .await
        .map_err(busy)?
        .map_err(|e| ApiError::internal(format!("password hashing failed: {e}")))?;
    match state.stores.accounts.create_user(&c.user_id, &hash).await {
        Ok(()) => Ok((
            StatusCode::CREATED,
            Json(UserCreated { user_id: c.user_id }),
        )),
        Err(StoreError::Exists) => Err(ApiError::user_exists()),
        Err(e) => Err(e.into()),
    }
}

/// Sign in: a bearer token.
///
/// Limited per client address (`SIGN_INS_PER_MINUTE`, 60 attempts a minute
/// by default, successful or not), and to 10 failures a minute per user id
/// and address: past that the pair is refused (429) whatever the password,
/// until a failure has drained (one every 6 s). An unknown user id takes as
/// long as a wrong password (the password is checked against a dummy hash).
#[utoipa::path(post, path = "/api/sessions", tag = "users", request_body = SignIn,
    responses(
        (status = 200, description = "signed in", body = Session),
        (status = 413, description = "payload_too_large: body over 64 KiB", body = ErrorBody),
        (status = 400, description = "bad_json: not JSON, a wrong JSON type, or userId/password missing", body = ErrorBody),
        (status = 401, description = "invalid_credentials: wrong user id or password", body = ErrorBody),
        (status = 429, description = "rate_limited: too many sign-in attempts from this address, too many failed sign-ins for this user id from this address, or too many password checks at once",
            headers(("Retry-After" = u64, description = "seconds to wait")), body = ErrorBody),
        (status = 500, description = "internal: a bug", body = ErrorBody),
        (status = 503, description = "unavailable: the store cannot be reached", body = ErrorBody)))]
pub async fn sign_in(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Session>, ApiError> {
    let ip = client_ip(&state, peer, &headers);
    state
        .sign_in_attempts
        .check(ip)
        .map_err(ApiError::rate_limited)?;
    let c: SignIn = read_json(body).await?;
    if let Some(wait) = state.sign_ins.blocked(&c.user_id, ip) {
        return Err(ApiError::rate_limited(wait));
    }
    let stored = state.stores.accounts.password_hash(&c.user_id).await?;
    let ok = state
        .passwords
        .verify(c.password, stored)
        .await
        .map_err(busy)?;
    if !ok {
        state.sign_ins.failed(&c.user_id, ip);
        return Err(ApiError::invalid_credentials());
    }
    let (token, token_hash) = new_token();
    let ttl_ms = i64::try_from(state.config.session_ttl.as_millis()).unwrap_or(i64::MAX);
    state
        .stores
        .accounts
        .put_session(
            &token_hash,
            &c.user_id,
            auth::now_ms().saturating_add(ttl_ms),
        )
        .await?;
    Ok(Json(Session {
        token,
        user_id: c.user_id,
    }))
}

/// Sign out: the token stops working and its sockets close (4001).
#[utoipa::path(delete, path = "/api/sessions/current", tag = "users", security(("bearer" = [])),
    responses(
        (status = 204, description = "signed out"),
        (status = 401, description = "unauthorized: no token, unknown token, or expired token", body = ErrorBody),
        (status = 500, description = "internal: a bug", body = ErrorBody),
        (status = 503, description = "unavailable: the store cannot be reached", body = ErrorBody)))]
pub async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let caller = auth::authenticate(&*state.stores.accounts, super::bearer(&headers)).await?;
    state
        .stores
        .accounts
        .delete_session(&caller.token_hash)
        .await?;
    state.sessions.forget(&caller.token_hash);
    // Close that token's open sockets (4001), and forget the session on
    // the other instances.
    state.bus.logout(&caller.token_hash);
    Ok(StatusCode::NO_CONTENT)
}
