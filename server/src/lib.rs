//! The chat server: REST + WebSocket API of docs/api.md over an event
//! store and a fan-out bus. `main.rs` only reads the configuration and calls
//! [`run`]; tests start the same [`run`] on port 0.

pub mod api_types;
pub mod app_state;
pub mod appender;
pub mod auth;
pub mod backstop;
pub mod bus;
pub mod config;
pub mod error;
pub mod maintenance;
pub mod metrics;
pub mod openapi;
pub mod rebuild;
pub mod routes;
pub mod serve;
pub mod store;

pub use app_state::AppState;
use appender::{Appender, RoomCache};
use auth::{AddressLimiter, PasswordPool, RateLimiter, SessionCache, SignInLimiter};
use bus::redis::RedisBus;
use bus::{Bus, LocalBus};
use config::Config;
use metrics::Metrics;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use store::embedded::EmbeddedStore;
use store::mongo::MongoStore;
use store::Stores;
use tokio::net::TcpListener;

/// The stores and the bus a server runs on.
pub type Backends = (Stores, Arc<dyn Bus>);

/// Opens the stores and the bus the configuration names: the one place
/// that picks their implementations.
pub async fn open_backends(config: &Config) -> Result<Backends, String> {
    let bus: Arc<dyn Bus> = match &config.redis_url {
        Some(url) => Arc::new(RedisBus::start(url)?),
        None => Arc::new(LocalBus::default()),
    };
    let stores = match &config.mongodb_uri {
        Some(uri) => Stores::all_in_one(Arc::new(MongoStore::open(uri, &config.mongodb_db).await?)),
        None => Stores::all_in_one(Arc::new(
            EmbeddedStore::open_with_cache(&config.data_dir, config.store_cache_mib << 20)
                .map_err(|e| e.to_string())?,
        )),
    };
    Ok((stores, bus))
}

/// Serves until `shutdown` resolves, then finishes in-flight requests and
/// appends before returning.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let backends = open_backends(&config).await?;
    run_with(config, backends, listener, shutdown).await
}

/// [`run`] on backends the caller opened (tests wrap the store to inject
/// faults; nothing of that is in the binary).
pub async fn run_with(
    config: Config,
    (stores, bus): Backends,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let metrics = Arc::new(Metrics::new());
    let writers = config
        .append_writers
        .unwrap_or_else(|| stores.events.writers());
    // A writer on a thread of its own has a runtime of its own: an epoll
    // descriptor, an eventfd and a signal pipe.
    let writer_descriptors = if stores.events.blocks() {
        4 * writers as u64
    } else {
        0
    };
    let (appender, writer) = Appender::start(
        stores.clone(),
        bus.clone(),
        metrics.clone(),
        config.snapshot_every,
        RoomCache {
            rooms: config.rooms_in_memory,
            bytes: config.rooms_memory_mib << 20,
        },
        writers,
    );
    let per_user = config.rate_limit_per_user;
    let (shutdown_tx, shutting_down) = tokio::sync::watch::channel(false);
    // One argon2 run for the dummy hash: on the blocking pool.
    let passwords = tokio::task::spawn_blocking(|| {
        PasswordPool::new(PasswordPool::default_threads(), PASSWORD_QUEUE)
    })
    .await
    .map_err(|e| e.to_string())?;
    // A session found in the store is trusted for a while. On one instance
    // only its own logouts end sessions, and they clear it at once; behind a
    // bus that may lose another instance's logout, for a second (as the
    // sockets' rechecks, `routes/ws.rs`).
    let sessions = Arc::new(SessionCache::new(if bus.may_lose() {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(60)
    }));
    let forgetting = tokio::spawn(auth::forget_logouts(sessions.clone(), bus.logouts()));
    let state = AppState::new(app_state::Shared {
        sessions,
        rate: Arc::new(RateLimiter::new(per_user, per_user.saturating_mul(5))),
        sign_ins: Arc::new(SignInLimiter::new()),
        sign_ups: Arc::new(AddressLimiter::per_minute(config.sign_ups_per_minute)),
        sign_in_attempts: Arc::new(AddressLimiter::per_minute(config.sign_ins_per_minute)),
        passwords: Arc::new(passwords),
        config: Arc::new(config),
        stores,
        bus,
        appender,
        metrics,
        shutting_down,
        ws_open: Arc::default(),
        openapi_json: serde_json::to_vec(&openapi::document())
            .expect("the OpenAPI document serializes")
            .into(),
    });
    // Housekeeping holds no appender handle: the writer below can end.
    let housekeeping = tokio::spawn(maintenance::run(
        maintenance::Limiters {
            per_user: state.rate.clone(),
            sign_ups: state.sign_ups.clone(),
            sign_in_attempts: state.sign_in_attempts.clone(),
            failed_sign_ins: state.sign_ins.clone(),
        },
        state.stores.accounts.clone(),
        state.metrics.clone(),
        state.config.session_ttl,
        state.shutting_down.clone(),
    ));
    // Projections that lag their events (the process died between the two)
    // are caught up from the events.
    let stores = state.stores.clone();
    let catch_ups = state.appender.catch_ups().clone();
    let catching_up = tokio::spawn(async move {
        match rebuild::catch_up_all(&stores).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(rooms = n, "projections caught up with their events"),
            Err(e) => {
                tracing::warn!(error = %e, "catching projections up failed; reads catch up their room")
            }
        }
    });
    let backstop = tokio::spawn(backstop::run(
        state.stores.events.clone(),
        state.bus.clone(),
        state.metrics.clone(),
        state.shutting_down.clone(),
    ));
    let settings = serve::Settings {
        max_connections: usable_connections(state.config.max_connections, writer_descriptors),
        client_timeout: state.config.client_timeout,
    };
    let metrics = state.metrics.clone();
    let app = routes::router(state);
    serve::serve(listener, app, settings, metrics, shutdown, move || {
        let _ = shutdown_tx.send(true);
    })
    .await;
    let _ = housekeeping.await;
    let _ = backstop.await;
    // Every handle of the appender is gone with the router: the writer
    // finishes the appends already queued, then ends.
    let _ = writer.await;
    // Catching up stops with the server: the next start does it again.
    catching_up.abort();
    catch_ups.stop();
    forgetting.abort();
    Ok(())
}

/// Sign-ups and sign-ins that may wait for the password pool; more at once
/// are answered 429.
pub const PASSWORD_QUEUE: usize = 32;

/// Descriptors kept for everything but client connections: the store,
/// logs, evicted connections not yet closed (`serve::MAX_EVICTING`) and
/// refusals being written; the writers' runtimes come on top.
const SPARE_DESCRIPTORS: u64 = 128;

/// `MAX_CONNECTIONS`, lowered (with a warning) when the process may not
/// open that many files: past the limit `accept` fails and nothing answers,
/// /healthz included.
fn usable_connections(wanted: usize, writer_descriptors: u64) -> usize {
    let Some(limit) = open_files_limit() else {
        return wanted;
    };
    let spare = SPARE_DESCRIPTORS + writer_descriptors;
    let usable = usize::try_from(limit.saturating_sub(spare).max(1)).unwrap_or(wanted);
    if usable < wanted {
        tracing::warn!(
            max_connections = wanted,
            open_files_limit = limit,
            using = usable,
            "MAX_CONNECTIONS is above what the open-files limit allows; raise `ulimit -n`"
        );
        usable
    } else {
        wanted
    }
}

/// The soft limit on open files of this process (Linux: /proc/self/limits).
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}
