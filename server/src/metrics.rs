//! Prometheus metrics: requests, appends, WebSocket connections and the
//! latency of appends. One registry per server (no globals), rendered by
//! `GET /metrics`.

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    pub requests: IntCounterVec,
    pub appends: IntCounter,
    pub ws_connections: IntGauge,
    /// Sockets that fell behind the live stream and caught up from the store.
    pub ws_resyncs: IntCounter,
    /// Rooms with live subscribers on the bus (set when scraped).
    pub bus_rooms: IntGauge,
    pub append_seconds: Histogram,
    pub commit_seconds: Histogram,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "chat_http_requests_total",
                "HTTP requests by method and status",
            ),
            &["method", "status"],
        )
        .expect("valid metric");
        let appends =
            IntCounter::new("chat_appends_total", "events appended").expect("valid metric");
        let ws_connections = IntGauge::new("chat_ws_connections", "open WebSocket connections")
            .expect("valid metric");
        let ws_resyncs = IntCounter::new(
            "chat_ws_resyncs_total",
            "WebSocket catch-ups from the store after falling behind",
        )
        .expect("valid metric");
        let bus_rooms = IntGauge::new("chat_bus_rooms", "rooms with live subscribers on the bus")
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
            Box::new(appends.clone()),
            Box::new(ws_connections.clone()),
            Box::new(ws_resyncs.clone()),
            Box::new(bus_rooms.clone()),
            Box::new(append_seconds.clone()),
            Box::new(commit_seconds.clone()),
        ] {
            registry.register(m).expect("unique metric names");
        }
        Metrics {
            registry,
            requests,
            appends,
            ws_connections,
            ws_resyncs,
            bus_rooms,
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
