//! Roles (viewer, editor, integration, admin) hold in the API and the UI alike; an
//! editor cannot point stored secrets, or records that use them, somewhere else.

use reqwest::Method;
use serde_json::{json, Value};

use crate::fake_provider::{Answer, FakeProvider};
use crate::harness::{new_token, slack_provider, Response, Server};

use super::{
    action, authorize, csrf_of, id, no_redirects, oauth2_authorization, record, short, sign_in, ui_get, Echo,
    CLIENT_ID, CLIENT_SECRET,
};

/// Every record list and the API tokens, as the admin sees them.
async fn snapshot(s: &Server) -> Vec<Value> {
    let mut out = Vec::new();
    for kind in ["providers", "scopes", "clients", "authorizations", "connections"] {
        out.push(s.get(&format!("/api/v1/{kind}?per_page=100")).await.body);
    }
    out.push(s.get("/api/v1/api-tokens").await.body);
    out
}

async fn ui_post(s: &Server, cookie: &str, path: &str, form: &[(&str, &str)]) -> u16 {
    let r = no_redirects().post(format!("{}{path}", s.base)).header("Cookie", cookie).form(form).send().await.unwrap();
    r.status().as_u16()
}

type Call = (Method, String, Option<Value>);

fn call(method: Method, path: impl Into<String>, body: Option<Value>) -> Call {
    (method, path.into(), body)
}

async fn send(s: &Server, token: &str, (method, path, body): &Call) -> Response {
    s.request(method.clone(), path, body.as_ref().map(|b| b.to_string().into_bytes()), Some(token)).await
}

async fn expect_forbidden(s: &Server, token: &str, role: &str, calls: &[Call]) {
    for c in calls {
        let r = send(s, token, c).await;
        assert_eq!((r.status, r.code()), (403, "forbidden"), "{role} {} {}: {}", c.0, c.1, r.text);
        let message = r.body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(role) && message.contains("admin"),
            "{role} {} {}: the message names the roles: {message}",
            c.0,
            c.1
        );
    }
}

/// Makes the calls, each of which must succeed; returns the answers' texts.
async fn expect_allowed(s: &Server, token: &str, role: &str, calls: &[Call]) -> Vec<String> {
    let mut texts = Vec::new();
    for c in calls {
        let r = send(s, token, c).await;
        assert!((200..300).contains(&r.status), "{role} {} {}: {} {}", c.0, c.1, r.status, r.text);
        texts.push(r.text);
    }
    texts
}

#[tokio::test]
async fn each_role_may_do_only_what_its_row_of_the_table_allows() {
    let fake = FakeProvider::start().await;
    let echo = Echo::start().await;
    let s = Server::start().await;
    let oauth = oauth2_authorization(&s, &fake, json!({})).await;
    assert_eq!(authorize(&s, &oauth).await.param("status").as_deref(), Some("authorized"));
    let (user, password) = ("USER-role-7d1c", "PASS-role-9e2a");
    let basic =
        s.create("authorizations", json!({"type": "basic", "name": "b", "username": user, "password": password})).await;
    let connection = s.create("connections", json!({"name": "echo", "url": format!("{}/api", echo.base)})).await;
    let provider = s.get("/api/v1/providers?per_page=1").await.body["items"][0].clone();
    let (a, b, c, p) = (id(&oauth), id(&basic), id(&connection), id(&provider));
    let viewer = new_token(&s, "viewer").await;
    let editor = new_token(&s, "editor").await;
    let integration = new_token(&s, "integration").await;

    let sign_body = json!({"method": "GET", "url": "https://api.example/items"});
    let credentials: Vec<Call> = vec![
        call(Method::GET, format!("/api/v1/authorizations/{a}/token"), None),
        call(Method::GET, "/api/v1/authorizations/by-key/Acme/fake/token", None),
        call(Method::POST, format!("/api/v1/authorizations/{b}/sign"), Some(sign_body.clone())),
        call(Method::POST, format!("/api/v1/authorizations/{a}/sign"), Some(sign_body)),
        call(Method::GET, format!("/api/v1/connections/{c}/proxy/items"), None),
    ];
    let changes: Vec<Call> = vec![
        call(Method::POST, "/api/v1/providers", Some(json!({"type": "generic", "namespace": "Roles", "name": "made"}))),
        call(Method::PATCH, format!("/api/v1/authorizations/{a}"), Some(json!({"metadata": {"changed": true}}))),
        call(
            Method::POST,
            "/api/v1/providers/import",
            Some(json!([{"type": "generic", "namespace": "Roles", "name": "imported"}])),
        ),
        call(Method::POST, format!("/api/v1/authorizations/{a}/authorize"), Some(json!({}))),
        call(Method::POST, format!("/api/v1/authorizations/{a}/refresh"), Some(json!({}))),
        call(Method::POST, format!("/api/v1/authorizations/{a}/cancel"), Some(json!({}))),
        call(Method::DELETE, format!("/api/v1/authorizations/{b}"), None),
        call(Method::POST, "/api/v1/authorizations/delete", Some(json!({"ids": [b]}))),
    ];
    let api_tokens: Vec<Call> = vec![
        call(Method::GET, "/api/v1/api-tokens", None),
        call(Method::POST, "/api/v1/api-tokens", Some(json!({"name": "escalate", "role": "admin"}))),
        call(Method::DELETE, "/api/v1/api-tokens/some-id", None),
    ];
    let reads: Vec<Call> = vec![
        call(Method::GET, "/api/v1/providers", None),
        call(Method::GET, format!("/api/v1/providers/{p}"), None),
        call(Method::GET, "/api/v1/clients", None),
        call(Method::GET, "/api/v1/authorizations", None),
        call(Method::GET, format!("/api/v1/authorizations/{a}"), None),
        call(Method::GET, "/api/v1/connections", None),
        call(Method::GET, "/api/v1/clients/schema", None),
        call(Method::GET, "/api/v1/notifications", None),
        call(Method::POST, "/api/v1/authorizations/export", Some(json!({}))),
    ];

    let before = snapshot(&s).await;
    let counts = |fake: &FakeProvider, echo: &Echo| (fake.seen().len(), fake.revoked().len(), echo.seen().len());
    let counts_before = counts(&fake, &echo);

    // viewer: reads and export, nothing else.
    expect_forbidden(&s, &viewer, "viewer", &credentials).await;
    expect_forbidden(&s, &viewer, "viewer", &changes).await;
    expect_forbidden(&s, &viewer, "viewer", &api_tokens).await;
    let mut texts = expect_allowed(&s, &viewer, "viewer", &reads).await;

    // integration: credentials and reading authorizations, connections and schemas.
    let not_for_integration: Vec<Call> = vec![
        call(Method::GET, "/api/v1/providers", None),
        call(Method::GET, "/api/v1/clients", None),
        call(Method::GET, "/api/v1/scopes", None),
        call(Method::GET, "/api/v1/notifications", None),
        call(Method::POST, "/api/v1/authorizations/export", Some(json!({}))),
    ];
    expect_forbidden(&s, &integration, "integration", &not_for_integration).await;
    expect_forbidden(&s, &integration, "integration", &changes).await;
    expect_forbidden(&s, &integration, "integration", &api_tokens).await;
    assert_eq!(snapshot(&s).await, before, "refused calls changed nothing");
    assert_eq!(counts(&fake, &echo), counts_before, "refused calls sent nothing out");

    let integration_reads: Vec<Call> = vec![
        call(Method::GET, "/api/v1/authorizations", None),
        call(Method::GET, format!("/api/v1/authorizations/{a}"), None),
        call(Method::GET, "/api/v1/connections", None),
        call(Method::GET, format!("/api/v1/connections/{c}"), None),
        call(Method::GET, "/api/v1/providers/schema", None),
    ];
    expect_allowed(&s, &integration, "integration", &integration_reads).await;
    let handed_out = expect_allowed(&s, &integration, "integration", &credentials).await;
    assert!(handed_out[0].contains("access-1"), "integration tokens get the token: {}", handed_out[0]);
    assert_eq!(echo.seen().len(), 1, "the integration's proxied request went through");

    // editor: everything on records, never a credential, never API tokens.
    let echo_before = echo.seen().len();
    expect_forbidden(&s, &editor, "editor", &credentials).await;
    expect_forbidden(&s, &editor, "editor", &api_tokens).await;
    assert_eq!(echo.seen().len(), echo_before);
    texts.extend(expect_allowed(&s, &editor, "editor", &reads).await);
    texts.extend(expect_allowed(&s, &editor, "editor", &changes).await);
    assert_eq!(s.count("providers").await, 3, "the editor created and imported a provider");
    assert_eq!(record(&s, &oauth).await["status"], "unauthorized", "the editor cancelled");
    assert!(fake.revoked().len() > counts_before.1, "cancel revoked at the provider");

    // Neither role ever received a secret.
    for text in &texts {
        for secret in ["access-1", "access-2", "refresh-1", "refresh-2", user, password, CLIENT_SECRET] {
            assert!(!text.contains(secret), "{secret} reached a viewer or editor: {text}");
        }
    }
}

#[tokio::test]
async fn the_ui_holds_each_role_to_the_same_table() {
    let fake = FakeProvider::start().await;
    let s = Server::start().await;
    let auth = oauth2_authorization(&s, &fake, json!({})).await;
    let viewer = new_token(&s, "viewer").await;
    let editor = new_token(&s, "editor").await;
    let integration = new_token(&s, "integration").await;

    let (_, session, _) = sign_in(&s, &viewer).await;
    let session = session.expect("a viewer may sign in");
    let (status, html) = ui_get(&s, &session, "/ui/providers").await;
    assert_eq!(status, 200, "{html}");
    let (status, _) = ui_get(&s, &session, &format!("/ui/authorizations/{}", id(&auth))).await;
    assert_eq!(status, 200);
    let csrf = csrf_of(&html);
    assert!(!csrf.is_empty(), "{html}");
    let before = snapshot(&s).await;
    let auth_page = format!("/ui/authorizations/{}", id(&auth));
    let authorize_page = format!("{auth_page}/authorize");
    let import = "[{\"type\": \"generic\", \"namespace\": \"UI\", \"name\": \"imported\"}]";
    let posts: Vec<(&str, Vec<(&str, &str)>)> = vec![
        (
            "/ui/providers",
            vec![("type", "generic"), ("namespace", "UI"), ("name", "viewer-made"), ("csrf", csrf.as_str())],
        ),
        (auth_page.as_str(), vec![("name", "renamed"), ("csrf", csrf.as_str())]),
        ("/ui/providers/delete", vec![("csrf", csrf.as_str())]),
        ("/ui/providers/import", vec![("records", import), ("csrf", csrf.as_str())]),
        (authorize_page.as_str(), vec![("csrf", csrf.as_str())]),
    ];
    for (path, form) in &posts {
        assert_eq!(ui_post(&s, &session, path, form).await, 403, "viewer POST {path}");
    }
    assert_eq!(snapshot(&s).await, before, "the viewer's posts changed nothing");
    assert!(fake.seen().is_empty());

    // An integration token is for machines: no UI session.
    let (status, session, _) = sign_in(&s, &integration).await;
    assert!(session.is_none(), "an integration token signed in to the UI");
    assert_ne!(status / 100, 3, "the sign-in page says why instead of moving on");

    // An editor's session may change records.
    let (_, session, _) = sign_in(&s, &editor).await;
    let session = session.expect("an editor may sign in");
    let (_, html) = ui_get(&s, &session, "/ui/providers").await;
    let csrf = csrf_of(&html);
    let form = [("type", "generic"), ("namespace", "UI"), ("name", "editor-made"), ("csrf", csrf.as_str())];
    assert_eq!(ui_post(&s, &session, "/ui/providers", &form).await, 303);
    assert_eq!(s.count("providers").await, 2);
}

#[tokio::test]
async fn a_kind_written_percent_encoded_is_judged_as_the_kind_it_decodes_to() {
    let s = Server::start().await;
    s.create("providers", slack_provider()).await;
    let integration = new_token(&s, "integration").await;
    for path in ["/api/v1/%63lients", "/api/v1/%70roviders", "/api/v1/%73copes", "/api/v1/%70roviders/x"] {
        let r = s.request(Method::GET, path, None, Some(&integration)).await;
        assert_eq!((r.status, r.code()), (403, "forbidden"), "{path}: {}", short(&r.text));
    }
    // A kind that is none is the admin's 404, and nobody else's way around the table.
    let r = s.request(Method::GET, "/api/v1/nothing", None, Some(&integration)).await;
    assert_eq!(r.status, 403);
    assert_eq!(s.get("/api/v1/nothing").await.status, 404);
}

#[tokio::test]
async fn an_editor_cannot_point_stored_secrets_somewhere_else() {
    let fake = FakeProvider::start().await;
    let echo = Echo::start().await;
    let s = Server::start().await;
    let auth = oauth2_authorization(&s, &fake, json!({})).await;
    assert_eq!(authorize(&s, &auth).await.param("status").as_deref(), Some("authorized"));
    let a = record(&s, &auth).await;
    let client = s.get(&format!("/api/v1/clients/{}", a["client"]["id"].as_str().unwrap())).await.body;
    let provider = client["provider"]["id"].as_str().unwrap().to_owned();
    let connection = s
        .create("connections", json!({"name": "c", "url": format!("{}/api", echo.base), "authorization": auth["id"]}))
        .await;
    let editor = new_token(&s, "editor").await;
    let patch = |path: String, body: Value| {
        let editor = editor.clone();
        let s = &s;
        async move { s.request(Method::PATCH, &path, Some(body.to_string().into_bytes()), Some(&editor)).await }
    };
    let elsewhere = format!("{}/token", echo.base);
    for (path, body) in [
        (format!("/api/v1/providers/{provider}"), json!({"token_endpoint": elsewhere})),
        (format!("/api/v1/providers/{provider}"), json!({"revocation_endpoint": elsewhere})),
        (
            format!("/api/v1/clients/{}", id(&client)),
            json!({"request_token_parameters": [{"key": "x", "value": "{{secret}}"}]}),
        ),
        (format!("/api/v1/connections/{}", id(&connection)), json!({"url": "https://elsewhere.example/api"})),
        (
            format!("/api/v1/authorizations/{}", id(&auth)),
            json!({"template_parameters": [{"key": "shop", "value": "x"}]}),
        ),
    ] {
        let r = patch(path.clone(), body).await;
        assert_eq!((r.status, r.code()), (403, "forbidden"), "{path}: {}", short(&r.text));
        assert!(r.body["error"]["message"].as_str().unwrap_or("").contains("admin"));
    }
    let r = s
        .request(
            Method::POST,
            "/api/v1/providers/import",
            Some(json!([{"type": "oauth2", "namespace": "Fake", "name": "Fake", "authorization_endpoint": format!("{}/authorize", fake.base), "token_endpoint": elsewhere}]).to_string().into_bytes()),
            Some(&editor),
        )
        .await;
    assert_eq!(r.body["failed"][0]["error"]["code"], "forbidden", "{}", short(&r.text));
    // What does not move a secret is the editor's to change; a refresh still goes where it went.
    let r = patch(format!("/api/v1/authorizations/{}", id(&auth)), json!({"metadata": {"team": "a"}})).await;
    assert_eq!(r.status, 200, "{}", short(&r.text));
    fake.answer(Answer::json(json!({"access_token": "access-2", "expires_in": 3600})));
    let r = s.request(Method::POST, &action(&auth, "refresh"), Some(b"{}".to_vec()), Some(&editor)).await;
    assert_eq!(r.status, 200, "{}", short(&r.text));
    assert!(echo.seen().is_empty(), "nothing reached the editor's host");
}

#[tokio::test]
async fn an_editor_cannot_create_records_that_send_stored_secrets_elsewhere() {
    let fake = FakeProvider::start().await;
    let s = Server::start().await;
    let shop = fake.provider(
        "Shops",
        json!({"host_parameters": [{"key": "shop"}],
        "token_endpoint": "https://{{shop}}.shops.example/token"}),
    );
    let client = s
        .create(
            "clients",
            json!({"type": "remote_oauth", "name": "c", "provider": shop,
            "identifier": CLIENT_ID, "secret": CLIENT_SECRET}),
        )
        .await;
    let basic =
        s.create("authorizations", json!({"type": "basic", "name": "b", "username": "u-1", "password": "p-1"})).await;
    let editor = new_token(&s, "editor").await;
    let post = |path: &str, body: Value| {
        let (s, editor, path) = (&s, editor.clone(), path.to_owned());
        async move { s.request(Method::POST, &path, Some(body.to_string().into_bytes()), Some(&editor)).await }
    };
    // A new authorization of the stored client that chooses the token endpoint's host.
    let r = post(
        "/api/v1/authorizations",
        json!({"type": "oauth2", "name": "x", "client": client["id"],
        "grant_type": "client_credentials", "template_parameters": [{"key": "shop", "value": "attacker"}]}),
    )
    .await;
    assert_eq!((r.status, r.code()), (403, "forbidden"), "{}", short(&r.text));
    // A new connection that sends stored credentials to a URL of the editor's.
    let r = post(
        "/api/v1/connections",
        json!({"name": "c", "url": "https://attacker.example/", "authorization": basic["id"]}),
    )
    .await;
    assert_eq!((r.status, r.code()), (403, "forbidden"), "{}", short(&r.text));
    // The same through an import that creates.
    let r = post(
        "/api/v1/connections/import",
        json!([{"name": "c2", "url": "https://attacker.example/",
        "authorization": {"namespace": "", "name": "b"}}]),
    )
    .await;
    assert_eq!(r.body["failed"][0]["error"]["code"], "forbidden", "{}", short(&r.text));
    // A PATCH that names a new client inline is refused before the client is made.
    let auth = s.create("authorizations", json!({"type": "oauth2", "name": "mine", "client": client["id"]})).await;
    let before_patch = s.count("clients").await;
    let r = s
        .request(
            Method::PATCH,
            &format!("/api/v1/authorizations/{}", id(&auth)),
            Some(json!({"client": {"type": "remote_oauth", "name": "evil", "provider": {"namespace": "Shops", "name": "Fake"}}}).to_string().into_bytes()),
            Some(&editor),
        )
        .await;
    assert_eq!((r.status, r.code()), (403, "forbidden"), "{}", short(&r.text));
    assert_eq!(s.count("clients").await, before_patch, "no inline client was left behind");
    // Where the browser is sent, and PKCE, are destinations too.
    let provider = client["provider"]["id"].as_str().unwrap();
    for body in [json!({"authorization_endpoint": "https://attacker.example/authorize"}), json!({"pkce": "off"})] {
        let r = s
            .request(
                Method::PATCH,
                &format!("/api/v1/providers/{provider}"),
                Some(body.to_string().into_bytes()),
                Some(&editor),
            )
            .await;
        assert_eq!((r.status, r.code()), (403, "forbidden"), "{}", short(&r.text));
    }
    // What does not touch a stored secret stays the editor's: a new authorization of the
    // client without template parameters, a connection of its own.
    let r = post("/api/v1/authorizations", json!({"type": "oauth2", "name": "plain", "client": client["id"]})).await;
    assert_eq!(r.status, 201, "{}", short(&r.text));
    let r = post("/api/v1/connections", json!({"name": "open", "url": "https://api.example/"})).await;
    assert_eq!(r.status, 201, "{}", short(&r.text));
    assert_eq!(s.count("authorizations").await, 3, "b, mine and plain: nothing refused was made");
    assert_eq!(s.count("connections").await, 1);
}
