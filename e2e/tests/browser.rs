//! The web app end to end: the release bundle served by the real server,
//! driven in real headless Chromium by role and accessible name. Each test
//! starts its own server; the proxies in front of it hold back or cut the
//! WebSocket to play a slow or dropped connection. Screenshots of the main
//! screens land in `target/screenshots/` on every run.

use e2e::{Browser, Driver, Proxy, Server};
use serde_json::json;

const PASSWORD: &str = "correct horse battery";
const DESKTOP: (u32, u32) = (1280, 800);

/// A server, a driver, and one proxy per user.
struct World {
    server: Server,
    driver: Driver,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

impl World {
    async fn new() -> World {
        let turn = e2e::exclusive().await;
        World {
            server: Server::start().await,
            driver: Driver::start().await,
            _turn: turn,
        }
    }

    /// A signed-up user in their own browser, behind their own proxy.
    async fn user(&self, test: &str, name: &str, size: (u32, u32)) -> (Browser, Proxy) {
        let proxy = Proxy::start(self.server.addr).await;
        let b = self.driver.browser(test, size.0, size.1).await;
        b.sign_up(&proxy.url(""), name, PASSWORD).await;
        (b, proxy)
    }

    /// Ann signed up in a browser of `test`'s, in a new room "lounge" where
    /// her `text` was confirmed.
    async fn ann_in_lounge_after(&self, test: &str, text: &str) -> (Browser, Proxy) {
        let (ann, proxy) = self.user(test, "ann", DESKTOP).await;
        ann.create_room("lounge", "Lounge").await;
        ann.send(text).await;
        ann.wait_for_message(text, "confirmed").await;
        (ann, proxy)
    }

    /// `names` signed up and signed in through the API (their tokens), and
    /// the messageId of the newest message in `room`.
    async fn others_and_newest(&self, names: &[&str], room: &str) -> (Vec<String>, String) {
        let mut tokens = Vec::new();
        for name in names {
            self.server.sign_up(name, PASSWORD).await;
            tokens.push(self.server.token(name, PASSWORD).await);
        }
        let messages = self.server.messages(&tokens[0], room).await;
        let id = messages[0]["messageId"].as_str().expect("a messageId");
        (tokens, id.to_owned())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_users_talk_live_and_see_edits_deletes_and_receipts() {
    let w = World::new().await;
    let test = "two_users";
    let proxy_a = Proxy::start(w.server.addr).await;
    let ann = w.driver.browser(test, DESKTOP.0, DESKTOP.1).await;
    ann.goto(&proxy_a.url("/")).await;
    ann.field("User id").await;
    ann.screenshot("signed-out").await;
    ann.sign_up(&proxy_a.url(""), "ann", PASSWORD).await;
    ann.screenshot("room-list-empty").await;
    ann.create_room("general", "General").await;

    // Bob opens the room from a shared link.
    let (bob, proxy_b) = w.user(test, "bob", DESKTOP).await;
    bob.goto(&proxy_b.url("/rooms/general")).await;
    bob.wait_for_room("general").await;

    ann.send("Hello Bob").await;
    bob.wait_for_message("Hello Bob", "confirmed").await;
    bob.send("Hi Ann, all good").await;
    ann.wait_for_message("Hi Ann, all good", "confirmed").await;
    let shown = bob.messages().await;
    assert_eq!(shown.len(), 2, "{shown:?}");
    assert!(shown[0].text.contains("Hello Bob") && shown[0].text.contains("ann"));
    assert!(shown[1].text.contains("Hi Ann, all good"));

    // Bob has seen Ann's message: her side shows his read receipt.
    ann.wait_for(
        "Bob's read receipt",
        "return Array.from(document.querySelectorAll('[role=log] article'))\
         .some(a => a.innerText.includes('Hello Bob') && a.innerText.includes('Read by bob'))",
    )
    .await;
    // Bob has Edit and Delete on his message only.
    let edit_on_ann = bob
        .js(
            "return Array.from(document.querySelectorAll('[role=log] article'))\
             .filter(a => a.innerText.includes('Hello Bob'))\
             .flatMap(a => Array.from(a.querySelectorAll('button')))\
             .filter(b => ['Edit','Delete'].includes(b.innerText.trim())).length",
        )
        .await;
    assert_eq!(
        edit_on_ann, 0,
        "Edit/Delete offered on someone else's message"
    );

    // Bob reacts to Ann's message, then takes it back: Ann sees both.
    bob.click_in_message("Hello Bob", "Add reaction").await;
    bob.click_at("//button[@aria-label='React with 👍']").await;
    let reaction = "return Array.from(document.querySelectorAll('[role=log] article'))\
                    .filter(a => a.innerText.includes('Hello Bob'))\
                    .flatMap(a => Array.from(a.querySelectorAll('button.reaction')))\
                    .map(b => b.innerText.trim()).join(',')";
    ann.wait_for(
        "Bob's 👍 on Ann's message",
        &format!("return (() => {{ {reaction} }})() === '👍 1'"),
    )
    .await;
    bob.click_at("//*[@role='log']//article[contains(., 'Hello Bob')]//button[contains(@class, 'reaction') and @aria-pressed='true']").await;
    ann.wait_for(
        "the 👍 to go",
        &format!("return (() => {{ {reaction} }})() === ''"),
    )
    .await;

    // Ann edits her message: Bob sees the new text, marked edited.
    ann.click_in_message("Hello Bob", "Edit").await;
    let edit = ann.field("Edit message").await;
    edit.clear().await.unwrap();
    edit.send_keys("Hello Bob (edited text)").await.unwrap();
    edit.send_keys(e2e::ENTER).await.unwrap();
    bob.wait_for(
        "the edit to reach Bob",
        "return Array.from(document.querySelectorAll('[role=log] article'))\
         .some(a => a.innerText.includes('Hello Bob (edited text)') && a.innerText.includes('edited'))",
    )
    .await;
    ann.screenshot("open-room").await;
    ann.goto(&proxy_a.url("/")).await;
    ann.find("//*[normalize-space(.)='No room open']").await;
    ann.screenshot("room-list").await;
    ann.open_room("general", "General").await;
    // Back and Forward move between the list and the room.
    ann.client.back().await.unwrap();
    ann.find("//*[normalize-space(.)='No room open']").await;
    ann.client.forward().await.unwrap();
    ann.wait_for_room("general").await;

    // Ann deletes it: gone for Bob too.
    ann.click_in_message("Hello Bob (edited text)", "Delete")
        .await;
    bob.wait_for_no_message("Hello Bob (edited text)").await;
    ann.wait_for_no_message("Hello Bob (edited text)").await;
    assert_eq!(bob.messages().await.len(), 1);

    ann.close().await;
    bob.close().await;
    drop(proxy_b);
    w.server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_own_message_shows_before_the_server_answers() {
    let w = World::new().await;
    let (ann, proxy) = w.user("pending", "ann", DESKTOP).await;
    ann.create_room("quiet", "Quiet").await;

    // The server's answers are held back: the message shows, pending.
    proxy.hold_sockets();
    ann.send("Sent into the void").await;
    ann.wait_for_message("Sent into the void", "pending").await;
    ann.screenshot("pending-message").await;
    // The server has it (durable) while the browser has not heard back.
    let token = w.server.token("ann", PASSWORD).await;
    w.server
        .wait_for_messages(&token, "quiet", |m| m.len() == 1)
        .await;
    assert_eq!(
        ann.messages().await[0].state,
        "pending",
        "the answer was held back, so the message must still be pending"
    );

    // The answer arrives: confirmed, once.
    proxy.pass();
    ann.wait_for_message("Sent into the void", "confirmed")
        .await;
    assert_eq!(ann.messages().await.len(), 1);

    // Its time gets its tooltip, the full date and time, under the pointer.
    let time = "//article[contains(., 'Sent into the void')]//time";
    ann.hover(time).await;
    ann.wait_for(
        "the time's tooltip with the year",
        &format!(
            "const t = document.evaluate({time:?}, document, null, 9, null).singleNodeValue; \
             return !!t && t.title.includes(t.getAttribute('datetime').slice(0, 4))"
        ),
    )
    .await;
    ann.close().await;
    w.server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_action_rolls_back_with_an_alert() {
    let w = World::new().await;
    let (ann, _pa) = w.user("refused", "ann", DESKTOP).await;
    ann.create_room("debate", "Debate").await;
    ann.send("A message that will go").await;
    ann.wait_for_message("A message that will go", "confirmed")
        .await;
    let (bob, proxy_b) = w.user("refused", "bob", DESKTOP).await;
    bob.open_room("debate", "Debate").await;
    bob.wait_for_message("A message that will go", "confirmed")
        .await;

    // Bob does not hear of the delete in time, and reacts to the message.
    proxy_b.hold_sockets();
    ann.click_in_message("A message that will go", "Delete")
        .await;
    ann.wait_for_no_message("A message that will go").await;
    let token = w.server.token("ann", PASSWORD).await;
    w.server
        .wait_for_messages(&token, "debate", |m| m.is_empty())
        .await;
    bob.click_in_message("A message that will go", "Add reaction")
        .await;
    bob.click_at("//button[starts-with(@aria-label, 'React with')]")
        .await;
    // Shown at once on his side.
    bob.wait_for(
        "Bob's reaction to show",
        "return !!document.querySelector('[role=log] article button.reaction[aria-pressed=true]')",
    )
    .await;
    assert!(bob.alerts().await.is_empty());

    // The server refused it: rolled back, with an error he can see.
    proxy_b.pass();
    bob.wait_for(
        "an alert saying the reaction failed",
        "return Array.from(document.querySelectorAll('[role=alert]')).some(a => a.innerText.includes('Could not'))",
    )
    .await;
    bob.wait_for_no_message("A message that will go").await;
    bob.screenshot("refused-action").await;
    let pressed = bob
        .js("return document.querySelectorAll('[role=log] button.reaction[aria-pressed=true]').length")
        .await;
    assert_eq!(pressed, 0);
    // The alert goes when dismissed.
    bob.click("Dismiss").await;
    bob.wait_for(
        "the alert to go",
        "return document.querySelectorAll('[role=alert]').length === 0",
    )
    .await;
    ann.close().await;
    bob.close().await;
    w.server.stop().await;
}

/// An open reaction palette, and the focus on one of its buttons, stay as
/// they are while the message changes under them: someone reads it and
/// reacts to it.
#[tokio::test(flavor = "multi_thread")]
async fn an_open_palette_keeps_its_focus_while_the_message_changes() {
    let w = World::new().await;
    let (ann, _pa) = w.ann_in_lounge_after("palette", "Pick a reaction").await;
    let (tokens, id) = w.others_and_newest(&["bob"], "lounge").await;
    let bob = &tokens[0];

    ann.click_in_message("Pick a reaction", "Add reaction")
        .await;
    ann.find("//button[@aria-label='React with ❤️']").await;
    let focused = ann
        .js(
            "const b = document.querySelector(\"button[aria-label='React with ❤️']\"); \
             b.focus(); window.probe = b; return document.activeElement === b",
        )
        .await;
    assert_eq!(focused, true, "the palette's ❤️ button takes the focus");
    let read = json!({"eventType": "MESSAGE_READ", "targetMessageId": id});
    let react = json!({"eventType": "REACTION_ADDED", "targetMessageId": id, "content": "👍"});
    for event in [read, react] {
        w.server.post_event(bob, "lounge", event).await;
    }
    ann.wait_for(
        "Bob's receipt and his 👍",
        "return Array.from(document.querySelectorAll('[role=log] article'))\
         .some(a => a.innerText.includes('Read by bob') && a.innerText.includes('👍 1'))",
    )
    .await;
    let kept = ann
        .js("return window.probe.isConnected && document.activeElement === window.probe")
        .await;
    assert_eq!(
        kept, true,
        "the focused palette button was replaced when the message changed"
    );
    // The palette still does its job: ❤️ is added next to Bob's 👍.
    ann.click_at("//button[@aria-label='React with ❤️']").await;
    ann.wait_for(
        "Ann's ❤️ next to Bob's 👍",
        "return Array.from(document.querySelectorAll('[role=log] article button.reaction'))\
         .map(b => b.innerText.trim()).sort().join(',') === '❤️ 1,👍 1'",
    )
    .await;
    ann.close().await;
    w.server.stop().await;
}

/// A focused reaction button stays the same element, and that reaction's,
/// while the reactions change: its count goes up, another emoji is added
/// before it and taken away again (reactions are shown in emoji order).
#[tokio::test(flavor = "multi_thread")]
async fn a_focused_reaction_keeps_its_focus_while_the_reactions_change() {
    let w = World::new().await;
    let (ann, _pa) = w.ann_in_lounge_after("reaction-focus", "Thumbs up?").await;
    let (others, id) = w.others_and_newest(&["bob", "cat"], "lounge").await;
    let thumbs = json!({"eventType": "REACTION_ADDED", "targetMessageId": id, "content": "👍"});
    let reactions = "return Array.from(document.querySelectorAll('[role=log] article button.reaction'))\
                     .map(b => b.innerText.trim() + ':' + b.getAttribute('aria-pressed')).join(',')";

    w.server
        .post_event(&others[0], "lounge", thumbs.clone())
        .await;
    ann.wait_for("Bob's 👍", &format!("{reactions} === '👍 1:false'"))
        .await;
    let focused = ann
        .js(
            "const b = document.querySelector('[role=log] article button.reaction'); \
             b.focus(); window.probe = b; return document.activeElement === b",
        )
        .await;
    assert_eq!(focused, true, "the 👍 button takes the focus");
    w.server.post_event(&others[1], "lounge", thumbs).await;
    ann.wait_for("Cat's 👍 counted", &format!("{reactions} === '👍 2:false'"))
        .await;
    let kept = ann
        .js("return window.probe.isConnected && document.activeElement === window.probe")
        .await;
    assert_eq!(
        kept, true,
        "the focused 👍 button was replaced when its count changed"
    );
    // ❤️ comes before 👍: the focused button stays 👍's.
    let heart = json!({"eventType": "REACTION_ADDED", "targetMessageId": id, "content": "❤️"});
    w.server.post_event(&others[1], "lounge", heart).await;
    ann.wait_for(
        "Cat's ❤️ before the 👍",
        &format!("{reactions} === '❤️ 1:false,👍 2:false'"),
    )
    .await;
    let still = ann
        .js("return document.activeElement === window.probe && window.probe.innerText.trim()")
        .await;
    assert_eq!(
        still, "👍 2",
        "the focus left the 👍 button when ❤️ was added before it"
    );
    // The same button still works: Ann's own 👍 is added and shown pressed.
    ann.js("window.probe.click(); return true").await;
    ann.wait_for(
        "Ann's 👍 counted",
        &format!("{reactions} === '❤️ 1:false,👍 3:true'"),
    )
    .await;
    ann.wait_for_message("Thumbs up?", "confirmed").await;
    assert_eq!(
        ann.js("return window.probe.isConnected").await,
        true,
        "the 👍 button was replaced when Ann's own reaction was added"
    );
    // ❤️ taken away again: the button is still 👍's.
    let unheart = json!({"eventType": "REACTION_REMOVED", "targetMessageId": id, "content": "❤️"});
    w.server.post_event(&others[1], "lounge", unheart).await;
    ann.wait_for("Cat's ❤️ gone", &format!("{reactions} === '👍 3:true'"))
        .await;
    assert_eq!(
        ann.js("return window.probe.isConnected && window.probe.innerText.trim()")
            .await,
        "👍 3",
        "the 👍 button was replaced when ❤️ before it was taken away"
    );
    ann.close().await;
    w.server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn content_is_shown_as_text_and_runs_nothing() {
    let w = World::new().await;
    let (ann, _pa) = w.user("xss", "ann", DESKTOP).await;
    ann.create_room("xss", "<b>Bold</b> room").await;
    let (bob, _pb) = w.user("xss", "bob", DESKTOP).await;
    bob.open_room("xss", "<b>Bold</b> room").await;
    let attacks = [
        "<img src=x onerror=alert(1)>",
        "<script>window.__xss = 1</script>",
        "<a href=\"javascript:alert(2)\">click me</a>",
        "[link](javascript:alert(3)) https://example.com/\"onmouseover=alert(4)",
        "<svg onload=alert(5)>",
    ];
    for a in attacks {
        ann.send(a).await;
    }
    for a in attacks {
        bob.wait_for_message(a, "confirmed").await;
    }
    for b in [&ann, &bob] {
        let markup = b
            .js("return document.querySelectorAll('[role=log] article img, [role=log] article script, \
                 [role=log] article svg, [role=log] article a, [role=log] article b, nav b').length")
            .await;
        assert_eq!(markup, 0, "message or room name content became markup");
        assert_eq!(b.js("return window.__xss === undefined").await, true);
        assert!(
            b.client.get_alert_text().await.is_err(),
            "a dialog opened: a script ran"
        );
    }
    // The room name shows literally in the list.
    bob.find("//nav[@aria-label='Rooms']//a[contains(., '<b>Bold</b> room')]")
        .await;
    ann.close().await;
    bob.close().await;
    w.server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reload_keeps_the_session_the_room_and_the_queue() {
    let w = World::new().await;
    let (ann, proxy) = w.user("reload", "ann", DESKTOP).await;
    ann.create_room("notes", "Notes").await;
    ann.send("Before the cut").await;
    ann.wait_for_message("Before the cut", "confirmed").await;

    // The socket drops; what she writes queues up.
    proxy.cut_sockets();
    ann.wait_for(
        "the status to leave Online",
        "const s = document.querySelector('[role=status]'); return !!s && !s.innerText.includes('Online')",
    )
    .await;
    ann.send("Written while the socket was down").await;
    ann.wait_for_message("Written while the socket was down", "pending")
        .await;

    // A reload (the page still loads; the socket still cannot connect).
    ann.client.refresh().await.unwrap();
    ann.wait_for(
        "the room to open again",
        "return location.pathname === '/rooms/notes' && !!document.querySelector('[role=log]')",
    )
    .await;
    ann.find("//button[normalize-space(.)='Sign out']").await;
    ann.wait_for_message("Before the cut", "confirmed").await;
    ann.wait_for_message("Written while the socket was down", "pending")
        .await;
    let status = ann.status().await;
    assert!(
        !status.contains("Online"),
        "status {status:?} with the socket cut"
    );

    // The socket comes back: the queue is delivered, once.
    proxy.pass();
    ann.wait_for_status("Online").await;
    ann.wait_for_message("Written while the socket was down", "confirmed")
        .await;
    let token = w.server.token("ann", PASSWORD).await;
    let stored = w.server.messages(&token, "notes").await;
    let texts: Vec<&str> = stored
        .iter()
        .filter_map(|m| m["content"].as_str())
        .collect();
    assert_eq!(
        texts,
        ["Before the cut", "Written while the socket was down"]
    );
    ann.close().await;
    w.server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dropped_connection_queues_then_delivers() {
    let w = World::new().await;
    let (ann, proxy_a) = w.user("dropped", "ann", DESKTOP).await;
    ann.create_room("road", "Road").await;
    let (bob, _pb) = w.user("dropped", "bob", DESKTOP).await;
    bob.open_room("road", "Road").await;

    proxy_a.cut_sockets();
    ann.wait_for(
        "the status to say the connection is being retried",
        "const s = document.querySelector('[role=status]'); \
         return !!s && /Reconnecting|Connecting/.test(s.innerText)",
    )
    .await;
    for text in ["In the tunnel 1", "In the tunnel 2", "In the tunnel 3"] {
        ann.send(text).await;
        ann.wait_for_message(text, "pending").await;
    }
    // Bob goes on meanwhile.
    bob.send("Are you there?").await;
    bob.wait_for_message("Are you there?", "confirmed").await;

    proxy_a.pass();
    for text in ["In the tunnel 1", "In the tunnel 2", "In the tunnel 3"] {
        ann.wait_for_message(text, "confirmed").await;
        bob.wait_for_message(text, "confirmed").await;
    }
    ann.wait_for_message("Are you there?", "confirmed").await;
    // Same order, no duplicate, on both sides.
    let a: Vec<String> = ann.messages().await.into_iter().map(|m| m.id).collect();
    let b: Vec<String> = bob.messages().await.into_iter().map(|m| m.id).collect();
    assert_eq!(a.len(), 4, "{a:?}");
    assert_eq!(a, b);
    ann.close().await;
    bob.close().await;
    w.server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn time_travel_shows_the_past_and_live_returns() {
    let w = World::new().await;
    let (ann, _p) = w.user("travel", "ann", DESKTOP).await;
    ann.create_room("story", "Story").await;
    for text in ["Once upon a time", "There was a log", "The end"] {
        ann.send(text).await;
        ann.wait_for_message(text, "confirmed").await;
    }
    ann.click_in_message("The end", "Edit").await;
    let edit = ann.field("Edit message").await;
    edit.clear().await.unwrap();
    edit.send_keys("The real end").await.unwrap();
    edit.send_keys(e2e::ENTER).await.unwrap();
    ann.wait_for_message("The real end", "confirmed").await;

    // Events: 1 the room, 2–4 the messages, 5 the edit.
    let slider = ann.field("Time travel").await;
    assert_eq!(slider.attr("min").await.unwrap().as_deref(), Some("1"));
    assert_eq!(slider.attr("max").await.unwrap().as_deref(), Some("5"));
    slider.send_keys("\u{E011}").await.unwrap(); // Home: event 1
    ann.wait_for(
        "the room as it was after event 1 (no message)",
        "return document.querySelectorAll('[role=log] article').length === 0 \
         && document.querySelector('#time-travel').value === '1' \
         && document.body.innerText.includes('The room as it was after event 1 ') \
         && document.body.innerText.includes('No messages at this point')",
    )
    .await;
    ann.find("//*[@aria-label='Event log']").await;
    let slider = ann.field("Time travel").await;
    slider.send_keys("\u{E014}").await.unwrap(); // ArrowRight: event 2
    ann.wait_for(
        "the room as it was after event 2",
        "const a = document.querySelectorAll('[role=log] article'); \
         return a.length === 1 && a[0].innerText.includes('Once upon a time')",
    )
    .await;
    let slider = ann.field("Time travel").await;
    slider.send_keys("\u{E014}").await.unwrap();
    slider.send_keys("\u{E014}").await.unwrap(); // event 4: before the edit
    ann.wait_for(
        "the room as it was after event 4",
        "const a = Array.from(document.querySelectorAll('[role=log] article')); \
         return a.length === 3 && a[2].innerText.includes('The end') \
         && !a[2].innerText.includes('The real end') && !a[2].innerText.includes('edited')",
    )
    .await;
    ann.screenshot("time-travel").await;

    ann.click("Live").await;
    ann.wait_for(
        "the present again",
        "const a = Array.from(document.querySelectorAll('[role=log] article')); \
         return a.length === 3 && a[2].innerText.includes('The real end')",
    )
    .await;
    ann.close().await;
    w.server.stop().await;
}

/// The page scrolls sideways at 390 px?
async fn no_sideways_scroll(b: &Browser, screen: &str) {
    let width = b.js("return window.innerWidth").await;
    assert!(
        width.as_u64().unwrap() <= 400,
        "the window is {width} px wide, not a phone's"
    );
    let over = b
        .js("return document.documentElement.scrollWidth - document.documentElement.clientWidth")
        .await;
    if over.as_i64() != Some(0) {
        b.fail(&format!(
            "{screen}: {over} px of horizontal scrolling at phone width"
        ))
        .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn at_phone_width_nothing_scrolls_sideways() {
    let w = World::new().await;
    let proxy = Proxy::start(w.server.addr).await;
    let phone = w.driver.browser("phone", 390, 844).await;
    phone.goto(&proxy.url("/")).await;
    phone.field("User id").await;
    no_sideways_scroll(&phone, "sign-in").await;
    phone.screenshot("phone-signed-out").await;
    phone.sign_up(&proxy.url(""), "pat", PASSWORD).await;
    no_sideways_scroll(&phone, "room list").await;
    phone.screenshot("phone-room-list").await;
    phone
        .create_room(
            "a-room-with-a-long-id-x",
            "A room whose name goes on and on and on",
        )
        .await;
    let long_word = "x".repeat(400);
    phone.send(&long_word).await;
    phone
        .send("https://example.com/a/very/long/path/that/does/not/break/anywhere/at/all/0123456789")
        .await;
    phone.wait_for_message(&long_word, "confirmed").await;
    no_sideways_scroll(&phone, "open room").await;
    phone.screenshot("phone-open-room").await;
    phone.close().await;
    w.server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_room_list_shows_unread_counts_that_fall_when_read() {
    let w = World::new().await;
    let (ann, _pa) = w.user("unread", "ann", DESKTOP).await;
    ann.create_room("news", "News").await;
    let (bob, _pb) = w.user("unread", "bob", DESKTOP).await;
    // Bob is on the room list (no room open) while Ann writes three messages.
    bob.find("//nav[@aria-label='Rooms']//a[contains(., 'News')]")
        .await;
    let token = w.server.token("ann", PASSWORD).await;
    w.server
        .post_messages(&token, "news", (1..=3).map(|i| format!("News item {i}")))
        .await;
    let count = "return Array.from(document.querySelectorAll('nav[aria-label=Rooms] li'))\
                 .filter(l => l.innerText.includes('News'))\
                 .map(l => (l.innerText.match(/\\b\\d+\\b/) || ['none'])[0])[0]";
    bob.wait_for(
        "an unread count of 3 next to News",
        &format!("const c = (() => {{ {count} }})(); return c === '3'"),
    )
    .await;
    bob.screenshot("room-list-unread").await;
    // He reads them: the count goes.
    bob.open_room("news", "News").await;
    bob.wait_for_message("News item 3", "confirmed").await;
    bob.wait_for(
        "no unread count once read",
        &format!("const c = (() => {{ {count} }})(); return c === 'none'"),
    )
    .await;
    ann.close().await;
    bob.close().await;
    w.server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn older_messages_load_when_scrolling_up() {
    let w = World::new().await;
    let (ann, _p) = w.user("older", "ann", DESKTOP).await;
    ann.create_room("long", "Long").await;
    let token = w.server.token("ann", PASSWORD).await;
    w.server
        .post_messages(&token, "long", (0..230).map(|i| format!("Line {i:03}")))
        .await;
    ann.client.refresh().await.unwrap();
    ann.wait_for_room("long").await;
    ann.wait_for_message("Line 229", "confirmed").await;
    let first = ann.messages().await.len();
    assert!(
        first < 230,
        "the whole room was loaded at once ({first} messages)"
    );
    // Scrolling up loads pages until the first message, in order.
    ann.wait_for(
        "every message, after scrolling up",
        "const log = document.querySelector('[role=log]'); log.scrollTop = 0; \
         log.dispatchEvent(new Event('scroll')); \
         return document.querySelectorAll('[role=log] article').length === 230",
    )
    .await;
    let shown = ann.messages().await;
    for (i, m) in shown.iter().enumerate() {
        assert!(
            m.text.contains(&format!("Line {i:03}")),
            "message {i}: {m:?}"
        );
    }
    ann.close().await;
    w.server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn signing_out_and_back_in() {
    let w = World::new().await;
    let (ann, proxy) = w.user("sign_in", "ann", DESKTOP).await;
    ann.create_room("mine", "Mine").await;
    ann.click("Sign out").await;
    ann.field("User id").await;
    // Signed out stays signed out across a reload.
    ann.client.refresh().await.unwrap();
    ann.field("User id").await;
    assert_eq!(
        ann.js("return !!document.querySelector('[role=status]')")
            .await,
        false
    );

    // A wrong password is an alert; the right one signs in.
    ann.type_into("User id", "ann").await;
    ann.type_into("Password", "not the password").await;
    ann.click("Sign in").await;
    ann.wait_for(
        "an alert about the credentials",
        "return Array.from(document.querySelectorAll('[role=alert]')).some(a => /wrong/i.test(a.innerText))",
    )
    .await;
    ann.type_into("Password", PASSWORD).await;
    ann.field("Password")
        .await
        .send_keys(e2e::ENTER)
        .await
        .unwrap();
    ann.find("//button[normalize-space(.)='Sign out']").await;
    ann.goto(&proxy.url("/rooms/mine")).await;
    ann.wait_for_room("mine").await;
    ann.close().await;
    w.server.stop().await;
}
