//! Several writers on one store, as several server instances share one
//! database: two appenders over one store (embedded, or MongoDB in the test
//! command's second pass) append to the same room
//! at once. The store's conditional commit and the appender's retry keep the
//! log gap-free, never reuse a seq, store a duplicated `eventId` once, and
//! keep the projection equal to the replay.

use domain::{ChatEvent, Command, EventKind, Message, RoomState};
use server::appender::{Appended, Appender, RoomCache};
use server::config::Config;
use server::metrics::Metrics;
use server::store::EventStore;
use std::collections::HashSet;
use std::sync::Arc;
use tokio::task::JoinSet;
use uuid::Uuid;

const CACHE: RoomCache = RoomCache {
    rooms: 64,
    bytes: 64 << 20,
};

fn send(id: Uuid, text: String) -> Command {
    Command::from_kind(
        id,
        &EventKind::MessageSent {
            content: text.into(),
        },
    )
}

/// The embedded store in `dir`, or a fresh database of the MongoDB server
/// `TEST_MONGODB_URI` names (the test command's second pass).
fn config(dir: &std::path::Path) -> Config {
    Config {
        data_dir: dir.to_path_buf(),
        mongodb_uri: std::env::var("TEST_MONGODB_URI").ok(),
        mongodb_db: format!("writers_{}", Uuid::new_v4().simple()),
        ..Config::default()
    }
}

async fn all_events(store: &dyn EventStore, room: &str) -> Vec<ChatEvent> {
    let mut out: Vec<ChatEvent> = Vec::new();
    loop {
        let after = out.last().map_or(0, |e| e.seq);
        let (page, _) = store.events(room, after, 1000).await.unwrap();
        if page.is_empty() {
            return out;
        }
        out.extend(page);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_writers_on_one_store_lose_nothing_and_never_reuse_a_seq() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let (store, bus) = server::open_backends(&config).await.unwrap();
    let metrics = Arc::new(Metrics::new());
    let (a, a_task) = Appender::start(store.clone(), bus.clone(), metrics.clone(), 10, CACHE, 2);
    let (b, b_task) = Appender::start(store.clone(), bus.clone(), metrics.clone(), 10, CACHE, 2);
    a.create_room("shared", "Shared", "ann").await.unwrap();
    // The room as each writer sees it before the race.
    for w in [&a, &b] {
        let r = w
            .append("shared", "ann", send(Uuid::new_v4(), "warm".into()))
            .await;
        assert!(matches!(r, Ok(Appended::New(_))), "{r:?}");
    }

    // 2 writers × 8 tasks × 40 messages, all at once.
    let mut tasks = JoinSet::new();
    for (w, writer) in [a.clone(), b.clone()].into_iter().enumerate() {
        for t in 0..8 {
            let writer = writer.clone();
            tasks.spawn(async move {
                let mut seqs = Vec::new();
                for i in 0..40 {
                    let cmd = send(Uuid::new_v4(), format!("w{w} t{t} #{i}"));
                    match writer.append("shared", &format!("user{t}"), cmd).await {
                        Ok(Appended::New(e)) => seqs.push(e.seq),
                        other => panic!("writer {w} task {t} message {i}: {other:?}"),
                    }
                }
                seqs
            });
        }
    }
    let mut seqs = Vec::new();
    while let Some(r) = tasks.join_next().await {
        seqs.extend(r.unwrap());
    }
    assert_eq!(seqs.len(), 640);
    let distinct: HashSet<u64> = seqs.iter().copied().collect();
    assert_eq!(distinct.len(), 640, "a seq was given to two events");

    // The same eventId sent to both writers at once: stored once.
    for n in 0..20 {
        let id = Uuid::new_v4();
        let (ra, rb) = tokio::join!(
            a.append("shared", "ann", send(id, format!("twice {n}"))),
            b.append("shared", "ann", send(id, format!("twice {n}")))
        );
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        let new = [&ra, &rb]
            .iter()
            .filter(|r| matches!(r, Appended::New(_)))
            .count();
        assert_eq!(new, 1, "{ra:?} {rb:?}");
        let seq = |r: &Appended| match r {
            Appended::New(e) => e.seq,
            Appended::Existing(e) => e.seq,
        };
        assert_eq!(seq(&ra), seq(&rb));
    }

    // The log: gap-free, every acknowledged event in it once.
    let events = all_events(&*store.events, "shared").await;
    assert_eq!(events.len(), 1 + 2 + 640 + 20);
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.seq, i as u64 + 1);
    }
    let stored: HashSet<u64> = events.iter().map(|e| e.seq).collect();
    assert!(distinct.iter().all(|s| stored.contains(s)));
    let ids: HashSet<Uuid> = events.iter().map(|e| e.event_id).collect();
    assert_eq!(ids.len(), events.len());

    // The projection equals the replay.
    let replayed = RoomState::replay(events.clone()).unwrap();
    let page = store.views.views("shared", 10_000, None).await.unwrap();
    let want: Vec<&Message> = replayed.messages().collect();
    assert_eq!(page.messages.iter().collect::<Vec<_>>(), want);
    assert_eq!(page.last_seq, replayed.last_seq());
    // The writers took turns on the room, not one after the other.
    let writer_of = |e: &ChatEvent| match &e.kind {
        EventKind::MessageSent { content } if content.starts_with('w') => content.chars().nth(1),
        _ => None,
    };
    let order: Vec<char> = events.iter().filter_map(writer_of).collect();
    let switches = order.windows(2).filter(|w| w[0] != w[1]).count();
    assert!(switches >= 2, "the writers never met ({switches} switches)");

    drop((a, b));
    a_task.await.unwrap();
    b_task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_room_created_by_two_writers_at_once_exists_once() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let (store, bus) = server::open_backends(&config).await.unwrap();
    let metrics = Arc::new(Metrics::new());
    let (a, _) = Appender::start(store.clone(), bus.clone(), metrics.clone(), 10, CACHE, 2);
    let (b, _) = Appender::start(store.clone(), bus.clone(), metrics.clone(), 10, CACHE, 2);
    for n in 0..20 {
        let room = format!("r{n}");
        let (ra, rb) = tokio::join!(
            a.create_room(&room, "A", "ann"),
            b.create_room(&room, "B", "bob")
        );
        assert_eq!(
            [ra.is_ok(), rb.is_ok()].iter().filter(|ok| **ok).count(),
            1,
            "{ra:?} {rb:?}"
        );
        let loser = if ra.is_ok() { rb } else { ra };
        assert_eq!(
            loser.unwrap_err(),
            server::appender::AppendError::RoomExists
        );
        assert_eq!(all_events(&*store.events, &room).await.len(), 1);
    }
}
