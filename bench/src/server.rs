//! The server under test: the release binary started as a process of its
//! own (so that its CPU time and memory can be read apart from the load
//! generator's), on a free loopback port, with a fresh data directory and
//! the rate limit off; and the HTTP calls every scenario needs.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Server {
    child: Child,
    pub base: String,
    pub http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Starts `bin` with `env` added; waits until `/healthz` answers.
    pub async fn start(bin: &Path, env: &[(&str, String)]) -> Server {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(bin)
            .env("BIND", format!("127.0.0.1:{port}"))
            .env("DATA_DIR", dir.path().join("data"))
            .env("STATIC_DIR", dir.path().join("no-web-app"))
            .env("RATE_LIMIT_PER_USER", "0")
            .env("RUST_LOG", "warn")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("{} starts: {e}", bin.display()));
        let server = Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
            _dir: dir,
        };
        let started = Instant::now();
        loop {
            let up = server.http.get(server.url("/healthz")).send().await;
            if up.is_ok_and(|r| r.status().is_success()) {
                return server;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the server answers /healthz"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The data directory's size on disk, in bytes: the blocks its files
    /// take (redb's file is sparse: its length is up to twice that).
    pub fn data_bytes(&self) -> u64 {
        use std::os::unix::fs::MetadataExt;
        fn walk(p: &Path) -> u64 {
            std::fs::read_dir(p).map_or(0, |entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|e| match e.metadata() {
                        Ok(m) if m.is_dir() => walk(&e.path()),
                        Ok(m) => m.blocks() * 512,
                        Err(_) => 0,
                    })
                    .sum()
            })
        }
        walk(&self._dir.path().join("data"))
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("{}{path}", self.base.replacen("http://", "ws://", 1))
    }

    /// Signs a new user up and in; its token.
    pub async fn user(&self, name: &str) -> String {
        let creds = json!({"userId": name, "password": "benchmark password"});
        let r = self
            .http
            .post(self.url("/api/users"))
            .json(&creds)
            .send()
            .await;
        assert!(r.expect("sign-up").status().is_success(), "sign-up");
        let r = self
            .http
            .post(self.url("/api/sessions"))
            .json(&creds)
            .send()
            .await;
        let v: Value = r.expect("sign-in").json().await.expect("a session");
        v["token"].as_str().expect("a token").to_owned()
    }

    pub async fn room(&self, token: &str, room: &str) {
        let r = self
            .http
            .post(self.url("/api/rooms"))
            .bearer_auth(token)
            .json(&json!({"roomId": room, "name": room}))
            .send()
            .await;
        assert!(r.expect("a room").status().is_success(), "room {room}");
    }

    /// An unlabelled metric's value (0 when absent).
    pub async fn metric(&self, name: &str) -> f64 {
        let text = match self.http.get(self.url("/metrics")).send().await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The release server binary next to this one (`cargo build --release -p
/// server` puts it there), or `SERVER_BIN`.
pub fn binary() -> PathBuf {
    if let Ok(bin) = std::env::var("SERVER_BIN") {
        return bin.into();
    }
    let me = std::env::current_exe().expect("this binary's path");
    let bin = me.with_file_name("server");
    assert!(
        bin.exists(),
        "{} is missing: cargo build --release -p server (or set SERVER_BIN)",
        bin.display()
    );
    bin
}
