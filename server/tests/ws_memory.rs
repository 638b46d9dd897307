//! What an idle WebSocket costs the server in memory, measured as the
//! growth of this process's resident set while 2,000 sockets are opened
//! (alone in its test binary, so no other test allocates meanwhile; the
//! clients are plain TCP connections that hold a few bytes each). Fewer
//! sockets would under-report: the allocator first reuses memory freed
//! before (argon2's 19 MiB, for one).

mod common;

use common::raw_ws::RawWs;
use common::*;
use server::store::embedded::EmbeddedStore;
use server::store::{AccountStore, Stores};
use std::sync::Arc;

/// This process's resident set, in KiB (Linux).
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// This process's soft limit on open files (Linux).
fn open_files_limit() -> usize {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(1024)
}

/// Finding 9: an idle socket used to hold a 128 KiB read buffer; sized for
/// chat frames, idle sockets cost far less than that each.
#[tokio::test]
async fn an_idle_socket_costs_little_memory() {
    let wanted: usize = std::env::var("WS_MEMORY_SOCKETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    // Each socket takes two descriptors here (client and server side).
    let n = wanted.min(open_files_limit().saturating_sub(512) / 2);
    assert!(n >= 200, "the open-files limit allows only {n} sockets");
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
    let bus = Arc::new(server::bus::LocalBus::default());
    let config = server::config::Config {
        max_connections: n + 256,
        ..TestServer::config(dir.path(), 0)
    };
    let s = TestServer::start_with(config, Some((Stores::all_in_one(store.clone()), bus))).await;
    let c = reqwest::Client::new();
    let token = user(&c, &s, "alice").await;
    room(&c, &s, &token, "r").await;
    // sessions of users of 25 sockets each (a user may hold 32), written to
    // the store as a sign-in would
    let mut paths = Vec::new();
    for u in 0..n.div_ceil(25) {
        let (token, hash) = server::auth::new_token();
        store
            .put_session(&hash, &format!("u{u}"), i64::MAX / 2)
            .await
            .unwrap();
        for _ in 0..25 {
            paths.push(format!("/api/rooms/r/ws?token={token}"));
        }
    }
    paths.truncate(n);
    // warm up: the first sockets grow pools and caches once
    for p in &paths[..20] {
        let mut ws = RawWs::connect(&s.base, p).await;
        ws.next().await.unwrap();
    }
    wait_until(10, "the warm-up sockets are closed", || async {
        metric(&c, &s, "chat_ws_connections").await == 0.0
    })
    .await;
    let before = rss_kib();
    let mut open = Vec::new();
    for p in &paths {
        let mut ws = RawWs::connect(&s.base, p).await;
        // the ROOM_CREATED event: the socket is served and idle
        ws.next().await.unwrap();
        open.push(ws);
    }
    let per_socket = (rss_kib().saturating_sub(before)) as f64 / open.len() as f64;
    eprintln!(
        "{} idle sockets: {per_socket:.1} KiB each (server and raw clients, debug build)",
        open.len()
    );
    assert!(per_socket < 32.0, "{per_socket:.1} KiB per idle socket");
    drop(open);
    s.stop().await;
}
