//! Regression tests of the security hardening (docs/concepts.md §3, §6, §8): every hole the issue
//! lists, tried as an attacker would, is refused, changes nothing and leaks nothing.

mod at_rest;
mod authentication;
mod destinations;
mod flows;
mod leaks;
mod limits;
mod proxy;
mod roles;
mod tokens;

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, Method as RemoteMethod, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::Router;
use serde_json::{json, Value};

use crate::fake_provider::FakeProvider;
use crate::harness::{browser, visit, Landing, Response, Server};

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

/// At most the first 500 characters, for failure messages about big answers.
fn short(text: &str) -> String {
    text.chars().take(500).collect()
}

fn url_encoded(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
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

fn csrf_of(html: &str) -> String {
    html.split("name=\"csrf\" value=\"").nth(1).unwrap_or("").split('"').next().unwrap_or("").to_owned()
}
