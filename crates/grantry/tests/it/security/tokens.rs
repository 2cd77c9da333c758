//! API tokens: listed without values, revoked at once (ending their UI sessions), expiring,
//! managed offline by `grantry token`, and a short bootstrap token is refused.

use std::path::Path;
use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::harness::{command, Server, TOKEN};

use super::{header, id, no_redirects, sign_in, ui_get};

#[tokio::test]
async fn a_bootstrap_token_shorter_than_32_characters_is_refused() {
    let thirty_one = "x".repeat(31);
    for short in ["a", thirty_one.as_str()] {
        let dir = tempfile::tempdir().unwrap();
        let refused = Server::start_in(dir.path(), &[("GRANTRY_BOOTSTRAP_TOKEN", short)])
            .await
            .err()
            .expect("a short bootstrap token must be refused");
        assert!(!refused.status.success());
        assert!(refused.stderr.contains("at least 32"), "{}", refused.stderr);
    }
    let exact = "y".repeat(32);
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_in(dir.path(), &[("GRANTRY_BOOTSTRAP_TOKEN", exact.as_str())])
        .await
        .unwrap_or_else(|r| panic!("32 characters are enough: {}", r.stderr));
    assert_eq!(s.request(Method::GET, "/api/v1/providers", None, Some(exact.as_str())).await.status, 200);
    s.stop().await;
}

#[tokio::test]
async fn api_tokens_are_listed_without_values_revoked_at_once_and_expire() {
    let s = Server::start().await;
    let r = s
        .request_with(
            Method::POST,
            "/api/v1/api-tokens",
            Some(json!({"name": "ci", "role": "editor"}).to_string().into_bytes()),
            Some(TOKEN),
            &[],
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert!(header(&r, "cache-control").contains("no-store"), "{:?}", r.headers);
    assert_eq!((r.body["name"].as_str(), r.body["role"].as_str()), (Some("ci"), Some("editor")));
    assert!(r.body["created_at"].is_string() && r.body["expires_at"].is_null(), "{}", r.text);
    let token = r.body["token"].as_str().unwrap().to_owned();
    let token_id = id(&r.body);
    assert_eq!(s.request(Method::GET, "/api/v1/providers", None, Some(token.as_str())).await.status, 200);

    let list = s.get("/api/v1/api-tokens").await;
    assert_eq!(list.status, 200, "{}", list.text);
    let items = list.body["items"].as_array().unwrap();
    assert!(
        items.iter().any(|i| i["id"] == token_id.as_str() && i["name"] == "ci" && i["role"] == "editor"),
        "{}",
        list.text
    );
    assert!(items.iter().any(|i| i["role"] == "admin"), "the bootstrap token is listed: {}", list.text);
    for item in items {
        for key in item.as_object().unwrap().keys() {
            assert!(["id", "name", "role", "created_at", "expires_at"].contains(&key.as_str()), "`{key}` in {item}");
        }
    }
    assert!(!list.text.contains(&token) && !list.text.contains(TOKEN));

    // Revoked: refused at once, although it was just used.
    let r = s.delete(&format!("/api/v1/api-tokens/{token_id}")).await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r = s.request(Method::GET, "/api/v1/providers", None, Some(token.as_str())).await;
    assert_eq!((r.status, r.code()), (401, "unauthorized"));
    let r = s.delete(&format!("/api/v1/api-tokens/{token_id}")).await;
    assert_eq!((r.status, r.code()), (404, "not_found"));
    assert!(!s.get("/api/v1/api-tokens").await.text.contains(&token_id));

    // Expired.
    let past = s
        .post("/api/v1/api-tokens", json!({"name": "old", "role": "viewer", "expires_at": "2000-01-01T00:00:00Z"}))
        .await;
    if past.status == 201 {
        let old = past.body["token"].as_str().unwrap();
        assert_eq!(s.request(Method::GET, "/api/v1/providers", None, Some(old)).await.status, 401);
    } else {
        assert_eq!((past.status, past.code()), (422, "validation_failed"), "{}", past.text);
    }
    let soon = (time::OffsetDateTime::now_utc() + time::Duration::milliseconds(1200))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let r = s.post("/api/v1/api-tokens", json!({"name": "brief", "role": "viewer", "expires_at": soon})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert!(r.body["expires_at"].is_string());
    let brief = r.body["token"].as_str().unwrap().to_owned();
    assert_eq!(s.request(Method::GET, "/api/v1/providers", None, Some(brief.as_str())).await.status, 200);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let r = s.request(Method::GET, "/api/v1/providers", None, Some(brief.as_str())).await;
    assert_eq!((r.status, r.code()), (401, "unauthorized"), "an expired token");
}

#[tokio::test]
async fn revoking_a_token_ends_the_ui_sessions_signed_in_with_it() {
    let s = Server::start().await;
    let r = s.post("/api/v1/api-tokens", json!({"name": "person", "role": "admin"})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let token = r.body["token"].as_str().unwrap().to_owned();
    let (_, session, _) = sign_in(&s, &token).await;
    let session = session.expect("an admin token signs in");
    assert_eq!(ui_get(&s, &session, "/ui/clients").await.0, 200);
    assert_eq!(s.delete(&format!("/api/v1/api-tokens/{}", id(&r.body))).await.status, 204);
    let r = no_redirects().get(format!("{}/ui/clients", s.base)).header("Cookie", &session).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(r.headers()["location"].to_str().unwrap(), "/ui/login");
}

/// `grantry token list` on a data folder.
async fn token_list(dir: &Path) -> String {
    let out = command(dir).args(["token", "list"]).output().await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn grantry_token_lists_and_revokes_offline() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_in(dir.path(), &[]).await.unwrap_or_else(|r| panic!("{}", r.stderr));
    let out = command(dir.path())
        .args(["token", "create", "--name", "cli-viewer", "--role", "viewer"])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();

    let words = |line: &str| -> Vec<String> {
        line.split(|c: char| c.is_whitespace() || c == ',' || c == '|')
            .filter(|w| !w.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let listing = token_list(dir.path()).await;
    assert!(!listing.contains(&token) && !listing.contains(TOKEN), "{listing}");
    let line =
        listing.lines().find(|l| words(l).iter().any(|w| w == "cli-viewer")).unwrap_or_else(|| panic!("{listing}"));
    assert!(words(line).iter().any(|w| w == "viewer"), "{line}");
    assert!(listing.lines().any(|l| words(l).iter().any(|w| w == "admin")), "the bootstrap token: {listing}");
    let token_id = words(line)[0].clone();
    let api = s.get("/api/v1/api-tokens").await;
    assert!(
        api.body["items"].as_array().unwrap().iter().any(|i| i["id"] == token_id.as_str()),
        "{token_id}: {}",
        api.text
    );

    // Used once, so the server remembers it; the revocation from the shell
    // (another process) holds in the server within its 1 s cache.
    assert_eq!(s.request(Method::GET, "/api/v1/providers", None, Some(token.as_str())).await.status, 200);
    let out = command(dir.path()).args(["token", "revoke", token_id.as_str()]).output().await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let revoked = std::time::Instant::now();
    while s.request(Method::GET, "/api/v1/providers", None, Some(token.as_str())).await.status != 401 {
        assert!(revoked.elapsed() < Duration::from_millis(1500), "a revoked token still works after 1.5 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!token_list(dir.path()).await.contains("cli-viewer"));
    let out = command(dir.path()).args(["token", "revoke", "no-such-token"]).output().await.unwrap();
    assert!(!out.status.success());
}
