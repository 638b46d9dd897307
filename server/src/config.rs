//! Configuration from the environment (names and defaults of ../shared/API.md).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct Config {
    pub bind: SocketAddr,
    pub data_dir: PathBuf,
    pub mongodb_uri: Option<String>,
    pub mongodb_db: String,
    pub redis_url: Option<String>,
    pub static_dir: PathBuf,
    /// Requests per second per user; 0 turns the limit off.
    pub rate_limit_per_user: u32,
    pub session_ttl: Duration,
    pub snapshot_every: u64,
    /// Room states the writer keeps in memory (least recently used dropped
    /// beyond that). Not in the contract; tests lower it.
    pub rooms_in_memory: usize,
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
        }
    }
}

impl Config {
    pub fn from_env() -> Result<Self, String> {
        let mut c = Config::default();
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        if let Some(v) = var("BIND") {
            c.bind = v.parse().map_err(|e| format!("BIND: {e}"))?;
        }
        if let Some(v) = var("DATA_DIR") {
            c.data_dir = v.into();
        }
        c.mongodb_uri = var("MONGODB_URI");
        if let Some(v) = var("MONGODB_DB") {
            c.mongodb_db = v;
        }
        c.redis_url = var("REDIS_URL");
        if let Some(v) = var("STATIC_DIR") {
            c.static_dir = v.into();
        }
        if let Some(v) = var("RATE_LIMIT_PER_USER") {
            c.rate_limit_per_user = v.parse().map_err(|e| format!("RATE_LIMIT_PER_USER: {e}"))?;
        }
        if let Some(v) = var("SESSION_TTL") {
            c.session_ttl =
                humantime::parse_duration(&v).map_err(|e| format!("SESSION_TTL: {e}"))?;
        }
        if let Some(v) = var("SNAPSHOT_EVERY") {
            c.snapshot_every = v.parse().map_err(|e| format!("SNAPSHOT_EVERY: {e}"))?;
            if c.snapshot_every == 0 {
                return Err("SNAPSHOT_EVERY must be at least 1".into());
            }
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
