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
    let last = Memo::new(move |_| ctx.last_seq());
    let value = move || {
        ctx.travel
            .with(|t| t.as_ref().map(|t| t.seq))
            .unwrap_or_else(|| last.get())
    };
    let live = move || ctx.travel.with(Option::is_none);
    let on_input = move |e: leptos::ev::Event| {
        if let Ok(k) = event_target_value(&e).parse::<u64>() {
            ctx.travel_to(k);
        }
    };
    let position = move || {
        if live() {
            format!("Live · event {}", last.get())
        } else {
            format!("Event {} of {}", value(), last.get())
        }
    };
    view! {
        <div class="travel" class:away=move || !live()>
            <label for="time-travel">"Time travel"</label>
            <input
                id="time-travel"
                type="range"
                min="1"
                max=move || last.get().max(1).to_string()
                step="1"
                prop:value=move || value().to_string()
                aria-valuetext=position
                on:input=on_input
            />
            <span class="travel-pos" aria-hidden="true">{position}</span>
            <button type="button" class="live-button" class:primary=move || !live() on:click=move |_| ctx.go_live()>
                "Live"
            </button>
        </div>
        <Show when=move || !live()>
            <p class="travel-banner">
                {move || {
                    ctx.travel.with(|t| {
                        t.as_ref().map(|t| {
                            let when = t
                                .state
                                .as_ref()
                                .and_then(|s| s.last_timestamp())
                                .filter(|_| !t.loading)
                                .map(|ts| format!(" ({})", browser::full_time(ts)))
                                .unwrap_or_default();
                            if let Some(e) = &t.error {
                                format!("Event {} could not be loaded: {e}", t.seq)
                            } else if t.loading {
                                format!("Loading the room as it was after event {}…", t.seq)
                            } else {
                                format!("The room as it was after event {}{when}. Read only.", t.seq)
                            }
                        })
                    })
                }}
            </p>
        </Show>
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
                <For each=move || log.get() key=|e| e.seq let:event>
                    <EventRow event current=Signal::derive(current) />
                </For>
            </ol>
        </section>
    }
}

#[component]
fn EventRow(event: ChatEvent, current: Signal<u64>) -> impl IntoView {
    let ctx = use_room();
    let seq = event.seq;
    let is_current = move || current.get() == seq;
    let content = event.kind.content().map(str::to_owned);
    let target = event.kind.target().map(|t| {
        let t = t.hyphenated().to_string();
        format!("→ {}", &t[..8])
    });
    view! {
        <li class=move || match current.get() {
            k if k == seq => "current",
            k if seq > k => "after",
            _ => "",
        }>
            <button
                type="button"
                class="event"
                aria-current=move || is_current().then_some("step")
                on:click=move |_| ctx.travel_to(seq)
            >
                <span class="seq">{format!("#{seq}")}</span>
                <span class="etype">{event.event_type().as_str()}</span>
                <span class="who">{event.sender_id.to_string()}</span>
                {content.map(|c| view! { <span class="what">{c}</span> })}
                {target.map(|t| view! { <span class="target">{t}</span> })}
                <time datetime=event.timestamp.to_rfc3339()>{browser::clock_time(event.timestamp)}</time>
            </button>
        </li>
    }
}
