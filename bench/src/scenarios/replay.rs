//! Scenario 1, natively: bytes to state. A realistic log of one room as the
//! JSON array `/events` pages carry, decoded and replayed by the domain's
//! reducer (`RoomState::replay_json`), against the floor of any JSON
//! design: the same bytes decoded by `serde_json` into plain structs that
//! mirror the wire format, and nothing else. The WASM half compares the
//! same replay in headless Chromium with the same test run natively, one
//! after the other (`web/tests/replay_speed.rs`, which `scripts/bench.sh`
//! runs both ways and hands over in `BENCH_REPLAY_NATIVE` and
//! `BENCH_REPLAY_WASM`).

use crate::report::{thousands, Row};
use domain::RoomState;
use serde::Deserialize;
use std::time::{Duration, Instant};

#[path = "../../../domain/benches/support/realistic.rs"]
mod realistic;

/// An event as plain owned fields: what `serde_json` alone makes of the
/// wire format.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // read by nothing: decoding them is what is timed
struct PlainEvent {
    event_id: String,
    room_id: String,
    seq: u64,
    event_type: String,
    sender_id: String,
    content: Option<String>,
    target_message_id: Option<String>,
    timestamp: String,
}

/// The median of `runs` timings of `f`, alternating with the other side by
/// the caller.
fn time(f: impl Fn()) -> Duration {
    let t = Instant::now();
    f();
    t.elapsed()
}

pub fn run(events: usize) -> Vec<Row> {
    let log = realistic::realistic_log(events);
    let bytes = serde_json::to_vec(&log).expect("events serialize");
    drop(log);
    let (mut ours, mut floor) = (Vec::new(), Vec::new());
    // Alternate, so that both sides meet the same minutes of the machine.
    for _ in 0..5 {
        ours.push(time(|| {
            let state = RoomState::replay_json(&bytes).expect("a valid log");
            assert_eq!(state.last_seq(), events as u64, "every event applied");
        }));
        floor.push(time(|| {
            let plain: Vec<PlainEvent> = serde_json::from_slice(&bytes).expect("a valid log");
            assert_eq!(plain.len(), events);
        }));
    }
    ours.sort();
    floor.sort();
    let (ours, floor) = (ours[2], floor[2]);
    let rate = |d: Duration| events as f64 / d.as_secs_f64();
    let ratio = rate(ours) / rate(floor);
    vec![Row {
        scenario: "1 replay, bytes to state (native)".into(),
        case: format!(
            "{} events, {} MB of JSON",
            thousands(events as f64),
            bytes.len() / 1_000_000
        ),
        result: format!(
            "{} events/s ({:.0} ms)",
            thousands(rate(ours)),
            ours.as_secs_f64() * 1e3
        ),
        baseline: format!(
            "serde_json into plain structs: {} events/s ({:.0} ms)",
            thousands(rate(floor)),
            floor.as_secs_f64() * 1e3
        ),
        ratio: Some(ratio),
        target: "≥ 0.5 × the floor".into(),
        met: Some(ratio >= 0.5),
        notes: "median of 5, alternating; one core".into(),
        figures: serde_json::json!({
            "events": events,
            "json_bytes": bytes.len(),
            "replay_ms": ours.as_secs_f64() * 1e3,
            "floor_ms": floor.as_secs_f64() * 1e3,
        }),
    }]
}

/// The WASM half, from the `REPLAY …` lines `web/tests/replay_speed.rs`
/// prints natively and in the browser; `None` when either is missing or
/// not in that form.
pub fn wasm_row(native: &str, wasm: &str) -> Option<Row> {
    // "… = 0.355 ms per 1,000 events"
    fn per_1000(line: &str) -> Option<f64> {
        let (_, rest) = line.rsplit_once("= ")?;
        rest.strip_suffix(" ms per 1,000 events")?.parse().ok()
    }
    // "REPLAY wasm: 200000 events (…"
    fn events(line: &str) -> Option<u64> {
        line.split_once(": ")?.1.split(' ').next()?.parse().ok()
    }
    let (n, w) = (per_1000(native)?, per_1000(wasm)?);
    let count = events(wasm)?;
    let rate = |ms_per_1000: f64| 1e6 / ms_per_1000;
    let ratio = n / w;
    Some(Row {
        scenario: "1 replay, bytes to state (WASM)".into(),
        case: format!(
            "{} events in headless Chromium (the bundle's size-focused profile)",
            thousands(count as f64)
        ),
        result: format!("{} events/s ({w:.3} ms per 1,000)", thousands(rate(w))),
        baseline: format!(
            "the same test natively: {} events/s ({n:.3} ms per 1,000)",
            thousands(rate(n))
        ),
        ratio: Some(ratio),
        target: "≥ 0.4 × native".into(),
        met: Some(ratio >= 0.4),
        notes: "median of 5 each, the native run just before; web/tests/replay_speed.rs".into(),
        figures: serde_json::json!({
            "events": count,
            "wasm_ms_per_1000": w,
            "native_ms_per_1000": n,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::wasm_row;

    #[test]
    fn the_replay_lines_of_both_runs_make_a_row() {
        let native = "REPLAY native: 200000 events (47000000 bytes of JSON, 113000 messages at the end): median 120.0 ms, best 118.0 ms = 0.600 ms per 1,000 events";
        let wasm = "REPLAY wasm: 200000 events (47000000 bytes of JSON, 113000 messages at the end): median 240.0 ms, best 230.0 ms = 1.200 ms per 1,000 events";
        let row = wasm_row(native, wasm).expect("a row");
        assert_eq!(row.ratio, Some(0.5));
        assert_eq!(row.met, Some(true));
        assert!(wasm_row(native, "no figure").is_none());
    }
}
