#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Domain tests of the flows on the ports' second implementations: the
//! in-memory store, the manual clock (its `sleep` moves time at once), and the
//! two fakes below. The integration tests (crates/grantry/tests) drive the
//! real provider fake over HTTP, the real keyring and SQLite; these pin the
//! decisions (when to refresh, single flight, re-reads, state expiry, retry
//! backoff) without timing, network or database, so a race or a wait is
//! staged step by step instead of hoped for.

mod flights;
mod refresh;
mod states;

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use time::macros::datetime;

use super::{Authorized, CallbackOutcome, FlowSettings, Flows, FreshToken, Start};
use crate::access::{Caller, Role};
use crate::ports::memory::MemoryStore;
use crate::ports::testing::ManualClock;
use crate::ports::{
    seal_context, Clock, HttpRequest, HttpResponse, HttpSend, Notification, NotificationQuery, Sealer, SendError, Store,
};
use crate::service::Records;
use crate::{Error, ErrorCode, Id, Kind, Record, Sealed};

pub(super) const TOKEN_ENDPOINT: &str = "https://provider.example/token";
pub(super) const PUBLIC_URL: &str = "https://grantry.example";
/// Every token answer lives an hour; the margin refreshes in its last 5 minutes.
pub(super) const LIFETIME: Duration = Duration::from_secs(3600);
pub(super) const MARGIN: Duration = Duration::from_secs(300);
pub(super) const BACKOFF: [Duration; 2] = [Duration::from_secs(1), Duration::from_secs(2)];

/// A sealer whose output can be read back by eye and by the test: a fake
/// because the keyring (grantry-crypto) is not a dependency of the domain,
/// and the flows only need seal/open to round-trip under the right context.
pub(super) struct FakeSealer;

impl Sealer for FakeSealer {
    fn seal(&self, plaintext: &str, context: &str) -> Result<Sealed, Error> {
        Ok(Sealed(format!("sealed:{}", STANDARD.encode(format!("{context}\0{plaintext}")))))
    }
    fn open(&self, sealed: &Sealed, context: &str) -> Result<SecretString, Error> {
        let text = sealed.0.strip_prefix("sealed:").and_then(|b| STANDARD.decode(b).ok());
        let text = text.and_then(|b| String::from_utf8(b).ok()).ok_or_else(|| Error::Internal("not sealed".into()))?;
        match text.split_once('\0') {
            Some((c, plain)) if c == context => Ok(SecretString::from(plain.to_owned())),
            _ => Err(Error::Internal(format!("sealed under another context than {context}"))),
        }
    }
}

/// A scripted provider: answers from a queue, in order, and logs every
/// request. A fake rather than the integration tests' HTTP provider so that a
/// test can hold a request in flight (`hold`, then `let_through` or `open`) while it
/// stages what other callers or writers do meanwhile.
pub(super) struct FakeHttp {
    answers: Mutex<VecDeque<Result<HttpResponse, SendError>>>,
    sent: Mutex<Vec<HttpRequest>>,
    held: AtomicBool,
    permits: tokio::sync::Semaphore,
}

impl FakeHttp {
    pub(super) fn new() -> FakeHttp {
        FakeHttp {
            answers: Mutex::default(),
            sent: Mutex::default(),
            held: AtomicBool::new(false),
            permits: tokio::sync::Semaphore::new(0),
        }
    }
    pub(super) fn answer(&self, answer: Result<HttpResponse, SendError>) {
        self.answers.lock().unwrap().push_back(answer);
    }
    pub(super) fn answer_json(&self, status: u16, body: Value) {
        let body = body.to_string().into_bytes();
        self.answer(Ok(HttpResponse { status, content_type: "application/json".into(), body }));
    }
    pub(super) fn sent(&self) -> Vec<HttpRequest> {
        self.sent.lock().unwrap().clone()
    }
    /// From now on every request waits (after it is logged) for `let_through`.
    pub(super) fn hold(&self) {
        self.held.store(true, Ordering::SeqCst);
    }
    /// Lets every request through from now on, held or not.
    pub(super) fn open(&self) {
        self.held.store(false, Ordering::SeqCst);
        self.permits.add_permits(tokio::sync::Semaphore::MAX_PERMITS / 2);
    }
    /// Lets `n` held requests (the earliest first) take their answers.
    pub(super) fn let_through(&self, n: usize) {
        self.permits.add_permits(n);
    }
}

#[async_trait::async_trait]
impl HttpSend for FakeHttp {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, SendError> {
        self.sent.lock().unwrap().push(request);
        if self.held.load(Ordering::SeqCst) {
            self.permits.acquire().await.unwrap().forget();
        }
        let next = self.answers.lock().unwrap().pop_front();
        // Refused is never retried: an unscripted request shows up as a failure.
        next.unwrap_or_else(|| Err(SendError::Refused("the fake provider has no answer left".into())))
    }
}

/// A token answer that lives `LIFETIME`.
pub(super) fn tokens(access: &str, refresh: Option<&str>) -> Value {
    tokens_for(access, refresh, LIFETIME)
}

pub(super) fn tokens_for(access: &str, refresh: Option<&str>, lifetime: Duration) -> Value {
    let mut body = json!({"access_token": access, "token_type": "bearer", "expires_in": lifetime.as_secs()});
    if let Some(r) = refresh {
        body["refresh_token"] = json!(r);
    }
    body
}

/// A form parameter of a request's body.
pub(super) fn param(request: &HttpRequest, key: &str) -> Option<String> {
    let body = request.body.as_deref().unwrap_or_default();
    url::form_urlencoded::parse(body).find(|(k, _)| k == key).map(|(_, v)| v.into_owned())
}

/// Yields (never sleeps) until `done` holds; panics if it never does.
pub(super) async fn until(what: &str, done: impl Fn() -> bool) {
    for _ in 0..100_000 {
        if done() {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("never happened: {what}");
}

/// The result of a spawned flow; panics (rather than hangs) if it never ends,
/// e.g. because it sent a request the test holds and never lets through.
pub(super) async fn done<T>(task: tokio::task::JoinHandle<T>) -> T {
    until("the task ends", || task.is_finished()).await;
    task.await.unwrap()
}

/// How many callers of `flows` are in the single flight of `id`, holding or
/// awaiting its mutex (the map's own handle is not one).
pub(super) fn in_flight(flows: &Flows, id: &Id) -> usize {
    flows.refreshing.lock().unwrap().get(id).map_or(0, |flight| Arc::strong_count(flight) - 1)
}

pub(super) fn state_code(result: Result<impl Sized, Error>) -> ErrorCode {
    match result {
        Err(Error::State { code, .. }) => code,
        Err(e) => panic!("expected a state error, got {e:?}"),
        Ok(_) => panic!("expected a state error, got success"),
    }
}

/// The services as `grantry serve` builds them, on ports that tests drive.
pub(super) struct World {
    pub(super) store: Arc<MemoryStore>,
    pub(super) clock: Arc<ManualClock>,
    pub(super) http: Arc<FakeHttp>,
    pub(super) flows: Arc<Flows>,
    pub(super) records: Arc<Records>,
    /// An application's API token: it may read tokens, not run flows.
    pub(super) app: Caller,
}

impl World {
    pub(super) fn new() -> World {
        let store = Arc::new(MemoryStore::new());
        let clock = Arc::new(ManualClock::at(datetime!(2030-01-01 08:00 UTC)));
        let http = Arc::new(FakeHttp::new());
        let (flows, records) = Self::process(&store, &clock, &http);
        let app = Caller::api_token(Id::generate(), "app".into(), Role::Integration, None);
        World { store, clock, http, flows, records, app }
    }

    /// Another Grantry process on the same store, clock and provider.
    pub(super) fn other_process(&self) -> Arc<Flows> {
        Self::process(&self.store, &self.clock, &self.http).0
    }

    fn process(store: &Arc<MemoryStore>, clock: &Arc<ManualClock>, http: &Arc<FakeHttp>) -> (Arc<Flows>, Arc<Records>) {
        let (store, clock): (Arc<dyn Store>, Arc<dyn Clock>) = (store.clone(), clock.clone());
        let sealer: Arc<dyn Sealer> = Arc::new(FakeSealer);
        let records = Arc::new(Records::new(store, sealer.clone(), clock.clone()));
        let settings = FlowSettings {
            public_url: PUBLIC_URL.into(),
            refresh_margin: time::Duration::try_from(MARGIN).unwrap(),
            retry_backoff: BACKOFF.to_vec(),
            return_to_origins: vec![],
        };
        (Arc::new(Flows::new(records.clone(), sealer, clock, http.clone(), settings)), records)
    }

    /// A provider (`refresh_token_strategy` as given), its client and an
    /// unauthorized authorization_code authorization, created as the API does.
    pub(super) async fn authorization(&self, strategy: &str) -> Id {
        let admin = Caller::operator();
        let provider = json!({
            "type": "oauth2", "namespace": "Fake", "name": "Fake",
            "authorization_endpoint": "https://provider.example/authorize",
            "token_endpoint": TOKEN_ENDPOINT, "refresh_token_strategy": strategy
        });
        let provider = self.records.create(&admin, Kind::Provider, &provider).await.unwrap();
        let client = json!({
            "type": "remote_oauth", "name": "main", "provider": provider.id.to_string(),
            "identifier": "client-id", "secret": "client-secret"
        });
        let client = self.records.create(&admin, Kind::Client, &client).await.unwrap();
        let auth = json!({"type": "oauth2", "namespace": "Acme", "name": "crm", "client": client.id.to_string()});
        self.records.create(&admin, Kind::Authorization, &auth).await.unwrap().id
    }

    /// Authorize: the state of the authorize URL it answers.
    pub(super) async fn start(&self, id: &Id) -> String {
        let Authorized::Redirect(url) = self.flows.authorize(&Caller::operator(), id, &Start::default()).await.unwrap()
        else {
            panic!("an authorization_code grant sends the browser to the provider");
        };
        let url = url::Url::parse(&url).unwrap();
        url.query_pairs().find(|(k, _)| k == "state").map(|(_, v)| v.into_owned()).unwrap()
    }

    pub(super) async fn callback(&self, state: &str) -> Result<CallbackOutcome, Error> {
        self.flows.callback(&[("state".into(), state.into()), ("code".into(), "c".into())], None).await
    }

    /// An authorization authorized through Authorize and the callback, holding
    /// access token `a1` and refresh token `r1` for an hour from now.
    pub(super) async fn authorized(&self, strategy: &str) -> Id {
        let id = self.authorization(strategy).await;
        let state = self.start(&id).await;
        self.http.answer_json(200, tokens("a1", Some("r1")));
        assert!(self.callback(&state).await.unwrap().authorized);
        id
    }

    pub(super) async fn record(&self, id: &Id) -> Record {
        self.store.get(Kind::Authorization, id).await.unwrap().unwrap()
    }

    pub(super) async fn secret(&self, id: &Id, field: &str) -> String {
        let record = self.record(id).await;
        FakeSealer.open(&record.secrets[field], &seal_context(id, field)).unwrap().expose_secret().to_owned()
    }

    pub(super) async fn notifications(&self, id: &Id) -> Vec<Notification> {
        let query = NotificationQuery { authorization_id: Some(id.clone()), page: 1, per_page: 100, level: None };
        self.store.list_notifications(&query).await.unwrap().0
    }

    /// Sets the clock to `before` the expiry of the access token stored now.
    pub(super) async fn to_before_expiry(&self, id: &Id, before: Duration) {
        let record = self.record(id).await;
        let expires_at = record.data["expires_at"].as_str().and_then(crate::parse_timestamp).unwrap();
        self.clock.set(expires_at - before);
    }

    pub(super) fn clock_now(&self) -> time::OffsetDateTime {
        self.clock.now()
    }

    /// `fresh_token` as the application calls it, on this process.
    pub(super) fn fresh(&self, id: &Id) -> impl Future<Output = Result<FreshToken, Error>> + Send + 'static {
        self.fresh_on(&self.flows, id)
    }

    /// `fresh_token` on the process `flows`.
    pub(super) fn fresh_on(
        &self,
        flows: &Arc<Flows>,
        id: &Id,
    ) -> impl Future<Output = Result<FreshToken, Error>> + Send + 'static {
        let (flows, app, id) = (flows.clone(), self.app.clone(), id.clone());
        async move { flows.fresh_token(&app, &id).await }
    }
}
