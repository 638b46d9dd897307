//! Integration tests of the hard cases: concurrent retries, an unreachable
//! store, corrupt stored data, token expiry, sign-in limits, oversized frames, shutdown with
//! appends in flight, and a room of 100,000 messages.

mod common;

use async_trait::async_trait;
use common::*;
use domain::{ChatEvent, Timestamp};
use futures_util::{SinkExt, StreamExt};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use server::store::embedded::EmbeddedStore;
use server::store::{Commit, EventStore, RoomRecord, StoreError, Stores};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use uuid::Uuid;

/// The embedded store, with commits that fail while `down` is set, and
/// event reads that find corrupt data while `corrupt` is set or skip the
/// first event of every page while `gap` is set.
struct FlakyStore {
    inner: Arc<EmbeddedStore>,
    down: Arc<AtomicBool>,
    corrupt: Arc<AtomicBool>,
    gap: Arc<AtomicBool>,
    /// Commits are written, but their answer is lost (an unknown outcome).
    lost: Arc<AtomicBool>,
    /// While set, readying a batch with room "slow" (as when another
    /// instance holds its turn) waits for a permit of `turns`; `waiting`
    /// says one does.
    hold_slow: Arc<AtomicBool>,
    waiting: Arc<AtomicBool>,
    turns: Arc<tokio::sync::Semaphore>,
}

impl FlakyStore {
    fn new(dir: &std::path::Path) -> Self {
        FlakyStore {
            inner: Arc::new(EmbeddedStore::open(dir).unwrap()),
            down: Arc::default(),
            corrupt: Arc::default(),
            gap: Arc::default(),
            lost: Arc::default(),
            hold_slow: Arc::default(),
            waiting: Arc::default(),
            turns: Arc::new(tokio::sync::Semaphore::new(0)),
        }
    }
}

#[async_trait]
impl EventStore for FlakyStore {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
    async fn ping(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("injected".into()));
        }
        self.inner.ping().await
    }
    async fn room(&self, r: &str) -> Result<Option<RoomRecord>, StoreError> {
        self.inner.room(r).await
    }
    async fn events(&self, r: &str, a: u64, l: usize) -> Result<(Vec<ChatEvent>, u64), StoreError> {
        if self.corrupt.load(Ordering::SeqCst) {
            return Err(StoreError::Corrupt(
                "injected: an event does not decode".into(),
            ));
        }
        let (mut events, last) = self.inner.events(r, a, l).await?;
        if self.gap.load(Ordering::SeqCst) && !events.is_empty() {
            events.remove(0);
        }
        Ok((events, last))
    }
    async fn event_by_id(&self, r: &str, id: Uuid) -> Result<Option<ChatEvent>, StoreError> {
        self.inner.event_by_id(r, id).await
    }
    async fn seqs_of(&self, r: &str, ids: &[Uuid]) -> Result<Vec<(Uuid, u64)>, StoreError> {
        self.inner.seqs_of(r, ids).await
    }
    async fn seq_at_time(&self, r: &str, t: Timestamp) -> Result<u64, StoreError> {
        self.inner.seq_at_time(r, t).await
    }
    async fn ready(
        &self,
        rooms: &[(&str, Option<u64>)],
        writer: Uuid,
        contended: bool,
    ) -> Result<Vec<String>, StoreError> {
        if rooms.iter().any(|(room, _)| *room == "slow") && self.hold_slow.load(Ordering::SeqCst) {
            self.waiting.store(true, Ordering::SeqCst);
            let _ = self.turns.acquire().await;
        }
        self.inner.ready(rooms, writer, contended).await
    }
    async fn commit(&self, c: Commit) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("injected".into()));
        }
        self.inner.commit(c).await?;
        if self.lost.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable(
                "injected: the answer was lost".into(),
            ));
        }
        Ok(())
    }
}

impl FlakyStore {
    /// The stores of a server: this one for events, the embedded store
    /// for the rest.
    fn stores(self: Arc<Self>) -> Stores {
        let inner = self.inner.clone();
        Stores {
            events: self,
            views: inner.clone(),
            snapshots: inner.clone(),
            accounts: inner,
        }
    }
}

#[tokio::test]
async fn concurrent_duplicates_give_one_201_and_200s() {
    let (_dir, s, c, token) = setup("r").await;
    let body = send("only once");
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (c, token, url, body) = (
            c.clone(),
            token.clone(),
            s.url("/api/rooms/r/events"),
            body.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let r = c
                .post(&url)
                .bearer_auth(&token)
                .json(&body)
                .send()
                .await
                .unwrap();
            let st = r.status();
            (st, r.json::<Value>().await.unwrap())
        }));
    }
    let mut created = 0;
    let mut events = Vec::new();
    for t in tasks {
        let (st, e) = t.await.unwrap();
        match st {
            StatusCode::CREATED => created += 1,
            StatusCode::OK => {}
            other => panic!("unexpected {other}: {e}"),
        }
        events.push(e);
    }
    assert_eq!(created, 1);
    assert!(
        events.iter().all(|e| *e == events[0]),
        "every answer is the one stored event"
    );
    let (_, page) = get(&c, &s, &token, "/api/rooms/r/events").await;
    assert_eq!(page["lastSeq"], 2);
    s.stop().await;
}

#[tokio::test]
async fn a_commit_whose_answer_is_lost_is_looked_up_before_answering() {
    let dir = tempfile::tempdir().unwrap();
    let config = TestServer::config(dir.path(), 0);
    let store = FlakyStore::new(dir.path());
    let lost = store.lost.clone();
    let bus = Arc::new(server::bus::LocalBus::default());
    let s = TestServer::start_with(config, Some((Arc::new(store).stores(), bus))).await;
    let c = Client::new();
    let token = user(&c, &s, "alice").await;
    room(&c, &s, &token, "r").await;
    lost.store(true, Ordering::SeqCst);
    // Written, though the store's answer never came: acknowledged, once.
    let body = send("written, answer lost");
    let (st, e) = post(&c, &s, &token, "r", body.clone()).await;
    assert_eq!(
        (st, e["seq"].as_u64()),
        (StatusCode::CREATED, Some(2)),
        "{e}"
    );
    lost.store(false, Ordering::SeqCst);
    let (st, again) = post(&c, &s, &token, "r", body).await;
    assert_eq!((st, again["seq"].as_u64()), (StatusCode::OK, Some(2)));
    // The writer's state went on from the stored event.
    let (st, next) = post(&c, &s, &token, "r", send("next")).await;
    assert_eq!((st, next["seq"].as_u64()), (StatusCode::CREATED, Some(3)));
    let (_, page) = get(&c, &s, &token, "/api/rooms/r/events").await;
    assert_eq!(page["events"].as_array().unwrap().len(), 3);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn one_slow_room_holds_up_only_the_rooms_of_its_writer() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = TestServer::config(dir.path(), 0);
    let writers = 4;
    config.append_writers = Some(writers);
    let store = FlakyStore::new(dir.path());
    let (hold, waiting, turns) = (
        store.hold_slow.clone(),
        store.waiting.clone(),
        store.turns.clone(),
    );
    let bus = Arc::new(server::bus::LocalBus::default());
    let s = TestServer::start_with(config, Some((Arc::new(store).stores(), bus))).await;
    let c = Client::new();
    let token = user(&c, &s, "alice").await;
    let slow_writer = server::appender::writer_of("slow", writers);
    let others: Vec<String> = (0..40)
        .map(|i| format!("room{i}"))
        .filter(|r| server::appender::writer_of(r, writers) != slow_writer)
        .take(8)
        .collect();
    assert_eq!(others.len(), 8);
    for r in others.iter().map(String::as_str).chain(["slow"]) {
        room(&c, &s, &token, r).await;
    }
    // An append to "slow" waits for its turn (another instance has it)...
    hold.store(true, Ordering::SeqCst);
    let slow = tokio::spawn({
        let (c, url, token) = (c.clone(), s.url("/api/rooms/slow/events"), token.clone());
        async move {
            let r = c
                .post(url)
                .bearer_auth(token)
                .json(&send("late"))
                .send()
                .await;
            r.unwrap().status()
        }
    });
    wait_until(
        10,
        "the append to the slow room waits for its turn",
        || async { waiting.load(Ordering::SeqCst) },
    )
    .await;
    // ...while the rooms of the other writers take appends.
    for r in &others {
        let (status, e) = tokio::time::timeout(
            Duration::from_secs(10),
            post(&c, &s, &token, r, send("on time")),
        )
        .await
        .unwrap_or_else(|_| panic!("{r} was held up by the slow room"));
        assert_eq!(status, StatusCode::CREATED, "{e}");
    }
    assert!(!slow.is_finished(), "the slow room is still waiting");
    hold.store(false, Ordering::SeqCst);
    turns.add_permits(1);
    assert_eq!(slow.await.unwrap(), StatusCode::CREATED);
    s.stop().await;
}

#[tokio::test]
async fn an_unreachable_store_answers_503_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = TestServer::config(dir.path(), 0);
    let store = FlakyStore::new(dir.path());
    let down = store.down.clone();
    let bus = Arc::new(server::bus::LocalBus::default());
    let s = TestServer::start_with(config, Some((Arc::new(store).stores(), bus))).await;
    let c = Client::new();
    let token = user(&c, &s, "alice").await;
    room(&c, &s, &token, "r").await;
    post(&c, &s, &token, "r", send("before")).await;

    down.store(true, Ordering::SeqCst);
    let body = send("during");
    let (st, v) = post(&c, &s, &token, "r", body.clone()).await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
    );
    let r = c.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let h: Value = r.json().await.unwrap();
    assert_eq!(
        (h["store"].as_str(), code(&h)),
        (Some("embedded"), "unavailable")
    );

    down.store(false, Ordering::SeqCst);
    // the retry with the same eventId is stored now (201), at the next seq
    let (st, e) = post(&c, &s, &token, "r", body).await;
    assert_eq!((st, e["seq"].as_u64()), (StatusCode::CREATED, Some(3)));
    let (_, page) = get(&c, &s, &token, "/api/rooms/r/events").await;
    let seqs: Vec<u64> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, vec![1, 2, 3]);
    let (_, msgs) = get(&c, &s, &token, "/api/rooms/r/messages").await;
    assert_eq!(msgs["messages"].as_array().unwrap().len(), 2);
    s.stop().await;
}

#[tokio::test]
async fn corrupt_stored_data_answers_500_internal_never_503() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = TestServer::config(dir.path(), 0);
    // One writer keeping one room: each room is read again when next used.
    config.rooms_in_memory = 1;
    config.append_writers = Some(1);
    let store = FlakyStore::new(dir.path());
    let (corrupt, gap) = (store.corrupt.clone(), store.gap.clone());
    let bus = Arc::new(server::bus::LocalBus::default());
    let s = TestServer::start_with(config, Some((Arc::new(store).stores(), bus))).await;
    let c = Client::new();
    let token = user(&c, &s, "alice").await;
    room(&c, &s, &token, "a").await;
    room(&c, &s, &token, "b").await;
    for r in ["a", "b"] {
        for i in 0..3 {
            post(&c, &s, &token, r, send(&format!("{r}{i}"))).await;
        }
    }
    let internal = |(st, v): (StatusCode, Value)| {
        assert_eq!(
            (st, code(&v)),
            (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            "{v}"
        );
        assert!(
            !v["error"]["message"].as_str().unwrap().contains("injected"),
            "{v}"
        );
    };

    corrupt.store(true, Ordering::SeqCst);
    internal(get(&c, &s, &token, "/api/rooms/a/events").await);
    internal(get(&c, &s, &token, "/api/rooms/a/messages?atSeq=3").await);
    // the writer keeps one room in memory ("b"): appending to "a" reloads it
    internal(post(&c, &s, &token, "a", send("after")).await);
    corrupt.store(false, Ordering::SeqCst);

    // events that do not replay (a seq missing) in time travel: a bug too
    gap.store(true, Ordering::SeqCst);
    internal(get(&c, &s, &token, "/api/rooms/b/messages?atSeq=4").await);
    gap.store(false, Ordering::SeqCst);

    // nothing was written; the store reads well again
    let (st, e) = post(&c, &s, &token, "a", send("after")).await;
    assert_eq!((st, e["seq"].as_u64()), (StatusCode::CREATED, Some(5)));
    let (st, v) = get(&c, &s, &token, "/api/rooms/b/messages?atSeq=4").await;
    assert_eq!(
        (st, v["messages"].as_array().unwrap().len()),
        (StatusCode::OK, 3)
    );
    s.stop().await;
}

#[tokio::test]
async fn tokens_expire_after_the_session_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = TestServer::config(dir.path(), 0);
    config.session_ttl = Duration::ZERO;
    let s = TestServer::start_with(config, None).await;
    let c = Client::new();
    let token = user(&c, &s, "alice").await;
    let (st, v) = get(&c, &s, &token, "/api/rooms").await;
    assert_eq!((st, code(&v)), (StatusCode::UNAUTHORIZED, "unauthorized"));
    s.stop().await;
}

#[tokio::test]
async fn failed_sign_ins_are_limited_per_user_and_address() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path(), 0).await;
    let c = Client::new();
    user(&c, &s, "alice").await;
    let attempt = |password: &'static str| {
        let (c, url) = (c.clone(), s.url("/api/sessions"));
        async move {
            c.post(url)
                .json(&json!({"userId": "alice", "password": password}))
                .send()
                .await
                .unwrap()
        }
    };
    for _ in 0..10 {
        assert_eq!(
            attempt("wrong password").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let r = attempt("wrong password").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().get("retry-after").is_some());
    assert_eq!(code(&r.json().await.unwrap()), "rate_limited");
    // another user id from the same address is not limited
    let r = c
        .post(s.url("/api/sessions"))
        .json(&json!({"userId": "bob", "password": "whatever1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    s.stop().await;
}

#[tokio::test]
async fn websocket_refusals_and_oversized_frames() {
    let (_dir, s, _c, token) = setup("r").await;
    // before the upgrade: 401 and 404 in the contract's JSON
    let err = tokio_tungstenite::connect_async(s.ws_url("/api/rooms/r/ws?token=nope"))
        .await
        .unwrap_err();
    match err {
        tokio_tungstenite::tungstenite::Error::Http(r) => assert_eq!(r.status(), 401),
        e => panic!("{e}"),
    }
    let err =
        tokio_tungstenite::connect_async(s.ws_url(&format!("/api/rooms/none/ws?token={token}")))
            .await
            .unwrap_err();
    match err {
        tokio_tungstenite::tungstenite::Error::Http(r) => assert_eq!(r.status(), 404),
        e => panic!("{e}"),
    }
    let (mut ws, _) =
        tokio_tungstenite::connect_async(s.ws_url(&format!("/api/rooms/r/ws?token={token}")))
            .await
            .unwrap();
    let Some(Ok(WsMessage::Text(first))) = ws.next().await else {
        panic!()
    };
    assert!(first.contains("ROOM_CREATED"));
    // a refused submit: an error frame with the eventId and the HTTP code
    let id = Uuid::new_v4();
    ws.send(WsMessage::Text(
        json!({"type": "submit", "event": {"eventId": id, "eventType": "MESSAGE_SENT", "content": " "}}).to_string().into(),
    ))
    .await
    .unwrap();
    let Some(Ok(WsMessage::Text(t))) = ws.next().await else {
        panic!()
    };
    let v: Value = serde_json::from_str(&t).unwrap();
    assert_eq!(
        (v["type"].as_str(), v["eventId"].as_str(), code(&v)),
        (
            Some("error"),
            Some(id.to_string().as_str()),
            "content_empty"
        )
    );
    // binary frames are refused, the socket stays
    ws.send(WsMessage::Binary(vec![1, 2, 3].into()))
        .await
        .unwrap();
    let Some(Ok(WsMessage::Text(t))) = ws.next().await else {
        panic!()
    };
    assert_eq!(code(&serde_json::from_str(&t).unwrap()), "bad_json");
    // a frame over 64 KiB closes the socket with 1009
    ws.send(WsMessage::Text("x".repeat(70 * 1024).into()))
        .await
        .unwrap();
    assert_eq!(close_code(&mut ws).await, Some(1009));
    s.stop().await;
}

#[tokio::test]
async fn shutdown_finishes_in_flight_appends_and_loses_no_acknowledged_event() {
    let (dir, s, c, token) = setup("r").await;
    let mut tasks = Vec::new();
    for i in 0..200 {
        let (c, token, url) = (c.clone(), token.clone(), s.url("/api/rooms/r/events"));
        tasks.push(tokio::spawn(async move {
            let body = send(&format!("m{i}"));
            match c.post(&url).bearer_auth(&token).json(&body).send().await {
                Ok(r) if r.status() == StatusCode::CREATED => {
                    Some(r.json::<Value>().await.unwrap())
                }
                _ => None,
            }
        }));
    }
    // stop while the appends are in flight
    tokio::time::timeout(Duration::from_secs(1), async {
        while get(&c, &s, &token, "/api/rooms/r/events").await.1["lastSeq"]
            .as_u64()
            .unwrap_or(0)
            < 5
        {
            tokio::task::yield_now().await;
        }
    })
    .await
    .ok();
    let base = s.base.clone();
    s.stop().await;
    let mut acknowledged = Vec::new();
    for t in tasks {
        if let Some(e) = t.await.unwrap() {
            acknowledged.push(e);
        }
    }
    // every acknowledged event is in the store after a restart, gap-free
    let s = TestServer::start(dir.path(), 0).await;
    assert_ne!(s.base, base);
    let (_, page) = get(&c, &s, &token, "/api/rooms/r/events?limit=5000").await;
    let stored = page["events"].as_array().unwrap();
    let seqs: Vec<u64> = stored.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=stored.len() as u64).collect::<Vec<_>>());
    for e in &acknowledged {
        assert_eq!(&stored[e["seq"].as_u64().unwrap() as usize - 1], e);
    }
    s.stop().await;
}

#[tokio::test]
async fn shutdown_closes_open_websockets_with_1001() {
    let (_dir, s, _c, token) = setup("r").await;
    let (mut ws, _) =
        tokio_tungstenite::connect_async(s.ws_url(&format!("/api/rooms/r/ws?token={token}")))
            .await
            .unwrap();
    let Some(Ok(WsMessage::Text(_))) = ws.next().await else {
        panic!()
    };
    // stop() fails the test if the server does not finish within 10 s
    let stopping = tokio::spawn(s.stop());
    assert_eq!(close_code(&mut ws).await, Some(1001));
    stopping.await.unwrap();
}

#[tokio::test]
async fn rooms_dropped_from_memory_are_reloaded_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = TestServer::config(dir.path(), 0);
    // One writer keeping two of the five rooms: rooms are dropped and read
    // again all the time.
    config.rooms_in_memory = 2;
    config.append_writers = Some(1);
    let s = TestServer::start_with(config, None).await;
    let c = Client::new();
    let token = user(&c, &s, "alice").await;
    let rooms = ["a", "b", "c", "d", "e"];
    for r in rooms {
        room(&c, &s, &token, r).await;
    }
    let mut first = std::collections::HashMap::new();
    for round in 0..30 {
        for r in rooms {
            let (st, e) = post_retrying(&c, &s, &token, r, send(&format!("{r}{round}"))).await;
            assert!(st == StatusCode::CREATED || st == StatusCode::OK, "{st}");
            assert_eq!(e["seq"].as_u64(), Some(round + 2));
            first
                .entry(r)
                .or_insert_with(|| e["eventId"].as_str().unwrap().to_owned());
        }
    }
    // decisions after a reload still see every message (edit of the first)
    for r in rooms {
        let edit = json!({"eventId": Uuid::new_v4(), "eventType": "MESSAGE_EDITED", "content": "edited", "targetMessageId": first[r]});
        let (st, _) = post_retrying(&c, &s, &token, r, edit).await;
        assert!(st == StatusCode::CREATED || st == StatusCode::OK, "{st}");
        let (_, page) = get(
            &c,
            &s,
            &token,
            &format!("/api/rooms/{r}/messages?limit=500"),
        )
        .await;
        let msgs = page["messages"].as_array().unwrap();
        assert_eq!(msgs.len(), 30);
        assert_eq!(msgs[0]["content"], "edited");
        assert_eq!(page["lastSeq"], 32);
    }
    s.stop().await;
}

#[tokio::test]
async fn a_room_of_100000_messages_works() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = TestServer::config(dir.path(), 0);
    config.snapshot_every = 100;
    let s = TestServer::start_with(config.clone(), None).await;
    let c = Client::new();
    let token = user(&c, &s, "alice").await;
    room(&c, &s, &token, "big").await;
    let t0 = std::time::Instant::now();
    // pipelined submits over a few sockets: group commit batches them
    let n_total: usize = std::env::var("BIG_ROOM_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    const SOCKETS: usize = 4;
    let mut tasks = Vec::new();
    for k in 0..SOCKETS {
        let url = s.ws_url(&format!(
            "/api/rooms/big/ws?afterSeq=999999999&token={token}"
        ));
        tasks.push(tokio::spawn(async move {
            let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
            submit_pipelined(&mut ws, n_total / SOCKETS, 200, |i| format!("{k}/{i}")).await;
        }));
    }
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(300), t)
            .await
            .unwrap()
            .unwrap();
    }
    let last = n_total as u64 + 1;
    eprintln!("appended {n_total} in {:?}", t0.elapsed());
    // The room's first message, retried: found by its eventId (past 65,536
    // events, the embedded store has moved it from staging into its index)
    // and answered as first stored; a new event reusing it is refused.
    let (_, first) = get(&c, &s, &token, "/api/rooms/big/events?afterSeq=1&limit=1").await;
    let first = first["events"][0].clone();
    let retry = json!({"eventId": first["eventId"], "eventType": "MESSAGE_SENT",
        "content": first["content"]});
    let (status, again) = post(&c, &s, &token, "big", retry.clone()).await;
    assert_eq!((status, &again), (StatusCode::OK, &first));
    let mut other = retry;
    other["content"] = json!("another text");
    let (status, refused) = post(&c, &s, &token, "big", other).await;
    assert_eq!(
        (status, code(&refused)),
        (StatusCode::CONFLICT, "event_id_conflict")
    );
    let (_, msgs) = get(&c, &s, &token, "/api/rooms/big/messages?limit=50").await;
    assert_eq!(msgs["lastSeq"], last);
    assert_eq!(msgs["messages"].as_array().unwrap().len(), 50);
    assert_eq!(msgs["messages"][49]["seq"], last);
    // time travel deep into the room, from a snapshot and a few chunks
    let (at, before) = (last / 2, last * 2 / 5);
    let (st, old) = get(
        &c,
        &s,
        &token,
        &format!("/api/rooms/big/messages?atSeq={at}&limit=10&beforeSeq={before}"),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let seqs: Vec<u64> = old["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (before - 10..before).collect::<Vec<_>>());
    assert_eq!(old["asOfSeq"], at);
    // a restart loads the room from its snapshot and keeps appending
    s.stop().await;
    let s = TestServer::start_with(config, None).await;
    let (st, e) = post(&c, &s, &token, "big", send("one more")).await;
    assert_eq!(
        (st, e["seq"].as_u64()),
        (StatusCode::CREATED, Some(last + 1))
    );
    s.stop().await;
}
