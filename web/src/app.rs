//! The state shared by every screen ([`AppState`]: the session, the
//! network, the room list) and the page a URL names (`/` and
//! `/rooms/{roomId}`); the components that show them are in `ui`.

use crate::api;
use crate::browser;
use crate::link::Link;
use crate::outbox::Outbox;
use crate::session::Session;
use crate::store::SharedStore;
use crate::wire::RoomSummary;
use leptos::prelude::*;

/// The screen a URL shows: `/` the room list (no room open), `/rooms/{roomId}`
/// that room.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Page {
    Rooms,
    Room(String),
    NotFound,
}

impl Page {
    pub fn of(path: &str) -> Page {
        let mut parts = path.split('/').filter(|s| !s.is_empty());
        match (parts.next(), parts.next(), parts.next()) {
            (None, _, _) => Page::Rooms,
            (Some("rooms"), Some(id), None) => Page::Room(id.to_owned()),
            _ => Page::NotFound,
        }
    }
}

/// The room list as last fetched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rooms {
    Loading,
    Loaded(Vec<RoomSummary>),
    Failed(String),
}

/// State every screen shares, as signals (all `Copy`).
#[derive(Clone, Copy)]
pub struct AppState {
    pub store: StoredValue<SharedStore>,
    pub session: RwSignal<Option<Session>>,
    /// `navigator.onLine`, kept up to date by the `online`/`offline` events.
    pub browser_online: RwSignal<bool>,
    /// Whether the server answered the last request (`None`: not asked yet).
    pub server_ok: RwSignal<Option<bool>>,
    /// The open room's socket, for the status line.
    pub socket: RwSignal<Option<Link>>,
    pub rooms: RwSignal<Rooms>,
    /// An app-wide error a person must see (the session ended, a queued
    /// action in a room not open was refused).
    pub alert: RwSignal<Option<String>>,
    /// The room open now, whose queue its socket sends.
    pub open_room: RwSignal<Option<String>>,
    flushing: StoredValue<bool>,
}

pub fn use_app() -> AppState {
    expect_context::<AppState>()
}

impl AppState {
    pub fn new(store: SharedStore) -> Self {
        let session = Session::load(&*store);
        AppState {
            store: StoredValue::new(store),
            session: RwSignal::new(session),
            browser_online: RwSignal::new(browser::is_online()),
            server_ok: RwSignal::new(None),
            socket: RwSignal::new(None),
            rooms: RwSignal::new(Rooms::Loading),
            alert: RwSignal::new(None),
            open_room: RwSignal::new(None),
            flushing: StoredValue::new(false),
        }
    }

    pub fn token(&self) -> Option<String> {
        self.session
            .try_with_untracked(|s| s.as_ref().map(|s| s.token.clone()))
            .flatten()
    }

    pub fn user(&self) -> Option<String> {
        self.session
            .try_with_untracked(|s| s.as_ref().map(|s| s.user_id.clone()))
            .flatten()
    }

    pub fn signed_in(&self, s: Session) {
        s.save(&*self.store.get_value());
        self.alert.set(None);
        self.rooms.set(Rooms::Loading);
        self.session.set(Some(s));
    }

    /// The token stopped working: back to the sign-in screen, saying why.
    /// Queued events stay stored for the next sign-in.
    pub fn session_ended(&self) {
        Session::forget(&*self.store.get_value());
        self.session.set(None);
        self.alert
            .set(Some("Your session ended. Sign in again.".into()));
    }

    pub fn sign_out(&self) {
        if let Some(token) = self.token() {
            crate::browser::spawn(async move {
                let _ = api::sign_out(&token).await;
            });
        }
        Session::forget(&*self.store.get_value());
        self.session.set(None);
        self.rooms.set(Rooms::Loading);
        self.alert.set(None);
    }

    /// Notes how a request went, for the status line; ends the session on 401.
    pub fn saw<T>(&self, result: &Result<T, api::ApiError>) {
        match result {
            Err(api::ApiError::Network) => self.server_ok.set(Some(false)),
            Err(e) if e.is_unauthorized() => self.session_ended(),
            _ => self.server_ok.set(Some(true)),
        }
    }

    /// Fetches the room list (with unread counts).
    pub fn refresh_rooms(&self) {
        let Some(token) = self.token() else { return };
        let app = *self;
        crate::browser::spawn(async move {
            let result = api::rooms(&token).await;
            app.saw(&result);
            match result {
                Ok(rooms) => {
                    app.rooms.set(Rooms::Loaded(rooms));
                    app.flush_queues();
                }
                Err(e) => {
                    if !matches!(app.rooms.get_untracked(), Rooms::Loaded(_)) {
                        app.rooms.set(Rooms::Failed(e.message()));
                    }
                }
            }
        });
    }

    /// Sends the queued events of rooms that are not open (the open room's
    /// socket sends its own), one by one over HTTP, keeping those the server
    /// cannot take now.
    pub fn flush_queues(&self) {
        let (Some(token), Some(user)) = (self.token(), self.user()) else {
            return;
        };
        if self.flushing.get_value() || !browser::is_online() {
            return;
        }
        let store = self.store.get_value();
        let open = self.open_room.get_untracked();
        let rooms: Vec<String> = Outbox::rooms_with_events(&store, &user)
            .into_iter()
            .filter(|r| Some(r) != open.as_ref())
            .collect();
        if rooms.is_empty() {
            return;
        }
        self.flushing.set_value(true);
        let app = *self;
        crate::browser::spawn(async move {
            'rooms: for room in rooms {
                let mut outbox = Outbox::open(store.clone(), &user, &room);
                for event in outbox.events().to_vec() {
                    if app.open_room.get_untracked().as_deref() == Some(room.as_str()) {
                        continue 'rooms;
                    }
                    match api::post_event(&token, &room, &event).await {
                        Ok(_) => {
                            outbox.remove(event.event_id);
                        }
                        Err(e) if e.is_unauthorized() => {
                            app.session_ended();
                            break 'rooms;
                        }
                        Err(api::ApiError::Network) => break 'rooms,
                        Err(e) if e.status().is_some_and(|s| s == 429 || s >= 500) => {
                            continue 'rooms
                        }
                        Err(e) => {
                            outbox.remove(event.event_id);
                            app.alert.set(Some(format!(
                                "A queued action in room {room} was refused: {}",
                                e.message()
                            )));
                        }
                    }
                }
            }
            app.flushing.set_value(false);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::Page;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn urls_name_the_screens() {
        assert_eq!(Page::of("/"), Page::Rooms);
        assert_eq!(Page::of(""), Page::Rooms);
        assert_eq!(Page::of("/rooms/general"), Page::Room("general".into()));
        assert_eq!(Page::of("/rooms/general/"), Page::Room("general".into()));
        assert_eq!(Page::of("/rooms"), Page::NotFound);
        assert_eq!(Page::of("/rooms/a/b"), Page::NotFound);
        assert_eq!(Page::of("/elsewhere"), Page::NotFound);
    }
}
