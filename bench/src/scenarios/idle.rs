//! Scenario 7: what an idle WebSocket costs the server in memory. Many
//! sockets are opened on one room and left alone; the server's resident
//! set grows by their cost (and by what the allocator keeps around).
//! `scripts/bench.sh` raises the open-files limit for this.

use crate::measure::rss_kib;
use crate::report::{thousands, Row};
use crate::server::Server;
use futures_util::future::join_all;
use std::path::Path;
use std::time::Duration;

/// Sockets a user may have open at once is 32: the sockets are spread
/// over users with this many each.
const PER_USER: usize = 30;
/// Connections opened at once.
const AT_ONCE: usize = 100;

pub async fn run(bin: &Path, sockets: usize) -> Vec<Row> {
    let server = Server::start(
        bin,
        &[
            ("MAX_CONNECTIONS", (sockets + 1000).to_string()),
            ("SIGN_UPS_PER_MINUTE", "0".into()),
            ("SIGN_INS_PER_MINUTE", "0".into()),
        ],
    )
    .await;
    let users = sockets.div_ceil(PER_USER);
    let mut tokens = Vec::with_capacity(users);
    for u in 0..users {
        tokens.push(server.user(&format!("idle{u}")).await);
    }
    server.room(&tokens[0], "idle").await;
    // What the sign-ups (argon2's memory) leave behind settles first.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_kib(server.pid());
    let mut open = Vec::with_capacity(sockets);
    for chunk in (0..sockets).collect::<Vec<_>>().chunks(AT_ONCE) {
        let connecting = chunk.iter().map(|k| {
            let token = &tokens[k / PER_USER];
            let url = server.ws_url(&format!("/api/rooms/idle/ws?afterSeq=0&token={token}"));
            async move {
                tokio_tungstenite::connect_async_with_config(
                    url,
                    Some(super::ws_client_config()),
                    false,
                )
                .await
            }
        });
        for socket in join_all(connecting).await {
            open.push(socket.expect("an idle WebSocket opens").0);
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = rss_kib(server.pid());
    let connected = server.metric("chat_ws_connections").await as usize;
    assert_eq!(connected, sockets, "every socket is open");
    let each = (after.saturating_sub(before) * 1024) as f64 / sockets as f64;
    drop(open);
    vec![Row {
        scenario: "7 idle connections".into(),
        case: format!("{} idle WebSockets", thousands(sockets as f64)),
        result: format!("{} bytes each", thousands(each)),
        baseline: "–".into(),
        ratio: None,
        target: "≤ 16 KB each".into(),
        met: Some(each <= 16_000.0),
        notes: format!(
            "server RSS {:.1} → {:.1} MiB",
            before as f64 / 1024.0,
            after as f64 / 1024.0
        ),
        figures: serde_json::json!({"sockets": sockets, "rss_before_kib": before, "rss_after_kib": after, "bytes_each": each}),
    }]
}
