//! The web app's static files as the release bundle is served: each file
//! precompressed next to itself (`FILE.br`, `FILE.gz`, made by
//! scripts/run.sh), chosen by the request's `Accept-Encoding` for the files
//! and for the `index.html` fallback alike, sent as they are (the JSON
//! compression layer does not compress them again), with `Vary` and
//! `Cache-Control`; and no precompressed variant that leads out of
//! STATIC_DIR.

mod common;

use common::*;
use reqwest::header::{
    ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, IF_MODIFIED_SINCE,
    LAST_MODIFIED, VARY,
};
use reqwest::{Client, Response, StatusCode};
use serde_json::Value;
use std::path::Path;

/// Distinct bytes for each variant, longer than the compression layer's
/// minimum (32 bytes), so that a second compression would show.
fn bytes(name: &str) -> Vec<u8> {
    format!("<<{name}>> {}", "0123456789".repeat(10)).into_bytes()
}

fn write_with_variants(dir: &Path, name: &str) {
    for file in [name.to_owned(), format!("{name}.gz"), format!("{name}.br")] {
        std::fs::write(dir.join(&file), bytes(&file)).unwrap();
    }
}

async fn fetch(c: &Client, s: &TestServer, path: &str, accept: Option<&str>) -> Response {
    let mut req = c.get(s.url(path));
    if let Some(a) = accept {
        req = req.header(ACCEPT_ENCODING, a);
    }
    req.send().await.unwrap()
}

fn header(r: &Response, name: reqwest::header::HeaderName) -> &str {
    r.headers()
        .get(&name)
        .map(|v| v.to_str().unwrap())
        .unwrap_or("")
}

/// How many times `Vary` names Accept-Encoding.
fn varies_on_encoding(r: &Response) -> usize {
    r.headers()
        .get_all(VARY)
        .iter()
        .flat_map(|v| v.to_str().unwrap().split(','))
        .filter(|n| n.trim().eq_ignore_ascii_case("accept-encoding"))
        .count()
}

#[tokio::test]
async fn the_bundle_is_served_precompressed_by_accept_encoding_and_never_compressed_twice() {
    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("dist");
    std::fs::create_dir_all(&web).unwrap();
    write_with_variants(&web, "index.html");
    write_with_variants(&web, "app.js");
    write_with_variants(&web, "web-0123456789abcdef_bg.wasm");
    write_with_variants(&web, "web-0123456789abcdef.js");
    // no variants: compressed on the fly by the compression layer
    std::fs::write(web.join("plain.txt"), bytes("plain.txt")).unwrap();
    let mut config = TestServer::config(&dir.path().join("data"), 0);
    config.static_dir = web;
    let s = TestServer::start_with(config, None).await;
    let c = Client::new();

    // (accept-encoding, the variant served, its content-encoding)
    let choices: [(Option<&str>, &str, &str); 7] = [
        (Some("br"), ".br", "br"),
        (Some("gzip"), ".gz", "gzip"),
        (Some("gzip, deflate, br, zstd"), ".br", "br"),
        (Some("br;q=0.5, gzip"), ".gz", "gzip"),
        (Some("identity"), "", ""),
        (Some("deflate"), "", ""),
        (None, "", ""),
    ];
    // (path, the file behind it, its content type, its caching)
    let files = [
        ("/app.js", "app.js", "javascript", "no-cache"),
        ("/", "index.html", "text/html", "no-cache"),
        ("/index.html", "index.html", "text/html", "no-cache"),
        ("/rooms/x", "index.html", "text/html", "no-cache"),
        ("/some/deep/link", "index.html", "text/html", "no-cache"),
        (
            "/web-0123456789abcdef_bg.wasm",
            "web-0123456789abcdef_bg.wasm",
            "application/wasm",
            "public, max-age=31536000, immutable",
        ),
        (
            "/web-0123456789abcdef.js",
            "web-0123456789abcdef.js",
            "javascript",
            "public, max-age=31536000, immutable",
        ),
        // a hashed-looking name that is not there is the app's fallback,
        // never cached for long
        (
            "/web-fedcba9876543210.js",
            "index.html",
            "text/html",
            "no-cache",
        ),
    ];
    for (path, file, content_type, cache) in files {
        for (accept, suffix, encoding) in choices {
            let what = format!("{path} with {accept:?}");
            let r = fetch(&c, &s, path, accept).await;
            assert_eq!(r.status(), StatusCode::OK, "{what}");
            assert_eq!(header(&r, CONTENT_ENCODING), encoding, "{what}");
            assert!(
                header(&r, CONTENT_TYPE).contains(content_type),
                "{what}: {:?}",
                header(&r, CONTENT_TYPE)
            );
            assert_eq!(header(&r, CACHE_CONTROL), cache, "{what}");
            assert_eq!(varies_on_encoding(&r), 1, "{what}: {:?}", r.headers());
            let body = r.bytes().await.unwrap();
            assert_eq!(
                String::from_utf8_lossy(&body),
                String::from_utf8_lossy(&bytes(&format!("{file}{suffix}"))),
                "{what}"
            );
        }
    }

    // a conditional request is answered 304 with the same caching
    let r = fetch(&c, &s, "/web-0123456789abcdef_bg.wasm", Some("br")).await;
    let modified = header(&r, LAST_MODIFIED).to_owned();
    assert!(!modified.is_empty());
    let r = c
        .get(s.url("/web-0123456789abcdef_bg.wasm"))
        .header(ACCEPT_ENCODING, "br")
        .header(IF_MODIFIED_SINCE, &modified)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(
        header(&r, CACHE_CONTROL),
        "public, max-age=31536000, immutable"
    );

    // a file without variants is still compressed, once, by the layer
    let r = fetch(&c, &s, "/plain.txt", Some("gzip")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, CONTENT_ENCODING), "gzip");
    assert_eq!(varies_on_encoding(&r), 1, "{:?}", r.headers());
    assert_ne!(r.bytes().await.unwrap(), bytes("plain.txt"));
    let r = fetch(&c, &s, "/plain.txt", None).await;
    assert_eq!(header(&r, CONTENT_ENCODING), "");
    assert_eq!(r.bytes().await.unwrap(), bytes("plain.txt"));

    // the API's JSON is still compressed by the layer, and its paths never
    // fall back to the web app, precompressed or not
    let r = fetch(&c, &s, "/api/openapi.json", Some("gzip")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, CONTENT_ENCODING), "gzip");
    for path in [
        "/api/app.js",
        "/api/rooms/x/nope",
        "/healthz/",
        "/metrics/x",
    ] {
        let r = fetch(&c, &s, path, None).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
        assert_eq!(header(&r, CACHE_CONTROL), "", "{path}");
        assert_eq!(
            code(&r.json::<Value>().await.unwrap_or(Value::Null)),
            "not_found",
            "{path}"
        );
    }
    s.stop().await;
}

#[tokio::test]
async fn precompressed_variants_that_lead_out_of_the_static_dir_are_not_served() {
    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("dist");
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(web.join("sub")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    write_with_variants(&web, "index.html");
    std::fs::write(outside.join("secret"), "TOP SECRET").unwrap();
    // a file inside whose variant leads out
    std::fs::write(web.join("page.txt"), bytes("page.txt")).unwrap();
    std::os::unix::fs::symlink(outside.join("secret"), web.join("page.txt.br")).unwrap();
    // a variant that leads out, of a file that is not there
    std::os::unix::fs::symlink(outside.join("secret"), web.join("ghost.txt.gz")).unwrap();
    // a directory's index.html variant that leads out
    std::fs::write(web.join("sub/index.html"), bytes("sub/index.html")).unwrap();
    std::os::unix::fs::symlink(outside.join("secret"), web.join("sub/index.html.gz")).unwrap();
    let mut config = TestServer::config(&dir.path().join("data"), 0);
    config.static_dir = web;
    let s = TestServer::start_with(config, None).await;
    let c = Client::new();
    for (path, accept) in [
        ("/page.txt", "br"),
        ("/page.txt", "identity"),
        ("/ghost.txt", "gzip"),
        ("/ghost.txt", "identity"),
        ("/sub/", "gzip"),
    ] {
        let r = fetch(&c, &s, path, Some(accept)).await;
        let status = r.status();
        let text = r.text().await.unwrap();
        assert!(
            !text.contains("TOP SECRET"),
            "{path} ({accept}) served a file outside"
        );
        assert_eq!(status, StatusCode::NOT_FOUND, "{path} ({accept}): {text}");
    }
    // the rest of the app is served as before
    let r = fetch(&c, &s, "/rooms/x", Some("br")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.unwrap(), bytes("index.html.br"));
    s.stop().await;
}
