//! The append path, in the order the design fixes: decide with the domain,
//! assign the next seq, persist the events durably (the commit point), then
//! update the projection and the snapshots, answer, and publish.
//!
//! A few writers (`APPEND_WRITERS`; on the embedded store each on a thread
//! of its own) share the rooms by a hash of their ids, so that one slow
//! room (a large one loading, or another instance holding its turn) holds
//! up only its writer's rooms. Each keeps the in-memory state of the rooms
//! it has touched and takes requests from a channel. It drains what is
//! waiting into one batch and writes the batch's events in a single
//! atomic, durable commit (group commit): one fsync for many events. The
//! commit is conditional on each room's log being where the writer saw
//! it, so several writers (other server instances on the same database)
//! can share a store: on a conflict the writer drops the states it used,
//! reloads what it missed, decides the batch again and retries. Seqs stay
//! gap-free and unique, and a cached state is never trusted over the
//! store.
//!
//! The projection (view rows, read markers, unread counts) and the
//! snapshots are written in the events' transaction, or in one of their
//! own after them where they cannot go with them; each room's changes
//! only if its projection is where this writer left it (a per-room
//! checkpoint), so writing them again is a no-op. A room whose projection
//! lags (a failed write; or the process died between the two, found at
//! the next start) is caught up from its events
//! (`crate::rebuild::catch_up`), and a read of its messages catches it up
//! first, so that a write is always seen.
//!
//! It knows no HTTP: it answers with [`AppendError`], which the HTTP layer
//! maps to the contract's responses (`crate::error`).

use crate::bus::Bus;
use crate::metrics::Metrics;
use crate::rebuild::CatchUps;
use crate::store::{
    load_snapshot, Commit, Projected, ProjectionChanges, RoomRecord, SeqAdvance, StoreError,
    Stores, ViewChange, WithProjection,
};
use domain::chunk::chunk_of;
use domain::{
    ChatEvent, Command, EventKind, Refusal, RoomState, SnapshotHead, Timestamp, CHUNK_SPAN,
};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

/// Tries of a projection write that finds its rooms behind (another
/// writer's changes not there yet) before they are caught up by replay.
const PROJECTION_ATTEMPTS: u32 = 5;
/// Requests taken into one commit at most.
const MAX_BATCH: usize = 512;
/// How long a store call may take before the batch is answered 503 (where
/// it can be timed out: not on a writer's own thread, see `Writer::spawn`).
pub const STORE_TIMEOUT: Duration = Duration::from_secs(3);

/// Why an append or a room creation was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppendError {
    /// The domain refused the command (its code: `message_not_found`,
    /// `forbidden`, …).
    #[error("{0}")]
    Refused(Refusal),
    #[error("no such room")]
    RoomNotFound,
    #[error("a room with this id exists")]
    RoomExists,
    /// The eventId is stored with another payload or sender.
    #[error("an event with this eventId exists with another payload or sender")]
    EventIdConflict,
    /// `expectedSeq` is not the room's last seq.
    #[error("the room is at seq {last_seq}")]
    SeqConflict { last_seq: u64 },
    /// Nothing was acknowledged (the store could not be reached in time,
    /// or the server is stopping): the client may retry with the same
    /// eventId. Says why, for a person.
    #[error("{0}")]
    Unavailable(&'static str),
    /// Stored data contradicts itself: a bug, not something to retry.
    #[error("corrupt data: {0}")]
    Corrupt(String),
}

impl From<Refusal> for AppendError {
    fn from(r: Refusal) -> Self {
        AppendError::Refused(r)
    }
}

impl From<StoreError> for AppendError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(detail) => {
                tracing::warn!(error = %detail, "store unavailable");
                AppendError::Unavailable(UNREACHABLE)
            }
            StoreError::Corrupt(detail) => AppendError::Corrupt(detail),
            // Only a commit that creates a room says this.
            StoreError::Exists => AppendError::RoomExists,
            // The appender decides again on a conflict; one that gets here
            // was left after every attempt.
            StoreError::Conflict(_) => AppendError::Unavailable(BUSY),
        }
    }
}

const UNREACHABLE: &str = "the store cannot be reached";
const BUSY: &str = "the room is too busy right now";

/// The result of an accepted append.
#[derive(Debug, Clone)]
pub enum Appended {
    /// Stored now (201).
    New(Arc<ChatEvent>),
    /// A retry of an event stored before (200).
    Existing(ChatEvent),
}

enum Request {
    Append {
        room: String,
        sender: String,
        cmd: Command,
        reply: oneshot::Sender<Result<Appended, AppendError>>,
    },
    CreateRoom {
        room: String,
        name: String,
        creator: String,
        reply: oneshot::Sender<Result<RoomRecord, AppendError>>,
    },
}

/// What a request asks, without its answer channel: decided again on every
/// attempt of a batch.
enum Job {
    Append {
        room: String,
        sender: String,
        cmd: Command,
    },
    CreateRoom {
        room: String,
        name: String,
        creator: String,
    },
}

impl Request {
    fn split(self) -> (Job, ReplyTo) {
        match self {
            Request::Append {
                room,
                sender,
                cmd,
                reply,
            } => (Job::Append { room, sender, cmd }, ReplyTo::Append(reply)),
            Request::CreateRoom {
                room,
                name,
                creator,
                reply,
            } => (
                Job::CreateRoom {
                    room,
                    name,
                    creator,
                },
                ReplyTo::Room(reply),
            ),
        }
    }
}

/// How many times a batch is decided again after another writer appended to
/// one of its rooms first, before its requests are answered 503. Between
/// attempts it waits a random time below 1, 2, 4, … ms (at most 64): two
/// writers feeding one hot room would otherwise keep meeting.
const ATTEMPTS: u32 = 60;
/// How long a writer counts as contended after meeting another one: it then
/// keeps a copy of each room's state from before a batch, so that a
/// conflict costs one read of the events it missed instead of a reload.
const CONTENDED: Duration = Duration::from_secs(1);

/// Requests waiting for the writers, in all.
const QUEUED: usize = 4096;

/// The handle the HTTP and WebSocket handlers use.
#[derive(Clone)]
pub struct Appender {
    /// One queue per writer; a room's requests all go to one writer.
    writers: Arc<[mpsc::Sender<Request>]>,
    /// Projections being caught up from their events, shared with readers.
    catch_ups: CatchUps,
    /// Rooms known to exist (see [`Appender::room_exists`]).
    known_rooms: Arc<Mutex<HashSet<String>>>,
    stores: Stores,
}

/// Rooms whose existence is remembered at most; the set is emptied when
/// full (about 100 bytes a room).
const MAX_KNOWN_ROOMS: usize = 100_000;

/// Which of `writers` writers takes `room`'s appends: a hash of its id.
pub fn writer_of(room: &str, writers: usize) -> usize {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut hasher = DefaultHasher::new();
    room.hash(&mut hasher);
    (hasher.finish() % writers.max(1) as u64) as usize
}

impl Appender {
    /// Starts `writers` writers (at least one; see [`Writer::spawn`]), each
    /// with its share of the rooms (by [`writer_of`]) and of `cache`, so
    /// that one slow room (a large room loading, another instance holding
    /// its turn) holds up only the rooms of its writer. They end once every
    /// handle is dropped and the requests already sent are answered; so
    /// does the task returned.
    pub fn start(
        stores: Stores,
        bus: Arc<dyn Bus>,
        metrics: Arc<Metrics>,
        snapshot_every: u64,
        cache: RoomCache,
        writers: usize,
    ) -> (Appender, tokio::task::JoinHandle<()>) {
        let n = writers.max(1);
        let share = RoomCache {
            rooms: (cache.rooms / n).max(1),
            bytes: cache.bytes / n,
        };
        let catch_ups = CatchUps::new(tokio::runtime::Handle::current());
        let mut queues = Vec::with_capacity(n);
        let mut tasks = Vec::with_capacity(n);
        for _ in 0..n {
            let (tx, rx) = mpsc::channel((QUEUED / n).max(64));
            let writer = Writer {
                stores: stores.clone(),
                bus: bus.clone(),
                metrics: metrics.clone(),
                snapshot_every,
                rooms: HashMap::new(),
                cache: share,
                clock: 0,
                contended_until: None,
                skipped_lookup: false,
                id: Uuid::new_v4(),
                catch_ups: catch_ups.clone(),
                reported: (0, 0),
            };
            queues.push(tx);
            tasks.push(writer.spawn(rx));
        }
        let all = tokio::spawn(async move {
            for task in tasks {
                let _ = task.await;
            }
        });
        (
            Appender {
                writers: queues.into(),
                catch_ups,
                known_rooms: Arc::default(),
                stores,
            },
            all,
        )
    }

    /// Hands a request to its room's writer; a writer whose queue stays
    /// full for [`STORE_TIMEOUT`] (the store is slow) is answered for.
    async fn queue(&self, room: &str, req: Request) -> Result<(), AppendError> {
        let queue = &self.writers[writer_of(room, self.writers.len())];
        match queue.send_timeout(req, STORE_TIMEOUT).await {
            Ok(()) => Ok(()),
            Err(mpsc::error::SendTimeoutError::Timeout(_)) => {
                Err(AppendError::Unavailable("the store is busy; retry"))
            }
            Err(mpsc::error::SendTimeoutError::Closed(_)) => Err(stopped()),
        }
    }

    /// Whether a room exists. Rooms are never deleted: one seen once is
    /// known without asking the store again, so that an append checks its
    /// room before it is queued (an append to a missing room never holds up
    /// a writer) without a store read each time.
    pub async fn room_exists(&self, room: &str) -> Result<bool, StoreError> {
        if self.known_rooms.lock().expect("known rooms").contains(room) {
            return Ok(true);
        }
        if self.stores.events.room(room).await?.is_none() {
            return Ok(false);
        }
        let mut known = self.known_rooms.lock().expect("known rooms");
        if known.len() >= MAX_KNOWN_ROOMS {
            known.clear();
        }
        known.insert(room.to_owned());
        Ok(true)
    }

    /// The projections being caught up from their events (a read of a room
    /// whose projection lags starts one here, so that there is one at a time).
    pub fn catch_ups(&self) -> &CatchUps {
        &self.catch_ups
    }

    pub async fn append(
        &self,
        room: &str,
        sender: &str,
        cmd: Command,
    ) -> Result<Appended, AppendError> {
        self.enqueue(room, sender, cmd).await?.await
    }

    /// Queues an append and returns the wait for its answer, so that a caller
    /// can queue several in order (the log keeps the queue's order) and wait
    /// for them together.
    pub async fn enqueue(
        &self,
        room: &str,
        sender: &str,
        cmd: Command,
    ) -> Result<
        impl std::future::Future<Output = Result<Appended, AppendError>> + Send + 'static,
        AppendError,
    > {
        let (reply, rx) = oneshot::channel();
        let req = Request::Append {
            room: room.to_owned(),
            sender: sender.to_owned(),
            cmd,
            reply,
        };
        self.queue(room, req).await?;
        Ok(wait(rx))
    }

    pub async fn create_room(
        &self,
        room: &str,
        name: &str,
        creator: &str,
    ) -> Result<RoomRecord, AppendError> {
        let (reply, rx) = oneshot::channel();
        let req = Request::CreateRoom {
            room: room.to_owned(),
            name: name.to_owned(),
            creator: creator.to_owned(),
            reply,
        };
        self.queue(room, req).await?;
        wait(rx).await
    }
}

fn stopped() -> AppendError {
    AppendError::Unavailable("the server is shutting down")
}

/// Waits for a writer's answer, twice [`STORE_TIMEOUT`] at most: the
/// writer answers 503 itself when a store call times out, but not when a
/// call it runs in place holds it (a stalled disk under the embedded
/// store). Such a call may still be written after this 503: a retry with
/// the same eventId finds it.
async fn wait<T>(rx: oneshot::Receiver<Result<T, AppendError>>) -> Result<T, AppendError> {
    match tokio::time::timeout(STORE_TIMEOUT * 2, rx).await {
        Ok(Ok(r)) => r,
        Ok(Err(_)) => Err(stopped()),
        Err(_) => Err(AppendError::Unavailable("the store did not answer in time")),
    }
}

/// Whether a room at `last_seq`, last snapshotted at `snap_seq`, is due for a
/// snapshot: at least `every` events apart, and in a large room at the
/// first batch past each chunk boundary, so that the tail a window replays
/// after its snapshot stays within about a chunk whatever the room's size.
/// Most of those are delta heads ([`head_to_store`]); complete heads are
/// spaced further apart as the room grows.
pub fn snapshot_due(last_seq: u64, snap_seq: u64, every: u64) -> bool {
    let apart = last_seq - snap_seq;
    apart >= every
        && (apart >= complete_spacing(last_seq, every) || chunk_of(last_seq) > chunk_of(snap_seq))
}

/// The events between two complete snapshot heads: at least `every`, and
/// further apart as the room grows, so that the head (about 24 bytes per
/// chunk of 256 seqs) costs a bounded number of bytes per event.
fn complete_spacing(last_seq: u64, every: u64) -> u64 {
    every.max(last_seq / CHUNK_SPAN * 24 / 16)
}

/// The last complete head stored for a room: its seq and chunk indices.
type Base = (u64, Vec<u64>);

/// What to store for the snapshot head `head` of a room whose last
/// complete head is `base`: a delta over it (`Some`) while within the
/// spacing of complete heads, else the complete head (`None`).
fn head_to_store(head: &SnapshotHead, base: Option<&Base>, every: u64) -> Option<SnapshotHead> {
    let (at, chunks) = base?;
    if head.seq - at >= complete_spacing(head.seq, every) {
        return None;
    }
    head.delta_over(*at, chunks)
}

struct RoomCore {
    state: RoomState,
    /// Seq of the last stored snapshot.
    snap_seq: u64,
    /// The last complete snapshot head this writer stored (deltas go on
    /// top of it); none after a load, so that the next one is complete.
    base: Option<Base>,
    /// When the writer last used it (a counter), for eviction.
    used: u64,
    /// About how much memory the state holds (never less), for eviction.
    bytes: usize,
}

/// What one message costs in a state besides its text (the slot, the
/// index entry, a share of the reactions).
const MESSAGE_BYTES: usize = 128;

/// About the memory a state holds: its messages and their text.
fn state_bytes(state: &RoomState) -> usize {
    state
        .messages()
        .map(|m| MESSAGE_BYTES + m.content.len())
        .sum()
}

/// How many room states the writer keeps, and how much memory they may
/// hold together; the least recently used go first beyond either.
#[derive(Clone, Copy, Debug)]
pub struct RoomCache {
    pub rooms: usize,
    pub bytes: usize,
}

struct Writer {
    stores: Stores,
    bus: Arc<dyn Bus>,
    metrics: Arc<Metrics>,
    snapshot_every: u64,
    rooms: HashMap<String, RoomCore>,
    /// How many room states are kept in memory, and how much they hold;
    /// the least recently used are dropped beyond that and reloaded
    /// (snapshot + tail) when needed.
    cache: RoomCache,
    clock: u64,
    /// Until when this writer counts as contended: it met another writer
    /// in the last second.
    contended_until: Option<Instant>,
    /// Whether the last attempt skipped looking its batch's ids up.
    skipped_lookup: bool,
    /// This writer, to the store (whose turn it is on a room).
    id: Uuid,
    /// Rooms whose projection is being caught up in the background.
    catch_ups: CatchUps,
    /// The room states and bytes this writer last added to the metrics'
    /// gauges (shared by all writers).
    reported: (i64, i64),
}

enum ReplyTo {
    Append(oneshot::Sender<Result<Appended, AppendError>>),
    Room(oneshot::Sender<Result<RoomRecord, AppendError>>),
}

/// The answer to one job of a batch.
enum Answer {
    Append(Result<Appended, AppendError>),
    Room(Result<RoomRecord, AppendError>),
}

impl Answer {
    fn send(self, to: ReplyTo) {
        match (to, self) {
            (ReplyTo::Append(tx), Answer::Append(r)) => {
                let _ = tx.send(r);
            }
            (ReplyTo::Room(tx), Answer::Room(r)) => {
                let _ = tx.send(r);
            }
            _ => unreachable!("answers are made in the order of their jobs"),
        }
    }

    /// The same for every job: nothing of the batch was written.
    fn all_refused(jobs: &[Job], err: &AppendError) -> Vec<Answer> {
        jobs.iter()
            .map(|j| match j {
                Job::Append { .. } => Answer::Append(Err(err.clone())),
                Job::CreateRoom { .. } => Answer::Room(Err(err.clone())),
            })
            .collect()
    }
}

/// Another writer got to one of the batch's rooms first.
struct Conflict;

fn now() -> Timestamp {
    Timestamp::from_datetime(chrono::Utc::now()).expect("the clock is within years 0-9999")
}

impl Writer {
    /// Starts the writer and tells when it has ended. For a store whose
    /// calls block (the embedded store: [`crate::store::EventStore::blocks`])
    /// it runs on a thread of its own, with a runtime of its own, and the
    /// store's calls run in place there
    /// ([`crate::store::block_in_place_on_this_thread`]). On the server's
    /// runtime each of its steps (a batch taken, a lookup or a commit
    /// answered by the blocking pool) waited behind every task that was
    /// ready before it (at a thousand sockets of one room, a whole fan-out
    /// wave per step) and each store call cost a trip to another thread and
    /// back. A call run in place cannot be timed out, so a stalled disk
    /// holds the writer: its callers stop waiting on their own ([`wait`]).
    /// What the writer starts in the background (catch-ups) runs on the
    /// server's runtime. Other stores' writers are tasks on the server's
    /// runtime, where their driver lives.
    fn spawn(self, rx: mpsc::Receiver<Request>) -> oneshot::Receiver<()> {
        let (done, ended) = oneshot::channel();
        if !self.stores.events.blocks() {
            tokio::spawn(async move {
                self.run(rx).await;
                let _ = done.send(());
            });
            return ended;
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for a writer");
        std::thread::Builder::new()
            .name("chat-writer".into())
            .spawn(move || {
                crate::store::block_in_place_on_this_thread();
                runtime.block_on(self.run(rx));
                let _ = done.send(());
            })
            .expect("a thread for a writer");
        ended
    }

    async fn run(mut self, mut rx: mpsc::Receiver<Request>) {
        while let Some(first) = rx.recv().await {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(r) => batch.push(r),
                    Err(_) => break,
                }
            }
            self.process(batch).await;
        }
    }

    /// Loads a room's state from its latest snapshot and the events after it.
    async fn load(&mut self, room: &str) -> Result<Option<&mut RoomCore>, StoreError> {
        if !self.rooms.contains_key(room) {
            if self.stores.events.room(room).await?.is_none() {
                return Ok(None);
            }
            let (mut state, snap_seq) =
                match self.stores.snapshots.snapshot_head(room, u64::MAX).await? {
                    Some(head) => {
                        let state =
                            load_snapshot(&*self.stores.snapshots, room, &head, |_| true).await?;
                        (state, head.seq)
                    }
                    None => (RoomState::new(), 0),
                };
            loop {
                let (events, _) = self
                    .stores
                    .events
                    .events(room, state.last_seq(), 5000)
                    .await?;
                if events.is_empty() {
                    break;
                }
                state
                    .apply_all(events)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            }
            self.rooms.insert(
                room.to_owned(),
                RoomCore {
                    bytes: state_bytes(&state),
                    state,
                    snap_seq,
                    base: None,
                    used: 0,
                },
            );
        }
        self.clock += 1;
        let clock = self.clock;
        let core = self.rooms.get_mut(room);
        if let Some(core) = core {
            core.used = clock;
            return Ok(Some(core));
        }
        Ok(None)
    }

    /// Whether the events of a commit whose answer was lost are stored:
    /// `Some(true)` if all are (a commit is all or nothing), `Some(false)` if
    /// none is, `None` if the store cannot tell now.
    async fn committed_anyway(&self, events: &[Arc<ChatEvent>]) -> Option<bool> {
        let mut by_room: HashMap<&str, Vec<Uuid>> = HashMap::new();
        for e in events {
            by_room
                .entry(e.room_id.as_str())
                .or_default()
                .push(e.event_id);
        }
        let mut found = 0;
        for (room, ids) in by_room {
            let seqs = tokio::time::timeout(STORE_TIMEOUT, self.stores.events.seqs_of(room, &ids))
                .await
                .ok()?
                .ok()?;
            // Stored with the seq this writer gave it, or not at all.
            found += seqs
                .iter()
                .filter(|(id, seq)| events.iter().any(|e| e.event_id == *id && e.seq == *seq))
                .count();
        }
        Some(found == events.len())
    }

    /// Applies the events stored after `state`'s last seq.
    async fn catch_up(&self, mut state: RoomState) -> Result<RoomState, StoreError> {
        let Some(room) = state.room_id().map(str::to_owned) else {
            return Err(StoreError::Corrupt("a room state without its room".into()));
        };
        loop {
            let (events, _) = self
                .stores
                .events
                .events(&room, state.last_seq(), 5000)
                .await?;
            if events.is_empty() {
                return Ok(state);
            }
            state
                .apply_all(events)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        }
    }

    /// Which of the batch's eventIds are stored already: one read for the
    /// whole batch instead of one per request.
    async fn stored_ids(&self, jobs: &[Job]) -> Result<HashSet<(String, Uuid)>, StoreError> {
        let mut by_room: HashMap<&str, Vec<Uuid>> = HashMap::new();
        for j in jobs {
            if let Job::Append { room, cmd, .. } = j {
                by_room.entry(room).or_default().push(cmd.event_id);
            }
        }
        let wanted = by_room
            .into_iter()
            .map(|(room, ids)| (room.to_owned(), ids))
            .collect();
        let found = self.stores.events.seqs_in_rooms(wanted).await?;
        Ok(found.into_iter().map(|(room, id, _)| (room, id)).collect())
    }

    async fn process(&mut self, batch: Vec<Request>) {
        let started = Instant::now();
        let (jobs, replies): (Vec<Job>, Vec<ReplyTo>) =
            batch.into_iter().map(Request::split).unzip();
        let mut attempt = 1;
        // Whether to look the batch's ids up whatever the store refuses: after
        // a conflict of an attempt that skipped that (the conflict may be a
        // retry of a stored event, not another writer).
        let mut look_up_ids = false;
        let (answers, stored) = loop {
            match self.attempt(&jobs, started, look_up_ids).await {
                Ok(decided) => break decided,
                // After skipping the ids' lookup, the conflict may be a retry
                // of a stored event: decided again with the lookup, and only
                // another conflict counts as meeting another writer.
                Err(Conflict) if attempt < ATTEMPTS && self.skipped_lookup => {
                    look_up_ids = true;
                    attempt += 1;
                }
                Err(Conflict) if attempt < ATTEMPTS => {
                    self.metrics.append_conflicts.inc();
                    self.contended_until = Some(Instant::now() + CONTENDED);
                    let ceiling_us = 500u64 << attempt.min(5);
                    let pause = rand::random::<u64>() % ceiling_us;
                    tokio::time::sleep(Duration::from_micros(pause)).await;
                    attempt += 1;
                }
                Err(Conflict) => {
                    tracing::warn!(
                        attempts = ATTEMPTS,
                        "other writers kept appending first; the batch is refused"
                    );
                    let refused = Answer::all_refused(&jobs, &AppendError::Unavailable(BUSY));
                    break (refused, Vec::new());
                }
            }
        };
        // The submitters are answered before the events are published: the
        // events are durable, and each submitter's ack is then not queued
        // behind its room's whole fan-out (the contract lets the ack and
        // the submitter's own `event` frame come in either order).
        for (answer, to) in answers.into_iter().zip(replies) {
            answer.send(to);
        }
        for e in stored {
            self.bus.publish(e);
        }
    }

    /// Decides every job against the rooms as stored, and commits them
    /// together if no other writer appended to those rooms meanwhile; the
    /// answers, and the events stored (for the caller to publish). A
    /// conflict drops the room states it used (they are behind the store):
    /// the next attempt loads what it missed and decides again.
    async fn attempt(
        &mut self,
        jobs: &[Job],
        started: Instant,
        look_up_ids: bool,
    ) -> Result<(Vec<Answer>, Vec<Arc<ChatEvent>>), Conflict> {
        // Ready to decide on the batch's rooms, where writers share the
        // store: the rooms another writer appended to are caught up first.
        let mut rooms: Vec<&str> = jobs
            .iter()
            .filter_map(|j| match j {
                Job::Append { room, .. } => Some(room.as_str()),
                Job::CreateRoom { .. } => None,
            })
            .collect();
        rooms.sort_unstable();
        rooms.dedup();
        let held: Vec<(&str, Option<u64>)> = rooms
            .iter()
            .map(|&room| (room, self.rooms.get(room).map(|c| c.state.last_seq())))
            .collect();
        let contended = self.contended_until.is_some_and(|t| t > Instant::now());
        // Which of the batch's eventIds are stored already (a retry gets
        // the stored event), read at the same time. Where the store refuses
        // a stored id at commit, that read is left to the attempt after a
        // conflict (and to contended writers): a retry of a stored event
        // meets the refusal, and the batch is decided again with the read.
        // Retries are rare, a read per batch is not.
        let look_up = contended || look_up_ids || !self.stores.events.refuses_stored_ids();
        self.skipped_lookup = !look_up;
        let stored = async {
            if look_up {
                self.stored_ids(jobs).await.map(Some)
            } else {
                Ok(None)
            }
        };
        let (moved, stored) =
            tokio::join!(self.stores.events.ready(&held, self.id, contended), stored);
        let moved = match moved {
            Ok(moved) => moved,
            Err(StoreError::Conflict(_)) => return Err(Conflict),
            Err(e) => return Ok((Answer::all_refused(jobs, &AppendError::from(e)), Vec::new())),
        };
        let stored = match stored {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "eventId lookup failed; the batch is refused");
                return Ok((Answer::all_refused(jobs, &AppendError::from(e)), Vec::new()));
            }
        };
        for room in moved {
            if let Some(core) = self.rooms.remove(&room) {
                match self.catch_up(core.state).await {
                    Ok(state) => {
                        self.rooms.insert(
                            room,
                            RoomCore {
                                bytes: state_bytes(&state),
                                state,
                                ..core
                            },
                        );
                    }
                    Err(e) => {
                        return Ok((Answer::all_refused(jobs, &AppendError::from(e)), Vec::new()))
                    }
                }
            }
        }
        // Copies of the states before this batch, when another writer is
        // about: a conflict then only needs the events it missed.
        let mut before_batch: HashMap<String, (RoomState, u64)> = HashMap::new();
        if contended {
            for job in jobs {
                if let Job::Append { room, .. } = job {
                    if let Some(core) = self.rooms.get(room) {
                        before_batch
                            .entry(room.clone())
                            .or_insert_with(|| (core.state.clone(), core.snap_seq));
                    }
                }
            }
        }
        let mut writes = (Commit::default(), ProjectionChanges::default());
        let mut answers = Vec::with_capacity(jobs.len());
        let mut new_ids: HashMap<(String, Uuid), Arc<ChatEvent>> = HashMap::new();
        // The rooms this batch appends to, with their last seq before it.
        let mut touched: Vec<(String, u64)> = Vec::new();
        for job in jobs {
            match job {
                Job::CreateRoom {
                    room,
                    name,
                    creator,
                } => {
                    let r = self.create_room(&mut writes.0, room, name, creator).await;
                    if r.is_ok() {
                        touched.push((room.clone(), 1));
                    }
                    answers.push(Answer::Room(r));
                }
                Job::Append { room, sender, cmd } => {
                    let before = self.rooms.get(room).map(|c| c.state.last_seq());
                    let r = self
                        .append(
                            &mut writes,
                            &mut new_ids,
                            stored.as_ref(),
                            room,
                            sender,
                            cmd.clone(),
                        )
                        .await;
                    if let Ok(Appended::New(e)) = &r {
                        if !touched.iter().any(|(t, _)| t == room) {
                            touched.push((room.clone(), before.unwrap_or(e.seq - 1)));
                        }
                    }
                    answers.push(Answer::Append(r));
                }
            }
        }
        let (mut commit, mut proj) = writes;
        // Last seqs and snapshots of the rooms this batch changed.
        let mut snapshotted = Vec::new();
        for (room, expected) in &touched {
            let core = self.rooms.get(room).expect("touched rooms are loaded");
            commit.advances.push(SeqAdvance {
                room: room.clone(),
                expected: *expected,
                last: core.state.last_seq(),
            });
            let created = commit.new_rooms.iter().any(|r| &r.room_id == room);
            proj.rooms.push(Projected {
                room: room.clone(),
                from: if created { 0 } else { *expected },
                to: core.state.last_seq(),
            });
            if snapshot_due(core.state.last_seq(), core.snap_seq, self.snapshot_every) {
                if let Some(mut s) = core.state.snapshot() {
                    let delta = head_to_store(&s.head, core.base.as_ref(), self.snapshot_every);
                    snapshotted.push((room.clone(), s.head.clone(), delta.is_none()));
                    if let Some(delta) = delta {
                        s.head = delta;
                    }
                    proj.snapshots.push((room.clone(), s));
                }
            }
        }
        let events: Vec<Arc<ChatEvent>> = commit.events.clone();
        let n_events = events.len();
        let proj = Arc::new(proj);
        let result = if commit.events.is_empty() && commit.new_rooms.is_empty() {
            Ok(WithProjection::Left)
        } else {
            let stores = &self.stores;
            // Armed fault injection commits the events alone, so that a
            // crash can fall between them and their projection.
            #[cfg(feature = "fault-injection")]
            let events_alone = fault_injection::armed();
            #[cfg(not(feature = "fault-injection"))]
            let events_alone = false;
            let written = async {
                if events_alone {
                    stores
                        .events
                        .commit(commit)
                        .await
                        .map(|()| WithProjection::Left)
                } else {
                    stores
                        .events
                        .commit_with_projection(commit, proj.clone())
                        .await
                }
            };
            match tokio::time::timeout(STORE_TIMEOUT, written).await {
                Ok(r) => r,
                Err(_) => Err(StoreError::Unavailable("the commit timed out".to_owned())),
            }
        };
        // A commit whose outcome is unknown (no answer after it was sent) may
        // have been written: its events say which, before anyone is told.
        let result = match result {
            Err(StoreError::Unavailable(detail)) if !events.is_empty() => {
                match self.committed_anyway(&events).await {
                    Some(true) => {
                        tracing::warn!(%detail, "the commit's answer was lost, but it was written");
                        Ok(WithProjection::Left)
                    }
                    _ => Err(StoreError::Unavailable(detail)),
                }
            }
            other => other,
        };
        if result.is_err() {
            // The in-memory states ran ahead of the store: back to the copy
            // from before the batch, caught up with what the other writer
            // appended; without a copy, reloaded when next used.
            for (room, _) in &touched {
                let caught_up = match before_batch.remove(room) {
                    Some((state, snap_seq)) => {
                        self.catch_up(state).await.ok().map(|s| (s, snap_seq))
                    }
                    None => None,
                };
                match (caught_up, self.rooms.get_mut(room)) {
                    (Some((state, snap_seq)), Some(core)) => {
                        core.bytes = state_bytes(&state);
                        core.state = state;
                        core.snap_seq = snap_seq;
                    }
                    _ => {
                        self.rooms.remove(room);
                    }
                }
            }
        }
        self.evict();
        match result {
            Ok(written) => {
                #[cfg(feature = "fault-injection")]
                fault_injection::after_event_commit().await;
                // The events are durable: the projection follows them, if
                // it did not go with them. Rooms it found behind are caught
                // up from their events at once: a writer's projection goes
                // with its events, or follows them within its own retries,
                // so another writer's changes for them are rarely on their
                // way (and the catch-up's write is conditional too).
                let projected = match written {
                    WithProjection::Written { behind } => {
                        for room in &behind {
                            self.catch_ups.start(&self.stores, room);
                        }
                        true
                    }
                    WithProjection::Left => self.project(proj).await,
                };
                if projected {
                    for (room, head, complete) in snapshotted {
                        if let Some(core) = self.rooms.get_mut(&room) {
                            core.state.mark_snapshot_saved(&head);
                            core.snap_seq = head.seq;
                            if complete {
                                let chunks = head.chunks.iter().map(|c| c.index).collect();
                                core.base = Some((head.seq, chunks));
                            }
                        }
                    }
                }
                self.metrics.appends.inc_by(n_events as u64);
                if n_events > 0 {
                    self.metrics
                        .commit_seconds
                        .observe(started.elapsed().as_secs_f64());
                }
                // Durable first, then answered and published by the caller.
                Ok((answers, events))
            }
            Err(StoreError::Conflict(detail)) => {
                tracing::debug!(%detail, "another writer appended first; deciding again");
                Err(Conflict)
            }
            // Another writer created one of the batch's new rooms first.
            Err(StoreError::Exists) => Err(Conflict),
            Err(e) => {
                tracing::error!(error = %e, "group commit failed; the batch is refused");
                // Nothing of the batch was written: a retry is right, unless
                // the store holds data that contradicts itself.
                let refused = match e {
                    StoreError::Corrupt(detail) => AppendError::Corrupt(detail),
                    _ => AppendError::Unavailable(UNREACHABLE),
                };
                Ok((
                    answers
                        .into_iter()
                        .map(|a| match a {
                            Answer::Append(r) => Answer::Append(r.and_then(|a| match a {
                                Appended::New(_) => Err(refused.clone()),
                                existing => Ok(existing),
                            })),
                            Answer::Room(r) => Answer::Room(r.and_then(|_| Err(refused.clone()))),
                        })
                        .collect(),
                    Vec::new(),
                ))
            }
        }
    }

    /// Writes a commit's projection changes and snapshots; whether they
    /// were written (the snapshots are, then, whatever the projection's
    /// checkpoints said). Rooms left behind (their projection lagged, or the
    /// write failed) are caught up from their events in the background.
    /// Either way the events stay acknowledged: they are the commit point.
    /// Where writers share the store, another writer's changes for the seqs
    /// just before these may land a moment later (or collide with these):
    /// the write is tried again a few times (it is conditional, so that is
    /// safe) before a room's catch-up, a replay of all its events, starts.
    async fn project(&self, proj: Arc<ProjectionChanges>) -> bool {
        // A batch of retries only: nothing to write.
        if proj.rooms.is_empty() && proj.snapshots.is_empty() {
            return true;
        }
        let all = || -> HashSet<String> { proj.rooms.iter().map(|p| p.room.clone()).collect() };
        let mut written = false;
        let mut attempt = 1;
        let behind: HashSet<String> = loop {
            let applied =
                tokio::time::timeout(STORE_TIMEOUT, self.stores.views.apply(proj.clone())).await;
            let (behind, again) = match applied {
                Ok(Ok(behind)) => {
                    written = true;
                    (behind.into_iter().collect(), true)
                }
                Ok(Err(StoreError::Conflict(_))) => (all(), true),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "the projection write failed; it catches up from the events");
                    (all(), false)
                }
                Err(_) => {
                    tracing::warn!("the projection write timed out; it catches up from the events");
                    (all(), false)
                }
            };
            if behind.is_empty() || !again || attempt >= PROJECTION_ATTEMPTS {
                break behind;
            }
            attempt += 1;
            let pause = 1 + rand::random::<u64>() % 4;
            tokio::time::sleep(Duration::from_millis(pause)).await;
        };
        for room in &behind {
            self.catch_ups.start(&self.stores, room);
        }
        written
    }

    /// Drops the least recently used room states beyond the limits (the
    /// newest stays, whatever it holds).
    fn evict(&mut self) {
        let mut bytes: usize = self.rooms.values().map(|core| core.bytes).sum();
        while self.rooms.len() > 1
            && (self.rooms.len() > self.cache.rooms || bytes > self.cache.bytes)
        {
            let oldest = self
                .rooms
                .iter()
                .min_by_key(|(_, core)| core.used)
                .map(|(room, _)| room.clone());
            match oldest.and_then(|room| self.rooms.remove(&room)) {
                Some(core) => bytes -= core.bytes,
                None => break,
            }
        }
        let now = (self.rooms.len() as i64, bytes as i64);
        self.metrics.room_states.add(now.0 - self.reported.0);
        self.metrics.room_states_bytes.add(now.1 - self.reported.1);
        self.reported = now;
    }

    async fn create_room(
        &mut self,
        commit: &mut Commit,
        room: &str,
        name: &str,
        creator: &str,
    ) -> Result<RoomRecord, AppendError> {
        let exists =
            self.rooms.contains_key(room) || self.stores.events.room(room).await?.is_some();
        if exists {
            return Err(AppendError::RoomExists);
        }
        let event = ChatEvent {
            event_id: Uuid::new_v4(),
            room_id: room.into(),
            seq: 1,
            sender_id: creator.into(),
            timestamp: now(),
            kind: EventKind::RoomCreated { name: name.into() },
        };
        let record = RoomRecord {
            room_id: room.to_owned(),
            name: name.to_owned(),
            created_by: creator.to_owned(),
            created_at: event.timestamp,
            last_seq: 1,
        };
        let mut state = RoomState::new();
        state.apply(event.clone()).expect("seq 1 of an empty room");
        self.rooms.insert(
            room.to_owned(),
            RoomCore {
                bytes: state_bytes(&state),
                state,
                snap_seq: 0,
                base: None,
                used: self.clock,
            },
        );
        commit.new_rooms.push(record.clone());
        commit.events.push(Arc::new(event));
        Ok(record)
    }

    /// Decides one command; the event and what it changes in the
    /// projection go into `writes`.
    async fn append(
        &mut self,
        writes: &mut (Commit, ProjectionChanges),
        new_ids: &mut HashMap<(String, Uuid), Arc<ChatEvent>>,
        stored_ids: Option<&HashSet<(String, Uuid)>>,
        room: &str,
        sender: &str,
        cmd: Command,
    ) -> Result<Appended, AppendError> {
        let (commit, proj) = (&mut writes.0, &mut writes.1);
        let events = self.stores.events.clone();
        let Some(core) = self.load(room).await? else {
            return Err(AppendError::RoomNotFound);
        };
        // A retry of a stored event gets that event, whatever came since.
        let key = (room.to_owned(), cmd.event_id);
        let stored = match new_ids.get(&key) {
            Some(e) => Some(ChatEvent::clone(e)),
            None if stored_ids.is_some_and(|s| s.contains(&key)) => {
                events.event_by_id(room, cmd.event_id).await?
            }
            None => None,
        };
        let retry = |stored: ChatEvent| {
            if cmd.is_retry_of(&stored, sender) {
                Ok(Appended::Existing(stored))
            } else {
                Err(AppendError::EventIdConflict)
            }
        };
        if let Some(stored) = stored {
            return retry(stored);
        }
        let state = &mut core.state;
        let kind = match cmd.expected_seq {
            Some(expected) if expected != state.last_seq() => Err(AppendError::SeqConflict {
                last_seq: state.last_seq(),
            }),
            _ => state.decide(&cmd, sender).map_err(AppendError::from),
        };
        let kind = match kind {
            Ok(kind) => kind,
            // Refused, where the batch's ids were not looked up: a retry of
            // a stored event gets that event all the same.
            Err(e) if stored_ids.is_none() => {
                return match events.event_by_id(room, cmd.event_id).await? {
                    Some(stored) => retry(stored),
                    None => Err(e),
                };
            }
            Err(e) => return Err(e),
        };
        let timestamp = now().max(
            state
                .last_timestamp()
                .unwrap_or(Timestamp::from_millis(0).expect("epoch")),
        );
        let deleted_seq = match &kind {
            EventKind::MessageDeleted { message_id } => state.message(*message_id).map(|m| m.seq),
            _ => None,
        };
        let marker_before = state.read_markers().get(sender).copied();
        let event = ChatEvent {
            event_id: cmd.event_id,
            room_id: room.into(),
            seq: state.last_seq() + 1,
            sender_id: sender.into(),
            timestamp,
            kind: kind.clone(),
        };
        state
            .apply(event.clone())
            .expect("the next seq of the same room always applies");
        // The projection rows this event changes.
        match &kind {
            EventKind::MessageSent { .. } => {
                if let Some(m) = state.message(event.event_id) {
                    proj.views
                        .push((room.to_owned(), ViewChange::Put(m.clone())));
                    // Unread for everyone with a marker but its sender.
                    proj.counts.live(room, sender, 1);
                    for user in state.read_markers().keys().filter(|u| *u != sender) {
                        proj.counts.unread_by(room, user, 1);
                    }
                }
            }
            EventKind::MessageEdited { message_id, .. }
            | EventKind::ReactionAdded { message_id, .. }
            | EventKind::ReactionRemoved { message_id, .. } => {
                if let Some(m) = state.message(*message_id) {
                    proj.views
                        .push((room.to_owned(), ViewChange::Put(m.clone())));
                }
            }
            EventKind::MessageDeleted { .. } => {
                if let Some(seq) = deleted_seq {
                    proj.views.push((room.to_owned(), ViewChange::Delete(seq)));
                    // Only its sender deletes a message: read for them, and
                    // for those who read past it.
                    proj.counts.live(room, sender, -1);
                    let markers = state.read_markers().iter();
                    for (user, _) in markers.filter(|(u, &m)| *u != sender && m < seq) {
                        proj.counts.unread_by(room, user, -1);
                    }
                }
            }
            EventKind::MessageRead { .. } => {
                let marker = state.read_marker(sender);
                proj.markers
                    .push((room.to_owned(), sender.to_owned(), marker));
                // What became read: the messages of others up to the new
                // marker; counted from the marker before when there was one
                // (a marker only moves forward, so a user's reads count each
                // message once), else from the newest message down.
                let others = |m: &&domain::Message| m.sender_id != sender;
                match marker_before {
                    Some(before) => {
                        let read = state.messages_in(before + 1, marker + 1).filter(others);
                        proj.counts.unread_by(room, sender, -(read.count() as i64));
                    }
                    None => {
                        let unread = state.messages_in(marker + 1, u64::MAX).filter(others);
                        proj.counts.unread_set(room, sender, unread.count() as u64);
                    }
                }
            }
            EventKind::RoomCreated { .. } => {}
        }
        // What the state may hold more now (edits and reactions count what
        // they add, and nothing counts down until the state is reloaded).
        core.bytes += match &kind {
            EventKind::MessageSent { content } => MESSAGE_BYTES + content.len(),
            EventKind::MessageEdited { content, .. } => content.len(),
            EventKind::ReactionAdded { emoji, .. } => MESSAGE_BYTES / 2 + emoji.len(),
            _ => 0,
        };
        let event = Arc::new(event);
        new_ids.insert(key, event.clone());
        commit.events.push(event.clone());
        Ok(Appended::New(event))
    }
}

/// A switch for the crash test (`server/tests/crash.rs`), compiled only
/// with the `fault-injection` feature (never in the run command's binary):
/// with `CHAT_FAULT_HANG_AFTER_EVENT_COMMITS=n`, the writer stops for good
/// after the n-th commit of events, before their projection is written, and
/// says so on stderr, so that the test can kill -9 the process right there.
#[cfg(feature = "fault-injection")]
mod fault_injection {
    use std::sync::atomic::{AtomicU64, Ordering};

    static COMMITS: AtomicU64 = AtomicU64::new(0);

    /// Whether a hang after an event commit is asked for.
    pub fn armed() -> bool {
        std::env::var_os("CHAT_FAULT_HANG_AFTER_EVENT_COMMITS").is_some()
    }

    pub async fn after_event_commit() {
        let Some(n) = std::env::var("CHAT_FAULT_HANG_AFTER_EVENT_COMMITS")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
        else {
            return;
        };
        if COMMITS.fetch_add(1, Ordering::SeqCst) + 1 >= n {
            eprintln!("fault injection: events committed, the projection not written; hanging");
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{head_to_store, snapshot_due, Base, CHUNK_SPAN};
    use domain::{ChatEvent, EventKind, RoomState, Timestamp};
    use uuid::Uuid;

    /// Bytes written for snapshots per event, as the room grows, with the
    /// server's policy (delta heads between complete ones): bounded, and not
    /// growing with the room; and the tail a window replays after the
    /// latest snapshot stays within about a chunk.
    #[test]
    fn snapshot_bytes_per_event_and_the_tail_stay_bounded_as_rooms_grow() {
        let mut state = RoomState::new();
        let mut snap_seq = 0;
        let mut base: Option<Base> = None;
        let mut longest_tail = 0;
        let mut window_bytes = 0usize;
        let mut per_event = Vec::new();
        let text = "a message of a typical length, about sixty characters long..";
        for seq in 1..=120_000u64 {
            let kind = if seq == 1 {
                EventKind::RoomCreated { name: "big".into() }
            } else if seq % 10 == 0 {
                // an edit of an old message: its chunk is written again
                let target = Uuid::from_u128(u128::from((seq * 7919) % (seq - 1) + 1));
                EventKind::MessageEdited {
                    message_id: target,
                    content: format!("edit {seq}").into(),
                }
            } else {
                EventKind::MessageSent {
                    content: text.into(),
                }
            };
            state
                .apply(ChatEvent {
                    event_id: Uuid::from_u128(u128::from(seq)),
                    room_id: "big".into(),
                    seq,
                    sender_id: "alice".into(),
                    timestamp: Timestamp::from_millis(seq as i64).unwrap(),
                    kind,
                })
                .unwrap();
            if seq > 20_000 {
                longest_tail = longest_tail.max(seq - snap_seq);
            }
            if snapshot_due(seq, snap_seq, 100) {
                let s = state.snapshot().unwrap();
                let head = match head_to_store(&s.head, base.as_ref(), 100) {
                    Some(delta) => delta,
                    None => {
                        base = Some((seq, s.head.chunks.iter().map(|c| c.index).collect()));
                        s.head.clone()
                    }
                };
                window_bytes += serde_json::to_vec(&head).unwrap().len();
                window_bytes += s
                    .chunks
                    .iter()
                    .map(|c| serde_json::to_vec(c).unwrap().len())
                    .sum::<usize>();
                state.mark_snapshot_saved(&s.head);
                snap_seq = seq;
            }
            if seq % 20_000 == 0 {
                per_event.push(window_bytes / 20_000);
                window_bytes = 0;
            }
        }
        // a message is ~200 bytes of JSON; old-message edits rewrite whole chunks
        eprintln!("snapshot bytes per event, per 20,000 events: {per_event:?}");
        let (first, last) = (per_event[0], *per_event.last().unwrap());
        assert!(per_event.iter().all(|&b| b < 20_000), "{per_event:?}");
        assert!(
            last <= first * 2,
            "bytes per event grew with the room: {per_event:?}"
        );
        assert!(
            longest_tail <= CHUNK_SPAN,
            "a tail of {longest_tail} events"
        );
    }
}
