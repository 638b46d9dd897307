//! The web benchmark: time from navigation to the newest messages painted,
//! for rooms of 100, 10,000 and 100,000 events (or the sizes given as
//! arguments, in ascending order), in headless Chromium against the
//! release server and bundle on localhost. The app leaves a
//! `chat:room-painted` performance mark on the frame after a room's
//! messages are in the page; its time is counted from the navigation's
//! start.
//!
//! Run: `scripts/web-bench.sh` (builds the bundle, then this in release,
//! then the replay speed natively and as WASM). The bench binary runs it
//! too, for scenario 6's browser rows, and reads its `ROOM_OPEN` lines
//! (`bench/src/scenarios/room_open.rs`). Prints numbers; asserts only that
//! the newest message is the one shown.

use e2e::{Browser, Driver, PATIENCE};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

const SIZES: [usize; 3] = [100, 10_000, 100_000];
const VISITS: usize = 7;

#[tokio::main]
async fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| match a.parse() {
            Ok(n) if n >= 2 => n,
            _ => panic!("usage: web-bench [EVENTS…] (room sizes of at least 2 events); got {a:?}"),
        })
        .collect();
    let sizes = if sizes.is_empty() {
        SIZES.to_vec()
    } else {
        sizes
    };
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

    for &n in &sizes {
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

    // One visit to each room untimed (measured: a fresh browser's first
    // visits to a room took up to 1.5 × as long as the later ones), then
    // the timed ones in rounds over the rooms, so that each room's figures
    // come from the same minutes.
    for &n in &sizes {
        visit(&browser, &server, n).await;
    }
    let mut visits = vec![Vec::new(); sizes.len()];
    for _ in 0..VISITS {
        for (i, &n) in sizes.iter().enumerate() {
            visits[i].push(visit(&browser, &server, n).await);
        }
    }
    println!("| room | navigation → newest messages painted (median of {VISITS}) | min | max | navigation → app started (median) |");
    println!("|---|---|---|---|---|");
    let mut lines = Vec::new();
    for (&n, room_visits) in sizes.iter().zip(visits) {
        let (mut paints, mut starts): (Vec<f64>, Vec<f64>) = room_visits.into_iter().unzip();
        paints.sort_by(f64::total_cmp);
        starts.sort_by(f64::total_cmp);
        let (median, min, max) = (paints[VISITS / 2], paints[0], paints[VISITS - 1]);
        let started = starts[VISITS / 2];
        println!("| {n} events | {median:.0} ms | {min:.0} ms | {max:.0} ms | {started:.0} ms |");
        lines.push(format!(
            "ROOM_OPEN {n} events: median {median:.1} ms, min {min:.1} ms, max {max:.1} ms, app started {started:.1} ms ({VISITS} visits)"
        ));
    }
    for line in lines {
        println!("{line}");
    }
    browser.close().await;
    server.stop().await;
}

/// Opens the room of `n` events from `about:blank`; checks that its newest
/// message is the last one shown. Returns the times from the navigation's
/// start to the room painted and to the app started, in ms.
async fn visit(browser: &Browser, server: &e2e::Server, n: usize) -> (f64, f64) {
    let room = format!("r{n}");
    let newest = format!("message {}", n - 2);
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
    (paint, started.as_f64().unwrap_or(f64::NAN))
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
