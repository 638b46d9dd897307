//! Time travel: the slider labelled `Time travel` (its value a seq, from 1
//! to the room's last), the `Live` button, and the panel of raw events
//! around the chosen seq. The state shown is replayed in the browser.

use crate::browser;
use crate::ui::room::use_room;
use domain::ChatEvent;
use leptos::prelude::*;

#[component]
pub fn TravelBar() -> impl IntoView {
    let ctx = use_room();
    let on_input = move |e: leptos::ev::Event| {
        if let Ok(k) = event_target_value(&e).parse::<u64>() {
            ctx.travel_to(k);
        }
    };
    // One piece: the slider stays while its attributes follow.
    move || {
        let last = ctx.last_seq().max(1);
        let (value, banner) = ctx.travel.with(|t| match t {
            None => (last, None),
            Some(t) => {
                let when = t
                    .state
                    .as_ref()
                    .and_then(|s| s.last_timestamp())
                    .filter(|_| !t.loading)
                    .map(|ts| format!(" ({})", browser::full_time(ts)))
                    .unwrap_or_default();
                let text = if let Some(e) = &t.error {
                    format!("Event {} could not be loaded: {e}", t.seq)
                } else if t.loading {
                    format!("Loading the room as it was after event {}…", t.seq)
                } else {
                    format!("The room as it was after event {}{when}. Read only.", t.seq)
                };
                (t.seq, Some(text))
            }
        });
        let live = banner.is_none();
        let position = if live {
            format!("Live · event {last}")
        } else {
            format!("Event {value} of {last}")
        };
        view! {
            <div class=if live { "travel" } else { "travel away" }>
                <label for="time-travel">"Time travel"</label>
                <input
                    id="time-travel"
                    type="range"
                    min="1"
                    max=last.to_string()
                    step="1"
                    prop:value=value.to_string()
                    aria-valuetext=position.clone()
                    on:input=on_input
                />
                <span class="travel-pos" aria-hidden="true">{position}</span>
                <button
                    type="button"
                    class=if live { "live-button" } else { "live-button primary" }
                    on:click=move |_| ctx.go_live()
                >
                    "Live"
                </button>
            </div>
            {banner.map(|b| view! { <p class="travel-banner">{b}</p> })}
        }
    }
}

/// The raw events around the time-travel point; the current one marked.
#[component]
pub fn EventLog() -> impl IntoView {
    let ctx = use_room();
    let log = Memo::new(move |_| {
        ctx.travel
            .with(|t| t.as_ref().map(|t| t.log.clone()).unwrap_or_default())
    });
    let current = move || ctx.travel.with(|t| t.as_ref().map_or(0, |t| t.seq));
    view! {
        <section class="event-log" aria-label="Event log">
            <h3>"Event log"</h3>
            <ol>
                {move || {
                    let k = current();
                    log.get().into_iter().map(|event| event_row(event, k)).collect_view()
                }}
            </ol>
        </section>
    }
}

/// One raw event: seq, type, sender, time, target and content, as text.
fn event_row(event: ChatEvent, current: u64) -> impl IntoView {
    let ctx = use_room();
    let seq = event.seq;
    let class = match seq {
        s if s == current => "current",
        s if s > current => "after",
        _ => "",
    };
    let content = event.kind.content().map(str::to_owned);
    let target = event.kind.target().map(|t| {
        let t = t.hyphenated().to_string();
        format!("→ {}", &t[..8])
    });
    view! {
        <li class=class>
            <button
                type="button"
                class="event"
                aria-current=(seq == current).then_some("step")
                on:click=move |_| ctx.travel_to(seq)
            >
                <span class="seq">{format!("#{seq}")}</span>
                <span class="etype">{event.event_type().as_str()}</span>
                <span class="who">{event.sender_id.to_string()}</span>
                <time datetime=event.timestamp.to_rfc3339()>{browser::clock_time(event.timestamp)}</time>
                {target.map(|t| view! { <span class="target">{t}</span> })}
                {content.map(|c| view! { <span class="what">{c}</span> })}
            </button>
        </li>
    }
}
