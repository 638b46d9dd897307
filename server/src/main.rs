//! The server binary: parses the command line and the environment
//! (`server --help`), sets up logging, and runs the command (serving, when
//! none is given). A bad setting exits with code 2 before anything starts.

use server::config::{Cli, Command, Config, LogFormat, Logging};
use tracing::Level;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() {
    let cli = Cli::from_process();
    init_logging(&cli.logging);
    match cli.command.unwrap_or_default() {
        Command::Serve => serve(cli.config).await,
        Command::RebuildProjections => rebuild_projections(cli.config).await,
    }
}

async fn rebuild_projections(config: Config) {
    let result = match server::open_backends(&config).await {
        Ok((stores, _)) => server::rebuild::rebuild_projections(&stores)
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e),
    };
    match result {
        Ok(done) => println!(
            "rebuilt the projections of {} rooms from {} events",
            done.rooms, done.events
        ),
        Err(e) => {
            eprintln!("rebuild-projections: {e}");
            std::process::exit(1);
        }
    }
}

/// Structured logs: key=value lines, or JSON lines. Only paths are logged,
/// never query strings (the WebSocket token is there), and never message
/// text: tungstenite logs frame payloads at debug and trace level, so its
/// logs stop at info whatever `RUST_LOG` says.
fn init_logging(logging: &Logging) {
    let filter = EnvFilter::new(&logging.log_filter);
    let no_payloads =
        filter_fn(|meta| *meta.level() <= Level::INFO || !meta.target().contains("tungstenite"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter);
    match logging.log_format {
        LogFormat::Json => logs.json().finish().with(no_payloads).init(),
        LogFormat::Text => logs.finish().with(no_payloads).init(),
    }
}

async fn serve(config: Config) {
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
