//! The admin UI in a real browser: Debian's chromium driven by playwright-core
//! (tests/fixtures/browser/seed_story.mjs) against the real server and the real
//! OAuth provider. Screenshots land in target/ui-screenshots, or in
//! docs/screenshots with UPDATE_SCREENSHOTS=1 (that is where the docs' come from).

use serde_json::json;

use crate::harness::{Server, TOKEN};
use crate::oidc::Oidc;

#[tokio::test]
async fn the_seed_documents_story_in_a_real_browser() {
    let s = Server::start().await;
    let oidc = Oidc::start(&s).await;
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let shots = if std::env::var("UPDATE_SCREENSHOTS").is_ok_and(|v| v == "1") {
        format!("{root}/docs/screenshots")
    } else {
        format!("{root}/target/ui-screenshots")
    };
    let out = tokio::process::Command::new("node")
        .arg("seed_story.mjs")
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/browser"))
        .env("GRANTRY_URL", &s.base)
        .env("GRANTRY_TOKEN", TOKEN)
        .env("ISSUER", &oidc.issuer)
        .env("SCREENSHOTS", &shots)
        .output()
        .await
        .expect("node must be installed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the browser story failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("- done"), "{stdout}");

    // What the browser did is in the records.
    let auth = &s.get("/api/v1/authorizations?name=alice").await.body["items"][0];
    assert_eq!(auth["status"], "authorized");
    assert_eq!(auth["scopes"][0]["name"], "{{scope}}");
    assert_eq!(auth["granted_scope"], "api:read", "the {{scope}} scope took the template parameter");
    assert_eq!(auth["client"]["name"], "web2");
    let providers = s.get("/api/v1/providers?sort=name").await.body;
    assert_eq!(providers["total"], 2, "both providers made in nested forms exist");
    let clients = s.get("/api/v1/clients").await.body;
    assert_eq!(clients["total"], 2, "web-app (the spare one was deleted) and web2");
    let web = s.get("/api/v1/clients?name=web-app").await.body;
    assert_eq!(
        web["items"][0]["request_token_parameters"],
        json!([{"key": "audience", "value": "grantry", "description": ""}])
    );
    // No secret reached the log.
    assert!(!s.log_text().contains("basic-secret"));
}
