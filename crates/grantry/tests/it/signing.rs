//! Applying an authorization to a request (docs/concepts.md §7): `POST …/sign` for every
//! type, without the integration knowing the type.

use serde_json::json;

use crate::fake_provider::FakeProvider;
use crate::harness::{browser, visit, Server};

#[tokio::test]
async fn sign_gives_the_header_or_query_each_type_needs() {
    let s = Server::start().await;
    let basic = s
        .create(
            "authorizations",
            json!({"type": "basic", "name": "b", "username": "api-user", "password": "api-pass-%&:ü"}),
        )
        .await;
    let header_key = s
        .create(
            "authorizations",
            json!({"type": "api_key", "name": "h", "key_name": "X-Api-Key", "key_value": "key-123"}),
        )
        .await;
    let query_key = s
        .create("authorizations", json!({"type": "api_key", "name": "q", "key_name": "api_key", "key_value": "key-456", "placement": "query"}))
        .await;
    let request = json!({"method": "GET", "url": "https://api.example/v1/items?limit=10"});
    let sign = |auth: &serde_json::Value| format!("/api/v1/authorizations/{}/sign", auth["id"].as_str().unwrap());

    let r = s.post(&sign(&basic), request.clone()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    // base64("api-user:api-pass-%&:ü")
    assert_eq!(r.body, json!({"headers": {"Authorization": "Basic YXBpLXVzZXI6YXBpLXBhc3MtJSY6w7w="}, "query": {}}));
    let r = s.post(&sign(&header_key), request.clone()).await;
    assert_eq!(r.body, json!({"headers": {"X-Api-Key": "key-123"}, "query": {}}));
    let r = s.post(&sign(&query_key), request.clone()).await;
    assert_eq!(r.body, json!({"headers": {}, "query": {"api_key": "key-456"}}));

    // An oauth2 authorization signs with its fresh token.
    let fake = FakeProvider::start().await;
    let client = s.create("clients", json!({"type": "remote_oauth", "name": "m", "provider": fake.provider("F", json!({})), "identifier": "i", "secret": "s"})).await;
    let oauth2 = s.create("authorizations", json!({"type": "oauth2", "name": "o", "client": client["id"]})).await;
    let r = s.post(&sign(&oauth2), request.clone()).await;
    assert_eq!((r.status, r.code()), (409, "not_authorized"));
    let url =
        s.post(&format!("/api/v1/authorizations/{}/authorize", oauth2["id"].as_str().unwrap()), json!({})).await.body
            ["authorize_url"]
            .as_str()
            .unwrap()
            .to_owned();
    visit(&browser(), &url).await;
    let r = s.post(&sign(&oauth2), request.clone()).await;
    assert_eq!(r.body, json!({"headers": {"Authorization": "Bearer access-1"}, "query": {}}));

    // An incomplete basic authorization cannot sign; bad requests are named.
    let half = s.create("authorizations", json!({"type": "basic", "name": "half", "username": "u"})).await;
    let r = s.post(&sign(&half), request.clone()).await;
    assert_eq!((r.status, r.code()), (409, "not_authorized"));
    let r =
        s.post(&sign(&basic), json!({"method": "G E T", "url": "ftp://x", "headers": {"a": 1}, "extra": true})).await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.field_errors("url"), Vec::<String>::new(), "field checks come first: {}", r.text);
    assert_eq!(r.field_errors("headers.a"), ["must be a string"]);
    let r = s.post(&sign(&basic), json!({"method": "G E T", "url": "ftp://x"})).await;
    assert_eq!(r.field_errors("url"), ["must be an absolute http:// or https:// URL"]);
    let r = s.post("/api/v1/authorizations/nope/sign", request).await;
    assert_eq!((r.status, r.code()), (404, "not_found"));
}
