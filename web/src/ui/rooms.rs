//! The side bar: the room list (each a link with the room's name and, when
//! above 0, the server's unread count as a bare number) and the form that
//! creates a room and opens it. Room id and name rules are the domain's.

use crate::api;
use crate::app::{use_app, Rooms};
use crate::route::use_route;
use domain::validation::{validate_id, validate_text, ROOM_NAME_MAX};
use leptos::prelude::*;

#[component]
pub fn Sidebar() -> impl IntoView {
    view! {
        <aside class="sidebar">
            <RoomList />
            <NewRoom />
        </aside>
    }
}

#[component]
fn RoomList() -> impl IntoView {
    let app = use_app();
    let list = Memo::new(move |_| match &*app.rooms.read() {
        Rooms::Loaded(rooms) => rooms.clone(),
        _ => Vec::new(),
    });
    let route = use_route();
    let state = move || match &*app.rooms.read() {
        Rooms::Loading => Some(view! { <p class="muted pad">"Loading rooms…"</p> }.into_any()),
        Rooms::Failed(e) => Some(
            view! {
                <div class="pad">
                    <p role="alert" class="error-text">{e.clone()}</p>
                    <button type="button" on:click=move |_| app.refresh_rooms()>
                        "Try again"
                    </button>
                </div>
            }
            .into_any(),
        ),
        Rooms::Loaded(r) if r.is_empty() => Some(
            view! { <p class="muted pad">"No rooms yet. Create the first one below."</p> }
                .into_any(),
        ),
        Rooms::Loaded(_) => None,
    };
    // Rebuilt in place when the list or the open room changes: the links
    // stay, their text and marks follow.
    let items = move || {
        let path = route.path();
        list.with(|l| {
            l.iter()
                .map(|r| {
                    let href = format!("/rooms/{}", r.room_id);
                    let current = (path == href).then_some("page");
                    let unread = r.unread_count;
                    view! {
                        <li>
                            <a href=href aria-current=current class="room-link">
                                <span class="room-name">{r.name.clone()}</span>
                                {(unread > 0).then(|| view! { <span class="badge">{unread}</span> })}
                            </a>
                        </li>
                    }
                })
                .collect_view()
        })
    };
    view! {
        <nav class="rooms" aria-label="Rooms">
            <h2 class="section-title">"Rooms"</h2>
            {state}
            <ul class="room-list">{items}</ul>
        </nav>
    }
}

#[component]
fn NewRoom() -> impl IntoView {
    let app = use_app();
    let route = use_route();
    let room_id = NodeRef::<leptos::html::Input>::new();
    let name = NodeRef::<leptos::html::Input>::new();
    let value = move |r: NodeRef<leptos::html::Input>| {
        r.get_untracked().map(|i| i.value()).unwrap_or_default()
    };
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let create = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        let (id, n) = (value(room_id), value(name));
        let checked = validate_id("Room id", &id)
            .and_then(|_| validate_text("Room name", Some(&n), ROOM_NAME_MAX));
        if let Err(r) = checked {
            error.set(Some(format!("{}.", r.message)));
            return;
        }
        let Some(token) = app.token() else { return };
        busy.set(true);
        error.set(None);
        crate::browser::spawn(async move {
            let result = api::create_room(&token, &id, n.trim()).await;
            app.saw(&result);
            busy.set(false);
            match result {
                Ok(room) => {
                    for r in [room_id, name] {
                        if let Some(i) = r.get_untracked() {
                            i.set_value("");
                        }
                    }
                    app.rooms.update(|r| {
                        if let Rooms::Loaded(list) = r {
                            if !list.iter().any(|x| x.room_id == room.room_id) {
                                list.push(room.clone());
                            }
                        }
                    });
                    app.refresh_rooms();
                    route.go(&format!("/rooms/{}", room.room_id));
                }
                Err(e) if e.code() == "room_exists" => {
                    error.set(Some("A room with this id exists already.".into()))
                }
                Err(e) => error.set(Some(e.message())),
            }
        });
    };
    view! {
        <form class="new-room" on:submit=create>
            <h2 class="section-title">"New room"</h2>
            <label for="new-room-id">"Room id"</label>
            <input
                id="new-room-id"
                autocomplete="off"
                autocapitalize="none"
                spellcheck="false"
                maxlength="32"
                placeholder="e.g. general"
                node_ref=room_id
            />
            <label for="new-room-name">"Room name"</label>
            <input id="new-room-name" autocomplete="off" maxlength="100" placeholder="e.g. General" node_ref=name />
            <button type="submit" class="primary" disabled=busy>
                "Create room"
            </button>
            {move || error.get().map(|e| view! { <p role="alert" class="alert">{e}</p> })}
        </form>
    }
}
