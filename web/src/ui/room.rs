//! The open room (`/rooms/{roomId}`): loads it fast (a snapshot windowed to
//! the newest messages plus the events after it, replayed by the domain's
//! reducer), follows its WebSocket, and holds what its parts share
//! ([`RoomCtx`]): the [`LiveRoom`], the time-travel view and the actions.

use crate::api;
use crate::app::{use_app, AppState};
use crate::browser::{self, new_event_id, now};
use crate::history::{History, LOG_RADIUS};
use crate::live_room::{older_before, LiveRoom, PAGE};
use crate::socket::{Hooks, Socket};
use crate::ui::composer::Composer;
use crate::ui::message::MessageList;
use crate::ui::travel::{EventLog, TravelBar};
use domain::{ChatEvent, EventType, Refusal, RoomState};
use leptos::prelude::*;
use std::time::Duration;
use uuid::Uuid;

/// Messages asked for per page of `/messages` when scrolling up.
const OLDER_PAGE: usize = 100;

/// Where the room's loading is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Load {
    Loading,
    Ready,
    NotFound,
    Failed(String),
}

/// The room as it was after `seq`, while the time-travel slider is away
/// from the end.
#[derive(Clone, Debug)]
pub struct Travel {
    pub seq: u64,
    /// `None` until the first load; kept while a newer one loads.
    pub state: Option<RoomState>,
    /// The raw events around `seq`.
    pub log: Vec<ChatEvent>,
    /// Newest messages shown.
    pub limit: usize,
    pub loading: bool,
    pub error: Option<String>,
}

/// Loading of older messages when scrolling up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Older {
    Idle,
    Loading,
    Failed(String),
}

/// What the parts of the open room share (all `Copy`).
#[derive(Clone, Copy)]
pub struct RoomCtx {
    pub app: AppState,
    pub room_id: StoredValue<String>,
    pub live: RwSignal<Option<LiveRoom>>,
    pub load: RwSignal<Load>,
    /// Newest messages shown in the live view.
    pub limit: RwSignal<usize>,
    pub travel: RwSignal<Option<Travel>>,
    pub editing: RwSignal<Option<Uuid>>,
    pub older: RwSignal<Older>,
    /// Whether the list follows the newest message.
    pub stick: StoredValue<bool>,
    history: StoredValue<Option<History>>,
    travel_gen: StoredValue<u64>,
    socket: StoredValue<Option<Socket>, LocalStorage>,
}

pub fn use_room() -> RoomCtx {
    expect_context::<RoomCtx>()
}

impl RoomCtx {
    fn token(&self) -> Option<String> {
        self.app.token()
    }

    pub fn room(&self) -> String {
        self.room_id.get_value()
    }

    /// Runs an action on the live room and sends the frames it returns.
    pub fn run(
        &self,
        f: impl FnOnce(&mut LiveRoom) -> Result<Vec<String>, Refusal>,
    ) -> Result<(), Refusal> {
        match self.live.try_update(|l| l.as_mut().map(f)).flatten() {
            Some(Ok(frames)) => {
                self.socket.with_value(|s| {
                    if let Some(s) = s {
                        s.send(frames)
                    }
                });
                Ok(())
            }
            Some(Err(e)) => Err(e),
            None => Ok(()),
        }
    }

    /// Runs an action and shows a refusal as a notice.
    fn act(&self, f: impl FnOnce(&mut LiveRoom) -> Result<Vec<String>, Refusal>) {
        if let Err(r) = self.run(f) {
            self.live.update(|l| {
                if let Some(l) = l {
                    l.notify(format!("Not done: {}.", r.message))
                }
            });
        }
    }

    /// Sends a message; the domain's refusal (blank, too long) if it is not one.
    pub fn send_text(&self, text: &str) -> Result<(), Refusal> {
        if self.travel.with_untracked(Option::is_some) {
            self.go_live();
        }
        self.stick.set_value(true);
        self.run(|l| l.send_text(new_event_id(), text, now()))
    }

    pub fn edit(&self, id: Uuid, text: &str) {
        self.act(|l| {
            l.act(
                new_event_id(),
                EventType::MessageEdited,
                Some(text),
                id,
                now(),
            )
        });
    }

    pub fn delete(&self, id: Uuid) {
        self.act(|l| l.act(new_event_id(), EventType::MessageDeleted, None, id, now()));
    }

    pub fn react(&self, id: Uuid, emoji: &str, add: bool) {
        let t = if add {
            EventType::ReactionAdded
        } else {
            EventType::ReactionRemoved
        };
        self.act(|l| l.act(new_event_id(), t, Some(emoji), id, now()));
    }

    pub fn retry(&self, id: Uuid) {
        self.act(|l| l.retry_failed(id, now()));
    }

    pub fn discard(&self, id: Uuid) {
        self.live.update(|l| {
            if let Some(l) = l {
                l.discard_failed(id)
            }
        });
    }

    pub fn dismiss(&self, notice: u64) {
        self.live.update(|l| {
            if let Some(l) = l {
                l.dismiss(notice)
            }
        });
    }

    /// Marks read the newest message from someone else among those on
    /// screen, if the user's marker is not there yet (live view only).
    pub fn mark_read(&self, visible: &[Uuid]) {
        if self.travel.with_untracked(Option::is_some) || !browser::page_visible() {
            return;
        }
        let id = new_event_id();
        let cmd = self
            .live
            .with_untracked(|l| l.as_ref().and_then(|l| l.read_command(visible, id)));
        if let Some(cmd) = cmd {
            let _ = self.run(|l| l.submit(&cmd, now()));
        }
    }

    /// The last seq of the room as confirmed.
    pub fn last_seq(&self) -> u64 {
        self.live
            .with(|l| l.as_ref().map_or(0, |l| l.confirmed().last_seq()))
    }

    /// Shows more of the past: messages held but not shown yet, or the
    /// next page from `/messages?beforeSeq` (as of the travel point in time
    /// travel).
    pub fn load_older(&self) {
        if self.older.get_untracked() == Older::Loading {
            return;
        }
        let travel = self.travel.with_untracked(|t| {
            t.as_ref().map(|t| {
                (
                    t.seq,
                    t.limit,
                    t.state
                        .as_ref()
                        .map(|s| (s.message_count(), older_before(s))),
                )
            })
        });
        let (limit, count, before, at_seq) = match travel {
            Some((_, _, None)) => return,
            Some((k, limit, Some((count, before)))) => (limit, count, before, Some(k)),
            None => {
                let Some((count, before)) = self.live.with_untracked(|l| {
                    l.as_ref()
                        .map(|l| (l.shown().message_count(), l.older_before()))
                }) else {
                    return;
                };
                (self.limit.get_untracked(), count, before, None)
            }
        };
        if count > limit {
            self.grow_limit();
            return;
        }
        let (Some(before), Some(token)) = (before, self.token()) else {
            return;
        };
        let ctx = *self;
        let room = self.room();
        self.older.set(Older::Loading);
        crate::browser::spawn(async move {
            let mut result = api::messages(&token, &room, before, OLDER_PAGE, at_seq).await;
            // A page older than the state (read before events we applied
            // since) could show a deleted message again: read it again.
            let stale = |p: &crate::wire::MessagesPage| {
                at_seq.is_none()
                    && p.last_seq
                        < ctx
                            .live
                            .with_untracked(|l| l.as_ref().map_or(0, |l| l.confirmed().last_seq()))
            };
            if result.as_ref().is_ok_and(stale) {
                result = api::messages(&token, &room, before, OLDER_PAGE, at_seq).await;
            }
            ctx.app.saw(&result);
            match result {
                Ok(page) => {
                    let reaches_start = page.messages.len() < OLDER_PAGE;
                    match at_seq {
                        Some(k) => ctx.travel.update(|t| {
                            if let Some(t) = t.as_mut().filter(|t| t.seq == k) {
                                if let Some(s) = &mut t.state {
                                    let _ = s.add_older(&page.messages, before, reaches_start);
                                }
                            }
                        }),
                        None => ctx.live.update(|l| {
                            if let Some(l) = l {
                                l.add_older(&page, before, OLDER_PAGE);
                            }
                        }),
                    }
                    ctx.older.set(Older::Idle);
                    ctx.grow_limit();
                }
                Err(e) => ctx.older.set(Older::Failed(e.message())),
            }
        });
    }

    fn grow_limit(&self) {
        if self.travel.with_untracked(Option::is_some) {
            self.travel.update(|t| {
                if let Some(t) = t {
                    t.limit += PAGE
                }
            });
        } else {
            self.limit.update(|l| *l += PAGE);
        }
    }

    /// Back to the present.
    pub fn go_live(&self) {
        self.travel_gen.update_value(|g| *g += 1);
        self.travel.set(None);
        self.stick.set_value(true);
    }

    /// Shows the room exactly as after seq `k`: replayed from what is held
    /// when it reaches `k`, else from the nearest snapshot at or before `k`
    /// and the events after it, fetched.
    pub fn travel_to(&self, k: u64) {
        let last = self
            .live
            .with_untracked(|l| l.as_ref().map_or(0, |l| l.confirmed().last_seq()));
        if k >= last {
            self.go_live();
            return;
        }
        let k = k.max(1);
        self.editing.set(None);
        self.travel_gen.update_value(|g| *g += 1);
        let local = self.history.with_value(|h| {
            let h = h.as_ref()?;
            if !h.log_complete(k, LOG_RADIUS, last) {
                return None;
            }
            Some((h.state_at(k)?, h.log_around(k, LOG_RADIUS).to_vec()))
        });
        if let Some((state, log)) = local {
            self.travel.set(Some(Travel {
                seq: k,
                state: Some(state),
                log,
                limit: PAGE,
                loading: false,
                error: None,
            }));
            self.stick.set_value(true);
            return;
        }
        self.travel.update(|t| match t {
            Some(t) => {
                t.seq = k;
                t.loading = true;
                t.error = None;
            }
            None => {
                *t = Some(Travel {
                    seq: k,
                    state: None,
                    log: Vec::new(),
                    limit: PAGE,
                    loading: true,
                    error: None,
                })
            }
        });
        // Wait for the slider to rest a moment before asking the server.
        let generation = self.travel_gen.get_value();
        let ctx = *self;
        set_timeout(
            move || {
                if ctx.travel_gen.try_get_value() == Some(generation) {
                    crate::browser::spawn(ctx.fetch_travel(k, last, generation));
                }
            },
            Duration::from_millis(120),
        );
    }

    async fn fetch_travel(self, k: u64, last: u64, generation: u64) {
        let Some(token) = self.token() else { return };
        let room = self.room();
        let result = api::load_history(token, room, k, last, PAGE).await;
        self.app.saw(&result);
        if self.travel_gen.try_get_value() != Some(generation) {
            return;
        }
        let shown = match result {
            Ok(Some(h)) => {
                let shown = h
                    .state_at(k)
                    .map(|s| (s, h.log_around(k, LOG_RADIUS).to_vec()));
                self.history.set_value(Some(h));
                shown.ok_or_else(|| "The room's history could not be replayed.".to_owned())
            }
            Ok(None) => Err("The room's history could not be replayed.".to_owned()),
            Err(e) => Err(e.message()),
        };
        self.travel.update(|t| {
            let Some(t) = t.as_mut().filter(|t| t.seq == k) else {
                return;
            };
            t.loading = false;
            match shown {
                Ok((state, log)) => {
                    t.state = Some(state);
                    t.log = log;
                    t.limit = PAGE;
                    t.error = None;
                }
                Err(e) => t.error = Some(e),
            }
        });
        self.stick.set_value(true);
    }
}

/// The open room; the shell makes one anew for each room id (leaving a
/// room closes its socket).
#[component]
pub fn RoomView(room_id: String) -> impl IntoView {
    let app = use_app();
    let ctx = RoomCtx {
        app,
        room_id: StoredValue::new(room_id.clone()),
        live: RwSignal::new(None),
        load: RwSignal::new(Load::Loading),
        limit: RwSignal::new(PAGE),
        travel: RwSignal::new(None),
        editing: RwSignal::new(None),
        older: RwSignal::new(Older::Idle),
        stick: StoredValue::new(true),
        history: StoredValue::new(None),
        travel_gen: StoredValue::new(0),
        socket: StoredValue::new_local(None),
    };
    provide_context(ctx);
    app.open_room.set(Some(room_id.clone()));

    let hooks = Hooks {
        session_ended: Callback::new(move |_| app.session_ended()),
        read_stored: Callback::new(move |_| app.refresh_rooms()),
        room_gone: Callback::new(move |_| ctx.load.set(Load::NotFound)),
    };
    let socket = Socket::new(ctx.live, app.token().unwrap_or_default(), hooks);
    ctx.socket.set_value(Some(socket));

    let start = move || {
        let (Some(token), Some(user)) = (app.token(), app.user()) else {
            return;
        };
        let room = ctx.room();
        let store = app.store.get_value();
        ctx.load.set(Load::Loading);
        crate::browser::spawn(async move {
            let result = api::load_room(token, room.clone(), PAGE).await;
            app.saw(&result);
            if ctx.load.try_get_untracked().is_none() {
                return; // left already
            }
            match result {
                Ok(state) => {
                    ctx.live
                        .set(Some(LiveRoom::new(&user, &room, state, store)));
                    ctx.load.set(Load::Ready);
                    crate::browser::mark_after_paint("chat:room-painted");
                    ctx.socket.with_value(|s| {
                        if let Some(s) = s {
                            s.connect()
                        }
                    });
                }
                Err(e) if e.status() == Some(404) => ctx.load.set(Load::NotFound),
                Err(e) => ctx.load.set(Load::Failed(e.message())),
            }
        });
    };
    start();

    // The status line follows this room's socket while it is open.
    Effect::new(move |_| {
        let link = ctx.live.with(|l| l.as_ref().map(|l| l.link().clone()));
        let link = match (link, ctx.load.get()) {
            (Some(link), _) => Some(link),
            (None, Load::Loading) => Some(crate::link::Link::new()),
            (None, _) => None,
        };
        if app.socket.get_untracked() != link {
            app.socket.set(link);
        }
    });
    // Offline: close and queue; online again: reconnect (or load) at once.
    Effect::new(move |prev: Option<bool>| {
        let online = app.browser_online.get();
        if prev.is_some_and(|p| p != online) {
            if ctx.load.get_untracked() != Load::Ready {
                if online {
                    start();
                }
            } else {
                ctx.socket.with_value(|s| {
                    if let Some(s) = s {
                        if online {
                            s.came_online()
                        } else {
                            s.went_offline()
                        }
                    }
                });
            }
        }
        online
    });
    // A room that could not load for want of a server is tried again.
    let retry = set_interval_with_handle(
        move || {
            if matches!(ctx.load.try_get_untracked(), Some(Load::Failed(_))) && browser::is_online()
            {
                start();
            }
        },
        Duration::from_secs(4),
    )
    .ok();
    on_cleanup(move || {
        if let Some(r) = retry {
            r.clear();
        }
        ctx.socket.try_with_value(|s| {
            if let Some(s) = s {
                s.stop()
            }
        });
        app.socket.set(None);
        app.open_room.set(None);
        app.flush_queues();
    });

    let title = {
        let room_id = room_id.clone();
        move || {
            let from_state = ctx.live.with(|l| {
                l.as_ref()
                    .and_then(|l| l.shown().info().map(|i| i.name.clone()))
            });
            from_state
                .or_else(|| {
                    app.rooms.with(|r| match r {
                        crate::app::Rooms::Loaded(list) => list
                            .iter()
                            .find(|x| x.room_id == room_id)
                            .map(|x| x.name.clone()),
                        _ => None,
                    })
                })
                .unwrap_or_else(|| room_id.clone())
        }
    };
    let traveling = move || ctx.travel.with(Option::is_some);
    let body = move || match ctx.load.get() {
        Load::Loading => view! { <p class="placeholder muted">"Loading messages…"</p> }.into_any(),
        Load::NotFound => view! {
            <div class="placeholder">
                <h3>"Room not found"</h3>
                <p>"No room has this id. It may have been mistyped."</p>
                <p>
                    <a href="/">"Back to the rooms"</a>
                </p>
            </div>
        }
        .into_any(),
        Load::Failed(e) => view! {
            <div class="placeholder">
                <p role="alert" class="alert">
                    {format!("The room could not be loaded. {e}")}
                </p>
                <button type="button" on:click=move |_| start()>
                    "Try again"
                </button>
            </div>
        }
        .into_any(),
        Load::Ready => view! {
            <TravelBar />
            <Notices />
            <div class="room-body" class:traveling=traveling>
                <MessageList />
                {move || traveling().then(|| view! { <EventLog /> })}
            </div>
            <Composer />
        }
        .into_any(),
    };
    view! {
        <section class="room" aria-labelledby="room-title">
            <header class="room-head">
                <a href="/" class="back" aria-label="Back to the rooms">
                    "‹"
                </a>
                <h2 id="room-title" class="room-title">
                    {title}
                </h2>
            </header>
            {body}
        </section>
    }
}

/// The room's notices: refused or undone actions, each a `role="alert"`.
#[component]
fn Notices() -> impl IntoView {
    let ctx = use_room();
    let notices = Memo::new(move |_| {
        ctx.live
            .with(|l| l.as_ref().map(|l| l.notices().to_vec()).unwrap_or_default())
    });
    let list = move || {
        notices
            .get()
            .into_iter()
            .map(|n| {
                view! {
                    <div role="alert" class="alert notice">
                        <span>{n.text}</span>
                        <button
                            type="button"
                            class="quiet"
                            aria-label="Dismiss"
                            on:click=move |_| ctx.dismiss(n.id)
                        >
                            "×"
                        </button>
                    </div>
                }
            })
            .collect_view()
    };
    view! { <div class="notices">{list}</div> }
}
