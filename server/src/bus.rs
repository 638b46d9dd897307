//! The bus: fans stored events out to live subscribers. In process by
//! default; Redis pub/sub between instances later. It is only the fast path:
//! subscribers that miss anything catch up from the store by seq.
//!
//! A room has a channel only while someone listens: publishing to a room
//! nobody listens to creates nothing, and the channel goes with its last
//! [`Subscription`].

use domain::ChatEvent;
use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// Events buffered per room for slow subscribers before they lag (and resync
/// from the store).
const ROOM_BUFFER: usize = 1024;

pub trait Bus: Send + Sync + 'static {
    /// `"local"` or `"redis"`.
    fn kind(&self) -> &'static str;
    fn connected(&self) -> bool;
    /// Publishes an event that is already durable in the store.
    fn publish(&self, event: Arc<ChatEvent>);
    /// Live events of a room from now on, until the subscription is dropped.
    fn subscribe(&self, room: &str) -> Subscription;
    /// Rooms with at least one subscriber (for the metrics).
    fn rooms(&self) -> usize;
}

type Rooms = Mutex<HashMap<String, broadcast::Sender<Arc<ChatEvent>>>>;

/// The live events of one room for one subscriber: a broadcast receiver
/// (read it as one) that removes the room's channel when it is the last to go.
pub struct Subscription {
    rx: Option<broadcast::Receiver<Arc<ChatEvent>>>,
    room: String,
    rooms: Arc<Rooms>,
}

impl Deref for Subscription {
    type Target = broadcast::Receiver<Arc<ChatEvent>>;
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
            .is_some_and(|tx| tx.receiver_count() == 0)
        {
            rooms.remove(&self.room);
        }
    }
}

/// In-process fan-out: one broadcast channel per room that has subscribers.
#[derive(Default)]
pub struct LocalBus {
    // A std Mutex: held only to look up, insert or remove a sender, never
    // across an await.
    rooms: Arc<Rooms>,
}

impl Bus for LocalBus {
    fn kind(&self) -> &'static str {
        "local"
    }

    fn connected(&self) -> bool {
        true
    }

    fn publish(&self, event: Arc<ChatEvent>) {
        let tx = self
            .rooms
            .lock()
            .expect("bus lock")
            .get(event.room_id.as_str())
            .cloned();
        // No channel: nobody is listening to that room.
        if let Some(tx) = tx {
            let _ = tx.send(event);
        }
    }

    fn subscribe(&self, room: &str) -> Subscription {
        let rx = self
            .rooms
            .lock()
            .expect("bus lock")
            .entry(room.to_owned())
            .or_insert_with(|| broadcast::channel(ROOM_BUFFER).0)
            .subscribe();
        Subscription {
            rx: Some(rx),
            room: room.to_owned(),
            rooms: self.rooms.clone(),
        }
    }

    fn rooms(&self) -> usize {
        self.rooms.lock().expect("bus lock").len()
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
        assert_eq!(a.try_recv().unwrap().room_id, "r");
        drop(b);
        assert_eq!(bus.rooms(), 1, "one subscriber is left");
        drop(a);
        assert_eq!(bus.rooms(), 0);
        for i in 0..1000 {
            drop(bus.subscribe(&format!("room {i}")));
        }
        assert_eq!(bus.rooms(), 0);
    }
}
