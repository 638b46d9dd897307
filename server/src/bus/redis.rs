//! The bus between server instances: Redis pub/sub. Each instance delivers
//! its own events to its own subscribers at once ([`LocalBus`]), publishes
//! them on Redis, and feeds the events and logouts that other instances
//! publish to its subscribers.
//!
//! Pub/sub is at most once, and so is this bus: a publish is dropped when
//! Redis is down or its queue is full, and nothing that happened while the
//! subscription was down is replayed. That is what the seq order is for: a
//! socket that sees a gap catches up from the store before it delivers
//! anything newer, and `crate::backstop` finds the events that were the last
//! of their room. Both connections come back by themselves when Redis does.
//!
//! Channels: `chat:room:{roomId}` for a room's events (every instance
//! subscribes to the pattern `chat:room:*`), `chat:logout` for logouts. A
//! message is the id of the instance that sent it, a space, and the event's
//! JSON (or the logged-out token's hash); an instance skips its own.

use super::{Bus, LocalBus, Subscription};
use ::redis::aio::{MultiplexedConnection, PubSub};
use ::redis::{AsyncConnectionConfig, Client, Msg};
use domain::ChatEvent;
use futures_util::StreamExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::timeout;
use uuid::Uuid;

/// How long connecting to Redis, or one command, may take.
const REDIS_TIMEOUT: Duration = Duration::from_secs(1);
/// Publishes waiting for Redis; past that they are dropped (the backstop
/// and the sockets' catch-up cover them).
const OUTBOX: usize = 16 * 1024;
/// Publishes sent to Redis in one round trip at most.
const PIPELINE: usize = 512;
/// How often the subscription checks that Redis still answers (a dead peer
/// does not always close the connection).
const PING_EVERY: Duration = Duration::from_secs(5);
/// Waits between attempts to reach Redis again.
const RETRY_MIN: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(2);

const ROOM_PREFIX: &str = "chat:room:";
const ROOM_PATTERN: &str = "chat:room:*";
const LOGOUT_CHANNEL: &str = "chat:logout";

/// Something to publish.
enum Outgoing {
    Event(Arc<ChatEvent>),
    Logout(String),
}

/// Whether each of the two connections is up, and whether publishes are
/// being dropped (said once, not once a publish).
#[derive(Default)]
struct Links {
    publishing: AtomicBool,
    subscribed: AtomicBool,
    dropping: AtomicBool,
}

/// Redis pub/sub in front of this instance's [`LocalBus`].
pub struct RedisBus {
    here: LocalBus,
    outbox: mpsc::Sender<Outgoing>,
    links: Arc<Links>,
    /// Dropped with the bus: the subscribing task ends (the publishing one
    /// ends with `outbox`).
    _stop: watch::Sender<()>,
    #[cfg(test)]
    tasks: [tokio::task::JoinHandle<()>; 2],
}

impl RedisBus {
    /// Starts the publishing and subscribing tasks for the Redis at `url`
    /// (which need not be up yet: they keep trying, and
    /// [`Bus::connected`] says when they are through).
    pub fn start(url: &str) -> Result<RedisBus, String> {
        let client = Client::open(url).map_err(|e| format!("REDIS_URL: {e}"))?;
        let here = LocalBus::default();
        let links = Arc::new(Links::default());
        let origin = Uuid::new_v4();
        let (outbox, queue) = mpsc::channel(OUTBOX);
        let (stop, stopped) = watch::channel(());
        let _publishing = tokio::spawn(publish_loop(client.clone(), queue, links.clone(), origin));
        let _subscribing = tokio::spawn(subscribe_loop(
            client,
            here.clone(),
            links.clone(),
            origin,
            stopped,
        ));
        Ok(RedisBus {
            here,
            outbox,
            links,
            _stop: stop,
            #[cfg(test)]
            tasks: [_publishing, _subscribing],
        })
    }

    fn send(&self, out: Outgoing) {
        if self.outbox.try_send(out).is_err() {
            if !self.links.dropping.swap(true, Ordering::Relaxed) {
                tracing::warn!("the Redis publish queue is full; publishes are dropped");
            }
        } else if self.links.dropping.load(Ordering::Relaxed) {
            self.links.dropping.store(false, Ordering::Relaxed);
        }
    }
}

impl Bus for RedisBus {
    fn kind(&self) -> &'static str {
        "redis"
    }

    fn connected(&self) -> bool {
        self.links.publishing.load(Ordering::Relaxed)
            && self.links.subscribed.load(Ordering::Relaxed)
    }

    fn publish(&self, event: Arc<ChatEvent>) {
        self.here.deliver(event.clone());
        self.send(Outgoing::Event(event));
    }

    fn subscribe(&self, room: &str) -> Subscription {
        self.here.subscribe(room)
    }

    fn logout(&self, token_hash: &str) {
        self.here.deliver_logout(token_hash.to_owned());
        self.send(Outgoing::Logout(token_hash.to_owned()));
    }

    fn logouts(&self) -> broadcast::Receiver<String> {
        self.here.logouts()
    }

    fn may_lose(&self) -> bool {
        true
    }

    fn here(&self) -> &LocalBus {
        &self.here
    }
}

fn config() -> AsyncConnectionConfig {
    AsyncConnectionConfig::new()
        .set_connection_timeout(Some(REDIS_TIMEOUT))
        .set_response_timeout(Some(REDIS_TIMEOUT))
}

/// The next wait before trying Redis again: doubled up to [`RETRY_MAX`].
fn next_retry(wait: Duration) -> Duration {
    (wait * 2).min(RETRY_MAX)
}

/// Publishes what the bus hands it, a pipeline of up to [`PIPELINE`] at a
/// time, until the bus is dropped; pings Redis when idle so that
/// [`Bus::connected`] notices it going away. While Redis cannot be reached
/// what is queued is dropped, and it tries again after a growing wait.
async fn publish_loop(
    client: Client,
    mut queue: mpsc::Receiver<Outgoing>,
    links: Arc<Links>,
    origin: Uuid,
) {
    let mut conn: Option<MultiplexedConnection> = None;
    let mut retry = RETRY_MIN;
    let mut batch = Vec::with_capacity(PIPELINE);
    loop {
        let Some(c) = conn.as_mut() else {
            match client
                .get_multiplexed_async_connection_with_config(&config())
                .await
            {
                Ok(c) => {
                    conn = Some(c);
                    links.publishing.store(true, Ordering::Relaxed);
                    tracing::info!("publishing on Redis");
                }
                Err(e) => {
                    if links.publishing.swap(false, Ordering::Relaxed) {
                        tracing::warn!(error = %e, "Redis cannot be reached; publishes are dropped until it can");
                    }
                    if queue.is_closed() {
                        return;
                    }
                    tokio::time::sleep(retry).await;
                    retry = next_retry(retry);
                    // What queued meanwhile is dropped: the subscribers
                    // catch up from the store.
                    while queue.try_recv().is_ok() {}
                }
            }
            continue;
        };
        let mut pipe = ::redis::pipe();
        tokio::select! {
            n = queue.recv_many(&mut batch, PIPELINE) => {
                if n == 0 {
                    return;
                }
                for out in batch.drain(..) {
                    match out {
                        Outgoing::Event(e) => {
                            let channel = format!("{ROOM_PREFIX}{}", e.room_id);
                            pipe.publish(channel, format!("{origin} {}", e.to_json())).ignore();
                        }
                        Outgoing::Logout(hash) => {
                            pipe.publish(LOGOUT_CHANNEL, format!("{origin} {hash}")).ignore();
                        }
                    }
                }
            }
            _ = tokio::time::sleep(PING_EVERY) => {
                pipe.cmd("PING").ignore();
            }
        }
        let failed = match timeout(REDIS_TIMEOUT, pipe.query_async::<()>(c)).await {
            Ok(Ok(())) => {
                // Waits grow again from the start only once Redis answers.
                retry = RETRY_MIN;
                continue;
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => "timed out".to_owned(),
        };
        tracing::warn!(error = %failed, "publishing on Redis failed; reconnecting");
        links.publishing.store(false, Ordering::Relaxed);
        conn = None;
    }
}

/// Subscribes to every room's channel and to logouts, and hands what other
/// instances publish to this one's subscribers, until the bus is dropped.
/// Resubscribes after a growing wait whenever the connection is lost.
async fn subscribe_loop(
    client: Client,
    here: LocalBus,
    links: Arc<Links>,
    origin: Uuid,
    mut stop: watch::Receiver<()>,
) {
    let mut retry = RETRY_MIN;
    loop {
        let connected = tokio::select! {
            c = subscription(&client) => c,
            _ = stop.changed() => return,
        };
        match connected {
            Ok(pubsub) => {
                links.subscribed.store(true, Ordering::Relaxed);
                tracing::info!("subscribed on Redis");
                let since = tokio::time::Instant::now();
                let lost = tokio::select! {
                    lost = relay(pubsub, &here, origin) => lost,
                    _ = stop.changed() => return,
                };
                // A subscription that lasted past a ping was a good one:
                // waits grow again from the start.
                if since.elapsed() > PING_EVERY {
                    retry = RETRY_MIN;
                }
                links.subscribed.store(false, Ordering::Relaxed);
                tracing::warn!(why = %lost, "the Redis subscription was lost; subscribing again");
            }
            Err(e) => {
                if links.subscribed.swap(false, Ordering::Relaxed) {
                    tracing::warn!(error = %e, "cannot subscribe on Redis");
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(retry) => {}
            _ = stop.changed() => return,
        }
        retry = next_retry(retry);
    }
}

/// A connection subscribed to every room and to logouts.
async fn subscription(client: &Client) -> Result<PubSub, String> {
    let subscribe = async {
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.psubscribe(ROOM_PATTERN).await?;
        pubsub.subscribe(LOGOUT_CHANNEL).await?;
        Ok::<_, ::redis::RedisError>(pubsub)
    };
    match timeout(2 * REDIS_TIMEOUT, subscribe).await {
        Ok(Ok(pubsub)) => Ok(pubsub),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out".into()),
    }
}

/// Hands each message to this instance's subscribers until the connection
/// is lost (or stops answering pings); says why it ended.
async fn relay(pubsub: PubSub, here: &LocalBus, origin: Uuid) -> String {
    let (mut sink, mut messages) = pubsub.split();
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    let origin = origin.to_string();
    loop {
        tokio::select! {
            msg = messages.next() => match msg {
                Some(msg) => receive(&msg, here, &origin),
                None => return "the connection closed".into(),
            },
            _ = ping.tick() => {
                match timeout(REDIS_TIMEOUT, sink.ping::<::redis::Value>()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return e.to_string(),
                    Err(_) => return "no answer to a ping".into(),
                }
            }
        }
    }
}

/// One message from Redis: an event or a logout from another instance.
fn receive(msg: &Msg, here: &LocalBus, origin: &str) {
    let Some((from, body)) = std::str::from_utf8(msg.get_payload_bytes())
        .ok()
        .and_then(|p| p.split_once(' '))
    else {
        tracing::warn!("a message on Redis that this server did not write; skipped");
        return;
    };
    if from == origin {
        return;
    }
    let channel = msg.get_channel_name();
    if channel == LOGOUT_CHANNEL {
        here.deliver_logout(body.to_owned());
        return;
    }
    // Every room's events come to every instance: decode only those of
    // rooms someone here watches.
    if !channel
        .strip_prefix(ROOM_PREFIX)
        .is_some_and(|room| here.watches(room))
    {
        return;
    }
    match ChatEvent::from_json(body.as_bytes()) {
        Ok(event) => here.deliver(Arc::new(event)),
        Err(e) => tracing::warn!(error = %e, "an event on Redis that does not decode; skipped"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// Dropping the bus ends both its tasks, even while Redis cannot be
    /// reached (they are then between attempts).
    #[tokio::test]
    async fn the_bus_tasks_end_with_the_bus() {
        let bus = RedisBus::start("redis://127.0.0.1:1").expect("a bus");
        // Let both loops meet the refused connection first.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!bus.connected());
        let RedisBus {
            tasks,
            here,
            outbox,
            links,
            _stop,
        } = bus;
        drop((here, outbox, links, _stop));
        let dropped = Instant::now();
        for task in tasks {
            let left = Duration::from_secs(10).saturating_sub(dropped.elapsed());
            tokio::time::timeout(left, task)
                .await
                .expect("the bus's tasks end within 10 s of the bus being dropped")
                .expect("the bus's tasks did not panic");
        }
    }
}
