//! The API's JSON, pinned byte for byte: one record of every kind and type as
//! created, authorized and listed, the token, sign and notification answers,
//! error bodies, every kind's schema and the OpenAPI document. A change to any
//! of them is a change users see; it must be deliberate.
//!
//! Ids, times and the fake provider's port change from run to run and are
//! replaced by placeholders before comparing. `GRANTRY_UPDATE_SNAPSHOTS=1`
//! rewrites the files (then review the diff).

use std::path::PathBuf;

use reqwest::Method;
use serde_json::{json, Value};

use crate::fake_provider::FakeProvider;
use crate::harness::{browser, visit, Server, TOKEN};

/// Replaces what differs between runs: UUIDs by `<id N>` in order of first
/// appearance, RFC 3339 times by `<time>`, and `base` by `<fake>`.
fn normalise(text: &str, base: &str, ids: &mut Vec<String>) -> String {
    let text = text.replace(base, "<fake>");
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        if let Some(len) = uuid_at(&bytes[i..]) {
            let id = &text[i..i + len];
            let n = match ids.iter().position(|seen| seen == id) {
                Some(n) => n,
                None => {
                    ids.push(id.to_owned());
                    ids.len() - 1
                }
            };
            out.push_str(&format!("<id {n}>"));
            i += len;
        } else if let Some(len) = time_at(&bytes[i..]) {
            out.push_str("<time>");
            i += len;
        } else {
            let c = text[i..].chars().next().unwrap_or('\0');
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

fn uuid_at(b: &[u8]) -> Option<usize> {
    if b.len() < 36 {
        return None;
    }
    let ok = (0..36).all(|i| match i {
        8 | 13 | 18 | 23 => b[i] == b'-',
        _ => b[i].is_ascii_hexdigit() && !b[i].is_ascii_uppercase(),
    });
    ok.then_some(36)
}

fn time_at(b: &[u8]) -> Option<usize> {
    // 2026-12-01T23:38:41.123Z (the fraction is optional)
    let shape = b"dddd-dd-ddTdd:dd:dd";
    if b.len() < shape.len() + 1 {
        return None;
    }
    let ok = shape.iter().zip(b).all(|(s, c)| if *s == b'd' { c.is_ascii_digit() } else { s == c });
    if !ok {
        return None;
    }
    let mut len = shape.len();
    if b.get(len) == Some(&b'.') {
        len += 1;
        while b.get(len).is_some_and(u8::is_ascii_digit) {
            len += 1;
        }
    }
    (b.get(len) == Some(&b'Z')).then_some(len + 1)
}

struct Book {
    entries: String,
    ids: Vec<String>,
    base: String,
}

impl Book {
    fn new(base: &str) -> Book {
        Book { entries: String::new(), ids: Vec::new(), base: base.to_owned() }
    }

    async fn call(&mut self, s: &Server, method: Method, path: &str, body: Option<Value>) -> Value {
        let r = s.request(method.clone(), path, body.map(|b| b.to_string().into_bytes()), Some(TOKEN)).await;
        let title = normalise(&format!("{method} {path}"), &self.base, &mut self.ids);
        let text = normalise(&r.text, &self.base, &mut self.ids);
        self.entries.push_str(&format!("## {title} -> {}\n{text}\n\n", r.status));
        r.body
    }

    fn check(&self, name: &str) {
        check(name, &self.entries);
    }
}

fn check(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/it/snapshots").join(name);
    if std::env::var_os("GRANTRY_UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with GRANTRY_UPDATE_SNAPSHOTS=1 to write it)", path.display()));
    if expected != actual {
        let line = expected.lines().zip(actual.lines()).position(|(a, b)| a != b).unwrap_or(0);
        panic!(
            "{name} differs from the pinned JSON at line {}:\n  pinned: {}\n  now:    {}",
            line + 1,
            expected.lines().nth(line).unwrap_or("<end>"),
            actual.lines().nth(line).unwrap_or("<end>")
        );
    }
}

fn id(v: &Value) -> &str {
    v["id"].as_str().unwrap()
}

#[tokio::test]
async fn records_of_every_kind_and_type_answer_the_pinned_json() {
    let fake = FakeProvider::start().await;
    let s = Server::start().await;
    let mut book = Book::new(&fake.base);
    let post = Method::POST;

    let oauth2 = book.call(&s, post.clone(), "/api/v1/providers", Some(fake.provider("Fake", json!({})))).await;
    let oauth1 = book
        .call(
            &s,
            post.clone(),
            "/api/v1/providers",
            Some(json!({"type": "oauth1", "namespace": "Trello", "name": "Trello",
            "authorization_endpoint": "https://trello.com/1/OAuthAuthorizeToken",
            "token_endpoint": "https://trello.com/1/OAuthGetAccessToken",
            "request_token_endpoint": "https://trello.com/1/OAuthGetRequestToken"})),
        )
        .await;
    let generic = book
        .call(
            &s,
            post.clone(),
            "/api/v1/providers",
            Some(json!({"type": "generic", "namespace": "Hooks", "name": "Hooks",
            "authorization_endpoint": "https://hooks.example/install",
            "host_parameters": [{"key": "shop", "pattern": "[a-z]+"}]})),
        )
        .await;
    let scope = book
        .call(
            &s,
            post.clone(),
            "/api/v1/scopes",
            Some(json!({"provider": id(&oauth2), "name": "read", "description": "Reads."})),
        )
        .await;
    let client = book
        .call(
            &s,
            post.clone(),
            "/api/v1/clients",
            Some(json!({"type": "remote_oauth", "provider": id(&oauth2), "name": "App",
            "identifier": "client-id", "secret": "client-secret",
            "request_token_parameters": [{"key": "audience", "value": "api", "description": "The API."}],
            "request_token_headers": [{"key": "X-App", "value": "grantry"}],
            "template_parameters": [{"key": "tenant", "value": "t1"}]})),
        )
        .await;
    let client1 = book
        .call(
            &s,
            post.clone(),
            "/api/v1/clients",
            Some(json!({"type": "remote_oauth", "provider": id(&oauth1), "name": "Trello App",
            "identifier": "key", "secret": "secret"})),
        )
        .await;
    let generic_client = book
        .call(
            &s,
            post.clone(),
            "/api/v1/clients",
            Some(json!({"type": "generic", "provider": id(&generic), "name": "Hook App"})),
        )
        .await;
    let code = book
        .call(
            &s,
            post.clone(),
            "/api/v1/authorizations",
            Some(json!({"type": "oauth2", "namespace": "Fake", "name": "code",
            "client": id(&client), "scopes": ["read"], "parameters": [{"key": "prompt", "value": "consent"}],
            "metadata": {"team": "a"}})),
        )
        .await;
    let cc = book
        .call(
            &s,
            post.clone(),
            "/api/v1/authorizations",
            Some(json!({"type": "oauth2", "namespace": "Fake", "name": "machine",
            "client": id(&client), "grant_type": "client_credentials"})),
        )
        .await;
    book.call(
        &s,
        post.clone(),
        "/api/v1/authorizations",
        Some(json!({"type": "oauth1", "name": "trello", "client": id(&client1)})),
    )
    .await;
    book.call(&s, post.clone(), "/api/v1/authorizations", Some(json!({"type": "generic", "name": "hook",
            "client": id(&generic_client), "capture": ["shop"], "template_parameters": [{"key": "shop", "value": "acme"}]})))
        .await;
    let basic = book
        .call(
            &s,
            post.clone(),
            "/api/v1/authorizations",
            Some(json!({"type": "basic", "name": "basic",
            "username": "user", "password": "pass"})),
        )
        .await;
    book.call(
        &s,
        post.clone(),
        "/api/v1/authorizations",
        Some(json!({"type": "api_key", "name": "key",
            "key_name": "api_key", "key_value": "k-1", "placement": "query"})),
    )
    .await;
    let connection = book
        .call(
            &s,
            post.clone(),
            "/api/v1/connections",
            Some(json!({"name": "api", "url": format!("{}/api", fake.base),
            "headers": [{"key": "Accept", "value": "application/json"}], "authorization": id(&basic)})),
        )
        .await;

    // Shown one by one, and listed.
    for (kind, record) in [
        ("providers", &oauth1),
        ("providers", &generic),
        ("scopes", &scope),
        ("clients", &generic_client),
        ("connections", &connection),
    ] {
        book.call(&s, Method::GET, &format!("/api/v1/{kind}/{}", id(record)), None).await;
    }
    for kind in ["providers", "scopes", "clients", "authorizations", "connections"] {
        book.call(&s, Method::GET, &format!("/api/v1/{kind}?sort=created_at"), None).await;
    }

    // Authorized by both grant types, then used.
    let cc_path = format!("/api/v1/authorizations/{}", id(&cc));
    book.call(&s, post.clone(), &format!("{cc_path}/authorize"), Some(json!({}))).await;
    book.call(&s, Method::GET, &format!("{cc_path}/token"), None).await;
    book.call(&s, Method::GET, "/api/v1/authorizations/by-key/Fake/machine/token", None).await;
    book.call(&s, post.clone(), &format!("{cc_path}/refresh"), Some(json!({}))).await;
    book.call(
        &s,
        post.clone(),
        &format!("{cc_path}/sign"),
        Some(json!({"method": "GET", "url": "https://api.example/x"})),
    )
    .await;
    let code_path = format!("/api/v1/authorizations/{}", id(&code));
    // The authorize URL carries a random state and PKCE challenge: checked, not pinned.
    let start = s.post(&format!("{code_path}/authorize"), json!({"return_to": "https://app.example/done"})).await;
    assert_eq!(
        start.body.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()),
        Some(vec!["authorize_url".to_owned()])
    );
    let landing = visit(&browser(), start.body["authorize_url"].as_str().unwrap()).await;
    assert_eq!(landing.param("status").as_deref(), Some("authorized"), "{}", landing.url);
    book.call(&s, Method::GET, &code_path, None).await;
    book.call(
        &s,
        post.clone(),
        &format!("/api/v1/authorizations/{}/sign", id(&basic)),
        Some(json!({"method": "GET", "url": "https://api.example/x"})),
    )
    .await;
    book.call(&s, post.clone(), &format!("{code_path}/cancel"), Some(json!({}))).await;
    book.call(&s, Method::GET, "/api/v1/notifications", None).await;

    // Transfer.
    book.call(&s, post.clone(), "/api/v1/scopes/export", Some(json!({}))).await;
    book.call(
        &s,
        post.clone(),
        "/api/v1/scopes/import",
        Some(json!([{"provider": {"namespace": "Fake", "name": "Fake"}, "name": "read", "description": "Reads."},
        {"provider": {"namespace": "Fake", "name": "Fake"}, "name": "write"}, {"name": ""}])),
    )
    .await;

    // Errors.
    book.call(&s, post.clone(), "/api/v1/providers", Some(json!({"type": "oauth2", "name": ""}))).await;
    book.call(&s, Method::GET, "/api/v1/providers/00000000-0000-7000-8000-000000000000", None).await;
    book.call(&s, Method::DELETE, &format!("/api/v1/providers/{}", id(&oauth2)), None).await;
    book.call(&s, Method::GET, "/api/v1/widgets", None).await;
    book.call(&s, Method::GET, &format!("/api/v1/authorizations/{}/token", id(&basic)), None).await;
    book.check("records.txt");
    s.stop().await;
}

#[tokio::test]
async fn schemas_and_the_openapi_document_are_pinned() {
    let s = Server::start().await;
    let mut book = Book::new(&s.base);
    for kind in ["providers", "scopes", "clients", "authorizations", "connections"] {
        book.call(&s, Method::GET, &format!("/api/v1/{kind}/schema"), None).await;
    }
    book.call(&s, Method::GET, "/api/v1/openapi.json", None).await;
    book.check("schemas.txt");
    s.stop().await;
}
