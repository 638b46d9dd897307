//! `server rebuild-projections` (`server::rebuild`): with the projection
//! wiped, a rebuild from the events gives back the same `/messages` and the
//! same unread counts as before, on the store the suite runs against. The
//! room is long enough that the embedded store has packed its older events
//! and views into blocks, and its old messages are changed after that.

mod common;

use common::*;
use reqwest::Client;
use serde_json::{json, Value};
use server::store::RoomProjection;

/// Messages sent after the named ones: the named ones end up in packed
/// blocks (64 seqs each) before they are edited, deleted and reacted to.
const FILLER: usize = 250;

/// Every message of room "r", paged back from the newest with `beforeSeq`.
async fn all_messages(c: &Client, s: &TestServer, token: &str) -> Vec<Value> {
    let mut pages = Vec::new();
    let mut before = u64::MAX;
    loop {
        let (_, page) = get(
            c,
            s,
            token,
            &format!("/api/rooms/r/messages?limit=37&beforeSeq={before}"),
        )
        .await;
        let page = page["messages"].as_array().unwrap().clone();
        let Some(oldest) = page.first() else { break };
        before = oldest["seq"].as_u64().unwrap();
        pages.push(page);
    }
    pages.into_iter().rev().flatten().collect()
}

/// Every event of room "r", paged forward with `afterSeq`.
async fn all_events(c: &Client, s: &TestServer, token: &str) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    loop {
        let after = out.last().map_or(0, |e| e["seq"].as_u64().unwrap());
        let (_, page) = get(
            c,
            s,
            token,
            &format!("/api/rooms/r/events?afterSeq={after}&limit=45"),
        )
        .await;
        let page = page["events"].as_array().unwrap();
        if page.is_empty() {
            break;
        }
        out.extend(page.iter().cloned());
    }
    out
}

async fn unread(c: &Client, s: &TestServer, token: &str) -> Value {
    let (_, rooms) = get(c, s, token, "/api/rooms").await;
    rooms["rooms"][0]["unreadCount"].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wiped_projection_is_rebuilt_from_the_events() {
    let dir = tempfile::tempdir().unwrap();
    let config = TestServer::config(dir.path(), 0);
    let s = TestServer::start_with(config.clone(), None).await;
    let c = Client::new();
    let alice = user(&c, &s, "alice").await;
    let bob = user(&c, &s, "bob").await;
    room(&c, &s, &alice, "r").await;
    let mut ids = Vec::new();
    for (who, text) in [
        (&alice, "one"),
        (&bob, "two"),
        (&alice, "three"),
        (&alice, "four"),
        (&bob, "five"),
    ] {
        let (_, e) = post(&c, &s, who, "r", send(text)).await;
        ids.push(e["eventId"].as_str().unwrap().to_owned());
    }
    for i in 0..FILLER {
        let who = if i % 3 == 0 { &bob } else { &alice };
        post(&c, &s, who, "r", send(&format!("filler {i}"))).await;
    }
    let act = |kind: &str, target: &str, content: Option<&str>| {
        let mut b = json!({"eventId": uuid::Uuid::new_v4().to_string(), "eventType": kind, "targetMessageId": target});
        if let Some(t) = content {
            b["content"] = json!(t);
        }
        b
    };
    post(
        &c,
        &s,
        &alice,
        "r",
        act("MESSAGE_EDITED", &ids[0], Some("one, edited")),
    )
    .await;
    post(&c, &s, &alice, "r", act("MESSAGE_DELETED", &ids[2], None)).await;
    post(
        &c,
        &s,
        &bob,
        "r",
        act("REACTION_ADDED", &ids[3], Some("👍")),
    )
    .await;
    post(&c, &s, &bob, "r", act("MESSAGE_READ", &ids[0], None)).await;
    let (_, before) = get(&c, &s, &alice, "/api/rooms/r/messages").await;
    let unread_before = (unread(&c, &s, &alice).await, unread(&c, &s, &bob).await);
    assert_eq!(
        unread_before.1,
        1 + FILLER as u64 * 2 / 3,
        "bob read up to 'one': alice's 'four' and fillers are unread"
    );

    // The whole log reads back in order across blocks, and so do the
    // messages, with the changes to the old ones.
    let events = all_events(&c, &s, &alice).await;
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    let last = 1 + 5 + FILLER as u64 + 4;
    assert_eq!(seqs, (1..=last).collect::<Vec<_>>());
    let messages = all_messages(&c, &s, &alice).await;
    let texts: Vec<&str> = messages
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(texts.len(), 4 + FILLER);
    assert_eq!(&texts[..4], ["one, edited", "two", "four", "five"]);
    assert_eq!(texts[4 + FILLER - 1], format!("filler {}", FILLER - 1));
    assert_eq!(messages[2]["reactions"], json!({"👍": ["bob"]}));
    assert_eq!(messages[0]["readBy"], json!(["bob"]));
    // An old event is found by its id: a retry gets it as first stored.
    let first = &events[1];
    let retry = json!({"eventId": first["eventId"], "eventType": "MESSAGE_SENT", "content": "one"});
    let (status, again) = post(&c, &s, &alice, "r", retry).await;
    assert_eq!((status.as_u16(), &again), (200, first));
    // Time travel to an old event's time reads its block.
    let at = events[100]["timestamp"].as_str().unwrap();
    let k = events
        .iter()
        .filter(|e| e["timestamp"].as_str().unwrap() <= at)
        .count() as u64;
    let (_, then) = get(
        &c,
        &s,
        &alice,
        &format!("/api/rooms/r/messages?at={}", at.replace('+', "%2B")),
    )
    .await;
    assert_eq!(then["asOfSeq"], json!(k));
    s.stop().await;

    // The projection wiped (its checkpoint saying it is up to date), then
    // rebuilt.
    let (stores, _) = server::open_backends(&config).await.unwrap();
    let last = stores.events.room("r").await.unwrap().unwrap().last_seq;
    assert!(stores
        .views
        .replace_projection("r", RoomProjection::default(), last)
        .await
        .unwrap());
    assert!(stores
        .views
        .views("r", 100, None)
        .await
        .unwrap()
        .messages
        .is_empty());
    let done = server::rebuild::rebuild_projections(&stores).await.unwrap();
    assert_eq!((done.rooms, done.events), (1, 1 + 5 + FILLER as u64 + 4));
    drop(stores);

    let s = TestServer::start_with(config, None).await;
    let (_, after) = get(&c, &s, &alice, "/api/rooms/r/messages").await;
    assert_eq!(after, before);
    assert_eq!(all_messages(&c, &s, &alice).await, messages);
    assert_eq!(
        (unread(&c, &s, &alice).await, unread(&c, &s, &bob).await),
        unread_before
    );
    s.stop().await;
}
