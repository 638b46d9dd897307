//! The open room's WebSocket: connects from the last seq held, feeds frames
//! to the [`LiveRoom`], sends what it returns, and reconnects after a drop
//! as [`crate::link::Link`] says (backoff, offline, signed out). Every
//! decision is the `LiveRoom`'s; this module only moves frames.

use crate::api;
use crate::browser;
use crate::link::{AfterClose, LinkState};
use crate::live_room::LiveRoom;
use leptos::prelude::*;
use std::cell::RefCell;
use std::rc::{Rc, Weak};
use std::time::Duration;
use uuid::Uuid;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{CloseEvent, MessageEvent, WebSocket};

/// What the socket tells the rest of the app.
#[derive(Clone)]
pub struct Hooks {
    /// The token no longer works (close code 4001, or a 401 on reconnect).
    pub session_ended: Callback<()>,
    /// One of our `MESSAGE_READ`s was stored: unread counts changed.
    pub read_stored: Callback<()>,
    /// The room is gone (a 404 when reconnecting).
    pub room_gone: Callback<()>,
}

struct Handlers {
    _open: Closure<dyn FnMut()>,
    _message: Closure<dyn FnMut(MessageEvent)>,
    _close: Closure<dyn FnMut(CloseEvent)>,
}

struct Inner {
    live: RwSignal<Option<LiveRoom>>,
    token: String,
    hooks: Hooks,
    ws: Option<WebSocket>,
    handlers: Option<Handlers>,
    /// Which connection the handlers belong to: those of older sockets are ignored.
    generation: u64,
    retry: Option<TimeoutHandle>,
    stopped: bool,
}

/// A handle on the room's socket; cheap to clone.
#[derive(Clone)]
pub struct Socket(Rc<RefCell<Inner>>);

impl Socket {
    pub fn new(live: RwSignal<Option<LiveRoom>>, token: String, hooks: Hooks) -> Self {
        Socket(Rc::new(RefCell::new(Inner {
            live,
            token,
            hooks,
            ws: None,
            handlers: None,
            generation: 0,
            retry: None,
            stopped: false,
        })))
    }

    /// Connects (again) from the last seq the room holds.
    pub fn connect(&self) {
        let mut inner = self.0.borrow_mut();
        if inner.stopped {
            return;
        }
        if let Some(t) = inner.retry.take() {
            t.clear();
        }
        inner.close_socket();
        if !browser::is_online() {
            inner.live.update(|l| {
                if let Some(l) = l {
                    l.link_mut().went_offline()
                }
            });
            return;
        }
        let Some(path) = inner.live.try_update(|l| {
            l.as_mut().map(|l| {
                l.link_mut().connecting();
                l.socket_path()
            })
        }) else {
            return;
        };
        let Some(path) = path else { return };
        // `trunk serve` (which builds without --release) proxies the socket at
        // /api/ws/… because it routes proxies by prefix only (see Trunk.toml).
        let path = if cfg!(debug_assertions) {
            path.replacen("/api/", "/api/ws/", 1)
        } else {
            path
        };
        let url = format!(
            "{}{path}&token={}",
            browser::ws_origin(),
            browser::encode(&inner.token)
        );
        inner.generation += 1;
        let generation = inner.generation;
        let ws = match WebSocket::new(&url) {
            Ok(ws) => ws,
            Err(_) => {
                drop(inner);
                self.on_close(generation, 1006);
                return;
            }
        };
        let weak = Rc::downgrade(&self.0);
        let open = {
            let weak = weak.clone();
            Closure::<dyn FnMut()>::new(move || {
                if let Some(s) = upgrade(&weak) {
                    s.on_open(generation);
                }
            })
        };
        let message = {
            let weak = weak.clone();
            Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
                if let (Some(s), Some(text)) = (upgrade(&weak), e.data().as_string()) {
                    s.on_message(generation, &text);
                }
            })
        };
        let close = Closure::<dyn FnMut(CloseEvent)>::new(move |e: CloseEvent| {
            if let Some(s) = upgrade(&weak) {
                s.on_close(generation, e.code());
            }
        });
        ws.set_onopen(Some(open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(close.as_ref().unchecked_ref()));
        inner.ws = Some(ws);
        inner.handlers = Some(Handlers {
            _open: open,
            _message: message,
            _close: close,
        });
    }

    /// Sends frames on the open socket (those that cannot go now stay
    /// queued in the outbox and go when it opens).
    pub fn send(&self, frames: Vec<String>) {
        let inner = self.0.borrow();
        if let Some(ws) = &inner.ws {
            for f in frames {
                let _ = ws.send_with_str(&f);
            }
        }
    }

    /// The browser went offline: close and wait for it to come back.
    pub fn went_offline(&self) {
        let mut inner = self.0.borrow_mut();
        if let Some(t) = inner.retry.take() {
            t.clear();
        }
        inner.close_socket();
        inner.live.update(|l| {
            if let Some(l) = l {
                l.link_mut().went_offline()
            }
        });
    }

    /// The browser is back online: connect at once.
    pub fn came_online(&self) {
        {
            let inner = self.0.borrow();
            if inner.stopped {
                return;
            }
            inner.live.update(|l| {
                if let Some(l) = l {
                    l.link_mut().came_online()
                }
            });
        }
        self.connect();
    }

    /// Closes for good (the room is left).
    pub fn stop(&self) {
        let mut inner = self.0.borrow_mut();
        inner.stopped = true;
        // The status line stops saying "Reconnecting…" for it.
        inner
            .live
            .try_update(|l| l.as_mut().map(|l| l.link_mut().stop()));
        if let Some(t) = inner.retry.take() {
            t.clear();
        }
        inner.close_socket();
    }

    fn on_open(&self, generation: u64) {
        let frames = {
            let inner = self.0.borrow();
            if inner.generation != generation {
                return;
            }
            inner
                .live
                .try_update(|l| l.as_mut().map(|l| l.socket_opened(js_sys::Date::now())))
                .flatten()
                .unwrap_or_default()
        };
        self.send(frames);
    }

    fn on_message(&self, generation: u64, text: &str) {
        let (outcome, hooks) = {
            let inner = self.0.borrow();
            if inner.generation != generation {
                return;
            }
            let outcome = inner
                .live
                .try_update(|l| l.as_mut().map(|l| l.receive_frame(text)))
                .flatten();
            (outcome, inner.hooks.clone())
        };
        let Some(outcome) = outcome else { return };
        if outcome.read_stored {
            hooks.read_stored.run(());
        }
        if let Some((id, delay_ms)) = outcome.resend_after {
            let weak = Rc::downgrade(&self.0);
            set_timeout(
                move || {
                    if let Some(s) = upgrade(&weak) {
                        s.resend(id);
                    }
                },
                Duration::from_millis(delay_ms.into()),
            );
        }
        if outcome.resync {
            // A gap: reconnect from the last seq held, which resends the rest.
            let inner = self.0.borrow();
            if let Some(ws) = &inner.ws {
                let _ = ws.close_with_code(1000);
            }
        }
    }

    fn resend(&self, id: Uuid) {
        let frame = {
            let inner = self.0.borrow();
            inner
                .live
                .try_with(|l| l.as_ref().and_then(|l| l.resend(id)))
                .flatten()
        };
        if let Some(f) = frame {
            self.send(vec![f]);
        }
    }

    fn on_close(&self, generation: u64, code: u16) {
        let (after, failures, hooks, token, room) = {
            let mut inner = self.0.borrow_mut();
            if inner.generation != generation || inner.stopped {
                return;
            }
            inner.close_socket();
            let online = browser::is_online();
            let Some(Some((after, failures, room))) = inner.live.try_update(|l| {
                l.as_mut().map(|l| {
                    let after = l.socket_closed(code, online, js_sys::Date::now());
                    (after, l.link().failures(), l.room_id().to_owned())
                })
            }) else {
                return;
            };
            (
                after,
                failures,
                inner.hooks.clone(),
                inner.token.clone(),
                room,
            )
        };
        match after {
            AfterClose::Retry { delay_ms } => {
                if failures >= 2 {
                    // Browsers hide why an upgrade failed: ask over HTTP
                    // whether the token or the room is gone.
                    let hooks = hooks.clone();
                    let me = self.clone();
                    crate::browser::spawn(async move {
                        match api::room(&token, &room).await {
                            Err(e) if e.is_unauthorized() => {
                                me.stop();
                                hooks.session_ended.run(());
                            }
                            Err(e) if e.status() == Some(404) => {
                                me.stop();
                                hooks.room_gone.run(());
                            }
                            _ => {}
                        }
                    });
                }
                // Spread out, so that the clients of a restarted server
                // do not all come back in the same millisecond.
                let delay_ms = (f64::from(delay_ms) * (0.75 + 0.5 * js_sys::Math::random())) as u64;
                let weak = Rc::downgrade(&self.0);
                let handle = set_timeout_with_handle(
                    move || {
                        if let Some(s) = upgrade(&weak) {
                            s.connect();
                        }
                    },
                    Duration::from_millis(delay_ms),
                )
                .ok();
                self.0.borrow_mut().retry = handle;
            }
            AfterClose::SignIn => hooks.session_ended.run(()),
            AfterClose::WaitOnline | AfterClose::Stop => {}
        }
    }

    /// The socket's state, for tests and the status line.
    pub fn state(&self) -> Option<LinkState> {
        let inner = self.0.borrow();
        inner
            .live
            .try_with(|l| l.as_ref().map(|l| l.link().state()))
            .flatten()
    }
}

fn upgrade(weak: &Weak<RefCell<Inner>>) -> Option<Socket> {
    weak.upgrade().map(Socket)
}

impl Inner {
    /// Closes the current socket, if any, without hearing of it.
    fn close_socket(&mut self) {
        if let Some(ws) = self.ws.take() {
            ws.set_onopen(None);
            ws.set_onmessage(None);
            ws.set_onclose(None);
            let _ = ws.close();
        }
        if let Some(h) = self.handlers.take() {
            // One of them may be running now: drop them after it returns.
            set_timeout(move || drop(h), Duration::ZERO);
        }
    }
}
