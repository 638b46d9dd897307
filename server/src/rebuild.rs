//! `server rebuild-projections`: every room's projection (view rows, read
//! markers, the counts behind unread counts) computed again from its events,
//! the source of truth, and written in place of the stored one. Meant for a
//! store no server is writing to (appends meanwhile may be missed until the
//! next rebuild).

use crate::store::{RoomProjection, StoreError, Stores};
use domain::RoomState;

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
            let mut state = RoomState::new();
            loop {
                let (events, _) = stores
                    .events
                    .events(&room.room_id, state.last_seq(), 5000)
                    .await?;
                if events.is_empty() {
                    break;
                }
                done.events += events.len() as u64;
                state
                    .apply_all(events)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            }
            stores
                .views
                .replace_projection(&room.room_id, RoomProjection::of(&state))
                .await?;
            done.rooms += 1;
        }
    }
}
