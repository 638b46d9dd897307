//! MongoDB going away and coming back, with a real MongoDB-compatible server
//! process these tests start, stop and start again (`SECANTUS_BIN`: the
//! test command sets it; without it the tests say so and do nothing).
//! While it is down, appends answer 503 within 3.5 s and nothing partial is
//! stored; once it is back, the same server works again without a restart.
//! A database a newer server has written (its layout marker) is refused,
//! whether MongoDB was up when the server started or came up after.

mod common;

use common::*;
use mongodb::bson::{doc, Bson, Document};
use reqwest::{Client, StatusCode};
use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Mongo {
    child: Child,
    port: u16,
    dir: std::path::PathBuf,
}

impl Mongo {
    fn start(bin: &str, port: u16, dir: &std::path::Path) -> Mongo {
        let child = Command::new(bin)
            .args([
                "--host",
                "127.0.0.1",
                "--sync-on-commit",
                "--port",
                &port.to_string(),
                "--storage-path",
            ])
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the MongoDB-compatible server starts");
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(start.elapsed() < Duration::from_secs(30), "it listens");
            std::thread::sleep(Duration::from_millis(100));
        }
        Mongo {
            child,
            port,
            dir: dir.to_path_buf(),
        }
    }

    /// Stops it (see `Drop`); where to start it again.
    fn stop(self) -> (u16, std::path::PathBuf) {
        (self.port, self.dir.clone())
    }
}

/// A failed assertion does not leave the process behind.
impl Drop for Mongo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn appends_answer_503_while_mongodb_is_down_and_work_again_when_it_is_back() {
    let Ok(bin) = std::env::var("SECANTUS_BIN") else {
        eprintln!("SECANTUS_BIN is not set: nothing to stop and start; skipped");
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let mongo = Mongo::start(&bin, port, &data.path().join("mongo"));
    let dir = tempfile::tempdir().unwrap();
    let mut config = TestServer::config(dir.path(), 0);
    config.mongodb_uri = Some(format!("mongodb://127.0.0.1:{port}"));
    config.mongodb_db = "outage".into();
    let s = TestServer::start_with(config, None).await;
    let c = Client::new();
    let token = user(&c, &s, "alice").await;
    room(&c, &s, &token, "r").await;
    let (st, _) = post(&c, &s, &token, "r", send("before")).await;
    assert_eq!(st, StatusCode::CREATED);

    // Down: a clear 503 within 3.5 s, every time.
    let (port, mongo_dir) = mongo.stop();
    for i in 0..3 {
        let t = Instant::now();
        let (st, body) = post(&c, &s, &token, "r", send(&format!("while down {i}"))).await;
        let took = t.elapsed();
        assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(code(&body), "unavailable", "{body}");
        assert!(
            took < Duration::from_millis(3500),
            "answered after {took:?}"
        );
    }

    // Back: the same server appends again (the driver reconnects by itself).
    let mongo = Mongo::start(&bin, port, &mongo_dir);
    let start = Instant::now();
    loop {
        let (st, body) = post(&c, &s, &token, "r", send("after")).await;
        if st == StatusCode::CREATED {
            assert_eq!(body["seq"], 3, "nothing of the refused appends was stored");
            break;
        }
        assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "it never came back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, page) = get(&c, &s, &token, "/api/rooms/r/messages").await;
    let texts: Vec<&str> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["content"].as_str())
        .collect();
    assert_eq!(texts, ["before", "after"]);
    s.stop().await;
    mongo.stop();
}

/// The layout marker in `chat_meta` (store/mongo.rs, `FORMAT`).
async fn format_of(db: &mongodb::Database) -> Option<Bson> {
    let found = db
        .collection::<Document>("chat_meta")
        .find_one(doc! {"_id": "format"})
        .await
        .unwrap()?;
    found.get("format").cloned()
}

async fn mark(db: &mongodb::Database, format: impl Into<Bson>) {
    db.collection::<Document>("chat_meta")
        .update_one(
            doc! {"_id": "format"},
            doc! {"$set": {"format": format.into()}},
        )
        .upsert(true)
        .await
        .unwrap();
}

/// Signs `name` up and in once the server's MongoDB answers (accounts are
/// not in the layout the marker guards).
async fn sign_up(c: &Client, s: &TestServer, name: &str) -> String {
    let start = Instant::now();
    loop {
        let r = c
            .post(s.url("/api/users"))
            .json(&serde_json::json!({"userId": name, "password": "correct horse"}))
            .send()
            .await
            .unwrap();
        // 409: an attempt answered 503 was written.
        if matches!(r.status(), StatusCode::CREATED | StatusCode::CONFLICT) {
            return sign_in(c, s, name).await;
        }
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(start.elapsed() < Duration::from_secs(30), "MongoDB answers");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn create_room(c: &Client, s: &TestServer, token: &str) -> (StatusCode, Value) {
    let r = c
        .post(s.url("/api/rooms"))
        .bearer_auth(token)
        .json(&serde_json::json!({"roomId": "r", "name": "Room"}))
        .send()
        .await
        .unwrap();
    (r.status(), r.json().await.unwrap_or(Value::Null))
}

/// A database written by a newer server (a later layout in `chat_meta`) is
/// refused: at start when MongoDB is up, and once reached when it came up
/// after the server. One of this server's layout or an earlier one is
/// marked with this server's and written into.
#[tokio::test(flavor = "multi_thread")]
async fn a_database_of_a_later_layout_is_refused_at_start_or_once_reached() {
    let Ok(bin) = std::env::var("SECANTUS_BIN") else {
        eprintln!("SECANTUS_BIN is not set: nothing to stop and start; skipped");
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let uri = format!("mongodb://127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let config = |db: &str| {
        let mut config = TestServer::config(dir.path(), 0);
        config.mongodb_uri = Some(uri.clone());
        config.mongodb_db = db.into();
        config
    };
    let mongo = Mongo::start(&bin, port, &data.path().join("mongo"));
    let client = mongodb::Client::with_uri_str(&uri).await.unwrap();
    mark(&client.database("later"), 3i64).await;
    mark(&client.database("earlier"), 1i64).await;
    mark(&client.database("garbled"), "two").await;
    client
        .database("blank")
        .collection::<Document>("chat_meta")
        .insert_one(doc! {"_id": "format"})
        .await
        .unwrap();

    // At start: refused with the reason, rather than served.
    let markers = [
        ("later", "newer server", Some(Bson::Int64(3))),
        (
            "garbled",
            "not a whole number",
            Some(Bson::String("two".into())),
        ),
        ("blank", "not a whole number", None),
    ];
    for (db, why, marker) in markers {
        let refused = server::open_backends(&config(db)).await.err();
        let refused = refused.unwrap_or_else(|| panic!("{db} is refused at start"));
        assert!(refused.contains(why), "{refused}");
        let left = format_of(&client.database(db)).await;
        assert_eq!(left, marker, "{db}: the marker is left as it was");
    }
    let fresh = server::open_backends(&config("fresh")).await;
    assert!(fresh.is_ok(), "a new database is taken");
    drop(fresh);
    assert_eq!(
        format_of(&client.database("fresh")).await,
        Some(Bson::Int64(2))
    );

    // A database whose data refuses an index (two events at one seq): the
    // server starts, and neither appends nor passes its health check.
    let c = Client::new();
    let events = client
        .database("dupes")
        .collection::<Document>("chat_events");
    for _ in 0..2 {
        let event = doc! {"roomId": "r", "seq": 1i64, "eventId": "e"};
        events.insert_one(event).await.unwrap();
    }
    let dupes = TestServer::start_with(config("dupes"), None).await;
    let token = sign_up(&c, &dupes, "carol").await;
    assert_eq!(health(&c, &dupes).await["status"], "unavailable");
    let (st, body) = create_room(&c, &dupes, &token).await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    dupes.stop().await;

    // Two servers started while MongoDB is down start; once it is back,
    // the one on an earlier layout appends, and marks it as its own.
    let (port, mongo_dir) = mongo.stop();
    let later = TestServer::start_with(config("later"), None).await;
    let earlier = TestServer::start_with(config("earlier"), None).await;
    let _mongo = Mongo::start(&bin, port, &mongo_dir);
    let token = sign_up(&c, &earlier, "bob").await;
    let start = Instant::now();
    loop {
        // 409: an attempt answered 503 was written.
        match create_room(&c, &earlier, &token).await {
            (StatusCode::CREATED | StatusCode::CONFLICT, _) => break,
            (st, body) => assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{body}"),
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the room is made"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (st, body) = post_retrying(&c, &earlier, &token, "r", send("hello")).await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    let earlier_db = client.database("earlier");
    assert_eq!(format_of(&earlier_db).await, Some(Bson::Int64(2)));

    // The one on a later layout: its health check fails with MongoDB up,
    // and a room is refused every time, with nothing written.
    let token = sign_up(&c, &later, "alice").await;
    wait_until(30, "the later layout is seen", || async {
        health(&c, &later).await["status"] == "unavailable"
    })
    .await;
    for _ in 0..2 {
        let (st, body) = create_room(&c, &later, &token).await;
        assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(code(&body), "unavailable", "{body}");
    }
    let later_db = client.database("later");
    assert_eq!(format_of(&later_db).await, Some(Bson::Int64(3)));
    for coll in ["chat_rooms", "chat_events"] {
        let n = later_db
            .collection::<Document>(coll)
            .count_documents(doc! {})
            .await
            .unwrap();
        assert_eq!(n, 0, "nothing written into {coll}");
    }
    later.stop().await;
    earlier.stop().await;
}
