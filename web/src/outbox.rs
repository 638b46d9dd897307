//! The offline queue: a user's events in one room that the server has not
//! answered yet, in the order they were made, written to storage on every
//! change so that a reload loses nothing. Sending them again is safe: the
//! server stores an `eventId` once. Every change reads the stored queue
//! first, so that two holders of one queue (the open room and a flush of
//! the queues over HTTP, or two tabs) do not write over each other.

use crate::store::SharedStore;
use domain::PendingEvent;
use uuid::Uuid;

/// Ids never hold a `/` (`domain::validation::validate_id`), so a key names
/// one user and one room only.
fn prefix(user: &str) -> String {
    format!("chat.outbox/{user}/")
}

/// The queue of one user in one room.
pub struct Outbox {
    store: SharedStore,
    key: String,
    events: Vec<PendingEvent>,
}

impl Outbox {
    /// The queue as stored (empty if none, or if what is stored is not a queue).
    pub fn open(store: SharedStore, user: &str, room: &str) -> Self {
        let key = format!("{}{room}", prefix(user));
        let events = load(&store, &key);
        Outbox { store, key, events }
    }

    /// The rooms in which `user` has queued events.
    pub fn rooms_with_events(store: &SharedStore, user: &str) -> Vec<String> {
        let prefix = prefix(user);
        store
            .keys_with_prefix(&prefix)
            .into_iter()
            .map(|k| k[prefix.len()..].to_owned())
            .collect()
    }

    pub fn events(&self) -> &[PendingEvent] {
        &self.events
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    pub fn contains(&self, event_id: Uuid) -> bool {
        self.events.iter().any(|p| p.event_id == event_id)
    }

    pub fn get(&self, event_id: Uuid) -> Option<&PendingEvent> {
        self.events.iter().find(|p| p.event_id == event_id)
    }

    /// Queues an event (once per `eventId`).
    pub fn push(&mut self, event: PendingEvent) {
        self.events = load(&self.store, &self.key);
        if !self.contains(event.event_id) {
            self.events.push(event);
            self.save();
        }
    }

    /// Takes an event out of the queue; `false` if it was not there.
    pub fn remove(&mut self, event_id: Uuid) -> bool {
        self.events = load(&self.store, &self.key);
        let before = self.events.len();
        self.events.retain(|p| p.event_id != event_id);
        let removed = self.events.len() != before;
        if removed {
            self.save();
        }
        removed
    }

    fn save(&self) {
        if self.events.is_empty() {
            self.store.remove(&self.key);
        } else if let Ok(json) = serde_json::to_string(&self.events) {
            self.store.set(&self.key, &json);
        }
    }
}

fn load(store: &SharedStore, key: &str) -> Vec<PendingEvent> {
    store
        .get(key)
        .and_then(|json| serde_json::from_slice(json.as_bytes()).ok())
        .unwrap_or_default()
}
