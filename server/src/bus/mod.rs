//! The bus: fans stored events (and logouts) out to live subscribers. In
//! process ([`LocalBus`]) by default; Redis pub/sub between instances
//! ([`redis::RedisBus`]) when `REDIS_URL` is set. It is only the fast path:
//! subscribers that miss anything catch up from the store by seq, and
//! `crate::backstop` finds the latest events that never arrived.
//!
//! A room has a channel here only while someone listens: publishing to a
//! room nobody listens to creates nothing, and the channel goes with its last
//! [`Subscription`]. Likewise a session has a logout signal here only while
//! a socket of it is open ([`SessionWatch`]): a logout wakes that session's
//! sockets, not every socket of the instance.

pub mod redis;

use domain::ChatEvent;
use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::broadcast;
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

/// Events buffered per room for slow subscribers before they lag (and resync
/// from the store).
const ROOM_BUFFER: usize = 1024;
/// Logouts buffered for the instance's session cache before it lags (and
/// forgets every session).
const LOGOUT_BUFFER: usize = 256;

pub trait Bus: Send + Sync + 'static {
    /// `"local"` or `"redis"`.
    fn kind(&self) -> &'static str;
    fn connected(&self) -> bool;
    /// Publishes an event that is already durable in the store, to the
    /// subscribers of every instance.
    fn publish(&self, event: Arc<ChatEvent>);
    /// Live events of a room from now on, until the subscription is dropped.
    fn subscribe(&self, room: &str) -> Subscription;
    /// Tells the sockets of every instance that a token was logged out.
    fn logout(&self, token_hash: &str);
    /// Token hashes logged out from now on (for the session cache; a socket
    /// waits on its own session's [`SessionWatch`]).
    fn logouts(&self) -> broadcast::Receiver<String>;
    /// Whether a published event or logout may never arrive (Redis down):
    /// sockets then look their sessions up in the store now and then.
    fn may_lose(&self) -> bool;
    /// This instance's subscribers.
    fn here(&self) -> &LocalBus;
}

/// An event as a room's subscribers receive it (it reads as the event),
/// with room for what they send of it, made once for all of them: a room of
/// a thousand sockets encodes each event once, not a thousand times.
pub struct Live<T = axum::extract::ws::Utf8Bytes> {
    event: Arc<ChatEvent>,
    encoded: OnceLock<T>,
}

impl<T: Clone> Live<T> {
    pub fn new(event: Arc<ChatEvent>) -> Self {
        Live {
            event,
            encoded: OnceLock::new(),
        }
    }

    /// The event encoded by `encode`, which only the first caller runs.
    pub fn encoded(&self, encode: impl FnOnce(&ChatEvent) -> T) -> T {
        self.encoded.get_or_init(|| encode(&self.event)).clone()
    }
}

impl<T> Deref for Live<T> {
    type Target = ChatEvent;
    fn deref(&self) -> &ChatEvent {
        &self.event
    }
}

/// A room's channel on one instance, and the highest seq it carried
/// (shared with its subscriptions: see [`Subscription::newest`]).
struct Channel {
    tx: broadcast::Sender<Arc<Live>>,
    last: Arc<AtomicU64>,
}

type Rooms = Mutex<HashMap<String, Channel>>;

/// The live events of one room for one subscriber: a broadcast receiver
/// (read it as one) that removes the room's channel when it is the last to go.
pub struct Subscription {
    rx: Option<broadcast::Receiver<Arc<Live>>>,
    last: Arc<AtomicU64>,
    room: String,
    rooms: Arc<Rooms>,
}

impl Subscription {
    /// The highest seq the room's channel carried so far. Cheaper than
    /// asking the channel whether something waits (which takes its lock):
    /// a subscriber that has sent up to this seq has nothing waiting.
    pub fn newest(&self) -> u64 {
        self.last.load(Ordering::Acquire)
    }
}

impl Deref for Subscription {
    type Target = broadcast::Receiver<Arc<Live>>;
    fn deref(&self) -> &Self::Target {
        self.rx.as_ref().expect("present until dropped")
    }
}

impl DerefMut for Subscription {
    fn deref_mut(&mut self) -> &mut Self::Target {
        self.rx.as_mut().expect("present until dropped")
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        // Drop the receiver first, then look under the lock that subscribing
        // takes too: a channel without receivers has no subscriber left.
        self.rx = None;
        let mut rooms = self.rooms.lock().expect("bus lock");
        if rooms
            .get(&self.room)
            .is_some_and(|ch| ch.tx.receiver_count() == 0)
        {
            rooms.remove(&self.room);
        }
    }
}

/// The sessions with sockets open here, by token hash: the signal their
/// sockets wait on, and how many sockets wait on it.
type Sessions = Mutex<HashMap<String, (CancellationToken, usize)>>;

/// Whether one session was logged out, for one socket: registered with
/// the instance while it lives, so that a logout reaches it at once and
/// cannot be lost (no channel that could lag). The session's entry goes
/// with its last watch.
pub struct SessionWatch {
    signal: CancellationToken,
    token_hash: String,
    sessions: Arc<Sessions>,
}

impl SessionWatch {
    /// Resolves once the session is logged out (on any instance, as far as
    /// the bus carries it).
    pub fn logged_out(&self) -> WaitForCancellationFuture<'_> {
        self.signal.cancelled()
    }

    pub fn is_logged_out(&self) -> bool {
        self.signal.is_cancelled()
    }
}

impl Drop for SessionWatch {
    fn drop(&mut self) {
        let mut sessions = self.sessions.lock().expect("bus lock");
        if let Some((_, n)) = sessions.get_mut(&self.token_hash) {
            *n -= 1;
            if *n == 0 {
                sessions.remove(&self.token_hash);
            }
        }
    }
}

/// In-process fan-out: one broadcast channel per room that has subscribers,
/// one logout signal per session that has sockets open, and one channel
/// for all logouts (the session cache's). Cheap to clone (the clones share
/// them).
#[derive(Clone)]
pub struct LocalBus {
    // std Mutexes: held only to look up, insert or remove an entry, never
    // across an await.
    rooms: Arc<Rooms>,
    sessions: Arc<Sessions>,
    logouts: broadcast::Sender<String>,
}

impl Default for LocalBus {
    fn default() -> Self {
        LocalBus {
            rooms: Arc::default(),
            sessions: Arc::default(),
            logouts: broadcast::channel(LOGOUT_BUFFER).0,
        }
    }
}

impl LocalBus {
    /// Hands an event to this instance's subscribers of its room.
    pub fn deliver(&self, event: Arc<ChatEvent>) {
        let rooms = self.rooms.lock().expect("bus lock");
        // No channel: nobody here is listening to that room.
        if let Some(ch) = rooms.get(event.room_id.as_str()) {
            let seq = event.seq;
            // Sending never waits (slow receivers lag instead).
            let _ = ch.tx.send(Arc::new(Live::new(event)));
            // After the send: a subscriber that sees this seq finds it.
            ch.last.fetch_max(seq, Ordering::Release);
        }
    }

    /// Hands a logout to this instance's sockets of that session, and to
    /// its session cache.
    pub fn deliver_logout(&self, token_hash: String) {
        if let Some((signal, _)) = self.sessions.lock().expect("bus lock").get(&token_hash) {
            signal.cancel();
        }
        let _ = self.logouts.send(token_hash);
    }

    /// Watches a session for its logout, from now on. A socket takes this
    /// before it looks its session up in the store: a logout is then either
    /// seen by that lookup or signalled to the watch.
    pub fn watch_session(&self, token_hash: &str) -> SessionWatch {
        let mut sessions = self.sessions.lock().expect("bus lock");
        let (signal, n) = sessions
            .entry(token_hash.to_owned())
            .or_insert_with(|| (CancellationToken::new(), 0));
        *n += 1;
        SessionWatch {
            signal: signal.clone(),
            token_hash: token_hash.to_owned(),
            sessions: self.sessions.clone(),
        }
    }

    /// Sessions with a watch here (for the tests).
    pub fn watched_sessions(&self) -> usize {
        self.sessions.lock().expect("bus lock").len()
    }

    /// The rooms with subscribers here, each with the highest seq its
    /// channel carried (0 when none yet).
    pub fn watched(&self) -> Vec<(String, u64)> {
        let rooms = self.rooms.lock().expect("bus lock");
        rooms
            .iter()
            .map(|(r, ch)| (r.clone(), ch.last.load(Ordering::Acquire)))
            .collect()
    }

    /// Whether someone here listens to `room`.
    pub fn watches(&self, room: &str) -> bool {
        self.rooms.lock().expect("bus lock").contains_key(room)
    }

    /// Rooms with at least one subscriber here (for the metrics).
    pub fn rooms(&self) -> usize {
        self.rooms.lock().expect("bus lock").len()
    }
}

impl Bus for LocalBus {
    fn kind(&self) -> &'static str {
        "local"
    }

    fn connected(&self) -> bool {
        true
    }

    fn publish(&self, event: Arc<ChatEvent>) {
        self.deliver(event);
    }

    fn subscribe(&self, room: &str) -> Subscription {
        let mut rooms = self.rooms.lock().expect("bus lock");
        let ch = rooms.entry(room.to_owned()).or_insert_with(|| Channel {
            tx: broadcast::channel(ROOM_BUFFER).0,
            last: Arc::default(),
        });
        Subscription {
            rx: Some(ch.tx.subscribe()),
            last: ch.last.clone(),
            room: room.to_owned(),
            rooms: self.rooms.clone(),
        }
    }

    fn logout(&self, token_hash: &str) {
        self.deliver_logout(token_hash.to_owned());
    }

    fn logouts(&self) -> broadcast::Receiver<String> {
        self.logouts.subscribe()
    }

    fn may_lose(&self) -> bool {
        false
    }

    fn here(&self) -> &LocalBus {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::{EventKind, Timestamp};
    use uuid::Uuid;

    fn event(room: &str) -> Arc<ChatEvent> {
        Arc::new(ChatEvent {
            event_id: Uuid::from_u128(1),
            room_id: room.into(),
            seq: 1,
            sender_id: "alice".into(),
            timestamp: Timestamp::from_millis(0).unwrap(),
            kind: EventKind::MessageSent {
                content: "hi".into(),
            },
        })
    }

    #[test]
    fn a_room_has_a_channel_only_while_someone_listens() {
        let bus = LocalBus::default();
        bus.publish(event("nobody"));
        assert_eq!(bus.rooms(), 0, "publishing creates nothing");
        let mut a = bus.subscribe("r");
        let b = bus.subscribe("r");
        assert_eq!(bus.rooms(), 1);
        bus.publish(event("r"));
        let live = a.try_recv().unwrap();
        assert_eq!(live.room_id, "r");
        assert_eq!(live.encoded(|e| e.seq.to_string().into()).as_str(), "1");
        assert_eq!(live.encoded(|_| unreachable!("encoded once")).as_str(), "1");
        assert_eq!(bus.watched(), vec![("r".to_owned(), 1)]);
        assert_eq!((a.newest(), b.newest()), (1, 1));
        drop(b);
        assert_eq!(bus.rooms(), 1, "one subscriber is left");
        drop(a);
        assert_eq!(bus.rooms(), 0);
        for i in 0..1000 {
            drop(bus.subscribe(&format!("room {i}")));
        }
        assert_eq!(bus.rooms(), 0);
    }

    #[test]
    fn a_logout_signals_the_watches_of_its_session_only_while_they_live() {
        let bus = LocalBus::default();
        let mut cache = bus.logouts();
        let a1 = bus.watch_session("a");
        let a2 = bus.watch_session("a");
        let b = bus.watch_session("b");
        assert_eq!(bus.watched_sessions(), 2);
        bus.deliver_logout("c".into());
        assert!(!a1.is_logged_out() && !b.is_logged_out());
        bus.deliver_logout("a".into());
        assert!(a1.is_logged_out() && a2.is_logged_out());
        assert!(!b.is_logged_out(), "another session is untouched");
        assert_eq!(
            cache.try_recv().unwrap(),
            "c",
            "the cache hears of every logout"
        );
        assert_eq!(cache.try_recv().unwrap(), "a");
        drop((a1, a2, b));
        assert_eq!(bus.watched_sessions(), 0, "nothing stays behind");
        // A watch taken after a logout starts afresh: that session is gone
        // from the store, which the socket's lookup sees.
        assert!(!bus.watch_session("a").is_logged_out());
        for i in 0..1000 {
            drop(bus.watch_session(&format!("session {i}")));
        }
        assert_eq!(bus.watched_sessions(), 0);
    }
}
