//! Two server instances sharing one MongoDB and one Redis, as in
//! production: writers spread over both, WebSocket readers on both, a Redis
//! restart in the middle. Every reader sees every event once and in seq
//! order, the log is gap-free, a duplicated `eventId` is stored once, the
//! views equal the replay, and a logout on one instance closes the token's
//! sockets on the other.
//!
//! Needs `TEST_MONGODB_URI` (the test command's MongoDB pass sets it;
//! without it the tests say so and do nothing) and Debian's `redis-server`
//! (`REDIS_SERVER_BIN` to use another): each test starts its own Redis on a
//! free loopback port so that it can stop and start it.

mod common;

use common::*;
use domain::{ChatEvent, RoomState};
use futures_util::{SinkExt, StreamExt};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use uuid::Uuid;

const ROOMS: [&str; 2] = ["left", "right"];

/// A redis-server of this test's own.
struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    fn start(port: u16) -> Redis {
        let bin = std::env::var("REDIS_SERVER_BIN").unwrap_or_else(|_| "redis-server".into());
        let child = Command::new(&bin)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{bin} starts (apt-get install redis-server): {e}"));
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(start.elapsed() < Duration::from_secs(10), "Redis listens");
            std::thread::sleep(Duration::from_millis(20));
        }
        Redis { child, port }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn stop(mut self) -> u16 {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.port
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Two instances on one fresh database (named after the directory) and a
/// Redis of their own, both connected to it; `None` (the test skipped)
/// without `TEST_MONGODB_URI`.
async fn two_instances() -> Option<(tempfile::TempDir, Redis, [TestServer; 2])> {
    if std::env::var("TEST_MONGODB_URI").is_err() {
        eprintln!("TEST_MONGODB_URI is not set: no shared store for two instances; skipped");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let redis = Redis::start(free_port());
    let config = || server::config::Config {
        redis_url: Some(redis.url()),
        ..TestServer::config(dir.path(), 0)
    };
    let a = TestServer::start_with(config(), None).await;
    let b = TestServer::start_with(config(), None).await;
    let c = Client::new();
    for s in [&a, &b] {
        bus_connected(&c, s, true).await;
    }
    Some((dir, redis, [a, b]))
}

async fn bus_connected(c: &Client, s: &TestServer, want: bool) {
    wait_until(15, &format!("busConnected is {want}"), || async {
        health(c, s).await["busConnected"] == want
    })
    .await;
}

/// The seqs a reader received, in the order they came.
type Seen = Arc<Mutex<Vec<u64>>>;

/// A WebSocket reader of `room` from the start, recording every event.
async fn reader(s: &TestServer, token: &str, room: &str) -> (Seen, tokio::task::JoinHandle<()>) {
    let mut ws = ws(s, &format!("/api/rooms/{room}/ws?afterSeq=0&token={token}")).await;
    let seen = Seen::default();
    let record = seen.clone();
    let task = tokio::spawn(async move {
        while let Some(Ok(frame)) = ws.next().await {
            let WsMessage::Text(t) = frame else { continue };
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["type"] == "event" {
                record
                    .lock()
                    .unwrap()
                    .push(v["event"]["seq"].as_u64().unwrap());
            }
        }
    });
    (seen, task)
}

async fn all_events(c: &Client, s: &TestServer, token: &str, room: &str) -> Vec<ChatEvent> {
    let mut events: Vec<ChatEvent> = Vec::new();
    loop {
        let after = events.last().map_or(0, |e| e.seq);
        let path = format!("/api/rooms/{room}/events?afterSeq={after}&limit=5000");
        let (status, page) = get(c, s, token, &path).await;
        assert_eq!(status, StatusCode::OK);
        let page = page["events"].as_array().unwrap().clone();
        if page.is_empty() {
            return events;
        }
        for e in page {
            events.push(ChatEvent::from_json(e.to_string().as_bytes()).unwrap());
        }
    }
}

/// `rounds` messages from each writer; writer `w` posts to instance `w % 2`
/// and alternates rooms. Every one is acknowledged with 201.
async fn write(servers: &[TestServer; 2], tokens: &[String], writers: usize, round: usize) {
    let mut tasks = JoinSet::new();
    for w in 0..writers {
        let url = servers[w % 2].url("");
        let token = tokens[w % tokens.len()].clone();
        tasks.spawn(async move {
            let c = Client::new();
            for i in 0..5 {
                let room = ROOMS[(w + i) % 2];
                let r = c
                    .post(format!("{url}/api/rooms/{room}/events"))
                    .bearer_auth(&token)
                    .json(&send(&format!("round {round} writer {w} #{i}")))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), StatusCode::CREATED, "{:?}", r.text().await);
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
}

/// Waits until every reader has `last` of its room, then checks it got
/// 1..=last, each once, in order.
async fn readers_have_everything(readers: &[(String, Seen)], lasts: &HashMap<String, u64>) {
    for (room, seen) in readers {
        let last = lasts[room];
        wait_until(
            20,
            &format!("a reader of {room} gets seq {last}"),
            || async { seen.lock().unwrap().last() == Some(&last) },
        )
        .await;
        let seen = seen.lock().unwrap().clone();
        let want: Vec<u64> = (1..=last).collect();
        assert_eq!(seen, want, "a reader of {room}: every event once, in order");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_deliver_every_event_once_in_order_through_a_redis_restart() {
    let Some((_dir, redis, servers)) = two_instances().await else {
        return;
    };
    let c = Client::new();
    // Five users (each signed in on one instance, the token good on both).
    let mut tokens = Vec::new();
    for u in 0..5 {
        tokens.push(user(&c, &servers[u % 2], &format!("writer{u}")).await);
    }
    for r in ROOMS {
        room(&c, &servers[0], &tokens[0], r).await;
    }
    // Two readers per room on each instance.
    let mut readers = Vec::new();
    let mut tasks = Vec::new();
    for s in &servers {
        for r in ROOMS {
            for _ in 0..2 {
                let (seen, task) = reader(s, &tokens[1], r).await;
                readers.push((r.to_owned(), seen));
                tasks.push(task);
            }
        }
    }

    // 20 writers over both instances, on the same rooms.
    write(&servers, &tokens, 20, 1).await;

    // Redis goes away: appends still succeed, delivery goes on (the
    // backstop), and /healthz says so.
    let port = redis.stop();
    for s in &servers {
        bus_connected(&c, s, false).await;
    }
    write(&servers, &tokens, 20, 2).await;
    let lasts = last_seqs(&c, &servers[0], &tokens[0]).await;
    readers_have_everything(&readers, &lasts).await;
    let mut backstopped = 0.0;
    for s in &servers {
        backstopped += metric(&c, s, "chat_bus_backstop_deliveries_total").await;
    }
    assert!(backstopped > 0.0, "with Redis down, the backstop delivered");

    // Redis comes back on the same address: both instances find it again.
    let redis = Redis::start(port);
    for s in &servers {
        bus_connected(&c, s, true).await;
    }
    write(&servers, &tokens, 20, 3).await;

    // The same eventId sent twice to each instance at once: stored once.
    for n in 0..10 {
        let body = send(&format!("twice {n}"));
        let mut sends = JoinSet::new();
        for k in 0..4 {
            let url = servers[k % 2].url("/api/rooms/left/events");
            let (token, body) = (tokens[0].clone(), body.clone());
            sends.spawn(async move {
                let r = Client::new()
                    .post(url)
                    .bearer_auth(token)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                let status = r.status();
                (status, r.json::<Value>().await.unwrap()["seq"].as_u64())
            });
        }
        let answers = sends.join_all().await;
        let created = answers
            .iter()
            .filter(|(s, _)| *s == StatusCode::CREATED)
            .count();
        assert_eq!(created, 1, "{answers:?}");
        assert!(answers.iter().all(
            |(s, seq)| (*s == StatusCode::CREATED || *s == StatusCode::OK) && *seq == answers[0].1
        ));
    }

    let lasts = last_seqs(&c, &servers[0], &tokens[0]).await;
    // 2 rooms × (1 + 150 / 2 messages) + 10 sent twice to "left".
    assert_eq!(lasts["left"] + lasts["right"], 2 + 3 * 20 * 5 + 10);
    readers_have_everything(&readers, &lasts).await;

    // The log is gap-free and holds each eventId once; the views, read
    // through either instance, equal the replay.
    for r in ROOMS {
        let events = all_events(&c, &servers[1], &tokens[2], r).await;
        assert_eq!(events.len() as u64, lasts[r]);
        for (i, e) in events.iter().enumerate() {
            assert_eq!(e.seq, i as u64 + 1, "{r}: seqs are gap-free");
        }
        let ids: std::collections::HashSet<Uuid> = events.iter().map(|e| e.event_id).collect();
        assert_eq!(ids.len(), events.len(), "{r}: each eventId once");
        let replayed = RoomState::replay(events).unwrap();
        let want: Vec<(String, String)> = replayed
            .messages()
            .map(|m| (m.id.to_string(), m.content.to_string()))
            .collect();
        for s in &servers {
            let path = format!("/api/rooms/{r}/messages?limit=500");
            let (_, page) = get(&c, s, &tokens[3], &path).await;
            let got: Vec<(String, String)> = page["messages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| {
                    let field = |k: &str| m[k].as_str().unwrap().to_owned();
                    (field("messageId"), field("content"))
                })
                .collect();
            assert_eq!(got, want, "{r}: the view equals the replay");
        }
    }
    for t in tasks {
        t.abort();
    }
    for s in servers {
        s.stop().await;
    }
    drop(redis);
}

async fn last_seqs(c: &Client, s: &TestServer, token: &str) -> HashMap<String, u64> {
    let mut lasts = HashMap::new();
    for r in ROOMS {
        let (_, room) = get(c, s, token, &format!("/api/rooms/{r}")).await;
        lasts.insert(r.to_owned(), room["lastSeq"].as_u64().unwrap());
    }
    lasts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_logout_on_one_instance_closes_the_sockets_on_the_other_with_or_without_redis() {
    let Some((_dir, redis, [a, b])) = two_instances().await else {
        return;
    };
    let c = Client::new();
    let token = user(&c, &a, "ann").await;
    room(&c, &a, &token, "r").await;

    // Over Redis: the socket on b closes when the token logs out on a.
    let mut socket = ws(&b, &format!("/api/rooms/r/ws?afterSeq=0&token={token}")).await;
    sign_out(&c, &a, &token).await;
    assert_eq!(close_code(&mut socket).await, Some(4001));

    // Without Redis the logout cannot travel: the socket's next submits
    // look the session up in the store and close it.
    let token = sign_in(&c, &a, "ann").await;
    let mut socket = ws(&b, &format!("/api/rooms/r/ws?afterSeq=0&token={token}")).await;
    redis.stop();
    for s in [&a, &b] {
        bus_connected(&c, s, false).await;
    }
    sign_out(&c, &a, &token).await;
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    let submit = json!({"type": "submit", "event": send("after logout")});
                    if socket.send(WsMessage::Text(submit.to_string().into())).await.is_err() {
                        return None;
                    }
                }
                frame = socket.next() => match frame {
                    Some(Ok(WsMessage::Close(Some(f)))) => return Some(u16::from(f.code)),
                    // Acks of the submits of the first second are fine:
                    // the session is looked up at most once a second.
                    Some(Ok(_)) => {}
                    _ => return None,
                },
            }
        }
    })
    .await
    .expect("the socket closes");
    assert_eq!(closed, Some(4001));
    a.stop().await;
    b.stop().await;
}

/// Logs `token` out on `s` (204).
async fn sign_out(c: &Client, s: &TestServer, token: &str) {
    let r = c
        .delete(s.url("/api/sessions/current"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
}
