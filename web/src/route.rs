//! The page's URL, without a router: its path as a signal, kept in step
//! with the address bar. Following a link of the app or [`Route::go`] pushes
//! a history entry; Back and Forward come back as `popstate`. The app's pages
//! are few and read from the path (`app::Page::of`), so this is all the
//! routing it needs (leptos_router cost 14 KB gzip of a bundle that must stay
//! under 250 KB gzip).

use leptos::prelude::*;
use wasm_bindgen::{JsCast, JsValue};

/// The current path (`/`, `/rooms/{roomId}`, …), shared by the components.
#[derive(Clone, Copy)]
pub struct Route {
    path: RwSignal<String>,
}

/// The route the app provided.
pub fn use_route() -> Route {
    expect_context()
}

impl Route {
    /// Starts following the address bar and the app's links, and provides
    /// the route to the components below.
    pub fn provide() -> Route {
        let route = Route {
            path: RwSignal::new(current_path()),
        };
        provide_context(route);
        let popstate = window_event_listener(leptos::ev::popstate, move |_| {
            route.path.set(current_path());
        });
        let click = window_event_listener(leptos::ev::click, move |ev| route.follow(&ev));
        on_cleanup(move || {
            popstate.remove();
            click.remove();
        });
        route
    }

    /// The path, tracked.
    pub fn path(&self) -> String {
        self.path.get()
    }

    /// Goes to `path` (one of the app's own), as a new history entry.
    pub fn go(&self, path: &str) {
        if self.path.get_untracked() == path {
            return;
        }
        if let Ok(history) = window().history() {
            let _ = history.push_state_with_url(&JsValue::NULL, "", Some(path));
        }
        self.path.set(path.to_owned());
    }

    /// A plain click on a link to one of the app's paths stays in the page.
    fn follow(&self, ev: &web_sys::MouseEvent) {
        let modified = ev.meta_key() || ev.ctrl_key() || ev.shift_key() || ev.alt_key();
        if ev.default_prevented() || ev.button() != 0 || modified {
            return;
        }
        let link = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
            .and_then(|e| e.closest("a[href]").ok().flatten());
        let Some(link) = link else { return };
        if link.has_attribute("target") || link.has_attribute("download") {
            return;
        }
        let Some(href) = link.get_attribute("href") else {
            return;
        };
        // The app's own paths only: "/…", not "//other-host/…".
        if href.starts_with('/') && !href.starts_with("//") {
            ev.prevent_default();
            self.go(&href);
        }
    }
}

fn current_path() -> String {
    window()
        .location()
        .pathname()
        .unwrap_or_else(|_| "/".into())
}
