//! How fast the browser replays a room: a realistic log (the domain's
//! benchmark input) decoded and replayed by `RoomState::replay_json`, the
//! call the app makes on `/events`, natively and in headless Chromium. A
//! benchmark, not a test: ignored by `cargo test`; `scripts/web-bench.sh`
//! runs it both ways and prints both figures.

#[path = "../../domain/benches/support/realistic.rs"]
mod realistic;

use domain::RoomState;

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

const EVENTS: usize = 200_000;
const RUNS: usize = 5;

#[cfg(target_arch = "wasm32")]
fn now_ms() -> f64 {
    js_sys::Date::now()
}

#[cfg(not(target_arch = "wasm32"))]
fn now_ms() -> f64 {
    use std::sync::OnceLock;
    use std::time::Instant;
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_secs_f64() * 1000.0
}

#[cfg(target_arch = "wasm32")]
macro_rules! say { ($($t:tt)*) => { wasm_bindgen_test::console_log!($($t)*) } }
#[cfg(not(target_arch = "wasm32"))]
macro_rules! say { ($($t:tt)*) => { println!($($t)*) } }

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
#[ignore = "a benchmark: scripts/web-bench.sh"]
fn replay_speed() {
    let log = serde_json::to_vec(&realistic::realistic_log(EVENTS)).unwrap();
    let mut times = Vec::new();
    let mut messages = 0;
    for _ in 0..RUNS {
        let start = now_ms();
        let state = RoomState::replay_json(&log).expect("a valid log");
        times.push(now_ms() - start);
        messages = state.message_count();
    }
    times.sort_by(f64::total_cmp);
    let median = times[RUNS / 2];
    let target = if cfg!(target_arch = "wasm32") {
        "wasm"
    } else {
        "native"
    };
    say!(
        "REPLAY {target}: {EVENTS} events ({} bytes of JSON, {messages} messages at the end): \
         median {median:.1} ms, best {:.1} ms = {:.3} ms per 1,000 events",
        log.len(),
        times[0],
        median / (EVENTS as f64 / 1000.0)
    );
}
