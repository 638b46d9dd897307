//! The composer: a text box labelled `Message` where Enter sends and
//! Shift+Enter starts a new line. What may be sent is the domain's rule.

use crate::ui::room::use_room;
use domain::ErrorCode;
use leptos::html;
use leptos::prelude::*;

#[component]
pub fn Composer() -> impl IntoView {
    let ctx = use_room();
    let area = NodeRef::<html::Textarea>::new();
    let error = RwSignal::new(None::<String>);
    let placeholder = move || {
        let name = ctx.live.with(|l| {
            l.as_ref()
                .and_then(|l| l.shown().info().map(|i| i.name.clone()))
        });
        format!("Message {}", name.unwrap_or_else(|| ctx.room()))
    };
    let resize = move || {
        if let Some(a) = area.get_untracked() {
            let style = web_sys::HtmlElement::style(&a);
            let _ = style.set_property("height", "auto");
            let _ = style.set_property("height", &format!("{}px", a.scroll_height()));
        }
    };
    let send = move || {
        let Some(a) = area.get_untracked() else {
            return;
        };
        let text = a.value();
        match ctx.send_text(&text) {
            Ok(()) => {
                a.set_value("");
                error.set(None);
                resize();
            }
            // Nothing to send.
            Err(r) if r.code == ErrorCode::ContentEmpty => {}
            Err(r) => error.set(Some(format!("Not sent: {}.", r.message))),
        }
        let _ = a.focus();
    };
    let on_key = move |e: leptos::ev::KeyboardEvent| {
        if e.key() == "Enter" && !e.shift_key() && !e.is_composing() {
            e.prevent_default();
            send();
        }
    };
    view! {
        <form
            class="composer"
            on:submit=move |e| {
                e.prevent_default();
                send();
            }
        >
            {move || error.get().map(|e| view! { <p role="alert" class="alert">{e}</p> })}
            <div class="composer-row">
                <textarea
                    aria-label="Message"
                    node_ref=area
                    rows="1"
                    placeholder=placeholder
                    on:keydown=on_key
                    on:input=move |_| resize()
                ></textarea>
                <button type="submit" class="primary send">
                    "Send"
                </button>
            </div>
        </form>
    }
}
