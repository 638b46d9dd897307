//! Kill -9 of a server between the event commit and the projection's: the
//! real binary, built with the `fault-injection` feature (this test needs
//! it: `cargo test -p server --features fault-injection --test crash`),
//! hangs after its n-th commit of events, before their projection is
//! written; the test kills it there, finds the event stored and the
//! projection behind, starts the server again and reads views equal to the
//! replay of the events. On the embedded store, or on MongoDB when
//! `TEST_MONGODB_URI` is set.

mod common;

use common::*;
use domain::{ChatEvent, RoomState};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The server binary on `port` over the store of `dir` (or the MongoDB
/// database named after it), with `env` added; lines it writes to stderr
/// come out of the receiver.
fn spawn(dir: &Path, port: u16, env: &[(&str, &str)]) -> (Child, mpsc::Receiver<String>) {
    let config = TestServer::config(dir, 0);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_server"));
    cmd.env_clear()
        .env("BIND", format!("127.0.0.1:{port}"))
        .env("DATA_DIR", dir)
        .env("STATIC_DIR", dir.join("no-web-app"))
        .env("RATE_LIMIT_PER_USER", "0")
        .env("SNAPSHOT_EVERY", "2")
        .env("RUST_LOG", "warn")
        .env("LOG_FORMAT", "text")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(uri) = config.mongodb_uri {
        cmd.env("MONGODB_URI", uri)
            .env("MONGODB_DB", config.mongodb_db);
    }
    let mut child = cmd.spawn().expect("the server starts");
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (child, rx)
}

async fn up(c: &Client, base: &str) {
    wait_until(30, "the server answers /healthz", || async {
        c.get(format!("{base}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == StatusCode::OK)
    })
    .await;
}

async fn call(c: &Client, base: &str, token: &str, path: &str, body: Value) -> Value {
    let r = c
        .post(format!("{base}{path}"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kill_between_the_event_and_its_view_leaves_a_view_equal_to_the_replay() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let c = Client::new();
    // Commits: the room (1), two messages (2, 3), an edit (4): the server
    // hangs after writing the edit's event.
    let (mut child, stderr) = spawn(
        dir.path(),
        port,
        &[("CHAT_FAULT_HANG_AFTER_EVENT_COMMITS", "4")],
    );
    up(&c, &base).await;
    let token = user_at(&c, &base, "ann").await;
    call(
        &c,
        &base,
        &token,
        "/api/rooms",
        json!({"roomId": "r", "name": "R"}),
    )
    .await;
    call(&c, &base, &token, "/api/rooms/r/events", send("one")).await;
    let two = send("two");
    call(&c, &base, &token, "/api/rooms/r/events", two.clone()).await;
    let edit = json!({"eventId": uuid::Uuid::new_v4(), "eventType": "MESSAGE_EDITED",
        "targetMessageId": two["eventId"], "content": "two, edited"});
    let hung = c
        .post(format!("{base}/api/rooms/r/events"))
        .bearer_auth(&token)
        .json(&edit)
        .timeout(Duration::from_secs(20))
        .send();
    let said = tokio::task::spawn_blocking(move || loop {
        let line = stderr
            .recv_timeout(Duration::from_secs(15))
            .expect("the server says it hangs after the event commit");
        if line.contains("fault injection") {
            return;
        }
    });
    tokio::select! {
        r = hung => panic!("the edit was answered: {r:?}"),
        r = said => r.unwrap(),
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    // The edit's event is stored, its view is not.
    let config = TestServer::config(dir.path(), 0);
    let (stores, _) = server::open_backends(&config).await.unwrap();
    let last = stores.events.room("r").await.unwrap().unwrap().last_seq;
    assert_eq!(last, 4, "the edit is stored");
    let page = stores.views.views("r", 100, None).await.unwrap();
    assert!(page.projected < 4, "the view lags the edit");
    assert_eq!(page.messages[1].content, "two", "the view lags the edit");
    drop((stores, page));

    // Started again: the view equals the replay.
    let (mut child, _stderr) = spawn(dir.path(), port, &[]);
    up(&c, &base).await;
    let r = c
        .get(format!("{base}/api/rooms/r/events?afterSeq=0"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let events: Value = r.json().await.unwrap();
    let events: Vec<ChatEvent> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| ChatEvent::from_json(e.to_string().as_bytes()).unwrap())
        .collect();
    let replayed = RoomState::replay(events).unwrap();
    let want: Vec<(String, String, bool)> = replayed
        .messages()
        .map(|m| {
            (
                m.id.to_string(),
                m.content.to_string(),
                m.edited_at.is_some(),
            )
        })
        .collect();
    let r = c
        .get(format!("{base}/api/rooms/r/messages"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let page: Value = r.json().await.unwrap();
    assert!(page["messages"].is_array(), "{page}");
    let got: Vec<(String, String, bool)> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let text = |k: &str| m[k].as_str().unwrap().to_owned();
            (text("messageId"), text("content"), !m["editedAt"].is_null())
        })
        .collect();
    assert_eq!(got, want);
    assert_eq!(got[1].1, "two, edited");
    child.kill().unwrap();
    child.wait().unwrap();
}
