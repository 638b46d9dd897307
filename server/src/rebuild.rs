//! Projections computed again from the events, the source of truth, and
//! written in place of the stored ones: [`catch_up`] for a room whose
//! projection lags its events (a crash, or a failed write, between the
//! event commit and the projection's), [`catch_up_all`] when the server
//! starts, and `server rebuild-projections` ([`rebuild_projections`]) for
//! every room.

use crate::store::{RoomProjection, StoreError, Stores};
use domain::RoomState;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::task::AbortHandle;

/// How long one background catch-up may take.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(60);

/// Background catch-ups, at most one per room at a time, stopped with
/// [`CatchUps::stop`] when the server stops. They run on the runtime given
/// (the server's), wherever they are started from: the writers, which
/// start them, have threads of their own.
#[derive(Clone)]
pub struct CatchUps {
    rooms: Arc<Mutex<HashMap<String, AbortHandle>>>,
    runtime: tokio::runtime::Handle,
}

impl CatchUps {
    /// An empty set, whose catch-ups run on `runtime`.
    pub fn new(runtime: tokio::runtime::Handle) -> Self {
        CatchUps {
            rooms: Arc::default(),
            runtime,
        }
    }

    /// Catches `room`'s projection up in the background, unless that is
    /// under way already.
    pub fn start(&self, stores: &Stores, room: &str) {
        // Held while the task is spawned and noted: the task takes it to
        // remove itself, so it never does so before it is noted.
        let mut rooms = self.rooms.lock().unwrap_or_else(PoisonError::into_inner);
        if rooms.contains_key(room) {
            return;
        }
        let (stores, name, all) = (stores.clone(), room.to_owned(), self.rooms.clone());
        let task = self.runtime.spawn(async move {
            match tokio::time::timeout(CATCH_UP_TIMEOUT, catch_up(&stores, &name)).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "a projection catch-up failed; the next read or start tries again")
                }
                Err(_) => tracing::warn!(
                    "a projection catch-up timed out; the next read or start tries again"
                ),
            }
            all.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&name);
        });
        rooms.insert(room.to_owned(), task.abort_handle());
    }

    /// Stops every catch-up under way (the next start does them again).
    pub fn stop(&self) {
        let mut rooms = self.rooms.lock().unwrap_or_else(PoisonError::into_inner);
        for (_, task) in rooms.drain() {
            task.abort();
        }
    }
}

/// A room's state replayed from all its events.
async fn replay(stores: &Stores, room: &str) -> Result<(RoomState, u64), StoreError> {
    let mut state = RoomState::new();
    let mut events_read = 0;
    loop {
        let (events, _) = stores.events.events(room, state.last_seq(), 5000).await?;
        if events.is_empty() {
            return Ok((state, events_read));
        }
        events_read += events.len() as u64;
        state
            .apply_all(events)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    }
}

/// Brings `room`'s projection up to its events if it lags them: the whole
/// projection written again from the replay (conditional on the stored one
/// not being past it, so that racing writers never move it back). Whether
/// it was behind.
/// Another writer catching the same room up (a conflict) is waited for and
/// looked at again, this many times at most.
const CATCH_UP_ATTEMPTS: u32 = 20;

/// Brings `room`'s projection up to its events if it lags them: the whole
/// projection written again from the replay (conditional on the stored one
/// not being past it, so that racing writers never move it back). Whether
/// this call wrote it.
pub async fn catch_up(stores: &Stores, room: &str) -> Result<bool, StoreError> {
    let mut attempt = 1;
    loop {
        let Some(record) = stores.events.room(room).await? else {
            return Ok(false);
        };
        let at = stores.views.projected(&[room.to_owned()]).await?;
        if at.get(room).copied().unwrap_or(0) >= record.last_seq {
            return Ok(false);
        }
        let (state, _) = replay(stores, room).await?;
        let written = stores
            .views
            .replace_projection(room, RoomProjection::of(&state), state.last_seq())
            .await;
        match written {
            Ok(wrote) => {
                if wrote {
                    tracing::info!(
                        room_events = state.last_seq(),
                        "a projection that lagged its events was caught up"
                    );
                }
                return Ok(wrote);
            }
            Err(StoreError::Conflict(_)) if attempt < CATCH_UP_ATTEMPTS => {
                attempt += 1;
                let pause = 5 + rand::random::<u64>() % 20;
                tokio::time::sleep(Duration::from_millis(pause)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Catches up every room whose projection lags its events; how many did.
pub async fn catch_up_all(stores: &Stores) -> Result<usize, StoreError> {
    let mut caught_up = 0;
    let mut after: Option<(i64, String)> = None;
    loop {
        let page = stores
            .views
            .room_list("", after.as_ref().map(|(t, id)| (*t, id.as_str())), 500)
            .await?;
        let Some((last, _)) = page.last() else {
            return Ok(caught_up);
        };
        after = Some((last.created_at.as_millis(), last.room_id.clone()));
        let ids: Vec<String> = page.iter().map(|(r, _)| r.room_id.clone()).collect();
        let at = stores.views.projected(&ids).await?;
        for (room, _) in &page {
            if at.get(&room.room_id).copied().unwrap_or(0) < room.last_seq
                && catch_up(stores, &room.room_id).await?
            {
                caught_up += 1;
            }
        }
    }
}

/// What a rebuild went through.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Rebuilt {
    pub rooms: usize,
    pub events: u64,
}

/// Rebuilds the projection of every room, a page of rooms at a time.
pub async fn rebuild_projections(stores: &Stores) -> Result<Rebuilt, StoreError> {
    let mut done = Rebuilt::default();
    let mut after: Option<(i64, String)> = None;
    loop {
        let page = stores
            .views
            .room_list("", after.as_ref().map(|(t, id)| (*t, id.as_str())), 100)
            .await?;
        let Some((last, _)) = page.last() else {
            return Ok(done);
        };
        after = Some((last.created_at.as_millis(), last.room_id.clone()));
        for (room, _) in &page {
            let (state, events) = replay(stores, &room.room_id).await?;
            done.events += events;
            stores
                .views
                .replace_projection(&room.room_id, RoomProjection::of(&state), state.last_seq())
                .await?;
            done.rooms += 1;
        }
    }
}
