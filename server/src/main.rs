//! Starts the chat server with the configuration from the environment.

use server::config::Config;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() {
    // Structured logs: key=value lines, or JSON lines with LOG_FORMAT=json.
    // Only paths are logged, never query strings (the WebSocket token is there).
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    if std::env::var("LOG_FORMAT").as_deref() == Ok("json") {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("configuration: {e}");
            std::process::exit(2);
        }
    };
    let listener = match tokio::net::TcpListener::bind(config.bind).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cannot listen on {}: {e}", config.bind);
            std::process::exit(1);
        }
    };
    tracing::info!(addr = %config.bind, data_dir = %config.data_dir.display(), "listening");
    if let Err(e) = server::run(config, listener, shutdown_signal()).await {
        eprintln!("server: {e}");
        std::process::exit(1);
    }
    tracing::info!("stopped");
}

/// SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
