//! Replay benchmark: 1,000,000 realistic events (mostly sends, some edits,
//! deletes, reads and reactions) applied by the reducer; a snapshot plus a
//! 1,000-event tail against a full replay; and JSON decoding on its own.
//!
//! What `replay/apply_decoded_1m` times: moving 1,000,000 already decoded,
//! owned `ChatEvent`s into `RoomState::replay`, one core. Cloning the input
//! and dropping the resulting state happen outside the timed part.
//!
//! Run: `cargo bench -p domain --bench replay` (see BENCHMARKS.md).

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use domain::{ChatEvent, EventKind, RoomState, Timestamp};
use std::time::Duration;
use uuid::Uuid;

const EVENTS: usize = 1_000_000;
const TAIL: usize = 1_000;
const USERS: [&str; 8] = [
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi",
];

/// xorshift64*: deterministic, good enough to pick actions.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A valid log of `n` events: ~62% sends, 8% edits, 5% deletes, 15% reads,
/// 7% reactions added, 3% removed; targets mostly among recent messages.
fn realistic_log(n: usize) -> Vec<ChatEvent> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut live: Vec<(Uuid, usize)> = Vec::new();
    let mut reacted: Vec<(Uuid, usize, &'static str)> = Vec::new();
    let mut events = Vec::with_capacity(n);
    let t0 = 1_795_000_000_000i64;
    let texts = [
        "hello everyone",
        "did you see the release notes? the new replay path is much faster",
        "ok",
        "lunch at noon?",
        "I think we should split the snapshot into chunks so it never grows unbounded",
    ];
    let emoji = ["👍", "🎉", "❤️", "😂"];
    for seq in 1..=n as u64 {
        let user = rng.below(USERS.len());
        let pick = rng.below(100);
        let recent = |rng: &mut Rng, live: &Vec<(Uuid, usize)>| {
            let window = live.len().min(500);
            live.len() - 1 - rng.below(window)
        };
        let (sender, kind) = if seq == 1 {
            (
                0,
                EventKind::RoomCreated {
                    name: "Benchmark".into(),
                },
            )
        } else if pick < 62 || live.is_empty() {
            (
                user,
                EventKind::MessageSent {
                    content: texts[rng.below(texts.len())].into(),
                },
            )
        } else if pick < 70 {
            let (id, owner) = live[recent(&mut rng, &live)];
            (
                owner,
                EventKind::MessageEdited {
                    message_id: id,
                    content: format!("edited {seq}"),
                },
            )
        } else if pick < 75 {
            let i = recent(&mut rng, &live);
            let (id, owner) = live.remove(i);
            (owner, EventKind::MessageDeleted { message_id: id })
        } else if pick < 90 {
            let (id, _) = live[recent(&mut rng, &live)];
            (user, EventKind::MessageRead { message_id: id })
        } else if pick < 97 || reacted.is_empty() {
            let (id, _) = live[recent(&mut rng, &live)];
            let e = emoji[rng.below(emoji.len())];
            reacted.push((id, user, e));
            (
                user,
                EventKind::ReactionAdded {
                    message_id: id,
                    emoji: e.into(),
                },
            )
        } else {
            let (id, who, e) = reacted.swap_remove(rng.below(reacted.len()));
            (
                who,
                EventKind::ReactionRemoved {
                    message_id: id,
                    emoji: e.into(),
                },
            )
        };
        let event_id = Uuid::from_u64_pair(rng.next(), seq);
        if let EventKind::MessageSent { .. } = kind {
            live.push((event_id, sender));
        }
        events.push(ChatEvent {
            event_id,
            room_id: "bench".into(),
            seq,
            sender_id: USERS[sender].into(),
            timestamp: Timestamp::from_millis(t0 + seq as i64 * 7).unwrap(),
            kind,
        });
    }
    events
}

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

criterion_group!(replay, benches);
criterion_main!(replay);
