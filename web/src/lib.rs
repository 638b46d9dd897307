//! The chat's web app: a Leptos (client-side rendered) app that replays each
//! room with the domain crate's reducer, shows the user's own actions at
//! once through the domain's optimistic layer, keeps working offline with a
//! queue in local storage, and travels in a room's history.
//!
//! The state handling is plain Rust with no DOM, tested natively and in the
//! browser: [`live_room`] (the open room), [`outbox`] (the offline queue),
//! [`link`] (connection and backoff), [`history`] (time travel), [`wire`]
//! (the API's bodies and frames), [`session`] and [`store`]. The rest is the
//! browser: [`api`] (HTTP), [`socket`] (the room's WebSocket), [`browser`]
//! (clock, ids, network state), [`route`] (the URL) and the shared state in [`app`] and the components in [`ui`].

pub mod api;
pub mod app;
pub mod browser;
pub mod history;
pub mod link;
pub mod live_room;
pub mod outbox;
pub mod route;
pub mod session;
pub mod socket;
pub mod store;
pub mod ui;
pub mod wire;

/// Mounts the app on the page's body.
pub fn start() {
    browser::mark("chat:app-started");
    leptos::mount::mount_to_body(ui::shell::App);
}

// The unit tests run in headless Chromium too (`--target wasm32-unknown-unknown`).
#[cfg(all(test, target_arch = "wasm32"))]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);
