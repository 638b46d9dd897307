//! Load generator: signs up a user, creates a room, then submits events
//! over several WebSocket connections as fast as the server acknowledges
//! them (or with `http`, posts them from several HTTP writers, one request
//! at a time each), and prints throughput and acknowledgement latency.
//!
//! Loopback only. Start a server with `RATE_LIMIT_PER_USER=0`, then:
//!   cargo run --release -p bench --bin loadgen -- http://127.0.0.1:8080 [sockets] [events] [in-flight per socket] [http|ws] [rooms]
//! (with several rooms, the sockets or writers take them in turn).

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let base = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let sockets: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(4);
    let events: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(20_000);
    let window: usize = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(200);
    let over_http = args.get(5).is_some_and(|a| a == "http");
    let rooms: usize = args.get(6).and_then(|s| s.parse().ok()).unwrap_or(1).max(1);
    assert!(
        base.starts_with("http://127.") || base.starts_with("http://localhost"),
        "loopback only"
    );

    let http = reqwest::Client::new();
    let user = format!("load{}", &Uuid::new_v4().simple().to_string()[..8]);
    let r = http
        .post(format!("{base}/api/users"))
        .json(&json!({"userId": user, "password": "load-test-password"}))
        .send()
        .await
        .expect("server reachable");
    assert!(r.status().is_success(), "sign-up: {}", r.status());
    let s: Value = http
        .post(format!("{base}/api/sessions"))
        .json(&json!({"userId": user, "password": "load-test-password"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = s["token"].as_str().expect("token").to_owned();
    let room_ids: Vec<String> = (0..rooms).map(|i| format!("{user}-{i}")).collect();
    for room in &room_ids {
        let r = http
            .post(format!("{base}/api/rooms"))
            .bearer_auth(&token)
            .json(&json!({"roomId": room, "name": "load"}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "room: {}", r.status());
    }

    let ws_base = base.replacen("http://", "ws://", 1);
    let per_socket = events / sockets;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for k in 0..sockets {
        let room = &room_ids[k % rooms];
        if over_http {
            let url = format!("{base}/api/rooms/{room}/events");
            let (http, token) = (http.clone(), token.clone());
            tasks.push(tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(per_socket);
                for n in 0..per_socket {
                    let body = json!({"eventId": Uuid::new_v4(), "eventType": "MESSAGE_SENT", "content": format!("load {k}/{n}")});
                    let t = Instant::now();
                    let r = http.post(&url).bearer_auth(&token).json(&body).send().await;
                    let status = r.expect("the server answers").status();
                    assert_eq!(status.as_u16(), 201, "an append is refused");
                    latencies.push(t.elapsed());
                }
                latencies
            }));
            continue;
        }
        let url =
            format!("{ws_base}/api/rooms/{room}/ws?afterSeq=18446744073709551615&token={token}");
        tasks.push(tokio::spawn(async move {
            // tungstenite zeroes its read buffer's free space before each read:
            // its default 128 KiB would cost more than the acks it reads.
            let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
                .read_buffer_size(4 * 1024);
            let (ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), false)
                .await
                .expect("WebSocket");
            let (mut tx, mut rx) = ws.split();
            let mut sent_at: HashMap<String, Instant> = HashMap::new();
            let mut latencies = Vec::with_capacity(per_socket);
            let (mut sent, mut acked) = (0usize, 0usize);
            while acked < per_socket {
                while sent < per_socket && sent - acked < window {
                    let id = Uuid::new_v4().to_string();
                    let f = json!({"type": "submit", "event": {"eventId": id, "eventType": "MESSAGE_SENT", "content": format!("load {k}/{sent}")}});
                    sent_at.insert(id, Instant::now());
                    tx.send(Message::Text(f.to_string().into())).await.unwrap();
                    sent += 1;
                }
                let t = match rx.next().await {
                    Some(Ok(Message::Text(t))) => t,
                    // Keep-alive pings on a long run.
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    other => panic!("socket closed: {other:?}"),
                };
                let v: Value = serde_json::from_str(&t).unwrap();
                match v["type"].as_str() {
                    Some("ack") => {
                        let id = v["eventId"].as_str().unwrap();
                        latencies.push(sent_at.remove(id).unwrap().elapsed());
                        acked += 1;
                    }
                    Some("error") => panic!("refused: {v}"),
                    _ => {}
                }
            }
            latencies
        }));
    }
    let mut all: Vec<Duration> = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed();
    all.sort();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    println!(
        "{} events over {sockets} {} in {:.2} s: {:.0} events/s; ack latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        all.len(),
        if over_http {
            "HTTP writers".to_owned()
        } else {
            format!("sockets ({window} in flight each)")
        },
        elapsed.as_secs_f64(),
        all.len() as f64 / elapsed.as_secs_f64(),
        pct(0.5).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        all.last().unwrap().as_secs_f64() * 1e3,
    );
}
