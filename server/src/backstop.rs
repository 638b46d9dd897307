//! The backstop of the live feed: about once a second the rooms this
//! instance's sockets watch are compared with the store, and where the
//! store has a later event than the bus brought here, that latest event is
//! delivered here. A socket that then sees a gap catches up from the store
//! (`routes/ws.rs`), so a lost publish costs a second of delay, never a
//! message. Redis pub/sub loses publishes while it is down; in process, an
//! event is only missed when its commit outlived the wait for it (a timeout
//! answered 503, then the commit landed), which this covers too.

use crate::appender::STORE_TIMEOUT;
use crate::bus::{Bus, LocalBus};
use crate::metrics::Metrics;
use crate::store::{EventStore, StoreError};
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
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = shutting_down.wait_for(|s| *s) => return,
        }
        match tokio::time::timeout(STORE_TIMEOUT, check(&*events, bus.here(), &metrics)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "the bus backstop could not read the store"),
            Err(_) => tracing::warn!("the bus backstop timed out reading the store"),
        }
    }
}

/// One comparison of the watched rooms with the store.
async fn check(
    events: &dyn EventStore,
    here: &LocalBus,
    metrics: &Metrics,
) -> Result<(), StoreError> {
    let watched = here.watched();
    for rooms in watched.chunks(ROOMS_AT_ONCE) {
        let names: Vec<String> = rooms.iter().map(|(room, _)| room.clone()).collect();
        let lasts = events.last_seqs(&names).await?;
        for (room, carried) in rooms {
            let Some(&last) = lasts.get(room) else {
                continue;
            };
            if last > *carried {
                let (latest, _) = events.events(room, last - 1, 1).await?;
                for event in latest {
                    metrics.bus_backstop.inc();
                    here.deliver(Arc::new(event));
                }
            }
        }
    }
    Ok(())
}
