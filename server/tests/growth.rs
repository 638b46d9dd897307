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
    // Four users, 25 sockets each (a user may hold 32).
    let mut tokens = Vec::new();
    for u in ["u0", "u1", "u2", "u3"] {
        tokens.push(user(&c, &s, u).await);
    }
    // Twice the same flood: the second leaves no more than the first.
    for _ in 0..2 {
        let mut sockets = Vec::new();
        for (i, r) in rooms.iter().enumerate() {
            let token = &tokens[i % tokens.len()];
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

/// Every user's unread count in every room, as the list answers it.
async fn unread_counts(c: &Client, s: &TestServer, token: &str) -> Vec<(String, u64)> {
    let (st, v) = get(c, s, token, "/api/rooms").await;
    assert_eq!(st, StatusCode::OK);
    v["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["roomId"].as_str().unwrap().to_owned(),
                r["unreadCount"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Each room's unread count for `user`, from its events replayed by the
/// domain: what the list's counts must equal.
async fn replayed_unread(
    c: &Client,
    s: &TestServer,
    token: &str,
    user: &str,
) -> Vec<(String, u64)> {
    let (_, v) = get(c, s, token, "/api/rooms").await;
    let mut out = Vec::new();
    for r in v["rooms"].as_array().unwrap() {
        let id = r["roomId"].as_str().unwrap();
        let (_, page) = get(c, s, token, &format!("/api/rooms/{id}/events?limit=5000")).await;
        let events: Vec<domain::ChatEvent> =
            serde_json::from_value(page["events"].clone()).unwrap();
        let state = domain::RoomState::replay(events).unwrap();
        out.push((id.to_owned(), state.unread_count(user) as u64));
    }
    out
}

#[tokio::test]
async fn unread_counts_follow_sends_deletes_and_reads_of_every_user() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path(), 0).await;
    let c = Client::new();
    let users = ["ann", "ben", "cat"];
    let mut tokens = Vec::new();
    for u in users {
        tokens.push(user(&c, &s, u).await);
    }
    for r in ["r1", "r2", "r3"] {
        room(&c, &s, &tokens[0], r).await;
    }
    // A deterministic mix: sends, own deletes, reads of any message, by all.
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut sent: Vec<(String, usize, String)> = Vec::new(); // (room, user, id)
    for step in 0..240 {
        let who = (next() % 3) as usize;
        let r = format!("r{}", next() % 3 + 1);
        let mine: Vec<usize> = (0..sent.len())
            .filter(|&i| sent[i].0 == r && sent[i].1 == who)
            .collect();
        let theirs: Vec<usize> = (0..sent.len()).filter(|&i| sent[i].0 == r).collect();
        let pick = next() % 10;
        let body = if pick < 5 || theirs.is_empty() {
            let b = send(&format!("step {step}"));
            sent.push((r.clone(), who, b["eventId"].as_str().unwrap().to_owned()));
            b
        } else if pick < 7 && !mine.is_empty() {
            let (_, _, id) = sent.remove(mine[(next() as usize) % mine.len()]);
            serde_json::json!({"eventId": uuid::Uuid::new_v4(), "eventType": "MESSAGE_DELETED", "targetMessageId": id})
        } else {
            let id = &sent[theirs[(next() as usize) % theirs.len()]].2;
            serde_json::json!({"eventId": uuid::Uuid::new_v4(), "eventType": "MESSAGE_READ", "targetMessageId": id})
        };
        let (st, v) = post(&c, &s, &tokens[who], &r, body).await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
    }
    for (i, u) in users.iter().enumerate() {
        let want = replayed_unread(&c, &s, &tokens[i], u).await;
        assert_eq!(unread_counts(&c, &s, &tokens[i]).await, want, "{u}");
        assert!(
            want.iter().any(|(_, n)| *n > 0),
            "the mix leaves something unread"
        );
    }
    // The counts survive a restart.
    s.stop().await;
    let s = TestServer::start(dir.path(), 0).await;
    for (i, u) in users.iter().enumerate() {
        let want = replayed_unread(&c, &s, &tokens[i], u).await;
        assert_eq!(
            unread_counts(&c, &s, &tokens[i]).await,
            want,
            "{u} after a restart"
        );
    }
    s.stop().await;
}

#[tokio::test]
async fn the_room_list_pages_in_its_order() {
    let (_dir, s, c, token) = setup("a-first").await;
    for i in 0..24 {
        room(&c, &s, &token, &format!("room{i:02}")).await;
    }
    let (_, whole) = get(&c, &s, &token, "/api/rooms").await;
    assert!(whole.get("nextAfter").is_none(), "no limit, no next page");
    let whole: Vec<String> = whole["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["roomId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(whole.len(), 25);
    assert_eq!(whole[0], "a-first", "oldest first");
    let mut paged = Vec::new();
    let mut path = "/api/rooms?limit=10".to_owned();
    loop {
        let (st, v) = get(&c, &s, &token, &path).await;
        assert_eq!(st, StatusCode::OK);
        let rooms = v["rooms"].as_array().unwrap();
        assert!(rooms.len() <= 10);
        paged.extend(
            rooms
                .iter()
                .map(|r| r["roomId"].as_str().unwrap().to_owned()),
        );
        match v["nextAfter"].as_str() {
            Some(after) => path = format!("/api/rooms?limit=10&after={after}"),
            None => break,
        }
        assert!(paged.len() < 25, "a page after the last room says so");
    }
    assert_eq!(paged, whole);
    let (_, v) = get(&c, &s, &token, "/api/rooms?limit=0").await;
    assert_eq!(v["rooms"].as_array().unwrap().len(), 0);
    // A place no room is at is a place all the same: the rooms after it.
    let (st, v) = get(&c, &s, &token, "/api/rooms?after=0.zzz").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["rooms"].as_array().unwrap().len(), 25);
    for bad in [
        "/api/rooms?after=nope",
        "/api/rooms?after=1.a%20b",
        "/api/rooms?limit=ten",
    ] {
        let (st, v) = get(&c, &s, &token, bad).await;
        assert_eq!(
            (st, code(&v)),
            (StatusCode::BAD_REQUEST, "bad_query"),
            "{bad}"
        );
    }
    s.stop().await;
}

#[tokio::test]
async fn room_states_in_memory_stay_within_their_budget_and_reload_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = TestServer::config(dir.path(), 0);
    config.rooms_memory_mib = 1;
    // One writer: each writer keeps the room it last used, whatever it holds.
    config.append_writers = Some(1);
    let s = TestServer::start_with(config, None).await;
    let c = Client::new();
    let token = user(&c, &s, "alice").await;
    let rooms = ["a", "b", "c"];
    for r in rooms {
        room(&c, &s, &token, r).await;
    }
    // 3 rooms of 150 messages of 4,000 characters: 1.8 MiB of text in all.
    let text = "x".repeat(4000);
    let mut first = std::collections::HashMap::new();
    for round in 0..150u64 {
        for r in rooms {
            let (st, e) = post(&c, &s, &token, r, send(&text)).await;
            assert_eq!(
                (st, e["seq"].as_u64()),
                (StatusCode::CREATED, Some(round + 2))
            );
            first
                .entry(r)
                .or_insert_with(|| e["eventId"].as_str().unwrap().to_owned());
        }
    }
    let held = metric(&c, &s, "chat_room_states_bytes").await.unwrap();
    assert!(held <= 1024.0 * 1024.0, "{held} bytes held");
    assert!(metric(&c, &s, "chat_room_states").await.unwrap() < 3.0);
    // every room decides as if it had never left memory (an edit of its first message)
    for r in rooms {
        let edit = serde_json::json!({"eventId": uuid::Uuid::new_v4(), "eventType": "MESSAGE_EDITED", "content": "edited", "targetMessageId": first[r]});
        let (st, e) = post(&c, &s, &token, r, edit).await;
        assert_eq!((st, e["seq"].as_u64()), (StatusCode::CREATED, Some(152)));
    }
    s.stop().await;
}
