//! [`AppState`]: what every handler shares, handed to the router with
//! `with_state` (no globals). Built by [`crate::run_with`].

use crate::appender::Appender;
use crate::auth::{AddressLimiter, PasswordPool, RateLimiter, SessionCache, SignInLimiter};
use crate::bus::Bus;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::store::Stores;
use axum::body::Bytes;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Shared by every handler: a handle to one [`Shared`], so that the
/// clones axum makes for each request's extractors and middleware cost one
/// reference count, not one per field.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`AppState`] holds.
pub struct Shared {
    pub config: Arc<Config>,
    pub stores: Stores,
    pub bus: Arc<dyn Bus>,
    pub appender: Appender,
    pub metrics: Arc<Metrics>,
    /// Sessions recently found in the store (`caller` reads it first).
    pub sessions: Arc<SessionCache>,
    /// `RATE_LIMIT_PER_USER`, per authenticated user.
    pub rate: Arc<RateLimiter>,
    /// Failed sign-ins per (user id, client address).
    pub sign_ins: Arc<SignInLimiter>,
    /// `SIGN_UPS_PER_MINUTE`, per client address.
    pub sign_ups: Arc<AddressLimiter>,
    /// `SIGN_INS_PER_MINUTE`, per client address.
    pub sign_in_attempts: Arc<AddressLimiter>,
    /// Where argon2 runs (bounded).
    pub passwords: Arc<PasswordPool>,
    /// Turns true when the server starts shutting down: open WebSockets
    /// close (1001) so that the graceful shutdown can finish.
    pub shutting_down: tokio::sync::watch::Receiver<bool>,
    /// Open WebSockets per user, for the per-user cap of `routes/ws.rs` (a
    /// std Mutex: held only to count, never across await).
    pub ws_open: Arc<Mutex<HashMap<String, usize>>>,
    /// The OpenAPI document (`crate::openapi`), serialized once at start.
    pub openapi_json: Bytes,
}
