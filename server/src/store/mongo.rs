//! The MongoDB store (`MONGODB_URI`): the same four stores as the embedded
//! one, on plain MongoDB collections, so that any number of server
//! instances can share them.
//!
//! - `chat_events`: one document per event (never a growing document per
//!   room), its fields as BSON, unique on (roomId, seq) and on (roomId,
//!   eventId).
//! - `chat_message_views`: a row per live message; the row of a message
//!   as its event sent it (never edited, no reactions: most messages)
//!   holds its key alone, and its view is read from its event.
//! - `chat_rooms` (with `lastSeq`), `chat_read_markers`, `chat_sender_live`
//!   and `chat_unread` (the counts
//!   behind unread counts, so that the room list never scans unread rows),
//!   `chat_projection` (per room: the seq its projection is at, and its
//!   live-message count), `chat_snapshot_heads` and `chat_snapshot_chunks`,
//!   `chat_users`, `chat_sessions` (a TTL index expires them), and
//!   `chat_room_leases` (whose turn it is to append to a room when several
//!   writers are busy with it).
//! - `chat_meta`: the layout of the documents (see [`FORMAT`]).
//!
//! A group commit is one multi-document transaction with write concern
//! majority and journal: the room's `lastSeq` moves only from the value its
//! writer saw (else a conflict), and the unique indexes refuse a second
//! event at a seq or a second copy of an eventId. The projection and
//! snapshots go in the same transaction, for the rooms whose checkpoint in
//! `chat_projection` is where the writer left it. A commit's rows of one
//! kind go in one command whatever the number of its rooms (each `update`
//! or `delete` command carries one statement per room; only new rooms and
//! snapshot chunks are written one by one), not a round trip per row: on a
//! busy server, round trips are what appends wait for. Reads use read
//! concern majority: nothing that may roll back feeds a decision or a
//! view. Every operation gives up within about 3 s when the server cannot
//! be reached.

use super::compressed;
use super::heads::HeadCache;
use super::{
    AccountStore, Commit, EventStore, ProjectionChanges, ProjectionStore, RoomProjection,
    RoomRecord, SnapshotStore, StoreError, UnreadChange, ViewChange, ViewPage, WithProjection,
};
use async_trait::async_trait;
use domain::{
    event::parse_uuid, ChatEvent, CompactString, EventKind, EventType, Message, SnapshotChunk,
    SnapshotHead, Timestamp,
};
use futures_util::TryStreamExt;
use mongodb::bson::{doc, spec::BinarySubtype, Binary, Bson, DateTime, Document};
use mongodb::error::{Error as MongoError, ErrorKind, WriteFailure};
use mongodb::options::{
    Acknowledgment, ClientOptions, IndexOptions, ReadConcern, ReturnDocument, TransactionOptions,
    WriteConcern,
};
use mongodb::{Client, ClientSession, Collection, Database, IndexModel};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How long the driver looks for a server, or waits to connect, before an
/// operation fails (the contract: 503 within 3 s).
const REACH_TIMEOUT: Duration = Duration::from_secs(2);

const DUPLICATE_KEY: i32 = 11000;

/// How long a writer's turn on a room lasts unless renewed (by its next
/// batch): what a waiting writer waits at most when the owner goes quiet
/// or dies.
const LEASE_MS: i64 = 250;
/// How long a writer waits for its turn before its batch is answered 503.
const TURN_WAIT: Duration = Duration::from_millis(2500);

/// The layout of the documents this server writes. A database keeps the
/// latest layout any server wrote into it (`chat_meta`, `{_id: "format"}`),
/// and a server refuses a database of a later one rather than write its
/// own layout into it:
/// 1. events as JSON text (until 2026-11-28; those servers wrote no marker);
/// 2. events as BSON fields, and bare view rows for messages as sent.
///
/// This server reads both.
const FORMAT: i64 = 2;

/// What this process found when it first reached the database.
#[derive(Debug)]
enum Prepared {
    /// Its layout is [`FORMAT`] or earlier, now marked [`FORMAT`], and every
    /// index exists (a stored eventId is refused at commit).
    Ready,
    /// Written by a newer server (or its marker is not a whole number),
    /// for this reason: no room, event, view or snapshot is written into it, and
    /// the health check fails.
    Refused(String),
}

/// How long a check of the layout and the indexes may take before it is
/// given up and tried again: the marker is written with write concern
/// majority, which waits for a majority, and an index is built in full
/// before `createIndexes` answers.
const PREPARE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a check that MongoDB answered with an error is tried again.
const PREPARE_RETRY: Duration = Duration::from_secs(10);

/// Where the check of the layout and the indexes is ([`prepare`]), shared
/// with [`prepare_later`].
#[derive(Default)]
struct Preparation {
    /// Set once the check is done: at start, or by [`prepare_later`] if it
    /// could not be done then. Until then appends answer 503.
    done: OnceLock<Prepared>,
    /// Why the last try failed, while it is not done, if MongoDB answered
    /// (an index the data does not allow, no majority in time, ...): the
    /// health check fails with it.
    failing: Mutex<Option<String>>,
}

/// Why a check of the layout and the indexes did not finish.
enum Unprepared {
    /// MongoDB could not be reached: tried again soon, quietly.
    Unreachable(String),
    /// MongoDB answered with an error, or not in time.
    Failing(String),
}

impl Preparation {
    /// Logs and keeps why a try failed; how long until the next.
    fn failed(&self, why: Unprepared) -> Duration {
        let (failing, wait) = match why {
            Unprepared::Unreachable(e) => {
                tracing::debug!(error = %e, "MongoDB unreachable; layout and indexes not checked yet");
                (None, REACH_TIMEOUT)
            }
            Unprepared::Failing(e) => {
                tracing::warn!(error = %e, "MongoDB's layout and indexes could not be checked; appends wait");
                (Some(e), PREPARE_RETRY)
            }
        };
        *self.failing.lock().unwrap_or_else(|e| e.into_inner()) = failing;
        wait
    }

    /// Logs and keeps what a try found.
    fn settle(&self, found: Prepared) {
        match &found {
            Prepared::Refused(why) => tracing::error!(%why, "refusing to write into this database"),
            Prepared::Ready => tracing::info!("MongoDB's layout and indexes checked"),
        }
        let _ = self.done.set(found);
        *self.failing.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

pub struct MongoStore {
    client: Client,
    db: Database,
    bases: HeadCache,
    preparation: Arc<Preparation>,
}

fn unavailable(e: MongoError) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// A duplicate key anywhere in the error (a write, a batch, a transaction).
fn is_duplicate(e: &MongoError) -> bool {
    match &*e.kind {
        ErrorKind::Write(WriteFailure::WriteError(w)) => w.code == DUPLICATE_KEY,
        ErrorKind::InsertMany(m) => m
            .write_errors
            .as_ref()
            .is_some_and(|errs| errs.iter().any(|w| w.code == DUPLICATE_KEY)),
        ErrorKind::Command(c) => c.code == DUPLICATE_KEY,
        _ => e.to_string().contains("E11000"),
    }
}

/// An error of a write inside a commit's transaction: another transaction
/// touching the same documents (a write conflict, or any error MongoDB
/// labels transient) means another writer got there first, so the commit
/// is decided again; anything else is the store being unavailable.
fn in_transaction(e: MongoError) -> StoreError {
    const WRITE_CONFLICT: i32 = 112;
    let conflict = e.contains_label(mongodb::error::TRANSIENT_TRANSACTION_ERROR)
        || matches!(&*e.kind, ErrorKind::Command(c) if c.code == WRITE_CONFLICT)
        || is_duplicate(&e);
    if conflict {
        StoreError::Conflict(format!("a concurrent transaction: {e}"))
    } else {
        unavailable(e)
    }
}

/// A write command that takes several statements.
enum WriteCommand {
    Update,
    Delete,
}

/// The write errors a multi-statement write command answered with (its
/// reply is `ok` even when some of its statements failed): a duplicate key
/// is another writer's upsert first; anything else leaves the store
/// unavailable for this write.
fn refused_writes(coll: &str, reply: &Document) -> Result<(), StoreError> {
    let Ok(errors) = reply.get_array("writeErrors") else {
        return Ok(());
    };
    let Some(Bson::Document(first)) = errors.first() else {
        return Ok(());
    };
    let detail = format!(
        "{coll}: {}",
        first.get_str("errmsg").unwrap_or("a write was refused")
    );
    if i64_of(first, "code").is_ok_and(|c| c == i64::from(DUPLICATE_KEY)) {
        Err(StoreError::Conflict(detail))
    } else {
        Err(StoreError::Unavailable(detail))
    }
}

/// Every document a query finds (the queries here are bounded by a limit or
/// by one room's keys).
async fn all(
    find: impl std::future::IntoFuture<Output = mongodb::error::Result<mongodb::Cursor<Document>>>,
) -> Result<Vec<Document>, StoreError> {
    find.await
        .map_err(unavailable)?
        .try_collect()
        .await
        .map_err(unavailable)
}

/// Makes every index the store's reads and writes rely on.
async fn ensure_indexes(db: &Database) -> Result<(), MongoError> {
    let unique = || IndexOptions::builder().unique(true).build();
    let index = |keys: Document, unique_too: bool| {
        let b = IndexModel::builder().keys(keys);
        if unique_too {
            b.options(unique()).build()
        } else {
            b.build()
        }
    };
    db.collection::<Document>("chat_events")
        .create_indexes([
            index(doc! {"roomId": 1, "seq": 1}, true),
            index(doc! {"roomId": 1, "eventId": 1}, true),
            index(doc! {"roomId": 1, "ts": 1}, false),
        ])
        .await?;
    db.collection::<Document>("chat_rooms")
        .create_index(index(doc! {"createdAt": 1, "_id": 1}, false))
        .await?;
    db.collection::<Document>("chat_message_views")
        .create_index(index(doc! {"roomId": 1, "seq": 1}, true))
        .await?;
    db.collection::<Document>("chat_read_markers")
        .create_index(index(doc! {"roomId": 1, "userId": 1}, true))
        .await?;
    for counts in ["chat_sender_live", "chat_unread"] {
        db.collection::<Document>(counts)
            .create_index(index(doc! {"roomId": 1, "userId": 1}, true))
            .await?;
    }
    db.collection::<Document>("chat_snapshot_heads")
        .create_index(index(doc! {"roomId": 1, "seq": 1}, true))
        .await?;
    db.collection::<Document>("chat_snapshot_chunks")
        .create_index(index(doc! {"roomId": 1, "index": 1, "version": 1}, true))
        .await?;
    db.collection::<Document>("chat_sessions")
        .create_index(
            IndexModel::builder()
                .keys(doc! {"expiresAt": 1})
                .options(
                    IndexOptions::builder()
                        .expire_after(Duration::from_secs(0))
                        .build(),
                )
                .build(),
        )
        .await?;
    Ok(())
}

/// Marks the database with this server's layout, unless a newer server's
/// is there (or a marker that is not a whole number), and makes sure every
/// index exists.
async fn prepare(db: &Database) -> Result<Prepared, MongoError> {
    let meta = db.collection::<Document>("chat_meta");
    let name = db.name();
    // One command reads a marker and raises it: a newer server marking at
    // the same moment is seen either way, as its marker or as this one's
    // `$max` left undone. Only a whole number is raised: anything else
    // is left as it is, to be refused.
    let raise = || {
        meta.find_one_and_update(
            doc! {"_id": "format", "$or": [{"format": {"$type": "int"}}, {"format": {"$type": "long"}}]},
            doc! {"$max": {"format": FORMAT}},
        )
        .return_document(ReturnDocument::Before)
    };
    let before = match raise().await? {
        Some(before) => Some(before),
        // No marker (a new database, or one of the earlier layout): mark
        // it. Refused on the key, a marker is there: one another server
        // has just written (raised now), or one that is not a number.
        None => match meta
            .insert_one(doc! {"_id": "format", "format": FORMAT})
            .await
        {
            Ok(_) => None,
            Err(e) if is_duplicate(&e) => match raise().await? {
                Some(before) => Some(before),
                None => {
                    return Ok(Prepared::Refused(format!(
                        "the MongoDB database {name} has a layout marker (chat_meta) that is not a whole number"
                    )))
                }
            },
            Err(e) => return Err(e),
        },
    };
    let format = before.map(|d| match d.get("format") {
        Some(Bson::Int64(n)) => *n,
        Some(Bson::Int32(n)) => i64::from(*n),
        _ => i64::MAX,
    });
    if let Some(later) = format.filter(|f| *f > FORMAT) {
        return Ok(Prepared::Refused(format!(
            "the MongoDB database {name} was written by a newer server (format {later}; this one writes {FORMAT} and reads it and before)"
        )));
    }
    ensure_indexes(db).await?;
    Ok(Prepared::Ready)
}

/// [`prepare`] within [`PREPARE_TIMEOUT`].
async fn prepare_in_time(db: &Database) -> Result<Prepared, Unprepared> {
    match tokio::time::timeout(PREPARE_TIMEOUT, prepare(db)).await {
        Ok(Ok(found)) => Ok(found),
        Ok(Err(e)) if is_unreachable(&e) => Err(Unprepared::Unreachable(e.to_string())),
        Ok(Err(e)) => Err(Unprepared::Failing(e.to_string())),
        Err(_) => Err(Unprepared::Failing(format!(
            "not done within {} s",
            PREPARE_TIMEOUT.as_secs()
        ))),
    }
}

/// [`prepare`] for a store that could not do it at start: tried again
/// until it is done, or the store is gone.
async fn prepare_later(db: Database, preparation: Weak<Preparation>, mut wait: Duration) {
    loop {
        tokio::time::sleep(wait).await;
        let Some(preparation) = preparation.upgrade() else {
            return;
        };
        match prepare_in_time(&db).await {
            Ok(found) => return preparation.settle(found),
            Err(why) => wait = preparation.failed(why),
        }
    }
}

/// Whether the driver could not reach MongoDB at all (as against an error
/// MongoDB answered with).
fn is_unreachable(e: &MongoError) -> bool {
    matches!(
        &*e.kind,
        ErrorKind::ServerSelection { .. }
            | ErrorKind::Io(_)
            | ErrorKind::ConnectionPoolCleared { .. }
    )
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("a stored {what} does not decode"))
}

fn i64_of(d: &Document, key: &str) -> Result<i64, StoreError> {
    match d.get(key) {
        Some(Bson::Int64(n)) => Ok(*n),
        Some(Bson::Int32(n)) => Ok(i64::from(*n)),
        Some(Bson::Double(f)) if f.fract() == 0.0 => Ok(*f as i64),
        _ => Err(corrupt(key)),
    }
}

/// A room's live-message count from its `chat_projection` row: absent
/// until the room's first message.
fn live_of(d: &Document) -> Result<i64, StoreError> {
    if d.contains_key("live") {
        i64_of(d, "live")
    } else {
        Ok(0)
    }
}

fn u64_of(d: &Document, key: &str) -> Result<u64, StoreError> {
    u64::try_from(i64_of(d, key)?).map_err(|_| corrupt(key))
}

fn str_of<'a>(d: &'a Document, key: &str) -> Result<&'a str, StoreError> {
    d.get_str(key).map_err(|_| corrupt(key))
}

/// A value kept as its JSON text (changed messages' view rows, snapshot
/// heads, and events stored before 2026-11-28): exactly what the embedded
/// store keeps, decoded by the same code.
fn json_of<T: serde::de::DeserializeOwned>(d: &Document, key: &str) -> Result<T, StoreError> {
    serde_json::from_str(str_of(d, key)?).map_err(|_| corrupt(key))
}

/// A snapshot chunk as stored: its JSON, compressed (a chunk repeats its
/// field names 256 times), as binary data.
fn chunk_to_bson(ch: &SnapshotChunk) -> Bson {
    Bson::Binary(Binary {
        subtype: BinarySubtype::Generic,
        bytes: compressed::compress(to_json(ch).as_bytes()),
    })
}

/// A stored snapshot chunk: compressed, or the JSON string chunks were
/// stored as before.
fn chunk_of(d: &Document) -> Result<SnapshotChunk, StoreError> {
    match d.get("chunk") {
        Some(Bson::Binary(b)) => {
            let json = compressed::decompress(&b.bytes, "a snapshot chunk")?;
            serde_json::from_slice(&json).map_err(|_| corrupt("chunk"))
        }
        _ => json_of(d, "chunk"),
    }
}

/// An event's document: its fields as BSON, each once. (Its JSON text
/// besides its keys, as events were stored before, repeated the room, seq
/// and eventId and took about 1.6 times the space.)
fn event_doc(e: &ChatEvent) -> Document {
    let mut d = doc! {
        "roomId": e.room_id.as_str(),
        "seq": seq(e.seq),
        "eventId": e.event_id.to_string(),
        "ts": e.timestamp.as_millis(),
        "eventType": e.event_type().as_str(),
        "senderId": e.sender_id.as_str(),
    };
    if let Some(content) = e.kind.content() {
        d.insert("content", content);
    }
    if let Some(target) = e.kind.target() {
        d.insert("targetMessageId", target.to_string());
    }
    d
}

/// A stored event: its fields (see [`event_doc`]), or the whole event as
/// JSON text in `event`, as events were stored before.
fn event_of(d: &Document) -> Result<ChatEvent, StoreError> {
    if let Ok(json) = d.get_str("event") {
        return ChatEvent::from_json(json.as_bytes()).map_err(|_| corrupt("event"));
    }
    let event_type =
        EventType::parse(str_of(d, "eventType")?).ok_or_else(|| corrupt("eventType"))?;
    let target = match d.get_str("targetMessageId") {
        Ok(t) => Some(parse_uuid(t).ok_or_else(|| corrupt("targetMessageId"))?),
        Err(_) => None,
    };
    let content = d.get_str("content").ok().map(CompactString::from);
    Ok(ChatEvent {
        event_id: parse_uuid(str_of(d, "eventId")?).ok_or_else(|| corrupt("eventId"))?,
        room_id: str_of(d, "roomId")?.into(),
        seq: u64_of(d, "seq")?,
        sender_id: str_of(d, "senderId")?.into(),
        timestamp: Timestamp::from_millis(i64_of(d, "ts")?).ok_or_else(|| corrupt("ts"))?,
        kind: EventKind::from_parts(event_type, content, target).map_err(|_| corrupt("event"))?,
    })
}

/// A message's view row. A message as its event sent it (never edited, no
/// reactions) is that event's to give (see [`MongoStore::newest_views`]), so its
/// row holds its key alone; any other holds the message.
fn view_doc(room: &str, m: &Message) -> Document {
    let mut d = doc! {"roomId": room, "seq": seq(m.seq)};
    if m.edited_at.is_some() || !m.reactions.is_empty() {
        d.insert("message", to_json(m));
    }
    d
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("stored values serialize")
}

fn seq(n: u64) -> i64 {
    i64::try_from(n).expect("seqs fit in i64")
}

/// How durable a transaction's writes must be when it commits.
#[derive(Clone, Copy)]
enum Writes {
    /// Events: the source of truth.
    Durable,
    /// The projection: computed again from the events when lost.
    Derived,
}

fn room_doc(r: &RoomRecord) -> Document {
    doc! {
        "_id": &r.room_id,
        "name": &r.name,
        "createdBy": &r.created_by,
        "createdAt": r.created_at.as_millis(),
        "lastSeq": seq(r.last_seq),
    }
}

fn room_of(d: &Document) -> Result<RoomRecord, StoreError> {
    Ok(RoomRecord {
        room_id: str_of(d, "_id")?.to_owned(),
        name: str_of(d, "name")?.to_owned(),
        created_by: str_of(d, "createdBy")?.to_owned(),
        created_at: Timestamp::from_millis(i64_of(d, "createdAt")?)
            .ok_or_else(|| corrupt("createdAt"))?,
        last_seq: u64_of(d, "lastSeq")?,
    })
}

impl MongoStore {
    /// Connects (lazily: the process starts, and reconnects by itself,
    /// whether or not MongoDB is up) and, once MongoDB answers, checks the
    /// database's layout and makes sure every index exists ([`prepare`]).
    /// A database a newer server has written is an error here when MongoDB
    /// answers at start; else it is found later, and appends are refused.
    pub async fn open(uri: &str, db: &str) -> Result<MongoStore, String> {
        let mut options = ClientOptions::parse(uri)
            .await
            .map_err(|e| format!("MONGODB_URI: {e}"))?;
        options.server_selection_timeout = Some(REACH_TIMEOUT);
        options.connect_timeout = Some(REACH_TIMEOUT);
        options.app_name = Some("chat-server".into());
        options.write_concern = Some(
            WriteConcern::builder()
                .w(Acknowledgment::Majority)
                .journal(true)
                .build(),
        );
        options.read_concern = Some(ReadConcern::majority());
        let client = Client::with_options(options).map_err(|e| format!("MONGODB_URI: {e}"))?;
        let db = client.database(db);
        let preparation = Arc::new(Preparation::default());
        match prepare_in_time(&db).await {
            Ok(Prepared::Refused(why)) => return Err(why),
            Ok(ready) => {
                let _ = preparation.done.set(ready);
            }
            // Not fatal: appends answer 503 until it is done.
            Err(why) => {
                if let Unprepared::Unreachable(e) = &why {
                    tracing::warn!(error = %e, "MongoDB unreachable at start; appends wait for its layout and indexes to be checked");
                }
                let wait = preparation.failed(why);
                tokio::spawn(prepare_later(
                    db.clone(),
                    Arc::downgrade(&preparation),
                    wait,
                ));
            }
        }
        Ok(MongoStore {
            db,
            client,
            bases: HeadCache::default(),
            preparation,
        })
    }

    fn coll(&self, name: &str) -> Collection<Document> {
        self.db.collection(name)
    }

    /// One group commit, inside the session's transaction.
    async fn write_commit(&self, s: &mut ClientSession, c: &Commit) -> Result<(), StoreError> {
        let rooms = self.coll("chat_rooms");
        for r in &c.new_rooms {
            match rooms.insert_one(room_doc(r)).session(&mut *s).await {
                Ok(_) => {}
                Err(e) if is_duplicate(&e) => return Err(StoreError::Exists),
                Err(e) => return Err(in_transaction(e)),
            }
        }
        // Every room's log moves on in one command, each only from the last
        // seq its writer saw.
        let advances = c.advances.iter().map(|a| {
            (
                doc! {"_id": &a.room, "lastSeq": seq(a.expected)},
                doc! {"$set": {"lastSeq": seq(a.last)}},
                false,
            )
        });
        let moved = self
            .update_each(s, "chat_rooms", advances.collect())
            .await?;
        if moved != c.advances.len() as i64 {
            return Err(StoreError::Conflict(
                "a room is no longer at the seq its writer saw".into(),
            ));
        }
        if !c.events.is_empty() {
            let docs = c.events.iter().map(|e| event_doc(e));
            match self
                .coll("chat_events")
                .insert_many(docs)
                .session(&mut *s)
                .await
            {
                Ok(_) => {}
                Err(e) if is_duplicate(&e) => {
                    return Err(StoreError::Conflict(
                        "an event at that seq, or with that eventId, is stored".into(),
                    ))
                }
                Err(e) => return Err(in_transaction(e)),
            }
        }
        Ok(())
    }

    /// A transaction on a new session with snapshot reads. `Durable` ones
    /// (the events) commit with write concern majority and journal; the
    /// projection's ask for no journal of their own (a projection lost in a
    /// crash is caught up from the events), but still for a majority: reads
    /// are majority reads, and a `201` must be followed by views that show
    /// it. Finish it with [`MongoStore::finish`].
    async fn begin(&self, writes: Writes) -> Result<ClientSession, StoreError> {
        match self.preparation.done.get() {
            Some(Prepared::Ready) => {}
            Some(Prepared::Refused(why)) => return Err(StoreError::Unavailable(why.clone())),
            None => {
                return Err(StoreError::Unavailable(
                    "the MongoDB database's layout and indexes are not checked yet".into(),
                ))
            }
        }
        let mut s = self.client.start_session().await.map_err(unavailable)?;
        let concern = match writes {
            Writes::Durable => WriteConcern::builder()
                .w(Acknowledgment::Majority)
                .journal(true)
                .build(),
            Writes::Derived => WriteConcern::builder().w(Acknowledgment::Majority).build(),
        };
        let options = TransactionOptions::builder()
            .write_concern(concern)
            .read_concern(ReadConcern::snapshot())
            .build();
        s.start_transaction()
            .with_options(options)
            .await
            .map_err(unavailable)?;
        Ok(s)
    }

    /// Commits the transaction if `written` is fine, else aborts it.
    async fn finish<T>(
        &self,
        mut s: ClientSession,
        written: Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        match written {
            Ok(v) => match s.commit_transaction().await {
                Ok(()) => Ok(v),
                Err(e) if is_duplicate(&e) => {
                    Err(StoreError::Conflict("a concurrent commit won".into()))
                }
                Err(e) if e.contains_label(mongodb::error::TRANSIENT_TRANSACTION_ERROR) => {
                    Err(StoreError::Conflict(format!("transaction aborted: {e}")))
                }
                Err(e) => Err(unavailable(e)),
            },
            Err(err) => {
                let _ = s.abort_transaction().await;
                Err(err)
            }
        }
    }

    /// The seq `room`'s projection is at (0 without a checkpoint).
    async fn checkpoint(
        &self,
        s: Option<&mut ClientSession>,
        room: &str,
    ) -> Result<u64, StoreError> {
        let coll = self.coll("chat_projection");
        let find = coll.find_one(doc! {"_id": room});
        let d = match s {
            Some(s) => find.session(s).await.map_err(in_transaction)?,
            None => find.await.map_err(unavailable)?,
        };
        d.map_or(Ok(0), |d| u64_of(&d, "seq"))
    }

    /// `room`'s newest message views below seq `upper`, at most `limit`,
    /// oldest first: its rows, and for the rows that hold only their key,
    /// the messages their events send (see [`view_doc`]).
    async fn newest_views(
        &self,
        room: &str,
        limit: usize,
        upper: u64,
    ) -> Result<Vec<Message>, StoreError> {
        let docs = all(self
            .coll("chat_message_views")
            .find(doc! {"roomId": room, "seq": {"$lt": seq(upper)}})
            .sort(doc! {"seq": -1})
            .limit(i64::try_from(limit).unwrap_or(i64::MAX)))
        .await?;
        let bare: Vec<i64> = docs
            .iter()
            .filter(|d| !d.contains_key("message"))
            .map(|d| i64_of(d, "seq"))
            .collect::<Result<_, _>>()?;
        let mut sent: HashMap<u64, Message> = HashMap::new();
        if !bare.is_empty() {
            let events = all(self
                .coll("chat_events")
                .find(doc! {"roomId": room, "seq": {"$in": bare}}))
            .await?;
            for d in &events {
                let e = event_of(d)?;
                let m = Message::sent_by(&e).ok_or_else(|| corrupt("message view"))?;
                sent.insert(e.seq, m);
            }
        }
        docs.iter()
            .rev()
            .map(|d| {
                if d.contains_key("message") {
                    json_of(d, "message")
                } else {
                    let n = u64_of(d, "seq")?;
                    sent.remove(&n).ok_or_else(|| corrupt("message view"))
                }
            })
            .collect()
    }

    /// One write command of `coll` with several statements (one round
    /// trip), inside the session's transaction; its reply, once none of its
    /// statements was refused.
    async fn write_each(
        &self,
        s: &mut ClientSession,
        command: WriteCommand,
        coll: &str,
        statements: Vec<Document>,
    ) -> Result<Document, StoreError> {
        let (command, list) = match command {
            WriteCommand::Update => ("update", "updates"),
            WriteCommand::Delete => ("delete", "deletes"),
        };
        let reply = self
            .db
            .run_command(doc! {command: coll, list: statements})
            .session(&mut *s)
            .await
            .map_err(in_transaction)?;
        refused_writes(coll, &reply)?;
        Ok(reply)
    }

    /// Several updates of `coll` in one command, each (filter, update,
    /// upsert); how many documents they matched or upserted in all.
    async fn update_each(
        &self,
        s: &mut ClientSession,
        coll: &str,
        updates: Vec<(Document, Document, bool)>,
    ) -> Result<i64, StoreError> {
        if updates.is_empty() {
            return Ok(0);
        }
        let statements = (updates.into_iter())
            .map(|(q, u, upsert)| doc! {"q": q, "u": u, "upsert": upsert})
            .collect();
        i64_of(
            &self
                .write_each(s, WriteCommand::Update, coll, statements)
                .await?,
            "n",
        )
    }

    /// Several deletes of `coll` in one command, each of every document its
    /// filter matches.
    async fn delete_each(
        &self,
        s: &mut ClientSession,
        coll: &str,
        filters: Vec<Document>,
    ) -> Result<(), StoreError> {
        if filters.is_empty() {
            return Ok(());
        }
        let statements = (filters.into_iter())
            .map(|q| doc! {"q": q, "limit": 0})
            .collect();
        self.write_each(s, WriteCommand::Delete, coll, statements)
            .await
            .map(|_| ())
    }

    /// The seq each of `rooms`' projection is at (0 without a checkpoint),
    /// read in the session's transaction.
    async fn checkpoints(
        &self,
        s: &mut ClientSession,
        rooms: &[&str],
    ) -> Result<HashMap<String, u64>, StoreError> {
        let mut cursor = self
            .coll("chat_projection")
            .find(doc! {"_id": {"$in": rooms.to_vec()}})
            .projection(doc! {"seq": 1})
            .session(&mut *s)
            .await
            .map_err(in_transaction)?;
        let docs: Vec<Document> = cursor
            .stream(&mut *s)
            .try_collect()
            .await
            .map_err(in_transaction)?;
        let mut at: HashMap<String, u64> = rooms.iter().map(|r| ((*r).to_owned(), 0)).collect();
        for d in &docs {
            at.insert(str_of(d, "_id")?.to_owned(), u64_of(d, "seq")?);
        }
        Ok(at)
    }

    /// A group commit's projection changes, inside the session's
    /// transaction: those of the rooms whose projection is where their
    /// writer left it; the rooms found behind it.
    async fn project_in(
        &self,
        s: &mut ClientSession,
        changes: &ProjectionChanges,
    ) -> Result<Vec<String>, StoreError> {
        let rooms: Vec<&str> = changes.rooms.iter().map(|r| r.room.as_str()).collect();
        let at = self.checkpoints(&mut *s, &rooms).await?;
        let (keep, behind) = changes.decide(|room| at.get(room).copied().unwrap_or(0));
        if keep.len() == changes.rooms.len() {
            self.write_projection(s, changes).await?;
        } else {
            self.write_projection(s, &changes.only(&keep)).await?;
        }
        Ok(behind)
    }

    /// A group commit's projection changes, inside the session's
    /// transaction: a few commands for all its rooms, not one per row.
    async fn write_projection(
        &self,
        s: &mut ClientSession,
        c: &ProjectionChanges,
    ) -> Result<(), StoreError> {
        // Each room's checkpoint, with the change in its live messages.
        let mut live: BTreeMap<&str, i64> = BTreeMap::new();
        for ((room, _), delta) in &c.counts.live {
            *live.entry(room.as_str()).or_default() += delta;
        }
        let mut checkpoints = Vec::new();
        for r in &c.rooms {
            let mut update = doc! {"$set": {"seq": seq(r.to)}};
            if let Some(delta) = live.remove(r.room.as_str()) {
                update.insert("$inc", doc! {"live": delta});
            }
            checkpoints.push((doc! {"_id": &r.room}, update, true));
        }
        for (room, delta) in live {
            checkpoints.push((doc! {"_id": room}, doc! {"$inc": {"live": delta}}, true));
        }
        self.update_each(s, "chat_projection", checkpoints).await?;
        // The view rows: each row's last change in this commit. A row that
        // may be stored (at or before the seq the room's projection was at)
        // is deleted first; all are inserted in one command.
        let mut rows: BTreeMap<(&str, u64), Option<&Message>> = BTreeMap::new();
        for (room, change) in &c.views {
            match change {
                ViewChange::Put(m) => rows.insert((room.as_str(), m.seq), Some(m)),
                ViewChange::Delete(n) => rows.insert((room.as_str(), *n), None),
            };
        }
        let from: HashMap<&str, u64> = c.rooms.iter().map(|r| (r.room.as_str(), r.from)).collect();
        let mut stored: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
        let mut docs = Vec::new();
        for ((room, n), row) in rows {
            if from.get(room).is_none_or(|&f| n <= f) {
                stored.entry(room).or_default().push(seq(n));
            }
            if let Some(m) = row {
                docs.push(view_doc(room, m));
            }
        }
        let stale = stored
            .into_iter()
            .map(|(room, seqs)| doc! {"roomId": room, "seq": {"$in": seqs}});
        self.delete_each(s, "chat_message_views", stale.collect())
            .await?;
        if !docs.is_empty() {
            self.coll("chat_message_views")
                .insert_many(docs)
                .session(&mut *s)
                .await
                .map_err(in_transaction)?;
        }
        let markers = c.markers.iter().map(|(room, user, n)| {
            (
                doc! {"roomId": room, "userId": user},
                doc! {"$set": {"seq": seq(*n)}},
                true,
            )
        });
        self.update_each(s, "chat_read_markers", markers.collect())
            .await?;
        let sender_live = c.counts.live.iter().map(|((room, sender), delta)| {
            (
                doc! {"roomId": room, "userId": sender},
                doc! {"$inc": {"n": *delta}},
                true,
            )
        });
        self.update_each(s, "chat_sender_live", sender_live.collect())
            .await?;
        let unread = c.counts.unread.iter().map(|((room, user), change)| {
            let update = match *change {
                UnreadChange::By(delta) => doc! {"$inc": {"n": delta}},
                UnreadChange::Set(n) => doc! {"$set": {"n": seq(n)}},
            };
            (doc! {"roomId": room, "userId": user}, update, true)
        });
        self.update_each(s, "chat_unread", unread.collect()).await?;
        let heads = self.coll("chat_snapshot_heads");
        let chunks = self.coll("chat_snapshot_chunks");
        for (room, snap) in &c.snapshots {
            heads
                .replace_one(
                    doc! {"roomId": room, "seq": seq(snap.head.seq)},
                    doc! {"roomId": room, "seq": seq(snap.head.seq), "head": to_json(&snap.head)},
                )
                .upsert(true)
                .session(&mut *s)
                .await
                .map_err(in_transaction)?;
            for ch in &snap.chunks {
                let key = doc! {"roomId": room, "index": seq(ch.index), "version": seq(ch.version)};
                let mut row = key.clone();
                row.insert("chunk", chunk_to_bson(ch));
                chunks
                    .replace_one(key, row)
                    .upsert(true)
                    .session(&mut *s)
                    .await
                    .map_err(in_transaction)?;
            }
        }
        Ok(())
    }

    /// A room's whole projection in place of the stored one, inside the
    /// session's transaction, unless the stored one is past `at`.
    async fn write_room_projection(
        &self,
        s: &mut ClientSession,
        room: &str,
        p: &RoomProjection,
        at: u64,
    ) -> Result<bool, StoreError> {
        if self.checkpoint(Some(&mut *s), room).await? > at {
            return Ok(false);
        }
        let views = self.coll("chat_message_views");
        views
            .delete_many(doc! {"roomId": room})
            .session(&mut *s)
            .await
            .map_err(in_transaction)?;
        if !p.messages.is_empty() {
            let docs = p.messages.iter().map(|m| view_doc(room, m));
            views
                .insert_many(docs)
                .session(&mut *s)
                .await
                .map_err(in_transaction)?;
        }
        let rows = |values: &BTreeMap<String, u64>, field: &str| -> Vec<Document> {
            values
                .iter()
                .map(|(u, n)| doc! {"roomId": room, "userId": u, field: seq(*n)})
                .collect()
        };
        for (coll, docs) in [
            ("chat_read_markers", rows(&p.read_markers, "seq")),
            ("chat_sender_live", rows(&p.live_by_sender, "n")),
            ("chat_unread", rows(&p.unread, "n")),
        ] {
            let c = self.coll(coll);
            c.delete_many(doc! {"roomId": room})
                .session(&mut *s)
                .await
                .map_err(in_transaction)?;
            if !docs.is_empty() {
                c.insert_many(docs)
                    .session(&mut *s)
                    .await
                    .map_err(in_transaction)?;
            }
        }
        let total: u64 = p.live_by_sender.values().sum();
        self.coll("chat_projection")
            .update_one(
                doc! {"_id": room},
                doc! {"$set": {"seq": seq(at), "live": seq(total)}},
            )
            .upsert(true)
            .session(&mut *s)
            .await
            .map_err(in_transaction)?;
        Ok(true)
    }

    /// Waits for `writer`'s turn on `room` (see [`EventStore::ready`]):
    /// `true` when the turn is new, so that another writer may have
    /// appended since this one's last.
    async fn take_turn(&self, room: &str, writer: Uuid) -> Result<bool, StoreError> {
        let leases = self.coll("chat_room_leases");
        let me = writer.to_string();
        let deadline = Instant::now() + TURN_WAIT;
        // Whether this writer has handed the room over in this call: it then
        // waits its turn like any other.
        let mut handed_over = false;
        loop {
            let now = DateTime::now();
            let until = DateTime::from_millis(now.timestamp_millis() + LEASE_MS);
            let lease = leases
                .find_one(doc! {"_id": room})
                .await
                .map_err(unavailable)?;
            let owner = lease.as_ref().and_then(|l| l.get_str("owner").ok());
            let waiter = lease.as_ref().and_then(|l| l.get_str("waiter").ok());
            let expired = lease
                .as_ref()
                .and_then(|l| l.get_datetime("until").ok())
                .is_none_or(|t| *t < now);
            match (owner, waiter) {
                // Ours, and another writer waits: hand it over, then wait.
                (Some(o), Some(w)) if o == me && w != me && !handed_over => {
                    let w = w.to_owned();
                    leases
                        .update_one(
                            doc! {"_id": room, "owner": &me},
                            doc! {"$set": {"owner": &w, "until": until, "fresh": true}, "$unset": {"waiter": ""}},
                        )
                        .await
                        .map_err(unavailable)?;
                    handed_over = true;
                }
                // Ours (renewed), free, or left to expire: take it.
                (o, _) if o == Some(me.as_str()) || o.is_none() || expired => {
                    let taken = leases
                        .update_one(
                            doc! {"_id": room, "$or": [
                                {"owner": &me},
                                {"owner": {"$exists": false}},
                                {"until": {"$lt": now}},
                            ]},
                            doc! {"$set": {"owner": &me, "until": until}, "$unset": {"fresh": ""}},
                        )
                        .upsert(true)
                        .await;
                    match taken {
                        Ok(_) => {
                            // Handed over, taken, or left to expire: others may
                            // have appended since this writer's last turn.
                            let handed = lease
                                .as_ref()
                                .is_some_and(|l| l.get_bool("fresh").unwrap_or(false));
                            let fresh = owner != Some(me.as_str()) || expired || handed;
                            if waiter == Some(me.as_str()) {
                                let _ = leases
                                    .update_one(
                                        doc! {"_id": room, "waiter": &me},
                                        doc! {"$unset": {"waiter": ""}},
                                    )
                                    .await;
                            }
                            return Ok(fresh);
                        }
                        // Another writer took it in between.
                        Err(e) if is_duplicate(&e) => {}
                        Err(e) => return Err(unavailable(e)),
                    }
                }
                // Another writer's: be the next one.
                (_, w) => {
                    if w.is_none() {
                        leases
                            .update_one(
                                doc! {"_id": room, "waiter": {"$exists": false}},
                                doc! {"$set": {"waiter": &me}},
                            )
                            .await
                            .map_err(unavailable)?;
                    }
                }
            }
            if Instant::now() >= deadline {
                return Err(StoreError::Conflict(format!(
                    "no turn on room {room} within {TURN_WAIT:?}"
                )));
            }
            let pause = 1 + rand::random::<u64>() % 4;
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
    }

    async fn count(&self, coll: &str, room: &str, user: &str) -> Result<i64, StoreError> {
        let d = self
            .coll(coll)
            .find_one(doc! {"roomId": room, "userId": user})
            .await
            .map_err(unavailable)?;
        d.map_or(Ok(0), |d| i64_of(&d, "n"))
    }
}

#[async_trait]
impl AccountStore for MongoStore {
    async fn create_user(&self, user: &str, password_hash: &str) -> Result<(), StoreError> {
        match self
            .coll("chat_users")
            .insert_one(doc! {"_id": user, "passwordHash": password_hash})
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_duplicate(&e) => Err(StoreError::Exists),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn password_hash(&self, user: &str) -> Result<Option<String>, StoreError> {
        let d = self
            .coll("chat_users")
            .find_one(doc! {"_id": user})
            .await
            .map_err(unavailable)?;
        d.map(|d| str_of(&d, "passwordHash").map(str::to_owned))
            .transpose()
    }

    async fn put_session(
        &self,
        token_hash: &str,
        user: &str,
        expires_ms: i64,
    ) -> Result<(), StoreError> {
        self.coll("chat_sessions")
            .insert_one(doc! {
                "_id": token_hash,
                "userId": user,
                "expiresAt": DateTime::from_millis(expires_ms),
            })
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn session(&self, token_hash: &str) -> Result<Option<(String, i64)>, StoreError> {
        let d = self
            .coll("chat_sessions")
            .find_one(doc! {"_id": token_hash})
            .await
            .map_err(unavailable)?;
        match d {
            None => Ok(None),
            Some(d) => {
                let user = str_of(&d, "userId")?.to_owned();
                let expires = d
                    .get_datetime("expiresAt")
                    .map_err(|_| corrupt("expiresAt"))?
                    .timestamp_millis();
                Ok(Some((user, expires)))
            }
        }
    }

    async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError> {
        self.coll("chat_sessions")
            .delete_one(doc! {"_id": token_hash})
            .await
            .map_err(unavailable)?;
        Ok(())
    }
    // Expired sessions: the TTL index deletes them (the default purge
    // deletes nothing); `session` callers check the expiry themselves.
}

#[async_trait]
impl EventStore for MongoStore {
    fn kind(&self) -> &'static str {
        "mongodb"
    }

    fn writers(&self) -> usize {
        4
    }

    /// The unique index on (roomId, eventId) refuses the events' insert,
    /// once it is known to exist.
    fn refuses_stored_ids(&self) -> bool {
        matches!(self.preparation.done.get(), Some(Prepared::Ready))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        // Not writable for a reason of its own, though it answers.
        let failing = match self.preparation.done.get() {
            Some(Prepared::Refused(why)) => Some(why.clone()),
            Some(Prepared::Ready) => None,
            None => self
                .preparation
                .failing
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        };
        if let Some(why) = failing {
            return Err(StoreError::Unavailable(why));
        }
        self.db
            .run_command(doc! {"ping": 1})
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn room(&self, room: &str) -> Result<Option<RoomRecord>, StoreError> {
        let d = self
            .coll("chat_rooms")
            .find_one(doc! {"_id": room})
            .await
            .map_err(unavailable)?;
        d.as_ref().map(room_of).transpose()
    }

    async fn last_seqs(&self, rooms: &[String]) -> Result<HashMap<String, u64>, StoreError> {
        let docs = all(self
            .coll("chat_rooms")
            .find(doc! {"_id": {"$in": rooms}})
            .projection(doc! {"_id": 1, "lastSeq": 1}))
        .await?;
        docs.iter()
            .map(|d| Ok((str_of(d, "_id")?.to_owned(), u64_of(d, "lastSeq")?)))
            .collect()
    }

    async fn events(
        &self,
        room: &str,
        after: u64,
        limit: usize,
    ) -> Result<(Vec<ChatEvent>, u64), StoreError> {
        let last = self.room(room).await?.map_or(0, |r| r.last_seq);
        if limit == 0 || after >= last {
            return Ok((Vec::new(), last));
        }
        let docs = all(self
            .coll("chat_events")
            .find(doc! {"roomId": room, "seq": {"$gt": seq(after), "$lte": seq(last)}})
            .sort(doc! {"seq": 1})
            .limit(i64::try_from(limit).unwrap_or(i64::MAX)))
        .await?;
        let events = docs.iter().map(event_of).collect::<Result<Vec<_>, _>>()?;
        Ok((events, last))
    }

    async fn event_by_id(&self, room: &str, id: Uuid) -> Result<Option<ChatEvent>, StoreError> {
        let d = self
            .coll("chat_events")
            .find_one(doc! {"roomId": room, "eventId": id.to_string()})
            .await
            .map_err(unavailable)?;
        d.as_ref().map(event_of).transpose()
    }

    async fn seqs_of(&self, room: &str, ids: &[Uuid]) -> Result<Vec<(Uuid, u64)>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let wanted: Vec<String> = ids.iter().map(Uuid::to_string).collect();
        let docs = all(self
            .coll("chat_events")
            .find(doc! {"roomId": room, "eventId": {"$in": wanted}})
            .projection(doc! {"eventId": 1, "seq": 1}))
        .await?;
        docs.iter()
            .map(|d| {
                let id = Uuid::parse_str(str_of(d, "eventId")?).map_err(|_| corrupt("eventId"))?;
                Ok((id, u64_of(d, "seq")?))
            })
            .collect()
    }

    async fn seq_at_time(&self, room: &str, t: Timestamp) -> Result<u64, StoreError> {
        let d = self
            .coll("chat_events")
            .find_one(doc! {"roomId": room, "ts": {"$lte": t.as_millis()}})
            .sort(doc! {"ts": -1, "seq": -1})
            .projection(doc! {"seq": 1})
            .await
            .map_err(unavailable)?;
        d.map_or(Ok(0), |d| u64_of(&d, "seq"))
    }

    async fn seqs_in_rooms(
        &self,
        wanted: Vec<(String, Vec<Uuid>)>,
    ) -> Result<Vec<(String, Uuid, u64)>, StoreError> {
        // A query per room, at once: each is a point lookup on the
        // (roomId, eventId) index on any server, where one query with a
        // `$in` on both fields, or an `$or` of the rooms, is read by some
        // (MongoDB-compatible) servers as a scan of the rooms' events.
        let found = futures_util::future::try_join_all(
            wanted.iter().map(|(room, ids)| self.seqs_of(room, ids)),
        )
        .await?;
        Ok(wanted
            .iter()
            .zip(found)
            .flat_map(|((room, _), f)| f.into_iter().map(|(id, seq)| (room.clone(), id, seq)))
            .collect())
    }

    async fn ready(
        &self,
        rooms: &[(&str, Option<u64>)],
        writer: Uuid,
        contended: bool,
    ) -> Result<Vec<String>, StoreError> {
        if rooms.is_empty() {
            return Ok(Vec::new());
        }
        let held: Vec<String> = rooms
            .iter()
            .filter(|(_, known)| known.is_some())
            .map(|(room, _)| (*room).to_owned())
            .collect();
        let names: Vec<&str> = rooms.iter().map(|(room, _)| *room).collect();
        let me = writer.to_string();
        // The rooms to take turns on: all while contended, else those
        // another writer is taking turns on (its lease is live, or it waits
        // for this writer's); read at once with where the rooms are.
        let shared = async {
            if contended {
                return Ok(names.iter().map(|r| (*r).to_owned()).collect());
            }
            let leases = all(self
                .coll("chat_room_leases")
                .find(doc! {
                    "_id": {"$in": &names},
                    "until": {"$gt": DateTime::now()},
                    "$or": [{"owner": {"$ne": &me}}, {"waiter": {"$exists": true}}],
                })
                .projection(doc! {"_id": 1}))
            .await?;
            leases
                .iter()
                .map(|d| str_of(d, "_id").map(str::to_owned))
                .collect::<Result<HashSet<String>, _>>()
        };
        let lasts = async {
            if contended || held.is_empty() {
                Ok(None)
            } else {
                self.last_seqs(&held).await.map(Some)
            }
        };
        let (turns, lasts) = tokio::try_join!(shared, lasts)?;
        let mut moved = Vec::new();
        for room in names.iter().filter(|r| turns.contains(**r)) {
            if self.take_turn(room, writer).await? {
                moved.push((*room).to_owned());
            }
        }
        // Where the rooms are, read again after any turn taken: whatever
        // was appended before it is seen.
        let lasts = match lasts {
            Some(lasts) if turns.is_empty() => lasts,
            _ if held.is_empty() => HashMap::new(),
            _ => self.last_seqs(&held).await?,
        };
        for (room, known) in rooms {
            let behind = known.is_some_and(|k| lasts.get(*room).is_some_and(|&last| last != k));
            if behind && !moved.iter().any(|m| m == room) {
                moved.push((*room).to_owned());
            }
        }
        Ok(moved)
    }

    async fn commit(&self, c: Commit) -> Result<(), StoreError> {
        let mut s = self.begin(Writes::Durable).await?;
        let written = self.write_commit(&mut s, &c).await;
        self.finish(s, written).await
    }

    async fn commit_with_projection(
        &self,
        c: Commit,
        proj: Arc<ProjectionChanges>,
    ) -> Result<WithProjection, StoreError> {
        let mut s = self.begin(Writes::Durable).await?;
        if let Err(e) = self.write_commit(&mut s, &c).await {
            return self.finish(s, Err(e)).await;
        }
        match self.project_in(&mut s, &proj).await {
            Ok(behind) => {
                (self.finish(s, Ok(behind)).await).map(|behind| WithProjection::Written { behind })
            }
            // What only the projection needs must not cost the events: on
            // any error of its part (a conflict too, which the events alone
            // meet again if another writer moved their rooms on), they are
            // committed alone, and the projection is left to the caller.
            Err(e) => {
                let _ = s.abort_transaction().await;
                tracing::warn!(error = %e, "the projection could not go with the events");
                self.commit(c).await.map(|()| WithProjection::Left)
            }
        }
    }
}

#[async_trait]
impl ProjectionStore for MongoStore {
    async fn room_list(
        &self,
        user: &str,
        after: Option<(i64, &str)>,
        limit: usize,
    ) -> Result<Vec<(RoomRecord, u64)>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let filter = match after {
            Some((t, id)) => doc! {"$or": [
                {"createdAt": {"$gt": t}},
                {"createdAt": t, "_id": {"$gt": id}},
            ]},
            None => doc! {},
        };
        let docs = all(self
            .coll("chat_rooms")
            .find(filter)
            .sort(doc! {"createdAt": 1, "_id": 1})
            .limit(i64::try_from(limit).unwrap_or(i64::MAX)))
        .await?;
        let rooms: Vec<RoomRecord> = docs.iter().map(room_of).collect::<Result<_, _>>()?;
        let ids: Vec<&str> = rooms.iter().map(|r| r.room_id.as_str()).collect();
        let mut live: HashMap<String, i64> = HashMap::new();
        for d in &all(self
            .coll("chat_projection")
            .find(doc! {"_id": {"$in": &ids}}))
        .await?
        {
            live.insert(str_of(d, "_id")?.to_owned(), live_of(d)?);
        }
        // Three lookups for the whole page: the user's markers, unread
        // counts and own live messages in these rooms.
        let by_room = |coll: &'static str| {
            let ids = ids.clone();
            async move {
                let docs = all(self
                    .coll(coll)
                    .find(doc! {"roomId": {"$in": ids}, "userId": user}))
                .await?;
                let mut out = HashMap::new();
                for d in &docs {
                    let n = if coll == "chat_read_markers" {
                        i64_of(d, "seq")?
                    } else {
                        i64_of(d, "n")?
                    };
                    out.insert(str_of(d, "roomId")?.to_owned(), n);
                }
                Ok::<_, StoreError>(out)
            }
        };
        let markers = by_room("chat_read_markers").await?;
        let unread = by_room("chat_unread").await?;
        let own = by_room("chat_sender_live").await?;
        Ok(rooms
            .into_iter()
            .map(|r| {
                let id = r.room_id.as_str();
                let n = if markers.contains_key(id) {
                    unread.get(id).copied().unwrap_or(0)
                } else {
                    live.get(id).copied().unwrap_or(0) - own.get(id).copied().unwrap_or(0)
                };
                (r, n.max(0) as u64)
            })
            .collect())
    }

    async fn views(
        &self,
        room: &str,
        limit: usize,
        before: Option<u64>,
    ) -> Result<ViewPage, StoreError> {
        // The room's last seq before its projection's seq, and both before
        // the rows and the read markers: what is read at `projected` or
        // later holds everything up to `last_seq` once `projected` has
        // reached it.
        let last_seq = self.room(room).await?.map_or(0, |r| r.last_seq);
        let projected = self.checkpoint(None, room).await?;
        let upper = before.unwrap_or(u64::MAX).min(i64::MAX as u64);
        let rows = async {
            if limit > 0 && upper > 0 {
                self.newest_views(room, limit, upper).await
            } else {
                Ok(Vec::new())
            }
        };
        // The markers beside the rows, which take two round trips when
        // some of their messages are read from their events.
        let markers = async {
            let docs = all(self.coll("chat_read_markers").find(doc! {"roomId": room})).await?;
            let mut read_markers = BTreeMap::new();
            for d in &docs {
                read_markers.insert(CompactString::from(str_of(d, "userId")?), u64_of(d, "seq")?);
            }
            Ok(read_markers)
        };
        let (messages, read_markers) = tokio::try_join!(rows, markers)?;
        Ok(ViewPage {
            messages,
            read_markers,
            last_seq,
            projected,
        })
    }

    async fn unread_count(&self, room: &str, user: &str) -> Result<u64, StoreError> {
        let marker = self
            .coll("chat_read_markers")
            .find_one(doc! {"roomId": room, "userId": user})
            .await
            .map_err(unavailable)?;
        let n = if marker.is_some() {
            self.count("chat_unread", room, user).await?
        } else {
            let live = self
                .coll("chat_projection")
                .find_one(doc! {"_id": room})
                .await
                .map_err(unavailable)?
                .map_or(Ok(0), |d| live_of(&d))?;
            live - self.count("chat_sender_live", room, user).await?
        };
        Ok(n.max(0) as u64)
    }

    async fn apply(&self, changes: Arc<ProjectionChanges>) -> Result<Vec<String>, StoreError> {
        let mut s = self.begin(Writes::Derived).await?;
        let written = self.project_in(&mut s, &changes).await;
        self.finish(s, written).await
    }

    async fn projected(&self, rooms: &[String]) -> Result<HashMap<String, u64>, StoreError> {
        let docs = all(self
            .coll("chat_projection")
            .find(doc! {"_id": {"$in": rooms}}))
        .await?;
        let mut at: HashMap<String, u64> = rooms.iter().map(|r| (r.clone(), 0)).collect();
        for d in &docs {
            at.insert(str_of(d, "_id")?.to_owned(), u64_of(d, "seq")?);
        }
        Ok(at)
    }

    async fn replace_projection(
        &self,
        room: &str,
        p: RoomProjection,
        at: u64,
    ) -> Result<bool, StoreError> {
        let mut s = self.begin(Writes::Derived).await?;
        let written = self.write_room_projection(&mut s, room, &p, at).await;
        self.finish(s, written).await
    }
}

#[async_trait]
impl SnapshotStore for MongoStore {
    fn head_cache(&self) -> Option<&HeadCache> {
        Some(&self.bases)
    }

    async fn stored_head(
        &self,
        room: &str,
        at_most: u64,
    ) -> Result<Option<SnapshotHead>, StoreError> {
        let d = self
            .coll("chat_snapshot_heads")
            .find_one(doc! {"roomId": room, "seq": {"$lte": seq(at_most.min(i64::MAX as u64))}})
            .sort(doc! {"seq": -1})
            .await
            .map_err(unavailable)?;
        d.map(|d| json_of(&d, "head")).transpose()
    }

    async fn snapshot_chunks(
        &self,
        room: &str,
        which: &[(u64, u64)],
    ) -> Result<Vec<SnapshotChunk>, StoreError> {
        if which.is_empty() {
            return Ok(Vec::new());
        }
        let wanted: Vec<Document> = which
            .iter()
            .map(|(i, v)| doc! {"index": seq(*i), "version": seq(*v)})
            .collect();
        let docs = all(self
            .coll("chat_snapshot_chunks")
            .find(doc! {"roomId": room, "$or": wanted}))
        .await?;
        let mut found: HashMap<(u64, u64), SnapshotChunk> = HashMap::new();
        for d in &docs {
            found.insert((u64_of(d, "index")?, u64_of(d, "version")?), chunk_of(d)?);
        }
        which
            .iter()
            .map(|(i, v)| {
                found
                    .remove(&(*i, *v))
                    .ok_or_else(|| StoreError::Corrupt(format!("missing chunk {i}@{v}")))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::Reactions;

    /// Every kind of event reads back from its document, and from the JSON
    /// text events were stored as before; the document is smaller.
    #[test]
    fn events_round_trip_through_their_documents() {
        let target = Uuid::from_u128(7);
        let kinds = [
            EventKind::RoomCreated {
                name: "General".into(),
            },
            EventKind::MessageSent {
                content: "hello, \"you\" 👋".into(),
            },
            EventKind::MessageEdited {
                message_id: target,
                content: "hi".into(),
            },
            EventKind::MessageDeleted { message_id: target },
            EventKind::MessageRead { message_id: target },
            EventKind::ReactionAdded {
                message_id: target,
                emoji: "👍".into(),
            },
            EventKind::ReactionRemoved {
                message_id: target,
                emoji: "👍".into(),
            },
        ];
        for (n, kind) in kinds.into_iter().enumerate() {
            let e = ChatEvent {
                event_id: Uuid::from_u128(100 + n as u128),
                room_id: "general".into(),
                seq: 1 + n as u64,
                sender_id: "alice".into(),
                timestamp: Timestamp::from_millis(1_795_000_000_123).unwrap(),
                kind,
            };
            let stored = event_doc(&e);
            assert_eq!(event_of(&stored).unwrap(), e);
            let old = doc! {
                "roomId": e.room_id.as_str(),
                "seq": seq(e.seq),
                "eventId": e.event_id.to_string(),
                "ts": e.timestamp.as_millis(),
                "event": e.to_json(),
            };
            assert_eq!(event_of(&old).unwrap(), e);
            let bytes = |d: &Document| mongodb::bson::to_vec(d).unwrap().len();
            assert!(bytes(&stored) < e.to_json().len(), "{stored}");
        }
        let mut bad = event_doc(&ChatEvent {
            event_id: target,
            room_id: "general".into(),
            seq: 1,
            sender_id: "alice".into(),
            timestamp: Timestamp::from_millis(1).unwrap(),
            kind: EventKind::MessageDeleted { message_id: target },
        });
        bad.remove("targetMessageId");
        assert!(matches!(event_of(&bad), Err(StoreError::Corrupt(_))));
    }

    /// Chunks are stored compressed, and read back whether compressed or
    /// stored as a JSON string (before they were compressed).
    #[test]
    fn snapshot_chunks_round_trip_compressed_and_plain() {
        let chunk = SnapshotChunk {
            index: 3,
            version: 900,
            messages: (769..=1024u64)
                .map(|seq| Message {
                    id: Uuid::from_u128(seq.into()),
                    seq,
                    sender_id: "alice".into(),
                    content: "hi".into(),
                    sent_at: Timestamp::from_millis(seq as i64).unwrap(),
                    edited_at: None,
                    reactions: Reactions::new(),
                })
                .collect(),
        };
        let stored = chunk_to_bson(&chunk);
        let Bson::Binary(b) = &stored else {
            panic!("stored as {stored:?}")
        };
        assert!(
            b.bytes.len() * 4 < to_json(&chunk).len(),
            "{} bytes",
            b.bytes.len()
        );
        assert_eq!(chunk_of(&doc! {"chunk": stored}).unwrap(), chunk);
        assert_eq!(chunk_of(&doc! {"chunk": to_json(&chunk)}).unwrap(), chunk);
        let bad = Bson::Binary(Binary {
            subtype: BinarySubtype::Generic,
            bytes: vec![compressed::ZSTD, 1, 2, 3],
        });
        assert!(matches!(
            chunk_of(&doc! {"chunk": bad}),
            Err(StoreError::Corrupt(_))
        ));
    }
}
