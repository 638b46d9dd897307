//! Scenario 6: opening a room, for rooms of three sizes: the time to the
//! newest 50 messages through `/messages?limit=50` (the projection),
//! through `/snapshot?window=50` plus the events after it replayed by the
//! domain's reducer (what the web app does), and through a replay of the
//! whole log from `/events`. The windowed paths should not grow with the
//! room; the full replay is their baseline. The browser's figure is the web
//! benchmark's (`scripts/web-bench.sh`, BENCHMARKS.md "Web").

use crate::report::{thousands, Row};
use crate::server::Server;
use domain::RoomState;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{json, value::RawValue, Value};
use std::path::Path;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

/// Messages a client shows when it opens a room.
const WINDOW: usize = 50;
/// Events asked for in one `/events` page.
const PAGE: usize = 5000;
/// Submits kept waiting for their acks while a room is filled.
const IN_FLIGHT: usize = 400;

#[derive(Deserialize)]
struct SnapshotBody {
    state: RoomState,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawPage<'a> {
    #[serde(borrow)]
    events: &'a RawValue,
    last_seq: u64,
}

pub async fn run(bin: &Path, sizes: &[usize]) -> Vec<Row> {
    let server = Server::start(bin, &[]).await;
    let token = server.user("reader").await;
    let mut timings = Vec::new();
    for &size in sizes {
        let room = format!("room{size}");
        server.room(&token, &room).await;
        fill(&server, &token, &room, size - 1).await;
        // Each path five times in a row, the median of each; the full
        // replays last, since reading a large room's whole log evicts what
        // the windowed paths read from the store's cache (right after one,
        // /messages of the 1M room takes about twice as long).
        let (mut messages, mut windowed, mut full) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..5 {
            messages.push(by_messages(&server, &token, &room).await);
        }
        for _ in 0..5 {
            windowed.push(by_snapshot(&server, &token, &room).await);
        }
        for _ in 0..5 {
            full.push(by_replay(&server, &token, &room).await);
        }
        timings.push((size, median(messages), median(windowed), median(full)));
    }
    let smallest = timings[0];
    timings
        .iter()
        .map(|&(size, messages, windowed, full)| {
            let ms = |d: Duration| d.as_secs_f64() * 1e3;
            let growth = |d: Duration, of: Duration| ms(d) / ms(of).max(1e-3);
            let flat = growth(messages, smallest.1) <= 2.0 && growth(windowed, smallest.2) <= 2.0;
            let largest = size == timings.last().expect("sizes").0;
            Row {
                scenario: "6 room open".into(),
                case: format!("{} events", thousands(size as f64)),
                result: format!(
                    "/messages {:.1} ms; snapshot + tail + replay {:.1} ms",
                    ms(messages),
                    ms(windowed)
                ),
                baseline: format!("full replay from /events: {:.0} ms", ms(full)),
                ratio: Some(ms(full) / ms(windowed).max(1e-3)),
                target: if largest {
                    format!("windowed ≤ 2 × the {} room", thousands(smallest.0 as f64))
                } else {
                    "–".into()
                },
                met: largest.then_some(flat),
                notes: format!(
                    "{:.1}× / {:.1}× the smallest room",
                    growth(messages, smallest.1),
                    growth(windowed, smallest.2)
                ),
                figures: serde_json::json!({
                    "events": size,
                    "messages_ms": ms(messages),
                    "snapshot_tail_ms": ms(windowed),
                    "full_replay_ms": ms(full),
                }),
            }
        })
        .collect()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Appends `n` messages to `room` over one socket, pipelined.
async fn fill(server: &Server, token: &str, room: &str, n: usize) {
    let url = server.ws_url(&format!(
        "/api/rooms/{room}/ws?afterSeq={}&token={token}",
        u64::MAX
    ));
    let (socket, _) =
        tokio_tungstenite::connect_async_with_config(url, Some(super::ws_client_config()), false)
            .await
            .expect("a WebSocket");
    let (mut tx, mut rx) = socket.split();
    let (mut sent, mut acked) = (0, 0);
    while acked < n {
        while sent < n && sent - acked < IN_FLIGHT {
            let event = json!({"eventId": Uuid::new_v4(), "eventType": "MESSAGE_SENT", "content": format!("message {sent} of a room being filled")});
            let frame = json!({"type": "submit", "event": event});
            tx.send(Message::Text(frame.to_string().into()))
                .await
                .expect("a submit");
            sent += 1;
        }
        match rx.next().await {
            Some(Ok(Message::Text(t))) => {
                let v: Value = serde_json::from_str(&t).expect("a JSON frame");
                assert_eq!(v["type"], "ack", "{v}");
                acked += 1;
            }
            Some(Ok(_)) => {}
            other => panic!("the socket ended: {other:?}"),
        }
    }
}

async fn get(server: &Server, token: &str, path: &str) -> String {
    let r = server
        .http
        .get(server.url(path))
        .bearer_auth(token)
        .send()
        .await;
    let r = r.expect("the server answers");
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.text().await.expect("a body")
}

async fn by_messages(server: &Server, token: &str, room: &str) -> Duration {
    let t = Instant::now();
    let body = get(
        server,
        token,
        &format!("/api/rooms/{room}/messages?limit={WINDOW}"),
    )
    .await;
    let page: Value = serde_json::from_str(&body).expect("a page");
    assert_eq!(page["messages"].as_array().map(Vec::len), Some(WINDOW));
    t.elapsed()
}

/// Applies the events after `state` page by page until the room's end.
async fn catch_up(server: &Server, token: &str, room: &str, state: &mut RoomState) {
    loop {
        let path = format!(
            "/api/rooms/{room}/events?afterSeq={}&limit={PAGE}",
            state.last_seq()
        );
        let body = get(server, token, &path).await;
        let page: RawPage = serde_json::from_str(&body).expect("a page of events");
        let applied = state
            .apply_json(page.events.get().as_bytes())
            .expect("the log replays");
        if applied == 0 || state.last_seq() >= page.last_seq {
            return;
        }
    }
}

async fn by_snapshot(server: &Server, token: &str, room: &str) -> Duration {
    let t = Instant::now();
    let body = get(
        server,
        token,
        &format!("/api/rooms/{room}/snapshot?window={WINDOW}"),
    )
    .await;
    let mut state = serde_json::from_str::<SnapshotBody>(&body)
        .expect("a snapshot")
        .state;
    catch_up(server, token, room, &mut state).await;
    let views = state
        .window_views(WINDOW, None)
        .expect("the window is in the snapshot");
    assert_eq!(views.len(), WINDOW);
    t.elapsed()
}

async fn by_replay(server: &Server, token: &str, room: &str) -> Duration {
    let t = Instant::now();
    let mut state = RoomState::new();
    catch_up(server, token, room, &mut state).await;
    let views = state.window_views(WINDOW, None).expect("a whole state");
    assert_eq!(views.len(), WINDOW);
    t.elapsed()
}
