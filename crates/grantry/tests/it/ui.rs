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

#[tokio::test]
async fn the_ui_needs_a_session_checks_csrf_and_sends_a_content_security_policy() {
    let s = Server::start().await;
    let plain = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let r = plain.get(format!("{}/ui/clients", s.base)).send().await.unwrap();
    assert_eq!((r.status().as_u16(), r.headers()["location"].to_str().unwrap()), (303, "/ui/login"));
    let csp = r.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");

    let r = plain.post(format!("{}/ui/login", s.base)).form(&[("token", "wrong")]).send().await.unwrap();
    assert!(r.text().await.unwrap().contains("That API token is not valid."));
    let r = plain.post(format!("{}/ui/login", s.base)).form(&[("token", TOKEN)]).send().await.unwrap();
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    let session = cookie.split(';').next().unwrap().to_owned();

    // A state-changing request without the session's CSRF token changes nothing.
    let r = plain
        .post(format!("{}/ui/providers", s.base))
        .header("Cookie", &session)
        .form(&[("type", "generic"), ("namespace", "N"), ("name", "P"), ("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(s.count("providers").await, 0);

    // With the token from the page it works.
    let page =
        plain.get(format!("{}/ui/providers/new?type=generic", s.base)).header("Cookie", &session).send().await.unwrap();
    let html = page.text().await.unwrap();
    let csrf = html.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let r = plain
        .post(format!("{}/ui/providers", s.base))
        .header("Cookie", &session)
        .form(&[("type", "generic"), ("namespace", "N"), ("name", "P"), ("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(s.count("providers").await, 1);

    // Every kind has its list and form, connections included.
    for kind in ["providers", "scopes", "clients", "authorizations", "connections", "notifications"] {
        let r = plain.get(format!("{}/ui/{kind}", s.base)).header("Cookie", &session).send().await.unwrap();
        assert_eq!(r.status(), 200, "{kind}");
    }
    let form = plain
        .get(format!("{}/ui/connections/new", s.base))
        .header("Cookie", &session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(form.contains("name=\"authorization_handler\"") && form.contains("data-kind=\"authorizations\""));
    let js = plain.get(format!("{}/ui/assets/htmx.min.js", s.base)).send().await.unwrap();
    assert_eq!(js.headers()["content-type"], "text/javascript");

    // Signing out ends the session.
    plain
        .post(format!("{}/ui/logout", s.base))
        .header("Cookie", &session)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    let r = plain.get(format!("{}/ui/clients", s.base)).header("Cookie", &session).send().await.unwrap();
    assert_eq!(r.status(), 303);
}
