//! Scenario 5: what a second server instance adds to a delivery. Two
//! instances share one MongoDB database and one Redis; five senders submit
//! on instance A while the subscribers listen on instance B, so every event
//! reaches them over Redis pub/sub. The baseline of the same run is the
//! same load with the subscribers on A itself (the same two processes, A
//! with `REDIS_URL` as in production, so it publishes every event to Redis
//! either way; B runs and gets those publishes, with nobody to give them
//! to). The two placements alternate, each on a fresh room, and the
//! latencies of each are pooled. A lost, doubled or out-of-order delivery
//! fails the run.

use super::fanout::{
    phase, pool, users, within, Kind, Outcome, Senders, Subscribers, Watch, PER_USER, SENDERS,
};
use crate::report::{thousands, Row};
use crate::server::Server;
use std::path::Path;
use std::time::{Duration, Instant};

/// Messages a second from all senders: well under what the Python
/// MongoDB-compatible server of the tests sustains on this machine (each
/// append waits for its write there), so that the store is not the queue
/// being measured.
const RATE: f64 = 50.0;
/// Each placement is measured this many times, alternating.
const ROUNDS: u32 = 2;

pub async fn run(bin: &Path, mongo: &str, redis: &str, subscribers: usize) -> Vec<Row> {
    let time = Duration::from_secs(if subscribers >= 500 { 8 } else { 4 });
    let db = format!("bench_cross_{}", uuid::Uuid::new_v4().simple());
    let env = [
        ("MONGODB_URI", mongo.to_owned()),
        ("MONGODB_DB", db.clone()),
        ("REDIS_URL", redis.to_owned()),
        ("MAX_CONNECTIONS", (subscribers + 200).to_string()),
        ("SIGN_UPS_PER_MINUTE", "0".into()),
        ("SIGN_INS_PER_MINUTE", "0".into()),
    ];
    let a = Server::start(bin, &env).await;
    let b = Server::start(bin, &env).await;
    bus_up(&a).await;
    bus_up(&b).await;
    // The accounts are in the shared database: a token works on both.
    let senders = users(&a, "sender", SENDERS).await;
    let listeners = users(&a, "listener", subscribers.div_ceil(PER_USER)).await;
    let watch = Watch::Servers(vec![&a, &b]);
    let started = Instant::now();
    let mut same = Vec::new();
    let mut other = Vec::new();
    for round in 0..ROUNDS {
        for (on_b, server) in [(false, &a), (true, &b)] {
            let room = format!("x{round}{}", if on_b { "b" } else { "a" });
            within("a room", a.room(&senders[0], &room)).await;
            let url = |s: &Server, token: &str| {
                s.ws_url(&format!("/api/rooms/{room}/ws?afterSeq=1&token={token}"))
            };
            let sub_urls: Vec<String> = (0..subscribers)
                .map(|k| url(server, &listeners[k / PER_USER]))
                .collect();
            let send_urls: Vec<String> = senders.iter().map(|t| url(&a, t)).collect();
            let subs = Subscribers::connect(Kind::Ours, &sub_urls, 2).await;
            let mut send = Senders::connect(Kind::Ours, &send_urls).await;
            // Warm-up of the room: not counted.
            phase(&subs, &mut send, &watch, 1, RATE, Duration::from_secs(1)).await;
            let out = phase(&subs, &mut send, &watch, 2, RATE, time).await;
            if on_b { &mut other } else { &mut same }.push(out);
        }
    }
    eprintln!(
        "  both placements: {:.0} s",
        started.elapsed().as_secs_f64()
    );
    drop_database(mongo, &db).await;
    vec![row(subscribers, &pool(&same), &pool(&other))]
}

/// Waits until an instance's Redis connections are up (`/healthz` says
/// `busConnected`).
async fn bus_up(server: &Server) {
    let started = Instant::now();
    loop {
        let health = server.http.get(server.url("/healthz")).send();
        if let Ok(Ok(r)) = tokio::time::timeout(Duration::from_secs(5), health).await {
            let v: serde_json::Value = r.json().await.unwrap_or_default();
            if v["busConnected"] == true {
                return;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "an instance does not reach Redis within 15 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Removes this run's database (best effort: the MongoDB of the run is
/// thrown away afterwards anyway).
async fn drop_database(uri: &str, db: &str) {
    let dropping = async {
        let client = mongodb::Client::with_uri_str(uri).await?;
        client.database(db).drop().await
    };
    match tokio::time::timeout(Duration::from_secs(10), dropping).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => eprintln!("  scenario 5: the database {db} stays: {e}"),
        Err(_) => eprintln!("  scenario 5: the database {db} stays: no answer in 10 s"),
    }
}

fn row(subscribers: usize, same: &Outcome, other: &Outcome) -> Row {
    let extra = other.latency.p99_ms - same.latency.p99_ms;
    let lat = |o: &Outcome| {
        format!(
            "p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; after the sender's ack p50 {:.1} ms, p99 {:.1} ms ({} deliveries, 0 lost)",
            o.latency.p50_ms,
            o.latency.p99_ms,
            o.latency.max_ms,
            o.after_ack.p50_ms,
            o.after_ack.p99_ms,
            thousands(o.delivered as f64)
        )
    };
    let usage = |o: &Outcome| {
        let u = &o.usage;
        format!(
            "A + B {:.1} s CPU in {:.1} s, peak {:.0} MiB together; generator {:.1} s CPU{}; \
             acks (MongoDB append) p50 {:.1} ms, p99 {:.1} ms; {} resyncs, {} backstop deliveries",
            u.server_cpu_s,
            u.wall_s,
            u.server_peak_rss_mib,
            u.generator_cpu_s,
            if u.generator_bound() {
                " (**generator-bound**)"
            } else {
                ""
            },
            o.ack.p50_ms,
            o.ack.p99_ms,
            o.resyncs,
            o.backstop
        )
    };
    Row {
        scenario: super::mongo_append::on_mongodb("5 cross-instance"),
        case: format!(
            "{} subscribers on instance B, {SENDERS} senders on A, {} msg/s, MongoDB + Redis",
            thousands(subscribers as f64),
            thousands(RATE)
        ),
        result: lat(other),
        baseline: format!("subscribers on A itself: {}", lat(same)),
        ratio: Some(same.latency.p99_ms / other.latency.p99_ms.max(1e-6)),
        target: "≤ 5 ms more at p99".into(),
        met: Some(extra <= 5.0),
        notes: format!(
            "{extra:+.1} ms at p99, {:+.1} ms at p50 (ratio: single-instance p99 / cross-instance p99); \
             after the ack (each delivery less its message's ack latency, which takes out the store's share) {:+.1} ms at p99; \
             {ROUNDS} rounds each, alternating, a fresh room each. Across: {}. Same instance: {}",
            other.latency.p50_ms - same.latency.p50_ms,
            other.after_ack.p99_ms - same.after_ack.p99_ms,
            usage(other),
            usage(same)
        ),
        figures: serde_json::json!({"cross_instance": other, "same_instance": same, "rounds": ROUNDS}),
    }
}
