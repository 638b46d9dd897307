//! Scenario 5: what a second server instance adds to a delivery. Two
//! instances share one MongoDB database and one Redis; five senders submit
//! on instance A while the subscribers listen on instance B, so every event
//! reaches them over Redis pub/sub. The baseline of the same run is the
//! same load with the subscribers on A itself (the same two processes, A
//! with `REDIS_URL` as in production, so it publishes every event to Redis
//! either way).
//!
//! The two placements run at once, message by message in turn: two rooms
//! (each round fresh ones), one listened to on A and one on B, each with
//! its own five senders on A at half the rate, the second room's messages
//! half their spacing after the first's. So the messages go out evenly as
//! in one room at the whole rate, each instance fans out every other one,
//! and the store's commit
//! latency, which swings by tens of milliseconds from second to second on
//! this machine, weighs on both placements alike: run one after the other,
//! that swing decided the difference at p99. A lost, doubled or
//! out-of-order delivery fails the run.

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
/// Rounds, each on two fresh rooms (one per placement).
const ROUNDS: u32 = 3;
/// How long after both phases are started their first message goes out:
/// time for both placements' gauges to read the servers' counters.
const SETTLE: Duration = Duration::from_millis(300);

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
        let mut placements = Vec::new();
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
            let send = Senders::connect(Kind::Ours, &send_urls).await;
            placements.push((subs, send));
        }
        let [(subs_a, send_a), (subs_b, send_b)] = &mut placements[..] else {
            unreachable!("two placements")
        };
        // Warm-up of the rooms: not counted.
        let warm = Duration::from_secs(1);
        one_timeline(send_a, send_b);
        tokio::join!(
            phase(subs_a, send_a, &watch, 1, RATE / 2.0, warm),
            phase(subs_b, send_b, &watch, 1, RATE / 2.0, warm)
        );
        one_timeline(send_a, send_b);
        let (on_a, on_b) = tokio::join!(
            phase(subs_a, send_a, &watch, 2, RATE / 2.0, time),
            phase(subs_b, send_b, &watch, 2, RATE / 2.0, time)
        );
        same.push(on_a);
        other.push(on_b);
    }
    eprintln!(
        "  both placements: {:.0} s",
        started.elapsed().as_secs_f64()
    );
    drop_database(mongo, &db).await;
    vec![row(subscribers, &pool(&same), &pool(&other))]
}

/// Puts both rooms' senders on one timeline for their next phase, from a
/// moment after both phases have started their gauges: each room's
/// messages go out every 2 / [`RATE`] s, B's room's 1 / [`RATE`] s after
/// A's.
fn one_timeline(a: &mut Senders, b: &mut Senders) {
    let at = tokio::time::Instant::now() + SETTLE;
    a.start_next_phase_at(at);
    b.start_next_phase_at(at + Duration::from_secs_f64(1.0 / RATE));
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
    // Both placements ran at once: each one's gauge saw both in the same
    // processes, over nearly the same seconds. The longer one's usage and
    // the higher counts stand for both.
    let both = if other.usage.wall_s >= same.usage.wall_s {
        other
    } else {
        same
    };
    let u = &both.usage;
    let usage = format!(
        "A + B {:.1} s CPU in {:.1} s, peak {:.0} MiB together; generator {:.1} s CPU{}; {} resyncs, {} backstop deliveries",
        u.server_cpu_s,
        u.wall_s,
        u.server_peak_rss_mib,
        u.generator_cpu_s,
        if u.generator_bound() {
            " (**generator-bound**)"
        } else {
            ""
        },
        other.resyncs.max(same.resyncs),
        other.backstop.max(same.backstop)
    );
    let acks = |o: &Outcome| format!("p50 {:.1} ms, p99 {:.1} ms", o.ack.p50_ms, o.ack.p99_ms);
    Row {
        scenario: super::mongo_append::on_mongodb("5 cross-instance"),
        case: format!(
            "{n} subscribers on instance B, {SENDERS} senders on A, {} msg/s, beside a room of {n} on A ({} msg/s in all), MongoDB + Redis",
            thousands(RATE / 2.0),
            thousands(RATE),
            n = thousands(subscribers as f64),
        ),
        result: lat(other),
        baseline: format!("the room beside it, subscribers on A itself: {}", lat(same)),
        ratio: Some(same.latency.p99_ms / other.latency.p99_ms.max(1e-6)),
        target: "≤ 5 ms more at p99".into(),
        met: Some(extra <= 5.0),
        notes: format!(
            "{extra:+.1} ms at p99, {:+.1} ms at p50 (ratio: single-instance p99 / cross-instance p99); \
             after the ack (each delivery less its message's ack latency, which takes out the store's share) {:+.1} ms at p99; \
             {ROUNDS} rounds, both placements at once, message by message in turn, fresh rooms each round. \
             Acks (MongoDB append, the worst round by p99): across {}, same instance {}. Both placements: {usage}",
            other.latency.p50_ms - same.latency.p50_ms,
            other.after_ack.p99_ms - same.after_ack.p99_ms,
            acks(other),
            acks(same)
        ),
        figures: serde_json::json!({
            "cross_instance": other,
            "same_instance": same,
            "rounds": ROUNDS,
            "usage": "both placements ran at once: each one's usage and counters are of both",
        }),
    }
}
