//! The bus: fans stored events out to live subscribers. In process by
//! default; Redis pub/sub between instances later. It is only the fast path:
//! subscribers that miss anything catch up from the store by seq.

use domain::ChatEvent;
use std::collections::HashMap;
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
    /// Live events of a room from now on.
    fn subscribe(&self, room: &str) -> broadcast::Receiver<Arc<ChatEvent>>;
}

/// In-process fan-out: one broadcast channel per room.
#[derive(Default)]
pub struct LocalBus {
    // A std Mutex: held only to look up or insert a sender, never across await.
    rooms: Mutex<HashMap<String, broadcast::Sender<Arc<ChatEvent>>>>,
}

impl LocalBus {
    fn sender(&self, room: &str) -> broadcast::Sender<Arc<ChatEvent>> {
        let mut rooms = self.rooms.lock().expect("bus lock");
        rooms
            .entry(room.to_owned())
            .or_insert_with(|| broadcast::channel(ROOM_BUFFER).0)
            .clone()
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
        // No receivers is fine: nobody is listening to that room.
        let _ = self.sender(&event.room_id).send(event);
    }

    fn subscribe(&self, room: &str) -> broadcast::Receiver<Arc<ChatEvent>> {
        self.sender(room).subscribe()
    }
}
