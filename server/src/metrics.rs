//! Prometheus metrics: requests, appends, connections, WebSocket
//! connections, the latency of appends, and the sizes of the limit tables.
//! One registry per server (no globals), rendered by `GET /metrics`. Every
//! label value comes from a closed set the server defines, never from a
//! request (a made-up method or path must not become a new series).

use axum::http::{Method, StatusCode};
use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// The `method` label: the standard methods by name, anything else `other`.
pub fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// The `status` label: the class of the status code (`2xx`, …).
pub fn status_label(s: StatusCode) -> &'static str {
    match s.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

pub struct Metrics {
    registry: Registry,
    /// By `method` ([`method_label`]), `route` (the matched route template,
    /// or `unmatched` for the web app and unknown paths) and `status`
    /// ([`status_label`]).
    pub requests: IntCounterVec,
    /// Open connections (WebSockets included).
    pub connections_open: IntGauge,
    /// Connections refused because `MAX_CONNECTIONS` were open and busy.
    pub connections_refused: IntCounter,
    /// Idle connections closed to make room for a new one at the cap.
    pub connections_evicted: IntCounter,
    /// Expired sessions deleted from the store.
    pub sessions_purged: IntCounter,
    /// Keys in each limit table after its last pruning, by `table`.
    pub limiter_keys: IntGaugeVec,
    pub appends: IntCounter,
    /// Batches decided again because another writer appended first.
    pub append_conflicts: IntCounter,
    pub ws_connections: IntGauge,
    /// Sockets that fell behind the live stream and caught up from the store.
    pub ws_resyncs: IntCounter,
    /// Rooms with live subscribers on the bus (set when scraped).
    pub bus_rooms: IntGauge,
    /// Events the bus never brought, delivered by the backstop.
    pub bus_backstop: IntCounter,
    /// Room states the writer keeps in memory, and about what they hold.
    pub room_states: IntGauge,
    pub room_states_bytes: IntGauge,
    pub append_seconds: Histogram,
    pub commit_seconds: Histogram,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "chat_http_requests_total",
                "HTTP requests by method, route template and status class",
            ),
            &["method", "route", "status"],
        )
        .expect("valid metric");
        let connections_open = IntGauge::new(
            "chat_connections_open",
            "open connections, WebSockets included",
        )
        .expect("valid metric");
        let connections_refused = IntCounter::new(
            "chat_connections_refused_total",
            "connections answered 503 because MAX_CONNECTIONS were open and busy",
        )
        .expect("valid metric");
        let connections_evicted = IntCounter::new(
            "chat_connections_evicted_total",
            "idle connections closed to make room at MAX_CONNECTIONS",
        )
        .expect("valid metric");
        let sessions_purged = IntCounter::new(
            "chat_sessions_purged_total",
            "expired sessions deleted from the store",
        )
        .expect("valid metric");
        let limiter_keys = IntGaugeVec::new(
            Opts::new(
                "chat_limiter_keys",
                "keys in each rate-limit table after its last pruning",
            ),
            &["table"],
        )
        .expect("valid metric");
        let appends =
            IntCounter::new("chat_appends_total", "events appended").expect("valid metric");
        let append_conflicts = IntCounter::new(
            "chat_append_conflicts_total",
            "batches decided again because another writer appended to one of their rooms first",
        )
        .expect("valid metric");
        let ws_connections = IntGauge::new("chat_ws_connections", "open WebSocket connections")
            .expect("valid metric");
        let ws_resyncs = IntCounter::new(
            "chat_ws_resyncs_total",
            "WebSocket catch-ups from the store after falling behind",
        )
        .expect("valid metric");
        let bus_rooms = IntGauge::new("chat_bus_rooms", "rooms with live subscribers on the bus")
            .expect("valid metric");
        let bus_backstop = IntCounter::new(
            "chat_bus_backstop_deliveries_total",
            "latest events of watched rooms that the bus never brought, delivered from the store",
        )
        .expect("valid metric");
        let room_states = IntGauge::new(
            "chat_room_states",
            "room states kept in memory for appending",
        )
        .expect("valid metric");
        let room_states_bytes = IntGauge::new(
            "chat_room_states_bytes",
            "about the memory the room states kept for appending hold",
        )
        .expect("valid metric");
        let buckets = vec![
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 3.0,
        ];
        let append_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "chat_append_seconds",
                "latency of an append, request to durable answer",
            )
            .buckets(buckets.clone()),
        )
        .expect("valid metric");
        let commit_seconds = Histogram::with_opts(
            HistogramOpts::new("chat_group_commit_seconds", "latency of one group commit")
                .buckets(buckets),
        )
        .expect("valid metric");
        for m in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(connections_open.clone()),
            Box::new(connections_refused.clone()),
            Box::new(connections_evicted.clone()),
            Box::new(sessions_purged.clone()),
            Box::new(limiter_keys.clone()),
            Box::new(appends.clone()),
            Box::new(append_conflicts.clone()),
            Box::new(ws_connections.clone()),
            Box::new(ws_resyncs.clone()),
            Box::new(bus_rooms.clone()),
            Box::new(bus_backstop.clone()),
            Box::new(room_states.clone()),
            Box::new(room_states_bytes.clone()),
            Box::new(append_seconds.clone()),
            Box::new(commit_seconds.clone()),
        ] {
            registry.register(m).expect("unique metric names");
        }
        Metrics {
            registry,
            requests,
            connections_open,
            connections_refused,
            connections_evicted,
            sessions_purged,
            limiter_keys,
            appends,
            append_conflicts,
            ws_connections,
            ws_resyncs,
            bus_rooms,
            bus_backstop,
            room_states,
            room_states_bytes,
            append_seconds,
            commit_seconds,
        }
    }

    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding of metrics");
        String::from_utf8(buf).expect("metrics are UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
