//! Replay benchmark: 1,000,000 realistic events (mostly sends, some edits,
//! deletes, reads and reactions) applied by the reducer; a snapshot plus a
//! 1,000-event tail against a full replay; and JSON decoding on its own.
//!
//! What `replay/bytes_to_state_1m` times: what a client does with a room's
//! log as it arrives, end to end: the JSON array of 1,000,000 events decoded
//! and replayed into a `RoomState` by `RoomState::replay_json`, each event
//! applied as it is decoded, one core. `replay/bytes_to_state_via_vec_1m`:
//! the same, decoding into a `Vec<ChatEvent>` first, then `RoomState::replay`.
//! What `replay/apply_decoded_1m` times: only the replay, moving 1,000,000
//! already decoded, owned `ChatEvent`s into `RoomState::replay`. Cloning the
//! input and dropping the resulting state happen outside the timed part.
//!
//! Run: `cargo bench -p domain --bench replay` (see BENCHMARKS.md).

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use domain::{ChatEvent, RoomState};
use std::time::Duration;

#[path = "support/realistic.rs"]
mod realistic;
use realistic::realistic_log;

const EVENTS: usize = 1_000_000;
const TAIL: usize = 1_000;
fn benches(c: &mut Criterion) {
    let events = realistic_log(EVENTS);
    let full = RoomState::replay(events.clone()).expect("valid log");
    eprintln!(
        "log: {} events, {} live messages at the end",
        events.len(),
        full.message_count()
    );

    let mut g = c.benchmark_group("replay");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.throughput(Throughput::Elements(EVENTS as u64));
    let bytes = serde_json::to_vec(&events).expect("events serialize");
    eprintln!("log as JSON: {} bytes", bytes.len());
    g.bench_function("bytes_to_state_1m", |b| {
        b.iter(|| RoomState::replay_json(&bytes).expect("valid log"))
    });
    g.bench_function("bytes_to_state_via_vec_1m", |b| {
        b.iter(|| bytes_to_state_via_vec(&bytes))
    });
    g.bench_function("apply_decoded_1m", |b| {
        b.iter_batched(
            || events.clone(),
            |ev| RoomState::replay(ev).expect("valid log"),
            BatchSize::PerIteration,
        )
    });

    // Snapshot at n - 1000, then the 1,000-event tail, against the full replay.
    let k = EVENTS - TAIL;
    let prefix = RoomState::replay(events[..k].to_vec()).unwrap();
    let snap = prefix.full_snapshot().unwrap();
    let tail = events[k..].to_vec();
    g.throughput(Throughput::Elements(TAIL as u64));
    g.bench_function("snapshot_plus_1000_tail", |b| {
        b.iter_batched(
            || (snap.chunks.clone(), tail.clone()),
            |(chunks, tail)| {
                let mut s = RoomState::from_snapshot(&snap.head, chunks).unwrap();
                s.apply_all(tail).unwrap();
                s
            },
            BatchSize::PerIteration,
        )
    });
    // The same, loading only the chunks needed for the newest 50 messages.
    g.bench_function("partial_snapshot_plus_1000_tail_window_50", |b| {
        let plan = snap.head.plan_window(50, None, 200);
        let needed: Vec<_> = snap
            .chunks
            .iter()
            .filter(|c| plan.contains(&c.index))
            .cloned()
            .collect();
        b.iter_batched(
            || (needed.clone(), tail.clone()),
            |(chunks, tail)| {
                let mut s = RoomState::from_snapshot(&snap.head, chunks).unwrap();
                s.apply_all(tail).unwrap();
                s.window_views(50, None).unwrap()
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();

    let mut g = c.benchmark_group("decode");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    let json: Vec<String> = events[..100_000].iter().map(|e| e.to_json()).collect();
    g.throughput(Throughput::Elements(json.len() as u64));
    g.bench_function("json_100k", |b| {
        b.iter(|| {
            json.iter()
                .map(|j| ChatEvent::from_json(j.as_bytes()).unwrap().seq)
                .sum::<u64>()
        })
    });
    g.finish();
}

/// Decodes a JSON array of events into a vector, then replays it.
fn bytes_to_state_via_vec(bytes: &[u8]) -> RoomState {
    let events: Vec<ChatEvent> = serde_json::from_slice(bytes).expect("valid JSON");
    RoomState::replay(events).expect("valid log")
}

criterion_group!(replay, benches);
criterion_main!(replay);
