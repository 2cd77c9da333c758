//! The OAuth 2.0 flows of SPEC §4 on stored authorizations: authorize,
//! callback, fresh token with single-flight refresh, forced refresh, cancel
//! with revocation, and the notifications they raise.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use rand::RngCore as _;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use sha2::Digest as _;
use time::OffsetDateTime;

use crate::oauth2::{
    self, ClientAuth, Freshness, Grant, Pointers, ProviderError, ProviderSettings, TokenSet, Vars, STANDARD_POINTERS,
};
use crate::ports::{seal_context, Clock, HttpMethod, HttpRequest, HttpResponse, HttpSend, Sealer, SendError};
use crate::ports::{Notification, NotificationQuery, PendingState, Store};
use crate::scrub::Scrubber;
use crate::service::{label, Page, Records};
use crate::template::{HostParameter, Position};
use crate::{timestamp, Error, Id, Kind, NaturalKey, Record};

/// How long an authorize request's state is good for.
pub(crate) const STATE_TTL: time::Duration = time::Duration::minutes(10);
/// How long one process may hold an authorization's refresh lease.
const LEASE: time::Duration = time::Duration::seconds(30);

pub struct FlowSettings {
    /// Grantry's public URL; the callback is `<public_url>/oauth/callback`.
    pub public_url: String,
    /// Refresh tokens that expire within this margin.
    pub refresh_margin: time::Duration,
    /// Waits between attempts when the provider is unreachable or answers 5xx.
    pub retry_backoff: Vec<Duration>,
    /// Origins (`https://app.example`) that `return_to` may lead to, besides the public URL's.
    pub return_to_origins: Vec<String>,
}

/// The answer of the fresh-token endpoint, as JSON text: it is built once per
/// token and served from memory until the token changes.
#[derive(Clone, Debug)]
pub struct FreshToken(pub Arc<str>);

/// What "Authorize" leads to.
pub enum Authorized {
    /// Send the browser here.
    Redirect(String),
    /// No browser needed (client credentials): the record as it is now.
    Record(Value),
}

/// Where the callback sends the browser, and what to tell it.
pub struct CallbackOutcome {
    pub authorization_id: Id,
    pub authorized: bool,
    pub error: Option<String>,
    pub return_to: Option<String>,
}

/// The authorization, its client and the client's provider.
pub(crate) struct Parts {
    pub(crate) auth: Record,
    pub(crate) client: Record,
    pub(crate) provider: Record,
    /// The authorization's scopes, in their order.
    pub(crate) scopes: Vec<Record>,
}

pub struct Flows {
    pub(crate) records: Arc<Records>,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) sealer: Arc<dyn Sealer>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) http: Arc<dyn HttpSend>,
    pub(crate) settings: FlowSettings,
    /// One refresh at a time per authorization within this process; the lease
    /// in the store does the same across processes.
    refreshing: Mutex<HashMap<Id, Arc<tokio::sync::Mutex<()>>>>,
    /// Authorizations recently read for their token, so that the hot path of
    /// fresh tokens needs no database round trip. Every write here replaces
    /// the entry; a write by another process is seen within `CACHE_TTL`.
    cache: std::sync::RwLock<HashMap<Id, Cached>>,
}

/// An authorization as last read, with its token answer ready when it has one.
#[derive(Clone)]
struct Cached {
    at: std::time::Instant,
    record: Arc<Record>,
    view: Option<FreshToken>,
    expires_at: Option<OffsetDateTime>,
}

/// How long a cached authorization is trusted without reading it again.
const CACHE_TTL: Duration = Duration::from_secs(1);

pub(crate) fn state_error(code: &'static str, message: impl Into<String>) -> Error {
    Error::State { code, message: message.into() }
}

pub(crate) fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub(crate) fn hash_state(state: &str) -> String {
    sha2::Sha256::digest(state.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

impl Flows {
    pub fn new(
        records: Arc<Records>,
        sealer: Arc<dyn Sealer>,
        clock: Arc<dyn Clock>,
        http: Arc<dyn HttpSend>,
        settings: FlowSettings,
    ) -> Flows {
        let store = records.store().clone();
        Flows {
            records,
            store,
            sealer,
            clock,
            http,
            settings,
            refreshing: Mutex::new(HashMap::new()),
            cache: Default::default(),
        }
    }

    pub fn callback_url(&self) -> String {
        format!("{}/oauth/callback", self.settings.public_url)
    }

    // ---- authorize and callback --------------------------------------------

    /// Where the browser goes back to must be Grantry's own origin or one
    /// the operator listed, over https (http only on loopback): issue 8, "Flows".
    fn check_return_to(&self, url: &str) -> Result<(), Error> {
        let parsed = url::Url::parse(url).ok();
        let loopback = |u: &url::Url| match u.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        };
        let secure = parsed.as_ref().is_some_and(|u| u.scheme() == "https" || (u.scheme() == "http" && loopback(u)));
        let origin = parsed.as_ref().map(|u| u.origin().ascii_serialization()).unwrap_or_default();
        let own = url::Url::parse(&self.settings.public_url).map(|u| u.origin().ascii_serialization()).ok();
        // Grantry's own origin is whatever the operator made the public URL.
        if own.as_deref() == Some(origin.as_str()) {
            return Ok(());
        }
        let listed =
            self.settings.return_to_origins.iter().any(|o| o.trim_end_matches('/').eq_ignore_ascii_case(&origin));
        if secure && listed {
            return Ok(());
        }
        Err(Error::field(
            "return_to",
            "must be an https URL (http only on loopback) on Grantry's own origin or an origin listed in \
             GRANTRY_RETURN_TO_ORIGINS",
        ))
    }

    /// Keeps a pending authorize request: found again by the hash of its
    /// state, single use, expiring after `STATE_TTL`; `binding` ties it to the
    /// browser that started it.
    pub(crate) async fn keep_pending(
        &self,
        state: &str,
        authorization_id: &Id,
        secret: Option<&str>,
        start: &Start<'_>,
    ) -> Result<(), Error> {
        let state_hash = hash_state(state);
        let code_verifier = match secret {
            Some(v) => Some(self.sealer.seal(v, &format!("state/{state_hash}"))?),
            None => None,
        };
        let now = self.clock.now();
        self.store
            .insert_state(&PendingState {
                state_hash,
                authorization_id: authorization_id.clone(),
                code_verifier,
                return_to: start.return_to.map(str::to_owned),
                binding_hash: start.binding.map(hash_state),
                created_at: now,
                expires_at: now + STATE_TTL,
            })
            .await?;
        Ok(())
    }

    pub async fn authorize(&self, id: &Id, start: &Start<'_>) -> Result<Authorized, Error> {
        if let Some(url) = start.return_to {
            self.check_return_to(url)?;
        }
        let auth = self.store.get(Kind::Authorization, id).await?.ok_or_else(|| not_found(id))?;
        match auth.rtype.as_str() {
            "oauth2" => {}
            "oauth1" => return self.authorize_oauth1(self.load_parts(auth).await?, start).await,
            "generic" => return self.authorize_generic(self.load_parts(auth).await?, start).await,
            other => {
                return Err(state_error(
                    "not_supported",
                    format!("a {other} authorization is authorized by setting its credentials, not by a flow"),
                ))
            }
        }
        let parts = self.load_parts(auth).await?;
        let (identifier, secret) = self.client_credentials(&parts.client)?;
        let vars = self.vars(&parts, &identifier, &secret);
        if parts.auth.text("grant_type") == "client_credentials" {
            let mut auth = parts.auth.clone();
            let result = self.client_credentials_grant(&parts, &identifier, &secret, &vars).await;
            match result {
                Ok(tokens) => self.store_tokens(&mut auth, tokens, true).await?,
                Err(failure) => {
                    self.record_failure(&mut auth, &failure, "failed").await?;
                }
            }
            return Ok(Authorized::Record(self.records.get(Kind::Authorization, id).await?));
        }
        let settings = provider_settings(&parts.provider);
        let scope = self.scope(&parts, &vars)?;
        let extra = authorize_parameters(&parts.auth, &vars)?;
        let state = random_token();
        let verifier = settings.pkce.then(random_token);
        let redirect_uri = self.callback_url();
        let url = oauth2::authorize_url(
            &oauth2::AuthorizeRequest {
                provider: &settings,
                client_id: &identifier,
                redirect_uri: &redirect_uri,
                scope: &scope,
                state: &state,
                code_verifier: verifier.as_deref(),
                extra: &extra,
            },
            &vars,
        )
        .map_err(misconfigured)?;
        self.keep_pending(&state, id, verifier.as_deref(), start).await?;
        Ok(Authorized::Redirect(url))
    }

    /// Handles the provider's redirect back. An unknown, used or expired state
    /// is an error and changes nothing.
    /// `binding` is the flow cookie the browser sent, if any: a request
    /// started from the UI completes only in the browser session that started it.
    pub async fn callback(&self, params: &[(String, String)], binding: Option<&str>) -> Result<CallbackOutcome, Error> {
        let get = |key: &str| params.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
        // OAuth 1.0a providers send back the request token instead of a state.
        // (and Twitter-style refusals only `denied=<request token>`).
        let state = get("state")
            .or_else(|| get("oauth_token"))
            .or_else(|| get("denied"))
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                Error::BadRequest("this callback has no state; start again from Grantry's Authorize".into())
            })?;
        let state_hash = hash_state(state);
        let pending = self.store.take_state(&state_hash).await?.ok_or_else(|| {
            Error::BadRequest(
                "this authorization request is unknown or was already used; start again from Authorize".into(),
            )
        })?;
        let expired = pending.expires_at < self.clock.now();
        if expired {
            return Err(Error::BadRequest(
                "this authorization request expired (after 10 minutes); start again from Authorize".into(),
            ));
        }
        if let Some(bound) = &pending.binding_hash {
            if binding.map(hash_state).as_deref() != Some(bound.as_str()) {
                return Err(Error::BadRequest(
                    "this authorization was started in another browser session; start again from Authorize in \
                     this browser"
                        .into(),
                ));
            }
        }
        let id = pending.authorization_id.clone();
        let mut outcome = CallbackOutcome {
            authorization_id: id.clone(),
            authorized: false,
            error: None,
            return_to: pending.return_to.clone(),
        };
        let auth = self.store.get(Kind::Authorization, &id).await?.ok_or_else(|| not_found(&id))?;
        match auth.rtype.as_str() {
            "oauth1" => return self.callback_oauth1(self.load_parts(auth).await?, &pending, params, outcome).await,
            "generic" => return self.callback_generic(auth, params, outcome).await,
            _ => {}
        }
        let parts = self.load_parts(auth).await?;
        let mut auth = parts.auth.clone();
        if let Some(error) = get("error") {
            let failure = Failure::Provider(ProviderError::new(0, error, get("error_description")));
            return self.callback_failed(&mut auth, failure, "unauthorized", outcome).await;
        }
        let Some(code) = get("code").filter(|c| !c.is_empty()) else {
            let failure = Failure::Provider(ProviderError::new(
                0,
                "invalid_request",
                Some("the callback carries neither code nor error"),
            ));
            return self.callback_failed(&mut auth, failure, "failed", outcome).await;
        };
        let verifier = match &pending.code_verifier {
            Some(sealed) => Some(self.sealer.open(sealed, &format!("state/{state_hash}"))?),
            None => None,
        };
        let (identifier, secret) = self.client_credentials(&parts.client)?;
        // What the provider sent back never becomes a variable (issue 8, "Sources stay apart").
        let vars = self.vars(&parts, &identifier, &secret);
        let redirect_uri = self.callback_url();
        let grant = Grant::AuthorizationCode {
            code,
            redirect_uri: &redirect_uri,
            code_verifier: verifier.as_ref().map(|v| v.expose_secret()),
        };
        let result = self.token_call(&parts, &identifier, &secret, &grant, &vars, &STANDARD_POINTERS).await;
        match result {
            Ok(tokens) => {
                self.store_tokens(&mut auth, tokens, true).await?;
                outcome.authorized = true;
            }
            Err(failure) => return self.callback_failed(&mut auth, failure, "failed", outcome).await,
        }
        Ok(outcome)
    }

    /// A callback that gives no new grant (`error=`, no code, a refused
    /// exchange). An authorization that is authorized keeps its grant: whoever
    /// holds the state of a new request cannot undo it (issue 8, "Flows").
    pub(crate) async fn callback_failed(
        &self,
        auth: &mut Record,
        failure: Failure,
        status: &str,
        mut outcome: CallbackOutcome,
    ) -> Result<CallbackOutcome, Error> {
        if auth.text("status") == "authorized" {
            let message = self.scrubber(&[&*auth]).await.scrub(&failure.message());
            self.notify(
                &auth.id,
                "warning",
                format!(
                    "a new authorization request for {} was refused ({message}); it stays authorized with its \
                     current grant",
                    label_of(auth)
                ),
            )
            .await;
            outcome.error = Some(message);
            return Ok(outcome);
        }
        outcome.error = Some(self.record_failure(auth, &failure, status).await?);
        Ok(outcome)
    }

    // ---- fresh token, refresh ---------------------------------------------

    /// A usable access token: refreshed first when it expires within the margin.
    pub async fn fresh_token(&self, id: &Id) -> Result<FreshToken, Error> {
        let cached = self.cache.read().unwrap_or_else(|p| p.into_inner()).get(id).cloned();
        let auth = match cached {
            Some(c) if c.at.elapsed() < CACHE_TTL => match c.view {
                // The hot path: no database read, no decryption, no write.
                Some(view)
                    if oauth2::freshness(c.expires_at, self.clock.now(), self.settings.refresh_margin, true)
                        == Freshness::Fresh =>
                {
                    return Ok(view)
                }
                _ => Record::clone(&c.record),
            },
            _ => {
                let record = self.store.get(Kind::Authorization, id).await?.ok_or_else(|| not_found(id))?;
                self.remember(&record);
                record
            }
        };
        self.serve_fresh(auth).await
    }

    fn remember(&self, record: &Record) {
        let usable = record.rtype == "oauth2" && record.text("status") == "authorized";
        let view = usable.then(|| self.token_view(record).ok()).flatten();
        let expires_at = record.data.get("expires_at").and_then(Value::as_str).and_then(crate::parse_timestamp);
        let entry = Cached { at: std::time::Instant::now(), record: Arc::new(record.clone()), view, expires_at };
        let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
        if cache.len() > 10_000 {
            cache.retain(|_, c| c.at.elapsed() < CACHE_TTL);
        }
        cache.insert(record.id.clone(), entry);
    }

    fn forget(&self, id: &Id) {
        self.cache.write().unwrap_or_else(|p| p.into_inner()).remove(id);
    }

    /// Writes an authorization changed by a flow.
    pub(crate) async fn save(&self, auth: &Record) -> Result<(), Error> {
        self.forget(&auth.id);
        self.store.update(auth).await?;
        self.forget(&auth.id);
        Ok(())
    }

    pub async fn fresh_token_by_key(&self, namespace: &str, name: &str) -> Result<FreshToken, Error> {
        let key = NaturalKey::Namespaced { namespace: namespace.trim().to_owned(), name: name.trim().to_owned() };
        let auth = self
            .store
            .find_by_key(Kind::Authorization, &key)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no authorization {namespace} | {name}")))?;
        self.serve_fresh(auth).await
    }

    async fn serve_fresh(&self, auth: Record) -> Result<FreshToken, Error> {
        if auth.rtype != "oauth2" {
            return Err(state_error(
                "not_supported",
                format!(
                    "a {} authorization has no bearer token to hand out; use sign or a connection's proxy",
                    auth.rtype
                ),
            ));
        }
        check_usable(&auth)?;
        let now = self.clock.now();
        let expires_at = auth.data.get("expires_at").and_then(Value::as_str).and_then(crate::parse_timestamp);
        // Most calls end here: no write, no outgoing request.
        if oauth2::freshness(expires_at, now, self.settings.refresh_margin, true) == Freshness::Fresh {
            return self.token_view(&auth);
        }
        let parts = self.parts(&auth.id).await?;
        match oauth2::freshness(expires_at, now, self.settings.refresh_margin, can_refresh(&parts)) {
            Freshness::Fresh | Freshness::Expiring => self.token_view(&auth),
            Freshness::Refresh => match self.refreshed(&auth.id, Some(auth.updated_at)).await {
                Ok(record) => self.token_view(&record),
                // The provider is away but the token still works: hand it out.
                Err(Error::Unavailable(_)) if expires_at.is_some_and(|t| t > now) => self.token_view(&auth),
                Err(e) => Err(e),
            },
            Freshness::Expired => {
                let mut auth = auth;
                set_status(&mut auth, "expired");
                auth.updated_at = now;
                self.save(&auth).await?;
                self.notify(
                    &auth.id,
                    "warning",
                    format!(
                        "the access token of {} expired and the provider cannot refresh it; authorize again",
                        auth.name
                    ),
                )
                .await;
                Err(state_error("token_expired", "the access token expired and cannot be refreshed; authorize again"))
            }
        }
    }

    /// Forces a refresh now.
    pub async fn refresh(&self, id: &Id) -> Result<Value, Error> {
        let parts = self.parts(id).await?;
        if !can_refresh(&parts) {
            return Err(state_error(
                "refresh_not_supported",
                format!(
                    "provider {} has refresh_token_strategy none; set it to default or custom to refresh",
                    label_of(&parts.provider)
                ),
            ));
        }
        check_usable(&parts.auth)?;
        self.refreshed(id, None).await?;
        self.records.get(Kind::Authorization, id).await
    }

    fn lock_for(&self, id: &Id) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.refreshing.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        map.retain(|_, lock| Arc::strong_count(lock) > 1);
        map.entry(id.clone()).or_default().clone()
    }

    /// Single flight: one refresh per authorization at a time, in this process
    /// (a mutex) and across processes (a lease in the store). A caller that saw
    /// the record at `seen` (its `updated_at`) and finds it changed by the time
    /// its turn comes takes the result of the refresh it waited for, even when
    /// the provider's tokens live shorter than the margin. `None` forces one.
    async fn refreshed(&self, id: &Id, seen: Option<OffsetDateTime>) -> Result<Record, Error> {
        let lock = self.lock_for(id);
        let _guard = lock.lock().await;
        let holder = Id::generate().to_string();
        let deadline = self.clock.now() + LEASE;
        let done_meanwhile = |auth: &Record| {
            seen.is_some_and(|seen| {
                let refreshed = auth.updated_at != seen && auth.text("status") == "authorized";
                refreshed || self.is_fresh(auth)
            })
        };
        loop {
            let parts = self.parts(id).await?;
            if done_meanwhile(&parts.auth) {
                return Ok(parts.auth);
            }
            let now = self.clock.now();
            if self.store.claim_refresh(id, &holder, now, now + LEASE).await? {
                // Read again under the lease: another process may have refreshed
                // (and rotated the refresh token) between the read above and the claim.
                let parts = self.parts(id).await?;
                let result = if done_meanwhile(&parts.auth) { Ok(parts.auth) } else { self.refresh_now(parts).await };
                let _ = self.store.release_refresh(id, &holder).await;
                return result;
            }
            if now > deadline {
                return Err(Error::Unavailable(
                    "another process has been refreshing this authorization for too long".into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn is_fresh(&self, auth: &Record) -> bool {
        let expires_at = auth.data.get("expires_at").and_then(Value::as_str).and_then(crate::parse_timestamp);
        auth.text("status") == "authorized"
            && oauth2::freshness(expires_at, self.clock.now(), self.settings.refresh_margin, true) == Freshness::Fresh
    }

    async fn refresh_now(&self, parts: Parts) -> Result<Record, Error> {
        let (identifier, secret) = self.client_credentials(&parts.client)?;
        let mut auth = parts.auth.clone();
        let result = if parts.auth.text("grant_type") == "client_credentials" {
            let vars = self.vars(&parts, &identifier, &secret);
            self.client_credentials_grant(&parts, &identifier, &secret, &vars).await
        } else {
            let used = self.open_secret(&auth, "refresh_token")?;
            let Some(used) = used else {
                let failure = Failure::Provider(ProviderError::new(
                    0,
                    "no_refresh_token",
                    Some("the provider gave no refresh token; authorize again"),
                ));
                let message = self.record_failure(&mut auth, &failure, "failed").await?;
                return Err(state_error("authorization_failed", message));
            };
            let first = self.refresh_call(&parts, &identifier, &secret, &used).await;
            match first {
                Err(Failure::Provider(ref e)) if e.is_invalid_grant() || matches!(e.status, 400 | 401) => {
                    // Another process may have rotated the refresh token meanwhile.
                    let current =
                        self.store.get(Kind::Authorization, &auth.id).await?.ok_or_else(|| not_found(&auth.id))?;
                    match self.open_secret(&current, "refresh_token")? {
                        Some(newer) if newer.expose_secret() != used.expose_secret() => {
                            auth = current;
                            let again = Parts { auth: auth.clone(), ..parts };
                            self.refresh_call(&again, &identifier, &secret, &newer).await
                        }
                        _ => first,
                    }
                }
                other => other,
            }
        };
        match result {
            Ok(tokens) => {
                self.store_tokens(&mut auth, tokens, false).await?;
                Ok(auth)
            }
            Err(Failure::TooExpensive(message)) => Err(state_error("template_too_expensive", message)),
            Err(Failure::Transient(message)) => {
                self.notify(
                    &auth.id,
                    "warning",
                    format!("refreshing {} failed for now ({message}); it stays as it was", auth.name),
                )
                .await;
                Err(Error::Unavailable(format!("the provider could not be reached to refresh the token: {message}")))
            }
            Err(failure) => {
                let message = self.record_failure(&mut auth, &failure, "failed").await?;
                Err(state_error(
                    "authorization_failed",
                    format!("the provider refused to refresh the token ({message}); the resource owner must authorize again"),
                ))
            }
        }
    }

    async fn refresh_call(
        &self,
        parts: &Parts,
        identifier: &str,
        secret: &str,
        refresh_token: &SecretString,
    ) -> Result<TokenSet, Failure> {
        let mut vars = self.vars(parts, identifier, secret);
        vars.set("refresh_token", refresh_token.expose_secret());
        if let Ok(Some(access)) = self.open_secret(&parts.auth, "access_token") {
            vars.set("access_token", access.expose_secret());
        }
        vars.set("token_type", parts.auth.text("token_type"));
        if parts.provider.text("refresh_token_strategy") == "custom" {
            let spec = parts.provider.data.get("refresh_request").cloned().unwrap_or(Value::Null);
            let hosts = provider_settings(&parts.provider).hosts;
            let request = oauth2::custom_refresh_request(&spec, &vars, &hosts).map_err(Failure::from)?;
            let pointers = Pointers {
                access_token: spec["access_token_pointer"].as_str().unwrap_or("/access_token"),
                expires_in: spec["expires_in_pointer"].as_str().unwrap_or("/expires_in"),
                refresh_token: spec["refresh_token_pointer"].as_str().unwrap_or("/refresh_token"),
                token_type: spec["token_type_pointer"].as_str().unwrap_or("/token_type"),
            };
            return self.send_for_tokens(request, &pointers).await;
        }
        let grant = Grant::RefreshToken { refresh_token: refresh_token.expose_secret() };
        self.token_call(parts, identifier, secret, &grant, &vars, &STANDARD_POINTERS).await
    }

    async fn client_credentials_grant(
        &self,
        parts: &Parts,
        identifier: &str,
        secret: &str,
        vars: &Vars,
    ) -> Result<TokenSet, Failure> {
        let scope = self.scope(parts, vars).map_err(|e| Failure::Config(e.to_string()))?;
        self.token_call(
            parts,
            identifier,
            secret,
            &Grant::ClientCredentials { scope: &scope },
            vars,
            &STANDARD_POINTERS,
        )
        .await
    }

    async fn token_call(
        &self,
        parts: &Parts,
        identifier: &str,
        secret: &str,
        grant: &Grant<'_>,
        vars: &Vars,
        pointers: &Pointers<'_>,
    ) -> Result<TokenSet, Failure> {
        let settings = provider_settings(&parts.provider);
        let client = ClientAuth { method: parts.provider.text("token_endpoint_auth_method"), identifier, secret };
        let pairs = |field: &str| {
            let list = parts.client.data.get(field).unwrap_or(&Value::Null);
            oauth2::render_pairs(field, list, vars, Position::Request).map_err(Failure::from)
        };
        let (params, headers) = (pairs("request_token_parameters")?, pairs("request_token_headers")?);
        let request =
            oauth2::token_request(&settings, &client, grant, &params, &headers, vars).map_err(Failure::from)?;
        self.send_for_tokens(request, pointers).await
    }

    /// Sends a token request; network faults and 5xx are retried with backoff.
    /// A failure is scrubbed of every value the request carried.
    async fn send_for_tokens(&self, request: HttpRequest, pointers: &Pointers<'_>) -> Result<TokenSet, Failure> {
        let mut attempt = 0;
        loop {
            let outcome = match self.http.send(request.clone()).await {
                Ok(response) => self.read_tokens(&response, pointers),
                Err(SendError::Transient(m)) => Err(Failure::Transient(m)),
                Err(SendError::Refused(m)) => Err(Failure::Config(m)),
            };
            match outcome {
                Err(Failure::Transient(_)) if attempt < self.settings.retry_backoff.len() => {
                    tokio::time::sleep(self.settings.retry_backoff[attempt]).await;
                    attempt += 1;
                }
                Err(failure) => return Err(failure.scrubbed(&request_scrubber(&request))),
                ok => return ok,
            }
        }
    }

    fn read_tokens(&self, response: &HttpResponse, pointers: &Pointers<'_>) -> Result<TokenSet, Failure> {
        oauth2::parse_token_response(response, pointers, self.clock.now()).map_err(|e| {
            if e.status >= 500 {
                Failure::Transient(format!("the provider answered HTTP {}", e.status))
            } else {
                Failure::Provider(e)
            }
        })
    }

    // ---- cancel -------------------------------------------------------------

    /// Revokes at the provider when it can (a failure is recorded, never blocks),
    /// then clears every token field.
    pub async fn cancel(&self, id: &Id) -> Result<Value, Error> {
        let auth = self.store.get(Kind::Authorization, id).await?.ok_or_else(|| not_found(id))?;
        if auth.rtype == "oauth1" {
            // RFC 5849 has no revocation: forgetting the token pair is all there is.
            let mut auth = auth;
            for field in ["access_token", "access_token_secret"] {
                auth.secrets.remove(field);
            }
            for field in ["realm_id", "authorized_at", "last_error"] {
                auth.data.remove(field);
            }
            set_status(&mut auth, "unauthorized");
            auth.updated_at = self.clock.now();
            self.save(&auth).await?;
            return self.records.get(Kind::Authorization, id).await;
        }
        let parts = self.parts(id).await?;
        let mut auth = parts.auth.clone();
        let revocation = parts.provider.text("revocation_endpoint").to_owned();
        let token = match self.open_secret(&auth, "refresh_token")? {
            Some(t) => Some((t, "refresh_token")),
            None => self.open_secret(&auth, "access_token")?.map(|t| (t, "access_token")),
        };
        if let (false, Some((token, hint))) = (revocation.is_empty(), token) {
            if let Err(message) = self.revoke(&parts, &revocation, token.expose_secret(), hint).await {
                self.notify(
                    id,
                    "warning",
                    format!("revoking the token of {} at the provider failed: {message}", auth.name),
                )
                .await;
            }
        }
        for field in ["access_token", "refresh_token", "id_token", "token_response"] {
            auth.secrets.remove(field);
        }
        for field in ["token_type", "expires_at", "granted_scope", "authorized_at", "last_error"] {
            auth.data.remove(field);
        }
        set_status(&mut auth, "unauthorized");
        auth.updated_at = self.clock.now();
        self.save(&auth).await?;
        self.records.get(Kind::Authorization, id).await
    }

    async fn revoke(&self, parts: &Parts, endpoint: &str, token: &str, hint: &str) -> Result<(), String> {
        let (identifier, secret) = self.client_credentials(&parts.client).map_err(|e| e.to_string())?;
        let vars = self.vars(parts, &identifier, &secret);
        let url = vars
            .render_url("revocation_endpoint", endpoint, &provider_settings(&parts.provider).hosts)
            .map_err(|e| e.to_string())?;
        let mut params = vec![("token".to_owned(), token.to_owned()), ("token_type_hint".to_owned(), hint.to_owned())];
        let mut headers = vec![("Content-Type".to_owned(), "application/x-www-form-urlencoded".to_owned())];
        let client = ClientAuth {
            method: parts.provider.text("token_endpoint_auth_method"),
            identifier: &identifier,
            secret: &secret,
        };
        oauth2::client_authentication(&client, &mut params, &mut headers);
        let request = HttpRequest {
            method: HttpMethod::Post,
            url,
            headers,
            body: Some(oauth2::encode_form(&params).into_bytes()),
        };
        let scrubber = request_scrubber(&request);
        match self.http.send(request).await {
            Ok(r) if r.status < 400 => Ok(()),
            Ok(r) => Err(format!("the revocation endpoint answered HTTP {}", r.status)),
            Err(e) => Err(scrubber.scrub(&e.to_string())),
        }
    }

    /// Deletes records; authorizations are cancelled first (SPEC §4.6).
    pub async fn delete(&self, kind: Kind, id: &Id) -> Result<(), Error> {
        self.forget(id);
        if kind == Kind::Authorization && self.store.get(kind, id).await?.is_some_and(|a| a.rtype == "oauth2") {
            self.cancel(id).await?;
        }
        self.records.delete(kind, id).await
    }

    pub async fn delete_many(&self, kind: Kind, selection: &crate::service::Selection) -> Result<u64, Error> {
        if kind == Kind::Authorization {
            self.cache.write().unwrap_or_else(|p| p.into_inner()).clear();
            for auth in self.records.select_records(kind, selection).await? {
                if auth.rtype == "oauth2" && auth.text("status") != "unauthorized" {
                    self.cancel(&auth.id).await?;
                }
            }
        }
        self.records.delete_many(kind, selection).await
    }

    // ---- notifications ------------------------------------------------------

    pub async fn notify(&self, id: &Id, level: &str, message: String) {
        let notification = Notification {
            id: Id::generate(),
            level: level.to_owned(),
            authorization_id: Some(id.clone()),
            message,
            created_at: self.clock.now(),
        };
        if let Err(e) = self.store.insert_notification(&notification).await {
            tracing::error!("a notification could not be stored: {e}");
        }
    }

    pub async fn notifications(&self, query: &NotificationQuery) -> Result<Page, Error> {
        let (items, total) = self.store.list_notifications(query).await?;
        let ids: Vec<Id> = items.iter().filter_map(|n| n.authorization_id.clone()).collect();
        let auths: HashMap<Id, Record> =
            self.store.get_many(&ids).await?.into_iter().map(|r| (r.id.clone(), r)).collect();
        let items = items
            .into_iter()
            .map(|n| {
                let authorization = n.authorization_id.as_ref().map(|id| match auths.get(id) {
                    Some(a) => json!({"id": id.as_str(), "namespace": a.namespace, "name": a.name}),
                    None => json!({"id": id.as_str()}),
                });
                json!({"id": n.id.as_str(), "level": n.level, "authorization": authorization, "message": n.message, "created_at": timestamp(n.created_at)})
            })
            .collect();
        Ok(Page { items, total, page: query.page, per_page: query.per_page })
    }

    // ---- helpers ------------------------------------------------------------

    async fn parts(&self, id: &Id) -> Result<Parts, Error> {
        let auth = self.store.get(Kind::Authorization, id).await?.ok_or_else(|| not_found(id))?;
        if auth.rtype != "oauth2" {
            return Err(state_error(
                "not_supported",
                format!("this works on oauth2 authorizations; {} is {}", auth.name, auth.rtype),
            ));
        }
        self.load_parts(auth).await
    }

    /// The client, provider and scopes of an authorization that has a client.
    pub(crate) async fn load_parts(&self, auth: Record) -> Result<Parts, Error> {
        let client_id = auth
            .reference("client")
            .cloned()
            .ok_or_else(|| state_error("not_supported", format!("a {} authorization has no client", auth.rtype)))?;
        let client = self.store.get(Kind::Client, &client_id).await?.ok_or_else(|| not_found(&client_id))?;
        let provider_id =
            client.key_parent().cloned().ok_or_else(|| Error::Internal("a client without a provider".into()))?;
        let provider = self.store.get(Kind::Provider, &provider_id).await?.ok_or_else(|| not_found(&provider_id))?;
        let scope_ids: Vec<Id> = auth.refs.get("scopes").cloned().unwrap_or_default();
        let mut found: HashMap<Id, Record> =
            self.store.get_many(&scope_ids).await?.into_iter().map(|r| (r.id.clone(), r)).collect();
        let scopes = scope_ids.iter().filter_map(|id| found.remove(id)).collect();
        Ok(Parts { auth, client, provider, scopes })
    }

    pub(crate) fn open_secret(&self, record: &Record, field: &str) -> Result<Option<SecretString>, Error> {
        match record.secrets.get(field) {
            Some(sealed) => Ok(Some(self.sealer.open(sealed, &seal_context(&record.id, field))?)),
            None => Ok(None),
        }
    }

    pub(crate) fn client_credentials(&self, client: &Record) -> Result<(String, String), Error> {
        let identifier = self.open_secret(client, "identifier")?.ok_or_else(|| {
            state_error(
                "client_incomplete",
                format!("client {} has no identifier; set it before authorizing", client.name),
            )
        })?;
        let secret = self.open_secret(client, "secret")?;
        Ok((identifier.expose_secret().to_owned(), secret.map(|s| s.expose_secret().to_owned()).unwrap_or_default()))
    }

    /// The variables of SPEC §3, in their order of precedence.
    /// A scrubber of every secret the records hold, and of their clients'.
    pub(crate) async fn scrubber(&self, records: &[&Record]) -> Scrubber {
        let mut scrubber = Scrubber::default();
        let mut all: Vec<Record> = records.iter().map(|r| (*r).clone()).collect();
        let clients: Vec<Id> = records.iter().filter_map(|r| r.reference("client").cloned()).collect();
        if let Ok(found) = self.store.get_many(&clients).await {
            all.extend(found);
        }
        for record in &all {
            for field in record.secrets.keys() {
                if let Ok(Some(value)) = self.open_secret(record, field) {
                    scrubber.add(value.expose_secret());
                    // Captured callback values are a JSON object of strings.
                    if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(value.expose_secret()) {
                        for v in map.values().filter_map(Value::as_str) {
                            scrubber.add(v);
                        }
                    }
                }
            }
        }
        scrubber
    }

    pub(crate) fn vars(&self, parts: &Parts, identifier: &str, secret: &str) -> Vars {
        let mut vars = Vars::default();
        vars.extend_pairs(parts.client.data.get("template_parameters").unwrap_or(&Value::Null));
        vars.set("identifier", identifier).set("secret", secret).set_time(self.clock.now());
        let callback_key = match parts.auth.rtype.as_str() {
            "oauth1" => "oauth_callback",
            "generic" => parts.auth.text("callback_key"),
            _ => "redirect_uri",
        };
        vars.set(if callback_key.is_empty() { "redirect_uri" } else { callback_key }, self.callback_url());
        vars.extend_pairs(parts.auth.data.get("template_parameters").unwrap_or(&Value::Null));
        vars
    }

    pub(crate) fn scope(&self, parts: &Parts, vars: &Vars) -> Result<String, Error> {
        let names: Vec<String> = parts.scopes.iter().map(|s| s.name.clone()).collect();
        let separator = provider_settings(&parts.provider).scope_separator;
        oauth2::scope_string(&names, separator, vars).map_err(|e| Error::field("scopes", e.to_string()))
    }

    fn token_view(&self, auth: &Record) -> Result<FreshToken, Error> {
        let token = self.open_secret(auth, "access_token")?.ok_or_else(|| {
            state_error("not_authorized", "the authorization holds no access token; authorize it first")
        })?;
        let token_type = match auth.text("token_type") {
            t if t.is_empty() || t.eq_ignore_ascii_case("bearer") => "Bearer".to_owned(),
            t => t.to_owned(),
        };
        let header = format!("{token_type} {}", token.expose_secret());
        Ok(FreshToken(Arc::from(
            json!({
                "access_token": token.expose_secret(),
                "token_type": token_type,
                "expires_at": auth.data.get("expires_at").cloned().unwrap_or(Value::Null),
                "authorization_header": header,
            })
            .to_string(),
        )))
    }

    /// Stores a token answer in one write: a new refresh token replaces the
    /// old one in the same update that stores the new access token.
    async fn store_tokens(&self, auth: &mut Record, tokens: TokenSet, new_grant: bool) -> Result<(), Error> {
        let seal = |field: &str, value: &str| self.sealer.seal(value, &seal_context(&auth.id, field));
        let mut sealed = vec![
            ("access_token", seal("access_token", &tokens.access_token)?),
            ("token_response", seal("token_response", &tokens.raw)?),
        ];
        if let Some(r) = &tokens.refresh_token {
            sealed.push(("refresh_token", seal("refresh_token", r)?));
        }
        if let Some(t) = &tokens.id_token {
            sealed.push(("id_token", seal("id_token", t)?));
        }
        for (field, value) in sealed {
            auth.secrets.insert(field.to_owned(), value);
        }
        auth.data.insert("token_type".into(), json!(tokens.token_type));
        auth.data.insert("expires_at".into(), tokens.expires_at.map(|t| json!(timestamp(t))).unwrap_or(Value::Null));
        if let Some(scope) = tokens.granted_scope {
            auth.data.insert("granted_scope".into(), json!(scope));
        }
        self.save_authorized(auth, new_grant).await?;
        for warning in tokens.warnings {
            self.notify(&auth.id, "warning", format!("authorization {}: {warning}", label_of(auth))).await;
        }
        Ok(())
    }

    /// Writes an authorization that now holds a grant. `authorized_at` says
    /// when the grant was obtained, so a refresh leaves it as it was.
    pub(crate) async fn save_authorized(&self, auth: &mut Record, new_grant: bool) -> Result<(), Error> {
        let now = self.clock.now();
        if new_grant || !auth.data.contains_key("authorized_at") {
            auth.data.insert("authorized_at".into(), json!(timestamp(now)));
        }
        auth.data.remove("last_error");
        set_status(auth, "authorized");
        auth.updated_at = now;
        self.save(auth).await
    }

    /// Records a failure on the authorization and raises a notification, both
    /// scrubbed of every secret of the authorization and its client; the
    /// scrubbed message is what callers may return.
    pub(crate) async fn record_failure(
        &self,
        auth: &mut Record,
        failure: &Failure,
        status: &str,
    ) -> Result<String, Error> {
        let failure = failure.clone().scrubbed(&self.scrubber(&[&*auth]).await);
        auth.data.insert("last_error".into(), failure.to_json());
        set_status(auth, status);
        auth.updated_at = self.clock.now();
        self.save(auth).await?;
        let message = failure.message();
        let note = format!(
            "authorization {} {}: {message}",
            label_of(auth),
            if status == "failed" { "failed" } else { "was not granted" },
        );
        self.notify(&auth.id, "error", note).await;
        Ok(message)
    }
}

/// Why a token request did not give tokens.
#[derive(Debug, Clone)]
pub(crate) enum Failure {
    /// The provider refused (RFC 6749 §5.2 error).
    Provider(ProviderError),
    /// Unreachable, timed out or 5xx.
    Transient(String),
    /// Grantry's own records cannot make the request (template, address).
    Config(String),
    /// A template went over its render budget.
    TooExpensive(String),
}

impl From<oauth2::FlowError> for Failure {
    fn from(e: oauth2::FlowError) -> Failure {
        match e {
            oauth2::FlowError::TooExpensive(m) => Failure::TooExpensive(m),
            other => Failure::Config(other.to_string()),
        }
    }
}

impl Failure {
    pub(crate) fn message(&self) -> String {
        match self {
            Failure::Provider(e) => e.message(),
            Failure::Transient(m) => format!("temporarily_unavailable: {m}"),
            Failure::Config(m) => format!("configuration: {m}"),
            Failure::TooExpensive(m) => format!("template_too_expensive: {m}"),
        }
    }
    pub(crate) fn to_json(&self) -> Value {
        let (error, description) = match self {
            Failure::Provider(e) => return e.to_json(),
            Failure::Transient(m) => ("temporarily_unavailable", m),
            Failure::Config(m) => ("configuration", m),
            Failure::TooExpensive(m) => ("template_too_expensive", m),
        };
        let description: String = description.chars().take(oauth2::MAX_ERROR_DESCRIPTION).collect();
        json!({"error": error, "error_description": description})
    }
    pub(crate) fn scrubbed(self, scrubber: &Scrubber) -> Failure {
        match self {
            Failure::Provider(mut e) => {
                e.scrub(scrubber);
                Failure::Provider(e)
            }
            Failure::Transient(m) => Failure::Transient(scrubber.scrub(&m)),
            Failure::Config(m) => Failure::Config(scrubber.scrub(&m)),
            Failure::TooExpensive(m) => Failure::TooExpensive(scrubber.scrub(&m)),
        }
    }
}

/// How a flow was started: where the browser goes back to, and the flow
/// cookie of the browser session that started it (the UI sets one).
#[derive(Default)]
pub struct Start<'a> {
    pub return_to: Option<&'a str>,
    pub binding: Option<&'a str>,
}

/// Every value a request carried that may be a secret: the parameters but
/// for the few that never are, and the credentials of its headers.
fn request_scrubber(request: &HttpRequest) -> Scrubber {
    const PUBLIC: &[&str] =
        &["grant_type", "redirect_uri", "scope", "token_type_hint", "response_type", "code_challenge_method"];
    let mut scrubber = Scrubber::default();
    let body = request.body.as_deref().map(String::from_utf8_lossy).unwrap_or_default();
    let query = url::Url::parse(&request.url).ok().and_then(|u| u.query().map(str::to_owned)).unwrap_or_default();
    for source in [body.as_ref(), query.as_str()] {
        for (key, value) in url::form_urlencoded::parse(source.as_bytes()) {
            if !PUBLIC.contains(&key.as_ref()) {
                scrubber.add(&value);
            }
        }
        if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(source) {
            for value in map.values().filter_map(Value::as_str) {
                scrubber.add(value);
            }
        }
    }
    for (name, value) in &request.headers {
        if name.eq_ignore_ascii_case("accept") || name.eq_ignore_ascii_case("content-type") {
            continue;
        }
        scrubber.add(value);
        if let Some((_, credential)) = value.split_once(' ') {
            scrubber.add(credential);
            if let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(credential) {
                let decoded = String::from_utf8_lossy(&decoded).into_owned();
                if let Some((user, password)) = decoded.split_once(':') {
                    scrubber.add(user).add(password);
                    let plain = |s: &str| {
                        url::form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned())
                    };
                    for part in [plain(user), plain(password)].into_iter().flatten() {
                        scrubber.add(&part);
                    }
                }
            }
        }
    }
    scrubber
}

/// An authorization's `parameters`, rendered for the authorize URL.
pub(crate) fn authorize_parameters(auth: &Record, vars: &Vars) -> Result<Vec<(String, String)>, Error> {
    let list = auth.data.get("parameters").unwrap_or(&Value::Null);
    oauth2::render_pairs("parameters", list, vars, Position::AuthorizeQuery)
        .map_err(|e| template_error(e, |m| Error::field("parameters", m)))
}

/// A template that did not render: over its budget is `template_too_expensive`,
/// anything else the error `otherwise` makes of the message.
pub(crate) fn template_error(e: oauth2::FlowError, otherwise: impl FnOnce(String) -> Error) -> Error {
    match e {
        oauth2::FlowError::TooExpensive(m) => state_error("template_too_expensive", m),
        other => otherwise(other.to_string()),
    }
}

/// A provider's templates that do not render, at a flow step that has no
/// failure to record.
pub(crate) fn misconfigured(e: oauth2::FlowError) -> Error {
    template_error(e, |m| state_error("provider_misconfigured", m))
}

pub(crate) fn not_found(id: &Id) -> Error {
    Error::NotFound(format!("no authorization has id `{id}`"))
}

pub(crate) fn label_of(record: &Record) -> String {
    label(record, &HashMap::new())
}

pub(crate) fn set_status(auth: &mut Record, status: &str) {
    auth.data.insert("status".into(), json!(status));
    auth.data.insert("authorized".into(), json!(status == "authorized"));
}

pub(crate) fn check_usable(auth: &Record) -> Result<(), Error> {
    match auth.text("status") {
        "authorized" => Ok(()),
        "failed" => {
            let why =
                auth.data.get("last_error").and_then(|e| e.get("error")).and_then(Value::as_str).unwrap_or("an error");
            Err(state_error(
                "authorization_failed",
                format!("the authorization failed ({why}); the resource owner must authorize again"),
            ))
        }
        "expired" => {
            Err(state_error("token_expired", "the access token expired and cannot be refreshed; authorize again"))
        }
        _ => Err(state_error("not_authorized", "the authorization has not been authorized yet; run Authorize first")),
    }
}

fn can_refresh(parts: &Parts) -> bool {
    parts.auth.text("grant_type") == "client_credentials" || parts.provider.text("refresh_token_strategy") != "none"
}

pub(crate) fn provider_settings(provider: &Record) -> ProviderSettings<'_> {
    ProviderSettings {
        authorization_endpoint: provider.text("authorization_endpoint"),
        token_endpoint: provider.text("token_endpoint"),
        token_method: HttpMethod::parse(provider.text("token_method")),
        scope_separator: provider.data.get("scope_separator").and_then(Value::as_str).unwrap_or(" "),
        pkce: provider.text("pkce") != "off",
        hosts: HostParameter::list(provider.data.get("host_parameters")),
    }
}

/// Handlers run on a multi-threaded runtime: every flow future must be Send.
#[cfg(test)]
#[allow(dead_code)]
fn flows_are_send(f: &Flows, id: &Id, sel: &crate::service::Selection) {
    fn is_send<T: Send>(_: T) {}
    is_send(f.delete_many(Kind::Authorization, sel));
    is_send(f.cancel(id));
    is_send(f.fresh_token(id));
    is_send(f.callback(&[], None));
    is_send(f.authorize(id, &Start::default()));
}
