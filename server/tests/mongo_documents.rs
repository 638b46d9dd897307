//! The MongoDB store's documents: an event's fields stored once each (not
//! its JSON text besides), a message's view row holding its key alone while
//! the message is as its event sent it; and a database written in the
//! earlier layout (events and every view as JSON text) read back the same.
//!
//! Needs `TEST_MONGODB_URI` (the test command's MongoDB pass sets it;
//! without it the test says so and does nothing).

mod common;

use common::*;
use domain::{ChatEvent, RoomState};
use mongodb::bson::{doc, Document};
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

fn act(kind: &str, target: &Value, content: Option<&str>) -> Value {
    json!({
        "eventId": Uuid::new_v4().to_string(),
        "eventType": kind,
        "targetMessageId": target,
        "content": content,
    })
}

/// The room's whole log and its newest messages, as the API gives them.
async fn read_all(c: &reqwest::Client, s: &TestServer, token: &str) -> (Value, Value) {
    let (status, events) = get(c, s, token, "/api/rooms/r/events?afterSeq=0&limit=500").await;
    assert_eq!(status, StatusCode::OK, "{events}");
    let (status, messages) = get(c, s, token, "/api/rooms/r/messages?limit=50").await;
    assert_eq!(status, StatusCode::OK, "{messages}");
    (events, messages)
}

/// The texts of a page of `/messages`, oldest first.
fn texts(page: &Value) -> Vec<&str> {
    page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn documents_are_compact_and_the_earlier_layout_reads_the_same() {
    let Ok(uri) = std::env::var("TEST_MONGODB_URI") else {
        eprintln!("TEST_MONGODB_URI is not set: no MongoDB to look into; skipped");
        return;
    };
    let (dir, s, c, token) = setup("r").await;
    // Five messages: one left as sent, one edited, one reacted to, one
    // deleted, one whose reaction was taken back; and a read.
    let mut ids = Vec::new();
    for text in [
        "as sent",
        "to edit",
        "to react to",
        "to delete",
        "unreacted",
    ] {
        let (status, e) = post(&c, &s, &token, "r", send(text)).await;
        assert_eq!(status, StatusCode::CREATED, "{e}");
        ids.push(e["eventId"].clone());
    }
    for body in [
        act("MESSAGE_EDITED", &ids[1], Some("edited")),
        act("REACTION_ADDED", &ids[2], Some("👍")),
        act("MESSAGE_DELETED", &ids[3], None),
        act("REACTION_ADDED", &ids[4], Some("🎉")),
        act("REACTION_REMOVED", &ids[4], Some("🎉")),
        act("MESSAGE_READ", &ids[2], None),
    ] {
        let (status, e) = post(&c, &s, &token, "r", body).await;
        assert_eq!(status, StatusCode::CREATED, "{e}");
    }
    let (events, messages) = read_all(&c, &s, &token).await;
    assert_eq!(
        texts(&messages),
        ["as sent", "edited", "to react to", "unreacted"],
        "{messages}"
    );

    let db = mongodb::Client::with_uri_str(&uri)
        .await
        .unwrap()
        .database(&TestServer::config(dir.path(), 0).mongodb_db);
    let stored_events: Vec<Document> = all(&db, "chat_events").await;
    assert_eq!(
        stored_events.len(),
        events["events"].as_array().unwrap().len()
    );
    for d in &stored_events {
        assert!(!d.contains_key("event"), "an event's JSON text stored: {d}");
        assert!(d.get_str("eventType").is_ok(), "{d}");
    }
    // Views: the messages as sent are their keys alone (the unreacted one
    // again); the edited and the reacted ones hold their messages; the
    // deleted one has no row.
    let views: Vec<Document> = all(&db, "chat_message_views").await;
    let with_message: Vec<i64> = views
        .iter()
        .filter(|d| d.contains_key("message"))
        .map(|d| d.get_i64("seq").unwrap())
        .collect();
    let seq_of = |i: usize| {
        messages["messages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["messageId"] == ids[i])
            .map(|m| m["seq"].as_i64().unwrap())
            .unwrap()
    };
    assert_eq!(views.len(), 4, "{views:?}");
    assert_eq!(with_message, [seq_of(1), seq_of(2)], "{views:?}");

    // The same rows in the earlier layout: every event as JSON text, every
    // view row with its message but one, which stays a key alone with its
    // event in the earlier layout (as a rebuild of such a room, or a
    // reaction taken back there, leaves it).
    s.stop().await;
    let log: Vec<ChatEvent> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| ChatEvent::from_json(e.to_string().as_bytes()).unwrap())
        .collect();
    for e in &log {
        let old = doc! {
            "roomId": e.room_id.as_str(),
            "seq": e.seq as i64,
            "eventId": e.event_id.to_string(),
            "ts": e.timestamp.as_millis(),
            "event": e.to_json(),
        };
        let replaced = db
            .collection::<Document>("chat_events")
            .replace_one(doc! {"roomId": "r", "seq": e.seq as i64}, old)
            .await
            .unwrap();
        assert_eq!(replaced.matched_count, 1);
    }
    let as_sent = seq_of(0) as u64;
    for m in RoomState::replay(log).unwrap().messages() {
        if m.seq == as_sent {
            continue;
        }
        let updated = db
            .collection::<Document>("chat_message_views")
            .update_one(
                doc! {"roomId": "r", "seq": m.seq as i64},
                doc! {"$set": {"message": serde_json::to_string(m).unwrap()}},
            )
            .await
            .unwrap();
        assert_eq!(updated.matched_count, 1);
    }
    let bare: Vec<i64> = all(&db, "chat_message_views")
        .await
        .iter()
        .filter(|d| !d.contains_key("message"))
        .map(|d| d.get_i64("seq").unwrap())
        .collect();
    assert_eq!(bare, [seq_of(0)]);
    let s = TestServer::start(dir.path(), 0).await;
    assert_eq!(read_all(&c, &s, &token).await, (events, messages));
    // And the layouts side by side: a new message after the old rows.
    let (status, e) = post(&c, &s, &token, "r", send("after")).await;
    assert_eq!(status, StatusCode::CREATED, "{e}");
    let (_, messages) = read_all(&c, &s, &token).await;
    assert_eq!(
        texts(&messages),
        ["as sent", "edited", "to react to", "unreacted", "after"]
    );
    let newest = all(&db, "chat_message_views").await.pop().unwrap();
    assert_eq!(newest.get_i64("seq").unwrap(), e["seq"].as_i64().unwrap());
    assert!(!newest.contains_key("message"), "{newest}");
    s.stop().await;
}

async fn all(db: &mongodb::Database, coll: &str) -> Vec<Document> {
    use futures_util::TryStreamExt;
    db.collection::<Document>(coll)
        .find(doc! {})
        .sort(doc! {"seq": 1})
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap()
}
