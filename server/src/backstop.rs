//! The backstop of the live feed: about once a second the rooms this
//! instance's sockets watch are compared with the store, and where the bus
//! still has not brought an event the store already had a tick ago, the
//! room's latest event is delivered here. A socket that then sees a gap
//! catches up from the store (`routes/ws.rs`), so a lost publish costs a
//! second or two of delay, never a message. An event committed since the
//! last tick is left alone: its publish is usually on its way (the
//! appender publishes after the projection write), and delivering the
//! latest event before it would send every socket of the room to the store. Redis pub/sub loses publishes while it is down; in process, an
//! event is only missed when its commit outlived the wait for it (a timeout
//! answered 503, then the commit landed), which this covers too.

use crate::appender::STORE_TIMEOUT;
use crate::bus::{Bus, LocalBus};
use crate::metrics::Metrics;
use crate::store::{EventStore, StoreError};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How often the watched rooms are compared with the store.
pub const EVERY: Duration = Duration::from_secs(1);
/// Rooms whose last seqs are read in one query.
const ROOMS_AT_ONCE: usize = 1000;

/// Runs until `shutting_down` turns true.
pub async fn run(
    events: Arc<dyn EventStore>,
    bus: Arc<dyn Bus>,
    metrics: Arc<Metrics>,
    mut shutting_down: watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval(EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The last seqs the store had at the previous tick, of the rooms
    // watched then.
    let mut previous = HashMap::new();
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = shutting_down.wait_for(|s| *s) => return,
        }
        let checking = check(&*events, bus.here(), &metrics, &previous);
        match tokio::time::timeout(STORE_TIMEOUT, checking).await {
            Ok(Ok(lasts)) => previous = lasts,
            Ok(Err(e)) => tracing::warn!(error = %e, "the bus backstop could not read the store"),
            Err(_) => tracing::warn!("the bus backstop timed out reading the store"),
        }
    }
}

/// One comparison of the watched rooms with the store; their last seqs in
/// the store now.
async fn check(
    events: &dyn EventStore,
    here: &LocalBus,
    metrics: &Metrics,
    previous: &HashMap<String, u64>,
) -> Result<HashMap<String, u64>, StoreError> {
    let watched = here.watched();
    let mut now = HashMap::with_capacity(watched.len());
    for rooms in watched.chunks(ROOMS_AT_ONCE) {
        let names: Vec<String> = rooms.iter().map(|(room, _)| room.clone()).collect();
        let lasts = events.last_seqs(&names).await?;
        for (room, carried) in rooms {
            let Some(&last) = lasts.get(room) else {
                continue;
            };
            if missed(*carried, previous.get(room).copied()) {
                let (latest, _) = events.events(room, last - 1, 1).await?;
                for event in latest {
                    metrics.bus_backstop.inc();
                    here.deliver(Arc::new(event));
                }
            }
            now.insert(room.clone(), last);
        }
    }
    Ok(now)
}

/// Whether the bus missed an event of a room: it carried only up to
/// `carried` while the store had `was` a tick ago (None: not watched then).
fn missed(carried: u64, was: Option<u64>) -> bool {
    was.is_some_and(|was| was > carried)
}

#[cfg(test)]
mod tests {
    use super::missed;

    #[test]
    fn only_an_event_stored_a_tick_ago_and_still_not_carried_is_missed() {
        // Committed since the last tick: its publish may be on its way.
        assert!(!missed(10, None));
        assert!(!missed(10, Some(10)));
        assert!(!missed(12, Some(10)));
        // Stored a tick ago and still not here: lost.
        assert!(missed(9, Some(10)));
        assert!(missed(0, Some(1)));
    }
}
