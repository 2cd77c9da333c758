//! Regression tests of the security hardening (issue 8): every hole the issue
//! lists, tried as an attacker would, is refused, changes nothing and leaks nothing.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, Method as RemoteMethod, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::Router;
use reqwest::Method;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::fake_provider::{Answer, FakeProvider};
use crate::harness::{browser, command, new_token, slack_provider, visit, Landing, Response, Server, TOKEN};

const CLIENT_ID: &str = "CID-8a41-security-client-id";
const CLIENT_SECRET: &str = "CS-3f9d-security-client-secret";

// ---- a remote API that reports what it received ---------------------------------

/// A request as the echo server received it.
#[derive(Clone, Debug)]
struct Received {
    method: String,
    /// The path exactly as it arrived, percent-encoding and all.
    path: String,
    headers: Vec<(String, String)>,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// A hand-written fake remote API for the proxy: a real server cannot be made
/// to report every header it received, nor to answer with a `Set-Cookie` and
/// active HTML on demand. It records each request and answers all alike.
#[derive(Clone)]
struct Echo {
    seen: Arc<Mutex<Vec<Received>>>,
    base: String,
}

impl Echo {
    async fn start() -> Echo {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let echo = Echo { seen: Arc::default(), base };
        let app = Router::new().fallback(echo_answer).with_state(echo.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        echo
    }

    fn seen(&self) -> Vec<Received> {
        self.seen.lock().unwrap().clone()
    }

    fn port(&self) -> u16 {
        url::Url::parse(&self.base).unwrap().port().unwrap()
    }
}

async fn echo_answer(
    State(echo): State<Echo>,
    method: RemoteMethod,
    uri: Uri,
    headers: HeaderMap,
) -> impl IntoResponse {
    echo.seen.lock().unwrap().push(Received {
        method: method.to_string(),
        path: uri.path().to_owned(),
        headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned())).collect(),
    });
    (
        StatusCode::OK,
        [
            ("content-type", "text/html; charset=utf-8"),
            ("set-cookie", "remote_session=from-the-remote; Path=/; HttpOnly"),
            ("x-remote", "kept"),
        ],
        "<!doctype html><script>alert(document.cookie)</script>",
    )
}

/// A listener that stands where HTTP_PROXY points and counts who connects.
async fn proxy_trap() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let _ =
                stream.write_all(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
        }
    });
    (url, hits)
}

// ---- helpers ------------------------------------------------------------------------

fn id(record: &Value) -> String {
    record["id"].as_str().unwrap().to_owned()
}

fn action(auth: &Value, what: &str) -> String {
    format!("/api/v1/authorizations/{}/{what}", id(auth))
}

fn proxy_path(connection: &Value, rest: &str) -> String {
    format!("/api/v1/connections/{}/proxy/{rest}", id(connection))
}

fn header(r: &Response, name: &str) -> String {
    r.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned()
}

fn query_values(url: &str, key: &str) -> Vec<String> {
    url::Url::parse(url).unwrap().query_pairs().filter(|(k, _)| k == key).map(|(_, v)| v.into_owned()).collect()
}

fn query_param(url: &str, key: &str) -> Option<String> {
    query_values(url, key).into_iter().next()
}

/// Whether any field message of a validation error contains `needle`.
fn any_field_mentions(r: &Response, needle: &str) -> bool {
    r.body["error"]["fields"].as_object().is_some_and(|fields| {
        fields.values().filter_map(Value::as_array).flatten().any(|m| m.as_str().is_some_and(|m| m.contains(needle)))
    })
}

fn field_keys(r: &Response) -> Vec<String> {
    r.body["error"]["fields"].as_object().map(|f| f.keys().cloned().collect()).unwrap_or_default()
}

/// At most the first 500 characters, for failure messages about big answers.
fn short(text: &str) -> String {
    text.chars().take(500).collect()
}

fn url_encoded(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// Standard base64 with padding, the form a provider would echo a secret in.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A client of the fake provider (with `client_extra` merged in) and an oauth2 authorization using it.
async fn oauth2_authorization(s: &Server, fake: &FakeProvider, client_extra: Value) -> Value {
    let mut client = json!({
        "type": "remote_oauth", "name": "main", "provider": fake.provider("Fake", json!({})),
        "identifier": CLIENT_ID, "secret": CLIENT_SECRET
    });
    for (k, v) in client_extra.as_object().unwrap() {
        client[k] = v.clone();
    }
    let client = s.create("clients", client).await;
    s.create("authorizations", json!({"type": "oauth2", "namespace": "Acme", "name": "fake", "client": client["id"]}))
        .await
}

/// Starts Authorize with an allowed return address; returns the authorize URL.
async fn start_flow(s: &Server, auth: &Value) -> String {
    let r = s.post(&action(auth, "authorize"), json!({"return_to": "https://app.example/done"})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["authorize_url"].as_str().unwrap().to_owned()
}

/// Runs Authorize through the fake provider, which consents at once.
async fn authorize(s: &Server, auth: &Value) -> Landing {
    let url = start_flow(s, auth).await;
    visit(&browser(), &url).await
}

async fn record(s: &Server, auth: &Value) -> Value {
    s.get(&format!("/api/v1/authorizations/{}", id(auth))).await.body
}

async fn warnings(s: &Server, auth: &Value) -> u64 {
    let r = s.get(&format!("/api/v1/notifications?authorization={}&level=warning", id(auth))).await;
    r.body["total"].as_u64().unwrap_or(0)
}

/// Every record list and the API tokens, as the admin sees them.
async fn snapshot(s: &Server) -> Vec<Value> {
    let mut out = Vec::new();
    for kind in ["providers", "scopes", "clients", "authorizations", "connections"] {
        out.push(s.get(&format!("/api/v1/{kind}?per_page=100")).await.body);
    }
    out.push(s.get("/api/v1/api-tokens").await.body);
    out
}

/// The worst /healthz latency over a few probes while something else runs.
async fn health_latency(base: &str) -> Duration {
    let client = reqwest::Client::new();
    let mut worst = Duration::ZERO;
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(30)).await;
        let started = Instant::now();
        let r = client.get(format!("{base}/healthz")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        worst = worst.max(started.elapsed());
    }
    worst
}

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

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// Signs in to the UI; the session cookie (`grantry_session=…`) when one was set.
async fn sign_in(s: &Server, token: &str) -> (u16, Option<String>, reqwest::header::HeaderMap) {
    let r = no_redirects().post(format!("{}/ui/login", s.base)).form(&[("token", token)]).send().await.unwrap();
    let status = r.status().as_u16();
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_owned())
        .find(|pair| pair.starts_with("grantry_session=") && pair.len() > "grantry_session=".len());
    (status, cookie, r.headers().clone())
}

async fn ui_get(s: &Server, cookie: &str, path: &str) -> (u16, String) {
    let r = no_redirects().get(format!("{}{path}", s.base)).header("Cookie", cookie).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.text().await.unwrap_or_default())
}

async fn ui_post(s: &Server, cookie: &str, path: &str, form: &[(&str, &str)]) -> u16 {
    let r = no_redirects().post(format!("{}{path}", s.base)).header("Cookie", cookie).form(form).send().await.unwrap();
    r.status().as_u16()
}

fn csrf_of(html: &str) -> String {
    html.split("name=\"csrf\" value=\"").nth(1).unwrap_or("").split('"').next().unwrap_or("").to_owned()
}

// ---- 1. callback parameters ----------------------------------------------------------

#[tokio::test]
async fn callback_parameters_never_become_template_variables_of_the_token_request() {
    let fake = FakeProvider::start().await;
    let evil = FakeProvider::start().await;
    let s = Server::start().await;

    // A port taken from a variable is refused on save: nothing templates the authority but a host label.
    let r = s
        .post("/api/v1/providers", fake.provider("Port", json!({"token_endpoint": "http://127.0.0.1:{{port}}/token"})))
        .await;
    assert_eq!((r.status, r.code()), (422, "validation_failed"), "{}", r.text);
    assert!(!r.field_errors("token_endpoint").is_empty(), "{}", r.text);

    let auth = oauth2_authorization(
        &s,
        &fake,
        json!({
            "template_parameters": [{"key": "aud", "value": "https://api.example"}, {"key": "shop", "value": "acme"}],
            "request_token_parameters": [
                {"key": "audience", "value": "{{aud}}"},
                {"key": "shop", "value": "{{shop}}"},
                {"key": "port", "value": "{{port}}"}
            ]
        }),
    )
    .await;
    let url = start_flow(&s, &auth).await;
    let state = query_param(&url, "state").unwrap();
    // The browser comes back with everything an attacker can append to the callback.
    let evil_port = url::Url::parse(&evil.base).unwrap().port().unwrap().to_string();
    let mut callback = url::Url::parse(&format!("{}/oauth/callback", s.base)).unwrap();
    callback
        .query_pairs_mut()
        .append_pair("state", &state)
        .append_pair("code", "fake-code")
        .append_pair("port", &evil_port)
        .append_pair("shop", "evil")
        .append_pair("aud", "https://evil.example")
        .append_pair("redirect_uri", &format!("{}/cb", evil.base))
        .append_pair("code_verifier", "attacker-chosen-verifier")
        .append_pair("client_id", "attacker")
        .append_pair("identifier", "attacker")
        .append_pair("secret", "attacker");
    let landing = visit(&browser(), callback.as_str()).await;
    assert_eq!(landing.param("status").as_deref(), Some("authorized"), "{}", landing.url);

    assert!(evil.seen().is_empty(), "nothing reached the host the callback named");
    let seen = fake.seen();
    assert_eq!(seen.len(), 1, "one code exchange, at the provider's own endpoint");
    let exchange = &seen[0];
    assert_eq!(exchange.param("audience").as_deref(), Some("https://api.example"));
    assert_eq!(exchange.param("shop").as_deref(), Some("acme"));
    assert_ne!(exchange.param("port"), Some(evil_port.clone()));
    assert_eq!(exchange.param("redirect_uri"), Some(format!("{}/oauth/callback", s.base)));
    assert_eq!(exchange.param("client_id").as_deref(), Some(CLIENT_ID));
    assert_eq!(exchange.param("client_secret").as_deref(), Some(CLIENT_SECRET));
    let verifier = exchange.param("code_verifier").unwrap_or_default();
    assert!(verifier.len() >= 43 && verifier != "attacker-chosen-verifier", "{verifier}");
    let token = s.get(&action(&auth, "token")).await;
    assert_eq!(token.body["access_token"], "access-1", "the tokens are the real provider's");
}

// ---- 2. roles --------------------------------------------------------------------------

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

// ---- 3. secrets through templates ----------------------------------------------------------

#[tokio::test]
async fn secret_variables_are_refused_on_save_wherever_they_could_leak() {
    let echo = Echo::start().await;
    let s = Server::start().await;
    let base = json!({"type": "oauth2", "namespace": "Leak", "name": "Leak",
        "authorization_endpoint": "https://auth.example/authorize", "token_endpoint": "https://auth.example/token"});
    let with = |field: &str, value: Value| {
        let mut p = base.clone();
        p[field] = value;
        p
    };
    for (field, value, variable) in [
        ("authorization_endpoint", "https://auth.example/authorize?leak={{secret}}", "secret"),
        ("authorization_endpoint", "https://auth.example/{{identifier}}/authorize", "identifier"),
        ("token_endpoint", "https://auth.example/token/{{secret}}", "secret"),
        ("token_endpoint", "https://auth.example/token?c={{identifier}}", "identifier"),
        ("revocation_endpoint", "https://auth.example/revoke/{{access_token}}", "access_token"),
    ] {
        let r = s.post("/api/v1/providers", with(field, json!(value))).await;
        assert_eq!((r.status, r.code()), (422, "validation_failed"), "{field} = {value}: {}", r.text);
        assert!(r.field_errors(field).iter().any(|m| m.contains(variable)), "{field} = {value}: {}", r.text);
    }
    // A custom refresh URL that carried the refresh token to a path of Grantry's own.
    let mut custom = with("refresh_token_strategy", json!("custom"));
    custom["name"] = json!("Custom");
    custom["refresh_request"] = json!({"url": format!("{}/leak/{{{{refresh_token}}}}", s.base)});
    let r = s.post("/api/v1/providers", custom.clone()).await;
    assert_eq!((r.status, r.code()), (422, "validation_failed"), "{}", r.text);
    assert!(any_field_mentions(&r, "refresh_token"), "{}", r.text);
    assert_eq!(s.count("providers").await, 0);
    // In headers and parameters of the refresh request the token belongs.
    custom["refresh_request"] = json!({"url": "https://auth.example/refresh",
        "headers": [{"key": "X-Refresh", "value": "{{refresh_token}}"}],
        "parameters": [{"key": "rt", "value": "{{refresh_token}}"}]});
    s.create("providers", custom).await;

    let provider = s.create("providers", base.clone()).await;
    let client = s
        .create(
            "clients",
            json!({"type": "remote_oauth", "name": "main", "provider": provider["id"],
            "identifier": CLIENT_ID, "secret": CLIENT_SECRET,
            "request_token_parameters": [{"key": "assertion", "value": "{{secret}}"}],
            "request_token_headers": [{"key": "X-Client", "value": "{{identifier}}:{{secret}}"}]}),
        )
        .await;

    // Scope names go into the authorize URL.
    let r = s.post("/api/v1/scopes", json!({"provider": provider["id"], "name": "read {{secret}}"})).await;
    assert_eq!((r.status, r.code()), (422, "validation_failed"), "{}", r.text);
    assert!(r.field_errors("name").iter().any(|m| m.contains("secret")), "{}", r.text);
    s.create("scopes", json!({"provider": provider["id"], "name": "read:{{identifier}}"})).await;

    // So do authorization parameters.
    for value in ["{{identifier}}|{{secret}}", "{{access_token}}", "{{ refresh_token | base64_encode }}"] {
        let r = s
            .post(
                "/api/v1/authorizations",
                json!({"type": "oauth2", "name": "leaky", "client": client["id"],
                "parameters": [{"key": "leak", "value": value}]}),
            )
            .await;
        assert_eq!((r.status, r.code()), (422, "validation_failed"), "{value}: {}", r.text);
        let messages = r.field_errors("parameters[0].value");
        let variable = if value.contains("secret") {
            "`secret`"
        } else if value.contains("access") {
            "`access_token`"
        } else {
            "`refresh_token`"
        };
        assert!(messages.iter().any(|m| m.contains(variable)), "{value}: {}", r.text);
    }
    let auth = s
        .create(
            "authorizations",
            json!({"type": "oauth2", "name": "hinted", "client": client["id"], "scopes": ["read:{{identifier}}"],
            "parameters": [{"key": "login_hint", "value": "{{identifier}}"}]}),
        )
        .await;
    let before = record(&s, &auth).await;
    let r = s
        .patch(
            &format!("/api/v1/authorizations/{}", id(&auth)),
            json!({"parameters": [{"key": "leak", "value": "{{secret}}"}]}),
        )
        .await;
    assert_eq!((r.status, r.code()), (422, "validation_failed"), "{}", r.text);
    assert_eq!(record(&s, &auth).await, before, "a refused change changes nothing");
    let r = s.post(&action(&auth, "authorize"), json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let url = r.body["authorize_url"].as_str().unwrap();
    assert_eq!(query_param(url, "login_hint").as_deref(), Some(CLIENT_ID), "identifier may go into the query");
    assert!(!url.contains(CLIENT_SECRET) && !url.contains(&url_encoded(CLIENT_SECRET)), "{url}");

    // A connection's URL may not carry a basic password; its headers may.
    let (user, password) = ("USER-5b7e-conn", "PASS-0c4f-conn");
    let basic = s
        .create("authorizations", json!({"type": "basic", "name": "pw", "username": user, "password": password}))
        .await;
    for url in
        [format!("{}/{{{{username}}}}/{{{{password}}}}", echo.base), format!("{}/x?p={{{{password}}}}", echo.base)]
    {
        let r = s
            .post(
                "/api/v1/connections",
                json!({"name": "leak", "url": url, "authorization": basic["id"], "authorization_handler": true}),
            )
            .await;
        assert_eq!((r.status, r.code()), (422, "validation_failed"), "{url}: {}", r.text);
        assert!(
            r.field_errors("url").iter().any(|m| m.contains("username") || m.contains("password")),
            "{url}: {}",
            r.text
        );
    }
    s.create(
        "connections",
        json!({"name": "ok", "url": format!("{}/api", echo.base), "authorization": basic["id"], "authorization_handler": true,
        "headers": [{"key": "Authorization", "value": "Basic {{basic_auth}}"}]}),
    )
    .await;

    let seen = s.seen.lock().unwrap().join("\n");
    for secret in [CLIENT_SECRET, password, user] {
        assert!(!seen.contains(secret), "{secret} appeared in a response");
        assert!(!s.log_text().contains(secret), "{secret} appeared in the log");
    }
}

#[tokio::test]
async fn provider_error_answers_are_trimmed_and_scrubbed_before_they_are_stored_or_shown() {
    let fake = FakeProvider::start().await;
    let s = Server::start().await;
    let auth = oauth2_authorization(&s, &fake, json!({})).await;
    // Secrets with characters that URL-encoding changes, so that each form differs.
    let (access, refresh) = ("AT/5e1f+scrub=access", "RT/77c2+scrub=refresh");
    fake.answer(Answer::json(json!({"access_token": access, "refresh_token": refresh, "expires_in": 3600})));
    assert_eq!(authorize(&s, &auth).await.param("status").as_deref(), Some("authorized"));

    let mut secrets = Vec::new();
    for secret in [access, refresh, CLIENT_SECRET] {
        secrets.extend([secret.to_owned(), url_encoded(secret), base64(secret.as_bytes())]);
    }
    // A provider that echoes what it received, at length, in every field it has.
    let echoed = secrets.join(" ");
    fake.answer(
        Answer::json(json!({
            "error": format!("invalid_request {refresh} {}", "E".repeat(300)),
            "error_description": format!("{echoed} {}", "d".repeat(600)),
            "error_uri": format!("https://docs.example/errors?token={}", url_encoded(refresh)),
            "debug": {"received_refresh_token": refresh, "client_secret": CLIENT_SECRET},
            "request": format!("grant_type=refresh_token&refresh_token={}", url_encoded(refresh))
        }))
        .status(400),
    );
    let answer = s.post(&action(&auth, "refresh"), json!({})).await;
    assert!(answer.status >= 400 && answer.status != 500, "{}", answer.text);

    let rec = record(&s, &auth).await;
    let last = rec["last_error"].as_object().unwrap_or_else(|| panic!("the failure is recorded: {rec}"));
    for key in last.keys() {
        assert!(
            ["error", "error_description", "error_uri", "status"].contains(&key.as_str()),
            "only the documented members are kept, not `{key}`: {}",
            rec["last_error"]
        );
    }
    assert!(last["error"].as_str().unwrap().starts_with("invalid_request"), "{}", rec["last_error"]);
    assert!(last["error"].as_str().unwrap().chars().count() <= 200, "{}", rec["last_error"]);
    let description = last.get("error_description").and_then(Value::as_str).unwrap_or_default();
    assert!(description.chars().count() <= 500, "{description}");
    assert_eq!(last["status"], 400);

    let notes = s.get(&format!("/api/v1/notifications?authorization={}", id(&auth))).await;
    assert!(notes.body["total"].as_u64().unwrap() >= 1, "{}", notes.text);
    let seen = s.seen.lock().unwrap().join("\n");
    let log = s.log_text();
    let record_text = rec.to_string();
    for secret in &secrets {
        assert!(!record_text.contains(secret.as_str()), "{secret} in the record: {record_text}");
        assert!(!notes.text.contains(secret.as_str()), "{secret} in a notification: {}", notes.text);
        assert!(!answer.text.contains(secret.as_str()), "{secret} in the error answer: {}", answer.text);
        assert!(!seen.contains(secret.as_str()), "{secret} in a response");
        assert!(!log.contains(secret.as_str()), "{secret} in the log");
    }
}

// ---- 4. template bombs ---------------------------------------------------------------------

#[tokio::test]
async fn loops_over_budget_are_refused_on_save_or_stopped_while_rendering_and_health_keeps_answering() {
    let echo = Echo::start().await;
    let s = Server::start().await;
    let api = format!("{}/api", echo.base);

    // Literal bounds are plainly over budget: refused on save, naming the field.
    let r = s
        .post(
            "/api/v1/connections",
            json!({"name": "huge", "url": api.clone() + "/{% for i in (1..100000000) %}{% endfor %}x"}),
        )
        .await;
    assert_eq!((r.status, r.code()), (422, "template_too_expensive"), "{}", r.text);
    assert!(!r.field_errors("url").is_empty(), "{}", r.text);
    let nested = "{% for i in (1..6000) %}{% for j in (1..6000) %}{% endfor %}{% endfor %}";
    let r = s
        .post(
            "/api/v1/connections",
            json!({"name": "nested", "url": api, "headers": [{"key": "X-Bomb", "value": nested}]}),
        )
        .await;
    assert_eq!((r.status, r.code()), (422, "template_too_expensive"), "{}", r.text);
    assert!(field_keys(&r).iter().any(|k| k.starts_with("headers")), "{}", r.text);
    assert_eq!(s.count("connections").await, 0);

    // Bounds from variables are only known when rendering: stopped there.
    let url_bomb = s
        .create(
            "connections",
            json!({"name": "url-bomb", "url": api.clone() + "/{% for i in (1..n) %}{% endfor %}x",
            "template_parameters": [{"key": "n", "value": "100000000"}]}),
        )
        .await;
    let nested_bomb = s
        .create(
            "connections",
            json!({"name": "nested-bomb", "url": api,
            "headers": [{"key": "X-Bomb", "value": "{% for i in (1..n) %}{% for j in (1..n) %}{% endfor %}{% endfor %}"}],
            "template_parameters": [{"key": "n", "value": "6000"}]}),
        )
        .await;
    let wide = s
        .create(
            "connections",
            json!({"name": "wide", "url": api,
            "headers": [{"key": "X-Wide", "value": "{% for i in (1..n) %}0123456789{% endfor %}"}],
            "template_parameters": [{"key": "n", "value": "9000"}]}),
        )
        .await;
    let (p1, p2, p3) = (proxy_path(&url_bomb, "x"), proxy_path(&nested_bomb, "x"), proxy_path(&wide, "x"));
    let started = Instant::now();
    let (a, b, c, worst) = tokio::join!(s.get(&p1), s.get(&p2), s.get(&p3), health_latency(&s.base));
    assert!(started.elapsed() < Duration::from_secs(5), "the renders took {:?}", started.elapsed());
    for (r, field) in [(&a, "url"), (&b, "headers"), (&c, "headers")] {
        assert_eq!((r.status, r.code()), (409, "template_too_expensive"), "{}", r.text);
        assert!(r.body["error"]["message"].as_str().unwrap_or_default().contains(field), "{}", r.text);
    }
    assert!(worst < Duration::from_secs(1), "/healthz took {worst:?} while the templates rendered");
    assert!(echo.seen().is_empty(), "nothing was sent");

    // The same process still serves.
    assert_eq!(s.request(Method::GET, "/healthz", None, None).await.status, 200);
    assert_eq!(s.count("connections").await, 3);
}

#[tokio::test]
async fn twenty_five_thousand_template_parameters_are_refused_quickly_and_lists_stop_at_one_hundred() {
    let s = Server::start().await;
    let provider = s.create("providers", slack_provider()).await;
    let client = |name: &str, pairs: Vec<Value>| json!({"type": "remote_oauth", "provider": provider["id"], "name": name, "template_parameters": pairs});
    let distinct = |n: usize| (0..n).map(|i| json!({"key": format!("k{i}"), "value": "v"})).collect::<Vec<_>>();

    for (name, pairs) in [
        ("distinct", distinct(25_000)),
        ("same", (0..25_000).map(|_| json!({"key": "k", "value": "v"})).collect::<Vec<_>>()),
    ] {
        let body = client(name, pairs);
        let started = Instant::now();
        let (r, worst) = tokio::join!(s.post("/api/v1/clients", body), health_latency(&s.base));
        assert!(started.elapsed() < Duration::from_secs(3), "{name}: took {:?}", started.elapsed());
        assert_eq!((r.status, r.code()), (422, "validation_failed"), "{name}: {}", short(&r.text));
        assert!(field_keys(&r).iter().any(|k| k.starts_with("template_parameters")), "{name}: {}", short(&r.text));
        assert!(worst < Duration::from_secs(1), "{name}: /healthz took {worst:?}");
    }
    let r = s.post("/api/v1/clients", client("over", distinct(101))).await;
    assert_eq!((r.status, r.code()), (422, "validation_failed"), "{}", r.text);
    assert!(field_keys(&r).iter().any(|k| k.starts_with("template_parameters")), "{}", r.text);
    s.create("clients", client("at-the-limit", distinct(100))).await;
    assert_eq!(s.count("clients").await, 1);
}

// ---- 5. URL injection -------------------------------------------------------------------------

#[tokio::test]
async fn a_host_may_be_templated_only_through_a_declared_host_parameter_with_a_matching_value() {
    let s = Server::start().await;
    let shopify = json!({"type": "oauth2", "namespace": "Shopify", "name": "Shopify",
        "authorization_endpoint": "https://{{shop}}.myshopify.com/admin/oauth/authorize",
        "token_endpoint": "https://{{shop}}.myshopify.com/admin/oauth/access_token"});
    let r = s.post("/api/v1/providers", shopify.clone()).await;
    assert_eq!((r.status, r.code()), (422, "validation_failed"), "{}", r.text);
    assert!(!r.field_errors("authorization_endpoint").is_empty(), "{}", r.text);
    assert_eq!(s.count("providers").await, 0);

    let mut declared = shopify;
    declared["host_parameters"] = json!([{"key": "shop", "pattern": "^[a-z]+$"}]);
    let client = s
        .create(
            "clients",
            json!({"type": "remote_oauth", "name": "app", "provider": declared, "identifier": CLIENT_ID, "secret": CLIENT_SECRET}),
        )
        .await;
    let auth = s.create("authorizations", json!({"type": "oauth2", "name": "store", "client": client["id"]})).await;
    let path = format!("/api/v1/authorizations/{}", id(&auth));
    for shop in ["evil.example/x?", "evil.example#", "evil.example", "acme@evil.example", "acme1", ""] {
        let r = s.patch(&path, json!({"template_parameters": [{"key": "shop", "value": shop}]})).await;
        assert_eq!(r.status, 200, "{shop}: {}", r.text);
        let r = s.post(&action(&auth, "authorize"), json!({})).await;
        assert_eq!((r.status, r.code()), (409, "provider_misconfigured"), "shop = {shop:?}: {}", r.text);
    }
    s.patch(&path, json!({"template_parameters": [{"key": "shop", "value": "acme"}]})).await;
    let r = s.post(&action(&auth, "authorize"), json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let url = url::Url::parse(r.body["authorize_url"].as_str().unwrap()).unwrap();
    assert_eq!((url.host_str(), url.path()), (Some("acme.myshopify.com"), "/admin/oauth/authorize"));
}

#[tokio::test]
async fn values_in_urls_are_percent_encoded_and_parameters_may_not_set_keys_grantry_owns() {
    let s = Server::start().await;
    let client = s
        .create(
            "clients",
            json!({"type": "remote_oauth", "name": "enc", "identifier": CLIENT_ID, "secret": CLIENT_SECRET,
            "provider": {"type": "oauth2", "namespace": "Enc", "name": "Enc",
                "authorization_endpoint": "https://auth.example/{{p}}/authorize", "token_endpoint": "https://auth.example/token"}}),
        )
        .await;
    let auth = s
        .create(
            "authorizations",
            json!({"type": "oauth2", "name": "enc", "client": client["id"],
            "template_parameters": [{"key": "p", "value": "a/b?c#d"}],
            "parameters": [{"key": "team", "value": "T1&redirect_uri=https://evil.example/cb"}]}),
        )
        .await;
    let r = s.post(&action(&auth, "authorize"), json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let url = r.body["authorize_url"].as_str().unwrap().to_owned();
    assert!(url.starts_with("https://auth.example/a%2Fb%3Fc%23d/authorize?"), "{url}");
    // Grantry's own parameters appear once each, with Grantry's values.
    assert_eq!(query_values(&url, "redirect_uri"), [format!("{}/oauth/callback", s.base)], "{url}");
    assert_eq!(query_values(&url, "state").len(), 1, "{url}");
    assert_eq!(query_values(&url, "code_challenge_method"), ["S256"], "{url}");
    assert_eq!(query_values(&url, "response_type"), ["code"], "{url}");
    assert_eq!(query_values(&url, "client_id"), [CLIENT_ID], "{url}");
    assert_eq!(query_values(&url, "team"), ["T1&redirect_uri=https://evil.example/cb"], "{url}");

    for key in [
        "redirect_uri",
        "state",
        "code_challenge_method",
        "code_challenge",
        "response_type",
        "client_id",
        "scope",
        "client_secret",
    ] {
        let r = s
            .post(
                "/api/v1/authorizations",
                json!({"type": "oauth2", "name": "inject", "client": client["id"],
                "parameters": [{"key": key, "value": "plain"}]}),
            )
            .await;
        assert_eq!((r.status, r.code()), (422, "validation_failed"), "{key}: {}", r.text);
        assert!(r.field_errors("parameters[0].key").iter().any(|m| m.contains(key)), "{key}: {}", r.text);
    }
    for key in ["redirect_uri", "grant_type", "code_verifier", "client_assertion", "refresh_token"] {
        let r = s
            .patch(
                &format!("/api/v1/clients/{}", id(&client)),
                json!({"request_token_parameters": [{"key": key, "value": "https://evil.example/cb"}]}),
            )
            .await;
        assert_eq!((r.status, r.code()), (422, "validation_failed"), "{key}: {}", r.text);
        assert!(r.field_errors("request_token_parameters[0].key").iter().any(|m| m.contains(key)), "{key}: {}", r.text);
    }
    assert_eq!(s.count("authorizations").await, 1);
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

// ---- 6. outbound ------------------------------------------------------------------------------

#[tokio::test]
async fn loopback_is_refused_unless_the_allow_list_names_it() {
    let fake = FakeProvider::start().await;
    let echo = Echo::start().await;
    // An empty allow-list is the product's default (the harness allows loopback for its fakes).
    let s = Server::start_with(&[("GRANTRY_ALLOWED_NETWORKS", "")]).await;
    let auth = oauth2_authorization(&s, &fake, json!({})).await;
    let landing = authorize(&s, &auth).await;
    assert_eq!(landing.param("status").as_deref(), Some("failed"), "{}", landing.url);
    assert!(fake.seen().is_empty(), "the code exchange did not reach the loopback provider");
    let rec = record(&s, &auth).await;
    assert_eq!(rec["status"], "failed", "{rec}");
    assert_eq!(rec["secrets"]["access_token"], false);

    for (i, url) in [
        format!("{}/api", echo.base),
        format!("http://localhost:{}/api", echo.port()),
        format!("http://[::1]:{}/api", echo.port()),
        format!("http://127.1.2.3:{}/api", echo.port()),
    ]
    .iter()
    .enumerate()
    {
        let connection = s.create("connections", json!({"name": format!("loop-{i}"), "url": url})).await;
        let r = s.get(&proxy_path(&connection, "x")).await;
        assert_eq!((r.status, r.code()), (409, "destination_refused"), "{url}: {}", r.text);
    }
    assert!(echo.seen().is_empty());

    // Named in the allow-list, the same provider works.
    let allowed = Server::start_with(&[("GRANTRY_ALLOWED_NETWORKS", "127.0.0.0/8")]).await;
    let auth = oauth2_authorization(&allowed, &fake, json!({})).await;
    assert_eq!(authorize(&allowed, &auth).await.param("status").as_deref(), Some("authorized"));
    assert_eq!(fake.seen().len(), 1);
}

async fn assert_refused(s: &Server, urls: &[&str], what: &str) {
    for (i, url) in urls.iter().enumerate() {
        let connection = s.create("connections", json!({"name": format!("{what}-{i}"), "url": url})).await;
        let r = s.get(&proxy_path(&connection, "latest/meta-data")).await;
        assert_eq!((r.status, r.code()), (409, "destination_refused"), "{what} {url}: {}", r.text);
    }
}

#[tokio::test]
async fn private_addresses_are_refused_by_default_and_metadata_and_special_ones_even_when_allowed() {
    let echo = Echo::start().await;
    // A one-second timeout makes a wrongly allowed address fail fast instead of hanging the test.
    let s = Server::start_with(&[("GRANTRY_HTTP_TIMEOUT", "1")]).await;
    let private = [
        "http://10.0.0.1/",
        "http://172.16.0.1/",
        "http://192.168.1.1/",
        "http://100.64.0.1/",
        "http://198.18.0.1/",
        "http://[fd12::1]/",
        "http://[fec0::1]/",
    ];
    assert_refused(&s, &private, "private").await;

    let open =
        Server::start_with(&[("GRANTRY_ALLOWED_NETWORKS", "0.0.0.0/0,::/0"), ("GRANTRY_HTTP_TIMEOUT", "1")]).await;
    let special = [
        "http://169.254.169.254/",
        "http://169.254.0.1/",
        "http://100.100.100.200/",
        "http://0.0.0.0/",
        "http://224.0.0.1/",
        "http://240.0.0.1/",
        "http://255.255.255.255/",
        // 169.254.169.254 written as one number and in hex.
        "http://2852039166/",
        "http://0xa9fea9fe/",
        // IPv6 forms that embed the metadata address: mapped, compatible, NAT64, 6to4.
        "http://[::ffff:169.254.169.254]/",
        "http://[::ffff:100.100.100.200]/",
        "http://[::169.254.169.254]/",
        "http://[64:ff9b::a9fe:a9fe]/",
        "http://[2002:a9fe:a9fe::1]/",
        "http://[fd00:ec2::254]/",
        "http://[fe80::1]/",
        "http://[ff02::1]/",
        "http://[::]/",
    ];
    assert_refused(&open, &special, "special").await;
    // The wide allow-list itself works: loopback is now allowed.
    let connection = open.create("connections", json!({"name": "echo", "url": format!("{}/api", echo.base)})).await;
    assert_eq!(open.get(&proxy_path(&connection, "x")).await.status, 200);
    assert_eq!(echo.seen().len(), 1);
}

#[tokio::test]
async fn proxy_environment_variables_do_not_change_where_requests_go() {
    let fake = FakeProvider::start().await;
    let echo = Echo::start().await;
    let (trap, hits) = proxy_trap().await;
    let t = trap.as_str();
    let env = [
        ("HTTP_PROXY", t),
        ("HTTPS_PROXY", t),
        ("ALL_PROXY", t),
        ("http_proxy", t),
        ("https_proxy", t),
        ("all_proxy", t),
        ("NO_PROXY", ""),
        ("no_proxy", ""),
    ];
    let s = Server::start_with(&env).await;
    let connection = s.create("connections", json!({"name": "echo", "url": format!("{}/api", echo.base)})).await;
    let r = s.get(&proxy_path(&connection, "x")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(echo.seen().len(), 1, "the request went straight to the remote API");
    let auth = oauth2_authorization(&s, &fake, json!({})).await;
    assert_eq!(authorize(&s, &auth).await.param("status").as_deref(), Some("authorized"));
    assert_eq!(fake.seen().len(), 1);

    // With nothing allowed, a host name is still judged by the address it resolves to.
    let mut closed_env = env.to_vec();
    closed_env.push(("GRANTRY_ALLOWED_NETWORKS", ""));
    let closed = Server::start_with(&closed_env).await;
    let connection = closed
        .create("connections", json!({"name": "named", "url": format!("http://localhost:{}/api", echo.port())}))
        .await;
    let r = closed.get(&proxy_path(&connection, "x")).await;
    assert_eq!((r.status, r.code()), (409, "destination_refused"), "{}", r.text);
    assert_eq!(echo.seen().len(), 1);
    assert_eq!(hits.load(Ordering::SeqCst), 0, "nothing went through the proxy of the environment");
}

// ---- 7. the smaller holes ----------------------------------------------------------------------

#[tokio::test]
async fn out_of_range_expiries_from_a_provider_are_an_unknown_expiry_with_a_warning() {
    let fake = FakeProvider::start().await;
    let s = Server::start().await;
    let auth = oauth2_authorization(&s, &fake, json!({})).await;
    let answers = [
        json!({"access_token": "huge-float", "refresh_token": "r1", "expires_in": 1e18}),
        json!({"access_token": "huge-integer", "refresh_token": "r2", "expires_in": 1_000_000_000_000_000_000u64}),
        json!({"access_token": "far-created", "refresh_token": "r3", "expires_in": 3600, "created_at": 253_402_300_799u64}),
        json!({"access_token": "far-created-text", "refresh_token": "r4", "expires_in": 3600, "created_at": "9999-12-31T23:59:59Z"}),
    ];
    for (n, answer) in answers.into_iter().enumerate() {
        let expected = answer["access_token"].as_str().unwrap().to_owned();
        fake.answer(Answer::json(answer));
        let landing = authorize(&s, &auth).await;
        assert_eq!(landing.param("status").as_deref(), Some("authorized"), "{expected}: {}", landing.url);
        let rec = record(&s, &auth).await;
        assert_eq!(rec["status"], "authorized", "{expected}: {rec}");
        assert!(rec["expires_at"].is_null(), "{expected}: {}", rec["expires_at"]);
        let token = s.get(&action(&auth, "token")).await;
        assert_eq!(
            (token.status, token.body["access_token"].as_str()),
            (200, Some(expected.as_str())),
            "{}",
            token.text
        );
        assert!(warnings(&s, &auth).await > n as u64, "{expected}: a warning says the expiry is unknown");
    }
    // Nothing was left locked: a refresh goes through and stores a real expiry.
    let r = s.post(&action(&auth, "refresh"), json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(!record(&s, &auth).await["expires_at"].is_null());
    assert_eq!(fake.seen().len(), 5);
}

#[tokio::test]
async fn authorize_urls_must_be_http_or_https() {
    let s = Server::start().await;
    for (i, (kind, endpoint)) in [
        ("generic", "javascript:alert(document.domain)"),
        ("generic", "JavaScript:alert(1)"),
        ("generic", "data:text/html,<script>alert(1)</script>"),
        ("oauth1", "javascript:alert(1)"),
        ("oauth2", "javascript:alert(1)"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut provider = json!({"type": kind, "namespace": "Js", "name": format!("{kind}-{i}"),
            "authorization_endpoint": endpoint});
        if kind != "generic" {
            provider["token_endpoint"] = json!("https://auth.example/token");
        }
        if kind == "oauth1" {
            provider["request_token_endpoint"] = json!("https://auth.example/request");
        }
        let r = s.post("/api/v1/providers", provider).await;
        assert_eq!((r.status, r.code()), (422, "validation_failed"), "{kind} {endpoint}: {}", r.text);
        assert!(!r.field_errors("authorization_endpoint").is_empty(), "{kind} {endpoint}: {}", r.text);
    }
    assert_eq!(s.count("providers").await, 0);
    let ok = s
        .create(
            "providers",
            json!({"type": "generic", "namespace": "Js", "name": "ok", "authorization_endpoint": "https://consent.example/start"}),
        )
        .await;
    let path = format!("/api/v1/providers/{}", id(&ok));
    let r = s.patch(&path, json!({"authorization_endpoint": "javascript:alert(1)"})).await;
    assert_eq!((r.status, r.code()), (422, "validation_failed"), "{}", r.text);
    assert_eq!(s.get(&path).await.body["authorization_endpoint"], "https://consent.example/start");
}

#[tokio::test]
async fn return_to_must_be_an_https_url_of_an_allowed_origin() {
    let fake = FakeProvider::start().await;
    let s = Server::start().await;
    let auth = oauth2_authorization(&s, &fake, json!({})).await;
    for return_to in [
        "http:\\\\evil.example",
        "https://evil.example/x",
        "javascript:alert(1)",
        "http://app.example/done",
        "https://app.example.evil.example/done",
        "https://app.example@evil.example/done",
        "//evil.example/x",
        "http://127.0.0.1:1/x",
    ] {
        let r = s.post(&action(&auth, "authorize"), json!({"return_to": return_to})).await;
        assert_eq!((r.status, r.code()), (422, "validation_failed"), "{return_to}: {}", r.text);
        assert!(!r.field_errors("return_to").is_empty(), "{return_to}: {}", r.text);
    }
    // The listed origin, and Grantry's own (http is fine for a loopback public URL).
    let own = format!("{}/ui/authorizations/{}", s.base, id(&auth));
    for return_to in ["https://app.example/done?x=1", own.as_str()] {
        let r = s.post(&action(&auth, "authorize"), json!({"return_to": return_to})).await;
        assert_eq!(r.status, 200, "{return_to}: {}", r.text);
    }
    let landing = authorize(&s, &auth).await;
    assert!(landing.url.starts_with("https://app.example/done?"), "{}", landing.url);
    assert_eq!(landing.param("status").as_deref(), Some("authorized"));
}

#[tokio::test]
async fn a_callback_error_for_an_authorized_authorization_leaves_it_authorized_and_warns() {
    let fake = FakeProvider::start().await;
    let s = Server::start().await;
    let auth = oauth2_authorization(&s, &fake, json!({})).await;
    assert_eq!(authorize(&s, &auth).await.param("status").as_deref(), Some("authorized"));
    let before = record(&s, &auth).await;
    let url = start_flow(&s, &auth).await;
    let state = query_param(&url, "state").unwrap();
    let callback = format!(
        "{}/oauth/callback?state={}&error=access_denied&error_description=the+user+pressed+cancel",
        s.base,
        url_encoded(&state)
    );
    let landing = visit(&browser(), &callback).await;
    assert_ne!(landing.status, 500, "{}", landing.body);
    let after = record(&s, &auth).await;
    assert_eq!((after["status"].as_str(), after["authorized"].as_bool()), (Some("authorized"), Some(true)), "{after}");
    assert_eq!(after["secrets"]["access_token"], true);
    assert_eq!(after["authorized_at"], before["authorized_at"]);
    let token = s.get(&action(&auth, "token")).await;
    assert_eq!((token.status, token.body["access_token"].as_str()), (200, Some("access-1")));
    assert!(warnings(&s, &auth).await >= 1, "a warning says the provider sent an error");
    assert_eq!(fake.seen().len(), 1);
}

#[tokio::test]
async fn more_than_a_thousand_in_values_are_a_bad_request() {
    let s = Server::start().await;
    s.create("providers", slack_provider()).await;
    let values = |n: usize| (0..n).map(|i| i.to_string()).collect::<Vec<_>>().join(",");
    let r = s.get(&format!("/api/v1/providers?name[in]=Slack,{}", values(999))).await;
    assert_eq!(r.status, 200, "1000 values are fine: {}", short(&r.text));
    assert_eq!(r.body["total"], 1);
    // 33,000 values make a URL longer than an HTTP client sends; in a query
    // string they are tried at 1,001 and 8,000, and in full through a filter body.
    for n in [1001, 8_000] {
        let started = Instant::now();
        let r = s.get(&format!("/api/v1/providers?name[in]={}", values(n))).await;
        assert_eq!((r.status, r.code()), (400, "bad_request"), "{n}: {}", short(&r.text));
        let message = r.body["error"]["message"].as_str().unwrap_or_default().to_lowercase();
        assert!(!message.contains("sql"), "no database text: {message}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
    let r = s.post("/api/v1/providers/delete", json!({"filter": {"name[in]": values(33_000)}})).await;
    assert_eq!((r.status, r.code()), (400, "bad_request"), "{}", short(&r.text));
    let r = s.post("/api/v1/providers/export", json!({"filter": {"name[in]": values(33_000)}})).await;
    assert_eq!((r.status, r.code()), (400, "bad_request"), "{}", short(&r.text));
    assert_eq!(s.count("providers").await, 1);
}

#[tokio::test]
async fn ten_failed_sign_ins_throttle_sign_in_but_not_the_api() {
    let s = Server::start().await;
    let login = format!("{}/ui/login", s.base);
    for i in 0..10 {
        let r = no_redirects().post(&login).form(&[("token", format!("wrong-sign-in-{i}"))]).send().await.unwrap();
        assert_ne!(r.status().as_u16(), 429, "attempt {i} is still answered");
    }
    let (status, session, headers) = sign_in(&s, TOKEN).await;
    assert_eq!(status, 429, "even the right token waits");
    assert!(session.is_none());
    let retry: u64 = headers.get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).unwrap_or(0);
    assert!((1..=900).contains(&retry), "Retry-After: {retry}");
    let r = no_redirects().post(&login).form(&[("token", "wrong-again")]).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 429);
    // Bearer requests are counted apart.
    assert_eq!(s.get("/api/v1/providers").await.status, 200);
}

#[tokio::test]
async fn ten_bearer_failures_throttle_every_bearer_request_but_not_sign_in() {
    let s = Server::start().await;
    for i in 0..10 {
        let r = s.request(Method::GET, "/api/v1/providers", None, Some(format!("wrong-bearer-{i}").as_str())).await;
        assert_eq!((r.status, r.code()), (401, "unauthorized"), "attempt {i}");
    }
    for token in [TOKEN, "wrong-bearer-again"] {
        let r = s.request_with(Method::GET, "/api/v1/providers", None, Some(token), &[]).await;
        assert_eq!((r.status, r.code()), (429, "too_many_requests"), "{}", r.text);
        let retry: u64 = header(&r, "retry-after").parse().unwrap_or(0);
        assert!((1..=900).contains(&retry), "Retry-After: {retry}");
    }
    assert_eq!(s.request(Method::GET, "/healthz", None, None).await.status, 200);
    // Sign-in is counted apart.
    let (status, session, _) = sign_in(&s, TOKEN).await;
    assert_eq!(status, 303);
    assert!(session.is_some());
}

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
async fn an_https_public_url_gives_secure_cookies_and_hsts() {
    let s = Server::start_with(&[("GRANTRY_PUBLIC_URL", "https://grantry.example")]).await;
    let (status, session, headers) = sign_in(&s, TOKEN).await;
    assert_eq!(status, 303);
    assert!(session.is_some());
    let cookie = headers.get("set-cookie").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert!(cookie.split(';').any(|part| part.trim().eq_ignore_ascii_case("secure")), "{cookie}");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    let hsts = headers.get("strict-transport-security").and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(hsts.contains("max-age="), "the sign-in answer: {hsts:?}");
    let r = s.request_with(Method::GET, "/api/v1/providers", None, Some(TOKEN), &[]).await;
    assert!(header(&r, "strict-transport-security").contains("max-age="), "an API answer: {:?}", r.headers);
    // Grantry's own https origin is a valid return address.
    let client = s
        .create(
            "clients",
            json!({"type": "remote_oauth", "name": "m", "provider": slack_provider(), "identifier": "i"}),
        )
        .await;
    let auth = s.create("authorizations", json!({"type": "oauth2", "name": "a", "client": client["id"]})).await;
    let r =
        s.post(&action(&auth, "authorize"), json!({"return_to": "https://grantry.example/ui/authorizations"})).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[cfg(unix)]
#[tokio::test]
async fn the_data_folder_and_database_are_private_and_a_readable_master_key_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    // A folder Grantry creates itself, so that its mode is Grantry's doing.
    let data = dir.path().join("data");
    let s = Server::start_in(&data, &[]).await.unwrap_or_else(|r| panic!("{}", r.stderr));
    s.create("providers", slack_provider()).await;
    assert_eq!(mode(&data), 0o700, "the data folder");
    let mut database_files = 0;
    for entry in std::fs::read_dir(&data).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap().to_string_lossy().starts_with("grantry.db") {
            database_files += 1;
            assert_eq!(mode(&path), 0o600, "{}", path.display());
        }
    }
    assert!(database_files >= 1);
    let key = data.join("master.key");
    assert_eq!(mode(&key), 0o600);
    s.stop().await;

    set_mode(&key, 0o644);
    let refused = Server::start_in(&data, &[]).await.err().expect("a master key file others can read is refused");
    assert!(!refused.status.success());
    assert!(refused.stderr.to_lowercase().contains("master"), "{}", refused.stderr);
    // The same through GRANTRY_MASTER_KEY_FILE.
    let copy = dir.path().join("copy.key");
    std::fs::copy(&key, &copy).unwrap();
    set_mode(&copy, 0o644);
    let refused = Server::start_in(&data, &[("GRANTRY_MASTER_KEY_FILE", copy.to_str().unwrap())])
        .await
        .err()
        .expect("a master key file others can read is refused");
    assert!(!refused.status.success());

    set_mode(&key, 0o600);
    let s = Server::start_in(&data, &[]).await.unwrap_or_else(|r| panic!("{}", r.stderr));
    assert_eq!(s.count("providers").await, 1);
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

    let out = command(dir.path()).args(["token", "revoke", token_id.as_str()]).output().await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(s.request(Method::GET, "/api/v1/providers", None, Some(token.as_str())).await.status, 401);
    assert!(!token_list(dir.path()).await.contains("cli-viewer"));
    let out = command(dir.path()).args(["token", "revoke", "no-such-token"]).output().await.unwrap();
    assert!(!out.status.success());
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

#[tokio::test]
async fn every_answer_that_carries_a_credential_says_no_store() {
    let fake = FakeProvider::start().await;
    let s = Server::start().await;
    let oauth = oauth2_authorization(&s, &fake, json!({})).await;
    authorize(&s, &oauth).await;
    let basic =
        s.create("authorizations", json!({"type": "basic", "name": "b", "username": "u", "password": "p"})).await;
    let sign = json!({"method": "GET", "url": "https://api.example/items"}).to_string().into_bytes();
    let calls: Vec<(Method, String, Option<Vec<u8>>)> = vec![
        (Method::POST, action(&basic, "sign"), Some(sign.clone())),
        (Method::POST, action(&oauth, "sign"), Some(sign)),
        (Method::GET, action(&oauth, "token"), None),
        (Method::GET, "/api/v1/authorizations/by-key/Acme/fake/token".into(), None),
        (
            Method::POST,
            "/api/v1/api-tokens".into(),
            Some(json!({"name": "n", "role": "viewer"}).to_string().into_bytes()),
        ),
    ];
    for (method, path, body) in calls {
        let r = s.request_with(method.clone(), &path, body, Some(TOKEN), &[]).await;
        assert!((200..300).contains(&r.status), "{method} {path}: {}", r.text);
        assert!(header(&r, "cache-control").contains("no-store"), "{method} {path}: {:?}", r.headers);
    }
}

#[tokio::test]
async fn values_captured_by_a_generic_callback_are_sealed_and_reach_only_connection_templates() {
    let echo = Echo::start().await;
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_in(dir.path(), &[]).await.unwrap_or_else(|r| panic!("{}", r.stderr));
    let captured = "CAPT-6b2e-captured-value";
    let client = s
        .create(
            "clients",
            json!({"type": "generic", "name": "g", "provider": {"type": "generic", "namespace": "G", "name": "Generic",
            "authorization_endpoint": "https://consent.example/start"}}),
        )
        .await;
    let auth = s
        .create(
            "authorizations",
            json!({"type": "generic", "name": "gen", "client": client["id"], "capture": ["shop_id"]}),
        )
        .await;
    let url = start_flow(&s, &auth).await;
    let callback = query_param(&url, "redirect_uri").unwrap();
    assert!(callback.starts_with(&format!("{}/oauth/callback/", s.base)), "{callback}");
    let state = callback.rsplit('/').next().unwrap().to_owned();
    let landing = visit(&browser(), &format!("{callback}?shop_id={captured}&ignored=x")).await;
    assert_eq!(landing.param("status").as_deref(), Some("authorized"), "{}", landing.url);

    let rec = record(&s, &auth).await;
    assert_eq!(rec["secrets"]["captured"], true, "{rec}");
    assert!(!rec.to_string().contains(captured), "{rec}");
    let params = rec["template_parameters"].as_array().cloned().unwrap_or_default();
    assert!(params.iter().all(|p| p["key"] != "shop_id"), "{rec}");

    // A connection's headers read it as {{callback.shop_id}}; its URL may not.
    let r = s
        .post(
            "/api/v1/connections",
            json!({"name": "leak", "url": format!("{}/api/{{{{callback.shop_id}}}}", echo.base), "authorization": auth["id"]}),
        )
        .await;
    assert_eq!((r.status, r.code()), (422, "validation_failed"), "{}", r.text);
    let connection = s
        .create(
            "connections",
            json!({"name": "shop", "url": format!("{}/api", echo.base), "authorization": auth["id"],
            "headers": [{"key": "X-Shop", "value": "{{callback.shop_id}}"}]}),
        )
        .await;
    let r = s.get(&proxy_path(&connection, "orders")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(echo.seen()[0].header("x-shop"), Some(captured));

    s.get("/api/v1/authorizations?per_page=100").await;
    s.post("/api/v1/authorizations/export", json!({})).await;
    assert!(!s.seen.lock().unwrap().join("\n").contains(captured), "the captured value reached a response");
    let log = s.log_text();
    assert!(!log.contains(captured), "the captured value is in the log");
    assert!(!log.contains(&state), "the callback state is in the log");
    s.stop().await;
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap().to_string_lossy().starts_with("grantry.db") {
            bytes.extend(std::fs::read(path).unwrap());
        }
    }
    assert!(!String::from_utf8_lossy(&bytes).contains(captured), "the captured value is in the database in clear");
}

#[tokio::test]
async fn a_provided_secret_is_always_reported_updated() {
    let s = Server::start().await;
    let secret = "SECRET-4c7d-guessable";
    let client = s
        .create(
            "clients",
            json!({"type": "remote_oauth", "provider": slack_provider(), "name": "main", "identifier": CLIENT_ID, "secret": secret}),
        )
        .await;
    let path = format!("/api/v1/clients/{}", id(&client));
    tokio::time::sleep(Duration::from_millis(20)).await;
    let right = s.patch(&path, json!({"secret": secret})).await;
    assert_eq!(right.status, 200, "{}", right.text);
    assert_ne!(right.body["updated_at"], client["updated_at"], "a right guess looks like any change");
    tokio::time::sleep(Duration::from_millis(20)).await;
    let wrong = s.patch(&path, json!({"secret": "SECRET-wrong-guess"})).await;
    assert_ne!(wrong.body["updated_at"], right.body["updated_at"]);
    s.patch(&path, json!({"secret": secret})).await;

    let exported = s.post("/api/v1/clients/export", json!({})).await.body;
    let r = s.post("/api/v1/clients/import", exported.clone()).await;
    assert_eq!(r.body["unchanged"], 1, "without secrets an import changes nothing: {}", r.text);
    let mut guessed = exported;
    guessed[0]["secret"] = json!(secret);
    guessed[0]["identifier"] = json!(CLIENT_ID);
    let r = s.post("/api/v1/clients/import", guessed).await;
    assert_eq!((r.body["updated"].as_u64(), r.body["unchanged"].as_u64()), (Some(1), Some(0)), "{}", r.text);
}

// ---- a flow started in the UI belongs to that browser --------------------------------

/// The link a UI page sends the browser on with (`id="continue"`), unescaped.
fn continue_link(html: &str) -> String {
    let href = html.split("id=\"continue\" href=\"").nth(1).unwrap_or("").split('"').next().unwrap_or("");
    href.replace("&amp;", "&").replace("&#38;", "&").replace("&#x27;", "'")
}

#[tokio::test]
async fn a_flow_started_in_the_ui_completes_only_in_the_browser_session_that_started_it() {
    let fake = FakeProvider::start().await;
    let s = Server::start().await;
    let client = s
        .create(
            "clients",
            json!({"type": "remote_oauth", "name": "ui", "provider": fake.provider("Bound", json!({})),
                   "identifier": "bound-client-id", "secret": "bound-client-secret"}),
        )
        .await;
    let auth = s.create("authorizations", json!({"type": "oauth2", "name": "bound", "client": client["id"]})).await;
    let id = auth["id"].as_str().unwrap();
    // The person's browser keeps its cookies: the UI session and the flow cookie.
    let person = reqwest::Client::builder().cookie_store(true).build().unwrap();
    let signed_in = person.post(format!("{}/ui/login", s.base)).form(&[("token", TOKEN)]).send().await.unwrap();
    assert_eq!(signed_in.status(), 200, "signed in and on the client list");
    let start = |csrf: String| {
        let person = person.clone();
        let url = format!("{}/ui/authorizations/{id}/authorize", s.base);
        async move { person.post(url).form(&[("csrf", csrf)]).send().await.unwrap() }
    };
    let page = person.get(format!("{}/ui/authorizations/{id}", s.base)).send().await.unwrap().text().await.unwrap();
    let leave = start(csrf_of(&page)).await;
    let flow_cookie = leave.headers().get("set-cookie").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    assert!(flow_cookie.starts_with("grantry_flow=") && flow_cookie.contains("Path=/oauth/callback"), "{flow_cookie}");
    assert!(flow_cookie.contains("HttpOnly") && flow_cookie.contains("SameSite=Lax"), "{flow_cookie}");
    let link = continue_link(&leave.text().await.unwrap());
    assert!(link.starts_with(&fake.base), "{link}");

    // Someone else's browser that got hold of the link cannot finish the flow.
    let stranger = visit(&browser(), &link).await;
    assert_eq!(stranger.status, 400, "{}", stranger.body);
    assert!(stranger.body.contains("another browser session"), "{}", stranger.body);
    assert!(fake.seen().is_empty(), "no code was exchanged");
    assert_eq!(s.get(&format!("/api/v1/authorizations/{id}")).await.body["status"], "unauthorized");

    // The person starts again and finishes in their own browser.
    fake.answer(Answer::json(json!({"access_token": "bound-access", "expires_in": 3600})));
    let page = person.get(format!("{}/ui/authorizations/{id}", s.base)).send().await.unwrap().text().await.unwrap();
    let link = continue_link(&start(csrf_of(&page)).await.text().await.unwrap());
    let back = person.get(&link).send().await.unwrap();
    assert_eq!(back.status(), 200, "the callback's page that moves on to the UI");
    assert_eq!(fake.seen().len(), 1, "one code exchange");
    assert_eq!(s.get(&format!("/api/v1/authorizations/{id}")).await.body["status"], "authorized");
    // A flow started through the API (no browser session) is not bound.
    let r = s
        .post(&format!("/api/v1/authorizations/{id}/authorize"), json!({"return_to": "https://app.example/done"}))
        .await;
    fake.answer(Answer::json(json!({"access_token": "api-access", "expires_in": 3600})));
    let landing = visit(&browser(), r.body["authorize_url"].as_str().unwrap()).await;
    assert_eq!(landing.param("status").as_deref(), Some("authorized"), "{}", landing.url);
}

// ---- holes found when attacking the change ---------------------------------------------

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
async fn templates_that_would_crash_or_stall_the_process_get_an_answer() {
    let s = Server::start().await;
    let provider = s.create("providers", slack_provider()).await;
    let scope = |name: &str| json!({"provider": provider["id"], "name": name});
    // Non-ASCII inside a tag, an integer overflow, a huge date width, deep nesting by brackets.
    let crafted = [
        "{{é}}".to_owned(),
        "{% assign x = -9223372036854775808 | divided_by: -1 %}{{ x }}".to_owned(),
        "{% assign x = -9223372036854775808 | modulo: -1 %}{{ x }}".to_owned(),
        "{% assign d = 'now' | date: '%99999999999Y' %}{{ d }}".to_owned(),
        format!("{{{{ {}a{} }}}}", "a[".repeat(3000), "]".repeat(3000)),
        format!("{}x{}", "{% if a %}".repeat(1500), "{% endif %}".repeat(1500)),
        "{% ifchanged %}{% for i in (1..9000) %}xxxxxxxxxx{% endfor %}{% endifchanged %}".to_owned(),
    ];
    for (i, name) in crafted.iter().enumerate() {
        let started = Instant::now();
        let r = s.post("/api/v1/scopes", scope(&format!("{name}{i}"))).await;
        assert!(matches!(r.status, 201 | 422), "{}: {}", short(name), short(&r.text));
        assert!(started.elapsed() < Duration::from_secs(2), "{}", short(name));
        assert_eq!(s.request(Method::GET, "/healthz", None, None).await.status, 200, "still serving");
    }
    // Text that Liquid and Grantry's lexer could read differently is refused.
    for name in ["{% raw %}{%{% endraw %}{{ p }}", "{% comment %}x{% endcomment %}", "{{ '{% if %}' }}"] {
        let r = s.post("/api/v1/scopes", scope(name)).await;
        assert_eq!(r.status, 422, "{name}: {}", short(&r.text));
    }
}

#[tokio::test]
async fn a_render_error_never_quotes_the_values_it_was_given() {
    let fake = FakeProvider::start().await;
    let s = Server::start().await;
    // A date format built from the client secret: the standard filter would quote it in its error.
    let header = json!([{"key": "X-Date", "value": "{% assign f = secret | split: '' | join: '.' | append: '%Q%' %}{{ 'now' | date: f }}"}]);
    let auth = oauth2_authorization(&s, &fake, json!({"request_token_headers": header})).await;
    s.patch(&format!("/api/v1/authorizations/{}", id(&auth)), json!({"grant_type": "client_credentials"})).await;
    let r = s.post(&action(&auth, "authorize"), json!({})).await;
    let dotted: String = CLIENT_SECRET.chars().map(|c| format!("{c}.")).collect();
    let dotted = dotted.trim_end_matches('.');
    let record = record(&s, &auth).await.to_string();
    let notes = s.get("/api/v1/notifications").await.text;
    for text in [&r.text, &record, &notes, &s.log_text()] {
        assert!(!text.contains(dotted) && !text.contains(CLIENT_SECRET), "{}", short(text));
    }
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
async fn many_in_conditions_together_are_bounded_too() {
    let s = Server::start().await;
    let values = (0..1000).map(|i| i.to_string()).collect::<Vec<_>>().join(",");
    let query = (0..4).map(|_| format!("name[in]={values}")).collect::<Vec<_>>().join("&");
    let r = s.get(&format!("/api/v1/providers?{query}")).await;
    assert_eq!((r.status, r.code()), (400, "bad_request"), "{}", short(&r.text));
    assert!(!r.text.to_lowercase().contains("sql"));
}

#[tokio::test]
async fn behind_a_trusted_proxy_failures_count_for_the_forwarded_client_and_otherwise_the_header_is_ignored() {
    async fn failing(s: &Server, forwarded: String) -> u16 {
        let headers = [("X-Forwarded-For", forwarded.as_str())];
        s.request_with(Method::GET, "/api/v1/providers", None, Some("wrong"), &headers).await.status
    }
    // Without trusted proxies a caller cannot dodge the count by naming another address.
    let direct = Server::start().await;
    for i in 0..10 {
        assert_eq!(failing(&direct, format!("203.0.113.{i}")).await, 401);
    }
    assert_eq!(failing(&direct, "203.0.113.99".into()).await, 429);

    // Behind a trusted proxy, one client's failures shut out that client only.
    let proxied = Server::start_with(&[("GRANTRY_TRUSTED_PROXIES", "127.0.0.1/32")]).await;
    for _ in 0..10 {
        assert_eq!(failing(&proxied, "198.51.100.7, 127.0.0.1".into()).await, 401);
    }
    assert_eq!(failing(&proxied, "198.51.100.7".into()).await, 429);
    let other = proxied
        .request_with(Method::GET, "/api/v1/providers", None, Some(TOKEN), &[("X-Forwarded-For", "198.51.100.8")])
        .await;
    assert_eq!(other.status, 200, "another client behind the same proxy still gets in");
}

#[tokio::test]
async fn an_import_full_of_slow_templates_is_checked_within_one_budget() {
    let s = Server::start().await;
    let slow =
        "{% for i in (1..9999) %}{% assign x = 'abcdefghijklmnopqrstuvwxyz' | sha256 | sha256 | sha256 %}{% endfor %}";
    let providers: Vec<Value> = (0..300)
        .map(|i| {
            json!({"type": "generic", "namespace": "Slow", "name": format!("p{i}"),
                        "authorization_endpoint": format!("https://slow.example/{i}/{slow}")})
        })
        .collect();
    let started = Instant::now();
    let r = s.post("/api/v1/providers/import", json!(providers)).await;
    let took = started.elapsed();
    assert_eq!(r.status, 200, "{}", short(&r.text));
    assert!(took < Duration::from_secs(5), "the whole import took {took:?}");
    let failed = r.body["failed"].as_array().unwrap();
    assert!(!failed.is_empty(), "the budget ran out: {}", short(&r.text));
    assert!(failed.iter().all(|f| f["error"]["code"] == "template_too_expensive"), "{}", short(&r.text));
    assert_eq!(s.request(Method::GET, "/healthz", None, None).await.status, 200);
}

#[tokio::test]
async fn values_captured_before_sealing_are_sealed_on_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_in(dir.path(), &[]).await.unwrap_or_else(|r| panic!("{}", r.stderr));
    let client = s
        .create(
            "clients",
            json!({"type": "generic", "name": "g", "provider": {"type": "generic", "namespace": "Old", "name": "Old",
                   "authorization_endpoint": "https://old.example/authorize"}}),
        )
        .await;
    let auth = s
        .create(
            "authorizations",
            json!({"type": "generic", "name": "legacy", "client": client["id"], "capture": ["shop_id"]}),
        )
        .await;
    s.stop().await;
    // What an earlier version stored: the captured value as a plain template parameter.
    let script = r#"
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("""UPDATE records SET data = json_set(data, '$.template_parameters', json(?)) WHERE name = 'legacy'""",
    ('[{"key": "shop_id", "value": "legacy-captured-4242", "description": "captured from the callback"},'
     ' {"key": "region", "value": "eu", "description": ""}]',))
db.execute("DELETE FROM meta WHERE key = 'captured_sealed'")
db.commit()
"#;
    let out = tokio::process::Command::new(crate::oauth1_oracle::python())
        .args(["-c", script, dir.path().join("grantry.db").to_str().unwrap()])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let s = Server::start_in(dir.path(), &[]).await.unwrap_or_else(|r| panic!("{}", r.stderr));
    let record = s.get(&format!("/api/v1/authorizations/{}", id(&auth))).await.body;
    assert_eq!(record["template_parameters"], json!([{"key": "region", "value": "eu", "description": ""}]));
    assert_eq!(record["secrets"]["captured"], true);
    assert!(s.log_text().contains("sealed the captured callback values of 1 generic authorizations"));
    assert!(!s.seen.lock().unwrap().join("\n").contains("legacy-captured-4242"));
    s.stop().await;
}

// ---- holes found by the second attack ----------------------------------------------------

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

#[tokio::test]
async fn one_flow_step_renders_its_templates_within_one_budget() {
    let fake = FakeProvider::start().await;
    let s = Server::start().await;
    let heavy =
        "{% for i in (1..n) %}{% assign x = 'abcdefghijklmnopqrstuvwxyz' | sha256 | sha256 | sha256 %}{% endfor %}";
    let params: Vec<Value> = (0..100).map(|i| json!({"key": format!("p{i}"), "value": heavy})).collect();
    let headers: Vec<Value> = (0..100).map(|i| json!({"key": format!("X-H{i}"), "value": heavy})).collect();
    let auth = oauth2_authorization(
        &s,
        &fake,
        json!({"request_token_parameters": params, "request_token_headers": headers,
               "template_parameters": [{"key": "n", "value": "9999"}]}),
    )
    .await;
    s.patch(&format!("/api/v1/authorizations/{}", id(&auth)), json!({"grant_type": "client_credentials"})).await;
    let started = Instant::now();
    let authorize = action(&auth, "authorize");
    let (r, health) = tokio::join!(s.post(&authorize, json!({})), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        health_latency(&s.base).await
    });
    assert!(started.elapsed() < Duration::from_secs(3), "the step took {:?}", started.elapsed());
    assert!(health < Duration::from_secs(1), "/healthz took {health:?}");
    assert_eq!(r.body["last_error"]["error"], "template_too_expensive", "{}", short(&r.text));
    assert!(fake.seen().is_empty(), "no request went out");
}

#[tokio::test]
async fn behind_a_trusted_proxy_an_entry_that_is_no_address_ends_the_walk() {
    let s = Server::start_with(&[("GRANTRY_TRUSTED_PROXIES", "127.0.0.1/32")]).await;
    // The caller puts a fresh address in front each time; the proxy appended `unknown`.
    for i in 0..10 {
        let forwarded = format!("203.0.113.{i}, unknown");
        let r = s
            .request_with(Method::GET, "/api/v1/providers", None, Some("wrong"), &[("X-Forwarded-For", &forwarded)])
            .await;
        assert_eq!(r.status, 401);
    }
    let r = s
        .request_with(
            Method::GET,
            "/api/v1/providers",
            None,
            Some(TOKEN),
            &[("X-Forwarded-For", "203.0.113.77, unknown")],
        )
        .await;
    assert_eq!(r.status, 429, "counted for the last trusted hop, not the caller's pick");
    // A port after the address is the address.
    let r = s
        .request_with(Method::GET, "/api/v1/providers", None, Some(TOKEN), &[("X-Forwarded-For", "198.51.100.9:4711")])
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn a_sort_of_many_fields_is_a_bad_request() {
    let s = Server::start().await;
    let sort = vec!["name"; 2001].join(",");
    let r = s.get(&format!("/api/v1/providers?sort={sort}")).await;
    assert_eq!((r.status, r.code()), (400, "bad_request"), "{}", short(&r.text));
}
