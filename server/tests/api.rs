//! Integration tests: the real server on a loopback port, talked to over TCP
//! with an HTTP client and a WebSocket client.

mod common;

use common::*;
use futures_util::{SinkExt, StreamExt};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use uuid::Uuid;

#[tokio::test]
async fn users_sessions_and_logout() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path(), 0).await;
    let c = Client::new();
    let token = user(&c, &s, "alice").await;
    let (st, v) = post_public(
        &c,
        &s,
        "/api/users",
        json!({"userId": "alice", "password": "another one"}),
    )
    .await;
    assert_eq!((st, code(&v)), (StatusCode::CONFLICT, "user_exists"));
    for body in [
        json!({"userId": "a b", "password": "long enough"}),
        json!({"userId": "..", "password": "long enough"}),
        json!({"userId": "bob", "password": "short"}),
    ] {
        let (st, v) = post_public(&c, &s, "/api/users", body.clone()).await;
        assert_eq!(
            (st, code(&v)),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_id"),
            "{body}"
        );
    }
    let r = c
        .post(s.url("/api/users"))
        .body("{\"userId\": 5}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let (st, v) = post_public(
        &c,
        &s,
        "/api/sessions",
        json!({"userId": "alice", "password": "wrong password"}),
    )
    .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::UNAUTHORIZED, "invalid_credentials")
    );
    // the token works, then stops working after logout
    assert_eq!(get(&c, &s, &token, "/api/rooms").await.0, StatusCode::OK);
    let r = c
        .delete(s.url("/api/sessions/current"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let (st, body) = get(&c, &s, &token, "/api/rooms").await;
    assert_eq!(
        (st, code(&body)),
        (StatusCode::UNAUTHORIZED, "unauthorized")
    );
    let r = c.get(s.url("/api/rooms")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    s.stop().await;
}

#[tokio::test]
async fn every_error_of_the_append_route() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path(), 0).await;
    let c = Client::new();
    let alice = user(&c, &s, "alice").await;
    let bob = user(&c, &s, "bob").await;
    room(&c, &s, &alice, "general").await;
    let r = c
        .post(s.url("/api/rooms"))
        .bearer_auth(&alice)
        .json(&json!({"roomId": "general", "name": "again"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(code(&r.json().await.unwrap()), "room_exists");
    // A room without messages yet reads back, on every store.
    let (st, fresh) = get(&c, &s, &bob, "/api/rooms/general").await;
    assert_eq!(st, StatusCode::OK, "{fresh}");
    assert_eq!(
        (&fresh["lastSeq"], &fresh["unreadCount"]),
        (&json!(1), &json!(0))
    );

    let first = send("hello");
    let (st, stored) = post(&c, &s, &alice, "general", first.clone()).await;
    assert_eq!(st, StatusCode::CREATED);
    assert_eq!(stored["seq"], 2);
    assert_eq!(stored["senderId"], "alice");
    let msg = stored["eventId"].as_str().unwrap().to_owned();

    // a retry gets the first event, even after the room moved on
    post(&c, &s, &bob, "general", send("moving on")).await;
    let mut retry = first.clone();
    retry["senderId"] = json!("mallory");
    retry["expectedSeq"] = json!(1);
    let (st, again) = post(&c, &s, &alice, "general", retry).await;
    assert_eq!((st, &again), (StatusCode::OK, &stored));

    let cases: Vec<(Value, &str, StatusCode, &str)> = vec![
        (
            json!({"eventId": msg, "eventType": "MESSAGE_SENT", "content": "other"}),
            "alice",
            StatusCode::CONFLICT,
            "event_id_conflict",
        ),
        (
            first.clone(),
            "bob",
            StatusCode::CONFLICT,
            "event_id_conflict",
        ),
        (
            json!({"eventType": "MESSAGE_SENT", "content": "x"}),
            "alice",
            StatusCode::BAD_REQUEST,
            "bad_json",
        ),
        (
            json!({"eventId": 5, "eventType": "MESSAGE_SENT"}),
            "alice",
            StatusCode::BAD_REQUEST,
            "bad_json",
        ),
        (
            json!({"eventId": Uuid::new_v4(), "eventType": "NOPE"}),
            "alice",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_event",
        ),
        (
            json!({"eventId": "nope", "eventType": "MESSAGE_SENT", "content": "x"}),
            "alice",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_event",
        ),
        (
            json!({"eventId": Uuid::new_v4(), "eventType": "ROOM_CREATED", "content": "x"}),
            "alice",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_event",
        ),
        (
            json!({"eventId": Uuid::new_v4(), "eventType": "MESSAGE_EDITED", "content": "x"}),
            "alice",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_event",
        ),
        (
            json!({"eventId": Uuid::new_v4(), "eventType": "MESSAGE_SENT", "content": "  "}),
            "alice",
            StatusCode::UNPROCESSABLE_ENTITY,
            "content_empty",
        ),
        (
            json!({"eventId": Uuid::new_v4(), "eventType": "MESSAGE_SENT", "content": "x".repeat(4001)}),
            "alice",
            StatusCode::UNPROCESSABLE_ENTITY,
            "content_too_long",
        ),
        (
            json!({"eventId": Uuid::new_v4(), "eventType": "MESSAGE_SENT", "content": "x", "expectedSeq": 2}),
            "alice",
            StatusCode::CONFLICT,
            "seq_conflict",
        ),
        (
            json!({"eventId": Uuid::new_v4(), "eventType": "MESSAGE_EDITED", "content": "x", "targetMessageId": Uuid::new_v4()}),
            "alice",
            StatusCode::NOT_FOUND,
            "message_not_found",
        ),
        (
            json!({"eventId": Uuid::new_v4(), "eventType": "MESSAGE_EDITED", "content": "x", "targetMessageId": msg}),
            "bob",
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
        (
            json!({"eventId": Uuid::new_v4(), "eventType": "MESSAGE_DELETED", "targetMessageId": msg}),
            "bob",
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
    ];
    for (body, who, status, want) in cases {
        let token = if who == "alice" { &alice } else { &bob };
        let (st, v) = post(&c, &s, token, "general", body.clone()).await;
        assert_eq!((st, code(&v)), (status, want), "{body}");
    }
    let (_, v) = post(&c, &s, &alice, "general", json!({"eventId": Uuid::new_v4(), "eventType": "MESSAGE_SENT", "content": "x", "expectedSeq": 0})).await;
    assert_eq!(v["error"]["lastSeq"], 3);
    let (st, v) = post(&c, &s, &alice, "nowhere", send("x")).await;
    assert_eq!((st, code(&v)), (StatusCode::NOT_FOUND, "room_not_found"));
    let r = c
        .post(s.url("/api/rooms/general/events"))
        .bearer_auth(&alice)
        .body(vec![b'x'; 70_000])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let r = c
        .post(s.url("/api/rooms/general/events"))
        .bearer_auth(&alice)
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // nothing was half-written: exactly the three accepted events
    let (_, page) = get(&c, &s, &alice, "/api/rooms/general/events?afterSeq=0").await;
    assert_eq!(page["events"].as_array().unwrap().len(), 3);
    assert_eq!(page["lastSeq"], 3);
    // limits clamp, even past u64; 0 gives an empty list
    let (st, page) = get(
        &c,
        &s,
        &alice,
        "/api/rooms/general/events?limit=99999999999999999999999",
    )
    .await;
    assert_eq!(
        (st, page["events"].as_array().unwrap().len()),
        (StatusCode::OK, 3)
    );
    let (_, page) = get(&c, &s, &alice, "/api/rooms/general/events?limit=0").await;
    assert_eq!(page["events"].as_array().unwrap().len(), 0);
    let (_, page) = get(&c, &s, &alice, "/api/rooms/general/messages?limit=0").await;
    assert_eq!(page["messages"].as_array().unwrap().len(), 0);
    for (path, want) in [
        ("/api/rooms/general/events?afterSeq=-1", "bad_query"),
        ("/api/rooms/general/events?limit=", "bad_query"),
        ("/api/rooms/general/events?limit=1.5", "bad_query"),
        ("/api/rooms/general/messages?limit=x", "bad_query"),
        (
            "/api/rooms/general/messages?atSeq=1&at=2026-01-01T00:00:00Z",
            "bad_query",
        ),
        ("/api/rooms/general/messages?atSeq=99", "bad_query"),
        ("/api/rooms/general/messages?at=yesterday", "bad_query"),
        ("/api/rooms/nowhere/messages", "room_not_found"),
        ("/api/nope", "not_found"),
    ] {
        let (_, v) = get(&c, &s, &alice, path).await;
        assert_eq!(code(&v), want, "{path}");
    }
    let r = c
        .put(s.url("/api/rooms"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    s.stop().await;
}

#[tokio::test]
async fn fifty_concurrent_writers_make_a_gap_free_log() {
    let (_dir, s, c, token) = setup("busy").await;
    let mut tasks = Vec::new();
    for w in 0..50 {
        let (c, token, url) = (c.clone(), token.clone(), s.url("/api/rooms/busy/events"));
        tasks.push(tokio::spawn(async move {
            for i in 0..10 {
                let r = c
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&send(&format!("{w}-{i}")))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), StatusCode::CREATED);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let (_, page) = get(
        &c,
        &s,
        &token,
        "/api/rooms/busy/events?afterSeq=0&limit=5000",
    )
    .await;
    let seqs: Vec<u64> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (1..=501).collect::<Vec<_>>());
    let (_, msgs) = get(&c, &s, &token, "/api/rooms/busy/messages?limit=500").await;
    assert_eq!(msgs["messages"].as_array().unwrap().len(), 500);
    s.stop().await;
}

#[tokio::test]
async fn websocket_catches_up_while_events_are_appended() {
    let (_dir, s, c, token) = setup("live").await;
    for i in 0..30 {
        post(&c, &s, &token, "live", send(&format!("before {i}"))).await;
    }
    // writers keep appending while the socket connects and catches up
    let writer = {
        let (c, token, url) = (c.clone(), token.clone(), s.url("/api/rooms/live/events"));
        tokio::spawn(async move {
            for i in 0..100 {
                c.post(&url)
                    .bearer_auth(&token)
                    .json(&send(&format!("during {i}")))
                    .send()
                    .await
                    .unwrap();
            }
        })
    };
    let (mut ws, _) = tokio_tungstenite::connect_async(
        s.ws_url(&format!("/api/rooms/live/ws?afterSeq=5&token={token}")),
    )
    .await
    .unwrap();
    let mut seen = Vec::new();
    let total = 1 + 30 + 100;
    let res = tokio::time::timeout(Duration::from_secs(20), async {
        while seen.last() != Some(&(total as u64)) {
            let Some(Ok(WsMessage::Text(t))) = ws.next().await else {
                panic!("socket ended")
            };
            let v: Value = serde_json::from_str(&t).unwrap();
            assert_eq!(v["type"], "event");
            seen.push(v["event"]["seq"].as_u64().unwrap());
        }
    })
    .await;
    writer.await.unwrap();
    res.expect("every event arrives");
    assert_eq!(
        seen,
        (6..=total as u64).collect::<Vec<_>>(),
        "no gap, no duplicate"
    );

    // a submit over the socket gets an ack and its own event frame
    let id = Uuid::new_v4();
    ws.send(WsMessage::Text(json!({"type": "submit", "event": {"eventId": id, "eventType": "MESSAGE_SENT", "content": "via ws"}}).to_string().into()))
        .await
        .unwrap();
    let mut got_ack = false;
    let mut got_event = false;
    while !(got_ack && got_event) {
        let Some(Ok(WsMessage::Text(t))) = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .unwrap()
        else {
            panic!()
        };
        let v: Value = serde_json::from_str(&t).unwrap();
        match v["type"].as_str().unwrap() {
            "ack" => {
                assert_eq!(v["eventId"], id.to_string());
                assert_eq!(v["event"]["seq"], total as u64 + 1);
                got_ack = true;
            }
            "event" => {
                assert_eq!(v["event"]["seq"], total as u64 + 1);
                got_event = true;
            }
            other => panic!("unexpected frame {other}: {v}"),
        }
    }
    // a bad frame gets an error frame, and the socket stays open
    ws.send(WsMessage::Text("not json".into())).await.unwrap();
    let Some(Ok(WsMessage::Text(t))) = ws.next().await else {
        panic!()
    };
    let v: Value = serde_json::from_str(&t).unwrap();
    assert_eq!((v["type"].as_str(), code(&v)), (Some("error"), "bad_json"));
    assert!(v["eventId"].is_null());
    // logging out closes the socket with 4001
    c.delete(s.url("/api/sessions/current"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(close_code(&mut ws).await, Some(4001));
    s.stop().await;
}

#[tokio::test]
async fn time_travel_equals_replay_and_a_restart_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path(), 0).await;
    let c = Client::new();
    let alice = user(&c, &s, "alice").await;
    let bob = user(&c, &s, "bob").await;
    room(&c, &s, &alice, "history").await;
    let mut ids = Vec::new();
    for i in 0..40 {
        let (_, e) = post(
            &c,
            &s,
            if i % 2 == 0 { &alice } else { &bob },
            "history",
            send(&format!("m{i}")),
        )
        .await;
        ids.push(e["eventId"].as_str().unwrap().to_owned());
        if i % 5 == 4 {
            let target = &ids[i - 2];
            let who = if (i - 2) % 2 == 0 { &alice } else { &bob };
            post(&c, &s, who, "history", json!({"eventId": Uuid::new_v4(), "eventType": "MESSAGE_EDITED", "content": format!("edited {i}"), "targetMessageId": target})).await;
            post(&c, &s, &bob, "history", json!({"eventId": Uuid::new_v4(), "eventType": "REACTION_ADDED", "content": "👍", "targetMessageId": ids[i - 1]})).await;
            post(&c, &s, &bob, "history", json!({"eventId": Uuid::new_v4(), "eventType": "MESSAGE_READ", "targetMessageId": ids[i - 3]})).await;
        }
        if i % 7 == 6 {
            let who = if (i - 1) % 2 == 0 { &alice } else { &bob };
            post(&c, &s, who, "history", json!({"eventId": Uuid::new_v4(), "eventType": "MESSAGE_DELETED", "targetMessageId": ids[i - 1]})).await;
        }
    }
    let (_, page) = get(&c, &s, &alice, "/api/rooms/history/events?limit=5000").await;
    let events: Vec<domain::ChatEvent> = serde_json::from_value(page["events"].clone()).unwrap();
    let last = events.len() as u64;
    // the projection equals the replay
    let full = domain::RoomState::replay(events.clone()).unwrap();
    let (_, now) = get(&c, &s, &alice, "/api/rooms/history/messages?limit=500").await;
    assert_eq!(now["messages"], serde_json::to_value(full.views()).unwrap());
    // time travel at every seq equals the replay of that prefix
    for k in 0..=last {
        let (st, v) = get(
            &c,
            &s,
            &alice,
            &format!("/api/rooms/history/messages?atSeq={k}&limit=500"),
        )
        .await;
        assert_eq!(st, StatusCode::OK);
        let want = domain::RoomState::replay(events[..k as usize].to_vec())
            .unwrap()
            .views();
        assert_eq!(
            v["messages"],
            serde_json::to_value(&want).unwrap(),
            "atSeq={k}"
        );
        assert_eq!(
            (v["asOfSeq"].as_u64(), v["lastSeq"].as_u64()),
            (Some(k), Some(last))
        );
    }
    // by time: right after the event at the 20th seq
    let t = events[19].timestamp.to_rfc3339();
    let (_, v) = get(
        &c,
        &s,
        &alice,
        &format!("/api/rooms/history/messages?at={t}&limit=500"),
    )
    .await;
    let k = events
        .iter()
        .filter(|e| e.timestamp <= events[19].timestamp)
        .count();
    assert_eq!(v["asOfSeq"].as_u64(), Some(k as u64));
    // windows before a seq
    let (_, v) = get(
        &c,
        &s,
        &alice,
        "/api/rooms/history/messages?limit=5&beforeSeq=30",
    )
    .await;
    let want: Vec<_> = full.window_views(5, Some(30)).unwrap();
    assert_eq!(v["messages"], serde_json::to_value(&want).unwrap());
    // the snapshot route gives a state that replays to the same room
    let (_, snap) = get(&c, &s, &alice, "/api/rooms/history/snapshot").await;
    let k = snap["seq"].as_u64().unwrap();
    assert!(k > 0, "snapshots are taken every 10 events in this test");
    let mut st: domain::RoomState = serde_json::from_value(snap["state"].clone()).unwrap();
    st.apply_all(events[k as usize..].to_vec()).unwrap();
    assert_eq!(st, full);

    // restart on the same DATA_DIR keeps everything
    s.stop().await;
    let s = TestServer::start(dir.path(), 0).await;
    let alice2 = sign_in(&c, &s, "alice").await;
    assert_eq!(
        get(&c, &s, &alice, "/api/rooms").await.0,
        StatusCode::OK,
        "old tokens survive too"
    );
    let (_, again) = get(&c, &s, &alice2, "/api/rooms/history/events?limit=5000").await;
    assert_eq!(again["events"], page["events"]);
    let (_, after) = get(&c, &s, &alice2, "/api/rooms/history/messages?limit=500").await;
    assert_eq!(after["messages"], now["messages"]);
    let (st, e) = post(&c, &s, &alice2, "history", send("after restart")).await;
    assert_eq!(
        (st, e["seq"].as_u64()),
        (StatusCode::CREATED, Some(last + 1))
    );
    s.stop().await;
}

#[tokio::test]
async fn requests_over_the_rate_limit_get_429_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path(), 1).await;
    let c = Client::new();
    let token = user(&c, &s, "alice").await;
    let mut limited = None;
    for _ in 0..20 {
        let r = c
            .get(s.url("/api/rooms"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(r);
            break;
        }
    }
    let r = limited.expect("a burst of 5 at 1/s is limited");
    assert!(r.headers().get("retry-after").is_some());
    assert_eq!(code(&r.json().await.unwrap()), "rate_limited");
    s.stop().await;
}

#[tokio::test]
async fn health_metrics_openapi() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path(), 0).await;
    let c = Client::new();
    // A bus between instances connects in the background.
    wait_until(5, "the bus connects", || async {
        health(&c, &s).await["busConnected"] == true
    })
    .await;
    assert_eq!(
        health(&c, &s).await,
        json!({"status": "ok", "store": store_kind(), "bus": bus_kind(), "busConnected": true})
    );
    let token = user(&c, &s, "alice").await;
    room(&c, &s, &token, "r").await;
    post(&c, &s, &token, "r", send("x")).await;
    let m = c
        .get(s.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(m.contains("chat_appends_total 2"), "{m}");
    assert!(m.contains("chat_append_seconds_bucket"));
    let o: Value = c
        .get(s.url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // generated from the handlers: every route of the contract, with its errors
    for (path, method) in [
        ("/api/users", "post"),
        ("/api/sessions", "post"),
        ("/api/sessions/current", "delete"),
        ("/api/rooms", "get"),
        ("/api/rooms", "post"),
        ("/api/rooms/{roomId}", "get"),
        ("/api/rooms/{roomId}/events", "get"),
        ("/api/rooms/{roomId}/events", "post"),
        ("/api/rooms/{roomId}/messages", "get"),
        ("/api/rooms/{roomId}/snapshot", "get"),
        ("/api/rooms/{roomId}/ws", "get"),
        ("/healthz", "get"),
        ("/metrics", "get"),
        ("/api/openapi.json", "get"),
    ] {
        assert!(o["paths"][path][method].is_object(), "{method} {path}");
    }
    assert!(o["openapi"].as_str().unwrap().starts_with("3."));
    let post = &o["paths"]["/api/rooms/{roomId}/events"]["post"]["responses"];
    for status in [
        "201", "200", "400", "401", "403", "404", "409", "413", "422", "429", "503",
    ] {
        assert!(post[status].is_object(), "append documents {status}");
    }
    assert!(o["components"]["securitySchemes"]["bearer"].is_object());
    let r = c
        .get(s.url("/api/rooms/r/ws"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UPGRADE_REQUIRED);
    s.stop().await;
}

#[tokio::test]
async fn serves_the_web_app_with_an_index_fallback_but_never_for_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("dist");
    std::fs::create_dir_all(&web).unwrap();
    std::fs::write(web.join("index.html"), "<!doctype html><title>chat</title>").unwrap();
    std::fs::write(web.join("app.js"), "console.log(1)").unwrap();
    let mut config = TestServer::config(&dir.path().join("data"), 0);
    config.static_dir = web;
    let s = TestServer::start_with(config, None).await;
    let c = Client::new();
    for path in ["/", "/rooms/general", "/some/deep/link"] {
        let r = c.get(s.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert!(
            r.text().await.unwrap().contains("<title>chat</title>"),
            "{path}"
        );
    }
    let r = c.get(s.url("/app.js")).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "console.log(1)");
    for path in ["/api/nope", "/api/rooms/x/nope", "/api"] {
        let r = c.get(s.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
        assert_eq!(code(&r.json().await.unwrap()), "not_found", "{path}");
    }
    let r = c.post(s.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    s.stop().await;
}

#[tokio::test]
async fn a_socket_that_falls_behind_is_resynced_from_the_store() {
    // On the embedded store whatever the suite runs on: the slow socket
    // reads nothing while more than 1,024 events pass, and a server closes
    // a socket that takes nothing for 10 s (4008); the Python MongoDB
    // server of the suites' second run takes 2 to 20 s for these appends.
    let dir = tempfile::tempdir().unwrap();
    let mut config = TestServer::config(dir.path(), 0);
    config.mongodb_uri = None;
    config.redis_url = None;
    let s = TestServer::start_with(config, None).await;
    let c = Client::new();
    let token = user(&c, &s, "alice").await;
    room(&c, &s, &token, "r").await;
    let (mut slow, _) =
        tokio_tungstenite::connect_async(s.ws_url(&format!("/api/rooms/r/ws?token={token}")))
            .await
            .unwrap();
    // Far more events than the live buffer holds (1,024), and more bytes
    // than the TCP buffers hold, arrive while the socket reads nothing;
    // submits go over a second socket, pipelined.
    let (mut writer, _) = tokio_tungstenite::connect_async(
        s.ws_url(&format!("/api/rooms/r/ws?afterSeq=999999999&token={token}")),
    )
    .await
    .unwrap();
    let total = 3000;
    submit_pipelined(&mut writer, total, 200, |i| {
        format!("{i} {}", "x".repeat(3000))
    })
    .await;
    // now the slow socket reads: every event, in order, exactly once
    let mut expected = 1u64;
    tokio::time::timeout(Duration::from_secs(60), async {
        while expected <= total as u64 + 1 {
            let t = match slow.next().await {
                Some(Ok(WsMessage::Text(t))) => t,
                Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => continue,
                other => panic!("socket ended: {other:?}"),
            };
            let v: Value = serde_json::from_str(&t).unwrap();
            assert_eq!(v["event"]["seq"].as_u64(), Some(expected));
            expected += 1;
        }
    })
    .await
    .expect("all events arrive");
    let m = c
        .get(s.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let resyncs: u64 = m
        .lines()
        .find_map(|l| l.strip_prefix("chat_ws_resyncs_total "))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(resyncs > 0, "the slow socket fell behind and was resynced");
    s.stop().await;
}

#[tokio::test]
async fn the_openapi_document_states_the_contracts_constraints() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path(), 0).await;
    let c = Client::new();
    let o: Value = c
        .get(s.url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let schemas = &o["components"]["schemas"];
    // events in responses: the seven eventTypes, lowercase UUIDs, all eight fields
    assert_eq!(
        schemas["EventType"]["enum"],
        json!([
            "ROOM_CREATED",
            "MESSAGE_SENT",
            "MESSAGE_EDITED",
            "MESSAGE_DELETED",
            "MESSAGE_READ",
            "REACTION_ADDED",
            "REACTION_REMOVED"
        ])
    );
    let event = &schemas["ChatEvent"];
    assert_eq!(
        event["properties"]["eventType"]["$ref"],
        "#/components/schemas/EventType"
    );
    assert_eq!(event["required"].as_array().unwrap().len(), 8);
    assert_eq!(event["properties"]["eventId"]["format"], "uuid");
    // submissions: one alternative per type a client may send, ROOM_CREATED not among them
    let alternatives = schemas["NewEvent"]["oneOf"].as_array().unwrap();
    let types: Vec<&str> = alternatives
        .iter()
        .map(|a| a["properties"]["eventType"]["enum"][0].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "MESSAGE_SENT",
            "MESSAGE_EDITED",
            "MESSAGE_DELETED",
            "MESSAGE_READ",
            "REACTION_ADDED",
            "REACTION_REMOVED"
        ]
    );
    let sent = &alternatives[0]["properties"];
    assert_eq!(sent["content"]["maxLength"], 4000);
    assert_eq!(sent["content"]["minLength"], 1);
    assert!(sent["content"]["pattern"]
        .as_str()
        .unwrap()
        .contains(r"\u00A0"));
    assert_eq!(sent["eventId"]["format"], "uuid");
    assert_eq!(sent["expectedSeq"]["minimum"], 0);
    assert_eq!(alternatives[4]["properties"]["content"]["maxLength"], 16);
    assert!(alternatives[4]["required"]
        .as_array()
        .unwrap()
        .contains(&json!("targetMessageId")));
    // ids, names, passwords
    let id = &schemas["SignUp"]["properties"]["userId"];
    assert_eq!(id["pattern"], r"^(?!\.\.?$)[A-Za-z0-9_.-]{1,32}$");
    assert_eq!(
        schemas["NewRoom"]["properties"]["roomId"]["pattern"],
        id["pattern"]
    );
    assert_eq!(schemas["NewRoom"]["properties"]["name"]["maxLength"], 100);
    assert_eq!(schemas["SignUp"]["properties"]["password"]["minLength"], 8);
    assert_eq!(
        schemas["SignUp"]["properties"]["password"]["maxLength"],
        1024
    );
    // error codes, domain and server alike
    let codes = schemas["ErrorCode"]["enum"].as_array().unwrap();
    for code in [
        "bad_json",
        "forbidden",
        "seq_conflict",
        "internal",
        "upgrade_required",
    ] {
        assert!(codes.contains(&json!(code)), "{code}");
    }
    // query integers: non-negative, no maximum the server does not enforce
    let params = o["paths"]["/api/rooms/{roomId}/events"]["get"]["parameters"]
        .as_array()
        .unwrap();
    let limit = params.iter().find(|p| p["name"] == "limit").unwrap();
    assert_eq!(limit["schema"]["type"], "integer");
    assert_eq!(limit["schema"]["minimum"], 0);
    assert!(limit["schema"].get("maximum").is_none());
    assert!(limit["schema"].get("format").is_none());
    let room_id = params.iter().find(|p| p["name"] == "roomId").unwrap();
    assert_eq!(room_id["required"], true);
    assert_eq!(room_id["schema"]["pattern"], id["pattern"]);
    // the WebSocket route: 101 on upgrade, 426 to a plain GET
    let ws = &o["paths"]["/api/rooms/{roomId}/ws"]["get"]["responses"];
    assert!(ws["101"].is_object() && ws["426"].is_object());
    // every error response is the error body
    for (path, item) in o["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for (status, r) in op["responses"].as_object().unwrap() {
                if status.starts_with('4') || (status.starts_with('5') && path != "/healthz") {
                    assert_eq!(
                        r["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/ErrorBody",
                        "{method} {path} {status}"
                    );
                }
            }
        }
    }
    s.stop().await;
}

#[tokio::test]
async fn bodies_keep_the_contracts_shape_and_integers_may_be_written_as_floats() {
    let (_dir, s, c, token) = setup("r").await;
    // an event: eight fields in the contract's order, nulls included
    let r = c
        .post(s.url("/api/rooms/r/events"))
        .bearer_auth(&token)
        .json(&send("hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let text = r.text().await.unwrap();
    let keys: Vec<String> = text
        .split(",\"")
        .map(|k| {
            k.trim_start_matches("{\"")
                .split('"')
                .next()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        keys,
        [
            "eventId",
            "roomId",
            "seq",
            "eventType",
            "senderId",
            "content",
            "targetMessageId",
            "timestamp"
        ],
        "{text}"
    );
    assert!(text.contains(r#""targetMessageId":null"#), "{text}");
    // a view: reactions {} and editedAt null
    let (_, page) = get(&c, &s, &token, "/api/rooms/r/messages").await;
    let m = &page["messages"][0];
    assert_eq!(
        (&m["reactions"], &m["editedAt"]),
        (&json!({}), &Value::Null)
    );
    assert!(page.get("asOfSeq").is_none());
    // expectedSeq: a JSON integer however it is written; other numbers are bad_json
    let with_seq = |seq: Value| {
        let mut b = send("x");
        b["expectedSeq"] = seq;
        b
    };
    let (st, v) = post(&c, &s, &token, "r", with_seq(json!(75856.0))).await;
    assert_eq!(
        (st, code(&v), &v["error"]["lastSeq"]),
        (StatusCode::CONFLICT, "seq_conflict", &json!(2))
    );
    let (st, v) = post(&c, &s, &token, "r", with_seq(json!(2.0))).await;
    assert_eq!((st, &v["seq"]), (StatusCode::CREATED, &json!(3)));
    for bad in [json!(2.5), json!(-1), json!("3")] {
        let (st, v) = post(&c, &s, &token, "r", with_seq(bad.clone())).await;
        assert_eq!(
            (st, code(&v)),
            (StatusCode::BAD_REQUEST, "bad_json"),
            "{bad}"
        );
    }
    // blank is blank in every Unicode white space, U+00A0 included
    let r = c
        .post(s.url("/api/rooms"))
        .bearer_auth(&token)
        .json(&json!({"roomId": "nbsp", "name": "\u{a0}"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(code(&r.json().await.unwrap()), "content_empty");
    // a room id that is not UTF-8 names no room, after authentication
    let r = c.get(s.url("/api/rooms/%FF/events")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let (st, v) = get(&c, &s, &token, "/api/rooms/%FF/events").await;
    assert_eq!((st, code(&v)), (StatusCode::NOT_FOUND, "room_not_found"));
    // a time travel point before year 0 once in UTC is still a time: before the first event
    let (st, v) = get(
        &c,
        &s,
        &token,
        "/api/rooms/r/messages?at=0000-01-01T00:00:00%2B01:00",
    )
    .await;
    assert_eq!((st, &v["asOfSeq"]), (StatusCode::OK, &json!(0)));
    assert_eq!(v["messages"], json!([]));
    // and one after year 9999 once in UTC: the present
    let (st, v) = get(
        &c,
        &s,
        &token,
        "/api/rooms/r/messages?at=9999-12-31T23:59:59.999-01:00",
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["asOfSeq"], v["lastSeq"]);
    s.stop().await;
}

#[tokio::test]
async fn a_snapshot_window_holds_the_newest_messages_of_a_large_room() {
    let (_dir, s, c, token) = setup("big").await;
    let (mut ws, _) = tokio_tungstenite::connect_async(
        s.ws_url(&format!("/api/rooms/big/ws?afterSeq=100000&token={token}")),
    )
    .await
    .unwrap();
    // Over two chunks of 256 seqs, so that a window can leave some out.
    submit_pipelined(&mut ws, 700, 64, |i| format!("message {i}")).await;
    let (st, whole) = get(&c, &s, &token, "/api/rooms/big/snapshot").await;
    assert_eq!(st, StatusCode::OK);
    let whole: domain::RoomState = serde_json::from_value(whole["state"].clone()).unwrap();
    assert!(whole.coverage().is_none());
    for (query, newest) in [("window=5", 5), ("window=0", 1), ("window=99999", 500)] {
        let (st, part) = get(&c, &s, &token, &format!("/api/rooms/big/snapshot?{query}")).await;
        assert_eq!(st, StatusCode::OK, "{query}");
        let part: domain::RoomState = serde_json::from_value(part["state"].clone()).unwrap();
        assert_eq!(part.last_seq(), whole.last_seq(), "{query}");
        assert_eq!(
            part.window_views(newest, None).unwrap(),
            whole.window_views(newest, None).unwrap(),
            "{query}: the newest messages are all there"
        );
        if newest < 256 {
            assert!(part.coverage().is_some(), "{query}: only part of the room");
            // The messages asked for, not the rest of their chunks.
            assert_eq!(part.message_count(), newest, "{query}");
        }
    }
    for query in ["window=abc", "window=-1", "window=1.5"] {
        let (st, v) = get(&c, &s, &token, &format!("/api/rooms/big/snapshot?{query}")).await;
        assert_eq!(
            (st, code(&v)),
            (StatusCode::BAD_REQUEST, "bad_query"),
            "{query}"
        );
    }
    s.stop().await;
}

#[tokio::test]
async fn responses_are_compressed_when_the_client_accepts_it() {
    let (_dir, s, c, token) = setup("r").await;
    for i in 0..50 {
        post(&c, &s, &token, "r", send(&format!("message number {i}"))).await;
    }
    for (accept, encoding) in [
        ("gzip", Some("gzip")),
        ("br", Some("br")),
        ("identity", None),
    ] {
        let r = c
            .get(s.url("/api/rooms/r/events?limit=500"))
            .bearer_auth(&token)
            .header("accept-encoding", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let got = r
            .headers()
            .get("content-encoding")
            .map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(got.as_deref(), encoding, "Accept-Encoding: {accept}");
    }
    s.stop().await;
}
