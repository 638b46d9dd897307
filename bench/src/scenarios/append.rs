//! Scenario 2: durable appends on the embedded store, end to end. HTTP
//! writers (1, 8 and 64 at once, each waiting for its `201` before the
//! next) and WebSocket sockets with pipelined submits, into one room and
//! into 64 rooms. Baseline of the same run: redb written directly with the
//! same durability, the same event bytes, one fsync'd transaction per
//! batch of the size the server's group commits had in that case.

use crate::measure::{Latency, Meter, Usage};
use crate::report::{thousands, Row};
use crate::scenarios::http_floor;
use crate::scenarios::mongo_append::{REQUEST_TIMEOUT, RETRIES};
use crate::scenarios::text::send_body;
use crate::scenarios::{FILL_IN_FLIGHT, FILL_ROOMS};
use crate::server::Server;
use domain::{ChatEvent, EventKind, Timestamp};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

/// The sample event's text; the texts appended are random words of its
/// length ([`super::text`]).
const CONTENT: &str = "a benchmark message of a typical length, about sixty chars";

/// How one case loads the server.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Load {
    /// This many HTTP writers, one request at a time each.
    Http(usize),
    /// This many sockets, each keeping this many submits waiting for acks.
    Ws(usize, usize),
}

/// What one case measured.
struct Measured {
    events: usize,
    latency: Latency,
    usage: Usage,
    batch: f64,
}

/// The cases, then scenario 8 after `fill_to` events (what the cases
/// appended, and the rest over pipelined sockets).
pub async fn run(bin: &Path, seconds: u64, fill_to: usize) -> Vec<Row> {
    let server = Server::start(bin, &[]).await;
    // A user has at most 32 sockets open: the sockets are spread over four.
    let mut tokens = Vec::new();
    for u in 0..4 {
        tokens.push(server.user(&format!("writer{u}")).await);
    }
    let token = tokens[0].clone();
    let one = vec!["one".to_owned()];
    let many: Vec<String> = (0..64).map(|i| format!("r{i}")).collect();
    for room in one.iter().chain(&many) {
        server.room(&token, room).await;
    }
    let cases = [
        (Load::Http(1), &one),
        (Load::Http(8), &one),
        (Load::Http(64), &one),
        (Load::Http(8), &many),
        (Load::Http(64), &many),
        (Load::Ws(4, 200), &one),
        (Load::Ws(64, 32), &many),
    ];
    let mut rows = Vec::new();
    for (load, rooms) in cases {
        let m = measure(&server, &tokens, rooms, load, Duration::from_secs(seconds)).await;
        let batch = m.batch.round().max(1.0) as usize;
        // Into as many rooms as the case: the same keys a room's rows take.
        let n_rooms = rooms.len();
        let raw = tokio::task::spawn_blocking(move || {
            raw_redb(m.events.clamp(1000, 300_000), batch, n_rooms).0
        })
        .await
        .expect("the baseline runs");
        // What HTTP alone allows on this machine, next to the targeted cases.
        let floor = match load {
            Load::Http(w) if w == 64 => {
                Some(http_floor::measure(w, Duration::from_secs(seconds), send_body).await)
            }
            _ => None,
        };
        rows.push(row(load, rooms.len(), &m, raw, batch, floor));
    }
    let stored = server.metric("chat_appends_total").await as usize;
    let rest = fill_to.saturating_sub(stored);
    let fill_rooms: Vec<&String> = one.iter().chain(&many).take(FILL_ROOMS).collect();
    if let Some((rate, resent)) =
        super::fill_rooms(&server, &token, &fill_rooms, rest, FILL_IN_FLIGHT).await
    {
        eprintln!(
            "scenario 8 (embedded): {} more events over {FILL_ROOMS} sockets at {rate:.0} events/s ({resent} sent again)",
            thousands(rest as f64)
        );
    }
    rows.push(storage(&server).await);
    rows
}

/// Scenario 8 on what the cases above appended: bytes on disk per event
/// (events, their ids, the projection, snapshots, and pages redb has not
/// reused yet) against the events' own JSON.
async fn storage(server: &Server) -> Row {
    let events = server.metric("chat_appends_total").await;
    let disk = server.data_bytes() as f64;
    let json = sample_event().to_json().len() as f64;
    let per_event = disk / events.max(1.0);
    let times = per_event / json;
    // The same number of the events' JSON rows alone, in redb directly.
    let n = (events as usize).clamp(1000, 1_000_000);
    let raw = tokio::task::spawn_blocking(move || raw_redb(n, 32, 1).1)
        .await
        .expect("the baseline runs");
    Row {
        scenario: "8 storage, embedded".into(),
        case: format!("after {} events", thousands(events)),
        result: format!("{} bytes on disk per event", thousands(per_event)),
        baseline: format!("the event's JSON: {} bytes", thousands(json)),
        ratio: Some(json / per_event),
        target: "≤ 2 × the JSON".into(),
        met: Some(times <= 2.0),
        notes: format!(
            "{times:.1} × the JSON; the blocks the redb file takes. The events' JSON rows alone, written to redb directly: {} bytes per event ({:.1} × the JSON: redb's leaves are half full under appends at the end)",
            thousands(raw),
            raw / json
        ),
        figures: serde_json::json!({"events": events, "disk_bytes": disk, "json_bytes_per_event": json, "raw_redb_bytes_per_event": raw}),
    }
}

/// An event as the server stores one of this scenario's.
fn sample_event() -> ChatEvent {
    ChatEvent {
        event_id: Uuid::new_v4(),
        room_id: "one".into(),
        seq: 1,
        sender_id: "writer0".into(),
        timestamp: Timestamp::from_millis(1_795_000_000_000).expect("a time"),
        kind: EventKind::MessageSent {
            content: CONTENT.into(),
        },
    }
}

async fn measure(
    server: &Server,
    tokens: &[String],
    rooms: &[String],
    load: Load,
    time: Duration,
) -> Measured {
    let (appends0, commits0) = (
        server.metric("chat_appends_total").await,
        server.metric("chat_group_commit_seconds_count").await,
    );
    let meter = Meter::start(server.pid());
    let deadline = Instant::now() + time;
    let latencies = match load {
        Load::Http(writers) => http(server, &tokens[0], rooms, writers, deadline).await,
        Load::Ws(sockets, window) => {
            let (per_socket, _) =
                ws(server, tokens, rooms, sockets, window, deadline, send_body).await;
            per_socket.concat()
        }
    };
    let usage = meter.stop();
    let appends = server.metric("chat_appends_total").await - appends0;
    let commits = server.metric("chat_group_commit_seconds_count").await - commits0;
    Measured {
        events: latencies.len(),
        latency: Latency::of(latencies),
        usage,
        batch: if commits > 0.0 {
            appends / commits
        } else {
            1.0
        },
    }
}

/// `writers` tasks posting until `deadline`, spread over `rooms`; each
/// request's latency.
async fn http(
    server: &Server,
    token: &str,
    rooms: &[String],
    writers: usize,
    deadline: Instant,
) -> Vec<Duration> {
    let urls: Vec<String> = rooms
        .iter()
        .map(|room| server.url(&format!("/api/rooms/{room}/events")))
        .collect();
    http_floor::post_until(&server.http, &urls, token, writers, deadline, send_body).await
}

/// `sockets` WebSockets (the users of `tokens` in turn) submitting into
/// `rooms` until `deadline`, each keeping `window` submits waiting for
/// their answers: each socket's acks' latencies from their first submit
/// (socket `k` writes to room `k % rooms.len()`), and how many
/// submits were answered `unavailable` (sent again, as a client does; the
/// answers come in submit order, so a submit sent again is answered after
/// those sent before it).
pub(crate) async fn ws(
    server: &Server,
    tokens: &[String],
    rooms: &[String],
    sockets: usize,
    window: usize,
    deadline: Instant,
    body: fn() -> Value,
) -> (Vec<Vec<Duration>>, u32) {
    let mut tasks = Vec::new();
    for k in 0..sockets {
        let room = &rooms[k % rooms.len()];
        let token = &tokens[k % tokens.len()];
        let url = server.ws_url(&format!(
            "/api/rooms/{room}/ws?afterSeq={}&token={token}",
            u64::MAX
        ));
        tasks.push(tokio::spawn(async move {
            let (socket, _) = tokio::time::timeout(
                REQUEST_TIMEOUT,
                tokio_tungstenite::connect_async_with_config(
                    url,
                    Some(super::ws_client_config()),
                    false,
                ),
            )
            .await
            .expect("a WebSocket in time")
            .expect("a WebSocket");
            let (mut tx, mut rx) = socket.split();
            let mut waiting: std::collections::VecDeque<(Value, Instant, u32)> = Default::default();
            let (mut latencies, mut unavailable) = (Vec::new(), 0);
            loop {
                while Instant::now() < deadline && waiting.len() < window {
                    let event = body();
                    let frame = json!({"type": "submit", "event": event});
                    tx.send(Message::Text(frame.to_string().into()))
                        .await
                        .expect("a submit");
                    waiting.push_back((event, Instant::now(), 0));
                }
                if waiting.is_empty() {
                    return (latencies, unavailable);
                }
                let text = match tokio::time::timeout(REQUEST_TIMEOUT, rx.next()).await {
                    Ok(Some(Ok(Message::Text(t)))) => t,
                    Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
                    Ok(other) => panic!("the socket ended: {other:?}"),
                    Err(_) => panic!("no answer within {REQUEST_TIMEOUT:?}"),
                };
                let v: Value = serde_json::from_str(&text).expect("a JSON frame");
                let (event, sent, tries) = waiting.pop_front().expect("an answer to a submit");
                assert_eq!(
                    v["eventId"], event["eventId"],
                    "answers in submit order: {v}"
                );
                if v["type"] == "error" && v["error"]["code"] == "unavailable" && tries < RETRIES {
                    unavailable += 1;
                    let frame = json!({"type": "submit", "event": event});
                    tx.send(Message::Text(frame.to_string().into()))
                        .await
                        .expect("a submit");
                    waiting.push_back((event, sent, tries + 1));
                    continue;
                }
                assert_eq!(v["type"], "ack", "not an ack: {v}");
                latencies.push(sent.elapsed());
            }
        }));
    }
    let (mut all, mut unavailable) = (Vec::new(), 0);
    for t in tasks {
        let (latencies, retried) = t.await.expect("a socket");
        all.push(latencies);
        unavailable += retried;
    }
    (all, unavailable)
}

/// Writes `events` events to redb in fsync'd transactions of `batch`
/// events, spread in turn over `rooms` rooms (each room's rows keyed by
/// its id and seq, as the server keys them); events/s, and the bytes on
/// disk per event.
fn raw_redb(events: usize, batch: usize, rooms: usize) -> (f64, f64) {
    const EVENTS: redb::TableDefinition<(&str, u64), &[u8]> = redb::TableDefinition::new("events");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let db = redb::Database::create(dir.path().join("raw.redb")).expect("a redb file");
    let bytes: Arc<[u8]> = sample_event().to_json().into_bytes().into();
    let names: Vec<String> = (0..rooms).map(|i| format!("r{i}")).collect();
    let started = Instant::now();
    let mut seq = 0u64;
    while (seq as usize) < events {
        let tx = db.begin_write().expect("a transaction");
        {
            let mut t = tx.open_table(EVENTS).expect("the table");
            for _ in 0..batch {
                seq += 1;
                let n = (seq as usize - 1) % rooms;
                let room_seq = (seq - 1) / rooms as u64 + 1;
                t.insert((names[n].as_str(), room_seq), &*bytes)
                    .expect("an insert");
            }
        }
        tx.commit().expect("a durable commit");
    }
    let rate = seq as f64 / started.elapsed().as_secs_f64();
    drop(db);
    let file = std::fs::metadata(dir.path().join("raw.redb")).expect("the redb file");
    (rate, (file.blocks() * 512) as f64 / seq as f64)
}

fn row(
    load: Load,
    rooms: usize,
    m: &Measured,
    raw: f64,
    batch: usize,
    floor: Option<(f64, Latency)>,
) -> Row {
    let rate = m.events as f64 / m.usage.wall_s;
    let case = match load {
        Load::Http(w) => format!(
            "{w} HTTP writer{}, {rooms} room{}",
            if w > 1 { "s" } else { "" },
            if rooms > 1 { "s" } else { "" }
        ),
        Load::Ws(s, w) => format!(
            "{s} sockets × {w} pipelined, {rooms} room{}",
            if rooms > 1 { "s" } else { "" }
        ),
    };
    let ratio = rate / raw;
    let targeted = matches!(load, Load::Http(64));
    let u = &m.usage;
    let mut notes = format!(
        "server {:.1} s CPU, peak {:.0} MiB; generator {:.1} s CPU",
        u.server_cpu_s, u.server_peak_rss_mib, u.generator_cpu_s
    );
    if u.generator_bound() {
        notes.push_str("; **generator-bound**");
    }
    if let Some((floor, l)) = floor {
        notes.push_str(&format!(
            "; HTTP floor (the same writers, an axum route that stores nothing): {} events/s, p50 {:.1} ms = {:.2} × raw, {:.2} × this case",
            thousands(floor),
            l.p50_ms,
            floor / raw,
            rate / floor
        ));
    }
    Row {
        scenario: "2 durable append, embedded".into(),
        case,
        result: crate::measure::rate_and_latency(rate, &m.latency),
        baseline: format!(
            "raw redb, {batch} events per fsync{}: {} events/s",
            if rooms > 1 {
                format!(" over {rooms} rooms")
            } else {
                String::new()
            },
            thousands(raw)
        ),
        ratio: Some(ratio),
        target: if targeted {
            "≥ 0.5 × raw and ≥ 20,000/s".into()
        } else {
            "–".into()
        },
        met: targeted.then_some(ratio >= 0.5 && rate >= 20_000.0),
        notes,
        figures: serde_json::json!({
            "events": m.events,
            "events_per_s": rate,
            "latency": m.latency,
            "mean_batch": m.batch,
            "raw_events_per_s": raw,
            "http_floor_events_per_s": floor.map(|f| f.0),
            "usage": m.usage,
        }),
    }
}
