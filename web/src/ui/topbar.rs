//! The top bar: the app's name, the connection status (the one
//! `role="status"` element of UI.md), the user and `Sign out`.

use crate::app::use_app;
use crate::link::Status;
use leptos::prelude::*;

#[component]
pub fn TopBar() -> impl IntoView {
    let app = use_app();
    let status = move || {
        app.socket
            .with(|link| Status::of(app.browser_online.get(), app.server_ok.get(), link.as_ref()))
    };
    // One piece: the element stays, its class and text follow.
    let line = move || {
        let s = status();
        let class = match s {
            Status::Online => "status online",
            Status::Offline => "status offline",
            Status::Connecting | Status::Reconnecting => "status trying",
        };
        view! {
            <p role="status" class=class>
                {s.label()}
            </p>
        }
    };
    let user = app.user();
    view! {
        <header class="topbar">
            <h1 class="brand">
                <a href="/">"Chat"</a>
            </h1>
            {line}
            <span class="me" title="Signed in as">
                {user}
            </span>
            <button type="button" class="quiet" on:click=move |_| app.sign_out()>
                "Sign out"
            </button>
        </header>
    }
}
