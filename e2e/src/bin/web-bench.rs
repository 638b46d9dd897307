//! The web benchmark: time from navigation to the newest messages painted,
//! for rooms of 100, 10,000 and 100,000 events, in headless Chromium
//! against the release server and bundle on localhost. The app leaves a
//! `chat:room-painted` performance mark on the frame after a room's messages
//! are in the page; its time is counted from the navigation's start.
//!
//! Run: `scripts/web-bench.sh` (builds the bundle, then this in release,
//! then the replay speed natively and as WASM). Prints numbers; asserts
//! only that the newest message is the one shown.

use e2e::{Driver, PATIENCE};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

const SIZES: [usize; 3] = [100, 10_000, 100_000];
const VISITS: usize = 7;

#[tokio::main]
async fn main() {
    let server = e2e::Server::start_with(|c| c.rate_limit_per_user = 0).await;
    let http = reqwest::Client::new();
    let r = http
        .post(server.url("/api/users"))
        .json(&json!({"userId": "bench", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let token = server.token("bench", "correct horse battery").await;

    for n in SIZES {
        let room = format!("r{n}");
        let r = http
            .post(server.url("/api/rooms"))
            .bearer_auth(&token)
            .json(&json!({"roomId": room, "name": format!("{n} events")}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
        let start = Instant::now();
        fill(&server, &token, &room, n - 1).await;
        eprintln!(
            "room {room}: {n} events written in {:.1} s",
            start.elapsed().as_secs_f64()
        );
    }

    let driver = Driver::start().await;
    let browser = driver.browser("web-bench", 1280, 800).await;
    browser.goto(&server.url("/")).await;
    browser
        .js(&format!(
            "localStorage.setItem('chat.session', {}); return true",
            json!(json!({"token": token, "userId": "bench"}).to_string())
        ))
        .await;
    // Warm the bundle into the browser's cache, as for anyone who came before.
    browser.goto(&server.url("/")).await;
    browser.wait_for_status("Online").await;

    println!("| room | navigation → newest messages painted (median of {VISITS}) | min | max | navigation → app started (median) |");
    println!("|---|---|---|---|---|");
    for n in SIZES {
        let room = format!("r{n}");
        let newest = format!("message {}", n - 2);
        let mut paints = Vec::new();
        let mut starts = Vec::new();
        for _ in 0..VISITS {
            browser.goto("about:blank").await;
            browser.goto(&server.url(&format!("/rooms/{room}"))).await;
            let t0 = Instant::now();
            let paint = loop {
                let v = browser
                    .js(
                        "const m = performance.getEntriesByName('chat:room-painted'); \
                         return m.length ? m[0].startTime : null",
                    )
                    .await;
                if let Some(t) = v.as_f64() {
                    break t;
                }
                assert!(t0.elapsed() < PATIENCE, "room {room} never painted");
                tokio::time::sleep(Duration::from_millis(20)).await;
            };
            let shown = browser
                .js(
                    "const a = document.querySelectorAll('[role=log] article'); \
                     return a.length ? a[a.length - 1].innerText : ''",
                )
                .await;
            assert!(
                shown.as_str().unwrap_or("").contains(&newest),
                "room {room}: the newest message shown is {shown}, not {newest:?}"
            );
            let started = browser
                .js(
                    "const m = performance.getEntriesByName('chat:app-started'); \
                     return m.length ? m[0].startTime : null",
                )
                .await;
            paints.push(paint);
            starts.push(started.as_f64().unwrap_or(f64::NAN));
        }
        paints.sort_by(f64::total_cmp);
        starts.sort_by(f64::total_cmp);
        println!(
            "| {n} events | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} ms |",
            paints[VISITS / 2],
            paints[0],
            paints[VISITS - 1],
            starts[VISITS / 2]
        );
    }
    browser.close().await;
    server.stop().await;
}

/// Writes `count` messages ("message 0", …) over one WebSocket, pipelined
/// in windows, waiting for every ack.
async fn fill(server: &e2e::Server, token: &str, room: &str, count: usize) {
    let url = format!(
        "ws://{}/api/rooms/{room}/ws?afterSeq=0&token={token}",
        server.addr
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    const WINDOW: usize = 2_000;
    let mut sent = 0;
    let mut acked = 0;
    while acked < count {
        while sent < count && sent - acked < WINDOW {
            let frame = json!({"type": "submit", "event": {
                "eventId": uuid::Uuid::new_v4(),
                "eventType": "MESSAGE_SENT",
                "content": format!("message {sent}: a line of chat about the weather, the build and lunch"),
            }});
            ws.feed(Message::text(frame.to_string())).await.unwrap();
            sent += 1;
        }
        ws.flush().await.unwrap();
        let frame = tokio::time::timeout(PATIENCE, ws.next())
            .await
            .expect("an answer")
            .expect("the socket stays open")
            .unwrap();
        if let Message::Text(t) = frame {
            let v: Value = serde_json::from_str(t.as_str()).unwrap();
            match v["type"].as_str() {
                Some("ack") => acked += 1,
                Some("error") => panic!("refused: {v}"),
                _ => {}
            }
        }
    }
    let _ = ws.close(None).await;
}
