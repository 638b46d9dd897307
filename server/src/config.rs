//! The command line and configuration of the server binary: every setting
//! is a flag and an environment variable (the names and defaults of
//! docs/api.md), parsed and checked by clap, so `server --help` lists them
//! and a bad value stops the server with an error naming the variable.

use clap::builder::RangedU64ValueParser;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use std::ffi::OsString;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// The event-sourced chat server: REST + WebSocket API over an event log.
#[derive(Clone, Debug, Parser)]
#[command(
    name = "server",
    version,
    after_help = "Every option can also be set by the environment variable in its brackets \
                  (an empty variable counts as unset); a flag wins over the variable."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub config: Config,
    #[command(flatten)]
    pub logging: Logging,
}

/// What the binary does; no command means [`Command::Serve`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Serve the API and the web app (what runs when no command is given).
    #[default]
    Serve,
    /// Compute every room's projection (view rows, read markers, unread
    /// counts) again from its events, with no server writing to the store.
    RebuildProjections,
}

/// What the server runs with. Tests build it as
/// `Config { data_dir, ..Config::default() }`; [`Default`] gives the same
/// values as the command line with no flags and no environment.
#[derive(Clone, Debug, PartialEq, clap::Args)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "BIND", default_value = "127.0.0.1:8080", global = true)]
    pub bind: SocketAddr,
    /// Directory of the embedded store (used when MONGODB_URI is unset).
    #[arg(long, env = "DATA_DIR", default_value = "./data", global = true)]
    pub data_dir: PathBuf,
    /// Use MongoDB as the event store and view store (mongodb://…; a replica set in production).
    #[arg(long, env = "MONGODB_URI", hide_env_values = true, global = true)]
    pub mongodb_uri: Option<String>,
    /// MongoDB database name.
    #[arg(long, env = "MONGODB_DB", default_value = "chat", global = true)]
    pub mongodb_db: String,
    /// Use Redis pub/sub to pass events and logouts between server instances (redis://host:port/).
    #[arg(long, env = "REDIS_URL", hide_env_values = true, global = true)]
    pub redis_url: Option<String>,
    /// Directory of the built web app, served at / and other non-API paths.
    #[arg(long, env = "STATIC_DIR", default_value = "./dist", global = true)]
    pub static_dir: PathBuf,
    /// Requests per second per user, HTTP and WebSocket submits alike (bursts of 5×); 0 turns it off.
    #[arg(
        long,
        env = "RATE_LIMIT_PER_USER",
        default_value_t = 100,
        global = true
    )]
    pub rate_limit_per_user: u32,
    /// How long a session token lives (e.g. 30d, 12h, 90s).
    #[arg(long, env = "SESSION_TTL", default_value = "30d",
        value_parser = humantime::parse_duration, global = true)]
    pub session_ttl: Duration,
    /// The least number of events between two snapshots of a room (at least 1).
    #[arg(long, env = "SNAPSHOT_EVERY", default_value_t = 100,
        value_parser = RangedU64ValueParser::<u64>::new().range(1..), global = true)]
    pub snapshot_every: u64,
    /// Room states the writer keeps in memory, least recently used dropped beyond (at least 1).
    #[arg(long, env = "ROOMS_IN_MEMORY", default_value_t = 1024,
        value_parser = RangedU64ValueParser::<usize>::new().range(1..), global = true)]
    pub rooms_in_memory: usize,
    /// Memory the room states kept for appending may hold together, in MiB (at least 1); least recently used dropped beyond.
    #[arg(long, env = "ROOMS_MEMORY_MIB", default_value_t = 256,
        value_parser = RangedU64ValueParser::<usize>::new().range(1..), global = true)]
    pub rooms_memory_mib: usize,
    /// Writers that append, each for its share of the rooms (by a hash of the room id), so that one slow room holds up only its share (1 to 64; the room-state limits above are split among them). Default: the store's (MongoDB 4; the embedded store 1, as redb commits one transaction at a time).
    #[arg(long, env = "APPEND_WRITERS",
        value_parser = RangedU64ValueParser::<usize>::new().range(1..=64), global = true)]
    pub append_writers: Option<usize>,
    /// Memory for the embedded store's page cache, in MiB (at least 1): what the store keeps of the data file in memory.
    #[arg(long, env = "STORE_CACHE_MIB", default_value_t = 64,
        value_parser = RangedU64ValueParser::<usize>::new().range(1..), global = true)]
    pub store_cache_mib: usize,
    /// How often an open WebSocket is pinged (e.g. 30s); one that sends nothing, not even a pong, for two of these is closed.
    #[arg(long, env = "WS_PING_INTERVAL", default_value = "30s",
        value_parser = positive_duration, global = true)]
    pub ws_ping_interval: Duration,
    /// Sign-ups a minute per client address (bursts of as many); 0 turns it off.
    #[arg(long, env = "SIGN_UPS_PER_MINUTE", default_value_t = 20, global = true)]
    pub sign_ups_per_minute: u32,
    /// Sign-in attempts a minute per client address, successful or not (bursts of as many); 0 turns it off.
    #[arg(long, env = "SIGN_INS_PER_MINUTE", default_value_t = 60, global = true)]
    pub sign_ins_per_minute: u32,
    /// Proxies whose X-Forwarded-For names the client (comma-separated IPs); none by default.
    #[arg(long, env = "TRUSTED_PROXIES", value_delimiter = ',', value_parser = trimmed_ip,
        global = true)]
    pub trusted_proxies: Vec<IpAddr>,
    /// Open connections at most; at the limit the one idle the longest makes room, or, all busy, 503 (at least 1).
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = 1024,
        value_parser = RangedU64ValueParser::<usize>::new().range(1..), global = true)]
    pub max_connections: usize,
    /// How long the server waits on a client: for a request's headers, its body, an idle
    /// keep-alive connection's next request, and any stalled write (e.g. 10s).
    #[arg(long, env = "CLIENT_TIMEOUT", default_value = "10s",
        value_parser = positive_duration, global = true)]
    pub client_timeout: Duration,
}

/// An IP address, spaces around it allowed (`TRUSTED_PROXIES=10.0.0.1, ::1`).
fn trimmed_ip(s: &str) -> Result<IpAddr, String> {
    s.trim()
        .parse()
        .map_err(|e| format!("{e}: not an IP address"))
}

/// A duration above zero (`10s`, `500ms`).
fn positive_duration(s: &str) -> Result<Duration, String> {
    match humantime::parse_duration(s) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err("must be above zero".into()),
        Err(e) => Err(e.to_string()),
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: "127.0.0.1:8080".parse().expect("valid default"),
            data_dir: "./data".into(),
            mongodb_uri: None,
            mongodb_db: "chat".into(),
            redis_url: None,
            static_dir: "./dist".into(),
            rate_limit_per_user: 100,
            session_ttl: Duration::from_secs(30 * 24 * 3600),
            snapshot_every: 100,
            rooms_in_memory: 1024,
            rooms_memory_mib: 256,
            append_writers: None,
            store_cache_mib: 64,
            ws_ping_interval: Duration::from_secs(30),
            sign_ups_per_minute: 20,
            sign_ins_per_minute: 60,
            trusted_proxies: Vec::new(),
            max_connections: 1024,
            client_timeout: Duration::from_secs(10),
        }
    }
}

/// How the binary logs (main.rs sets it up; the library only emits).
#[derive(Clone, Debug, PartialEq, clap::Args)]
pub struct Logging {
    /// Log lines as text (key=value) or json (one object a line).
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// Which logs to write: tracing EnvFilter directives, e.g. `info` or `warn,server=debug`.
    #[arg(long, env = "RUST_LOG", value_name = "RUST_LOG", default_value = "info",
        value_parser = log_filter, global = true)]
    pub log_filter: String,
}

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    // No doc comments here: clap would show them as a long list in --help.
    Text,
    Json,
}

/// Checks a log filter the way tracing-subscriber will read it.
fn log_filter(s: &str) -> Result<String, String> {
    tracing_subscriber::EnvFilter::try_new(s)
        .map(|_| s.to_owned())
        .map_err(|e| e.to_string())
}

impl Cli {
    /// The command line and the environment of this process, or the exit
    /// clap gives (the help and the version with 0, a bad value with 2).
    pub fn from_process() -> Self {
        Self::try_from(Self::command_without_empty_env(), std::env::args_os())
            .unwrap_or_else(|e| e.exit())
    }

    /// Parses `args` with `command` (the first item is the program's name).
    pub fn try_from(
        command: clap::Command,
        args: impl IntoIterator<Item = impl Into<OsString> + Clone>,
    ) -> Result<Self, clap::Error> {
        let mut matches: ArgMatches = command.try_get_matches_from(args)?;
        Self::from_arg_matches_mut(&mut matches)
    }

    /// The command, with the variables that are set but empty treated as
    /// unset (clap alone would parse their empty value).
    pub fn command_without_empty_env() -> clap::Command {
        Self::command().mut_args(|arg| {
            let empty = arg
                .get_env()
                .and_then(std::env::var_os)
                .is_some_and(|v| v.is_empty());
            if empty {
                arg.env(None)
            } else {
                arg
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The command with no environment at all, whatever the test process has.
    fn without_env() -> clap::Command {
        Cli::command().mut_args(|arg| arg.env(None))
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_from(
            without_env(),
            std::iter::once("server").chain(args.iter().copied()),
        )
    }

    #[test]
    fn the_default_config_is_what_an_empty_command_line_gives() {
        let cli = parse(&[]).unwrap();
        assert_eq!(cli.config, Config::default());
        assert_eq!(cli.command, None);
        assert_eq!(
            cli.logging,
            Logging {
                log_format: LogFormat::Text,
                log_filter: "info".into()
            }
        );
    }

    #[test]
    fn durations_read_as_the_contract_writes_them() {
        assert_eq!(
            humantime::parse_duration("30d").unwrap(),
            Duration::from_secs(30 * 24 * 3600)
        );
        assert_eq!(
            humantime::parse_duration("90s").unwrap(),
            Duration::from_secs(90)
        );
        assert_eq!(
            Config::default().session_ttl,
            Duration::from_secs(30 * 24 * 3600)
        );
        let cli = parse(&["--session-ttl", "90s"]).unwrap();
        assert_eq!(cli.config.session_ttl, Duration::from_secs(90));
    }

    #[test]
    fn flags_set_every_setting() {
        let cli = parse(&[
            "--bind=0.0.0.0:9000",
            "--data-dir=/tmp/d",
            "--mongodb-uri=mongodb://m",
            "--mongodb-db=db",
            "--redis-url=redis://r",
            "--static-dir=/tmp/s",
            "--rate-limit-per-user=0",
            "--session-ttl=12h",
            "--snapshot-every=7",
            "--rooms-in-memory=3",
            "--rooms-memory-mib=32",
            "--append-writers=2",
            "--store-cache-mib=16",
            "--ws-ping-interval=5s",
            "--sign-ups-per-minute=0",
            "--sign-ins-per-minute=7",
            "--trusted-proxies=10.0.0.1, ::1",
            "--max-connections=9",
            "--client-timeout=1500ms",
            "--log-format=json",
            "--log-filter=warn,server=debug",
        ])
        .unwrap();
        assert_eq!(
            cli.config,
            Config {
                bind: "0.0.0.0:9000".parse().unwrap(),
                data_dir: "/tmp/d".into(),
                mongodb_uri: Some("mongodb://m".into()),
                mongodb_db: "db".into(),
                redis_url: Some("redis://r".into()),
                static_dir: "/tmp/s".into(),
                rate_limit_per_user: 0,
                session_ttl: Duration::from_secs(12 * 3600),
                snapshot_every: 7,
                rooms_in_memory: 3,
                rooms_memory_mib: 32,
                append_writers: Some(2),
                store_cache_mib: 16,
                ws_ping_interval: Duration::from_secs(5),
                sign_ups_per_minute: 0,
                sign_ins_per_minute: 7,
                trusted_proxies: vec!["10.0.0.1".parse().unwrap(), "::1".parse().unwrap()],
                max_connections: 9,
                client_timeout: Duration::from_millis(1500),
            }
        );
        assert_eq!(cli.logging.log_format, LogFormat::Json);
        assert_eq!(cli.logging.log_filter, "warn,server=debug");
    }

    #[test]
    fn serve_is_the_only_command_and_takes_the_options_too() {
        let cli = parse(&["serve", "--bind", "127.0.0.1:1"]).unwrap();
        assert_eq!(cli.command, Some(Command::Serve));
        assert_eq!(cli.config.bind, "127.0.0.1:1".parse().unwrap());
        assert!(parse(&["rebuild"]).is_err());
    }

    #[test]
    fn bad_values_are_refused_naming_the_setting() {
        for (args, name) in [
            (&["--rate-limit-per-user", "abc"][..], "RATE_LIMIT_PER_USER"),
            (&["--rate-limit-per-user=-1"][..], "RATE_LIMIT_PER_USER"),
            (&["--snapshot-every", "0"][..], "SNAPSHOT_EVERY"),
            (&["--rooms-in-memory", "0"][..], "ROOMS_IN_MEMORY"),
            (&["--ws-ping-interval", "0s"][..], "WS_PING_INTERVAL"),
            (&["--ws-ping-interval", "often"][..], "WS_PING_INTERVAL"),
            (
                &["--trusted-proxies", "10.0.0.1,proxy"][..],
                "TRUSTED_PROXIES",
            ),
            (&["--max-connections", "0"][..], "MAX_CONNECTIONS"),
            (&["--client-timeout", "0s"][..], "CLIENT_TIMEOUT"),
            (&["--sign-ups-per-minute=-1"][..], "SIGN_UPS_PER_MINUTE"),
            (&["--bind", "nope"][..], "BIND"),
            (&["--session-ttl", "forever"][..], "SESSION_TTL"),
            (&["--log-format", "xml"][..], "LOG_FORMAT"),
            (&["--log-filter", "server=loud"][..], "RUST_LOG"),
        ] {
            let e = parse(args).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{args:?}");
            assert!(e.to_string().contains(name), "{args:?}: {e}");
        }
    }
}
