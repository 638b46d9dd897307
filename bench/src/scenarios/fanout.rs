//! Scenario 4: fan-out of one room to many WebSocket subscribers, against
//! a minimal axum broadcast chat. Five senders submit over WebSockets into
//! one room (a) at a fixed 100 messages/s in all and (b) at the highest
//! rate that is still delivered without loss or lag (found by doubling the
//! rate, then narrowing between the last good and the first bad step).
//! Each message carries its send time, so every subscriber measures each
//! delivery's latency; a lost, doubled or out-of-order delivery on our
//! server fails the run, the baseline's are counted.
//!
//! The helpers here (subscribers, senders, one measured phase, the CPU
//! reading) are scenario 5's too.

use crate::measure::{cpu_time, peak_rss_kib, Latency, Usage};
use crate::report::{thousands, Row};
use crate::server::Server;
use axum::extract::ws::{Message as AxumMessage, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use axum::serve::ListenerExt;
use futures_util::future::join_all;
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

/// Senders, each on a socket of its own (and a user of its own).
pub(crate) const SENDERS: usize = 5;
/// A user has at most 32 sockets open: subscribers are spread over users
/// with this many each.
pub(crate) const PER_USER: usize = 30;
/// A rate is sustained when its p99 delivery latency stays under this;
/// above it, deliveries lag behind the sends.
const LAG_LIMIT_MS: f64 = 100.0;
/// The fixed load of case (a), messages a second from all senders.
const FIXED_RATE: f64 = 100.0;
/// Sockets opened at once.
const AT_ONCE: usize = 100;
/// How long connecting a socket, one HTTP call, or sending one frame may take.
const PEER_TIMEOUT: Duration = Duration::from_secs(30);
/// Our server: how long the deliveries (or acks) may make no progress at
/// all before the run fails as stuck.
const STUCK: Duration = Duration::from_secs(15);
/// The baseline: how long without a new delivery ends the wait (it may
/// have lost what is missing).
const QUIET: Duration = Duration::from_secs(1);
/// The rest of each message's content, to a typical length.
const FILLER: &str = "a benchmark message of a typical length";
/// The baseline's threads, by name (their CPU time is read apart).
const BASELINE_THREADS: &str = "fanout-baseline";

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Which chat a load runs against: ours checks every delivery's seq and
/// acknowledges every submit; the baseline does neither.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    Ours,
    Baseline,
}

/// Nanoseconds since this process's first call: the send times in the
/// messages, read by the subscribers of the same process.
fn now_ns() -> u64 {
    static ANCHOR: OnceLock<Instant> = OnceLock::new();
    ANCHOR.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// A server frame, as much of it as the load generator reads.
#[derive(Deserialize)]
struct Frame<'a> {
    #[serde(rename = "type", borrow)]
    kind: &'a str,
    #[serde(borrow)]
    event: Option<Body<'a>>,
}

#[derive(Deserialize)]
struct Body<'a> {
    seq: Option<u64>,
    #[serde(borrow)]
    content: Option<&'a str>,
}

/// What a message's content says: phase, sender, its number within the
/// phase, its send time ([`now_ns`]).
fn stamp(content: &str) -> Option<(u32, usize, u64, u64)> {
    let mut parts = content.splitn(5, ' ');
    Some((
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
    ))
}

/// A message of a phase as one number: its sender and its number.
fn key(sender: usize, n: u64) -> u32 {
    ((sender as u32) << 28) | (n as u32 & 0x0fff_ffff)
}

/// Microseconds from a send time to now, for the latency lists.
fn since_us(sent_ns: u64, now: u64) -> u32 {
    (now.saturating_sub(sent_ns) / 1000).min(u64::from(u32::MAX)) as u32
}

/// Waits on a peer, at most [`PEER_TIMEOUT`].
pub(crate) async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    timeout(PEER_TIMEOUT, f)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {PEER_TIMEOUT:?}"))
}

/// Signs up `n` users named `{prefix}{i}` (a few at a time: argon2 is
/// slow on purpose); their tokens.
pub(crate) async fn users(server: &Server, prefix: &str, n: usize) -> Vec<String> {
    let mut tokens = Vec::with_capacity(n);
    let all: Vec<usize> = (0..n).collect();
    for chunk in all.chunks(4) {
        let signing = chunk.iter().map(|i| async move {
            within("a sign-up", server.user(&format!("{prefix}{i}"))).await
        });
        tokens.extend(join_all(signing).await);
    }
    tokens
}

/// Opens a WebSocket (Nagle off, as a chat client would), within [`PEER_TIMEOUT`].
async fn connect(url: &str) -> Ws {
    let connecting =
        tokio_tungstenite::connect_async_with_config(url, Some(super::ws_client_config()), true);
    match within("a WebSocket connect", connecting).await {
        Ok((ws, _)) => ws,
        Err(e) => panic!("a WebSocket opens ({url}): {e}"),
    }
}

/// Opens all of `urls`, [`AT_ONCE`] at a time.
async fn connect_all(urls: &[String]) -> Vec<Ws> {
    let mut open = Vec::with_capacity(urls.len());
    for chunk in urls.chunks(AT_ONCE) {
        open.extend(join_all(chunk.iter().map(|u| connect(u))).await);
    }
    open
}

/// What one subscriber saw in the current phase.
#[derive(Default)]
struct Tally {
    phase: u32,
    /// Deliveries of this phase's messages, each counted once.
    unique: u64,
    /// Deliveries of a message already seen (or older than one seen) from
    /// the same sender.
    dups: u64,
    /// Deliveries of an earlier phase's messages (late after its wait).
    stale: u64,
    /// The highest message number seen from each sender in this phase.
    highest: [Option<u64>; SENDERS],
    latencies_us: Vec<u32>,
    /// Which message each latency is of ([`key`]).
    keys: Vec<u32>,
    last_arrival_ns: u64,
    /// Ours: the seq the next event must have (kept across phases).
    next_seq: Option<u64>,
    /// The first correctness fault: a seq out of order, a frame that is no
    /// event, the socket ending.
    fault: Option<String>,
    ended: bool,
}

impl Tally {
    fn begin(&mut self, phase: u32) {
        self.phase = phase;
        self.unique = 0;
        self.dups = 0;
        self.stale = 0;
        self.highest = [None; SENDERS];
        self.latencies_us = Vec::new();
        self.keys = Vec::new();
        self.last_arrival_ns = 0;
    }

    fn fault(&mut self, why: String) {
        self.fault.get_or_insert(why);
    }

    /// One text frame, arrived at `now`.
    fn frame(&mut self, kind: Kind, text: &str, now: u64) {
        let Ok(frame) = serde_json::from_str::<Frame>(text) else {
            return self.fault(format!("a frame that is not JSON: {text}"));
        };
        if kind == Kind::Ours && frame.kind != "event" {
            return self.fault(format!("a subscriber got a frame that is no event: {text}"));
        }
        let Some(body) = frame.event else {
            return self.fault(format!("a frame without an event: {text}"));
        };
        if let (Some(next), Some(seq)) = (self.next_seq, body.seq) {
            if seq != next {
                self.fault(format!("seq {seq} delivered where {next} was next"));
            }
            self.next_seq = Some(seq + 1);
        } else if kind == Kind::Ours {
            return self.fault(format!("an event without a seq: {text}"));
        }
        let Some((phase, sender, n, sent)) = body.content.and_then(stamp) else {
            return self.fault(format!("a message without its stamp: {text}"));
        };
        if phase != self.phase || sender >= SENDERS {
            self.stale += 1;
            return;
        }
        if self.highest[sender].is_some_and(|h| n <= h) {
            self.dups += 1;
            return;
        }
        self.highest[sender] = Some(n);
        self.unique += 1;
        self.latencies_us.push(since_us(sent, now));
        self.keys.push(key(sender, n));
        self.last_arrival_ns = now;
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Sockets that only listen to a room, each counting what it gets.
pub(crate) struct Subscribers {
    kind: Kind,
    tallies: Vec<Arc<Mutex<Tally>>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Subscribers {
    /// Opens a subscriber on each of `urls`. For our server, `first_seq` is
    /// the seq the first event must have (every later one the next).
    pub(crate) async fn connect(kind: Kind, urls: &[String], first_seq: u64) -> Subscribers {
        let mut tallies = Vec::with_capacity(urls.len());
        let mut tasks = Vec::with_capacity(urls.len());
        for mut ws in connect_all(urls).await {
            let tally = Arc::new(Mutex::new(Tally {
                next_seq: (kind == Kind::Ours).then_some(first_seq),
                ..Tally::default()
            }));
            tallies.push(tally.clone());
            tasks.push(tokio::spawn(async move {
                // Aborted when the subscribers are dropped; the waits on
                // what it counts have their own timeouts.
                loop {
                    let next = ws.next().await;
                    let now = now_ns();
                    let mut t = lock(&tally);
                    match next {
                        Some(Ok(Message::Text(text))) => t.frame(kind, &text, now),
                        Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                        Some(Ok(Message::Binary(_))) => t.fault("a binary frame".into()),
                        Some(Ok(Message::Close(c))) => {
                            t.fault(format!("the server closed a subscriber: {c:?}"));
                            t.ended = true;
                            return;
                        }
                        Some(Err(e)) => {
                            t.fault(format!("a subscriber's socket failed: {e}"));
                            t.ended = true;
                            return;
                        }
                        None => {
                            t.fault("a subscriber's socket ended".into());
                            t.ended = true;
                            return;
                        }
                    }
                }
            }));
        }
        Subscribers {
            kind,
            tallies,
            tasks,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.tallies.len()
    }

    fn begin(&self, phase: u32) {
        for t in &self.tallies {
            lock(t).begin(phase);
        }
    }

    /// Deliveries of this phase so far, and the first fault if any.
    fn progress(&self) -> (u64, Option<String>) {
        let mut unique = 0;
        let mut fault = None;
        for t in &self.tallies {
            let t = lock(t);
            unique += t.unique;
            if fault.is_none() {
                fault.clone_from(&t.fault);
            }
        }
        (unique, fault)
    }
}

impl Drop for Subscribers {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// What the senders' sockets saw: acks (ours), and their latency.
#[derive(Default)]
struct SenderTally {
    acked: AtomicU64,
    /// Each sender's acks of the current phase: the latency of message n
    /// at [n] (`u32::MAX` where none came).
    ack_us: Mutex<[Vec<u32>; SENDERS]>,
    fault: Mutex<Option<String>>,
}

/// [`SENDERS`] sockets that submit messages into the room at a given rate.
/// On our server each reads its acks (and the room's events, as a client
/// does); on the baseline each reads and drops the broadcast.
pub(crate) struct Senders {
    kind: Kind,
    sinks: Vec<SplitSink<Ws, Message>>,
    tally: Arc<SenderTally>,
    readers: Vec<JoinHandle<()>>,
    sent: u64,
    /// When the next phase's first message goes out, if not at once.
    start_at: Option<tokio::time::Instant>,
}

impl Senders {
    pub(crate) async fn connect(kind: Kind, urls: &[String]) -> Senders {
        assert_eq!(urls.len(), SENDERS, "a URL for each sender");
        let tally = Arc::new(SenderTally::default());
        let mut sinks = Vec::new();
        let mut readers = Vec::new();
        for ws in connect_all(urls).await {
            let (sink, mut stream) = ws.split();
            sinks.push(sink);
            let tally = tally.clone();
            readers.push(tokio::spawn(async move {
                let fault = |why: String| {
                    lock(&tally.fault).get_or_insert(why);
                };
                loop {
                    let text = match stream.next().await {
                        Some(Ok(Message::Text(text))) => text,
                        Some(Ok(Message::Close(c))) => {
                            return fault(format!("the server closed a sender: {c:?}"))
                        }
                        Some(Ok(_)) => continue,
                        Some(Err(e)) => return fault(format!("a sender's socket failed: {e}")),
                        None => return fault("a sender's socket ended".into()),
                    };
                    if kind == Kind::Baseline {
                        continue;
                    }
                    let now = now_ns();
                    match serde_json::from_str::<Frame>(&text) {
                        Ok(f) if f.kind == "ack" => {
                            let stamp = f.event.and_then(|e| e.content).and_then(stamp);
                            if let Some((_, s, n, sent)) = stamp.filter(|m| m.1 < SENDERS) {
                                let acks = &mut lock(&tally.ack_us)[s];
                                let n = n as usize;
                                if acks.len() <= n {
                                    acks.resize(n + 1, u32::MAX);
                                }
                                acks[n] = since_us(sent, now);
                            }
                            tally.acked.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(f) if f.kind == "event" => {}
                        _ => fault(format!("a submit was refused: {text}")),
                    }
                }
            }));
        }
        Senders {
            kind,
            sinks,
            tally,
            readers,
            sent: 0,
            start_at: None,
        }
    }

    /// The next phase's first message goes out at `at` (not when the phase
    /// starts): two sets of senders whose phases run at once keep to one
    /// timeline.
    pub(crate) fn start_next_phase_at(&mut self, at: tokio::time::Instant) {
        self.start_at = Some(at);
    }

    /// Sends `rate × time` messages of `phase` in all, evenly spaced (each
    /// sender its share, the senders staggered); when they took place: the
    /// first and the last send.
    async fn send(&mut self, phase: u32, rate: f64, time: Duration) -> (Instant, Instant) {
        let each = ((rate * time.as_secs_f64()) / SENDERS as f64)
            .round()
            .max(1.0) as u64;
        let gap = Duration::from_secs_f64(SENDERS as f64 / rate);
        let start = self
            .start_at
            .take()
            .unwrap_or_else(tokio::time::Instant::now);
        let sending = self.sinks.iter_mut().enumerate().map(|(s, sink)| async move {
            let offset = gap.mul_f64(s as f64 / SENDERS as f64);
            for n in 0..each {
                tokio::time::sleep_until(start + offset + gap.mul_f64(n as f64)).await;
                let content = format!("{phase} {s} {n} {} {FILLER}", now_ns());
                let frame = format!(
                    r#"{{"type":"submit","event":{{"eventId":"{}","eventType":"MESSAGE_SENT","content":"{content}"}}}}"#,
                    Uuid::new_v4()
                );
                within("a sender's submit", sink.send(Message::text(frame)))
                    .await
                    .expect("a submit is sent");
            }
        });
        join_all(sending).await;
        self.sent += each * SENDERS as u64;
        (start.into_std(), Instant::now())
    }

    fn fault(&self) -> Option<String> {
        lock(&self.tally.fault).clone()
    }

    /// Our server: waits until every submit so far is acknowledged.
    async fn wait_acked(&self) {
        if self.kind == Kind::Baseline {
            return;
        }
        let mut last = (0, Instant::now());
        loop {
            if let Some(f) = self.fault() {
                panic!("{f}");
            }
            let acked = self.tally.acked.load(Ordering::Relaxed);
            if acked >= self.sent {
                return;
            }
            if acked > last.0 {
                last = (acked, Instant::now());
            }
            assert!(
                last.1.elapsed() < STUCK,
                "acks stuck: {acked} of {} submits acknowledged, none for {STUCK:?}",
                self.sent
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for Senders {
    fn drop(&mut self) {
        for r in &self.readers {
            r.abort();
        }
    }
}

/// Whose CPU time is the server's: our server's instances (processes), or
/// this process's threads of a name (the in-process baseline).
pub(crate) enum Watch<'a> {
    Servers(Vec<&'a Server>),
    Threads(&'static str),
}

/// Counters of our server read before and after a phase: resyncs of
/// sockets from the store, and events the backstop delivered.
const COUNTERS: [&str; 2] = [
    "chat_ws_resyncs_total",
    "chat_bus_backstop_deliveries_total",
];

impl Watch<'_> {
    fn server_cpu(&self) -> Duration {
        match self {
            Watch::Servers(servers) => servers.iter().map(|s| cpu_time(s.pid())).sum(),
            Watch::Threads(name) => threads_cpu(name),
        }
    }

    /// [`COUNTERS`], summed over the instances.
    async fn counters(&self) -> [f64; 2] {
        let mut sums = [0.0; 2];
        if let Watch::Servers(servers) = self {
            for s in servers {
                for (sum, name) in sums.iter_mut().zip(COUNTERS) {
                    *sum += within("/metrics", s.metric(name)).await;
                }
            }
        }
        sums
    }

    /// Measures from now; [`Gauge::stop`] gives the [`Usage`] and the
    /// counters' increase.
    async fn start(&self) -> Gauge<'_, '_> {
        Gauge {
            counters: self.counters().await,
            watch: self,
            started: Instant::now(),
            server: self.server_cpu(),
            all: cpu_time(std::process::id()),
        }
    }
}

/// The CPU time of this process's threads named `name`.
fn threads_cpu(name: &str) -> Duration {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Duration::ZERO;
    };
    tasks
        .filter_map(Result::ok)
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim_end() == name)
        })
        .map(|t| {
            let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
            // utime and stime, the 14th and 15th fields, after the name in
            // parentheses; in USER_HZ, 100 a second.
            let rest = stat.rsplit_once(") ").map_or("", |(_, r)| r);
            let ticks: u64 = rest
                .split_whitespace()
                .skip(11)
                .take(2)
                .filter_map(|f| f.parse::<u64>().ok())
                .sum();
            Duration::from_millis(ticks * 10)
        })
        .sum()
}

struct Gauge<'w, 's> {
    watch: &'w Watch<'s>,
    counters: [f64; 2],
    started: Instant,
    server: Duration,
    all: Duration,
}

impl Gauge<'_, '_> {
    async fn stop(self) -> (Usage, [f64; 2]) {
        let server = self.watch.server_cpu().saturating_sub(self.server);
        let all = cpu_time(std::process::id()).saturating_sub(self.all);
        let wall_s = self.started.elapsed().as_secs_f64();
        let mib = |kib: u64| kib as f64 / 1024.0;
        let (server_peak, generator) = match self.watch {
            Watch::Servers(servers) => (servers.iter().map(|s| peak_rss_kib(s.pid())).sum(), all),
            // In-process: the memory is not told apart (0 here); the
            // generator's CPU is the rest of the process's.
            Watch::Threads(_) => (0, all.saturating_sub(server)),
        };
        let usage = Usage {
            wall_s,
            server_cpu_s: server.as_secs_f64(),
            generator_cpu_s: generator.as_secs_f64(),
            server_peak_rss_mib: mib(server_peak),
            generator_peak_rss_mib: mib(peak_rss_kib(std::process::id())),
        };
        let after = self.watch.counters().await;
        (
            usage,
            [after[0] - self.counters[0], after[1] - self.counters[1]],
        )
    }
}

/// What one phase measured.
#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct Outcome {
    /// The rate asked for, messages/s from all senders.
    pub rate: f64,
    pub sent: u64,
    /// The rate the senders kept.
    pub send_rate: f64,
    pub subscribers: usize,
    /// Deliveries to subscribers, each message to each subscriber once.
    pub delivered: u64,
    /// Deliveries per second, from the first send to the last delivery.
    pub delivered_per_s: f64,
    pub lost: u64,
    pub duplicated: u64,
    /// Deliveries of an earlier phase's messages, after its wait ended.
    pub late: u64,
    /// Subscribers whose socket ended.
    pub ended: usize,
    /// From the send to each subscriber's arrival.
    pub latency: Latency,
    /// Ours: from the send to the sender's ack (the durable append).
    pub ack: Latency,
    /// Ours: each delivery's latency less its message's ack latency: what
    /// the fan-out adds after the append (0 when the event came first).
    pub after_ack: Latency,
    pub usage: Usage,
    /// Ours: sockets that fell behind the live feed and caught up from the
    /// store; events the backstop delivered (summed over the instances).
    pub resyncs: f64,
    pub backstop: f64,
    /// Every delivery's latency in µs (scenario 5 pools phases).
    #[serde(skip)]
    pub latencies_us: Vec<u32>,
    #[serde(skip)]
    pub after_ack_us: Vec<u32>,
}

impl Outcome {
    /// Every message reached every subscriber once, the senders kept the
    /// rate, and deliveries did not lag.
    fn sustained(&self) -> bool {
        self.send_rate >= 0.95 * self.rate
            && self.lost == 0
            && self.duplicated == 0
            && self.ended == 0
            && self.latency.p99_ms <= LAG_LIMIT_MS
    }

    /// Why not [`Outcome::sustained`], for the notes.
    fn verdict(&self) -> String {
        let mut why = Vec::new();
        if self.send_rate < 0.95 * self.rate {
            why.push(format!("sent {:.0}/s", self.send_rate));
        }
        if self.lost > 0 || self.duplicated > 0 || self.ended > 0 {
            why.push(format!(
                "{} lost, {} dup, {} sockets ended",
                thousands(self.lost as f64),
                self.duplicated,
                self.ended
            ));
        }
        if self.latency.p99_ms > LAG_LIMIT_MS {
            why.push(format!("p99 {:.0} ms", self.latency.p99_ms));
        }
        let mut counters = String::new();
        if self.resyncs > 0.0 || self.backstop > 0.0 {
            counters = format!(" [{} resyncs, {} backstop]", self.resyncs, self.backstop);
        }
        if why.is_empty() {
            format!("{} ok{counters}", thousands(self.rate))
        } else {
            format!("{} no ({}){counters}", thousands(self.rate), why.join(", "))
        }
    }
}

/// One measured phase: the senders send `rate × time` messages, then the
/// wait until every subscriber has every one (ours: the run fails when
/// that makes no progress for [`STUCK`], or on any fault; the baseline:
/// the wait ends after [`QUIET`] without a delivery, and what is missing
/// is lost).
pub(crate) async fn phase(
    subs: &Subscribers,
    senders: &mut Senders,
    watch: &Watch<'_>,
    id: u32,
    rate: f64,
    time: Duration,
) -> Outcome {
    let strict = subs.kind == Kind::Ours;
    subs.begin(id);
    *lock(&senders.tally.ack_us) = Default::default();
    let sent_before = senders.sent;
    let gauge = watch.start().await;
    let first_ns = now_ns();
    let (first, last_send) = senders.send(id, rate, time).await;
    let sent = senders.sent - sent_before;
    senders.wait_acked().await;
    let expected = sent * subs.len() as u64;
    let mut last = (0, Instant::now());
    loop {
        let (unique, fault) = subs.progress();
        if strict {
            if let Some(f) = fault.or_else(|| senders.fault()) {
                panic!("fan-out: {f}");
            }
        }
        if unique >= expected {
            break;
        }
        if unique > last.0 {
            last = (unique, Instant::now());
        } else if strict {
            assert!(
                last.1.elapsed() < STUCK,
                "fan-out stuck: {unique} of {expected} deliveries, none for {STUCK:?}"
            );
        } else if last.1.elapsed() >= QUIET {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (usage, [resyncs, backstop]) = gauge.stop().await;
    let mut out = Outcome {
        rate,
        sent,
        send_rate: sent as f64 / (last_send - first).as_secs_f64().max(1e-3),
        subscribers: subs.len(),
        resyncs,
        backstop,
        ..Outcome::default()
    };
    let mut last_arrival = first_ns;
    let mut keys = Vec::new();
    for t in &subs.tallies {
        let mut t = lock(t);
        out.delivered += t.unique;
        out.duplicated += t.dups;
        out.late += t.stale;
        out.ended += usize::from(t.ended);
        last_arrival = last_arrival.max(t.last_arrival_ns);
        out.latencies_us.append(&mut t.latencies_us);
        keys.append(&mut t.keys);
    }
    out.lost = expected.saturating_sub(out.delivered);
    if strict {
        assert!(
            out.lost == 0 && out.duplicated == 0 && out.ended == 0,
            "fan-out: {} lost, {} duplicated, {} subscribers ended",
            out.lost,
            out.duplicated,
            out.ended
        );
    }
    out.delivered_per_s = out.delivered as f64 / ((last_arrival - first_ns) as f64 / 1e9).max(1e-3);
    out.latency = latency_of(&out.latencies_us);
    let acks = lock(&senders.tally.ack_us);
    let all: Vec<u32> = acks
        .iter()
        .flatten()
        .copied()
        .filter(|&a| a != u32::MAX)
        .collect();
    out.ack = latency_of(&all);
    out.after_ack_us = keys
        .iter()
        .zip(&out.latencies_us)
        .filter_map(|(&k, &l)| {
            let ack = *acks[(k >> 28) as usize].get((k & 0x0fff_ffff) as usize)?;
            (ack != u32::MAX).then(|| l.saturating_sub(ack))
        })
        .collect();
    out.after_ack = latency_of(&out.after_ack_us);
    out.usage = usage;
    out
}

pub(crate) fn latency_of(us: &[u32]) -> Latency {
    Latency::of(
        us.iter()
            .map(|&u| Duration::from_micros(u64::from(u)))
            .collect(),
    )
}

/// The minimal broadcast chat of axum's own example, on a runtime of its
/// own (2 worker threads, as the server's on this machine, named
/// [`BASELINE_THREADS`] so that their CPU time is read apart) in this
/// process, on a free loopback port; stopped when dropped.
struct Baseline {
    port: u16,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Baseline {
    fn start() -> Baseline {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let port = listener.local_addr().expect("its address").port();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(BASELINE_THREADS.into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name(BASELINE_THREADS)
                    .enable_all()
                    .build()
                    .expect("the baseline's runtime");
                rt.block_on(async move {
                    // Nagle off, as our server has it (axum's documented way).
                    let listener = tokio::net::TcpListener::from_std(listener)
                        .expect("the listener")
                        .tap_io(|tcp| {
                            let _ = tcp.set_nodelay(true);
                        });
                    let app = axum::Router::new()
                        .route("/ws", axum::routing::get(baseline_ws))
                        .with_state(broadcast::channel::<Utf8Bytes>(1024).0);
                    tokio::select! {
                        served = axum::serve(listener, app) => served.expect("the baseline serves"),
                        _ = stopped => {}
                    }
                });
                rt.shutdown_background();
            })
            .expect("the baseline's thread");
        Baseline {
            port,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("ws://127.0.0.1:{}/ws", self.port)
    }
}

impl Drop for Baseline {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// axum's chat example, minus the user names: every text a socket sends
/// goes to the broadcast channel, and every socket gets everything on the
/// channel. The channel holds 1,024 messages (our server's per-room
/// buffer); a receiver that falls further behind skips what it missed.
async fn baseline_ws(
    ws: WebSocketUpgrade,
    State(tx): State<broadcast::Sender<Utf8Bytes>>,
) -> Response {
    ws.on_upgrade(move |socket: WebSocket| async move {
        let (mut sink, mut stream) = socket.split();
        let mut rx = tx.subscribe();
        let mut send_task = tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(text) => {
                        if sink.send(AxumMessage::Text(text)).await.is_err() {
                            break;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        });
        let mut recv_task = tokio::spawn(async move {
            while let Some(Ok(msg)) = stream.next().await {
                match msg {
                    AxumMessage::Text(text) => {
                        let _ = tx.send(text);
                    }
                    AxumMessage::Close(_) => break,
                    _ => {}
                }
            }
        });
        tokio::select! {
            _ = &mut send_task => recv_task.abort(),
            _ = &mut recv_task => send_task.abort(),
        }
    })
}

/// How long the phases take.
struct Plan {
    /// Each round at the fixed rate, per chat.
    round: Duration,
    step: Duration,
    /// The search for the highest rate stops starting steps after this.
    budget: Duration,
}

/// Rounds at the fixed rate per chat, the two chats alternating.
const ROUNDS: usize = 3;

/// One chat under load: its subscribers, senders, whose CPU is its
/// server's, and the id of its next phase.
struct Chat<'w> {
    subs: Subscribers,
    senders: Senders,
    watch: Watch<'w>,
    next: u32,
}

impl Chat<'_> {
    async fn phase(&mut self, rate: f64, time: Duration) -> Outcome {
        self.next += 1;
        phase(
            &self.subs,
            &mut self.senders,
            &self.watch,
            self.next,
            rate,
            time,
        )
        .await
    }

    /// The search for the highest sustained rate, from the fixed rate's
    /// outcome: the best outcome, and each step's verdict.
    async fn search(&mut self, fixed: &Outcome, plan: &Plan) -> (Option<Outcome>, Vec<String>) {
        let mut steps = vec![fixed.verdict()];
        let mut good = fixed.sustained().then(|| fixed.clone());
        let mut bad: Option<f64> = (!fixed.sustained()).then_some(FIXED_RATE);
        let started = Instant::now();
        let mut narrowings = 0;
        while started.elapsed() < plan.budget && narrowings < 3 {
            let rate = match (&good, bad) {
                (Some(g), None) => g.rate * 2.0,
                (None, Some(b)) if b > 10.0 => b / 2.0,
                (Some(g), Some(b)) => {
                    narrowings += 1;
                    (g.rate * b).sqrt().round()
                }
                _ => break,
            };
            let out = self.phase(rate, plan.step).await;
            steps.push(out.verdict());
            if out.sustained() {
                good = Some(out);
            } else {
                bad = Some(rate);
            }
        }
        (good, steps)
    }
}

/// Phases at one rate as one: their latencies pooled, the counts and the
/// CPU time added up, the acks of the worst round (by p99).
pub(crate) fn pool(outs: &[Outcome]) -> Outcome {
    let mut all = Outcome {
        rate: outs.first().map_or(0.0, |o| o.rate),
        send_rate: outs
            .iter()
            .map(|o| o.send_rate)
            .fold(f64::INFINITY, f64::min),
        subscribers: outs.first().map_or(0, |o| o.subscribers),
        ..Outcome::default()
    };
    let mut acks = Vec::new();
    let mut usage = Usage::default();
    // The time from each phase's first send to its last delivery.
    let mut spans = 0.0;
    for o in outs {
        all.sent += o.sent;
        all.delivered += o.delivered;
        all.lost += o.lost;
        all.duplicated += o.duplicated;
        all.late += o.late;
        all.ended = all.ended.max(o.ended);
        spans += o.delivered as f64 / o.delivered_per_s.max(1e-9);
        all.latencies_us.extend_from_slice(&o.latencies_us);
        all.after_ack_us.extend_from_slice(&o.after_ack_us);
        all.resyncs += o.resyncs;
        all.backstop += o.backstop;
        acks.push(o.ack);
        usage.wall_s += o.usage.wall_s;
        usage.server_cpu_s += o.usage.server_cpu_s;
        usage.generator_cpu_s += o.usage.generator_cpu_s;
        usage.server_peak_rss_mib = usage.server_peak_rss_mib.max(o.usage.server_peak_rss_mib);
        usage.generator_peak_rss_mib = usage
            .generator_peak_rss_mib
            .max(o.usage.generator_peak_rss_mib);
    }
    all.latency = latency_of(&all.latencies_us);
    all.after_ack = latency_of(&all.after_ack_us);
    all.delivered_per_s = all.delivered as f64 / spans.max(1e-3);
    all.ack = acks
        .into_iter()
        .max_by(|x, y| x.p99_ms.total_cmp(&y.p99_ms))
        .unwrap_or_default();
    all.usage = usage;
    all
}

/// Both chats are set up side by side, and their rounds at the fixed rate
/// alternate (each going first in turn), so that the p99s compared come
/// from the same minutes: the machine drifts, and one chat's search for
/// its highest rate takes a minute or more. The searches follow, ours
/// first. An idle chat costs next to nothing meanwhile: its sockets wait
/// (ours answer our server's ping every 30 s, on the generator's CPU).
pub async fn run(bin: &Path, subscribers: usize) -> Vec<Row> {
    let plan = if subscribers >= 1000 {
        Plan {
            round: Duration::from_secs(5),
            step: Duration::from_secs(3),
            budget: Duration::from_secs(60),
        }
    } else {
        Plan {
            round: Duration::from_secs(2),
            step: Duration::from_secs(2),
            budget: Duration::from_secs(16),
        }
    };

    let started = Instant::now();
    let server = Server::start(
        bin,
        &[
            ("MAX_CONNECTIONS", (subscribers + 200).to_string()),
            ("SIGN_UPS_PER_MINUTE", "0".into()),
            ("SIGN_INS_PER_MINUTE", "0".into()),
        ],
    )
    .await;
    let mut ours = {
        let senders = users(&server, "sender", SENDERS).await;
        let listeners = users(&server, "listener", subscribers.div_ceil(PER_USER)).await;
        within("a room", server.room(&senders[0], "fanout")).await;
        let url =
            |token: &str| server.ws_url(&format!("/api/rooms/fanout/ws?afterSeq=1&token={token}"));
        let sub_urls: Vec<String> = (0..subscribers)
            .map(|k| url(&listeners[k / PER_USER]))
            .collect();
        let send_urls: Vec<String> = senders.iter().map(|t| url(t)).collect();
        Chat {
            subs: Subscribers::connect(Kind::Ours, &sub_urls, 2).await,
            senders: Senders::connect(Kind::Ours, &send_urls).await,
            watch: Watch::Servers(vec![&server]),
            next: 0,
        }
    };
    let baseline = Baseline::start();
    let mut base = Chat {
        subs: Subscribers::connect(Kind::Baseline, &vec![baseline.url(); subscribers], 0).await,
        senders: Senders::connect(Kind::Baseline, &vec![baseline.url(); SENDERS]).await,
        watch: Watch::Threads(BASELINE_THREADS),
        next: 0,
    };
    // Warm-ups (and, on the baseline, time for the last sockets to be
    // subscribed to the channel): not counted.
    for chat in [&mut ours, &mut base] {
        chat.phase(FIXED_RATE / 2.0, Duration::from_secs(1)).await;
    }
    let mut rounds: Vec<(Outcome, Outcome)> = Vec::new();
    for round in 0..ROUNDS {
        let (o, b) = if round % 2 == 0 {
            let o = ours.phase(FIXED_RATE, plan.round).await;
            (o, base.phase(FIXED_RATE, plan.round).await)
        } else {
            let b = base.phase(FIXED_RATE, plan.round).await;
            (ours.phase(FIXED_RATE, plan.round).await, b)
        };
        rounds.push((o, b));
    }
    let fixed = pool(&rounds.iter().map(|r| r.0.clone()).collect::<Vec<_>>());
    let base_fixed = pool(&rounds.iter().map(|r| r.1.clone()).collect::<Vec<_>>());
    eprintln!(
        "  both chats at {FIXED_RATE} msg/s: {:.0} s",
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let (best, steps) = ours.search(&fixed, &plan).await;
    eprintln!(
        "  our server's search: {:.0} s",
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let (base_best, base_steps) = base.search(&base_fixed, &plan).await;
    eprintln!(
        "  the baseline's search: {:.0} s",
        started.elapsed().as_secs_f64()
    );
    drop((ours, base, baseline));
    vec![
        fixed_row(subscribers, &fixed, &base_fixed, &rounds),
        max_row(
            subscribers,
            best.as_ref(),
            base_best.as_ref(),
            &steps,
            &base_steps,
        ),
    ]
}

/// "1,234/s delivered; p50 …, p99 …, max … ms; 0 lost, 0 duplicated".
fn delivery(o: &Outcome) -> String {
    format!(
        "{} deliveries/s; p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; {} lost, {} duplicated",
        thousands(o.delivered_per_s),
        o.latency.p50_ms,
        o.latency.p99_ms,
        o.latency.max_ms,
        thousands(o.lost as f64),
        thousands(o.duplicated as f64)
    )
}

/// CPU, memory and the generator-bound flags of both runs.
fn usage_notes(ours: &Outcome, base: &Outcome) -> String {
    let (u, b) = (&ours.usage, &base.usage);
    let flag = |u: &Usage| {
        if u.generator_bound() {
            "; **generator-bound**"
        } else {
            ""
        }
    };
    format!(
        "ours: server {:.1} s CPU in {:.1} s, peak {:.0} MiB; generator {:.1} s CPU{}; acks p50 {:.1} ms, p99 {:.1} ms, deliveries after the ack p50 {:.1} ms, p99 {:.1} ms; {} sockets resynced from the store, {} backstop deliveries. \
         Baseline (in this process, on a 2-thread runtime of its own): {:.1} s CPU; generator {:.1} s CPU{}; process peak {:.0} MiB",
        u.server_cpu_s,
        u.wall_s,
        u.server_peak_rss_mib,
        u.generator_cpu_s,
        flag(u),
        ours.ack.p50_ms,
        ours.ack.p99_ms,
        ours.after_ack.p50_ms,
        ours.after_ack.p99_ms,
        ours.resyncs,
        ours.backstop,
        b.server_cpu_s,
        b.generator_cpu_s,
        flag(b),
        b.generator_peak_rss_mib,
    )
}

fn fixed_row(
    subscribers: usize,
    ours: &Outcome,
    base: &Outcome,
    rounds: &[(Outcome, Outcome)],
) -> Row {
    let ratio = base.latency.p99_ms / ours.latency.p99_ms.max(1e-6);
    let met = ours.latency.p99_ms <= 1.5 * base.latency.p99_ms
        && ours.delivered_per_s >= 0.9 * base.delivered_per_s;
    Row {
        scenario: "4 fan-out".into(),
        case: format!(
            "{} subscribers, {SENDERS} senders, {} msg/s for {:.0} s ({} rounds, alternating with the baseline's)",
            thousands(subscribers as f64),
            thousands(FIXED_RATE),
            ours.sent as f64 / FIXED_RATE,
            rounds.len()
        ),
        result: delivery(ours),
        baseline: format!("axum broadcast chat: {}", delivery(base)),
        ratio: Some(ratio),
        target: "p99 ≤ 1.5 × baseline, throughput ≥ 0.9 ×, no loss".into(),
        met: Some(met),
        notes: format!(
            "ratio: baseline p99 / ours, the rounds pooled; each round's p99, ours / baseline: {}; {}",
            rounds
                .iter()
                .map(|(o, b)| format!("{:.1} / {:.1} ms", o.latency.p99_ms, b.latency.p99_ms))
                .collect::<Vec<_>>()
                .join(", "),
            usage_notes(ours, base)
        ),
        figures: serde_json::json!({"ours": ours, "baseline": base, "rounds": rounds}),
    }
}

fn max_row(
    subscribers: usize,
    ours: Option<&Outcome>,
    base: Option<&Outcome>,
    steps: &[String],
    base_steps: &[String],
) -> Row {
    let per_s = |o: Option<&Outcome>| o.map_or(0.0, |o| o.delivered_per_s);
    let at = |o: Option<&Outcome>| match o {
        Some(o) => format!("{} msg/s: {}", thousands(o.rate), delivery(o)),
        None => "no rate sustained".into(),
    };
    let ratio = per_s(ours) / per_s(base).max(1e-9);
    let notes = match (ours, base) {
        (Some(o), Some(b)) => usage_notes(o, b),
        _ => String::new(),
    };
    Row {
        scenario: "4 fan-out".into(),
        case: format!(
            "{} subscribers, {SENDERS} senders, highest rate without loss and with p99 ≤ {LAG_LIMIT_MS:.0} ms",
            thousands(subscribers as f64)
        ),
        result: at(ours),
        baseline: format!("axum broadcast chat: {}", at(base)),
        ratio: Some(ratio),
        target: "throughput ≥ 0.9 × baseline, no loss".into(),
        met: Some(ratio >= 0.9),
        notes: format!(
            "steps (msg/s): ours {}; baseline {}. {notes}",
            steps.join(", "),
            base_steps.join(", ")
        ),
        figures: serde_json::json!({"ours": ours, "baseline": base, "steps": steps, "baseline_steps": base_steps}),
    }
}

#[cfg(test)]
mod tests {
    use super::{key, stamp, Kind, Tally};

    fn event(seq: u64, phase: u32, sender: usize, n: u64) -> String {
        format!(
            r#"{{"type":"event","event":{{"seq":{seq},"content":"{phase} {sender} {n} 1000 filler"}}}}"#
        )
    }

    #[test]
    fn a_stamp_is_read_back() {
        assert_eq!(stamp("3 4 17 123456 a b c"), Some((3, 4, 17, 123456)));
        assert_eq!(stamp("3 4"), None);
        assert_eq!(key(4, 17) >> 28, 4);
        assert_eq!(key(4, 17) & 0x0fff_ffff, 17);
    }

    #[test]
    fn our_events_must_come_in_seq_order() {
        let mut t = Tally {
            next_seq: Some(2),
            ..Tally::default()
        };
        t.begin(1);
        t.frame(Kind::Ours, &event(2, 1, 0, 0), 5_000);
        t.frame(Kind::Ours, &event(3, 1, 1, 0), 5_000);
        assert_eq!((t.unique, t.fault.as_deref()), (2, None));
        assert_eq!(t.latencies_us, [4, 4]);
        t.frame(Kind::Ours, &event(5, 1, 0, 1), 5_000);
        assert_eq!(t.fault.as_deref(), Some("seq 5 delivered where 4 was next"));
    }

    #[test]
    fn the_baselines_doubles_and_late_messages_are_counted() {
        let mut t = Tally::default();
        t.begin(2);
        let submit = |phase: u32, n: u64| {
            format!(r#"{{"type":"submit","event":{{"content":"{phase} 0 {n} 1000 filler"}}}}"#)
        };
        t.frame(Kind::Baseline, &submit(2, 0), 2_000);
        t.frame(Kind::Baseline, &submit(2, 0), 2_000);
        t.frame(Kind::Baseline, &submit(1, 7), 2_000);
        t.frame(Kind::Baseline, &submit(2, 2), 2_000);
        assert_eq!((t.unique, t.dups, t.stale), (2, 1, 1));
        assert_eq!(t.fault, None);
    }
}
