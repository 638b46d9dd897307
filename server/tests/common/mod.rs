//! Helpers of the integration tests: a real server on a loopback port, and
//! small HTTP helpers.
#![allow(dead_code)]

pub mod raw_ws;

use futures_util::{SinkExt, StreamExt};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use server::config::Config;
use std::path::Path;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use uuid::Uuid;

pub struct TestServer {
    pub base: String,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), String>>,
}

impl TestServer {
    /// The test configuration: the embedded store in `dir` and the bus in
    /// process, or, when `TEST_MONGODB_URI` and `TEST_REDIS_URL` are set (the
    /// test command sets them for a second run of the suites), a fresh
    /// database of that MongoDB server and that Redis as the bus.
    pub fn config(dir: &Path, rate: u32) -> Config {
        Config {
            data_dir: dir.to_path_buf(),
            mongodb_uri: std::env::var("TEST_MONGODB_URI").ok(),
            redis_url: std::env::var("TEST_REDIS_URL").ok(),
            // One database per data directory: a restart on the same
            // directory finds its data again.
            mongodb_db: format!(
                "test_{}",
                dir.to_string_lossy()
                    .replace(|c: char| !c.is_ascii_alphanumeric(), "")
                    .chars()
                    .rev()
                    .take(40)
                    .collect::<String>()
            ),
            static_dir: dir.join("no-web-app"),
            rate_limit_per_user: rate,
            snapshot_every: 10,
            ..Config::default()
        }
    }

    pub async fn start(dir: &Path, rate: u32) -> Self {
        Self::start_with(Self::config(dir, rate), None).await
    }

    /// Starts with this configuration, on these backends (or those the
    /// configuration names).
    pub async fn start_with(config: Config, backends: Option<server::Backends>) -> Self {
        let backends = match backends {
            Some(b) => b,
            None => server::open_backends(&config).await.unwrap(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(server::run_with(config, backends, listener, async {
            let _ = stopped.await;
        }));
        TestServer {
            base,
            stop: Some(stop),
            task,
        }
    }

    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(10), &mut self.task)
            .await
            .expect("the server stops")
            .unwrap()
            .unwrap();
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("{}{}", self.base.replace("http://", "ws://"), path)
    }
}

/// Signs `name` up and in on `s`; its token.
pub async fn user(c: &Client, s: &TestServer, name: &str) -> String {
    user_at(c, &s.base, name).await
}

/// A new session of `name` (signed up by [`user`]): its token.
pub async fn sign_in(c: &Client, s: &TestServer, name: &str) -> String {
    let (status, body) = post_public(
        c,
        s,
        "/api/sessions",
        json!({"userId": name, "password": "correct horse"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["token"].as_str().unwrap().to_owned()
}

/// [`user`] on the server at `base` (`http://host:port`).
pub async fn user_at(c: &Client, base: &str, name: &str) -> String {
    let r = c
        .post(format!("{base}/api/users"))
        .json(&json!({"userId": name, "password": "correct horse"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r: Value = c
        .post(format!("{base}/api/sessions"))
        .json(&json!({"userId": name, "password": "correct horse"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["token"].as_str().unwrap().to_owned()
}

/// Tries a store that stalls (`503 unavailable`, the commit not answered
/// within 3 s) gets before a test gives up: SecantusDB, the Python MongoDB
/// server of the suites, pauses now and then for longer than that (a CI
/// run saw 5 tries in a row fail, late in its MongoDB suites). A client
/// retries with the same request, as the contract says. Each `503` of a
/// stall comes after the server's own 3 s wait, so 20 tries ride out about
/// a minute of it; the assertions on seqs and content still catch a retry
/// that was stored twice.
const UNAVAILABLE_TRIES: usize = 20;

/// Creates room `id`; a `503` is retried (a `409` then means the commit
/// that was not answered in time was written).
pub async fn room(c: &Client, s: &TestServer, token: &str, id: &str) {
    for attempt in 1..=UNAVAILABLE_TRIES {
        let r = c
            .post(s.url("/api/rooms"))
            .bearer_auth(token)
            .json(&json!({"roomId": id, "name": "Room"}))
            .send()
            .await
            .unwrap();
        match r.status() {
            StatusCode::SERVICE_UNAVAILABLE if attempt < UNAVAILABLE_TRIES => continue,
            StatusCode::CONFLICT if attempt > 1 => return,
            status => {
                assert_eq!(status, StatusCode::CREATED);
                return;
            }
        }
    }
}

pub async fn post(
    c: &Client,
    s: &TestServer,
    token: &str,
    room: &str,
    body: Value,
) -> (StatusCode, Value) {
    let r = c
        .post(s.url(&format!("/api/rooms/{room}/events")))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// [`post`], retrying a `503 unavailable` with the same event, as a client
/// does: `201`, or `200` with the stored event when the commit that was not
/// answered in time was written.
pub async fn post_retrying(
    c: &Client,
    s: &TestServer,
    token: &str,
    room: &str,
    body: Value,
) -> (StatusCode, Value) {
    for _ in 1..UNAVAILABLE_TRIES {
        let (status, v) = post(c, s, token, room, body.clone()).await;
        if status != StatusCode::SERVICE_UNAVAILABLE || code(&v) != "unavailable" {
            return (status, v);
        }
    }
    post(c, s, token, room, body).await
}

pub async fn get(c: &Client, s: &TestServer, token: &str, path: &str) -> (StatusCode, Value) {
    let r = c.get(s.url(path)).bearer_auth(token).send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

pub fn send(text: &str) -> Value {
    json!({"eventId": Uuid::new_v4().to_string(), "eventType": "MESSAGE_SENT", "content": text})
}

pub fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("<none>")
}

/// POST without a token (sign-up, sign-in).
pub async fn post_public(
    c: &Client,
    s: &TestServer,
    path: &str,
    body: Value,
) -> (StatusCode, Value) {
    let r = c.post(s.url(path)).json(&body).send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A fresh server (rate limit off) with user "alice" signed in and `room`
/// created: the data directory (keep it alive), the server, a client and
/// alice's token.
pub async fn setup(room_id: &str) -> (tempfile::TempDir, TestServer, Client, String) {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path(), 0).await;
    let c = Client::new();
    let token = user(&c, &s, "alice").await;
    room(&c, &s, &token, room_id).await;
    (dir, s, c, token)
}

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Submits `n` MESSAGE_SENT events over `ws`, keeping `window` waiting for
/// their acks (a client that writes without reading blocks itself), and
/// returns when all are acknowledged. Event frames are not expected: open
/// the socket with a large `afterSeq`.
pub async fn submit_pipelined(
    ws: &mut Ws,
    n: usize,
    window: usize,
    content: impl Fn(usize) -> String,
) {
    let (mut sent, mut acks) = (0, 0);
    // Submits answered `unavailable` (a stalled store), sent again as they
    // were: each is answered once more.
    let mut frames: std::collections::HashMap<String, (String, usize)> = Default::default();
    while acks < n {
        while sent < n && sent - acks < window {
            let id = Uuid::new_v4().to_string();
            let f = json!({"type": "submit", "event": {"eventId": id, "eventType": "MESSAGE_SENT", "content": content(sent)}}).to_string();
            ws.send(WsMessage::Text(f.clone().into())).await.unwrap();
            frames.insert(id, (f, 1));
            sent += 1;
        }
        let t = match ws.next().await {
            Some(Ok(WsMessage::Text(t))) => t,
            // The server's keep-alive pings (WS_PING_INTERVAL) on a long run.
            Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => continue,
            other => panic!("socket ended after {acks} acks: {other:?}"),
        };
        let v: Value = serde_json::from_str(&t).unwrap();
        if v["type"] == "error" && code(&v) == "unavailable" {
            let (f, tries) = frames.get_mut(v["eventId"].as_str().unwrap()).unwrap();
            if *tries < UNAVAILABLE_TRIES {
                *tries += 1;
                ws.send(WsMessage::Text(f.clone().into())).await.unwrap();
                continue;
            }
        }
        assert_eq!(v["type"], "ack", "{v}");
        frames.remove(v["eventId"].as_str().unwrap_or_default());
        acks += 1;
    }
}

/// Reads frames until the server closes the socket; its close code, or
/// `None` if the socket ended without a close frame. Fails after 10 s.
pub async fn close_code(ws: &mut Ws) -> Option<u16> {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match ws.next().await {
                Some(Ok(WsMessage::Close(Some(f)))) => return Some(u16::from(f.code)),
                Some(Ok(_)) => continue,
                _ => return None,
            }
        }
    })
    .await
    .expect("the server closes the socket")
}

/// The value of an unlabelled metric in `/metrics` (0 when absent).
pub async fn metric(c: &Client, s: &TestServer, name: &str) -> f64 {
    let text = c
        .get(s.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// Checks `cond` every 20 ms until it holds; fails after `secs` seconds,
/// saying what did not happen.
pub async fn wait_until<F, Fut>(secs: u64, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    tokio::time::timeout(Duration::from_secs(secs), async {
        while !cond().await {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("within {secs} s: {what}"));
}

/// Opens a WebSocket on `path` (with its query).
pub async fn ws(s: &TestServer, path: &str) -> Ws {
    tokio_tungstenite::connect_async(s.ws_url(path))
        .await
        .unwrap()
        .0
}

/// A free TCP port on 127.0.0.1 (for a server started as a process).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The store the suites run against: `"mongodb"` when `TEST_MONGODB_URI` is set.
pub fn store_kind() -> &'static str {
    if std::env::var("TEST_MONGODB_URI").is_ok() {
        "mongodb"
    } else {
        "embedded"
    }
}

/// The bus the suites run on: `"redis"` when `TEST_REDIS_URL` is set.
pub fn bus_kind() -> &'static str {
    if std::env::var("TEST_REDIS_URL").is_ok() {
        "redis"
    } else {
        "local"
    }
}

/// `/healthz`'s answer.
pub async fn health(c: &Client, s: &TestServer) -> Value {
    c.get(s.url("/healthz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}
