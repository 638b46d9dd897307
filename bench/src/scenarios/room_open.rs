//! Scenario 6: opening a room, for rooms of three sizes: the time to the
//! newest 50 messages through `/messages?limit=50` (the projection),
//! through `/snapshot?window=50` plus the events after it replayed by the
//! domain's reducer (what the web app does), and through a replay of the
//! whole log from `/events`. The windowed paths should not grow with the
//! room; the full replay is their baseline. The browser's figure,
//! navigation to the newest messages painted, is the web benchmark's
//! (`e2e/src/bin/web-bench.rs`, built by `scripts/bench.sh`), run by
//! [`in_browser`] on rooms of the same sizes.

use super::fill;
use crate::report::{thousands, Row};
use crate::server::Server;
use domain::RoomState;
use serde::Deserialize;
use serde_json::{json, value::RawValue, Value};
use std::path::Path;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Messages a client shows when it opens a room.
const WINDOW: usize = 50;
/// Events asked for in one `/events` page.
const PAGE: usize = 5000;
/// Timings of each windowed path per room.
const WINDOWED_SAMPLES: usize = 15;
/// Submits kept waiting for their acks while a room is filled.
const IN_FLIGHT: usize = 400;

#[derive(Deserialize)]
struct SnapshotBody {
    state: RoomState,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawPage<'a> {
    #[serde(borrow)]
    events: &'a RawValue,
    last_seq: u64,
}

pub async fn run(bin: &Path, sizes: &[usize]) -> Vec<Row> {
    let server = Server::start(bin, &[]).await;
    let token = server.user("reader").await;
    let mut timings = Vec::new();
    for &size in sizes {
        let room = format!("room{size}");
        server.room(&token, &room).await;
        fill(&server, &token, &room, size - 1, IN_FLIGHT, |i| {
            json!({"eventId": Uuid::new_v4(), "eventType": "MESSAGE_SENT", "content": format!("message {i} of a room being filled")})
        })
        .await;
        // The two windowed paths in turn, the median of each (timings of
        // about a millisecond: a few samples swing by half); the full
        // replays last, since reading a large room's whole log evicts what
        // the windowed paths read from the store's cache (right after one,
        // /messages of the 1M room takes about twice as long).
        let (mut messages, mut windowed, mut full) = (Vec::new(), Vec::new(), Vec::new());
        let (mut snapshot_bytes, mut tail) = (0, 0);
        for _ in 0..WINDOWED_SAMPLES {
            messages.push(by_messages(&server, &token, &room).await);
            let (took, bytes, events) = by_snapshot(&server, &token, &room).await;
            windowed.push(took);
            (snapshot_bytes, tail) = (bytes, events);
        }
        for _ in 0..5 {
            full.push(by_replay(&server, &token, &room).await);
        }
        timings.push((
            size,
            median(messages),
            median(windowed),
            median(full),
            snapshot_bytes,
            tail,
        ));
    }
    let smallest = timings[0];
    timings
        .iter()
        .map(|&(size, messages, windowed, full, snapshot_bytes, tail)| {
            let ms = |d: Duration| d.as_secs_f64() * 1e3;
            let growth = |d: Duration, of: Duration| ms(d) / ms(of).max(1e-3);
            let flat = growth(messages, smallest.1) <= 2.0 && growth(windowed, smallest.2) <= 2.0;
            let largest = size == timings.last().expect("sizes").0;
            Row {
                scenario: "6 room open".into(),
                case: format!("{} events", thousands(size as f64)),
                result: format!(
                    "/messages {:.1} ms; snapshot + tail + replay {:.1} ms",
                    ms(messages),
                    ms(windowed)
                ),
                baseline: format!("full replay from /events: {:.0} ms", ms(full)),
                ratio: Some(ms(full) / ms(windowed).max(1e-3)),
                target: if largest {
                    format!("windowed ≤ 2 × the {} room", thousands(smallest.0 as f64))
                } else {
                    "–".into()
                },
                met: largest.then_some(flat),
                notes: format!(
                    "{:.1}× / {:.1}× the smallest room; medians of {WINDOWED_SAMPLES}, the two paths in turn; the snapshot's body {:.1} KB, then {tail} events after it (a large room is snapshotted every 256 seqs)",
                    growth(messages, smallest.1),
                    growth(windowed, smallest.2),
                    snapshot_bytes as f64 / 1e3
                ),
                figures: serde_json::json!({
                    "events": size,
                    "messages_ms": ms(messages),
                    "snapshot_tail_ms": ms(windowed),
                    "full_replay_ms": ms(full),
                    "snapshot_bytes": snapshot_bytes,
                    "tail_events": tail,
                }),
            }
        })
        .collect()
}

/// Runs the web benchmark (`web_bench`, which starts a server and headless
/// Chromium of its own) on rooms of `sizes` events (ascending), and makes
/// its rows.
pub async fn in_browser(web_bench: &Path, sizes: &[usize]) -> Vec<Row> {
    assert!(
        !sizes.is_empty() && sizes.is_sorted(),
        "room sizes, ascending"
    );
    let out = tokio::process::Command::new(web_bench)
        .args(sizes.iter().map(usize::to_string))
        .stderr(std::process::Stdio::inherit())
        .output()
        .await
        .unwrap_or_else(|e| panic!("{} starts: {e}", web_bench.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{} failed ({}):\n{stdout}",
        web_bench.display(),
        out.status
    );
    let rows = browser_rows(&stdout).unwrap_or_else(|| {
        panic!("the web benchmark's ROOM_OPEN lines are not in the expected form:\n{stdout}")
    });
    let measured: Vec<u64> = rows
        .iter()
        .map(|r| r.figures["events"].as_u64().unwrap_or(0))
        .collect();
    let asked: Vec<u64> = sizes.iter().map(|&n| n as u64).collect();
    assert_eq!(
        measured, asked,
        "the web benchmark measured other rooms than asked:\n{stdout}"
    );
    rows
}

/// The browser's rows, from the `ROOM_OPEN` lines of the web benchmark's
/// output (one per room, smallest first; other lines are passed over);
/// `None` when there is none, or one is not in that form. Their baseline
/// is the smallest room of the same browser run: the target is that the
/// largest opens within twice its time.
pub fn browser_rows(output: &str) -> Option<Vec<Row>> {
    // "ROOM_OPEN 1000 events: median 130.0 ms, min 124.0 ms, max 142.0 ms, app started 45.0 ms (7 visits)"
    struct Open {
        events: u64,
        median: f64,
        min: f64,
        max: f64,
        started: f64,
        visits: u32,
    }
    fn parse(line: &str) -> Option<Open> {
        let rest = line.strip_prefix("ROOM_OPEN ")?;
        let (events, rest) = rest.split_once(" events: median ")?;
        let (median, rest) = rest.split_once(" ms, min ")?;
        let (min, rest) = rest.split_once(" ms, max ")?;
        let (max, rest) = rest.split_once(" ms, app started ")?;
        let (started, rest) = rest.split_once(" ms (")?;
        let visits = rest.strip_suffix(" visits)")?;
        Some(Open {
            events: events.parse().ok()?,
            median: median.parse().ok()?,
            min: min.parse().ok()?,
            max: max.parse().ok()?,
            started: started.parse().ok()?,
            visits: visits.parse().ok()?,
        })
    }
    let opens = output
        .lines()
        .filter(|l| l.starts_with("ROOM_OPEN "))
        .map(parse)
        .collect::<Option<Vec<_>>>()?;
    let smallest = opens.first()?;
    let last = opens.len() - 1;
    let rows = opens
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let growth = o.median / smallest.median.max(1e-3);
            Row {
                scenario: "6 room open (browser)".into(),
                case: format!("{} events", thousands(o.events as f64)),
                result: format!(
                    "navigation → newest messages painted {:.0} ms (median of {}, {:.0}–{:.0})",
                    o.median, o.visits, o.min, o.max
                ),
                baseline: format!(
                    "the {}-event room, same browser: {:.0} ms",
                    thousands(smallest.events as f64),
                    smallest.median
                ),
                ratio: Some(1.0 / growth),
                target: if i == last {
                    format!("≤ 2 × the {} room", thousands(smallest.events as f64))
                } else {
                    "–".into()
                },
                met: (i == last).then_some(growth <= 2.0),
                notes: format!(
                    "{growth:.1}× the smallest room; the app started (wasm instantiated) at {:.0} ms; headless Chromium, the release bundle cached, one user signed in; e2e/src/bin/web-bench.rs",
                    o.started
                ),
                figures: serde_json::json!({
                    "events": o.events,
                    "paint_median_ms": o.median,
                    "paint_min_ms": o.min,
                    "paint_max_ms": o.max,
                    "app_started_ms": o.started,
                    "visits": o.visits,
                }),
            }
        })
        .collect();
    Some(rows)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

async fn get(server: &Server, token: &str, path: &str) -> String {
    let r = server
        .http
        .get(server.url(path))
        .bearer_auth(token)
        .send()
        .await;
    let r = r.expect("the server answers");
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.text().await.expect("a body")
}

async fn by_messages(server: &Server, token: &str, room: &str) -> Duration {
    let t = Instant::now();
    let body = get(
        server,
        token,
        &format!("/api/rooms/{room}/messages?limit={WINDOW}"),
    )
    .await;
    let page: Value = serde_json::from_str(&body).expect("a page");
    assert_eq!(page["messages"].as_array().map(Vec::len), Some(WINDOW));
    t.elapsed()
}

/// Applies the events after `state` page by page until the room's end.
async fn catch_up(server: &Server, token: &str, room: &str, state: &mut RoomState) {
    loop {
        let path = format!(
            "/api/rooms/{room}/events?afterSeq={}&limit={PAGE}",
            state.last_seq()
        );
        let body = get(server, token, &path).await;
        let page: RawPage = serde_json::from_str(&body).expect("a page of events");
        let applied = state
            .apply_json(page.events.get().as_bytes())
            .expect("the log replays");
        if applied == 0 || state.last_seq() >= page.last_seq {
            return;
        }
    }
}

/// The time to the newest messages from the windowed snapshot, the
/// snapshot body's size, and the events replayed after it.
async fn by_snapshot(server: &Server, token: &str, room: &str) -> (Duration, usize, u64) {
    let t = Instant::now();
    let body = get(
        server,
        token,
        &format!("/api/rooms/{room}/snapshot?window={WINDOW}"),
    )
    .await;
    let mut state = serde_json::from_str::<SnapshotBody>(&body)
        .expect("a snapshot")
        .state;
    let at = state.last_seq();
    catch_up(server, token, room, &mut state).await;
    let views = state
        .window_views(WINDOW, None)
        .expect("the window is in the snapshot");
    assert_eq!(views.len(), WINDOW);
    (t.elapsed(), body.len(), state.last_seq() - at)
}

async fn by_replay(server: &Server, token: &str, room: &str) -> Duration {
    let t = Instant::now();
    let mut state = RoomState::new();
    catch_up(server, token, room, &mut state).await;
    let views = state.window_views(WINDOW, None).expect("a whole state");
    assert_eq!(views.len(), WINDOW);
    t.elapsed()
}

#[cfg(test)]
mod tests {
    use super::browser_rows;

    #[test]
    fn the_web_benchmarks_lines_make_a_row_per_room() {
        let lines = "| 1000 events | 130 ms | 124 ms | 142 ms | 45 ms |\n\
                     ROOM_OPEN 1000 events: median 130.0 ms, min 124.0 ms, max 142.0 ms, app started 45.0 ms (7 visits)\n\
                     ROOM_OPEN 1000000 events: median 195.0 ms, min 180.0 ms, max 210.0 ms, app started 46.0 ms (7 visits)\n";
        let rows = browser_rows(lines).expect("rows");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].met, None);
        assert_eq!(rows[1].case, "1,000,000 events");
        assert_eq!(rows[1].met, Some(true));
        assert!((rows[1].ratio.unwrap() - 130.0 / 195.0).abs() < 1e-9);
        let slow = lines.replace("195.0", "261.0");
        assert_eq!(browser_rows(&slow).unwrap()[1].met, Some(false));
        assert!(browser_rows("ROOM_OPEN 1000 events: quickly").is_none());
        assert!(browser_rows("room r1000: 1000 events written in 0.1 s").is_none());
    }
}
