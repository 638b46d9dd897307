//! Scenario 3: durable appends on MongoDB, end to end. The server runs on
//! `MONGODB_URI` with a database of its own; 1, 8 and 64 HTTP writers
//! (each waiting for its `201` before the next) append into one room, and
//! 64 writers into 64 rooms. Baseline of the same run: the raw `mongodb`
//! driver against the same MongoDB server, in a database of its own, with
//! as many concurrent inserters, each inserting one event document at a
//! time, of the shape the server stores, into a collection with the
//! server's indexes, with the server's write concern (majority, journal).
//! Then scenario 8 on MongoDB: the database's size per event against the
//! event's JSON.

use super::append::Load;
use super::text::send_body;
use super::{FILL_IN_FLIGHT, FILL_ROOMS};
use crate::measure::{cpu_time, Latency, Meter, Usage};
use crate::report::{thousands, Row};
use crate::server::Server;
use domain::{ChatEvent, EventKind, Timestamp};
use mongodb::bson::{doc, Bson, Document};
use mongodb::options::{Acknowledgment, ClientOptions, IndexOptions, WriteConcern};
use mongodb::{Client, Collection, Database, IndexModel};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How long one request, or one insert, may take before the run fails.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// `503`s one append may meet before the run fails (the contract: retry
/// with the same `eventId`).
pub(crate) const RETRIES: u32 = 20;
/// Slices of each case, alternating between the server and the baseline.
const ROUNDS: u32 = 2;
/// What the MongoDB-compatible server under test is, in words
/// (`BENCH_MONGODB_SERVER`, set by scripts/bench.sh).
fn under_test() -> String {
    std::env::var("BENCH_MONGODB_SERVER")
        .unwrap_or_else(|_| "a MongoDB-compatible server (BENCH_MONGODB_URI)".to_owned())
}

/// A scenario's name on MongoDB: on SecantusDB's Rust build
/// (`scripts/bench.sh --mongodb-rust`) with that said, so that its rows
/// stand beside the Python build's in BENCHMARKS.md instead of replacing
/// them.
pub(crate) fn on_mongodb(scenario: &str) -> String {
    if under_test().contains("Rust") {
        format!("{scenario} (SecantusDB's Rust build)")
    } else {
        scenario.to_owned()
    }
}

/// What one stretch of a case measured, on either side.
struct Slice {
    latencies: Vec<Duration>,
    usage: Usage,
    /// CPU time of the MongoDB server's process, when it was found.
    mongo_cpu_s: Option<f64>,
    /// `503`s met (and retried) by the server's writers.
    unavailable: u32,
}

/// What one case measured, on either side: its slices together.
struct Measured {
    events: usize,
    latency: Latency,
    usage: Usage,
    mongo_cpu_s: Option<f64>,
    unavailable: u32,
}

impl Measured {
    fn of(slices: Vec<Slice>) -> Measured {
        let mut usage = Usage::default();
        let (mut all, mut mongo_cpu_s, mut unavailable) = (Vec::new(), Some(0.0), 0);
        for s in slices {
            let u = s.usage;
            usage.wall_s += u.wall_s;
            usage.server_cpu_s += u.server_cpu_s;
            usage.generator_cpu_s += u.generator_cpu_s;
            usage.server_peak_rss_mib = usage.server_peak_rss_mib.max(u.server_peak_rss_mib);
            usage.generator_peak_rss_mib =
                usage.generator_peak_rss_mib.max(u.generator_peak_rss_mib);
            mongo_cpu_s = mongo_cpu_s.zip(s.mongo_cpu_s).map(|(a, b)| a + b);
            unavailable += s.unavailable;
            all.extend(s.latencies);
        }
        Measured {
            events: all.len(),
            latency: Latency::of(all),
            usage,
            mongo_cpu_s,
            unavailable,
        }
    }

    fn rate(&self) -> f64 {
        self.events as f64 / self.usage.wall_s.max(1e-9)
    }
}

/// Scenario 3, each case `seconds` long, then scenario 8 once the server's
/// database holds `fill_to` events (the rest appended over WebSockets,
/// pipelined) or what scenario 3 appended, whichever is more. The run's
/// databases are dropped at the end unless `scratch` (the server is thrown
/// away after the run).
pub async fn run(bin: &Path, uri: &str, seconds: u64, fill_to: usize, scratch: bool) -> Vec<Row> {
    let tag = Uuid::new_v4().simple().to_string();
    let (chat_db, raw_db) = (
        format!("bench_chat_{}", &tag[..12]),
        format!("bench_raw_{}", &tag[..12]),
    );
    let started = Instant::now();
    let mongo_pid = port_owner(uri);
    let server = Server::start(
        bin,
        &[
            ("MONGODB_URI", uri.to_owned()),
            ("MONGODB_DB", chat_db.clone()),
        ],
    )
    .await;
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
    let raw = Raw::open(uri, &raw_db).await;
    eprintln!(
        "scenario 3: set up in {:.0} s (MongoDB server pid {mongo_pid:?})",
        started.elapsed().as_secs_f64()
    );
    // Each side's time of a case, in alternating slices (this machine's
    // speed drifts within minutes).
    let time = Duration::from_secs(seconds) / ROUNDS;
    let mut appended: std::collections::HashMap<String, u64> = Default::default();
    let mut rows = Vec::new();
    let cases = [
        (Load::Http(1), &one),
        (Load::Http(8), &one),
        (Load::Http(64), &one),
        (Load::Http(8), &many),
        (Load::Http(64), &many),
        (Load::Ws(4, 32), &one),
        (Load::Ws(64, 2), &many),
    ];
    for (load, rooms) in cases {
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        // The baseline at the same concurrency: an inserter for each
        // request or submit in flight.
        let writers = match load {
            Load::Http(w) => w,
            Load::Ws(sockets, window) => sockets * window,
        };
        for _ in 0..ROUNDS {
            let (slice, per_room) =
                through_server(&server, &tokens, rooms, load, time, mongo_pid).await;
            for (room, n) in per_room {
                *appended.entry(room).or_default() += n;
            }
            ours.push(slice);
            theirs.push(raw.measure(rooms, writers, time, mongo_pid).await);
        }
        let (m, b) = (Measured::of(ours), Measured::of(theirs));
        rows.push(row(load, rooms.len(), &m, &b));
        eprintln!(
            "scenario 3: {load:?} into {} room(s) done at {:.0} s",
            rooms.len(),
            started.elapsed().as_secs_f64()
        );
    }
    // Every acknowledged append is in its room's log, once.
    for room in one.iter().chain(&many) {
        let last = last_seq(&server, &token, room).await;
        let expected = 1 + appended.get(room).copied().unwrap_or(0);
        assert_eq!(last, expected, "room {room}: lastSeq against the appends");
    }
    // The rooms' creations are events too.
    let stored = one.len() + many.len() + appended.values().sum::<u64>() as usize;
    let fill_rooms: Vec<&String> = one.iter().chain(&many).take(FILL_ROOMS).collect();
    let rest = fill_to.saturating_sub(stored);
    let filled = super::fill_rooms(&server, &token, &fill_rooms, rest, FILL_IN_FLIGHT).await;
    if let Some((rate, _)) = filled {
        eprintln!(
            "scenario 8 (MongoDB): {} more events over {FILL_ROOMS} sockets at {rate:.0} events/s",
            thousands(rest as f64)
        );
    }
    rows.push(storage(&chat_db, &raw, filled).await);
    // What this run wrote goes; the server first, so that it writes no more.
    drop(server);
    let measured = started.elapsed();
    let client = raw.db.client().clone();
    let dropping: &[&String] = if scratch { &[] } else { &[&chat_db, &raw_db] };
    for name in dropping {
        let dropped = tokio::time::timeout(REQUEST_TIMEOUT, client.database(name).drop()).await;
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("scenario 3: database {name} not dropped: {dropped:?}");
        }
    }
    eprintln!(
        "scenario 3: done in {:.0} s ({:.0} s of it dropping its databases)",
        started.elapsed().as_secs_f64(),
        (started.elapsed() - measured).as_secs_f64()
    );
    rows
}

/// The case's writers or sockets appending into `rooms` until `time` is
/// up; what they measured, and how many appends each room took.
async fn through_server(
    server: &Server,
    tokens: &[String],
    rooms: &[String],
    load: Load,
    time: Duration,
    mongo_pid: Option<u32>,
) -> (Slice, Vec<(String, u64)>) {
    let mongo_cpu = mongo_pid.map(cpu_time);
    let meter = Meter::start(server.pid());
    let deadline = Instant::now() + time;
    let token = &tokens[0];
    let writers = match load {
        Load::Http(writers) => writers,
        Load::Ws(sockets, window) => {
            let (per_socket, unavailable) =
                super::append::ws(server, tokens, rooms, sockets, window, deadline, send_body)
                    .await;
            let per_room = per_socket
                .iter()
                .enumerate()
                .map(|(k, l)| (rooms[k % rooms.len()].clone(), l.len() as u64))
                .collect();
            let slice = Slice {
                latencies: per_socket.concat(),
                usage: meter.stop(),
                mongo_cpu_s: cpu_since(mongo_pid, mongo_cpu),
                unavailable,
            };
            return (slice, per_room);
        }
    };
    let mut tasks = Vec::new();
    for w in 0..writers {
        let room = rooms[w % rooms.len()].clone();
        let url = server.url(&format!("/api/rooms/{room}/events"));
        let (http, token) = (server.http.clone(), token.to_owned());
        tasks.push(tokio::spawn(async move {
            let (mut latencies, mut unavailable) = (Vec::new(), 0);
            while Instant::now() < deadline {
                let t = Instant::now();
                unavailable += append(&http, &url, &token, &send_body()).await;
                latencies.push(t.elapsed());
            }
            (room, latencies, unavailable)
        }));
    }
    let (mut all, mut per_room, mut unavailable) = (Vec::new(), Vec::new(), 0);
    for t in tasks {
        let (room, latencies, retried) = t.await.expect("a writer");
        per_room.push((room, latencies.len() as u64));
        unavailable += retried;
        all.extend(latencies);
    }
    let slice = Slice {
        latencies: all,
        usage: meter.stop(),
        mongo_cpu_s: cpu_since(mongo_pid, mongo_cpu),
        unavailable,
    };
    (slice, per_room)
}

fn cpu_since(pid: Option<u32>, before: Option<Duration>) -> Option<f64> {
    Some(cpu_time(pid?).saturating_sub(before?).as_secs_f64())
}

/// Posts `body` to `url` until it is acknowledged: `201`, or `200` when a
/// retry after a `503` finds it stored (what the contract tells a client
/// to do). Anything else fails the run. The `503`s met.
pub(crate) async fn append(http: &reqwest::Client, url: &str, token: &str, body: &Value) -> u32 {
    let mut unavailable = 0;
    loop {
        let r = http
            .post(url)
            .bearer_auth(token)
            .json(body)
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .unwrap_or_else(|e| panic!("the server answers an append: {e}"));
        let status = r.status().as_u16();
        // The whole answer is read, so that the connection is reused.
        let answer = r
            .bytes()
            .await
            .unwrap_or_else(|e| panic!("the answer to an append arrives: {e}"));
        match status {
            201 => return unavailable,
            200 if unavailable > 0 => return unavailable,
            503 if unavailable < RETRIES => {
                unavailable += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            _ => panic!(
                "an append is answered {status}: {}",
                String::from_utf8_lossy(&answer)
            ),
        }
    }
}

/// A room's `lastSeq`.
pub(crate) async fn last_seq(server: &Server, token: &str, room: &str) -> u64 {
    let r = server
        .http
        .get(server.url(&format!("/api/rooms/{room}")))
        .bearer_auth(token)
        .timeout(REQUEST_TIMEOUT)
        .send()
        .await
        .expect("the server answers");
    assert!(r.status().is_success(), "room {room}: {}", r.status());
    let v: Value = r.json().await.expect("a room");
    v["lastSeq"].as_u64().expect("a lastSeq")
}

/// An event as the server stores one of this scenario's.
fn event(room: &str, seq: u64, id: Uuid, millis: i64) -> ChatEvent {
    ChatEvent {
        event_id: id,
        room_id: room.into(),
        seq,
        sender_id: "writer0".into(),
        timestamp: Timestamp::from_millis(millis).expect("a time"),
        kind: EventKind::MessageSent {
            content: super::text::message().into(),
        },
    }
}

/// The baseline: the raw driver on a database of its own.
struct Raw {
    db: Database,
    events: Collection<Document>,
    /// The next seq (unique across rooms, so unique within each).
    seq: Arc<AtomicI64>,
}

impl Raw {
    /// Connects with the driver's defaults but the server's write concern
    /// and a pool as large as the most inserters, and makes the server's
    /// indexes on `chat_events`.
    async fn open(uri: &str, db: &str) -> Raw {
        let mut options = ClientOptions::parse(uri).await.expect("the MongoDB URI");
        options.app_name = Some("chat-bench-raw".into());
        // A connection for each of up to 64 inserters (the default pool
        // has 10), so that they are all in flight at once.
        options.max_pool_size = Some(64);
        options.write_concern = Some(
            WriteConcern::builder()
                .w(Acknowledgment::Majority)
                .journal(true)
                .build(),
        );
        let client = Client::with_options(options).expect("a MongoDB client");
        let db = client.database(db);
        let events: Collection<Document> = db.collection("chat_events");
        let unique = || IndexOptions::builder().unique(true).build();
        let indexes = [
            IndexModel::builder()
                .keys(doc! {"roomId": 1, "seq": 1})
                .options(unique())
                .build(),
            IndexModel::builder()
                .keys(doc! {"roomId": 1, "eventId": 1})
                .options(unique())
                .build(),
            IndexModel::builder()
                .keys(doc! {"roomId": 1, "ts": 1})
                .build(),
        ];
        tokio::time::timeout(REQUEST_TIMEOUT, events.create_indexes(indexes))
            .await
            .expect("the baseline's indexes in time")
            .expect("the baseline's indexes");
        Raw {
            db,
            events,
            seq: Arc::new(AtomicI64::new(0)),
        }
    }

    /// `inserters` tasks inserting one event document at a time into
    /// `rooms` until `time` is up.
    async fn measure(
        &self,
        rooms: &[String],
        inserters: usize,
        time: Duration,
        mongo_pid: Option<u32>,
    ) -> Slice {
        let mongo_cpu = mongo_pid.map(cpu_time);
        // No server process of ours here: the meter reads the MongoDB
        // server's (or nothing's, when it was not found).
        let meter = Meter::start(mongo_pid.unwrap_or(u32::MAX));
        let deadline = Instant::now() + time;
        let mut tasks = Vec::new();
        for k in 0..inserters {
            let room = rooms[k % rooms.len()].clone();
            let (events, next) = (self.events.clone(), self.seq.clone());
            tasks.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let seq = next.fetch_add(1, Ordering::Relaxed) + 1;
                    let id = Uuid::new_v4();
                    let millis = chrono::Utc::now().timestamp_millis();
                    let e = event(&room, seq as u64, id, millis);
                    // The server's event document (server/src/store/mongo.rs).
                    let document = doc! {
                        "roomId": room.as_str(),
                        "seq": seq,
                        "eventId": id.to_string(),
                        "ts": millis,
                        "eventType": e.event_type().as_str(),
                        "senderId": e.sender_id.as_str(),
                        "content": e.kind.content().expect("a message's content"),
                    };
                    tokio::time::timeout(REQUEST_TIMEOUT, events.insert_one(document))
                        .await
                        .expect("an insert in time")
                        .expect("an insert");
                    latencies.push(t.elapsed());
                }
                latencies
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.expect("an inserter"));
        }
        Slice {
            latencies: all,
            usage: meter.stop(),
            mongo_cpu_s: cpu_since(mongo_pid, mongo_cpu),
            unavailable: 0,
        }
    }
}

fn row(load: Load, rooms: usize, m: &Measured, raw: &Measured) -> Row {
    let (rate, raw_rate) = (m.rate(), raw.rate());
    let ratio = rate / raw_rate.max(1e-9);
    let targeted = matches!(load, Load::Http(64));
    let u = &m.usage;
    let mongo = |x: &Measured| {
        x.mongo_cpu_s
            .map_or_else(|| "?".to_owned(), |s| format!("{s:.1} s"))
    };
    let mut notes = format!(
        "server {:.1} s CPU, peak {:.0} MiB; MongoDB {} CPU (baseline: {}); generator {:.1} s CPU",
        u.server_cpu_s,
        u.server_peak_rss_mib,
        mongo(m),
        mongo(raw),
        u.generator_cpu_s
    );
    if m.unavailable > 0 {
        notes.push_str(&format!("; {} × unavailable, retried", m.unavailable));
    }
    if u.generator_bound() {
        notes.push_str("; **generator-bound**");
    }
    notes.push_str(&format!("; the MongoDB server is {}", under_test()));
    let plural = |n: usize| if n > 1 { "s" } else { "" };
    let (writers, load) = match load {
        Load::Http(w) => (w, format!("{w} HTTP writer{}", plural(w))),
        Load::Ws(sockets, window) => (
            sockets * window,
            format!("{sockets} sockets × {window} pipelined"),
        ),
    };
    Row {
        scenario: on_mongodb("3 durable append, MongoDB"),
        case: format!("{load}, {rooms} room{}", plural(rooms)),
        result: crate::measure::rate_and_latency(rate, &m.latency),
        baseline: format!(
            "raw driver, {writers} inserter{}, w: majority, j: true: {} events/s; p50 {:.1} ms, p99 {:.1} ms",
            plural(writers),
            thousands(raw_rate),
            raw.latency.p50_ms,
            raw.latency.p99_ms
        ),
        ratio: Some(ratio),
        target: if targeted {
            "≥ 0.8 × the raw driver".into()
        } else {
            "–".into()
        },
        met: targeted.then_some(ratio >= 0.8),
        notes,
        figures: json!({
            "events": m.events,
            "events_per_s": rate,
            "latency": m.latency,
            "usage": m.usage,
            "mongo_cpu_s": m.mongo_cpu_s,
            "unavailable_retried": m.unavailable,
            "raw_events": raw.events,
            "raw_events_per_s": raw_rate,
            "raw_latency": raw.latency,
            "raw_mongo_cpu_s": raw.mongo_cpu_s,
            "raw_generator_cpu_s": raw.usage.generator_cpu_s,
        }),
    }
}

/// Scenario 8 on MongoDB: the server's database (events, the projection,
/// snapshots, users and sessions) as `dbStats` reports it, per event
/// stored, against an event's JSON.
async fn storage(chat_db: &str, raw: &Raw, filled: Option<(f64, u32)>) -> Row {
    let chat = raw.db.client().database(chat_db);
    let stats = command(&chat, doc! {"dbStats": 1}).await;
    let events_stats = command(&chat, doc! {"collStats": "chat_events"}).await;
    let raw_stats = command(&raw.db, doc! {"collStats": "chat_events"}).await;
    let events = number(&events_stats, "count");
    let per = |x: f64| x / events.max(1.0);
    let (data, storage, index) = (
        number(&stats, "dataSize"),
        number(&stats, "storageSize"),
        number(&stats, "indexSize"),
    );
    let json_bytes = event("one", 1, Uuid::new_v4(), 1_795_000_000_000)
        .to_json()
        .len() as f64;
    let times = per(storage) / json_bytes;
    let raw_events = number(&raw_stats, "count");
    // Each collection's documents per event, largest first.
    let names = tokio::time::timeout(REQUEST_TIMEOUT, chat.list_collection_names())
        .await
        .expect("the collections' names in time")
        .expect("the collections' names");
    let mut collections = Vec::new();
    for name in names {
        let s = command(&chat, doc! {"collStats": &name}).await;
        collections.push((name, number(&s, "size")));
    }
    collections.sort_by(|a, b| b.1.total_cmp(&a.1));
    let breakdown = collections
        .iter()
        .filter(|(_, size)| per(*size) >= 1.0)
        .map(|(name, size)| format!("{name} {}", thousands(per(*size))))
        .collect::<Vec<_>>()
        .join(", ");
    Row {
        scenario: on_mongodb("8 storage, MongoDB"),
        case: format!("after {} events", thousands(events)),
        result: format!(
            "{} bytes per event (dbStats storageSize), {} with indexes",
            thousands(per(storage)),
            thousands(per(storage + index))
        ),
        baseline: format!("the event's JSON: {} bytes", thousands(json_bytes)),
        ratio: Some(json_bytes / per(storage).max(1e-9)),
        target: "≤ 2 × the JSON".into(),
        met: Some(times <= 2.0),
        notes: format!(
            "{times:.1} × the JSON; dataSize {} bytes per event: {breakdown}; chat_events' indexes {}; \
             the baseline's documents {} (+ {} of indexes); {}the MongoDB server is {}",
            thousands(per(data)),
            thousands(per(number(&events_stats, "totalIndexSize"))),
            thousands(number(&raw_stats, "size") / raw_events.max(1.0)),
            thousands(number(&raw_stats, "totalIndexSize") / raw_events.max(1.0)),
            filled.map_or(String::new(), |(rate, resent)| format!(
                "the events after scenario 3's appended over {FILL_ROOMS} WebSockets, pipelined, at {} events/s \
                 ({resent} submits answered unavailable and sent again); ",
                thousands(rate)
            )),
            under_test(),
        ),
        figures: json!({
            "events": events,
            "db_stats": {"dataSize": data, "storageSize": storage, "indexSize": index},
            "events_coll": {"size": number(&events_stats, "size"), "totalIndexSize": number(&events_stats, "totalIndexSize")},
            "collections": collections.iter().map(|(n, s)| json!({"name": n, "size": s})).collect::<Vec<_>>(),
            "raw_events": raw_events,
            "raw_coll": {"size": number(&raw_stats, "size"), "totalIndexSize": number(&raw_stats, "totalIndexSize")},
            "json_bytes_per_event": json_bytes,
        }),
    }
}

async fn command(db: &Database, command: Document) -> Document {
    tokio::time::timeout(REQUEST_TIMEOUT, db.run_command(command.clone()))
        .await
        .unwrap_or_else(|_| panic!("{command} in time"))
        .unwrap_or_else(|e| panic!("{command}: {e}"))
}

/// A numeric field of a command's answer (0 when absent).
fn number(d: &Document, key: &str) -> f64 {
    match d.get(key) {
        Some(Bson::Int32(n)) => f64::from(*n),
        Some(Bson::Int64(n)) => *n as f64,
        Some(Bson::Double(x)) => *x,
        _ => 0.0,
    }
}

/// The process listening on the URI's first host's port, if it is on this
/// machine and this user may see it: the socket's inode from
/// `/proc/net/tcp`, then the process holding it.
fn port_owner(uri: &str) -> Option<u32> {
    let hosts = uri.strip_prefix("mongodb://")?;
    let hosts = hosts.rsplit_once('@').map_or(hosts, |(_, h)| h);
    let host = hosts.split(['/', '?', ',']).next()?;
    let port: u16 = host
        .rsplit_once(':')
        .map_or(Some(27017), |(_, p)| p.parse().ok())?;
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let local_port = f
                .get(1)
                .and_then(|a| a.rsplit_once(':'))
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
            // State 0A: listening.
            if local_port == Some(port) && f.get(3) == Some(&"0A") {
                inodes.extend(f.get(9).map(|i| format!("socket:[{i}]")));
            }
        }
    }
    std::fs::read_dir("/proc").ok()?.find_map(|p| {
        let pid: u32 = p.ok()?.file_name().to_str()?.parse().ok()?;
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .ok()?
            .filter_map(Result::ok)
            .any(|fd| {
                std::fs::read_link(fd.path())
                    .is_ok_and(|l| inodes.iter().any(|i| l.as_os_str() == i.as_str()))
            })
            .then_some(pid)
    })
}
