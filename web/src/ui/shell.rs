//! The app's shell: the root component (the session decides between the
//! sign-in screen and the signed-in layout) and the layout around the
//! route's screen.

use crate::app::{use_app, AppState, Page};
use crate::browser;
use crate::route::{use_route, Route};
use crate::store::LocalStore;
use crate::ui::{auth::SignIn, room::RoomView, rooms::Sidebar, topbar::TopBar};
use leptos::prelude::*;
use std::time::Duration;

#[component]
pub fn App() -> impl IntoView {
    let app = AppState::new(LocalStore::shared());
    provide_context(app);
    Route::provide();
    let online = window_event_listener(leptos::ev::online, move |_| {
        app.browser_online.set(true);
        app.flush_queues();
    });
    let offline = window_event_listener(leptos::ev::offline, move |_| {
        app.browser_online.set(false);
    });
    on_cleanup(move || {
        online.remove();
        offline.remove();
    });
    let signed_in = move || app.session.with(Option::is_some);
    move || {
        if signed_in() {
            view! { <Shell /> }.into_any()
        } else {
            view! { <SignIn /> }.into_any()
        }
    }
}

/// The signed-in layout: top bar, room list, and the route's screen.
#[component]
fn Shell() -> impl IntoView {
    let app = use_app();
    let route = use_route();
    let page = Memo::new(move |_| Page::of(&route.path()));
    let room_open = move || page.with(|p| matches!(p, Page::Room(_)));
    app.refresh_rooms();
    // Unread counts change as others write: ask again every few seconds
    // while the page is on screen.
    let poll = set_interval_with_handle(
        move || {
            if browser::page_visible() {
                app.refresh_rooms();
            }
        },
        Duration::from_secs(5),
    )
    .ok();
    on_cleanup(move || {
        if let Some(p) = poll {
            p.clear();
        }
    });
    view! {
        <div class="shell" class:room-open=room_open>
            <TopBar />
            <Sidebar />
            <main class="main">
                // What the app must tell wherever the user is (a queued
                // action of another room refused).
                {move || app.alert.get().map(|text| view! {
                    <div role="alert" class="alert notice app-alert">
                        <span>{text}</span>
                        <button
                            type="button"
                            class="quiet"
                            aria-label="Dismiss"
                            on:click=move |_| app.alert.set(None)
                        >
                            "×"
                        </button>
                    </div>
                })}
                {move || match page.get() {
                    Page::Rooms => view! { <NoRoom /> }.into_any(),
                    Page::Room(room_id) => view! { <RoomView room_id /> }.into_any(),
                    Page::NotFound => view! { <NotFound /> }.into_any(),
                }}
            </main>
        </div>
    }
}

#[component]
fn NoRoom() -> impl IntoView {
    view! {
        <div class="placeholder">
            <h2>"No room open"</h2>
            <p>"Pick a room from the list, or create a new one."</p>
        </div>
    }
}

#[component]
fn NotFound() -> impl IntoView {
    view! {
        <div class="placeholder">
            <h2>"Page not found"</h2>
            <p>
                <a href="/">"Back to the rooms"</a>
            </p>
        </div>
    }
}
