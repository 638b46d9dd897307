//! `server rebuild-projections` (`server::rebuild`): with the projection
//! wiped, a rebuild from the events gives back the same `/messages` and the
//! same unread counts as before, on the store the suite runs against.

mod common;

use common::*;
use reqwest::Client;
use serde_json::{json, Value};
use server::store::RoomProjection;

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
        unread_before.1, 1,
        "bob read up to 'one': alice's 'four' is unread"
    );
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
    assert_eq!((done.rooms, done.events), (1, 1 + 5 + 4));
    drop(stores);

    let s = TestServer::start_with(config, None).await;
    let (_, after) = get(&c, &s, &alice, "/api/rooms/r/messages").await;
    assert_eq!(after, before);
    assert_eq!(
        (unread(&c, &s, &alice).await, unread(&c, &s, &bob).await),
        unread_before
    );
    s.stop().await;
}
