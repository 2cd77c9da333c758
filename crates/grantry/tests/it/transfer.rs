//! Export, import, the JSON Schemas and the OpenAPI document.

use serde_json::{json, Value};

use crate::harness::{slack_provider, Server};

async fn seed(s: &Server) {
    let mut custom = slack_provider();
    custom["namespace"] = json!("Custom");
    custom["refresh_token_strategy"] = json!("custom");
    custom["refresh_request"] =
        json!({"url": "https://custom.example/refresh", "headers": [{"key": "X-A", "value": "{{refresh_token}}"}]});
    s.create("providers", custom).await;
    s.create(
        "providers",
        json!({"type": "oauth1", "namespace": "Q", "name": "Books", "authorization_endpoint": "https://q/a",
        "token_endpoint": "https://q/t", "request_token_endpoint": "https://q/r", "signature_method": "HMAC-SHA256"}),
    )
    .await;
    s.create("clients", json!({"type": "remote_oauth", "provider": slack_provider(), "name": "main", "identifier": "id-x", "secret": "sec-x",
        "request_token_headers": [{"key": "X-H", "value": "1", "description": "d"}], "template_parameters": [{"key": "shop", "value": "acme"}]})).await;
    s.create("scopes", json!({"provider": {"namespace": "Slack", "name": "Slack"}, "name": "chat:write", "description": "post messages"})).await;
    s.create("authorizations", json!({"type": "oauth2", "namespace": "Acme", "name": "ws",
        "client": {"provider": {"namespace": "Slack", "name": "Slack"}, "name": "main"}, "scopes": ["chat:write", "{{scope}}"],
        "parameters": [{"key": "team", "value": "T1"}], "metadata": {"a": [1, 2]}})).await;
    s.create("authorizations", json!({"type": "api_key", "name": "key", "key_name": "X-Key", "key_value": "kv-1"}))
        .await;
    s.create("authorizations", json!({"type": "generic", "name": "cb", "client": {"type": "generic", "provider": {"namespace": "Q", "name": "Books"}, "name": "gen"},
        "capture": ["realmId"]})).await;
}

const KINDS: [&str; 4] = ["providers", "scopes", "clients", "authorizations"];

async fn export_all(s: &Server) -> Vec<Value> {
    let mut out = Vec::new();
    for kind in KINDS {
        let r = s.post(&format!("/api/v1/{kind}/export"), json!({})).await;
        assert_eq!(r.status, 200, "{}", r.text);
        out.push(r.body);
    }
    out
}

#[tokio::test]
async fn an_export_imported_into_an_empty_instance_recreates_the_records() {
    let a = Server::start().await;
    seed(&a).await;
    let exported = export_all(&a).await;

    // Natural-key references, no ids, no secrets, no timestamps.
    let clients = &exported[2];
    assert_eq!(clients[0]["provider"], json!({"namespace": "Slack", "name": "Slack"}));
    let text = serde_json::to_string(&exported).unwrap();
    for absent in ["\"id\"", "created_at", "sec-x", "id-x", "kv-1", "\"secrets\""] {
        assert!(!text.contains(absent), "{absent} in export: {text}");
    }
    assert_eq!(exported[3][0]["scopes"], json!(["chat:write", "{{scope}}"]));
    assert_eq!(exported[3][0]["client"], json!({"provider": {"namespace": "Slack", "name": "Slack"}, "name": "main"}));

    let b = Server::start().await;
    for (kind, records) in KINDS.iter().zip(&exported) {
        let r = b.post(&format!("/api/v1/{kind}/import"), records.clone()).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["failed"], json!([]), "{kind}: {}", r.text);
    }
    assert_eq!(export_all(&b).await, exported, "the same records, secrets aside");

    // Importing twice changes nothing.
    let before: Vec<Value> = {
        let mut v = Vec::new();
        for kind in KINDS {
            v.push(b.get(&format!("/api/v1/{kind}?per_page=100")).await.body);
        }
        v
    };
    for (kind, records) in KINDS.iter().zip(&exported) {
        let r = b.post(&format!("/api/v1/{kind}/import"), records.clone()).await;
        let n = records.as_array().unwrap().len() as u64;
        assert_eq!(r.body, json!({"created": 0, "updated": 0, "unchanged": n, "failed": []}), "{kind}");
    }
    for (i, kind) in KINDS.iter().enumerate() {
        assert_eq!(b.get(&format!("/api/v1/{kind}?per_page=100")).await.body, before[i], "{kind} changed");
    }
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn import_upserts_by_natural_key_and_reports_each_failure() {
    let s = Server::start().await;
    s.create("providers", slack_provider()).await;
    let r = s
        .post("/api/v1/providers/import", json!([
            {"type": "oauth2", "namespace": "Slack", "name": "Slack", "authorization_endpoint": "https://slack.com/oauth/v2/authorize",
             "token_endpoint": "https://slack.com/api/oauth.v2.access", "token_method": "GET"},
            {"type": "generic", "namespace": "New", "name": "One"},
            {"type": "oauth2", "namespace": "Broken", "name": "Broken"},
            "not an object",
            {"type": "teleport", "namespace": "X", "name": "Y"},
            {"type": "generic", "namespace": "Slack", "name": "Slack"}
        ]))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!((r.body["created"].as_u64(), r.body["updated"].as_u64()), (Some(1), Some(1)));
    let failed = r.body["failed"].as_array().unwrap();
    let indexes: Vec<u64> = failed.iter().map(|f| f["index"].as_u64().unwrap()).collect();
    assert_eq!(indexes, [2, 3, 4, 5]);
    assert_eq!(failed[0]["error"]["code"], "validation_failed");
    assert_eq!(failed[0]["error"]["fields"]["token_endpoint"], json!(["must not be blank"]));
    assert_eq!(failed[1]["error"]["code"], "bad_request");
    assert!(failed[2]["error"]["message"].as_str().unwrap().contains("unknown provider type `teleport`"));
    assert!(failed[3]["error"]["fields"]["type"][0].as_str().unwrap().contains("types cannot be changed"));
    let slack = s.get("/api/v1/providers?namespace=Slack").await;
    assert_eq!(slack.body["items"][0]["token_method"], "GET");
    assert_eq!(s.count("providers").await, 2);

    let r = s.post("/api/v1/providers/import", json!({"not": "a list"})).await;
    assert_eq!((r.status, r.code()), (400, "bad_request"));
    // Export by ids and by filter.
    let id = slack.body["items"][0]["id"].clone();
    let r = s.post("/api/v1/providers/export", json!({"ids": [id]})).await;
    assert_eq!(r.body.as_array().unwrap().len(), 1);
    let r = s.post("/api/v1/providers/export", json!({"filter": {"namespace": "New"}})).await;
    assert_eq!(r.body[0]["name"], "One");
    s.stop().await;
}

#[tokio::test]
async fn each_kind_describes_itself_as_json_schema_and_the_api_as_openapi() {
    let s = Server::start().await;
    let schema = s.get("/api/v1/clients/schema").await;
    assert_eq!(schema.status, 200);
    let b = &schema.body;
    assert_eq!(b["title"], "Authorization Client");
    assert_eq!(b["properties"]["type"]["enum"], json!(["remote_oauth", "generic"]));
    assert_eq!(b["properties"]["secret"]["writeOnly"], true);
    assert_eq!(b["x-secret-fields"], json!(["identifier", "secret"]));
    assert_eq!(b["properties"]["provider"]["x-reference"], "providers");
    assert_eq!(b["properties"]["request_token_headers"]["x-types"], json!(["remote_oauth"]));
    assert!(b["required"].as_array().unwrap().contains(&json!("name")));
    let providers = s.get("/api/v1/providers/schema").await.body;
    assert_eq!(providers["properties"]["token_method"]["enum"], json!(["POST", "GET"]));
    assert_eq!(providers["properties"]["token_method"]["default"], "POST");
    let then = &providers["allOf"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["if"]["properties"]["type"]["const"] == "oauth1")
        .unwrap()["then"];
    assert!(then["required"].as_array().unwrap().contains(&json!("request_token_endpoint")));

    // OpenAPI needs no token and lists every route of every kind.
    let doc = s.request(reqwest::Method::GET, "/api/v1/openapi.json", None, None).await;
    assert_eq!(doc.status, 200);
    assert_eq!(doc.body["openapi"], "3.1.0");
    for kind in KINDS {
        for (method, path) in grantry_routes() {
            let path = path.replace("{kind}", kind);
            assert!(doc.body["paths"][&path][method].is_object(), "{method} {path} missing from OpenAPI");
        }
        // Every documented route answers (not 404/405) on the real server.
        let r = s.get(&format!("/api/v1/{kind}/schema")).await;
        assert_eq!(r.status, 200);
    }
    assert!(doc.body["components"]["schemas"]["AuthorizationClient"]["properties"]["secret"].is_object());
    for (method, path) in [
        ("post", "/api/v1/authorizations/{id}/authorize"),
        ("get", "/api/v1/authorizations/{id}/token"),
        ("get", "/api/v1/authorizations/by-key/{namespace}/{name}/token"),
        ("post", "/api/v1/authorizations/{id}/refresh"),
        ("post", "/api/v1/authorizations/{id}/cancel"),
        ("get", "/api/v1/notifications"),
        ("post", "/api/v1/authorizations/{id}/sign"),
        ("get", "/api/v1/connections/{id}/proxy/{path}"),
        ("get", "/api/v1/connections/{id}"),
        ("get", "/api/v1/api-tokens"),
        ("post", "/api/v1/api-tokens"),
        ("delete", "/api/v1/api-tokens/{id}"),
        ("get", "/oauth/callback"),
    ] {
        assert!(doc.body["paths"][path][method].is_object(), "{method} {path} missing from OpenAPI");
    }
    s.stop().await;
}

/// The routes of the API contract, as the issue lists them.
fn grantry_routes() -> Vec<(&'static str, &'static str)> {
    vec![
        ("get", "/api/v1/{kind}"),
        ("post", "/api/v1/{kind}"),
        ("get", "/api/v1/{kind}/{id}"),
        ("patch", "/api/v1/{kind}/{id}"),
        ("delete", "/api/v1/{kind}/{id}"),
        ("post", "/api/v1/{kind}/delete"),
        ("post", "/api/v1/{kind}/export"),
        ("post", "/api/v1/{kind}/import"),
        ("get", "/api/v1/{kind}/schema"),
    ]
}
