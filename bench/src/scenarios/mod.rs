//! The scenarios, one module each, numbered as in BENCHMARKS.md.

pub mod append;
pub mod cross_instance;
pub mod fanout;
pub mod growth;
pub mod http_floor;
pub mod idle;
pub mod mongo_append;
pub mod replay;
pub mod room_open;
pub mod text;

use std::time::Duration;

/// The WebSocket settings of every client here. tungstenite zeroes its read
/// buffer's free space before each read, and its default buffer is 128 KiB:
/// at a thousand subscribers that zeroing took half the load generator's
/// CPU (scenario 4), on the 2 cores it shares with the server. 4 KiB holds
/// several of our frames; a larger one takes several reads.
pub(crate) fn ws_client_config() -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
    tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default().read_buffer_size(4 * 1024)
}

/// Rooms the events before scenario 8's measure are appended to at once
/// (`one` and the first seven of the 64), a socket each.
pub(crate) const FILL_ROOMS: usize = 8;
/// Submits waiting for their acks on each of those sockets: deeper
/// queues only wait longer for the store (on MongoDB, past 3 s they are
/// answered `unavailable`).
pub(crate) const FILL_IN_FLIGHT: usize = 64;

/// Appends `n` events spread over `rooms`, a socket each with `in_flight`
/// submits waiting (see [`fill`]), and checks that each room's `lastSeq`
/// moved by its share. `None` when `n` is 0 or there are no rooms; else
/// the rate (events/s) and how many submits were sent again.
pub(crate) async fn fill_rooms(
    server: &crate::server::Server,
    token: &str,
    rooms: &[&String],
    n: usize,
    in_flight: usize,
) -> Option<(f64, u32)> {
    use futures_util::future::join_all;
    use mongo_append::last_seq;
    if n == 0 || rooms.is_empty() {
        return None;
    }
    let t = std::time::Instant::now();
    let before: Vec<u64> = join_all(rooms.iter().map(|room| last_seq(server, token, room))).await;
    let share = |k: usize| n / rooms.len() + usize::from(k < n % rooms.len());
    let resent: u32 = join_all(rooms.iter().enumerate().map(|(k, room)| {
        fill(server, token, room, share(k), in_flight, |_| {
            text::send_body()
        })
    }))
    .await
    .into_iter()
    .sum();
    let rate = n as f64 / t.elapsed().as_secs_f64();
    for (k, room) in rooms.iter().enumerate() {
        let last = last_seq(server, token, room).await;
        assert_eq!(
            last,
            before[k] + share(k) as u64,
            "room {room}: lastSeq after the fill"
        );
    }
    Some((rate, resent))
}

/// Appends `n` events to `room` over one socket, `in_flight` waiting for
/// their acks at a time: the `i`-th is `body(i)` (a submit's event, each
/// with an `eventId` of its own, lowercase). A submit answered
/// `unavailable` is sent again after a pause, as the contract asks of a
/// client, [`mongo_append::RETRIES`] times at most. Returns how many were
/// sent again.
pub(crate) async fn fill(
    server: &crate::server::Server,
    token: &str,
    room: &str,
    n: usize,
    in_flight: usize,
    body: impl Fn(usize) -> serde_json::Value,
) -> u32 {
    use futures_util::{SinkExt, StreamExt};
    use mongo_append::{REQUEST_TIMEOUT, RETRIES};
    use std::collections::HashMap;
    use tokio_tungstenite::tungstenite::Message;
    if n == 0 {
        return 0;
    }
    let url = server.ws_url(&format!(
        "/api/rooms/{room}/ws?afterSeq={}&token={token}",
        u64::MAX
    ));
    let (socket, _) = tokio::time::timeout(
        REQUEST_TIMEOUT,
        tokio_tungstenite::connect_async_with_config(url, Some(ws_client_config()), false),
    )
    .await
    .expect("a WebSocket in time")
    .expect("a WebSocket");
    let (mut tx, mut rx) = socket.split();
    let (mut sent, mut acked, mut resent) = (0, 0, 0);
    // eventId → the event and how often it was answered `unavailable`.
    let mut waiting: HashMap<String, (serde_json::Value, u32)> = HashMap::new();
    while acked < n {
        while sent < n && sent - acked < in_flight {
            let event = body(sent);
            let frame = serde_json::json!({"type": "submit", "event": event});
            tx.send(Message::Text(frame.to_string().into()))
                .await
                .expect("a submit");
            waiting.insert(event["eventId"].to_string(), (event, 0));
            sent += 1;
        }
        let v: serde_json::Value = match tokio::time::timeout(REQUEST_TIMEOUT, rx.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => serde_json::from_str(&t).expect("a JSON frame"),
            Ok(Some(Ok(Message::Close(frame)))) => panic!("the socket was closed: {frame:?}"),
            Ok(Some(Ok(_))) => continue,
            Ok(other) => panic!("the socket ended: {other:?}"),
            Err(_) => panic!("no ack within {REQUEST_TIMEOUT:?}"),
        };
        let id = v["eventId"].to_string();
        match v["type"].as_str() {
            // Its own events, should the server send them.
            Some("event") => {}
            Some("error") if v["error"]["code"] == "unavailable" => {
                let (event, tries) = waiting.get_mut(&id).unwrap_or_else(|| panic!("{v}"));
                *tries += 1;
                assert!(
                    *tries <= RETRIES,
                    "{room}: unavailable {RETRIES} times: {v}"
                );
                resent += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
                let frame = serde_json::json!({"type": "submit", "event": event});
                tx.send(Message::Text(frame.to_string().into()))
                    .await
                    .expect("a submit");
            }
            _ => {
                assert_eq!(v["type"], "ack", "{v}");
                assert!(waiting.remove(&id).is_some(), "an ack of a submit: {v}");
                acked += 1;
            }
        }
    }
    let _ = tx.send(Message::Close(None)).await;
    if resent > 0 {
        eprintln!("{room}: {resent} submits answered unavailable and sent again");
    }
    resent
}
