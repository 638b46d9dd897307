//! Where the time of a replay goes: a diagnostic companion to the criterion
//! benchmark (`benches/replay.rs`), on the same 1,000,000-event log.
//!
//!     cargo run --release -p domain --example replay_costs -- [MODE] [RUNS]
//!
//! MODE:
//! - `replay` (default): `RoomState::replay` of an owned copy of the log, as
//!   the benchmark times it, with the page faults taken per replay.
//! - `bytes`: bytes to state: the log as one JSON array decoded and
//!   replayed, with the decoding's share.
//! - `by-type`: time spent in `apply` per event type (each call is timed, so
//!   add a few tens of ns of timer overhead per event).
//! - `sends-floor`: only moves each `MESSAGE_SENT` into a growing
//!   `Vec<Message>`: what writing the messages into fresh memory costs.
//! - `latency`: the time of one dependent memory load for working sets of
//!   1 to 128 MiB (a pointer chase), which bounds any random-access index.

use domain::{ChatEvent, EventKind, EventType, Message, RoomState};
use std::hint::black_box;
use std::time::Instant;

#[path = "../benches/support/realistic.rs"]
mod realistic;

fn minor_faults() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after_name = &stat[stat.rfind(')')? + 2..];
    after_name.split(' ').nth(7)?.parse().ok()
}

fn summary(label: &str, mut ms: Vec<f64>) {
    ms.sort_by(f64::total_cmp);
    println!(
        "{label}: min {:.1} ms, median {:.1} ms, max {:.1} ms over {} runs",
        ms[0],
        ms[ms.len() / 2],
        ms[ms.len() - 1],
        ms.len()
    );
}

fn replay(events: &[ChatEvent], runs: usize) {
    let mut times = Vec::new();
    let mut faults = Vec::new();
    for _ in 0..runs {
        let input = events.to_vec();
        let f0 = minor_faults();
        let t = Instant::now();
        let state = RoomState::replay(input).expect("valid log");
        times.push(t.elapsed().as_secs_f64() * 1e3);
        if let (Some(a), Some(b)) = (f0, minor_faults()) {
            faults.push(b - a);
        }
        black_box(&state);
    }
    println!("page faults per replay: {faults:?}");
    summary("replay of 1,000,000 events", times);
}

fn bytes(events: &[ChatEvent], runs: usize) {
    let json = serde_json::to_vec(events).expect("events serialize");
    let (mut total, mut decode) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let t = Instant::now();
        let decoded: Vec<ChatEvent> = serde_json::from_slice(&json).expect("valid JSON");
        decode.push(t.elapsed().as_secs_f64() * 1e3);
        let state = RoomState::replay(decoded).expect("valid log");
        total.push(t.elapsed().as_secs_f64() * 1e3);
        black_box(&state);
    }
    println!("{} bytes of JSON", json.len());
    summary("decoding 1,000,000 events into a Vec", decode);
    summary("bytes to state (decode into a Vec, then replay)", total);
    let mut streamed = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let state = RoomState::replay_json(&json).expect("valid log");
        streamed.push(t.elapsed().as_secs_f64() * 1e3);
        black_box(&state);
    }
    summary("bytes to state (RoomState::replay_json)", streamed);
}

fn by_type(events: &[ChatEvent], runs: usize) {
    for _ in 0..runs {
        let mut state = RoomState::new();
        let mut per: Vec<(EventType, u128, u64)> = Vec::new();
        let input = events.to_vec();
        for e in input {
            let kind = e.event_type();
            let t = Instant::now();
            state.apply(e).expect("valid log");
            let ns = t.elapsed().as_nanos();
            match per.iter_mut().find(|p| p.0 == kind) {
                Some(p) => {
                    p.1 += ns;
                    p.2 += 1;
                }
                None => per.push((kind, ns, 1)),
            }
        }
        for (kind, ns, n) in per {
            println!(
                "{:>18}: {n:>7} events, {:>6.1} ms, {:>5} ns/event",
                kind.as_str(),
                ns as f64 / 1e6,
                ns / u128::from(n)
            );
        }
        println!();
    }
}

fn sends_floor(events: &[ChatEvent], runs: usize) {
    let mut times = Vec::new();
    for _ in 0..runs {
        let input = events.to_vec();
        let t = Instant::now();
        let mut messages = Vec::new();
        for e in input {
            if let EventKind::MessageSent { content } = e.kind {
                messages.push(Message {
                    id: e.event_id,
                    seq: e.seq,
                    sender_id: e.sender_id,
                    content,
                    sent_at: e.timestamp,
                    edited_at: None,
                    reactions: Default::default(),
                });
            }
        }
        times.push(t.elapsed().as_secs_f64() * 1e3);
        black_box(&messages);
    }
    summary("moving the sends into a Vec<Message>", times);
}

fn latency() {
    for mib in [1, 8, 32, 128] {
        let n = mib * 1024 * 1024 / 8;
        // One random cycle through all places (Sattolo's shuffle).
        let mut next: Vec<usize> = (0..n).collect();
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for i in (1..n).rev() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            next.swap(i, (x % i as u64) as usize);
        }
        let steps = 2_000_000;
        let mut p = 0;
        let t = Instant::now();
        for _ in 0..steps {
            p = next[p];
        }
        black_box(p);
        let ns = t.elapsed().as_nanos() as f64 / steps as f64;
        println!("{mib:>4} MiB working set: {ns:.0} ns per dependent load");
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "replay".into());
    let runs = args.next().and_then(|r| r.parse().ok()).unwrap_or(10);
    if mode == "latency" {
        return latency();
    }
    let events = realistic::realistic_log(1_000_000);
    match mode.as_str() {
        "replay" => replay(&events, runs),
        "bytes" => bytes(&events, runs),
        "by-type" => by_type(&events, runs.min(3)),
        "sends-floor" => sends_floor(&events, runs),
        other => {
            eprintln!("unknown mode {other:?}: replay, bytes, by-type, sends-floor or latency")
        }
    }
}
