//! The HTTP routes, one file per group, and what they share: body reading
//! with the contract's errors and a deadline, authentication plus rate
//! limiting, the client's address (X-Forwarded-For from trusted proxies
//! only), request metrics with bounded labels, and the web app: static
//! files served precompressed (`.br`, `.gz` next to each file) with an
//! `index.html` fallback (never for `/api`, `/healthz`, `/metrics`; never
//! out of STATIC_DIR). The bodies and query strings themselves are typed in
//! `crate::api_types`.

pub(crate) mod ops;
pub(crate) mod rooms;
pub(crate) mod users;
pub(crate) mod ws;

use crate::api_types::RoomPath;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::metrics::{method_label, status_label};
use crate::AppState;
use axum::body::{Body, Bytes};
use axum::extract::rejection::PathRejection;
use axum::extract::{MatchedPath, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::Router;
use http_body::{Body as _, Frame, SizeHint};
use http_body_util::{BodyExt, Limited};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path as FsPath, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tower::ServiceExt;
use tower_http::compression::CompressionLayer;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::trace::TraceLayer;

/// Largest request body (and WebSocket frame).
pub const MAX_BODY: usize = 64 * 1024;

pub fn router(state: AppState) -> Router {
    let static_dir = state.config.static_dir.clone();
    let web_app = WebApp {
        files: ServeDir::new(&static_dir)
            .precompressed_br()
            .precompressed_gzip(),
        index: ServeFile::new(static_dir.join("index.html"))
            .precompressed_br()
            .precompressed_gzip(),
        root: static_dir,
    };
    let fallback = move |req: Request| web_app_or_not_found(web_app.clone(), req);
    let body_timeout = state.config.client_timeout;
    Router::new()
        .route("/api/users", post(users::create_user))
        .route("/api/sessions", post(users::sign_in))
        .route("/api/sessions/current", axum::routing::delete(users::sign_out))
        .route("/api/rooms", get(rooms::list_rooms).post(rooms::create_room))
        .route("/api/rooms/{roomId}", get(rooms::get_room))
        .route("/api/rooms/{roomId}/events", get(rooms::get_events).post(rooms::post_event))
        .route("/api/rooms/{roomId}/messages", get(rooms::get_messages))
        .route("/api/rooms/{roomId}/snapshot", get(rooms::get_snapshot))
        .route("/api/rooms/{roomId}/ws", get(ws::connect))
        .route("/api/openapi.json", get(ops::openapi))
        .route("/api", any(ops::not_found))
        .route("/api/{*rest}", any(ops::not_found))
        .route("/healthz", get(ops::healthz))
        .route("/metrics", get(ops::metrics))
        .method_not_allowed_fallback(ops::method_not_allowed)
        .fallback(fallback)
        // gzip or br when the request's Accept-Encoding allows it; never a
        // response that already has a Content-Encoding (a precompressed
        // static file).
        .layer(CompressionLayer::new())
        .layer(middleware::from_fn_with_state(state.clone(), count_requests))
        .layer(middleware::from_fn(move |req: Request, next: Next| {
            // A request without a body needs no deadline (nor a timer).
            if req.body().is_end_stream() {
                return next.run(req);
            }
            next.run(req.map(|b| Body::new(Deadline::new(b, body_timeout))))
        }))
        .layer(
            // Paths only: the WebSocket token travels in the query string.
            TraceLayer::new_for_http().make_span_with(|req: &Request| {
                tracing::info_span!("http", method = %req.method(), path = %req.uri().path())
            }),
        )
        .with_state(state)
}

/// Counts a request by method, matched route template and status class:
/// values from closed sets only (see `crate::metrics`).
async fn count_requests(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let method = method_label(req.method());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let res = next.run(req).await;
    state
        .metrics
        .requests
        .with_label_values(&[
            method,
            route.as_deref().unwrap_or("unmatched"),
            status_label(res.status()),
        ])
        .inc();
    res
}

/// Whether a path is the API's or the operations' (first segment `api`,
/// `healthz` or `metrics` in any case, percent-decoded): those never fall
/// back to the web app, whose own paths are lower-case and none of these.
fn is_reserved_path(path: &str) -> bool {
    let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
    let first = percent_encoding::percent_decode_str(first).decode_utf8_lossy();
    ["api", "healthz", "metrics"]
        .iter()
        .any(|r| first.eq_ignore_ascii_case(r))
}

/// The web app in STATIC_DIR: its files, each served as `FILE.br` or
/// `FILE.gz` when that exists and the request's Accept-Encoding allows it
/// (with `Content-Encoding`), and `index.html` (likewise) for any path that
/// names no file.
#[derive(Clone)]
struct WebApp {
    root: PathBuf,
    files: ServeDir,
    index: ServeFile,
}

/// How long a static response may be cached. trunk names the bundle's
/// files after a hash of their content (`web-<hash>.js`,
/// `web-<hash>_bg.wasm`): those never change and are immutable for a year.
/// `index.html` (which names them) and every other file are revalidated
/// on each use (`no-cache`, with `Last-Modified`).
const CACHE_IMMUTABLE: HeaderValue =
    HeaderValue::from_static("public, max-age=31536000, immutable");
const CACHE_REVALIDATE: HeaderValue = HeaderValue::from_static("no-cache");

/// Whether a file name carries trunk's content hash: a `-`-separated part
/// of its stem (before the first `.`, without wasm-bindgen's `_bg`) that is
/// 12 to 16 lower-case hex digits (a 64-bit hash in hex).
fn is_content_hashed(file_name: &str) -> bool {
    let stem = file_name.split('.').next().unwrap_or("");
    let stem = stem.strip_suffix("_bg").unwrap_or(stem);
    stem.split('-').any(|part| {
        (12..=16).contains(&part.len())
            && part.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

/// Unmatched paths: 404 `not_found` under `/api` (and `/healthz/…`,
/// `/metrics/…`); else the web app, never a file that resolves outside
/// STATIC_DIR (a symlink out of it answers 404 `not_found`), with
/// `Cache-Control` and `Vary: Accept-Encoding` on what it serves.
async fn web_app_or_not_found(web_app: WebApp, req: Request) -> Response {
    let path = req.uri().path();
    if is_reserved_path(path) {
        return ApiError::not_found().into_response();
    }
    if resolves_outside(&web_app.root, path).await {
        return ApiError::not_found().into_response();
    }
    let hashed =
        !path.ends_with(".html") && is_content_hashed(path.rsplit('/').next().unwrap_or(""));
    let (parts, body) = req.into_parts();
    let again = Request::from_parts(parts.clone(), Body::empty());
    let Ok(res) = web_app
        .files
        .oneshot(Request::from_parts(parts, body))
        .await;
    let (res, cache) = if res.status() == StatusCode::NOT_FOUND {
        // No such file: the app's own path, which index.html routes.
        let Ok(res) = web_app.index.oneshot(again).await;
        (res.map(Body::new), CACHE_REVALIDATE)
    } else if hashed {
        (res.map(Body::new), CACHE_IMMUTABLE)
    } else {
        (res.map(Body::new), CACHE_REVALIDATE)
    };
    with_cache_headers(res, cache)
}

/// `Cache-Control` on a file (200, 206 or 304), and `Vary: Accept-Encoding`
/// since the bytes depend on it (which also keeps the compression layer
/// from adding it twice).
fn with_cache_headers(mut res: Response, cache: HeaderValue) -> Response {
    let served = matches!(
        res.status(),
        StatusCode::OK | StatusCode::PARTIAL_CONTENT | StatusCode::NOT_MODIFIED
    );
    if served {
        let headers = res.headers_mut();
        headers.insert(header::CACHE_CONTROL, cache);
        let varies = headers.get_all(header::VARY).iter().any(|v| {
            v.to_str().is_ok_and(|v| {
                v.split(',')
                    .any(|name| name.trim().eq_ignore_ascii_case("accept-encoding"))
            })
        });
        if !varies {
            headers.append(header::VARY, header::ACCEPT_ENCODING.into());
        }
    }
    res
}

/// Whether serving `path` would follow a symlink out of `root`: the path's
/// deepest existing part (the file, or the directory the lookup stops in)
/// resolves, symlinks followed, outside `root`, or so does any file that
/// could be served for it: the file's precompressed variants (`.br`,
/// `.gz`, which are served even when the file itself is missing), and for
/// a directory or a missing file the directory's and the root's
/// `index.html` and their variants. Paths ServeDir refuses itself (`..`,
/// …) are left to it.
async fn resolves_outside(root: &FsPath, path: &str) -> bool {
    let Ok(decoded) = percent_encoding::percent_decode_str(path).decode_utf8() else {
        return false;
    };
    let mut candidate = root.to_path_buf();
    let mut segments = 0;
    for segment in decoded.split('/') {
        match segment {
            "" | "." => {}
            ".." => return false,
            s if s.contains('\\') || s.contains('\0') => return false,
            s => {
                candidate.push(s);
                segments += 1;
            }
        }
    }
    let Ok(canonical_root) = tokio::fs::canonicalize(root).await else {
        return false;
    };
    // The deepest part that exists (at worst the root itself).
    let mut probe = candidate.clone();
    let mut missing = false;
    let resolved = loop {
        match tokio::fs::canonicalize(&probe).await {
            Ok(p) => break p,
            Err(_) if segments > 0 && probe.pop() => {
                segments -= 1;
                missing = true;
            }
            Err(_) => return false,
        }
    };
    if !resolved.starts_with(&canonical_root) {
        return true;
    }
    let mut served = with_variants(&candidate).to_vec();
    if missing || resolved.is_dir() {
        served.extend(with_variants(&candidate.join("index.html")));
        served.extend(with_variants(&root.join("index.html")));
    }
    for file in served {
        if let Ok(p) = tokio::fs::canonicalize(&file).await {
            if !p.starts_with(&canonical_root) {
                return true;
            }
        }
    }
    false
}

/// A file and its precompressed variants (`FILE.br`, `FILE.gz`).
fn with_variants(file: &FsPath) -> [PathBuf; 3] {
    let variant = |ext: &str| {
        let mut name = file.as_os_str().to_owned();
        name.push(ext);
        PathBuf::from(name)
    };
    [file.to_path_buf(), variant(".br"), variant(".gz")]
}

/// A request body that fails once `timeout` has passed since the request's
/// head arrived, however the bytes trickle in (`CLIENT_TIMEOUT`); reading it
/// then answers 400 `bad_json` ([`read_body`]) and the connection closes.
struct Deadline {
    inner: Body,
    deadline: Pin<Box<tokio::time::Sleep>>,
    timeout: Duration,
}

impl Deadline {
    fn new(inner: Body, timeout: Duration) -> Self {
        Deadline {
            inner,
            deadline: Box::pin(tokio::time::sleep(timeout)),
            timeout,
        }
    }
}

/// The error of a body not received within the client timeout.
#[derive(Debug, thiserror::Error)]
#[error("the body did not arrive within {0:?}")]
struct BodyTimedOut(Duration);

impl http_body::Body for Deadline {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            let e = BodyTimedOut(self.timeout);
            return Poll::Ready(Some(Err(axum::Error::new(e))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The client's address: the peer's, or, when the peer is one of
/// `TRUSTED_PROXIES`, the nearest address in `X-Forwarded-For` that is not
/// a trusted proxy (read from the right, so a client cannot hide behind a
/// first hop it made up). At most the last 32 entries are read.
pub fn client_ip(state: &AppState, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
    forwarded_client(&state.config.trusted_proxies, peer.ip(), headers)
}

fn forwarded_client(trusted: &[IpAddr], peer: IpAddr, headers: &HeaderMap) -> IpAddr {
    let is_trusted = |ip: IpAddr| {
        trusted
            .iter()
            .any(|t| t.to_canonical() == ip.to_canonical())
    };
    let mut client = peer.to_canonical();
    if !is_trusted(client) {
        return client;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    for hop in hops.iter().rev().take(32) {
        let Ok(ip) = hop.trim().parse::<IpAddr>() else {
            break;
        };
        client = ip.to_canonical();
        if !is_trusted(client) {
            break;
        }
    }
    client
}

/// The bearer token of a request: the `Authorization` header wins over the
/// `token` query parameter (which only the WebSocket route reads).
pub fn bearer(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
        .filter(|t| !t.is_empty())
}

/// Authenticates and applies the per-user rate limit (401, then 429).
pub async fn caller(
    state: &AppState,
    headers: &HeaderMap,
    query_token: Option<String>,
) -> Result<Caller, ApiError> {
    let token = bearer(headers).or(query_token);
    let caller = state
        .sessions
        .authenticate(&*state.stores.accounts, token)
        .await?;
    state
        .rate
        .check(&caller.user)
        .map_err(ApiError::rate_limited)?;
    Ok(caller)
}

/// Reads a body of at most 64 KiB (413 beyond); one that does not arrive
/// within the client timeout, or breaks off, is 400 `bad_json`.
pub async fn read_body(body: Body) -> Result<Bytes, ApiError> {
    match Limited::new(body, MAX_BODY).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(ApiError::payload_too_large())
        }
        Err(e) => Err(ApiError::bad_json(format!(
            "the body could not be read: {e}"
        ))),
    }
}

/// Reads a body (413 beyond 64 KiB) and decodes it as a JSON object into `T`
/// (400 `bad_json` otherwise).
pub async fn read_json<T: serde::de::DeserializeOwned>(body: Body) -> Result<T, ApiError> {
    crate::api_types::json_object(&read_body(body).await?)
}

/// The `{roomId}` of a room route, read after authentication (401 comes
/// first): a path that is not UTF-8 names no room (404 `room_not_found`).
pub fn room_id(path: Result<Path<RoomPath>, PathRejection>) -> Result<String, ApiError> {
    path.map(|Path(p)| p.room_id)
        .map_err(|_| ApiError::room_not_found())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn x_forwarded_for_is_read_from_the_right_and_only_from_trusted_peers() {
        let trusted = [ip("10.0.0.1"), ip("10.0.0.2")];
        let peer = ip("10.0.0.1");
        let cases: [(&[&str], &str); 7] = [
            (&[], "10.0.0.1"),
            (&["1.2.3.4"], "1.2.3.4"),
            (&["6.6.6.6, 1.2.3.4"], "1.2.3.4"),
            (&["6.6.6.6, 1.2.3.4, 10.0.0.2"], "1.2.3.4"),
            (&["6.6.6.6", "1.2.3.4, 10.0.0.2"], "1.2.3.4"),
            (&["1.2.3.4, garbage"], "10.0.0.1"),
            (&["10.0.0.2"], "10.0.0.2"),
        ];
        for (values, want) in cases {
            assert_eq!(
                forwarded_client(&trusted, peer, &xff(values)),
                ip(want),
                "{values:?}"
            );
        }
        // an untrusted peer's header is ignored
        assert_eq!(
            forwarded_client(&trusted, ip("5.5.5.5"), &xff(&["1.2.3.4"])),
            ip("5.5.5.5")
        );
        assert_eq!(forwarded_client(&[], peer, &xff(&["1.2.3.4"])), peer);
        // IPv4-mapped IPv6 peers are their IPv4 address
        assert_eq!(
            forwarded_client(&trusted, ip("::ffff:10.0.0.1"), &xff(&["1.2.3.4"])),
            ip("1.2.3.4")
        );
    }

    #[test]
    fn trunks_content_hashed_names_are_recognised() {
        for name in [
            "web-4f1a2b3c4d5e6f70.js",
            "web-4f1a2b3c4d5e6f70_bg.wasm",
            "web-4f1a2b3c4d5e6f70_bg.wasm.br",
            "style-0123456789abc.css",
            "4f1a2b3c4d5e6f70-loader.js",
        ] {
            assert!(is_content_hashed(name), "{name}");
        }
        for name in [
            "index.html",
            "web.js",
            "web_bg.wasm",
            "favicon.ico",
            "web-deadbeef.js",
            "web-4F1A2B3C4D5E6F70.js",
            "web-4f1a2b3c4d5e6f70a1.js",
            "inline0.js",
        ] {
            assert!(!is_content_hashed(name), "{name}");
        }
    }

    #[test]
    fn api_health_and_metrics_paths_are_reserved_in_any_case() {
        for p in [
            "/api",
            "/api/",
            "/API/rooms",
            "/Api",
            "/healthz/",
            "/metrics/x",
            "/%61pi/x",
            "//api",
        ] {
            assert!(is_reserved_path(p), "{p}");
        }
        for p in [
            "/",
            "/apis",
            "/rooms/api",
            "/healthzz",
            "/index.html",
            "/app.js",
        ] {
            assert!(!is_reserved_path(p), "{p}");
        }
    }
}
