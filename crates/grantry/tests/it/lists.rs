//! The generic menu on lists (docs/concepts.md §2): filters, sorting, paging and deletes.

use serde_json::{json, Value};

use crate::harness::{slack_provider, Server};

fn names(page: &Value) -> Vec<String> {
    page["items"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap().to_owned()).collect()
}

async fn seed(s: &Server) {
    for (ns, name, kind) in [
        ("Slack", "Slack", "oauth2"),
        ("Slack", "Slack bot", "oauth2"),
        ("Google", "Gmail", "oauth2"),
        ("Google", "Drive robot", "oauth1"),
        ("Misc", "Webhook", "generic"),
    ] {
        let mut p = json!({"type": kind, "namespace": ns, "name": name});
        if kind != "generic" {
            p["authorization_endpoint"] = json!("https://auth.example/authorize");
            p["token_endpoint"] = json!("https://auth.example/token");
        }
        if kind == "oauth1" {
            p["request_token_endpoint"] = json!("https://auth.example/request");
        }
        s.create("providers", p).await;
    }
}

#[tokio::test]
async fn lists_filter_sort_and_page() {
    let s = Server::start().await;
    seed(&s).await;

    // The documented query.
    let r = s.get("/api/v1/providers?page=1&per_page=25&sort=-updated_at&namespace=Slack&name[contains]=bot").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(names(&r.body), ["Slack bot"]);
    assert_eq!(
        (r.body["total"].as_u64(), r.body["page"].as_u64(), r.body["per_page"].as_u64()),
        (Some(1), Some(1), Some(25))
    );

    // Every operator.
    let cases: &[(&str, &[&str])] = &[
        ("namespace[eq]=Google&sort=name", &["Drive robot", "Gmail"]),
        ("namespace[ne]=Google&sort=name", &["Slack", "Slack bot", "Webhook"]),
        ("name[contains]=BOT&sort=name", &["Drive robot", "Slack bot"]),
        ("name[starts_with]=Sl&sort=name", &["Slack", "Slack bot"]),
        ("name[ends_with]=hook", &["Webhook"]),
        ("name[gt]=Slack&sort=name", &["Slack bot", "Webhook"]),
        ("name[gte]=Slack&sort=name", &["Slack", "Slack bot", "Webhook"]),
        ("name[lt]=Gmail", &["Drive robot"]),
        ("name[lte]=Gmail&sort=name", &["Drive robot", "Gmail"]),
        ("namespace[in]=Misc,Google&sort=-name", &["Webhook", "Gmail", "Drive robot"]),
        ("token_endpoint[exists]=false", &["Webhook"]),
        ("type=oauth1", &["Drive robot"]),
        ("signature_method=HMAC-SHA1", &["Drive robot"]),
        ("name[contains]=%25", &[]),
    ];
    for (query, expected) in cases {
        let r = s.get(&format!("/api/v1/providers?{query}")).await;
        assert_eq!(r.status, 200, "{query}: {}", r.text);
        assert_eq!(names(&r.body), *expected, "{query}");
    }

    // Paging keeps the total and a stable order.
    let p1 = s.get("/api/v1/providers?per_page=2&page=1&sort=name").await;
    let p3 = s.get("/api/v1/providers?per_page=2&page=3&sort=name").await;
    assert_eq!(names(&p1.body), ["Drive robot", "Gmail"]);
    assert_eq!(names(&p3.body), ["Webhook"]);
    assert_eq!(p3.body["total"], 5);
    let beyond = s.get("/api/v1/providers?per_page=2&page=9").await;
    assert_eq!(names(&beyond.body), Vec::<String>::new());

    // Reference fields by natural key, nested, and secret presence.
    s.create("clients", json!({"type": "remote_oauth", "provider": {"namespace": "Slack", "name": "Slack"}, "name": "main", "secret": "sec-1"})).await;
    s.create(
        "clients",
        json!({"type": "remote_oauth", "provider": {"namespace": "Google", "name": "Gmail"}, "name": "main"}),
    )
    .await;
    let r = s.get("/api/v1/clients?provider.namespace=Slack").await;
    assert_eq!(r.body["total"], 1);
    assert_eq!(r.body["items"][0]["label"], "Slack | Slack | main");
    let r = s.get("/api/v1/clients?secret[exists]=true").await;
    assert_eq!(r.body["total"], 1);
    s.create("authorizations", json!({"type": "oauth2", "name": "a", "client": {"provider": {"namespace": "Google", "name": "Gmail"}, "name": "main"}})).await;
    let r = s.get("/api/v1/authorizations?client.provider.name=Gmail&authorized=false&status=unauthorized").await;
    assert_eq!(r.body["total"], 1, "{}", r.text);

    // Bad queries are 400 with what is allowed.
    for (query, needle) in [
        ("per_page=0", "1 to 100"),
        ("per_page=101", "1 to 100"),
        ("page=x", "whole number"),
        ("colour=red", "cannot be filtered by `colour`"),
        ("name[like]=x", "unknown filter operator"),
        ("sort=colour", "cannot be sorted by `colour`"),
        ("provider.colour=x", "cannot be filtered"),
    ] {
        let r = s.get(&format!("/api/v1/providers?{query}")).await;
        assert_eq!((r.status, r.code()), (400, "bad_request"), "{query}: {}", r.text);
        assert!(r.body["error"]["message"].as_str().unwrap().contains(needle), "{query}: {}", r.text);
    }
    let r = s.get("/api/v1/widgets").await;
    assert_eq!((r.status, r.code()), (404, "not_found"));
    s.stop().await;
}

#[tokio::test]
async fn deletes_by_id_by_ids_and_by_filter() {
    let s = Server::start().await;
    seed(&s).await;
    let all = s.get("/api/v1/providers?sort=name").await.body;
    let id_of = |name: &str| {
        all["items"].as_array().unwrap().iter().find(|i| i["name"] == name).unwrap()["id"].as_str().unwrap().to_owned()
    };

    // One by id, with its {{scope}} scope.
    let scopes_before = s.count("scopes").await;
    let r = s.delete(&format!("/api/v1/providers/{}", id_of("Gmail"))).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(s.count("scopes").await, scopes_before - 1, "a provider's scopes go with it");
    let r = s.delete(&format!("/api/v1/providers/{}", id_of("Gmail"))).await;
    assert_eq!((r.status, r.code()), (404, "not_found"));

    // By ids.
    let r = s
        .post("/api/v1/providers/delete", json!({"ids": [id_of("Webhook"), id_of("Drive robot"), "unknown-id"]}))
        .await;
    assert_eq!(r.body, json!({"deleted": 2}));
    // By filter.
    let r =
        s.post("/api/v1/providers/delete", json!({"filter": {"namespace": "Slack", "name[contains]": "bot"}})).await;
    assert_eq!(r.body, json!({"deleted": 1}));
    assert_eq!(names(&s.get("/api/v1/providers").await.body), ["Slack"]);

    // A bulk delete must say what it deletes.
    let r = s.post("/api/v1/providers/delete", json!({})).await;
    assert_eq!((r.status, r.code()), (400, "bad_request"));
    assert!(r.body["error"]["message"].as_str().unwrap().contains("\"filter\": {}"));
    let r = s.post("/api/v1/providers/delete", json!({"ids": "x"})).await;
    assert_eq!(r.status, 400);
    let r = s.post("/api/v1/providers/delete", json!({"filter": {"colour": "red"}})).await;
    assert_eq!(r.status, 400);
    assert_eq!(s.count("providers").await, 1);

    // The {{scope}} scope leaves only with its provider.
    let scope = s.get("/api/v1/scopes").await.body["items"][0].clone();
    let r = s.delete(&format!("/api/v1/scopes/{}", scope["id"].as_str().unwrap())).await;
    assert_eq!((r.status, r.code()), (409, "conflict"));
    let r = s.post("/api/v1/scopes/delete", json!({"filter": {}})).await;
    assert_eq!(r.body, json!({"deleted": 0}));
    let r = s.post("/api/v1/providers/delete", json!({"filter": {}})).await;
    assert_eq!(r.body, json!({"deleted": 1}));
    assert_eq!(s.count("scopes").await, 0);
    s.stop().await;
}

#[tokio::test]
async fn deleting_a_referenced_record_is_refused_and_names_the_referrers() {
    let s = Server::start().await;
    let client =
        s.create("clients", json!({"type": "remote_oauth", "provider": slack_provider(), "name": "main"})).await;
    let scope = s.create("scopes", json!({"provider": client["provider"]["id"], "name": "chat:write"})).await;
    let auth = s.create("authorizations", json!({"type": "oauth2", "namespace": "Acme", "name": "ws", "client": client["id"], "scopes": ["chat:write"]})).await;
    let provider_id = client["provider"]["id"].as_str().unwrap();

    let r = s.delete(&format!("/api/v1/providers/{provider_id}")).await;
    assert_eq!((r.status, r.code()), (409, "conflict"), "{}", r.text);
    let message = r.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("client Slack | Slack | main"), "{message}");
    assert_eq!(r.body["error"]["referrers"][0]["kind"], "clients");
    assert_eq!(r.body["error"]["referrers"][0]["id"], client["id"]);

    let r = s.delete(&format!("/api/v1/clients/{}", client["id"].as_str().unwrap())).await;
    assert_eq!(r.status, 409);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("authorization Acme | ws"));
    let r = s.delete(&format!("/api/v1/scopes/{}", scope["id"].as_str().unwrap())).await;
    assert_eq!(r.status, 409);
    let r = s.post("/api/v1/providers/delete", json!({"filter": {}})).await;
    assert_eq!(r.status, 409);

    // Nothing was removed.
    assert_eq!((s.count("providers").await, s.count("clients").await, s.count("scopes").await), (1, 1, 2));

    // Removing the referrers first lets the delete through.
    assert_eq!(s.delete(&format!("/api/v1/authorizations/{}", auth["id"].as_str().unwrap())).await.status, 204);
    assert_eq!(s.delete(&format!("/api/v1/clients/{}", client["id"].as_str().unwrap())).await.status, 204);
    assert_eq!(s.delete(&format!("/api/v1/providers/{provider_id}")).await.status, 204);
    assert_eq!(s.count("scopes").await, 0);
    s.stop().await;
}

/// Many deletes and changes at once all succeed: each write waits for
/// SQLite's write lock instead of failing with `database is locked` (a 500).
#[tokio::test]
async fn concurrent_deletes_and_changes_all_succeed() {
    let s = Server::start().await;
    let mut ids = Vec::new();
    for n in 0..40 {
        let mut p = slack_provider();
        p["name"] = json!(format!("p{n}"));
        ids.push(s.create("providers", p).await["id"].as_str().unwrap().to_owned());
    }
    let http = reqwest::Client::new();
    let mut calls = tokio::task::JoinSet::new();
    for (n, id) in ids.into_iter().enumerate() {
        let (http, base) = (http.clone(), s.base.clone());
        calls.spawn(async move {
            let url = format!("{base}/api/v1/providers/{id}");
            let request = if n % 2 == 0 {
                http.delete(url)
            } else {
                http.patch(url).json(&json!({"token_endpoint": "https://slack.com/api/changed"}))
            };
            let response = request.bearer_auth(crate::harness::TOKEN).send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        });
    }
    while let Some(done) = calls.join_next().await {
        let (status, body) = done.unwrap();
        assert!(status == 204 || status == 200, "a concurrent write answered {status}: {body}");
    }
    assert_eq!(s.count("providers").await, 20);
}
