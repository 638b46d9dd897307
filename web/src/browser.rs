//! What the app asks of the browser besides the DOM: the clock, random
//! event ids, the network state, the page's visibility and local times.

use domain::Timestamp;
use uuid::Uuid;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;

/// Now, from the browser's clock (for pending events until the server's
/// time is known).
pub fn now() -> Timestamp {
    Timestamp::from_millis(js_sys::Date::now() as i64)
        .unwrap_or_else(|| Timestamp::from_millis(0).expect("the epoch is in range"))
}

/// A new random (version 4) UUID for an event, from `crypto.getRandomValues`
/// (which, unlike `randomUUID`, works outside secure contexts too).
pub fn new_event_id() -> Uuid {
    let mut bytes = [0u8; 16];
    let filled = web_sys::window()
        .and_then(|w| w.crypto().ok())
        .is_some_and(|c| c.get_random_values_with_u8_array(&mut bytes).is_ok());
    if !filled {
        // No Web Crypto: Math.random still makes ids that do not repeat in practice.
        for b in &mut bytes {
            *b = (js_sys::Math::random() * 256.0) as u8;
        }
    }
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

/// The browser's view of the network (`navigator.onLine`).
pub fn is_online() -> bool {
    web_sys::window().is_none_or(|w| w.navigator().on_line())
}

/// Whether the page is on screen (not a background tab).
pub fn page_visible() -> bool {
    web_sys::window()
        .and_then(|w| w.document())
        .is_none_or(|d| d.visibility_state() == web_sys::VisibilityState::Visible)
}

fn date(t: Timestamp) -> js_sys::Date {
    js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(t.as_millis() as f64))
}

/// `14:05` in the user's time zone.
pub fn clock_time(t: Timestamp) -> String {
    let d = date(t);
    format!("{:02}:{:02}", d.get_hours(), d.get_minutes())
}

/// Date and time in the user's locale, for a tooltip.
pub fn full_time(t: Timestamp) -> String {
    date(t)
        .to_locale_string("default", &wasm_bindgen::JsValue::UNDEFINED)
        .into()
}

/// The origin for WebSockets: `ws://host` or `wss://host`.
pub fn ws_origin() -> String {
    let loc = web_sys::window().map(|w| w.location());
    let host = loc.as_ref().and_then(|l| l.host().ok()).unwrap_or_default();
    let secure = loc
        .and_then(|l| l.protocol().ok())
        .is_some_and(|p| p == "https:");
    format!("{}://{host}", if secure { "wss" } else { "ws" })
}

/// Percent-encodes a query or path component.
pub fn encode(s: &str) -> String {
    js_sys::encode_uri_component(s).into()
}

/// Runs a future on the page's event loop. Every task goes through this one
/// boxed type, so the executor's code is in the bundle once.
pub fn spawn(task: impl std::future::Future<Output = ()> + 'static) {
    let task: std::pin::Pin<Box<dyn std::future::Future<Output = ()>>> = Box::pin(task);
    leptos::task::spawn_local(task);
}

/// Leaves a `performance.mark` named `name` now: the benchmark
/// (`scripts/web-bench.sh`) reads it, counted from the navigation's start.
pub fn mark(name: &str) {
    if let Some(p) = web_sys::window().and_then(|w| w.performance()) {
        let _ = p.mark(name);
    }
}

/// Leaves a `performance.mark` once what is in the page now has been
/// painted: a task queued from the next animation frame runs after that
/// frame's paint.
pub fn mark_after_paint(name: &'static str) {
    let Some(window) = web_sys::window() else {
        return;
    };
    let after_frame = Closure::once_into_js(move || {
        let later = Closure::once_into_js(move || mark(name));
        if let Some(w) = web_sys::window() {
            let _ = w.set_timeout_with_callback(later.unchecked_ref());
        }
    });
    let _ = window.request_animation_frame(after_frame.unchecked_ref());
}
