//! A hand-written fake OAuth 2.0 provider, used only for what a real provider
//! cannot be made to do on demand: GET token requests, form-encoded or odd
//! answers, errors inside a 200, 5xx, slowness, `invalid_grant`, and counting
//! exactly how many token requests arrive. Everything else is tested against
//! the real `oidc-provider` (see `oidc.rs`).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{any, get};
use axum::Router;
use serde_json::json;

/// One scripted answer of the token endpoint.
#[derive(Clone)]
pub struct Answer {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
    pub delay: Duration,
}

impl Answer {
    pub fn json(body: serde_json::Value) -> Answer {
        Answer { status: 200, content_type: "application/json", body: body.to_string(), delay: Duration::ZERO }
    }
    pub fn status(mut self, status: u16) -> Answer {
        self.status = status;
        self
    }
    pub fn form(body: &str) -> Answer {
        Answer {
            status: 200,
            content_type: "application/x-www-form-urlencoded",
            body: body.to_owned(),
            delay: Duration::ZERO,
        }
    }
    pub fn slow(mut self, delay: Duration) -> Answer {
        self.delay = delay;
        self
    }
}

/// A token request as the fake saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub query: String,
    pub body: String,
    pub authorization: Option<String>,
    pub headers: Vec<(String, String)>,
}

impl Seen {
    /// A form parameter from the body, or the query for GET requests.
    pub fn param(&self, key: &str) -> Option<String> {
        let source = if self.method == "GET" { &self.query } else { &self.body };
        url::form_urlencoded::parse(source.as_bytes()).find(|(k, _)| k == key).map(|(_, v)| v.into_owned())
    }
}

#[derive(Default)]
struct Inner {
    answers: VecDeque<Answer>,
    seen: Vec<Seen>,
    revoked: Vec<String>,
    counter: u64,
}

#[derive(Clone, Default)]
pub struct FakeProvider {
    inner: Arc<Mutex<Inner>>,
    pub base: String,
}

impl FakeProvider {
    pub async fn start() -> FakeProvider {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let fake = FakeProvider { inner: Arc::default(), base };
        let app = Router::new()
            .route("/authorize", get(authorize))
            .route("/token", any(token))
            .route("/revoke", any(revoke))
            .with_state(fake.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        fake
    }

    /// Queues answers of the token endpoint; when none is queued it issues a
    /// fresh token pair that lives 3600 s.
    pub fn answer(&self, answer: Answer) {
        self.inner.lock().unwrap().answers.push_back(answer);
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.inner.lock().unwrap().seen.clone()
    }

    pub fn revoked(&self) -> Vec<String> {
        self.inner.lock().unwrap().revoked.clone()
    }

    /// The provider record for this fake, as Grantry's API takes it.
    pub fn provider(&self, namespace: &str, extra: serde_json::Value) -> serde_json::Value {
        let mut p = json!({
            "type": "oauth2", "namespace": namespace, "name": "Fake",
            "authorization_endpoint": format!("{}/authorize", self.base),
            "token_endpoint": format!("{}/token", self.base),
            "revocation_endpoint": format!("{}/revoke", self.base),
            "refresh_token_strategy": "default"
        });
        for (k, v) in extra.as_object().unwrap() {
            p[k] = v.clone();
        }
        p
    }
}

/// Consents at once: straight back to the redirect URI with a code.
async fn authorize(Query(q): Query<Vec<(String, String)>>) -> Response {
    let get = |k: &str| q.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone()).unwrap_or_default();
    let mut target = url::Url::parse(&get("redirect_uri")).unwrap();
    target.query_pairs_mut().append_pair("code", "fake-code").append_pair("state", &get("state"));
    Redirect::to(target.as_str()).into_response()
}

async fn token(
    State(fake): State<FakeProvider>,
    method: Method,
    headers: HeaderMap,
    uri: axum::http::Uri,
    body: String,
) -> Response {
    let answer = {
        let mut inner = fake.inner.lock().unwrap();
        inner.seen.push(Seen {
            method: method.to_string(),
            query: uri.query().unwrap_or("").to_owned(),
            body,
            authorization: headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned),
            headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned())).collect(),
        });
        inner.counter += 1;
        let n = inner.counter;
        inner.answers.pop_front().unwrap_or_else(|| {
            Answer::json(json!({"access_token": format!("access-{n}"), "refresh_token": format!("refresh-{n}"), "token_type": "Bearer", "expires_in": 3600}))
        })
    };
    if !answer.delay.is_zero() {
        tokio::time::sleep(answer.delay).await;
    }
    (StatusCode::from_u16(answer.status).unwrap(), [("content-type", answer.content_type)], answer.body).into_response()
}

async fn revoke(State(fake): State<FakeProvider>, body: String) -> StatusCode {
    fake.inner.lock().unwrap().revoked.push(body);
    StatusCode::OK
}
