//! Integration tests of what grows with use: per-room bus channels and the
//! cost of the room list. The real server on a loopback port, real HTTP and
//! WebSocket clients.

mod common;

use common::*;
use futures_util::SinkExt;
use reqwest::{Client, StatusCode};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// The value of a metric without labels, from `/metrics`.
async fn metric(c: &Client, s: &TestServer, name: &str) -> Option<f64> {
    let text = c
        .get(s.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// Waits until the metric has the value, for at most 10 s.
async fn wait_for_metric(c: &Client, s: &TestServer, name: &str, want: f64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let got = metric(c, s, name).await;
        if got == Some(want) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} is {got:?}, waited for {want}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_rooms_bus_channel_goes_with_its_last_subscriber() {
    let (_dir, s, c, token) = setup("first").await;
    let rooms: Vec<String> = (0..100).map(|i| format!("room{i}")).collect();
    for r in &rooms {
        room(&c, &s, &token, r).await;
        // Published events of rooms nobody listens to leave nothing behind.
        assert_eq!(
            post(&c, &s, &token, r, send("hi")).await.0,
            StatusCode::CREATED
        );
    }
    assert_eq!(metric(&c, &s, "chat_bus_rooms").await, Some(0.0));
    // Twice the same flood: the second leaves no more than the first.
    for _ in 0..2 {
        let mut sockets = Vec::new();
        for r in &rooms {
            let url = s.ws_url(&format!("/api/rooms/{r}/ws?token={token}"));
            let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
            sockets.push(ws);
        }
        wait_for_metric(&c, &s, "chat_bus_rooms", rooms.len() as f64).await;
        for mut ws in sockets {
            ws.send(WsMessage::Close(None)).await.unwrap();
        }
        wait_for_metric(&c, &s, "chat_bus_rooms", 0.0).await;
    }
    s.stop().await;
}
