//! The message list of the open room (live, or as of the time-travel
//! point), and one message: an `<article>` with its sender, text, time,
//! `edited`, reactions, read receipts and `data-state`, and on one's own
//! messages `Edit` and `Delete`. Text is always a text node.

use crate::app::use_app;
use crate::browser;
use crate::live_room::{rows_of, Row, RowState};
use crate::ui::room::{use_room, Older};
use leptos::html;
use leptos::prelude::*;
use std::time::Duration;
use uuid::Uuid;
use wasm_bindgen::JsCast;

/// The quick reactions offered.
const EMOJI: [&str; 6] = ["👍", "❤️", "😂", "🎉", "😮", "😢"];

/// The rows shown, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Rows(Vec<Row>);

impl Rows {
    fn new(rows: Vec<Row>) -> Self {
        Rows(rows)
    }

    fn order(&self) -> Vec<Uuid> {
        self.0.iter().map(|r| r.view.message_id).collect()
    }

    /// The row of a message: searched from the end, where changes are.
    fn get(&self, id: Uuid) -> Option<&Row> {
        self.0.iter().rev().find(|r| r.view.message_id == id)
    }
}

#[component]
pub fn MessageList() -> impl IntoView {
    let ctx = use_room();
    let rows = Memo::new(move |_| {
        let travel = ctx.travel.with(|t| {
            // While the state of a new point loads, the old one is not shown
            // under the new slider value.
            t.as_ref().map(|t| {
                t.state
                    .as_ref()
                    .filter(|_| !t.loading)
                    .map(|s| rows_of(s, t.limit, |_| RowState::Confirmed))
                    .unwrap_or_default()
            })
        });
        Rows::new(match travel {
            Some(rows) => rows,
            None => {
                let limit = ctx.limit.get();
                ctx.live
                    .with(|l| l.as_ref().map(|l| l.rows(limit)).unwrap_or_default())
            }
        })
    });
    let order = Memo::new(move |_| rows.with(Rows::order));
    let has_older = move || {
        let travel = ctx.travel.with(|t| {
            t.as_ref().map(|t| {
                t.state.as_ref().is_some_and(|s| {
                    s.message_count() > t.limit || crate::live_room::older_before(s).is_some()
                })
            })
        });
        travel.unwrap_or_else(|| {
            let limit = ctx.limit.get();
            ctx.live
                .with(|l| l.as_ref().is_some_and(|l| l.has_older(limit)))
        })
    };
    let scroller = NodeRef::<html::Div>::new();
    // Scroll height before older messages were added above, to keep the
    // messages in view where they were.
    let anchor = StoredValue::new(None::<(i32, i32)>);
    let read_timer = StoredValue::new_local(None::<TimeoutHandle>);

    let schedule_read = move || {
        if let Some(t) = read_timer.try_get_value().flatten() {
            t.clear();
        }
        let handle = set_timeout_with_handle(
            move || {
                if let Some(el) = scroller.get_untracked() {
                    let visible = visible_ids(&el);
                    ctx.mark_read(&visible);
                }
            },
            Duration::from_millis(400),
        )
        .ok();
        read_timer.try_set_value(handle);
    };

    let load_older = move || {
        if let Some(el) = scroller.get_untracked() {
            anchor.set_value(Some((el.scroll_height(), el.scroll_top())));
        }
        ctx.load_older();
    };

    // After each change: keep the view on the newest message, or where it
    // was when older ones were added; then see what is read.
    Effect::new(move |_| {
        rows.track();
        request_animation_frame(move || {
            let Some(el) = scroller.get_untracked() else {
                return;
            };
            if let Some((height, top)) = anchor.try_get_value().flatten() {
                if el.scroll_height() != height {
                    el.set_scroll_top(top + el.scroll_height() - height);
                    anchor.set_value(None);
                }
            } else if ctx.stick.try_get_value().unwrap_or(false) {
                el.set_scroll_top(el.scroll_height());
            }
            schedule_read();
        });
    });
    let focus = window_event_listener(leptos::ev::focus, move |_| schedule_read());
    on_cleanup(move || {
        focus.remove();
        if let Some(t) = read_timer.try_get_value().flatten() {
            t.clear();
        }
    });

    let on_scroll = move |_| {
        let Some(el) = scroller.get_untracked() else {
            return;
        };
        let from_bottom = el.scroll_height() - el.scroll_top() - el.client_height();
        ctx.stick.set_value(from_bottom < 64);
        if el.scroll_top() < 160 && has_older() && ctx.older.get_untracked() == Older::Idle {
            load_older();
        }
        schedule_read();
    };

    let older_state = move || ctx.older.get();
    let travel_loading = move || ctx.travel.with(|t| t.as_ref().is_some_and(|t| t.loading));
    let empty = move || order.with(Vec::is_empty) && !has_older();
    view! {
        <div
            class="messages"
            node_ref=scroller
            on:scroll=on_scroll
            on:mouseover=title_time_on_hover
            tabindex="0"
            role="log"
            aria-label="Conversation"
            aria-busy=move || if travel_loading() { "true" } else { "false" }
        >
            {move || has_older().then(|| view! {
                <div class="older">
                    {move || match older_state() {
                        Older::Loading => view! { <p class="muted">"Loading older messages…"</p> }.into_any(),
                        Older::Failed(e) => view! {
                            <p role="alert" class="alert">{format!("Older messages could not be loaded. {e}")}</p>
                            <button type="button" on:click=move |_| { ctx.older.set(Older::Idle); load_older(); }>
                                "Try again"
                            </button>
                        }
                        .into_any(),
                        Older::Idle => view! {
                            <button type="button" class="quiet" on:click=move |_| load_older()>
                                "Load older messages"
                            </button>
                        }
                        .into_any(),
                    }}
                </div>
            })}
            {move || empty().then(|| view! {
                <p class="empty">
                    {if travel_loading() {
                        "Loading the room as it was…"
                    } else if ctx.travel.with(Option::is_some) {
                        "No messages at this point."
                    } else {
                        "No messages yet. Say hello!"
                    }}
                </p>
            })}
            <For each=move || order.get() key=|id| *id let:id>
                <MessageItem id rows=Signal::derive(move || rows.with(|r| r.get(id).cloned())) />
            </For>
        </div>
    }
}

/// Ids of the messages at least partly on screen in the list.
fn visible_ids(list: &web_sys::HtmlDivElement) -> Vec<Uuid> {
    let frame = list.get_bounding_client_rect();
    let Ok(items) = list.query_selector_all("article[data-id]") else {
        return Vec::new();
    };
    (0..items.length())
        .filter_map(|i| items.item(i)?.dyn_into::<web_sys::Element>().ok())
        .filter(|el| {
            let r = el.get_bounding_client_rect();
            r.bottom() > frame.top() + 4.0 && r.top() < frame.bottom() - 4.0
        })
        .filter_map(|el| el.get_attribute("data-id")?.parse().ok())
        .collect()
}

/// What the line above a message's text shows.
#[derive(Clone, PartialEq)]
struct Meta {
    sender: String,
    sent_at: domain::Timestamp,
    edited: bool,
    pending: bool,
}

/// One reaction's button.
#[derive(Clone, PartialEq)]
struct Reaction {
    emoji: String,
    count: usize,
    /// The user is among those who reacted.
    pressed: bool,
    /// Who reacted, for the tooltip.
    users: String,
}

#[component]
fn MessageItem(id: Uuid, rows: Signal<Option<Row>>) -> impl IntoView {
    let ctx = use_room();
    let me = StoredValue::new(use_app().user().unwrap_or_default());
    let row = Memo::new(move |_| rows.get());
    let mine = me.with_value(|me| {
        row.with_untracked(|r| r.as_ref().is_some_and(|r| r.view.sender_id == *me))
    });
    let open = RwSignal::new(false);
    let editing = Memo::new(move |_| ctx.editing.get() == Some(id));
    let state =
        Memo::new(move |_| row.with(|r| r.as_ref().map_or(RowState::Confirmed, |r| r.state)));
    // Each part of the message follows only what it shows, so that a
    // change to one (a receipt, someone's reaction) leaves the others'
    // elements, and the focus in them, as they were: an open reaction
    // palette stays open under the pointer.
    let can_react = Memo::new(move |_| {
        ctx.travel.with(Option::is_none)
            && row.with(|r| r.as_ref().is_some_and(|r| r.state != RowState::Failed))
    });
    let meta = Memo::new(move |_| {
        row.with(|r| {
            r.as_ref().map(|r| Meta {
                sender: r.view.sender_id.clone(),
                sent_at: r.view.sent_at,
                edited: r.view.edited_at.is_some(),
                pending: r.state == RowState::Pending,
            })
        })
    });
    let text = Memo::new(move |_| row.with(|r| r.as_ref().map(|r| r.view.content.clone())));
    let reactions = Memo::new(move |_| {
        row.with(|r| {
            let Some(r) = r.as_ref() else {
                return Vec::new();
            };
            r.view
                .reactions
                .iter()
                .map(|(emoji, users)| Reaction {
                    emoji: emoji.clone(),
                    count: users.len(),
                    pressed: me.with_value(|m| users.iter().any(|u| u == m)),
                    users: users.join(", "),
                })
                .collect::<Vec<Reaction>>()
        })
    });
    // Receipts name the others: that the user read it goes without saying.
    let readers = Memo::new(move |_| {
        row.with(|r| {
            r.as_ref().map_or_else(Vec::new, |r| {
                me.with_value(|m| {
                    r.view
                        .read_by
                        .iter()
                        .filter(|u| *u != m)
                        .cloned()
                        .collect::<Vec<_>>()
                })
            })
        })
    });
    let error = Memo::new(move |_| row.with(|r| r.as_ref().and_then(|r| r.error.clone())));

    let meta_line = move || {
        meta.get().map(|m| {
            let t = m.sent_at;
            view! {
                <div class="meta">
                    <span class="sender">{m.sender}</span>
                    <time datetime=t.to_rfc3339()>
                        {browser::clock_time(t)}
                    </time>
                    {m.edited.then(|| view! { <span class="edited">"edited"</span> })}
                    {m.pending.then(|| view! { <span class="pending-note">"Sending…"</span> })}
                </div>
            }
        })
    };
    let text_part = move || {
        (!editing.get())
            .then(|| text.get().map(|t| view! { <p class="text">{t}</p> }))
            .flatten()
    };
    // A button per emoji, keyed by it. A count, who reacted or whether the
    // user did changes the button in place; an emoji added or taken away
    // before it does not turn it into another emoji's button. So the focus
    // stays on the reaction it was on.
    let emojis = Memo::new(move |_| {
        reactions.with(|r| r.iter().map(|r| r.emoji.clone()).collect::<Vec<_>>())
    });
    let reaction_button = move |emoji: String| {
        let key = emoji.clone();
        let this =
            Memo::new(move |_| reactions.with(|r| r.iter().find(|r| r.emoji == key).cloned()));
        let pressed = move || this.with(|r| r.as_ref().is_some_and(|r| r.pressed));
        let users = move || this.with(|r| r.as_ref().map(|r| r.users.clone()));
        let label = move || this.with(|r| r.as_ref().map(|r| format!("{} {}", r.emoji, r.count)));
        view! {
            <button
                type="button"
                class="reaction"
                aria-pressed=move || if pressed() { "true" } else { "false" }
                title=users
                disabled=move || !can_react.get()
                on:click=move |_| ctx.react(id, &emoji, !untrack(pressed))
            >
                {label}
            </button>
        }
    };
    let add_reaction = move || {
        can_react.get().then(|| {
            view! {
                <button
                    type="button"
                    class="quiet react"
                    aria-label="Add reaction"
                    aria-expanded=move || if open.get() { "true" } else { "false" }
                    on:click=move |_| open.update(|o| *o = !*o)
                >
                    "☺+"
                </button>
                {move || open.get().then(|| palette(id, reactions, open))}
            }
        })
    };
    let actions = move || {
        (mine && can_react.get() && !editing.get()).then(|| {
            view! {
                <div class="actions">
                    <button type="button" class="quiet" on:click=move |_| ctx.editing.set(Some(id))>
                        "Edit"
                    </button>
                    <button type="button" class="quiet danger" on:click=move |_| ctx.delete(id)>
                        "Delete"
                    </button>
                </div>
            }
        })
    };
    let receipts = move || {
        readers.with(|r| {
            (!r.is_empty())
                .then(|| view! { <p class="receipts">{format!("Read by {}", r.join(", "))}</p> })
        })
    };
    let failure = move || {
        error.get().map(|e| {
            view! {
                <div role="alert" class="alert failed-note">
                    <span>{format!("Not sent: {e}")}</span>
                    <button type="button" on:click=move |_| ctx.retry(id)>"Retry"</button>
                    <button type="button" class="quiet" on:click=move |_| ctx.discard(id)>"Discard"</button>
                </div>
            }
        })
    };
    let edit_box = move || {
        editing.get().then(|| {
            let initial = row.with_untracked(|r| {
                r.as_ref()
                    .map(|r| r.view.content.clone())
                    .unwrap_or_default()
            });
            view! { <EditBox id initial /> }
        })
    };
    view! {
        <article class="msg" class:mine=mine data-id=id.to_string() data-state=move || state.get().as_str()>
            {meta_line}
            {text_part}
            <div class="foot">
                <div class="reactions">
                    <For each=move || emojis.get() key=String::clone children=reaction_button />
                    {add_reaction}
                </div>
                {actions}
            </div>
            {receipts}
            {failure}
            {edit_box}
        </article>
    }
}

/// Gives the `<time datetime>` under the pointer its tooltip,
/// [`browser::full_time`], when the pointer first comes to it (a listener on the
/// list, for `mouseover`). Made at render, a room's first tooltips cost
/// its first paint about 10 ms: the page's first `Intl` formatter loads
/// its locale data.
fn title_time_on_hover(ev: web_sys::MouseEvent) {
    let Some(el) = ev
        .target()
        .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
    else {
        return;
    };
    if el.tag_name() != "TIME" || el.has_attribute("title") {
        return;
    }
    let Some(t) = el
        .get_attribute("datetime")
        .and_then(|at| domain::Timestamp::parse_rfc3339(&at))
    else {
        return;
    };
    let _ = el.set_attribute("title", &browser::full_time(t));
}

/// The quick reactions to add (or, for those the user has, remove: decided
/// when clicked, from the message's reactions then).
fn palette(id: Uuid, reactions: Memo<Vec<Reaction>>, open: RwSignal<bool>) -> impl IntoView {
    let ctx = use_room();
    view! {
        <span class="palette" role="group" aria-label="Reactions to add">
            {EMOJI
                .into_iter()
                .map(|e| {
                    view! {
                        <button
                            type="button"
                            class="quiet"
                            aria-label=format!("React with {e}")
                            on:click=move |_| {
                                open.set(false);
                                let has = reactions.with_untracked(|r| {
                                    r.iter().any(|r| r.emoji == e && r.pressed)
                                });
                                ctx.react(id, e, !has);
                            }
                        >
                            {e}
                        </button>
                    }
                })
                .collect_view()}
        </span>
    }
}

/// The text box that edits a message: Enter saves, Escape cancels.
#[component]
fn EditBox(id: Uuid, initial: String) -> impl IntoView {
    let ctx = use_room();
    let area = NodeRef::<html::Textarea>::new();
    Effect::new(move |_| {
        if let Some(a) = area.get() {
            let _ = a.focus();
            let end = a.value().encode_utf16().count() as u32;
            let _ = a.set_selection_range(end, end);
        }
    });
    // Closing gives the focus back to the message's Edit button.
    let close = move || {
        ctx.editing.set(None);
        request_animation_frame(move || {
            let found = document()
                .query_selector(&format!("article[data-id=\"{id}\"] .actions button"))
                .ok()
                .flatten()
                .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok());
            if let Some(button) = found {
                let _ = button.focus();
            }
        });
    };
    let original = initial.clone();
    let save = move || {
        let Some(a) = area.get_untracked() else {
            return;
        };
        let text = a.value();
        close();
        if text != original && !text.trim().is_empty() {
            ctx.edit(id, &text);
        }
    };
    let save2 = save.clone();
    let on_key = move |e: leptos::ev::KeyboardEvent| {
        if e.key() == "Enter" && !e.shift_key() && !e.is_composing() {
            e.prevent_default();
            save();
        } else if e.key() == "Escape" {
            e.prevent_default();
            close();
        }
    };
    view! {
        <div class="edit">
            <textarea aria-label="Edit message" node_ref=area prop:value=initial rows="2" on:keydown=on_key></textarea>
            <div class="edit-buttons">
                <span class="hint">"Enter to save · Escape to cancel"</span>
                <button type="button" class="primary" on:click=move |_| save2()>"Save"</button>
                <button type="button" class="quiet" on:click=move |_| close()>"Cancel"</button>
            </div>
        </div>
    }
}
