//! The connection proxy: paths cannot leave the base path, and cookies, forwarding and
//! hop-by-hop headers are dropped both ways while answers are sandboxed.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::harness::{Server, TOKEN};

use super::{header, id, proxy_path, Echo};

/// A GET written byte for byte: HTTP clients resolve `..` and `%2e%2e`
/// segments before sending, an attacker's client does not.
async fn raw_get(s: &Server, target: &str) -> (u16, String) {
    let host = s.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(host.as_str()).await.unwrap();
    let request =
        format!("GET {target} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await.unwrap().unwrap();
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, text)
}

#[tokio::test]
async fn proxy_paths_with_dot_segments_cannot_leave_the_connections_base_path() {
    let echo = Echo::start().await;
    let s = Server::start().await;
    let connection = s.create("connections", json!({"name": "base", "url": format!("{}/api/base", echo.base)})).await;
    let prefix = format!("/api/v1/connections/{}/proxy", id(&connection));
    for escape in [
        "../admin",
        "%2e%2e/admin",
        ".%2e/admin",
        "%2E./admin",
        "%2e%2E/admin",
        "v1/../../admin",
        "v1/%2e%2e/%2e%2e/admin",
        "./admin",
        "v1/%2e/admin",
        "..",
    ] {
        let (status, text) = raw_get(&s, &format!("{prefix}/{escape}")).await;
        assert_eq!(status, 400, "{escape}: {text}");
        assert!(text.contains("bad_request"), "{escape}: {text}");
    }
    assert!(echo.seen().is_empty(), "nothing was forwarded: {:?}", echo.seen());
    // Dots inside a segment are fine.
    let (status, text) = raw_get(&s, &format!("{prefix}/v1/file.json?x=1")).await;
    assert_eq!(status, 200, "{text}");
    let seen = echo.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!((seen[0].method.as_str(), seen[0].path.as_str()), ("GET", "/api/base/v1/file.json"));
}

#[tokio::test]
async fn the_proxy_drops_cookies_forwarding_and_hop_by_hop_headers_and_sandboxes_answers() {
    let echo = Echo::start().await;
    let s = Server::start().await;
    let connection = s.create("connections", json!({"name": "echo", "url": format!("{}/api", echo.base)})).await;
    let r = s
        .request_with(
            Method::GET,
            &proxy_path(&connection, "page"),
            None,
            Some(TOKEN),
            &[
                ("Cookie", "grantry_session=caller-session-cookie; theme=dark"),
                ("X-Forwarded-For", "203.0.113.9"),
                ("X-Forwarded-Host", "evil.example"),
                ("X-Forwarded-Proto", "http"),
                ("Connection", "X-Drop-Me"),
                ("X-Drop-Me", "hop-by-hop-value"),
                ("X-Keep", "yes"),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let seen = echo.seen();
    assert_eq!(seen.len(), 1);
    let got = &seen[0];
    assert_eq!(got.path, "/api/page");
    assert_eq!(got.header("x-keep"), Some("yes"), "ordinary headers are forwarded: {:?}", got.headers);
    for name in ["cookie", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "x-drop-me", "authorization"] {
        assert!(got.header(name).is_none(), "{name} was forwarded: {:?}", got.headers);
    }
    assert!(!got.headers.iter().any(|(_, v)| v.contains("caller-session-cookie") || v.contains(TOKEN)));

    assert!(r.headers.get("set-cookie").is_none(), "the remote's cookie is dropped: {:?}", r.headers);
    assert!(header(&r, "cache-control").contains("no-store"), "{:?}", r.headers);
    assert_eq!(header(&r, "x-content-type-options"), "nosniff");
    assert!(header(&r, "content-security-policy").contains("sandbox"), "{:?}", r.headers);
    assert_eq!(header(&r, "x-remote"), "kept", "other remote headers come back");

    // A connection may not choose the Host.
    let r = s
        .post(
            "/api/v1/connections",
            json!({"name": "host", "url": format!("{}/api", echo.base), "headers": [{"key": "Host", "value": "evil.example"}]}),
        )
        .await;
    assert_eq!((r.status, r.code()), (422, "validation_failed"), "{}", r.text);
    assert!(!r.field_errors("headers[0].key").is_empty(), "{}", r.text);
}
