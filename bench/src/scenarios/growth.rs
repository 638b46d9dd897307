//! Scenario 9: whether an append costs more, and the server holds more
//! memory, as the data grows, on the embedded store. One room grows from
//! 1,000 events to 100,000 (1,000,000 in full mode), filled over a
//! WebSocket with pipelined submits; the number of rooms grows from 1 to
//! 10,000 (100,000), each with one message, made by 64 HTTP writers. At
//! each size: a few hundred appends made one at a time (and by 8 writers;
//! or spread over every room), and the server's resident memory. The
//! baseline of each size is the smallest size of the same run; and, since
//! this machine's speed drifts, appends made in turn with the measured
//! ones, at the same moments: into a fresh 1,000-event room of the same
//! server, or into a second server that has one room. Flat is the goal.

use super::fill;
use super::mongo_append::{append, last_seq, REQUEST_TIMEOUT};
use super::text::send_body;
use crate::measure::{rss_kib, Latency};
use crate::report::{thousands, Row};
use crate::server::Server;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Appends made one at a time at each size (and as many, in turn with
/// them, to the same moments' baseline).
const SINGLE: usize = 500;
/// Events of the fresh room each size of the big one is measured against.
const CONTROL: usize = 1_000;
/// Writers, and appends each, of the concurrent probe of the one room.
const WRITERS: usize = 8;
const EACH: usize = 100;
/// Appends by each of the [`WRITERS`] before anything is measured (the
/// server's first requests are slower).
const WARM_UP: usize = 25;
/// Submits kept waiting for their acks while the room is filled.
const IN_FLIGHT: usize = 400;
/// HTTP writers making rooms and their first messages.
const MAKERS: usize = 64;
/// The rooms of "a few".
const FEW: usize = 8;

pub async fn run(bin: &Path, full: bool) -> Vec<Row> {
    let (sizes, counts): (&[usize], &[usize]) = if full {
        (
            &[1_000, 10_000, 100_000, 1_000_000],
            &[1, 1_000, 10_000, 100_000],
        )
    } else {
        (&[1_000, 10_000, 100_000], &[1, 1_000, 10_000])
    };
    let started = Instant::now();
    let mut rows = one_room(bin, sizes).await;
    eprintln!(
        "scenario 9: one room to {} events in {:.0} s",
        thousands(*sizes.last().expect("sizes") as f64),
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    rows.extend(many_rooms(bin, counts).await);
    eprintln!(
        "scenario 9: {} rooms in {:.0} s",
        thousands(*counts.last().expect("counts") as f64),
        started.elapsed().as_secs_f64()
    );
    rows
}

/// What the server shows of itself at a size.
#[derive(Clone, Copy, Default)]
struct Gauges {
    rss_kib: u64,
    room_states: f64,
    room_states_bytes: f64,
    disk_bytes: u64,
}

impl Gauges {
    async fn of(server: &Server) -> Gauges {
        Gauges {
            rss_kib: rss_kib(server.pid()),
            room_states: server.metric("chat_room_states").await,
            room_states_bytes: server.metric("chat_room_states_bytes").await,
            disk_bytes: server.data_bytes(),
        }
    }
}

/// The mean group commit, in ms, from [`CommitClock::start`] to
/// [`CommitClock::mean_ms`], from the server's histogram.
struct CommitClock {
    sum: f64,
    count: f64,
}

impl CommitClock {
    async fn start(server: &Server) -> CommitClock {
        CommitClock {
            sum: server.metric("chat_group_commit_seconds_sum").await,
            count: server.metric("chat_group_commit_seconds_count").await,
        }
    }

    async fn mean_ms(self, server: &Server) -> f64 {
        let sum = server.metric("chat_group_commit_seconds_sum").await - self.sum;
        let count = server.metric("chat_group_commit_seconds_count").await - self.count;
        sum / count.max(1.0) * 1e3
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// One checkpoint of the growing room.
struct RoomSize {
    events: usize,
    /// Events a second while the room was filled up to this size.
    fill_rate: f64,
    single: Latency,
    /// A fresh room of [`CONTROL`] events, appended to in turn with the
    /// big one: the same moments' baseline.
    control: Latency,
    concurrent: Latency,
    commit_ms: f64,
    gauges: Gauges,
}

async fn one_room(bin: &Path, sizes: &[usize]) -> Vec<Row> {
    let server = Server::start(bin, &[]).await;
    let token = server.user("grower").await;
    server.room(&token, "big").await;
    let url = server.url("/api/rooms/big/events");
    let start_rss = rss_kib(server.pid());
    concurrently(&server, &token, &url, WARM_UP).await;
    // ROOM_CREATED is the first event.
    let mut appended = 1 + WRITERS * WARM_UP;
    let mut measured = Vec::new();
    for &size in sizes {
        let t = Instant::now();
        let n = size.saturating_sub(appended);
        fill(&server, &token, "big", n, IN_FLIGHT, |_| send_body()).await;
        appended += n;
        let fill_rate = n as f64 / t.elapsed().as_secs_f64();
        let control = format!("small{size}");
        server.room(&token, &control).await;
        fill(&server, &token, &control, CONTROL - 1, IN_FLIGHT, |_| {
            send_body()
        })
        .await;
        let control_url = server.url(&format!("/api/rooms/{control}/events"));
        let clock = CommitClock::start(&server).await;
        let turns = |k: usize| {
            let url = if k.is_multiple_of(2) {
                &url
            } else {
                &control_url
            };
            (url.clone(), token.clone())
        };
        let [single, control_latency]: [Latency; 2] =
            in_turns(one_at_a_time(&server.http, turns, 2 * SINGLE).await, 2)
                .try_into()
                .expect("two series");
        let commit_ms = clock.mean_ms(&server).await;
        appended += SINGLE;
        let last = last_seq(&server, &token, &control).await;
        assert_eq!(
            last,
            (CONTROL + SINGLE) as u64,
            "room {control}: lastSeq against the appends"
        );
        let concurrent = concurrently(&server, &token, &url, EACH).await;
        appended += WRITERS * EACH;
        measured.push(RoomSize {
            events: size,
            fill_rate,
            single,
            control: control_latency,
            concurrent,
            commit_ms,
            gauges: Gauges::of(&server).await,
        });
    }
    let last = last_seq(&server, &token, "big").await;
    assert_eq!(
        last, appended as u64,
        "the room's lastSeq against the appends"
    );
    let first = &measured[0];
    measured
        .iter()
        .map(|m| {
            let largest = m.events == measured.last().expect("sizes").events;
            let grew = m.single.p99_ms / first.single.p99_ms.max(1e-6);
            // Judged where this machine's noise cancels out: the tail
            // against the small room's of the same moments, the median
            // (which hiccups barely move) against the smallest size's.
            let tail = m.single.p99_ms / m.control.p99_ms.max(1e-6);
            let median = m.single.p50_ms / first.single.p50_ms.max(1e-6);
            let g = &m.gauges;
            Row {
                scenario: "9 growth, one room".into(),
                case: format!("{} events", thousands(m.events as f64)),
                result: format!(
                    "1 writer: p50 {:.2} ms, p99 {:.2} ms; {WRITERS} writers: p50 {:.2} ms, p99 {:.2} ms; RSS {:.0} MiB",
                    m.single.p50_ms,
                    m.single.p99_ms,
                    m.concurrent.p50_ms,
                    m.concurrent.p99_ms,
                    mib(g.rss_kib)
                ),
                baseline: format!(
                    "the {}-event room: p99 {:.2} ms / {:.2} ms; RSS {:.0} MiB",
                    thousands(first.events as f64),
                    first.single.p99_ms,
                    first.concurrent.p99_ms,
                    mib(first.gauges.rss_kib)
                ),
                ratio: Some(first.single.p99_ms / m.single.p99_ms.max(1e-6)),
                target: if largest {
                    format!(
                        "1 writer: p99 ≤ 2 × a {}-event room's at the same moments, p50 ≤ 2 × the smallest size's",
                        thousands(CONTROL as f64)
                    )
                } else {
                    "–".into()
                },
                met: largest.then_some(tail <= 2.0 && median <= 2.0),
                notes: format!(
                    "p99 {grew:.1}× / {:.1}×, p50 {median:.1}× the smallest; at the same moments a fresh \
                     {}-event room: p50 {:.2} ms, p99 {:.2} ms ({tail:.1}×); RSS {:.1}× ({:.0} MiB at the start); \
                     room state {:.1} MiB ({} in memory); mean group commit {:.2} ms; data on disk {:.0} MiB; \
                     filled at {} events/s",
                    m.concurrent.p99_ms / first.concurrent.p99_ms.max(1e-6),
                    thousands(CONTROL as f64),
                    m.control.p50_ms,
                    m.control.p99_ms,
                    g.rss_kib as f64 / first.gauges.rss_kib.max(1) as f64,
                    mib(start_rss),
                    g.room_states_bytes / 1048576.0,
                    g.room_states,
                    m.commit_ms,
                    g.disk_bytes as f64 / 1048576.0,
                    thousands(m.fill_rate)
                ),
                figures: json!({
                    "events": m.events,
                    "single": m.single,
                    "control": m.control,
                    "concurrent": m.concurrent,
                    "mean_group_commit_ms": m.commit_ms,
                    "rss_kib": g.rss_kib,
                    "start_rss_kib": start_rss,
                    "room_states": g.room_states,
                    "room_states_bytes": g.room_states_bytes,
                    "disk_bytes": g.disk_bytes,
                    "fill_events_per_s": m.fill_rate,
                }),
            }
        })
        .collect()
}

/// One checkpoint of the growing number of rooms.
struct RoomCount {
    rooms: usize,
    /// Rooms made (with their first message) a second up to this count.
    make_rate: Option<f64>,
    spread: Latency,
    few: Latency,
    /// A server of one room, appended to in turn with the others: the
    /// same moments' baseline.
    alone: Latency,
    alone_rss_kib: u64,
    /// The whole room list, page by page.
    list_ms: f64,
    gauges: Gauges,
}

async fn many_rooms(bin: &Path, counts: &[usize]) -> Vec<Row> {
    let server = Server::start(bin, &[]).await;
    let token = server.user("founder").await;
    let start_rss = rss_kib(server.pid());
    let name = |i: usize| format!("g{i}");
    make_rooms(&server, &token, 0..1).await;
    let warm_url = server.url(&format!("/api/rooms/{}/events", name(0)));
    concurrently(&server, &token, &warm_url, WARM_UP).await;
    // Each room's events so far (ROOM_CREATED included).
    let mut events: Vec<u64> = vec![(2 + WRITERS * WARM_UP) as u64];
    let alone = Server::start(bin, &[]).await;
    let alone_token = alone.user("founder").await;
    alone.room(&alone_token, "alone").await;
    let alone_url = alone.url("/api/rooms/alone/events");
    concurrently(&alone, &alone_token, &alone_url, WARM_UP).await;
    let mut alone_events = 1 + WRITERS * WARM_UP;
    let mut measured = Vec::new();
    let mut random = 0x9e37_79b9_7f4a_7c15_u64;
    for &count in counts {
        let t = Instant::now();
        let new = events.len()..count;
        make_rooms(&server, &token, new.clone()).await;
        events.resize(count, 2);
        let make_rate = (!new.is_empty()).then(|| new.len() as f64 / t.elapsed().as_secs_f64());
        // Spread: each append into a room of all, at random.
        let picks: Vec<usize> = (0..SINGLE)
            .map(|_| {
                random ^= random << 13;
                random ^= random >> 7;
                random ^= random << 17;
                (random % count as u64) as usize
            })
            .collect();
        // In turn: one into a room picked from all, one into one of a
        // few, one into the server of one room.
        let few = FEW.min(count);
        let room_of = |k: usize| match k % 3 {
            0 => Some(picks[k / 3]),
            1 => Some((k / 3) % few),
            _ => None,
        };
        let to = |k: usize| match room_of(k) {
            Some(i) => (
                server.url(&format!("/api/rooms/{}/events", name(i))),
                token.clone(),
            ),
            None => (alone_url.clone(), alone_token.clone()),
        };
        let [spread, few_latency, alone_latency]: [Latency; 3] =
            in_turns(one_at_a_time(&server.http, to, 3 * SINGLE).await, 3)
                .try_into()
                .expect("three series");
        for k in 0..3 * SINGLE {
            match room_of(k) {
                Some(i) => events[i] += 1,
                None => alone_events += 1,
            }
        }
        let t = Instant::now();
        let listed = room_list(&server, &token).await;
        let list_ms = t.elapsed().as_secs_f64() * 1e3;
        assert_eq!(listed.len(), count, "every room is listed");
        for (room, last) in listed {
            let i: usize = room
                .strip_prefix('g')
                .and_then(|i| i.parse().ok())
                .unwrap_or_else(|| panic!("a room of this scenario: {room}"));
            assert_eq!(last, events[i], "room {room}: lastSeq against the appends");
        }
        measured.push(RoomCount {
            rooms: count,
            make_rate,
            spread,
            few: few_latency,
            alone: alone_latency,
            alone_rss_kib: rss_kib(alone.pid()),
            list_ms,
            gauges: Gauges::of(&server).await,
        });
    }
    assert_eq!(
        last_seq(&alone, &alone_token, "alone").await,
        alone_events as u64,
        "room alone: lastSeq against the appends"
    );
    let first = &measured[0];
    measured
        .iter()
        .map(|m| {
            let largest = m.rooms == measured.last().expect("counts").rooms;
            let grew = m.spread.p99_ms / first.spread.p99_ms.max(1e-6);
            // Judged against the server of one room at the same moments,
            // where this machine's noise cancels out.
            let median = m.spread.p50_ms / m.alone.p50_ms.max(1e-6);
            let tail = m.spread.p99_ms / m.alone.p99_ms.max(1e-6);
            let g = &m.gauges;
            let plural = if m.rooms > 1 { "s" } else { "" };
            Row {
                scenario: "9 growth, rooms".into(),
                case: format!("{} room{plural}", thousands(m.rooms as f64)),
                result: format!(
                    "spread over all: p50 {:.2} ms, p99 {:.2} ms; over {}: p50 {:.2} ms, p99 {:.2} ms; RSS {:.0} MiB",
                    m.spread.p50_ms,
                    m.spread.p99_ms,
                    FEW.min(m.rooms),
                    m.few.p50_ms,
                    m.few.p99_ms,
                    mib(g.rss_kib)
                ),
                baseline: format!(
                    "1 room: p99 {:.2} ms; RSS {:.0} MiB. A server of 1 room at the same moments: p50 {:.2} ms, p99 {:.2} ms; RSS {:.0} MiB",
                    first.spread.p99_ms,
                    mib(first.gauges.rss_kib),
                    m.alone.p50_ms,
                    m.alone.p99_ms,
                    mib(m.alone_rss_kib)
                ),
                ratio: Some(first.spread.p99_ms / m.spread.p99_ms.max(1e-6)),
                target: if largest {
                    "spread: p50 and p99 ≤ 2 × the 1-room server's at the same moments".into()
                } else {
                    "–".into()
                },
                met: largest.then_some(tail <= 2.0 && median <= 2.0),
                notes: format!(
                    "p99 {grew:.1}× (spread) / {:.1}× (few) the 1 room; spread p50 {median:.1}×, \
                     p99 {tail:.1}× the 1-room server's; RSS {:.1}× ({:.0} MiB at the start); \
                     {} room states in memory, {:.1} MiB; data on disk {:.0} MiB; \
                     the whole room list in {:.0} ms; rooms made at {}",
                    m.few.p99_ms / first.few.p99_ms.max(1e-6),
                    g.rss_kib as f64 / first.gauges.rss_kib.max(1) as f64,
                    mib(start_rss),
                    g.room_states,
                    g.room_states_bytes / 1048576.0,
                    g.disk_bytes as f64 / 1048576.0,
                    m.list_ms,
                    m.make_rate.map_or("–".to_owned(), |r| format!("{}/s", thousands(r)))
                ),
                figures: json!({
                    "rooms": m.rooms,
                    "spread": m.spread,
                    "few": m.few,
                    "alone": m.alone,
                    "alone_rss_kib": m.alone_rss_kib,
                    "rss_kib": g.rss_kib,
                    "start_rss_kib": start_rss,
                    "room_states": g.room_states,
                    "room_states_bytes": g.room_states_bytes,
                    "disk_bytes": g.disk_bytes,
                    "room_list_ms": m.list_ms,
                    "rooms_made_per_s": m.make_rate,
                }),
            }
        })
        .collect()
}

/// The latencies of a series made in turn to `n` places: the `i`th holds
/// those of the appends `k` with `k % n == i`.
fn in_turns(all: Vec<Duration>, n: usize) -> Vec<Latency> {
    let mut each = vec![Vec::new(); n];
    for (k, d) in all.into_iter().enumerate() {
        each[k % n].push(d);
    }
    each.into_iter().map(Latency::of).collect()
}

/// `n` appends, one at a time, the `k`th to `to(k)` (a URL and a token);
/// their latencies.
async fn one_at_a_time(
    http: &reqwest::Client,
    to: impl Fn(usize) -> (String, String),
    n: usize,
) -> Vec<Duration> {
    let mut latencies = Vec::with_capacity(n);
    for k in 0..n {
        let (url, token) = to(k);
        let t = Instant::now();
        let unavailable = append(http, &url, &token, &send_body()).await;
        assert_eq!(unavailable, 0, "the embedded store answers 503");
        latencies.push(t.elapsed());
    }
    latencies
}

/// [`WRITERS`] writers appending `each` events each to `url`.
async fn concurrently(server: &Server, token: &str, url: &str, each: usize) -> Latency {
    let mut tasks = Vec::new();
    for _ in 0..WRITERS {
        let (http, url, token) = (server.http.clone(), url.to_owned(), token.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(each);
            for _ in 0..each {
                let t = Instant::now();
                let unavailable = append(&http, &url, &token, &send_body()).await;
                assert_eq!(unavailable, 0, "the embedded store answers 503");
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("a writer"));
    }
    Latency::of(all)
}

/// Makes the rooms numbered `which`, each with one message, by
/// [`MAKERS`] HTTP writers taking the next number.
async fn make_rooms(server: &Server, token: &str, which: std::ops::Range<usize>) {
    let next = Arc::new(AtomicUsize::new(which.start));
    let mut tasks = Vec::new();
    for _ in 0..MAKERS.min(which.len()) {
        let (http, token, next) = (server.http.clone(), token.to_owned(), next.clone());
        let (rooms, base) = (server.url("/api/rooms"), server.url("/api/rooms/"));
        let end = which.end;
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= end {
                    return;
                }
                let room = format!("g{i}");
                let r = http
                    .post(&rooms)
                    .bearer_auth(&token)
                    .json(&json!({"roomId": room, "name": room}))
                    .timeout(REQUEST_TIMEOUT)
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("room {room} is made: {e}"));
                assert_eq!(r.status().as_u16(), 201, "room {room} is made");
                r.bytes().await.expect("the room");
                let url = format!("{base}{room}/events");
                let unavailable = append(&http, &url, &token, &send_body()).await;
                assert_eq!(unavailable, 0, "the embedded store answers 503");
            }
        }));
    }
    for t in tasks {
        t.await.expect("a room maker");
    }
}

/// Every room's id and `lastSeq`, from the room list, page by page.
async fn room_list(server: &Server, token: &str) -> Vec<(String, u64)> {
    let mut rooms = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            Some(a) => format!("/api/rooms?limit=1000&after={a}"),
            None => "/api/rooms?limit=1000".to_owned(),
        };
        let r = server
            .http
            .get(server.url(&path))
            .bearer_auth(token)
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .expect("the server answers");
        assert!(r.status().is_success(), "{path}: {}", r.status());
        let page: Value = r.json().await.expect("a page of rooms");
        for room in page["rooms"].as_array().expect("rooms") {
            rooms.push((
                room["roomId"].as_str().expect("a roomId").to_owned(),
                room["lastSeq"].as_u64().expect("a lastSeq"),
            ));
        }
        match page["nextAfter"].as_str() {
            Some(a) => after = Some(a.to_owned()),
            None => return rooms,
        }
    }
}
