//! The chat server: REST + WebSocket API of docs/api.md over an event
//! store and a fan-out bus. `main.rs` only reads the configuration and calls
//! [`run`]; tests start the same [`run`] on port 0.

pub mod api_types;
pub mod app_state;
pub mod appender;
pub mod auth;
pub mod bus;
pub mod config;
pub mod error;
pub mod metrics;
pub mod openapi;
pub mod routes;
pub mod store;

pub use app_state::AppState;
use appender::Appender;
use auth::{RateLimiter, SignInLimiter};
use bus::{Bus, LocalBus};
use config::Config;
use metrics::Metrics;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use store::embedded::EmbeddedStore;
use store::Store;
use tokio::net::TcpListener;

/// The store and the bus a server runs on.
pub type Backends = (Arc<dyn Store>, Arc<dyn Bus>);

/// Opens the store and the bus the configuration names.
pub fn open_backends(config: &Config) -> Result<Backends, String> {
    if config.mongodb_uri.is_some() {
        return Err("MONGODB_URI is not supported yet; unset it to use the embedded store".into());
    }
    if config.redis_url.is_some() {
        return Err("REDIS_URL is not supported yet; unset it to use in-process fan-out".into());
    }
    let store = EmbeddedStore::open(&config.data_dir).map_err(|e| e.to_string())?;
    Ok((Arc::new(store), Arc::new(LocalBus::default())))
}

/// Serves until `shutdown` resolves, then finishes in-flight requests and
/// appends before returning.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let backends = open_backends(&config)?;
    run_with(config, backends, listener, shutdown).await
}

/// [`run`] on backends the caller opened (tests wrap the store to inject
/// faults; nothing of that is in the binary).
pub async fn run_with(
    config: Config,
    (store, bus): Backends,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let metrics = Arc::new(Metrics::new());
    let (appender, writer) = Appender::start(
        store.clone(),
        bus.clone(),
        metrics.clone(),
        config.snapshot_every,
        config.rooms_in_memory,
    );
    let per_second = f64::from(config.rate_limit_per_user);
    let (shutdown_tx, shutting_down) = tokio::sync::watch::channel(false);
    let state = AppState {
        config: Arc::new(config),
        store,
        bus,
        appender,
        metrics,
        rate: Arc::new(RateLimiter::new(per_second, per_second * 5.0)),
        sign_ins: Arc::new(SignInLimiter::new()),
        logouts: tokio::sync::broadcast::channel(256).0,
        shutting_down,
        ws_open: Arc::default(),
        openapi_json: serde_json::to_vec(&openapi::document())
            .expect("the OpenAPI document serializes")
            .into(),
    };
    let app = routes::router(state);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown.await;
        let _ = shutdown_tx.send(true);
    })
    .await
    .map_err(|e| e.to_string())?;
    // Every handle of the appender is gone with the router: the writer
    // finishes the appends already queued, then ends.
    let _ = writer.await;
    Ok(())
}
