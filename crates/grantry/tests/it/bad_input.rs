//! Malformed, wrongly typed, oversized and misdirected requests get the
//! documented errors, change nothing, and the server keeps serving.

use reqwest::Method;
use serde_json::json;

use crate::harness::{slack_provider, Server, TOKEN};

#[tokio::test]
async fn bad_requests_get_the_documented_errors_and_change_nothing() {
    let s = Server::start().await;
    let p = s.create("providers", slack_provider()).await;
    let id = p["id"].as_str().unwrap().to_owned();
    let snapshot = s.post("/api/v1/providers/export", json!({})).await.body;

    let raw = |method: Method, path: &str, body: &[u8]| {
        let path = path.to_owned();
        let body = body.to_vec();
        let s = &s;
        async move { s.request(method, &path, Some(body), Some(TOKEN)).await }
    };

    // Malformed JSON: 400 with where it broke.
    for (method, path) in [
        (Method::POST, "/api/v1/providers".to_owned()),
        (Method::PATCH, format!("/api/v1/providers/{id}")),
        (Method::POST, "/api/v1/providers/import".to_owned()),
        (Method::POST, "/api/v1/providers/delete".to_owned()),
    ] {
        let r = raw(method.clone(), &path, b"{\"type\": \"oauth2\", ").await;
        assert_eq!((r.status, r.code()), (400, "bad_request"), "{method} {path}");
        assert!(r.body["error"]["message"].as_str().unwrap().contains("not valid JSON"), "{}", r.text);
    }
    let r = raw(Method::POST, "/api/v1/providers", b"").await;
    assert_eq!((r.status, r.code()), (400, "bad_request"));
    assert!(r.body["error"]["message"].as_str().unwrap().contains("empty"));

    // Wrong JSON types.
    let r = s.post("/api/v1/providers", json!(["a", "list"])).await;
    assert_eq!((r.status, r.code()), (400, "bad_request"));
    assert!(r.body["error"]["message"].as_str().unwrap().contains("must be a JSON object"));
    let r = s.post("/api/v1/providers", json!({"type": 7})).await;
    assert_eq!((r.status, r.code()), (400, "bad_request"));
    let r = s.post("/api/v1/providers", json!({"type": "saml", "namespace": "a", "name": "b"})).await;
    assert_eq!((r.status, r.code()), (400, "bad_request"));
    assert!(r.body["error"]["message"].as_str().unwrap().contains("oauth2, oauth1, generic"));
    let r = s.post("/api/v1/providers", json!({"namespace": "a", "name": "b"})).await;
    assert_eq!((r.status, r.code()), (400, "bad_request"));
    assert!(r.body["error"]["message"].as_str().unwrap().contains("`type` is required"));
    let r = s
        .post(
            "/api/v1/providers",
            json!({"type": "oauth2", "namespace": ["x"], "name": {"a": 1}, "token_method": 1, "pkce": true}),
        )
        .await;
    assert_eq!((r.status, r.code()), (422, "validation_failed"));
    assert_eq!(r.field_errors("namespace"), ["must be a string, not a list"]);
    assert_eq!(r.field_errors("name"), ["must be a string, not an object"]);
    assert_eq!(r.field_errors("token_method"), ["must be a string, not a number"]);
    assert_eq!(r.field_errors("pkce"), ["must be a string, not a boolean"]);
    let r = s.patch(&format!("/api/v1/providers/{id}"), json!({"scope_separator": 5})).await;
    assert_eq!(r.status, 422);
    let r = s
        .post(
            "/api/v1/clients",
            json!({"type": "remote_oauth", "provider": 12, "name": "x", "template_parameters": {"a": "b"}}),
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(r.field_errors("provider")[0].starts_with("must be an id, a natural key object"));
    assert!(r.field_errors("template_parameters")[0].starts_with("must be a list"));
    let r = s
        .post("/api/v1/authorizations", json!({"type": "oauth2", "name": "x", "metadata": "text", "scopes": "all"}))
        .await;
    assert_eq!(r.field_errors("metadata"), ["must be a JSON object"]);

    // Oversized bodies: 413, whatever the endpoint.
    let big =
        format!("{{\"type\": \"generic\", \"namespace\": \"big\", \"name\": \"{}\"}}", "x".repeat(1024 * 1024 + 10));
    for path in ["/api/v1/providers", "/api/v1/providers/import"] {
        let r = raw(Method::POST, path, big.as_bytes()).await;
        assert_eq!((r.status, r.code()), (413, "payload_too_large"), "{path}: {}", &r.text[..r.text.len().min(200)]);
    }
    // Long fields within the cap are validation errors, not crashes.
    let r = s.post("/api/v1/providers", json!({"type": "generic", "namespace": "n", "name": "x".repeat(5000)})).await;
    assert_eq!(r.field_errors("name"), ["must be at most 2048 bytes"]);

    // Unknown routes, kinds and methods keep the error shape.
    let r = s.get("/api/v1/providers/unknown-id").await;
    assert_eq!((r.status, r.code()), (404, "not_found"));
    assert!(r.body["error"]["message"].as_str().unwrap().contains("unknown-id"));
    let r = s.get("/nothing/here").await;
    assert_eq!((r.status, r.code()), (404, "not_found"));
    let r = s.request(Method::PUT, &format!("/api/v1/providers/{id}"), Some(b"{}".to_vec()), Some(TOKEN)).await;
    assert_eq!((r.status, r.code()), (405, "method_not_allowed"));

    // Nothing changed, and the server still serves.
    assert_eq!(s.post("/api/v1/providers/export", json!({})).await.body, snapshot);
    assert_eq!(s.count("providers").await, 1);
    let health = s.request(Method::GET, "/healthz", None, None).await;
    assert_eq!(health.status, 200);
    s.stop().await;
}
