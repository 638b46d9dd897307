//! The signed-out screen: `User id`, `Password`, `Sign in` and `Sign up`
//! (which creates the account and signs in). The id and password rules
//! are the domain's.

use crate::api::{self, ApiError};
use crate::app::use_app;
use domain::validation::{validate_id, validate_password};
use leptos::prelude::*;

#[component]
pub fn SignIn() -> impl IntoView {
    let app = use_app();
    let user = NodeRef::<leptos::html::Input>::new();
    let password = NodeRef::<leptos::html::Input>::new();
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);

    let go = move |create: bool| {
        if busy.get_untracked() {
            return;
        }
        let value = |r: NodeRef<leptos::html::Input>| {
            r.get_untracked().map(|i| i.value()).unwrap_or_default()
        };
        let (u, p) = (value(user), value(password));
        if create {
            let checked = validate_id("User id", &u).and_then(|_| validate_password(&p));
            if let Err(r) = checked {
                error.set(Some(sentence(&r.message)));
                return;
            }
        } else if u.is_empty() || p.is_empty() {
            error.set(Some("Enter your user id and password.".into()));
            return;
        }
        busy.set(true);
        error.set(None);
        crate::browser::spawn(async move {
            let result = async {
                if create {
                    api::sign_up(&u, &p).await?;
                }
                api::sign_in(&u, &p).await
            }
            .await;
            busy.set(false);
            match result {
                Ok(session) => {
                    app.server_ok.set(Some(true));
                    app.signed_in(session);
                }
                Err(e) => error.set(Some(explain(&e))),
            }
        });
    };

    view! {
        <main class="auth">
            <form
                class="card"
                on:submit=move |ev| {
                    ev.prevent_default();
                    go(false);
                }
            >
                <h1>"Chat"</h1>
                <p class="muted">"Sign in, or sign up to create an account."</p>
                {move || {
                    app.alert.get().map(|a| view! { <p role="alert" class="alert">{a}</p> })
                }}
                <label for="user-id">"User id"</label>
                <input
                    id="user-id"
                    name="username"
                    autocomplete="username"
                    autocapitalize="none"
                    spellcheck="false"
                    node_ref=user
                />
                <label for="password">"Password"</label>
                <input
                    id="password"
                    name="password"
                    type="password"
                    autocomplete="current-password"
                    node_ref=password
                />
                <div class="buttons">
                    <button type="submit" class="primary" disabled=busy>
                        "Sign in"
                    </button>
                    <button type="button" disabled=busy on:click=move |_| go(true)>
                        "Sign up"
                    </button>
                </div>
                {move || error.get().map(|e| view! { <p role="alert" class="alert">{e}</p> })}
            </form>
        </main>
    }
}

fn sentence(s: &str) -> String {
    let mut out = s.to_owned();
    if let Some(first) = out.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}

fn explain(e: &ApiError) -> String {
    match e.code() {
        "invalid_credentials" => "Wrong user id or password.".into(),
        "user_exists" => "That user id is taken. Choose another, or sign in.".into(),
        "rate_limited" => "Too many attempts. Wait a moment and try again.".into(),
        _ => e.message(),
    }
}
