//! The HTTP floor of scenario 2: the same HTTP writers against a minimal
//! axum route that does what every append does besides storing it (read
//! the bearer token and look it up in memory, parse the JSON body, number
//! the event, answer 201 with it) and nothing else. It shows what this
//! machine's two cores allow any HTTP append at all, whatever the store:
//! the raw redb baseline has no HTTP, so a ratio to it above this floor's
//! is out of reach.

use crate::measure::Latency;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use uuid::Uuid;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewEvent {
    event_id: Uuid,
    event_type: String,
    content: String,
}

struct Floor {
    tokens: HashMap<String, String>,
    seq: AtomicU64,
}

async fn append(
    State(floor): State<Arc<Floor>>,
    Path(room): Path<String>,
    headers: HeaderMap,
    Json(e): Json<NewEvent>,
) -> Result<(StatusCode, Json<Value>), StatusCode> {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(StatusCode::UNAUTHORIZED)?;
    let sender = floor.tokens.get(token).ok_or(StatusCode::UNAUTHORIZED)?;
    let seq = floor.seq.fetch_add(1, Ordering::Relaxed) + 1;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "eventId": e.event_id, "roomId": room, "seq": seq, "senderId": sender,
            "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "eventType": e.event_type, "content": e.content,
        })),
    ))
}

/// Serves the floor on a runtime of its own (two worker threads, as the
/// server has on these two cores), once per run; its base URL and the
/// token it knows.
fn start() -> &'static (String, String) {
    static FLOOR: OnceLock<(String, String)> = OnceLock::new();
    FLOOR.get_or_init(serve)
}

fn serve() -> (String, String) {
    let token = Uuid::new_v4().to_string();
    let floor = Arc::new(Floor {
        tokens: HashMap::from([(token.clone(), "writer0".to_owned())]),
        seq: AtomicU64::new(0),
    });
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    listener
        .set_nonblocking(true)
        .expect("a non-blocking socket");
    let base = format!("http://{}", listener.local_addr().expect("its address"));
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("http-floor")
            .enable_all()
            .build()
            .expect("the floor's runtime");
        rt.block_on(async move {
            let app = Router::new()
                .route("/api/rooms/{room}/events", post(append))
                .with_state(floor);
            let listener = tokio::net::TcpListener::from_std(listener).expect("the listener");
            axum::serve(listener, app).await.expect("the floor serves");
        });
    });
    (base, token)
}

/// `writers` tasks posting one request at a time until `deadline`, writer
/// `w` to `urls[w % urls.len()]`; each request's latency. Anything but a
/// 201 fails the run.
pub async fn post_until(
    http: &reqwest::Client,
    urls: &[String],
    token: &str,
    writers: usize,
    deadline: Instant,
    body: fn() -> Value,
) -> Vec<Duration> {
    let mut tasks = Vec::new();
    for w in 0..writers {
        let (http, url, token) = (http.clone(), urls[w % urls.len()].clone(), token.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let t = Instant::now();
                let r = http
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&body())
                    .send()
                    .await;
                let status = r.expect("the server answers").status();
                assert_eq!(status.as_u16(), 201, "an append is refused");
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("a writer"));
    }
    all
}

/// The floor's events/s and latency for `writers` writers over `time`.
pub async fn measure(writers: usize, time: Duration, body: fn() -> Value) -> (f64, Latency) {
    let (base, token) = start();
    let urls = [format!("{base}/api/rooms/floor/events")];
    let http = reqwest::Client::new();
    let started = Instant::now();
    let all = post_until(&http, &urls, token, writers, started + time, body).await;
    let rate = all.len() as f64 / started.elapsed().as_secs_f64();
    (rate, Latency::of(all))
}
