//! The side bar: the room list (each a link with the room's name and, when
//! above 0, the server's unread count as a bare number) and the form that
//! creates a room and opens it. Room id and name rules are the domain's.

use crate::api;
use crate::app::{use_app, Rooms};
use crate::wire::RoomSummary;
use domain::validation::{validate_id, validate_text, ROOM_NAME_MAX};
use leptos::prelude::*;
use leptos_router::hooks::{use_location, use_navigate};

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
    let ids =
        Memo::new(move |_| list.with(|l| l.iter().map(|r| r.room_id.clone()).collect::<Vec<_>>()));
    let state = move || match &*app.rooms.read() {
        Rooms::Loading => Some(view! { <p class="muted pad">"Loading rooms…"</p> }.into_any()),
        Rooms::Failed(e) => Some(
            view! {
                <div class="pad">
                    <p class="error-text">{e.clone()}</p>
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
    view! {
        <nav class="rooms" aria-label="Rooms">
            <h2 class="section-title">"Rooms"</h2>
            {state}
            <ul class="room-list">
                <For each=move || ids.get() key=|id| id.clone() let:id>
                    <RoomItem id list />
                </For>
            </ul>
        </nav>
    }
}

#[component]
fn RoomItem(id: String, list: Memo<Vec<RoomSummary>>) -> impl IntoView {
    let location = use_location();
    let href = format!("/rooms/{id}");
    let current = {
        let href = href.clone();
        move || location.pathname.with(|p| *p == href).then_some("page")
    };
    let room = {
        let id = id.clone();
        Memo::new(move |_| list.with(|l| l.iter().find(|r| r.room_id == id).cloned()))
    };
    let name = move || room.with(|r| r.as_ref().map(|r| r.name.clone()));
    let unread = move || room.with(|r| r.as_ref().map_or(0, |r| r.unread_count));
    view! {
        <li>
            <a href=href aria-current=current class="room-link">
                <span class="room-name">{name}</span>
                <Show when=move || { unread() > 0 }>
                    <span class="badge">{unread}</span>
                </Show>
            </a>
        </li>
    }
}

#[component]
fn NewRoom() -> impl IntoView {
    let app = use_app();
    let navigate = use_navigate();
    let room_id = RwSignal::new(String::new());
    let name = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let create = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        let (id, n) = (room_id.get_untracked(), name.get_untracked());
        let checked = validate_id("Room id", &id)
            .and_then(|_| validate_text("Room name", Some(&n), ROOM_NAME_MAX));
        if let Err(r) = checked {
            error.set(Some(format!("{}.", r.message)));
            return;
        }
        let Some(token) = app.token() else { return };
        busy.set(true);
        error.set(None);
        let navigate = navigate.clone();
        leptos::task::spawn_local(async move {
            let result = api::create_room(&token, &id, n.trim()).await;
            app.saw(&result);
            busy.set(false);
            match result {
                Ok(room) => {
                    room_id.set(String::new());
                    name.set(String::new());
                    app.rooms.update(|r| {
                        if let Rooms::Loaded(list) = r {
                            if !list.iter().any(|x| x.room_id == room.room_id) {
                                list.push(room.clone());
                            }
                        }
                    });
                    app.refresh_rooms();
                    navigate(&format!("/rooms/{}", room.room_id), Default::default());
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
                bind:value=room_id
            />
            <label for="new-room-name">"Room name"</label>
            <input id="new-room-name" autocomplete="off" maxlength="100" placeholder="e.g. General" bind:value=name />
            <button type="submit" class="primary" disabled=busy>
                "Create room"
            </button>
            {move || error.get().map(|e| view! { <p role="alert" class="alert">{e}</p> })}
        </form>
    }
}
